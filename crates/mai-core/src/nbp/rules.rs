//! Which NBP table and dates a rate must come from (pure; VAT Act art. 31a).
//!
//! The working-day calendar is deliberately NOT computed here: NBP's own data is the
//! calendar. We ask for a window of days and take the last published table in it, so a
//! holiday we forgot (or a new one, like 24 December from 2025) cannot give a wrong rate.

use chrono::{Days, NaiveDate};

use super::wire::{Series, SeriesRow};

/// Calendar days looked back for an invoice rate. The longest run without a table is
/// about 5 days (23→29 December 2025); 14 leaves a wide margin and stays under every
/// NBP range limit.
pub const INVOICE_LOOKBACK_DAYS: u64 = 14;

/// Calendar days looked back for a display rate (weekends and holiday runs).
pub const DISPLAY_LOOKBACK_DAYS: u64 = 7;

/// The reference date for the invoice rate of a period-settled supply.
///
/// The tax point of usage settled monthly is the period's last day (art. 19a ust. 3).
/// An invoice lawfully issued before the tax point uses its issue date instead
/// (art. 31a ust. 2). The rate is then the last table A strictly before this date.
pub fn invoice_reference_date(period_last_day: NaiveDate, issue_date: NaiveDate) -> NaiveDate {
    period_last_day.min(issue_date)
}

/// Inclusive date window `[D-14, D-1]` to query for the rate of reference date `D`.
pub fn invoice_window(reference: NaiveDate) -> (NaiveDate, NaiveDate) {
    let to = reference - Days::new(1);
    let from = reference - Days::new(INVOICE_LOOKBACK_DAYS);
    (from, to)
}

/// Inclusive window `[today-7, today]` for the latest published display rate.
pub fn display_window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (today - Days::new(DISPLAY_LOOKBACK_DAYS), today)
}

/// Picks the invoice rate row: the last table strictly before `reference`.
/// Rows on or after the reference date are ignored, never used.
pub fn pick_last_before(series: &Series, reference: NaiveDate) -> Option<&SeriesRow> {
    series
        .rows
        .iter()
        .filter(|r| r.effective_date < reference)
        .max_by_key(|r| r.effective_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reference_is_period_end_unless_issued_earlier() {
        assert_eq!(
            invoice_reference_date(d("2026-03-31"), d("2026-04-01")),
            d("2026-03-31")
        );
        assert_eq!(
            invoice_reference_date(d("2026-03-31"), d("2026-03-20")),
            d("2026-03-20")
        );
    }

    #[test]
    fn window_ends_strictly_before_reference() {
        assert_eq!(
            invoice_window(d("2025-12-29")),
            (d("2025-12-15"), d("2025-12-28"))
        );
        assert_eq!(
            display_window(d("2025-01-07")),
            (d("2024-12-31"), d("2025-01-07"))
        );
    }

    #[test]
    fn picks_last_row_before_reference_even_if_reply_has_later_rows() {
        let row = |date: &str, no: &str| SeriesRow {
            no: no.into(),
            effective_date: d(date),
            mid: Some(rust_decimal::Decimal::ONE),
            bid: None,
            ask: None,
        };
        let s = Series {
            table: "A".into(),
            code: "USD".into(),
            rows: vec![
                row("2025-12-22", "246/A/NBP/2025"),
                row("2025-12-23", "247/A/NBP/2025"),
                row("2025-12-29", "248/A/NBP/2025"),
            ],
        };
        assert_eq!(
            pick_last_before(&s, d("2025-12-29")).unwrap().no,
            "247/A/NBP/2025"
        );
        assert!(pick_last_before(&s, d("2025-12-22")).is_none());
    }
}
