//! Exact money.
//!
//! Amounts are [`Decimal`]s (96-bit mantissa, 28 fractional digits), so OpenRouter's
//! nano-dollar costs add up exactly: a million events of 0.0000001 USD total 0.1 USD,
//! not 0.09999999999. Rounding happens only when presenting or invoicing, and only
//! through [`round_half_up`] / [`round_minor`], so there is one rounding rule in the
//! whole product.
//!
//! JSON numbers (OpenRouter's `cost`, NBP's `mid`) are parsed from their *text* via
//! [`parse_json_number`] and the [`json_number`] serde helpers, never through `f64`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Errors of money parsing and validation. Each names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal number (expected e.g. 0.00066 or 4.25e-6)")]
    NotANumber(String),
    #[error("`{0}` is out of range for an exact decimal (at most 28 significant digits)")]
    OutOfRange(String),
    #[error("unknown currency `{0}`: expected USD, PLN or EUR")]
    UnknownCurrency(String),
}

/// The currencies the product deals in: OpenRouter bills USD, invoices are PLN (or USD),
/// hosting costs are EUR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    Usd,
    Pln,
    Eur,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Pln => "PLN",
            Currency::Eur => "EUR",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "USD" => Ok(Currency::Usd),
            "PLN" => Ok(Currency::Pln),
            "EUR" => Ok(Currency::Eur),
            _ => Err(MoneyError::UnknownCurrency(s.to_string())),
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// An exact amount in a currency. Arithmetic across currencies is a bug, so the
/// checked operations return `None` rather than guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }
    pub fn usd(amount: Decimal) -> Self {
        Money::new(amount, Currency::Usd)
    }
    pub fn pln(amount: Decimal) -> Self {
        Money::new(amount, Currency::Pln)
    }
    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| Money::new(self.amount + other.amount, self.currency))
    }
    /// Rounded half-up to the minor unit (cent, grosz) for presentation or invoicing.
    pub fn rounded(self) -> Money {
        Money::new(round_minor(self.amount), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount.normalize(), self.currency)
    }
}

/// Rounds half away from zero ("half-up" in accounting) to `dp` decimal places.
/// The only rounding function of the product: invoices, CSV and displays call it.
pub fn round_half_up(amount: Decimal, dp: u32) -> Decimal {
    amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Half-up to 0.01: the cent of USD, the grosz of PLN, the cent of EUR.
pub fn round_minor(amount: Decimal) -> Decimal {
    let mut r = round_half_up(amount, 2);
    r.rescale(2);
    r
}

/// Down (toward zero) to 0.01: for caps, which must never allow more than their source
/// (a key's spending cap derived from a client's limit). Lives beside the half-up
/// function so that rounding has one home.
pub fn round_minor_down(amount: Decimal) -> Decimal {
    let mut r = amount.round_dp_with_strategy(2, RoundingStrategy::ToZero);
    r.rescale(2);
    r
}

/// Parses a JSON number's text exactly: plain (`0.00066`), negative, or exponent form
/// (`4.25e-6`, `1E-9`, `2.5e+3`). Never goes through `f64`. The parser is mai-wire's
/// (the seed-compatible wire bodies need it there); this is it with mai-core's error.
pub fn parse_json_number(text: &str) -> Result<Decimal, MoneyError> {
    mai_wire::money::parse_json_number(text).map_err(MoneyError::from)
}

impl From<mai_wire::money::NumberError> for MoneyError {
    fn from(e: mai_wire::money::NumberError) -> Self {
        match e {
            mai_wire::money::NumberError::NotANumber(t) => MoneyError::NotANumber(t),
            mai_wire::money::NumberError::OutOfRange(t) => MoneyError::OutOfRange(t),
        }
    }
}

/// serde helpers: a [`Decimal`] as a JSON *number*, exact text both ways (reads the
/// number's raw text, never `f64`; a quoted number is accepted too), and the same for
/// `Option<Decimal>` (`#[serde(default, with = "json_number_opt")]`). One copy, in
/// mai-wire, because the wire types of the seed-compatible endpoints use them.
pub use mai_wire::money::{json_number, json_number_opt};

/// serde helpers: a [`Decimal`] as a JSON *string* ("0.00066"), our own APIs' choice so
/// that JavaScript consumers never round through doubles.
pub mod json_string {
    pub use rust_decimal::serde::str::{deserialize, serialize};
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_million_tenth_micro_dollars_add_up_to_exactly_ten_cents() {
        let one = parse_json_number("0.0000001").unwrap();
        let total: Decimal = (0..1_000_000).map(|_| one).sum();
        assert_eq!(total, dec!(0.1));
    }

    #[test]
    fn parses_exponent_and_plain_forms_exactly() {
        assert_eq!(parse_json_number("4.25e-6").unwrap(), dec!(0.00000425));
        assert_eq!(parse_json_number("1E-9").unwrap(), dec!(0.000000001));
        assert_eq!(parse_json_number("0.00066").unwrap(), dec!(0.00066));
        assert_eq!(parse_json_number("2.5e+3").unwrap(), dec!(2500));
        assert_eq!(parse_json_number("-0.5").unwrap(), dec!(-0.5));
        assert!(matches!(
            parse_json_number("NaN"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            parse_json_number("Infinity"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(parse_json_number("").is_err());
        assert!(parse_json_number("1e999").is_err());
    }

    #[test]
    fn rounding_is_half_up_at_the_minor_unit() {
        assert_eq!(round_minor(dec!(0.005)), dec!(0.01));
        assert_eq!(round_minor(dec!(0.00499999)), dec!(0.00));
        assert_eq!(round_minor(dec!(-0.005)), dec!(-0.01));
        assert_eq!(round_minor(dec!(12.345)), dec!(12.35));
        assert_eq!(round_minor(dec!(7)).to_string(), "7.00");
    }

    #[test]
    fn currency_parse_names_bad_input() {
        assert_eq!("pln".parse::<Currency>().unwrap(), Currency::Pln);
        let e = "GBP".parse::<Currency>().unwrap_err();
        assert!(e.to_string().contains("GBP"));
    }
}
