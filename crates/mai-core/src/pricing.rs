//! Pricing: what the reseller charges. Pure functions over ledger totals.
//!
//! client cost = raw OpenRouter cost x markup rate (exact, unrounded); profit = client
//! cost - raw. A markup rate has an effective-from day, so a change mid-month applies
//! from that day on and the month splits into segments.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::round_half_up;
use crate::time::YearMonth;
use crate::usage::{exact_add, exact_sub, Overflow, Totals};

// The schedule, segment and limit types cross the wire (fleet file -> console ->
// tracker -> UI), so mai-wire owns them; the arithmetic on them lives here, once.
pub use mai_wire::pricing::{
    CommercialTerms, LimitLevel, LimitState, MarkupEntry, MarkupSchedule, MarkupSegment,
    DEFAULT_MARKUP,
};

/// Client cost of a raw cost at a markup rate. Exact: rounding is for invoices. A
/// product that overflows, or that `rust_decimal` would have to round (more than 28
/// fractional digits, or more than 96 bits), is an error, never a wrong price.
pub fn client_cost(raw: Decimal, rate: Decimal) -> Result<Decimal, PricingError> {
    let (raw, rate) = (raw.normalize(), rate.normalize());
    let exact_scale = raw.scale() + rate.scale();
    raw.checked_mul(rate)
        .filter(|p| p.is_zero() || p.scale() == exact_scale)
        .map(|p| p.normalize())
        .ok_or(PricingError::Overflow(Overflow {
            what: "client cost (raw cost x markup)",
        }))
}

/// The one pricing function: what the client pays for `raw` USD spent on `day`.
pub fn price(
    schedule: &MarkupSchedule,
    day: NaiveDate,
    raw: Decimal,
) -> Result<Decimal, PricingError> {
    client_cost(raw, schedule.rate_on(day))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("markup rate `{0}` is invalid: it must be a positive decimal such as 1.3")]
    BadMarkup(String),
    #[error(transparent)]
    Overflow(#[from] Overflow),
}

/// Checks a markup rate (positive, at most 100x — anything above is a typo).
pub fn validate_markup(rate: Decimal) -> Result<Decimal, PricingError> {
    if rate <= Decimal::ZERO || rate > Decimal::from(100) {
        return Err(PricingError::BadMarkup(rate.to_string()));
    }
    Ok(rate)
}

/// Splits `daily` (one entry per day, sorted) into runs of equal rate and prices them:
/// every price of a period (a month, a user's month, a model's month) is the sum of its
/// segments, so all views of one period agree to the last digit.
///
/// Sums are checked: a period whose total does not fit exactly is an error.
pub fn price_days(
    schedule: &MarkupSchedule,
    daily: &[(NaiveDate, Totals)],
) -> Result<Vec<MarkupSegment>, PricingError> {
    let mut out: Vec<MarkupSegment> = Vec::new();
    for (day, t) in daily {
        let rate = schedule.rate_on(*day);
        match out.last_mut() {
            Some(seg) if seg.rate == rate && seg.to.succ_opt() == Some(*day) => {
                seg.to = *day;
                seg.raw_cost_usd = exact_add(seg.raw_cost_usd, t.cost_usd).ok_or(Overflow {
                    what: "segment cost",
                })?;
                seg.requests = seg.requests.checked_add(t.requests).ok_or(Overflow {
                    what: "segment request count",
                })?;
            }
            _ => out.push(MarkupSegment {
                from: *day,
                to: *day,
                rate,
                raw_cost_usd: t.cost_usd,
                client_cost_usd: Decimal::ZERO,
                requests: t.requests,
            }),
        }
    }
    for seg in &mut out {
        seg.client_cost_usd = client_cost(seg.raw_cost_usd, seg.rate)?;
        seg.raw_cost_usd = seg.raw_cost_usd.normalize();
    }
    Ok(out)
}

