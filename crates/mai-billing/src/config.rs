//! Billing configuration: the seller and invoice numbering (the billing file,
//! `billing.toml`), and per-client invoice data and markup, which the fleet file owns
//! (mai-ops builds [`ClientBilling`] from each `[[clients]]` entry; see ARCHITECTURE.md,
//! "One owner per fact"). Money values are TOML strings ("25.00") so they are read exactly.

use std::path::{Path, PathBuf};

use mai_core::money::Currency;
use mai_core::pricing::MarkupSchedule;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::fees::FeeConfig;
use crate::nip::normalise_nip;
use crate::numbering::NumberFormat;
use crate::validate::{check_bank_account, check_number_format_year, client_problems};
use crate::BillingError;

/// Where the PDF font is read from unless the config says otherwise (Debian package
/// `fonts-dejavu-core`; it has every Polish glyph).
pub const DEFAULT_PDF_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// EU member states by ISO 3166 code (the address's `KodKraju`; Greece is `GR` here and
/// `EL` only as a VAT prefix, see [`crate::validate::vies_prefix`]).
pub const EU_MEMBER_STATES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    pub seller: Seller,
    /// Invoice number template, e.g. `FV/{yyyy}/{mm}/{seq:04}`.
    #[serde(default = "default_number_format")]
    pub invoice_number_format: String,
    /// Number template of correction invoices (KOR), a series of their own.
    #[serde(default = "default_correction_number_format")]
    pub correction_number_format: String,
    /// Usage arriving after KSeF accepted its month's invoice: `correction` or `carry`.
    #[serde(default)]
    pub late_usage: crate::compute::LateUsage,
    /// A month whose amounts round to 0.00: `carry` its usage or `waive` it.
    #[serde(default)]
    pub zero_month: crate::compute::ZeroMonth,
    /// Days from the issue date to the payment due date.
    #[serde(default = "default_payment_days")]
    pub payment_days: u32,
    /// TTF font with Polish glyphs for PDF invoices.
    #[serde(default)]
    pub pdf_font: Option<PathBuf>,
    /// Hosting cost per client per month (EUR) used for profit unless a client overrides it.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub default_hosting_eur: Option<Decimal>,
    /// What OpenRouter charges on top of usage (credit purchases, BYOK), for profit.
    #[serde(default)]
    pub fees: FeeConfig,
    /// Filled from the fleet file by mai-ops ([`BillingConfig::with_clients`]); a billing
    /// file that still lists clients is refused by [`BillingConfig::parse`].
    #[serde(default)]
    pub clients: Vec<ClientBilling>,
}

fn default_number_format() -> String {
    "FV/{yyyy}/{mm}/{seq:04}".into()
}
fn default_correction_number_format() -> String {
    "KOR/{yyyy}/{mm}/{seq:04}".into()
}
fn default_payment_days() -> u32 {
    14
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seller {
    pub name: String,
    pub nip: String,
    /// Street and number.
    pub address_line1: String,
    /// Postal code and city.
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default = "default_country")]
    pub country: String,
    /// IBAN or NRB of the account clients pay to.
    pub bank_account: String,
    #[serde(default)]
    pub bank_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

fn default_country() -> String {
    "PL".into()
}

/// VAT treatment of a client's invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VatTreatment {
    /// Polish VAT at this rate in percent (23, 8 or 5).
    Rate(u8),
    /// Service outside Polish VAT ("np"): buyer accounts for VAT (reverse charge).
    ReverseCharge,
}

impl Default for VatTreatment {
    fn default() -> Self {
        VatTreatment::Rate(23)
    }
}

impl TryFrom<String> for VatTreatment {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "np" | "reverse-charge" | "reverse_charge" => Ok(VatTreatment::ReverseCharge),
            "23" => Ok(VatTreatment::Rate(23)),
            "8" => Ok(VatTreatment::Rate(8)),
            "5" => Ok(VatTreatment::Rate(5)),
            other => Err(format!(
                "unsupported VAT setting `{other}`: use \"23\", \"8\", \"5\" or \"np\" (reverse charge)"
            )),
        }
    }
}

impl From<VatTreatment> for String {
    fn from(v: VatTreatment) -> String {
        match v {
            VatTreatment::Rate(r) => r.to_string(),
            VatTreatment::ReverseCharge => "np".into(),
        }
    }
}

impl VatTreatment {
    /// The rate as a fraction (0.23); zero for reverse charge.
    pub fn fraction(self) -> Decimal {
        match self {
            VatTreatment::Rate(r) => Decimal::from(r) / Decimal::from(100),
            VatTreatment::ReverseCharge => Decimal::ZERO,
        }
    }
}

