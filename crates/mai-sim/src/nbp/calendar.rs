//! NBP publication calendar: Polish working days and table numbering.
//!
//! Written independently of mai-core's calendar on purpose, so that a mistake in
//! one is caught by tests against the other.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// First day with exchange-rate tables in the NBP API.
pub const FIRST_TABLE_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2002, 1, 2) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

/// An NBP table letter. B is parsed but not simulated (the billing tool never uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    A,
    B,
    C,
}

impl Table {
    /// Upper-case letter as NBP prints it.
    pub fn letter(self) -> &'static str {
        match self {
            Table::A => "A",
            Table::B => "B",
            Table::C => "C",
        }
    }

    /// Case-insensitive, as the real API accepts `a` and `A`.
    pub fn parse(s: &str) -> Option<Table> {
        match s {
            "a" | "A" => Some(Table::A),
            "b" | "B" => Some(Table::B),
            "c" | "C" => Some(Table::C),
            _ => None,
        }
    }
}

/// Easter Sunday (Gregorian), anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is always a valid date")
}

/// Polish statutory public holiday (ustawa o dniach wolnych od pracy), including the
/// 24 December holiday that exists only from 2025 on.
pub fn is_polish_holiday(date: NaiveDate) -> bool {
    let (m, d) = (date.month(), date.day());
    let fixed = matches!(
        (m, d),
        (1, 1) | (1, 6) | (5, 1) | (5, 3) | (8, 15) | (11, 1) | (11, 11) | (12, 25) | (12, 26)
    );
    if fixed || ((m, d) == (12, 24) && date.year() >= 2025) {
        return true;
    }
    let easter = easter_sunday(date.year());
    let offset = (date - easter).num_days();
    // Easter Sunday, Easter Monday, Pentecost Sunday (+49), Corpus Christi (+60).
    matches!(offset, 0 | 1 | 49 | 60)
}

/// True when NBP publishes tables A and C on `date`: Monday–Friday that is not a
/// holiday, from 2002-01-02 on. (Whether it is already published depends on the clock.)
pub fn is_publication_day(date: NaiveDate) -> bool {
    date >= FIRST_TABLE_DAY
        && !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        && !is_polish_holiday(date)
}

/// 1-based ordinal of `date` among the publication days of its year, if it is one.
pub fn publication_ordinal(date: NaiveDate) -> Option<u32> {
    if !is_publication_day(date) {
        return None;
    }
    let jan1 = NaiveDate::from_ymd_opt(date.year(), 1, 1)?;
    let count = jan1
        .iter_days()
        .take_while(|d| *d <= date)
        .filter(|d| is_publication_day(*d))
        .count();
    u32::try_from(count).ok()
}

/// Table number `NNN/X/NBP/YYYY`; A and C share NNN on the same date.
/// `None` when no table is published that day (B is not simulated either).
pub fn table_number(table: Table, date: NaiveDate) -> Option<String> {
    if table == Table::B {
        return None;
    }
    let n = publication_ordinal(date)?;
    Some(format!("{n:03}/{}/NBP/{}", table.letter(), date.year()))
}

/// The last publication day strictly before `date` (table C's trading date), if any.
pub fn previous_publication_day(date: NaiveDate) -> Option<NaiveDate> {
    let mut d = date.pred_opt()?;
    while d >= FIRST_TABLE_DAY {
        if is_publication_day(d) {
            return Some(d);
        }
        d -= Duration::days(1);
    }
    None
}

/// Number of publication days in a calendar year.
pub fn publication_days_in_year(year: i32) -> usize {
    let Some(jan1) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return 0;
    };
    jan1.iter_days()
        .take_while(|d| d.year() == year)
        .filter(|d| is_publication_day(*d))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_dates_match_known_years() {
        assert_eq!(easter_sunday(2024), d(2024, 3, 31));
        assert_eq!(easter_sunday(2025), d(2025, 4, 20));
        assert_eq!(easter_sunday(2026), d(2026, 4, 5));
        assert_eq!(easter_sunday(2019), d(2019, 4, 21));
        assert_eq!(easter_sunday(2038), d(2038, 4, 25));
    }

    #[test]
    fn yearly_counts() {
        assert_eq!(publication_days_in_year(2024), 252);
        assert_eq!(publication_days_in_year(2025), 251);
    }

    #[test]
    fn holidays_and_numbers() {
        assert!(!is_publication_day(d(2025, 12, 24)));
        assert!(is_publication_day(d(2024, 12, 24)));
        assert!(!is_publication_day(d(2025, 6, 19))); // Corpus Christi 2025
        assert!(!is_publication_day(d(2002, 1, 1)));
        assert_eq!(
            table_number(Table::A, d(2002, 1, 2)).as_deref(),
            Some("001/A/NBP/2002")
        );
        assert_eq!(
            table_number(Table::C, d(2025, 1, 7)).as_deref(),
            Some("003/C/NBP/2025")
        );
        assert_eq!(
            table_number(Table::A, d(2025, 12, 31)).as_deref(),
            Some("251/A/NBP/2025")
        );
        assert_eq!(
            previous_publication_day(d(2025, 12, 29)),
            Some(d(2025, 12, 23))
        );
        assert_eq!(previous_publication_day(d(2002, 1, 2)), None);
    }
}
