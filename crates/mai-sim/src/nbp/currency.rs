//! The currencies the simulated tables carry, with their Polish names and the
//! number of decimals NBP publishes for them.

use crate::nbp::calendar::Table;

/// One currency as listed by NBP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// ISO 4217 code, upper case.
    pub code: &'static str,
    /// Polish name in lower case, exactly as NBP prints it.
    pub name: &'static str,
    /// Decimals of the published per-1-unit rate (4, 6 for small units, 8 for IDR).
    pub scale: u32,
    /// Default centre of the random walk, PLN per 1 unit (overridable in the fixture).
    pub level: &'static str,
}

const fn c(code: &'static str, name: &'static str, scale: u32, level: &'static str) -> Currency {
    Currency {
        code,
        name,
        scale,
        level,
    }
}

/// Table A in NBP's own order (alphabetical by Polish name). Membership is held
/// constant over the whole history; the real table changed a few times.
pub const TABLE_A: &[Currency] = &[
    c("THB", "bat (Tajlandia)", 4, "0.1150"),
    c("USD", "dolar amerykański", 4, "4.0000"),
    c("AUD", "dolar australijski", 4, "2.6000"),
    c("HKD", "dolar Hongkongu", 4, "0.5100"),
    c("CAD", "dolar kanadyjski", 4, "2.9000"),
    c("NZD", "dolar nowozelandzki", 4, "2.3500"),
    c("SGD", "dolar singapurski", 4, "3.0000"),
    c("EUR", "euro", 4, "4.3000"),
    c("HUF", "forint (Węgry)", 6, "0.011000"),
    c("CHF", "frank szwajcarski", 4, "4.5000"),
    c("GBP", "funt szterling", 4, "5.1000"),
    c("UAH", "hrywna (Ukraina)", 4, "0.0970"),
    c("JPY", "jen (Japonia)", 6, "0.026500"),
    c("CZK", "korona czeska", 4, "0.1720"),
    c("DKK", "korona duńska", 4, "0.5760"),
    c("ISK", "korona islandzka", 6, "0.029000"),
    c("NOK", "korona norweska", 4, "0.3700"),
    c("SEK", "korona szwedzka", 4, "0.3800"),
    c("RON", "lej rumuński", 4, "0.8600"),
    c("BGN", "lew (Bułgaria)", 4, "2.2000"),
    c("TRY", "lira turecka", 4, "0.1100"),
    c("ILS", "nowy izraelski szekel", 4, "1.0800"),
    c("CLP", "peso chilijskie", 6, "0.004200"),
    c("PHP", "peso filipińskie", 4, "0.0690"),
    c("MXN", "peso meksykańskie", 4, "0.2100"),
    c("ZAR", "rand (Republika Południowej Afryki)", 4, "0.2200"),
    c("BRL", "real (Brazylia)", 4, "0.7000"),
    c("MYR", "ringgit (Malezja)", 4, "0.9000"),
    c("IDR", "rupia indonezyjska", 8, "0.00024500"),
    c("INR", "rupia indyjska", 4, "0.0470"),
    c("KRW", "won południowokoreański", 6, "0.002850"),
    c("CNY", "yuan renminbi (Chiny)", 4, "0.5500"),
    c("XDR", "SDR (MFW)", 4, "5.3000"),
];

/// Table C in NBP's own order: the 13 currencies NBP buys and sells.
pub const TABLE_C_CODES: &[&str] = &[
    "USD", "AUD", "CAD", "EUR", "HUF", "CHF", "GBP", "JPY", "CZK", "DKK", "NOK", "SEK", "XDR",
];

/// Looks a code up case-insensitively among all simulated currencies.
pub fn find(code: &str) -> Option<&'static Currency> {
    TABLE_A.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// The currencies of a table, in publication order (B is not simulated: empty).
pub fn table_currencies(table: Table) -> Vec<&'static Currency> {
    match table {
        Table::A => TABLE_A.iter().collect(),
        Table::B => Vec::new(),
        Table::C => TABLE_C_CODES.iter().filter_map(|code| find(code)).collect(),
    }
}

/// Whether `code` (any case) is listed in `table`.
pub fn in_table(table: Table, code: &str) -> Option<&'static Currency> {
    match table {
        Table::A => find(code),
        Table::B => None,
        Table::C => TABLE_C_CODES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(code))
            .and_then(|c| find(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_c_has_thirteen_known_currencies() {
        assert_eq!(table_currencies(Table::C).len(), 13);
        assert_eq!(TABLE_A.len(), 33);
        for cur in TABLE_A {
            let level: rust_decimal::Decimal = cur.level.parse().unwrap();
            assert_eq!(level.scale(), cur.scale, "{}", cur.code);
        }
    }
}
