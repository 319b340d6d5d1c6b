//! The fleet overview: totals across the fleet table's rows, month-end projections and
//! the OpenRouter account's credits. The figures are plain functions of the rows
//! ([`fleet_totals`], [`project`]); `Ops::fleet_overview` only gathers their inputs.
//!
//! **Projection rule.** The month is the Warsaw calendar month, from its first midnight
//! to the next month's first midnight, as instants (a month with a clock change is an
//! hour shorter or longer). `elapsed = now − start`, `length = end − start`, in whole
//! seconds. The month-end projection is `month_to_date × length / elapsed`, exact, then
//! rounded half up to 6 decimals (`mai_core::money::round_half_up`): the pace so far,
//! continued. At the month's very first second nothing has elapsed and there is no
//! projection. Against a limit: `projected / limit × 100` (2 decimals); the limit is
//! reached when `month_to_date ≥ limit` (as `pricing::limit_state`: a zero limit at once); otherwise at the same pace it is reached at
//! `start + elapsed × limit / month_to_date`, whose Warsaw day is `exceeds_on` when it
//! falls before the month's end. A zero limit has no percentage.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mai_core::money::round_half_up;
use mai_core::time::{warsaw_midnight, YearMonth};
use rust_decimal::Decimal;

use super::{blocking, Ops};
use crate::refresh::FleetRow;

use mai_wire::console::PlnRate;
pub use mai_wire::overview::{AccountCredits, FleetOverview, FleetTotals, Projection, UsdPln};

/// The Warsaw month containing `now`: its first instant and the next month's.
pub fn month_bounds(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let ym = YearMonth::of(mai_core::time::warsaw_day(now));
    (
        warsaw_midnight(ym.first_day()),
        warsaw_midnight(ym.next().first_day()),
    )
}

/// Month-end projection of a client's (or the fleet's) client cost; see the module's
/// rule.
pub fn project(month_to_date: Decimal, limit: Option<Decimal>, now: DateTime<Utc>) -> Projection {
    let (start, end) = month_bounds(now);
    let elapsed = (now - start).num_seconds().max(0);
    let length = (end - start).num_seconds();
    let projected = (elapsed > 0)
        .then(|| {
            month_to_date
                .checked_mul(Decimal::from(length))?
                .checked_div(Decimal::from(elapsed))
        })
        .flatten()
        .map(|p| round_half_up(p, 6).normalize());
    let limit_reached = limit.is_some_and(|l| month_to_date >= l);
    let percent = match (projected, limit) {
        (Some(p), Some(l)) if !l.is_zero() => p
            .checked_mul(Decimal::from(100))
            .and_then(|x| x.checked_div(l))
            .map(|x| round_half_up(x, 2)),
        _ => None,
    };
    let exceeds_on = match limit {
        Some(l) if !limit_reached && month_to_date > Decimal::ZERO && elapsed > 0 => {
            // Seconds after the start at which the pace reaches the limit.
            Decimal::from(elapsed)
                .checked_mul(l)
                .and_then(|x| x.checked_div(month_to_date))
                .and_then(|secs| i64::try_from(secs.ceil()).ok())
                .filter(|secs| *secs < length)
                .map(|secs| mai_core::time::warsaw_day(start + chrono::Duration::seconds(secs)))
        }
        _ => None,
    };
    Projection {
        month_to_date_usd: month_to_date.normalize(),
        projected_usd: projected,
        monthly_limit_usd: limit,
        projected_percent_of_limit: percent,
        limit_reached,
        exceeds_on,
    }
}

fn pln(usd: Decimal, rate: &PlnRate) -> Option<Decimal> {
    let r = rate.rate.filter(|_| rate.available)?;
    usd.checked_mul(r).map(|x| round_half_up(x, 2))
}

