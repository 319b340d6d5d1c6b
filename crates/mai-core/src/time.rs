//! Calendar days. Business days are Europe/Warsaw calendar days: an event at 00:30
//! Warsaw time belongs to that Warsaw day even though it is the previous UTC day, also
//! on the nights the clocks change. OpenRouter's own counters use UTC days; fields that
//! hold UTC days say so in their names.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Europe::Warsaw;
use serde::{Deserialize, Serialize};

/// The Warsaw calendar day of an instant.
pub fn warsaw_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Warsaw).date_naive()
}

/// The first instant of a Warsaw day (Warsaw's clocks change at 02:00/03:00, never at
/// midnight, so there is exactly one).
pub fn warsaw_midnight(day: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    Warsaw
        .from_local_datetime(&local)
        .earliest()
        .expect("Warsaw midnight is never skipped")
        .with_timezone(&Utc)
}

/// An instant as Warsaw local time with its offset, RFC 3339 (`2026-11-05T14:03:07.250+01:00`):
/// what a person reading an export expects, and still one exact instant.
pub fn warsaw_rfc3339(at: DateTime<Utc>) -> String {
    at.with_timezone(&Warsaw)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// Today in Warsaw.
pub fn warsaw_today() -> NaiveDate {
    warsaw_day(Utc::now())
}

/// A calendar month, e.g. `2026-11`: the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a month: expected YYYY-MM, e.g. 2026-11")]
pub struct BadMonth(pub String);

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| YearMonth { year, month })
    }
    pub fn of(day: NaiveDate) -> Self {
        YearMonth {
            year: day.year(),
            month: day.month(),
        }
    }
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated month")
    }
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("in range")
    }
    pub fn next(self) -> Self {
        if self.month == 12 {
            YearMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
    pub fn prev(self) -> Self {
        if self.month == 1 {
            YearMonth {
                year: self.year - 1,
                month: 12,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month - 1,
            }
        }
    }
    pub fn days(self) -> u32 {
        self.last_day().day()
    }
    pub fn contains(self, day: NaiveDate) -> bool {
        YearMonth::of(day) == self
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMonth(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let y: i32 = y.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        YearMonth::new(y, m).ok_or_else(bad)
    }
}

impl TryFrom<String> for YearMonth {
    type Error = BadMonth;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<YearMonth> for String {
    fn from(m: YearMonth) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn half_past_midnight_warsaw_is_that_warsaw_day_across_dst_changes() {
        // 2026-03-29: clocks go forward at 02:00 CET. 00:30 CET = 23:30 UTC the day before.
        let at = Utc.with_ymd_and_hms(2026, 3, 28, 23, 30, 0).unwrap();
        assert_eq!(
            warsaw_day(at),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        // 2026-10-25: clocks go back at 03:00 CEST. 00:30 CEST = 22:30 UTC the day before.
        let at = Utc.with_ymd_and_hms(2026, 10, 24, 22, 30, 0).unwrap();
        assert_eq!(
            warsaw_day(at),
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()
        );
        // Summer: 23:59 UTC is already the next day in Warsaw.
        let at = Utc.with_ymd_and_hms(2026, 7, 1, 22, 0, 0).unwrap();
        assert_eq!(warsaw_day(at), NaiveDate::from_ymd_opt(2026, 7, 2).unwrap());
    }

    #[test]
    fn months() {
        let m: YearMonth = "2024-02".parse().unwrap();
        assert_eq!(m.days(), 29);
        assert_eq!(m.last_day(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(
            "2026-12".parse::<YearMonth>().unwrap().next().to_string(),
            "2027-01"
        );
        assert!("2026-13".parse::<YearMonth>().is_err());
        assert!("26-1"
            .parse::<YearMonth>()
            .unwrap_err()
            .to_string()
            .contains("26-1"));
    }
}
