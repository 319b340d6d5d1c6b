//! One client's dashboard: a best-effort pull, then the console cache. The cache read is
//! one transaction ([`DashboardRows`]); turning its rows into what the console shows is
//! [`usage_view`], a plain function.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use mai_core::ledger::{ModelTotals, Priced, UserTotals};
use mai_core::pricing::MarkupSchedule;
use mai_core::usage::Totals;
use rust_decimal::Decimal;

use super::{Ops, OpsError};

/// What the dashboard shows crosses the console's IPC as it is.
pub use mai_wire::console::{Breakdown, Dashboard, DayPoint, PlnRate};

/// The cache rows one dashboard is built from.
#[derive(Debug, Clone)]
pub struct DashboardRows {
    /// The last 30 days up to today, oldest first, zeros included.
    pub daily: Vec<(NaiveDate, Totals)>,
    /// This month so far, priced by markup segment (`Ledger::by_user_priced`).
    pub users: Vec<Priced<UserTotals>>,
    pub models: Vec<Priced<ModelTotals>>,
    /// The fleet file's schedule.
    pub schedule: MarkupSchedule,
}

/// The usage part of the dashboard, priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageView {
    pub today: DayPoint,
    pub days: Vec<DayPoint>,
    pub by_user: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
}

/// Prices the cache rows for display: each day at its own markup; the month's by-user
/// and by-model rows come priced by segment, so they sum to the month's client cost.
/// A price that does not fit exactly is an error, never a wrong number on screen.
pub fn usage_view(
    today: NaiveDate,
    rows: DashboardRows,
) -> Result<UsageView, mai_core::pricing::PricingError> {
    let DashboardRows {
        daily,
        users,
        models,
        schedule,
    } = rows;
    let price = |d: NaiveDate, raw: Decimal| mai_core::pricing::price(&schedule, d, raw);
    let days: Vec<DayPoint> = daily
        .iter()
        .map(|(d, t)| {
            Ok(DayPoint {
                date: *d,
                requests: t.requests,
                tokens: t.tokens.total(),
                raw_cost_usd: t.cost_usd,
                client_cost_usd: price(*d, t.cost_usd)?,
            })
        })
        .collect::<Result<_, mai_core::pricing::PricingError>>()?;
    let today_point = days.last().cloned().unwrap_or(DayPoint {
        date: today,
        requests: 0,
        tokens: 0,
        raw_cost_usd: Decimal::ZERO,
        client_cost_usd: Decimal::ZERO,
    });
    let by_user = users
        .into_iter()
        .map(
            |Priced {
                 row: u,
                 client_cost_usd,
             }| Breakdown {
                key: u.user.key().to_string(),
                label: u
                    .user
                    .label()
                    .map_or_else(|| "(unknown user)".to_string(), str::to_string),
                requests: u.totals.requests,
                tokens: u.totals.tokens.total(),
                prompt_tokens: u.totals.tokens.prompt,
                completion_tokens: u.totals.tokens.completion,
                raw_cost_usd: u.totals.cost_usd,
                client_cost_usd,
            },
        )
        .collect();
    let by_model = models
        .into_iter()
        .map(
            |Priced {
                 row: m,
                 client_cost_usd,
             }| Breakdown {
                key: m.model.clone(),
                label: m.model,
                requests: m.totals.requests,
                tokens: m.totals.tokens.total(),
                prompt_tokens: m.totals.tokens.prompt,
                completion_tokens: m.totals.tokens.completion,
                raw_cost_usd: m.totals.cost_usd,
                client_cost_usd,
            },
        )
        .collect();
    Ok(UsageView {
        today: today_point,
        days,
        by_user,
        by_model,
    })
}

impl Ops {
    /// USD→PLN display rate (NBP table C ask), or why it is unavailable.
    pub async fn pln_rate(&self) -> PlnRate {
        let Some(nbp) = &self.nbp else {
            return PlnRate::unavailable("NBP client not configured".into());
        };
        match tokio::time::timeout(Duration::from_secs(8), nbp.display_rate("USD")).await {
            Ok(Ok(r)) => PlnRate {
                available: true,
                rate: Some(r.ask),
                table_no: Some(r.table_no),
                effective_date: Some(r.effective_date),
                stale: r.stale,
                error: None,
            },
            Ok(Err(e)) => PlnRate::unavailable(e.to_string()),
            Err(_) => PlnRate::unavailable("NBP did not answer within 8 s".into()),
        }
    }

