//! Parsing of NBP JSON replies (pure). Rates are read from their JSON text, never via f64,
//! because the published scale (e.g. `3.9850`) is part of the audit trail.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Table;

/// One row of a per-currency series (`/exchangerates/rates/{table}/{code}/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRow {
    pub no: String,
    pub effective_date: NaiveDate,
    pub mid: Option<Decimal>,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
}

/// A per-currency series, oldest row first (as NBP sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub table: String,
    pub code: String,
    pub rows: Vec<SeriesRow>,
}

#[derive(Deserialize)]
struct RawSeries<'a> {
    table: String,
    code: String,
    #[serde(borrow)]
    rates: Vec<RawRow<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRow<'a> {
    no: String,
    effective_date: String,
    #[serde(borrow, default)]
    mid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    bid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ask: Option<&'a RawValue>,
}

fn opt_decimal(v: Option<&RawValue>, field: &str) -> Result<Option<Decimal>, String> {
    match v {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        // The product's one exact JSON-number parser (never via f64).
        Some(raw) => crate::money::parse_json_number(raw.get())
            .map(Some)
            .map_err(|e| format!("field `{field}`: {e}")),
    }
}

/// Parses a per-currency series reply. Errors describe what is wrong with the body.
pub fn parse_series(body: &str) -> Result<Series, String> {
    let raw: RawSeries<'_> =
        serde_json::from_str(body).map_err(|e| format!("not an NBP rates series: {e}"))?;
    let mut rows = Vec::with_capacity(raw.rates.len());
    for r in raw.rates {
        let effective_date = NaiveDate::parse_from_str(&r.effective_date, "%Y-%m-%d")
            .map_err(|e| format!("effectiveDate `{}`: {e}", r.effective_date))?;
        rows.push(SeriesRow {
            no: r.no,
            effective_date,
            mid: opt_decimal(r.mid, "mid")?,
            bid: opt_decimal(r.bid, "bid")?,
            ask: opt_decimal(r.ask, "ask")?,
        });
    }
    Ok(Series {
        table: raw.table,
        code: raw.code,
        rows,
    })
}

/// Checks that a series answers the question asked: same table and currency, rows in
/// order, positive values of the kind the table carries, well-formed table numbers.
pub fn check_series(series: &Series, table: Table, code: &str) -> Result<(), String> {
    if !series.table.eq_ignore_ascii_case(table.letter()) {
        return Err(format!(
            "asked for table {} but the reply is table `{}`",
            table.letter(),
            series.table
        ));
    }
    if !series.code.eq_ignore_ascii_case(code) {
        return Err(format!(
            "asked for {code} but the reply is for `{}`",
            series.code
        ));
    }
    let mut prev: Option<NaiveDate> = None;
    for row in &series.rows {
        if let Some(p) = prev {
            if row.effective_date <= p {
                return Err(format!(
                    "rows out of order: {} after {p}",
                    row.effective_date
                ));
            }
        }
        prev = Some(row.effective_date);
        check_table_no(&row.no, table)?;
        let values: &[(&str, Option<Decimal>)] = match table {
            Table::A => &[("mid", row.mid)],
            Table::C => &[("bid", row.bid), ("ask", row.ask)],
        };
        for (name, v) in values {
            match v {
                Some(v) if *v > Decimal::ZERO => {}
                Some(v) => {
                    return Err(format!(
                        "{name} {v} on {} is not positive",
                        row.effective_date
                    ))
                }
                None => return Err(format!("{name} missing on {}", row.effective_date)),
            }
        }
    }
    Ok(())
}

/// `NNN/X/NBP/YYYY`, e.g. `041/A/NBP/2025`.
fn check_table_no(no: &str, table: Table) -> Result<(), String> {
    let parts: Vec<&str> = no.split('/').collect();
    let ok = parts.len() == 4
        && parts[0].len() == 3
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1].eq_ignore_ascii_case(table.letter())
        && parts[2] == "NBP"
        && parts[3].len() == 4
        && parts[3].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "table number `{no}` is not of the form NNN/{}/NBP/YYYY",
            table.letter()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_series_keeping_the_published_scale() {
        let body = r#"{"table":"A","currency":"dolar amerykański","code":"USD",
 "rates":[{"no":"003/A/NBP/2030","effectiveDate":"2030-01-04","mid":3.9850}]}"#;
        let s = parse_series(body).unwrap();
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].mid.unwrap().to_string(), "3.9850");
        assert_eq!(s.rows[0].no, "003/A/NBP/2030");
        check_series(&s, Table::A, "usd").unwrap();
    }

    #[test]
    fn parses_table_c_and_scientific_numbers() {
        let body = r#"{"table":"C","currency":"euro","code":"EUR",
 "rates":[{"no":"003/C/NBP/2030","effectiveDate":"2030-01-04","bid":4.158,"ask":4.2e0}]}"#;
        let s = parse_series(body).unwrap();
        assert_eq!(s.rows[0].bid.unwrap().to_string(), "4.158");
        assert_eq!(
            s.rows[0].ask.unwrap(),
            Decimal::from(42) / Decimal::from(10)
        );
        check_series(&s, Table::C, "EUR").unwrap();
    }

    #[test]
    fn rejects_wrong_code_table_and_values() {
        let body = r#"{"table":"A","currency":"euro","code":"EUR",
 "rates":[{"no":"003/A/NBP/2030","effectiveDate":"2030-01-04","mid":0}]}"#;
        let s = parse_series(body).unwrap();
        assert!(check_series(&s, Table::A, "USD")
            .unwrap_err()
            .contains("USD"));
        assert!(check_series(&s, Table::C, "EUR")
            .unwrap_err()
            .contains("table C"));
        assert!(check_series(&s, Table::A, "EUR")
            .unwrap_err()
            .contains("not positive"));
        assert!(parse_series("{not json").is_err());
        assert!(parse_series(r#"{"table":"A","code":"USD","rates":[{"no":"x","effectiveDate":"2030-01-04","mid":"abc"}]}"#).is_err());
    }
}
