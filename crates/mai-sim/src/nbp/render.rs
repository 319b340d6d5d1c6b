//! JSON and XML bodies, written by hand so that field order and the published
//! decimal scale (`3.9850`, never `3.985`) are exactly NBP's.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::nbp::calendar::Table;

/// The value(s) of one rate line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateValue {
    Mid(Decimal),
    BidAsk { bid: Decimal, ask: Decimal },
}

/// One entry of a per-currency series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRate {
    pub no: String,
    pub effective_date: NaiveDate,
    pub value: RateValue,
}

/// A per-currency answer (`/rates/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub table: Table,
    pub currency: &'static str,
    pub code: &'static str,
    pub rates: Vec<SeriesRate>,
}

/// One currency line of a whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRate {
    pub currency: &'static str,
    pub code: &'static str,
    pub value: RateValue,
}

/// One whole table (`/tables/…` answers with an array of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeTable {
    pub table: Table,
    pub no: String,
    /// Only table C has it.
    pub trading_date: Option<NaiveDate>,
    pub effective_date: NaiveDate,
    pub rates: Vec<TableRate>,
}

/// Output format negotiated from `?format=` and `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_value(out: &mut String, v: &RateValue) {
    match v {
        RateValue::Mid(mid) => {
            let _ = write!(out, "\"mid\":{mid}");
        }
        RateValue::BidAsk { bid, ask } => {
            let _ = write!(out, "\"bid\":{bid},\"ask\":{ask}");
        }
    }
}

/// `{"table":"A","currency":"…","code":"USD","rates":[{"no":…,"effectiveDate":…,"mid":…}]}`
pub fn series_json(s: &Series) -> String {
    let mut out = String::with_capacity(96 + 64 * s.rates.len());
    out.push_str("{\"table\":");
    json_str(&mut out, s.table.letter());
    out.push_str(",\"currency\":");
    json_str(&mut out, s.currency);
    out.push_str(",\"code\":");
    json_str(&mut out, s.code);
    out.push_str(",\"rates\":[");
    for (i, r) in s.rates.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"no\":");
        json_str(&mut out, &r.no);
        let _ = write!(out, ",\"effectiveDate\":\"{}\",", r.effective_date);
        json_value(&mut out, &r.value);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// `[{"table":"C","no":…,"tradingDate":…,"effectiveDate":…,"rates":[…]}]`
pub fn tables_json(tables: &[WholeTable]) -> String {
    let mut out = String::with_capacity(2048 * tables.len().max(1));
    out.push('[');
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"table\":");
        json_str(&mut out, t.table.letter());
        out.push_str(",\"no\":");
        json_str(&mut out, &t.no);
        if let Some(trading) = t.trading_date {
            let _ = write!(out, ",\"tradingDate\":\"{trading}\"");
        }
        let _ = write!(
            out,
            ",\"effectiveDate\":\"{}\",\"rates\":[",
            t.effective_date
        );
        for (j, r) in t.rates.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"currency\":");
            json_str(&mut out, r.currency);
            out.push_str(",\"code\":");
            json_str(&mut out, r.code);
            out.push(',');
            json_value(&mut out, &r.value);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

fn xml_text(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>");
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    let _ = write!(out, "</{tag}>");
}

fn xml_value(out: &mut String, v: &RateValue) {
    match v {
        RateValue::Mid(mid) => {
            let _ = write!(out, "<Mid>{mid}</Mid>");
        }
        RateValue::BidAsk { bid, ask } => {
            let _ = write!(out, "<Bid>{bid}</Bid><Ask>{ask}</Ask>");
        }
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
const XML_NS: &str = " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

/// `ExchangeRatesSeries` → `Table`, `Currency`, `Code`, `Rates/Rate/{No,EffectiveDate,Mid|Bid,Ask}`.
pub fn series_xml(s: &Series) -> String {
    let mut out = String::with_capacity(256 + 96 * s.rates.len());
    out.push_str(XML_DECL);
    let _ = write!(out, "<ExchangeRatesSeries{XML_NS}>");
    xml_text(&mut out, "Table", s.table.letter());
    xml_text(&mut out, "Currency", s.currency);
    xml_text(&mut out, "Code", s.code);
    out.push_str("<Rates>");
    for r in &s.rates {
        out.push_str("<Rate>");
        xml_text(&mut out, "No", &r.no);
        xml_text(&mut out, "EffectiveDate", &r.effective_date.to_string());
        xml_value(&mut out, &r.value);
        out.push_str("</Rate>");
    }
    out.push_str("</Rates></ExchangeRatesSeries>");
    out
}

/// `ArrayOfExchangeRatesTable/ExchangeRatesTable/{Table,No,TradingDate?,EffectiveDate,Rates/Rate/…}`.
pub fn tables_xml(tables: &[WholeTable]) -> String {
    let mut out = String::with_capacity(4096 * tables.len().max(1));
    out.push_str(XML_DECL);
    let _ = write!(out, "<ArrayOfExchangeRatesTable{XML_NS}>");
    for t in tables {
        out.push_str("<ExchangeRatesTable>");
        xml_text(&mut out, "Table", t.table.letter());
        xml_text(&mut out, "No", &t.no);
        if let Some(trading) = t.trading_date {
            xml_text(&mut out, "TradingDate", &trading.to_string());
        }
        xml_text(&mut out, "EffectiveDate", &t.effective_date.to_string());
        out.push_str("<Rates>");
        for r in &t.rates {
            out.push_str("<Rate>");
            xml_text(&mut out, "Currency", r.currency);
            xml_text(&mut out, "Code", r.code);
            xml_value(&mut out, &r.value);
            out.push_str("</Rate>");
        }
        out.push_str("</Rates></ExchangeRatesTable>");
    }
    out.push_str("</ArrayOfExchangeRatesTable>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn spec_examples_render_byte_for_byte() {
        let d = |s: &str| NaiveDate::from_str(s).unwrap();
        let dec = |s: &str| Decimal::from_str(s).unwrap();
        let s = Series {
            table: Table::A,
            currency: "dolar amerykański",
            code: "USD",
            rates: vec![SeriesRate {
                no: "003/A/NBP/2030".into(),
                effective_date: d("2030-01-04"),
                value: RateValue::Mid(dec("3.9000")),
            }],
        };
        assert_eq!(
            series_json(&s),
            r#"{"table":"A","currency":"dolar amerykański","code":"USD","rates":[{"no":"003/A/NBP/2030","effectiveDate":"2030-01-04","mid":3.9000}]}"#
        );
        let t = WholeTable {
            table: Table::C,
            no: "003/C/NBP/2030".into(),
            trading_date: Some(d("2030-01-03")),
            effective_date: d("2030-01-04"),
            rates: vec![TableRate {
                currency: "dolar amerykański",
                code: "USD",
                value: RateValue::BidAsk {
                    bid: dec("3.8610"),
                    ask: dec("3.9390"),
                },
            }],
        };
        assert_eq!(
            tables_json(&[t]),
            r#"[{"table":"C","no":"003/C/NBP/2030","tradingDate":"2030-01-03","effectiveDate":"2030-01-04","rates":[{"currency":"dolar amerykański","code":"USD","bid":3.8610,"ask":3.9390}]}]"#
        );
    }
}