    /// Client dashboard: pull (best effort), then read the cache.
    pub async fn dashboard(&self, id: &str) -> Result<Dashboard, OpsError> {
        let c = self.client(id)?.clone();
        let (pull, pln) = tokio::join!(self.pull(id), self.pln_rate());
        let (live, pull_error) = match pull {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        let today = self.today();
        let from = today - chrono::Duration::days(29);
        let ym = mai_core::time::YearMonth::of(today);
        let org = c.id.clone();
        let schedule = c.terms.markup.clone();
        let (rows, month) = self
            .cache
            .with(move |l| {
                let month = l.month_summary(&org, ym, today, &schedule)?;
                Ok((
                    DashboardRows {
                        daily: l.daily(&org, from, today)?,
                        users: l.by_user_priced(&org, ym.first_day(), today, &schedule)?,
                        models: l.by_model_priced(&org, ym.first_day(), today, &schedule)?,
                        schedule,
                    },
                    month,
                ))
            })
            .await?;
        let view = usage_view(today, rows)
            .map_err(|e| crate::cache::CacheError::from(mai_core::ledger::LedgerError::from(e)))?;
        Ok(Dashboard {
            client_id: c.id.clone(),
            legal_name: c.legal_name.clone(),
            markup: c.markup_on(today),
            live,
            pull_error,
            updated_at: Utc::now(),
            today: view.today,
            month_requests: month.totals.requests,
            month_tokens: month.totals.tokens.total(),
            month_raw_cost_usd: month.totals.cost_usd,
            month_client_cost_usd: month.client_cost_usd,
            daily_average_client_cost_usd: month.daily_average_client_cost_usd,
            monthly_limit_usd: c.monthly_limit_usd(),
            days: view.days,
            by_user: view.by_user,
            by_model: view.by_model,
            pln,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_core::usage::{Tokens, UserRef};
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn totals(requests: u64, prompt: u64, completion: u64, cost: Decimal) -> Totals {
        Totals {
            requests,
            tokens: Tokens {
                prompt,
                completion,
                ..Tokens::default()
            },
            cost_usd: cost,
        }
    }

    fn priced<T>(row: T, client_cost_usd: Decimal) -> Priced<T> {
        Priced {
            row,
            client_cost_usd,
        }
    }

    fn user(id: Option<&str>, email: Option<&str>, name: Option<&str>) -> UserRef {
        UserRef {
            id: id.map(String::from),
            email: email.map(String::from),
            name: name.map(String::from),
        }
    }

    #[test]
    fn each_day_is_priced_at_its_own_markup_and_the_last_day_is_today() {
        let mut schedule = MarkupSchedule::flat(dec!(1.3));
        schedule.set(d("2026-11-10"), dec!(1.5));
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![
                    (d("2026-11-09"), totals(2, 100, 50, dec!(0.10))),
                    (d("2026-11-10"), totals(1, 10, 5, dec!(0.02))),
                ],
                users: vec![],
                models: vec![],
                schedule,
            },
        )
        .unwrap();
        assert_eq!(view.days.len(), 2);
        assert_eq!(view.days[0].client_cost_usd, dec!(0.13));
        assert_eq!(view.days[0].tokens, 150);
        assert_eq!(view.days[1].client_cost_usd, dec!(0.03));
        assert_eq!(view.today, view.days[1]);
    }

    #[test]
    fn no_days_reads_as_an_empty_today() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![],
                models: vec![],
                schedule: MarkupSchedule::flat(dec!(1.3)),
            },
        )
        .unwrap();
        assert_eq!(view.today.date, d("2026-11-10"));
        assert_eq!(view.today.requests, 0);
        assert_eq!(view.today.client_cost_usd, Decimal::ZERO);
    }

    #[test]
    fn users_are_labelled_by_name_then_email_then_id() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![
                    priced(
                        UserTotals {
                            user: user(Some("u1"), Some("anna@example.pl"), Some("Anna")),
                            totals: totals(3, 30, 20, dec!(1)),
                        },
                        dec!(1.25),
                    ),
                    priced(
                        UserTotals {
                            user: user(Some("u2"), Some("jan@example.pl"), None),
                            totals: totals(1, 1, 1, dec!(0.5)),
                        },
                        dec!(0.625),
                    ),
                    priced(
                        UserTotals {
                            user: user(Some("u3"), None, None),
                            totals: totals(1, 1, 1, dec!(0)),
                        },
                        dec!(0),
                    ),
                    priced(
                        UserTotals {
                            user: user(None, None, None),
                            totals: totals(1, 1, 1, dec!(0)),
                        },
                        dec!(0),
                    ),
                ],
                models: vec![],
                schedule: MarkupSchedule::flat(dec!(1.25)),
            },
        )
        .unwrap();
        let labels: Vec<_> = view.by_user.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["Anna", "jan@example.pl", "u3", "(unknown user)"]);
        assert_eq!(view.by_user[0].key, "u1");
        assert_eq!(view.by_user[0].tokens, 50);
        assert_eq!(view.by_user[0].prompt_tokens, 30);
        assert_eq!(view.by_user[0].completion_tokens, 20);
        assert_eq!(view.by_user[0].client_cost_usd, dec!(1.25));
        assert_eq!(view.by_user[1].client_cost_usd, dec!(0.625));
    }

    #[test]
    fn models_are_keyed_and_labelled_by_their_name() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![],
                models: vec![priced(
                    ModelTotals {
                        model: "openai/gpt-4o".into(),
                        totals: totals(4, 400, 100, dec!(2)),
                    },
                    dec!(2.6),
                )],
                schedule: MarkupSchedule::flat(dec!(1.3)),
            },
        )
        .unwrap();
        let m = &view.by_model[0];
        assert_eq!(
            (m.key.as_str(), m.label.as_str()),
            ("openai/gpt-4o", "openai/gpt-4o")
        );
        assert_eq!((m.requests, m.tokens), (4, 500));
        assert_eq!(m.raw_cost_usd, dec!(2));
        assert_eq!(m.client_cost_usd, dec!(2.6));
    }
}
