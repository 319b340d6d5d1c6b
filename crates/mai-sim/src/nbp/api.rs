//! Pure request logic: path → answer or NBP error, against a given Warsaw wall clock.
//! No HTTP here, so every rule can be tested directly.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::nbp::calendar::{self, Table, FIRST_TABLE_DAY};
use crate::nbp::currency::{self, Currency};
use crate::nbp::rates::RateBook;
use crate::nbp::render::{RateValue, Series, SeriesRate, TableRate, WholeTable};

/// Per-currency range limit (inclusive days), as the live service enforces.
pub const RATES_RANGE_DAYS: i64 = 367;
/// Whole-table range limit (inclusive days).
pub const TABLES_RANGE_DAYS: i64 = 93;
/// `rates/…/last/N` maximum.
pub const RATES_LAST_MAX: u32 = 255;
/// `tables/…/last/N` maximum.
pub const TABLES_LAST_MAX: u32 = 67;

/// Publication cut-offs (Warsaw wall clock): before them the day's table does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub a: NaiveTime,
    pub c: NaiveTime,
}

impl Default for Cutoffs {
    fn default() -> Self {
        Cutoffs {
            a: NaiveTime::from_hms_opt(11, 45, 0).expect("valid time"),
            c: NaiveTime::from_hms_opt(7, 45, 0).expect("valid time"),
        }
    }
}

impl Cutoffs {
    fn of(&self, table: Table) -> NaiveTime {
        match table {
            Table::C => self.c,
            Table::A | Table::B => self.a,
        }
    }
}

/// An error the real API answers with (plain text, status, reason phrase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NbpError {
    /// No table for the date/range, unknown currency, or unknown path.
    #[error("404 NotFound - Not Found - Brak danych")]
    NotFound,
    /// startDate after endDate, or a range ending after today.
    #[error("400 BadRequest - Błędny zakres dat / Invalid date range")]
    InvalidRange,
    #[error("400 BadRequest - Przekroczony limit {0} dni / Limit of {0} days has been exceeded")]
    RangeTooLong(i64),
    #[error("400 BadRequest - Przekroczony limit {0} wyników / Maximum size of {0} data series has been exceeded")]
    TooManyResults(u32),
    /// Text not confirmed against the live service.
    #[error("400 BadRequest - Niewłaściwy format daty / Invalid date format")]
    BadDate,
    /// Text not confirmed against the live service (bad table letter, bad topCount…).
    #[error("400 BadRequest - Nieprawidłowe zapytanie / Invalid request")]
    BadRequest,
}

impl NbpError {
    pub fn status(&self) -> u16 {
        match self {
            NbpError::NotFound => 404,
            _ => 400,
        }
    }

    /// The reason phrase of the status line: the body minus its `NNN Word - ` prefix.
    pub fn reason_phrase(&self) -> String {
        let body = self.to_string();
        match body.split_once(" - ") {
            Some((_, rest)) => rest.to_string(),
            None => body,
        }
    }
}

/// Which entry/entries of the publication history a request selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    Current,
    Last(u32),
    Today,
    Date(NaiveDate),
    Range(NaiveDate, NaiveDate),
}

/// A parsed `/api/exchangerates/…` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Rates {
        table: Table,
        code: String,
        selector: Selector,
    },
    Tables {
        table: Table,
        selector: Selector,
    },
}

/// A successful answer, before formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Series(Series),
    Tables(Vec<WholeTable>),
}

impl Answer {
    /// Same answer with every `rates` array emptied (a fault the client must survive).
    pub fn with_empty_rates(mut self) -> Answer {
        match &mut self {
            Answer::Series(s) => s.rates.clear(),
            Answer::Tables(ts) => ts.iter_mut().for_each(|t| t.rates.clear()),
        }
        self
    }
}

/// Strict `YYYY-MM-DD`.
fn parse_date(s: &str) -> Result<NaiveDate, NbpError> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(NbpError::BadDate);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| NbpError::BadDate)
}