/// Totals over the fleet table's rows at `now`: today and month to date, client cost,
/// OpenRouter cost and profit (client − OpenRouter, before fees), USD exact and PLN at
/// the display rate; the fleet's projection. A row without all four figures (tracker
/// never reached, a pricing error) is left out and named.
pub fn fleet_totals(
    rows: &[FleetRow],
    rate: PlnRate,
    credits: AccountCredits,
    now: DateTime<Utc>,
) -> FleetTotals {
    let day = mai_core::time::warsaw_day(now);
    let mut sums = [Decimal::ZERO; 4];
    let mut missing = Vec::new();
    let mut counted = 0u32;
    let mut limit_sum = Some(Decimal::ZERO);
    for r in rows {
        let figures = [
            r.today_client_cost_usd,
            r.today_raw_cost_usd,
            r.month_client_cost_usd,
            r.month_raw_cost_usd,
        ];
        // A snapshot from another day or month (a tracker down since) is not "today".
        let current = r
            .data_fetched_at
            .is_none_or(|f| mai_core::time::warsaw_day(f) == day);
        match figures {
            [Some(a), Some(b), Some(c), Some(d)] if current => {
                let sum = [a, b, c, d];
                let mut next = sums;
                let mut ok = true;
                for (s, x) in next.iter_mut().zip(sum) {
                    match s.checked_add(x) {
                        Some(v) => *s = v,
                        None => ok = false,
                    }
                }
                if !ok {
                    missing.push(r.client_id.clone());
                    continue;
                }
                sums = next;
                counted += 1;
                limit_sum = match (limit_sum, r.limit.as_ref()) {
                    (Some(s), Some(l)) => s.checked_add(l.monthly_limit_usd),
                    _ => None,
                };
            }
            _ => missing.push(r.client_id.clone()),
        }
    }
    let [today_client, today_raw, month_client, month_raw] = sums.map(|s| s.normalize());
    let amount = |usd: Decimal| UsdPln {
        usd,
        pln: pln(usd, &rate),
    };
    let projection = project(month_client, limit_sum.filter(|_| counted > 0), now);
    FleetTotals {
        day,
        month: YearMonth::of(day).to_string(),
        clients: rows.len() as u32,
        clients_counted: counted,
        missing,
        today_client_cost: amount(today_client),
        today_openrouter_cost: amount(today_raw),
        today_profit: amount((today_client - today_raw).normalize()),
        month_client_cost: amount(month_client),
        month_openrouter_cost: amount(month_raw),
        month_profit: amount((month_client - month_raw).normalize()),
        pln: rate,
        credits,
        projection,
    }
}

/// How long the OpenRouter account's credits are reused ([`Ops::credits`]): the fleet
/// view refreshes every 30 s and the figure moves with the fleet's spending.
pub const CREDITS_REUSE: Duration = Duration::from_secs(60);
/// How long a failed credits answer (no management key, OpenRouter down) is kept before
/// asking again, so a key just stored shows soon.
pub const CREDITS_RETRY: Duration = Duration::from_secs(15);

fn credits_reuse(c: &AccountCredits) -> Duration {
    if c.available {
        CREDITS_REUSE
    } else {
        CREDITS_RETRY
    }
}

/// `GET /credits` with the management key from `keychain` (or why not).
async fn fetch_credits(
    keychain: Result<crate::keys::Keychain, String>,
    http: reqwest::Client,
    base_url: String,
) -> AccountCredits {
    let kc = match keychain {
        Ok(k) => k,
        Err(e) => return AccountCredits::unavailable(e),
    };
    let mgmt = match blocking(move || kc.management_key()).await {
        Ok(k) => k,
        Err(e) => return AccountCredits::unavailable(e.to_string()),
    };
    let or = match mai_core::openrouter::OpenRouterClient::with_http(
        http,
        base_url.as_str(),
        mai_core::openrouter::SecretKey::new(mgmt),
    ) {
        Ok(c) => c,
        Err(e) => return AccountCredits::unavailable(format!("OpenRouter client: {e}")),
    };
    match tokio::time::timeout(Duration::from_secs(8), or.credits()).await {
        Ok(Ok(c)) => AccountCredits {
            available: true,
            total_credits_usd: Some(c.total_credits),
            total_usage_usd: Some(c.total_usage),
            remaining_usd: Some(c.balance().normalize()),
            error: None,
            pending: false,
        },
        Ok(Err(e)) => {
            AccountCredits::unavailable(format!("GET /credits with the management key failed: {e}"))
        }
        Err(_) => AccountCredits::unavailable(
            "OpenRouter's /credits did not answer within 8 s; try again".into(),
        ),
    }
}