/// Invoice lines: one per model (and markup segment), or one summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineMode {
    #[default]
    ByModel,
    Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBilling {
    /// The org id used in the ledger.
    pub org_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Polish NIP (required for Polish clients).
    #[serde(default)]
    pub nip: Option<String>,
    /// VAT/tax id of a foreign client (without the country prefix for EU VAT numbers).
    #[serde(default)]
    pub vat_id: Option<String>,
    #[serde(default)]
    pub address_line1: Option<String>,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default = "default_country")]
    pub country: String,
    /// Invoice currency: PLN (default) or USD.
    #[serde(default = "default_currency")]
    pub currency: Currency,
    #[serde(default)]
    pub vat: VatTreatment,
    #[serde(default)]
    pub lines: LineMode,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub hosting_eur: Option<Decimal>,
    #[serde(default)]
    pub email: Option<String>,
    /// The client's markup schedule (the fleet file's); invoices price each day at its rate.
    #[serde(default)]
    pub markup: MarkupSchedule,
}

fn default_currency() -> Currency {
    Currency::Pln
}

impl ClientBilling {
    /// Defaults for an org that appears in the ledger but not in the config: numbers can
    /// be shown, but no invoice can be issued (see [`ClientBilling::missing_invoice_data`]).
    pub fn unconfigured(org_id: &str) -> Self {
        ClientBilling {
            org_id: org_id.into(),
            name: None,
            nip: None,
            vat_id: None,
            address_line1: None,
            address_line2: None,
            country: "PL".into(),
            currency: Currency::Pln,
            vat: VatTreatment::default(),
            lines: LineMode::default(),
            hosting_eur: None,
            email: None,
            markup: MarkupSchedule::default(),
        }
    }

    pub fn is_domestic(&self) -> bool {
        self.country.eq_ignore_ascii_case("PL")
    }

    /// A member state for services: Northern Ireland (`XI`) is in the EU VAT area for
    /// goods only (Windsor Framework), so a service there is supplied outside the EU.
    /// `EL` (Greece's VAT prefix given as the country) counts as Greece; the validator
    /// reports it.
    pub fn is_eu(&self) -> bool {
        let c = self.country.trim().to_ascii_uppercase();
        c == "EL" || EU_MEMBER_STATES.contains(&c.as_str())
    }

    /// What an invoice for this client still lacks or has wrong, one sentence each
    /// naming the client, the fleet-file key and the fix (empty = ready to invoice).
    /// The report marks such a client `missing_data`, so issuing skips it, listing
    /// these, while the other clients are issued.
    pub fn missing_invoice_data(&self) -> Vec<String> {
        client_problems(self)
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }
}