fn parse_selector(rest: &[&str], last_max: u32, range_days: i64) -> Result<Selector, NbpError> {
    match rest {
        [] => Ok(Selector::Current),
        [kw] if kw.eq_ignore_ascii_case("today") => Ok(Selector::Today),
        [kw, n] if kw.eq_ignore_ascii_case("last") => {
            let n: u32 = n.parse().map_err(|_| NbpError::BadRequest)?;
            if n == 0 {
                Err(NbpError::BadRequest)
            } else if n > last_max {
                Err(NbpError::TooManyResults(last_max))
            } else {
                Ok(Selector::Last(n))
            }
        }
        [kw] if kw.eq_ignore_ascii_case("last") => Err(NbpError::BadRequest),
        [date] => Ok(Selector::Date(parse_date(date)?)),
        [start, end] => {
            let (start, end) = (parse_date(start)?, parse_date(end)?);
            if start > end {
                return Err(NbpError::InvalidRange);
            }
            if (end - start).num_days() + 1 > range_days {
                return Err(NbpError::RangeTooLong(range_days));
            }
            Ok(Selector::Range(start, end))
        }
        _ => Err(NbpError::NotFound),
    }
}

/// Parses the path (with or without one trailing slash; table, code and keywords in
/// any case). Validation errors (400) come before "no data" (404), except for a path
/// that matches no route at all.
pub fn parse_path(path: &str) -> Result<Request, NbpError> {
    let rest = path.strip_prefix("/api/").ok_or(NbpError::NotFound)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(NbpError::NotFound);
    }
    match segs.as_slice() {
        [root, kind, table, tail @ ..] if root.eq_ignore_ascii_case("exchangerates") => {
            let table = Table::parse(table).ok_or(NbpError::BadRequest)?;
            if kind.eq_ignore_ascii_case("rates") {
                let [code, tail @ ..] = tail else {
                    return Err(NbpError::NotFound);
                };
                let selector = parse_selector(tail, RATES_LAST_MAX, RATES_RANGE_DAYS)?;
                Ok(Request::Rates {
                    table,
                    code: code.to_ascii_uppercase(),
                    selector,
                })
            } else if kind.eq_ignore_ascii_case("tables") {
                let selector = parse_selector(tail, TABLES_LAST_MAX, TABLES_RANGE_DAYS)?;
                Ok(Request::Tables { table, selector })
            } else {
                Err(NbpError::NotFound)
            }
        }
        _ => Err(NbpError::NotFound),
    }
}

/// Whether table `table` of `date` exists at Warsaw wall-clock time `now`.
pub fn is_published(table: Table, date: NaiveDate, now: NaiveDateTime, cutoffs: &Cutoffs) -> bool {
    if table == Table::B || !calendar::is_publication_day(date) {
        return false;
    }
    let today = now.date();
    date < today || (date == today && now.time() >= cutoffs.of(table))
}

/// Publication dates selected by `selector`, oldest first; empty means 404.
pub fn select_dates(
    table: Table,
    selector: Selector,
    now: NaiveDateTime,
    cutoffs: &Cutoffs,
) -> Result<Vec<NaiveDate>, NbpError> {
    let published = |d: NaiveDate| is_published(table, d, now, cutoffs);
    let today = now.date();
    let dates = match selector {
        Selector::Today => vec![today].into_iter().filter(|d| published(*d)).collect(),
        Selector::Date(d) => vec![d].into_iter().filter(|d| published(*d)).collect(),
        Selector::Current | Selector::Last(_) => {
            let want = match selector {
                Selector::Last(n) => n as usize,
                _ => 1,
            };
            let mut found = Vec::with_capacity(want);
            let mut d = today;
            while found.len() < want && d >= FIRST_TABLE_DAY {
                if published(d) {
                    found.push(d);
                }
                d -= Duration::days(1);
            }
            found.reverse();
            found
        }
        Selector::Range(start, end) => {
            // The live service refuses ranges reaching past today (seen in client bug
            // reports as "400 Błędny zakres dat"), rather than answering "no data".
            if end > today {
                return Err(NbpError::InvalidRange);
            }
            start
                .max(FIRST_TABLE_DAY)
                .iter_days()
                .take_while(|d| *d <= end)
                .filter(|d| published(*d))
                .collect()
        }
    };
    if dates.is_empty() {
        Err(NbpError::NotFound)
    } else {
        Ok(dates)
    }
}