/// Whether [`Ops::fleet_overview`] waits for the outside services' answers (NBP's rate,
/// OpenRouter's credits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideAnswers {
    /// Wait for them (maictl: one answer, complete).
    Await,
    /// Take them if they are in when the rows are, else the last ones kept, else say
    /// they are pending (the console: rows first; the fleet view asks again shortly).
    IfReady,
}

impl Ops {
    /// The OpenRouter account's credits, read with the management key; without a
    /// keychain or key, or when OpenRouter does not answer, why not. Reused for
    /// [`CREDITS_REUSE`] ([`CREDITS_RETRY`] when unavailable); callers at the same
    /// moment wait for one request.
    pub async fn credits(&self) -> AccountCredits {
        self.ask_credits().answer().await
    }

    fn ask_credits(&self) -> super::memo::Asked<AccountCredits> {
        let keychain = self
            .keychain("reading the OpenRouter credits")
            .cloned()
            .map_err(|e| e.to_string());
        self.credits_memo.ask(
            credits_reuse,
            fetch_credits(
                keychain,
                self.http.clone(),
                self.fleet.openrouter.base_url.to_string(),
            ),
            || AccountCredits::unavailable("asking OpenRouter failed (a bug); try again".into()),
        )
    }

    /// The fleet table and its totals, from one refresh; see [`OutsideAnswers`] for how
    /// long the PLN rate and the credits are waited for.
    pub async fn fleet_overview(&self, outside: OutsideAnswers) -> FleetOverview {
        // Asked before the refresh so they run beside it.
        let (rate, credits) = (self.ask_pln_rate(), self.ask_credits());
        let rows = self.refresh().await;
        let (rate, credits) = match outside {
            OutsideAnswers::Await => (rate.answer().await, credits.answer().await),
            OutsideAnswers::IfReady => (
                rate.if_ready().await.unwrap_or_else(PlnRate::pending),
                credits
                    .if_ready()
                    .await
                    .unwrap_or_else(AccountCredits::pending),
            ),
        };
        let totals = fleet_totals(&rows, rate, credits, Utc::now());
        FleetOverview { rows, totals }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn month_bounds_are_warsaw_midnights() {
        // December: CET (+01:00) both ends.
        let (s, e) = month_bounds(at("2026-12-07T01:00:00Z"));
        assert_eq!(s, at("2026-11-30T23:00:00Z"));
        assert_eq!(e, at("2026-12-31T23:00:00Z"));
        // 23:30 UTC on 30 Nov is already December in Warsaw.
        assert_eq!(month_bounds(at("2026-11-30T23:30:00Z")).0, s);
        // March has the spring-forward night: 31 days minus one hour.
        let (s, e) = month_bounds(at("2026-03-15T12:00:00Z"));
        assert_eq!((e - s).num_hours(), 31 * 24 - 1);
        assert_eq!(s, at("2026-02-28T23:00:00Z"));
        assert_eq!(e, at("2026-03-31T22:00:00Z"));
        // October has the fall-back night: one hour more.
        let (s, e) = month_bounds(at("2026-10-01T00:00:00Z"));
        assert_eq!((e - s).num_hours(), 31 * 24 + 1);
    }

    #[test]
    fn half_a_month_doubles() {
        // November 2026: 30 days, no clock change; midday of the 16th (CET) = 15 days in.
        let p = project(d("40"), Some(d("100")), at("2026-11-15T23:00:00Z"));
        assert_eq!(p.projected_usd, Some(d("80")));
        assert_eq!(p.projected_percent_of_limit, Some(d("80.00")));
        assert!(!p.limit_reached);
        assert_eq!(p.exceeds_on, None, "80% at month end: not exceeded");
        // 60 after 15 days: the limit of 100 is reached after 25 days, on the 26th.
        let p = project(d("60"), Some(d("100")), at("2026-11-15T23:00:00Z"));
        assert_eq!(p.projected_usd, Some(d("120")));
        assert_eq!(p.projected_percent_of_limit, Some(d("120.00")));
        assert_eq!(p.exceeds_on, Some("2026-11-26".parse().unwrap()));
    }

    #[test]
    fn the_projection_is_exact_then_rounded_once() {
        // One third of November: 10 days of 30. $0.000001 × 3 = $0.000003 exactly.
        let p = project(d("0.000001"), None, at("2026-11-10T23:00:00Z"));
        assert_eq!(p.projected_usd, Some(d("0.000003")));
        // One second in: the pace of 2,592,000 s from one second; rounded half up at 6 dp.
        let p = project(d("0.0000001"), None, at("2026-10-31T23:00:01Z"));
        assert_eq!(p.projected_usd, Some(d("0.2592")));
        assert_eq!(p.monthly_limit_usd, None);
        assert_eq!(p.projected_percent_of_limit, None);
        assert_eq!(p.exceeds_on, None);
    }

    #[test]
    fn first_instant_of_a_month_has_no_pace() {
        let p = project(d("0"), Some(d("100")), at("2026-11-30T23:00:00Z"));
        assert_eq!(p.projected_usd, None);
        assert_eq!(p.projected_percent_of_limit, None);
        assert!(!p.limit_reached);
        // First day, six hours in (Warsaw): a pace exists.
        let p = project(d("1"), Some(d("100")), at("2026-12-01T05:00:00Z"));
        assert_eq!(p.projected_usd, Some(d("124")), "744 h / 6 h");
        assert_eq!(p.projected_percent_of_limit, Some(d("124.00")));
        // 1 per 6 h reaches 100 after 600 h = 25 days: on 26 December.
        assert_eq!(p.exceeds_on, Some("2026-12-26".parse().unwrap()));
    }

    #[test]
    fn dst_months_use_their_real_length() {
        // 29 March 2026, 12:00 Warsaw (CEST, +02:00) = 10:00 UTC; the month started at
        // 28 Feb 23:00 UTC: 28 days 11 hours = 683 h elapsed of 743 h.
        let p = project(d("683"), None, at("2026-03-29T10:00:00Z"));
        assert_eq!(p.projected_usd, Some(d("743")));
        // October: 745 h. Halfway = 372.5 h after 30 Sep 22:00 UTC.
        let p = project(d("1"), None, at("2026-10-16T10:30:00Z"));
        assert_eq!(p.projected_usd, Some(d("2")));
    }

    #[test]
    fn zero_and_reached_limits() {
        let now = at("2026-11-15T23:00:00Z");
        let p = project(d("0"), Some(d("0")), now);
        assert!(
            p.limit_reached,
            "a zero limit is reached at once, as limit_state says"
        );
        assert_eq!(p.projected_percent_of_limit, None);
        assert_eq!(p.exceeds_on, None);
        let p = project(d("0.01"), Some(d("0")), now);
        assert!(p.limit_reached);
        assert_eq!(p.projected_percent_of_limit, None);
        let p = project(d("100"), Some(d("100")), now);
        assert!(p.limit_reached);
        assert_eq!(p.exceeds_on, None);
        assert_eq!(p.projected_percent_of_limit, Some(d("200.00")));
        // Nothing spent: never exceeds.
        let p = project(d("0"), Some(d("100")), now);
        assert_eq!(p.projected_usd, Some(d("0")));
        assert_eq!(p.exceeds_on, None);
    }

    fn row(id: &str, today: (&str, &str), month: (&str, &str), limit: Option<&str>) -> FleetRow {
        let now = at("2026-11-15T23:00:00Z");
        FleetRow {
            client_id: id.into(),
            legal_name: id.into(),
            host: "h1".into(),
            host_mode: None,
            markup: d("1.3"),
            container: None,
            tracker_container: None,
            docker_error: None,
            uptime_seconds: None,
            tracker_reachable: true,
            tracker_error: None,
            tracker_version: None,
            last_sync_state: mai_wire::console::SyncView::Ok,
            last_sync_at: None,
            last_sync_error: None,
            today_requests: Some(1),
            today_tokens: Some(1),
            today_raw_cost_usd: Some(d(today.1)),
            today_client_cost_usd: Some(d(today.0)),
            month_client_cost_usd: Some(d(month.0)),
            month_raw_cost_usd: Some(d(month.1)),
            limit: limit.map(|l| mai_core::pricing::limit_state(d(l), d(month.0))),
            projection: None,
            key_state: None,
            key_label: None,
            key_limit_remaining_usd: None,
            alerts: vec![],
            data_fetched_at: Some(now),
            data_age_seconds: Some(0),
            refreshed_at: now,
        }
    }

    fn rate(r: &str, stale: bool) -> PlnRate {
        PlnRate {
            available: true,
            rate: Some(d(r)),
            table_no: Some("233/C/NBP/2026".into()),
            effective_date: Some("2026-11-13".parse().unwrap()),
            stale,
            error: None,
            pending: false,
        }
    }

    #[test]
    fn totals_sum_exactly_and_convert_once() {
        let now = at("2026-11-15T23:00:00Z");
        let mut down = row("gone", ("1", "1"), ("1", "1"), None);
        down.today_client_cost_usd = None;
        let rows = vec![
            row("a", ("0.0000013", "0.000001"), ("13", "10"), Some("100")),
            row("b", ("2.6", "2"), ("26", "20"), Some("50")),
            down,
        ];
        let t = fleet_totals(
            &rows,
            rate("4.1234", true),
            AccountCredits::unavailable("no key".into()),
            now,
        );
        assert_eq!(t.clients, 3);
        assert_eq!(t.clients_counted, 2);
        assert_eq!(t.missing, vec!["gone".to_string()]);
        assert_eq!(t.today_client_cost.usd, d("2.6000013"));
        assert_eq!(t.today_openrouter_cost.usd, d("2.000001"));
        assert_eq!(t.today_profit.usd, d("0.6000003"));
        assert_eq!(t.month_client_cost.usd, d("39"));
        assert_eq!(t.month_profit.usd, d("9"));
        // 39 × 4.1234 = 160.8126 → 160.81; 9 × 4.1234 = 37.1106 → 37.11.
        assert_eq!(t.month_client_cost.pln, Some(d("160.81")));
        assert_eq!(t.month_profit.pln, Some(d("37.11")));
        assert!(t.pln.stale);
        assert_eq!(t.projection.monthly_limit_usd, Some(d("150")));
        assert_eq!(t.projection.projected_usd, Some(d("78")));
        assert_eq!(t.day.to_string(), "2026-11-16");
        assert_eq!(t.month, "2026-11");
        assert!(!t.credits.available);
    }

    #[test]
    fn totals_without_a_rate_or_a_limit() {
        let now = at("2026-11-15T23:00:00Z");
        let rows = vec![
            row("a", ("1.3", "1"), ("13", "10"), Some("100")),
            row("b", ("0", "0"), ("0", "0"), None),
        ];
        let t = fleet_totals(
            &rows,
            PlnRate::unavailable("NBP down".into()),
            AccountCredits::unavailable("no key".into()),
            now,
        );
        assert_eq!(t.month_client_cost.pln, None);
        assert_eq!(t.projection.monthly_limit_usd, None, "b has no limit");
        // A row from yesterday's snapshot is not today's.
        let mut old = row("c", ("5", "4"), ("5", "4"), None);
        old.data_fetched_at = Some(at("2026-11-14T12:00:00Z"));
        let t = fleet_totals(
            &[old],
            PlnRate::unavailable("x".into()),
            AccountCredits::unavailable("x".into()),
            now,
        );
        assert_eq!(t.clients_counted, 0);
        assert_eq!(t.missing, vec!["c".to_string()]);
        assert_eq!(t.month_client_cost.usd, d("0"));
    }
}