/// Exact sum of client costs, or the overflow error.
fn sum_client(segments: &[MarkupSegment]) -> Result<Decimal, PricingError> {
    segments
        .iter()
        .try_fold(Decimal::ZERO, |acc, s| exact_add(acc, s.client_cost_usd))
        .ok_or(PricingError::Overflow(Overflow {
            what: "period client cost",
        }))
}

/// The client cost of a period given per day: the sum of [`price_days`]' segments.
pub fn price_period(
    schedule: &MarkupSchedule,
    daily: &[(NaiveDate, Totals)],
) -> Result<Decimal, PricingError> {
    Ok(sum_client(&price_days(schedule, daily)?)?.normalize())
}

/// A month of one org, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthSummary {
    pub org_id: String,
    pub month: YearMonth,
    /// The month has not ended yet (Warsaw time): numbers still move.
    pub provisional: bool,
    pub days_elapsed: u32,
    pub totals: Totals,
    #[serde(with = "rust_decimal::serde::str")]
    pub client_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_usd: Decimal,
    /// Client cost per elapsed day (12 decimal places).
    #[serde(with = "rust_decimal::serde::str")]
    pub daily_average_client_cost_usd: Decimal,
    pub segments: Vec<MarkupSegment>,
}

/// Prices a month from its daily totals. `today` is the Warsaw day used to tell how
/// much of the month has elapsed.
pub fn month_summary(
    org_id: &str,
    month: YearMonth,
    daily: &[(NaiveDate, Totals)],
    schedule: &MarkupSchedule,
    today: NaiveDate,
) -> Result<MonthSummary, PricingError> {
    let mut totals = Totals::default();
    for (_, t) in daily {
        totals.add(t)?;
    }
    totals.cost_usd = totals.cost_usd.normalize();
    let segments = price_days(schedule, daily)?;
    let client = sum_client(&segments)?;
    let days_elapsed = if today > month.last_day() {
        month.days()
    } else if today < month.first_day() {
        0
    } else {
        chrono::Datelike::day(&today)
    };
    let avg = if days_elapsed == 0 {
        Decimal::ZERO
    } else {
        round_half_up(client / Decimal::from(days_elapsed), 12).normalize()
    };
    let profit = exact_sub(client, totals.cost_usd).ok_or(Overflow { what: "profit" })?;
    Ok(MonthSummary {
        org_id: org_id.to_string(),
        month,
        provisional: today <= month.last_day(),
        days_elapsed,
        totals,
        client_cost_usd: client.normalize(),
        profit_usd: profit.normalize(),
        daily_average_client_cost_usd: avg,
        segments,
    })
}

/// The OpenRouter key's spending cap (USD of OpenRouter cost) for a client whose
/// monthly limit is on the client cost: limit / today's markup, rounded down to the
/// cent so the key never lets the client spend past its limit. `None` without a limit.
pub fn key_limit_usd(terms: &CommercialTerms, today: NaiveDate) -> Option<Decimal> {
    let rate = terms.markup.rate_on(today);
    terms
        .monthly_limit_usd
        .and_then(|l| l.checked_div(rate))
        .map(crate::money::round_minor_down)
}