fn value(book: &RateBook, table: Table, cur: &Currency, date: NaiveDate) -> RateValue {
    match table {
        Table::C => {
            let (bid, ask) = book
                .rate_c(cur.code, date)
                .expect("table C rate exists on a publication day");
            RateValue::BidAsk { bid, ask }
        }
        Table::A | Table::B => RateValue::Mid(
            book.rate_a(cur.code, date)
                .expect("table A rate exists on a publication day"),
        ),
    }
}

fn number(table: Table, date: NaiveDate) -> String {
    calendar::table_number(table, date).expect("publication day has a number")
}

/// Answers a parsed request from the rate book at Warsaw time `now`.
pub fn answer(
    book: &RateBook,
    request: &Request,
    now: NaiveDateTime,
    cutoffs: &Cutoffs,
) -> Result<Answer, NbpError> {
    match request {
        Request::Rates {
            table,
            code,
            selector,
        } => {
            let cur = currency::in_table(*table, code).ok_or(NbpError::NotFound)?;
            let dates = select_dates(*table, *selector, now, cutoffs)?;
            Ok(Answer::Series(Series {
                table: *table,
                currency: cur.name,
                code: cur.code,
                rates: dates
                    .into_iter()
                    .map(|d| SeriesRate {
                        no: number(*table, d),
                        effective_date: d,
                        value: value(book, *table, cur, d),
                    })
                    .collect(),
            }))
        }
        Request::Tables { table, selector } => {
            let dates = select_dates(*table, *selector, now, cutoffs)?;
            let currencies = currency::table_currencies(*table);
            Ok(Answer::Tables(
                dates
                    .into_iter()
                    .map(|d| WholeTable {
                        table: *table,
                        no: number(*table, d),
                        trading_date: match table {
                            Table::C => calendar::previous_publication_day(d),
                            _ => None,
                        },
                        effective_date: d,
                        rates: currencies
                            .iter()
                            .map(|cur| TableRate {
                                currency: cur.name,
                                code: cur.code,
                                value: value(book, *table, cur, d),
                            })
                            .collect(),
                    })
                    .collect(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_in_every_form() {
        let d = |s: &str| parse_date(s).unwrap();
        assert_eq!(
            parse_path("/api/exchangerates/rates/A/usd/").unwrap(),
            Request::Rates {
                table: Table::A,
                code: "USD".into(),
                selector: Selector::Current
            }
        );
        assert_eq!(
            parse_path("/api/exchangerates/tables/c/2025-01-02/2025-01-31").unwrap(),
            Request::Tables {
                table: Table::C,
                selector: Selector::Range(d("2025-01-02"), d("2025-01-31"))
            }
        );
        assert_eq!(
            parse_path("/api/exchangerates/rates/a/usd/2025-1-02"),
            Err(NbpError::BadDate)
        );
        assert_eq!(
            parse_path("/api/exchangerates/rates/a/usd/last/256"),
            Err(NbpError::TooManyResults(255))
        );
        assert_eq!(
            parse_path("/api/exchangerates/tables/a/last/68"),
            Err(NbpError::TooManyResults(67))
        );
        assert_eq!(
            parse_path("/api/exchangerates/rates/a/usd//"),
            Err(NbpError::NotFound)
        );
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(
            NbpError::NotFound.reason_phrase(),
            "Not Found - Brak danych"
        );
        assert_eq!(
            NbpError::RangeTooLong(367).reason_phrase(),
            "Przekroczony limit 367 dni / Limit of 367 days has been exceeded"
        );
    }
}