impl BillingConfig {
    pub fn load(path: &Path) -> Result<Self, BillingError> {
        let text = std::fs::read_to_string(path).map_err(|e| BillingError::Config {
            path: path.to_path_buf(),
            detail: format!("cannot read it ({e}); create it or pass --billing-config"),
        })?;
        Self::parse(&text).map_err(|detail| BillingError::Config {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses and checks the billing file; the error text says which field is wrong.
    /// Client entries moved to the fleet file: a file that still has them is refused
    /// with a message that says where each field went.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg = Self::parse_with_clients(text)?;
        if !cfg.clients.is_empty() {
            return Err(format!(
                "[[clients]] ({}) is no longer read from the billing file: each client's invoice data now \
                 lives in the fleet file, in its [[clients]] entry (name -> legal_name, address_line1 -> address, \
                 currency -> invoice_currency, lines -> invoice_lines, email -> invoice_email; nip, vat_id, \
                 address_line2, country, vat and hosting_eur keep their names). Move them there and delete \
                 the [[clients]] sections from this file",
                cfg.clients.iter().map(|c| c.org_id.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(cfg)
    }

    /// Parses a whole configuration, clients included, in one text: the form tests and
    /// one-file tools use. Production reads clients from the fleet file instead.
    pub fn parse_with_clients(text: &str) -> Result<Self, String> {
        let cfg: BillingConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    /// This seller configuration with the clients the fleet file defines.
    pub fn with_clients(mut self, clients: Vec<ClientBilling>) -> Result<Self, String> {
        self.clients = clients;
        self.check()?;
        Ok(self)
    }

    pub fn check(&self) -> Result<(), String> {
        normalise_nip(&self.seller.nip).map_err(|e| format!("seller.nip: {e}"))?;
        if self.seller.name.trim().is_empty() {
            return Err("seller.name is empty".into());
        }
        if self.seller.address_line1.trim().is_empty() {
            return Err("seller.address_line1 is empty".into());
        }
        check_bank_account(&self.seller.bank_account)
            .map_err(|e| format!("seller.bank_account {e}"))?;
        NumberFormat::parse(&self.invoice_number_format)
            .map_err(|e| format!("invoice_number_format: {e}"))?;
        check_number_format_year(&self.invoice_number_format)
            .map_err(|e| format!("invoice_number_format {e}"))?;
        self.fees.check(&self.clients)?;
        NumberFormat::parse(&self.correction_number_format)
            .map_err(|e| format!("correction_number_format: {e}"))?;
        check_number_format_year(&self.correction_number_format)
            .map_err(|e| format!("correction_number_format {e}"))?;
        if self.correction_number_format == self.invoice_number_format {
            return Err("correction_number_format must differ from invoice_number_format: corrections are a numbering series of their own (default KOR/{yyyy}/{mm}/{seq:04})".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clients {
            if !seen.insert(c.org_id.as_str()) {
                return Err(format!("clients: org_id `{}` appears twice", c.org_id));
            }
        }
        Ok(())
    }

    pub fn client(&self, org_id: &str) -> Option<&ClientBilling> {
        self.clients.iter().find(|c| c.org_id == org_id)
    }

    pub fn pdf_font_path(&self) -> PathBuf {
        self.pdf_font
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PDF_FONT))
    }
}

/// An account number without spaces (FA(3) `NrRB` is 10–34 characters).
pub fn bank_account_digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELLER: &str = r#"
[seller]
name = "S"
nip = "1234563218"
address_line1 = "ul. A 1"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

    #[test]
    fn defaults_and_client_checks() {
        let cfg = BillingConfig::parse_with_clients(&format!(
            "{SELLER}
[[clients]]
org_id = \"a\"
name = \"A\"
nip = \"9876543210\"
address_line1 = \"ul. B 2\"

[[clients]]
org_id = \"b\"
nip = \"1234563219\"
vat = \"np\"

[[clients]]
org_id = \"c\"
name = \"C Ltd\"
country = \"GB\"
address_line1 = \"1 High St\"
currency = \"USD\"
vat = \"np\"
"
        ))
        .unwrap();
        assert_eq!(cfg.invoice_number_format, "FV/{yyyy}/{mm}/{seq:04}");
        let a = cfg.client("a").unwrap();
        assert_eq!(a.currency, Currency::Pln);
        assert_eq!(a.vat, VatTreatment::Rate(23));
        assert!(a.missing_invoice_data().is_empty());
        let b = cfg.client("b").unwrap().missing_invoice_data().join(" | ");
        assert!(b.contains("name"), "{b}");
        assert!(b.contains("address"), "{b}");
        assert!(b.contains("check digit"), "{b}");
        assert!(b.contains("reverse charge"), "{b}");
        let c = cfg.client("c").unwrap();
        assert!(!c.is_eu());
        let m = c.missing_invoice_data();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("client `c` (C Ltd): `vat_id` is missing") && m[0].contains("fix:"),
            "{m:?}"
        );
    }

    #[test]
    fn rejects_bad_seller_and_settings() {
        let bad_nip = SELLER.replace("1234563218", "1234567890");
        assert!(BillingConfig::parse(&bad_nip)
            .unwrap_err()
            .contains("seller.nip"));
        let bad_vat = format!("{SELLER}\n[[clients]]\norg_id = \"x\"\nvat = \"17\"\n");
        assert!(BillingConfig::parse_with_clients(&bad_vat)
            .unwrap_err()
            .contains("unsupported VAT"));
        let dup = format!("{SELLER}\n[[clients]]\norg_id = \"x\"\n[[clients]]\norg_id = \"x\"\n");
        assert!(BillingConfig::parse_with_clients(&dup)
            .unwrap_err()
            .contains("twice"));
        let moved = format!("{SELLER}\n[[clients]]\norg_id = \"acme\"\n");
        let e = BillingConfig::parse(&moved).unwrap_err();
        assert!(
            e.contains("acme") && e.contains("fleet file") && e.contains("legal_name"),
            "{e}"
        );
        let fmt = format!("invoice_number_format = \"FV/{{yyyy}}\"\n{SELLER}");
        assert!(BillingConfig::parse(&fmt)
            .unwrap_err()
            .contains("invoice_number_format"));
        let no_year = format!("invoice_number_format = \"FV/{{mm}}/{{seq:04}}\"\n{SELLER}");
        let e = BillingConfig::parse(&no_year).unwrap_err();
        assert!(
            e.contains("invoice_number_format") && e.contains("KSeF") && e.contains("{yyyy}"),
            "{e}"
        );
        let bad_iban = SELLER.replace("PL61 1090", "PL62 1090");
        let e = BillingConfig::parse(&bad_iban).unwrap_err();
        assert!(
            e.contains("seller.bank_account") && e.contains("mod 97"),
            "{e}"
        );
        let nrb = SELLER.replace("PL61 1090", "61 1090");
        assert!(BillingConfig::parse(&nrb).is_ok(), "a bare NRB is accepted");
        let float = format!("default_hosting_eur = 25.5\n{SELLER}");
        assert!(
            BillingConfig::parse(&float).is_err(),
            "money must be a string"
        );
    }
}