/// Warning at 80%, reached at 100%. A zero limit is reached at once. Never panics:
/// a percentage too large for a decimal is shown as `Decimal::MAX` (and "reached").
pub fn limit_state(limit: Decimal, used: Decimal) -> LimitState {
    let hundred = Decimal::from(100);
    let exact_pct = if limit.is_zero() {
        hundred
    } else {
        used.checked_mul(hundred)
            .and_then(|x| x.checked_div(limit))
            .or_else(|| used.checked_div(limit).and_then(|x| x.checked_mul(hundred)))
            .unwrap_or(if used.is_sign_negative() == limit.is_sign_negative() {
                Decimal::MAX
            } else {
                Decimal::MIN
            })
    };
    let level = if exact_pct >= Decimal::from(100) {
        LimitLevel::Reached
    } else if exact_pct >= Decimal::from(80) {
        LimitLevel::Warning
    } else {
        LimitLevel::Ok
    };
    LimitState {
        monthly_limit_usd: limit,
        used_usd: used.normalize(),
        percent_used: crate::money::round_minor(exact_pct),
        level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn mid_month_markup_change_splits_the_month() {
        let mut s = MarkupSchedule::default();
        s.set(d("2026-11-15"), dec!(1.5));
        let month: YearMonth = "2026-11".parse().unwrap();
        let daily: Vec<_> = (1..=30)
            .map(|i| {
                let day = NaiveDate::from_ymd_opt(2026, 11, i).unwrap();
                (
                    day,
                    Totals {
                        requests: 1,
                        cost_usd: dec!(1),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let m = month_summary("acme", month, &daily, &s, d("2026-12-01")).unwrap();
        assert_eq!(m.segments.len(), 2);
        assert_eq!(m.segments[0].to, d("2026-11-14"));
        assert_eq!(m.segments[0].client_cost_usd, dec!(18.2)); // 14 x 1.3
        assert_eq!(m.segments[1].client_cost_usd, dec!(24)); // 16 x 1.5
        assert_eq!(m.client_cost_usd, dec!(42.2));
        assert_eq!(m.profit_usd, dec!(12.2));
        assert!(!m.provisional);
        assert_eq!(m.days_elapsed, 30);
    }

    #[test]
    fn open_month_is_provisional_with_elapsed_days() {
        let month: YearMonth = "2026-11".parse().unwrap();
        let daily = vec![(
            d("2026-11-01"),
            Totals {
                requests: 2,
                cost_usd: dec!(3),
                ..Default::default()
            },
        )];
        let m = month_summary(
            "acme",
            month,
            &daily,
            &MarkupSchedule::default(),
            d("2026-11-23"),
        )
        .unwrap();
        assert!(m.provisional);
        assert_eq!(m.days_elapsed, 23);
        assert_eq!(m.client_cost_usd, dec!(3.9));
        assert_eq!(m.daily_average_client_cost_usd, dec!(0.169565217391));
    }

    #[test]
    fn limit_levels() {
        assert_eq!(limit_state(dec!(100), dec!(79.99)).level, LimitLevel::Ok);
        assert_eq!(limit_state(dec!(100), dec!(80)).level, LimitLevel::Warning);
        assert_eq!(limit_state(dec!(100), dec!(100)).level, LimitLevel::Reached);
        assert_eq!(limit_state(dec!(3), dec!(1)).percent_used, dec!(33.33));
    }

    #[test]
    fn key_limit_is_the_client_limit_over_todays_markup_rounded_down() {
        let mut terms = CommercialTerms {
            markup: MarkupSchedule::flat(dec!(1.3)),
            monthly_limit_usd: Some(dec!(10)),
        };
        // Toward zero: 15.39 / 2 = 7.695 gives 7.69 and 15.39 / 1.3 = 11.838... gives
        // 11.83, where half-up (11.84) would let the key spend past the client's limit.
        assert_eq!(key_limit_usd(&terms, d("2026-11-01")), Some(dec!(7.69)));
        terms.monthly_limit_usd = Some(dec!(15.39));
        terms.markup.set(d("2026-11-16"), dec!(2));
        assert_eq!(key_limit_usd(&terms, d("2026-11-16")), Some(dec!(7.69)));
        assert_eq!(key_limit_usd(&terms, d("2026-11-15")), Some(dec!(11.83)));
        terms.monthly_limit_usd = None;
        assert_eq!(key_limit_usd(&terms, d("2026-11-15")), None);
    }

    #[test]
    fn default_markup_is_1_3() {
        assert_eq!(DEFAULT_MARKUP, dec!(1.3));
        assert_eq!(
            client_cost(dec!(0.00066), DEFAULT_MARKUP).unwrap(),
            dec!(0.000858)
        );
        assert!(validate_markup(dec!(0)).is_err());
    }
}
