//! Exports of a month: CSV (two dialects), a PDF invoice per client, KSeF FA(3) XML.
//! Renderers are pure (data in, bytes out); writing files is the service's job.

pub mod csv;
pub mod ksef;
pub mod pdf;

use rust_decimal::Decimal;

/// Each invoice line is one service for its period: unit `usł.` (usługa), quantity 1, so
/// the net unit price is the line's net. FA(3) (`P_8A`, `P_8B`, `P_9A`) and the PDF print
/// the same.
pub const LINE_UNIT: &str = "usł.";
pub const LINE_QUANTITY: u32 = 1;

/// An amount with exactly two decimals, dot separator (`1234.50`), as XML wants it.
pub fn fixed2(d: Decimal) -> String {
    let mut r = mai_core::money::round_minor(d);
    r.rescale(2);
    r.to_string()
}

/// Polish presentation: `1 234,50` (space thousands separator, decimal comma).
pub fn format_pl(d: Decimal) -> String {
    let s = fixed2(d);
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest.to_string()),
        None => ("", s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped},{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn formats() {
        assert_eq!(fixed2(dec!(1234.5)), "1234.50");
        assert_eq!(fixed2(dec!(0.005)), "0.01");
        assert_eq!(format_pl(dec!(1234567.891)), "1 234 567,89");
        assert_eq!(format_pl(dec!(-12.3)), "-12,30");
        assert_eq!(format_pl(dec!(999)), "999,00");
    }
}
