//! Checks that run before an invoice number is taken (issue 15, "Validation").
//!
//! KSeF accepts an invoice once and keeps it: a wrong VAT id, a Polish VAT rate on a
//! service that is not taxed in Poland, or an account number with a typo can then only
//! be fixed with a correction invoice. So every such problem is found here, before the
//! store hands out a number, and each message names the client (org id and name), the
//! fleet-file key, what is wrong and the fix.
//!
//! Client data goes through [`client_problems`] (hooked into
//! [`ClientBilling::missing_invoice_data`], which the report uses to keep a client out of
//! issuing while the others are issued); seller data and the number format are checked
//! when the billing file is loaded ([`crate::config::BillingConfig::check`]).

use std::fmt;

use chrono::{Datelike as _, NaiveDate};
use mai_core::money::Currency;
use mai_core::time::YearMonth;

use crate::config::{ClientBilling, VatTreatment};
use crate::nip::normalise_nip;

/// One thing an invoice for a client cannot be issued with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProblem {
    pub org_id: String,
    pub name: Option<String>,
    /// The key in the client's `[[clients]]` entry of the fleet file.
    pub field: &'static str,
    /// What is wrong, with the value as given.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for ClientProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client `{}`", self.org_id)?;
        if let Some(n) = self.name.as_deref().filter(|n| !n.trim().is_empty()) {
            write!(f, " ({n})")?;
        }
        write!(f, ": `{}` {}; fix: {}", self.field, self.problem, self.fix)
    }
}

/// How one member state's VAT number looks in VIES (after its prefix).
struct VatCountry {
    /// ISO 3166 code, as in the address (`KodKraju`).
    iso: &'static str,
    /// VIES / FA(3) `KodUE` prefix: differs from `iso` only for Greece (`EL`).
    prefix: &'static str,
    name: &'static str,
    /// For the operator: the shape in words.
    shape: &'static str,
    /// Alternatives, each a sequence of (class, min, max).
    patterns: &'static [&'static [(Class, u8, u8)]],
}

#[derive(Clone, Copy)]
enum Class {
    Digit,
    Letter,
    Alnum,
    /// One of these characters.
    Set(&'static str),
}

impl Class {
    fn accepts(self, c: char) -> bool {
        match self {
            Class::Digit => c.is_ascii_digit(),
            Class::Letter => c.is_ascii_uppercase(),
            Class::Alnum => c.is_ascii_digit() || c.is_ascii_uppercase(),
            Class::Set(s) => s.contains(c),
        }
    }
}

use Class::{Alnum, Digit, Letter, Set};

/// VIES number formats (European Commission, VIES FAQ "VAT number format"; the same
/// table as the common open-source validators, e.g. python-stdnum). Length and
/// character classes only: the national check digits are VIES's job.
const VAT_COUNTRIES: &[VatCountry] = &[
    VatCountry {
        iso: "AT",
        prefix: "AT",
        name: "Austria",
        shape: "ATU + 8 digits",
        patterns: &[&[(Set("U"), 1, 1), (Digit, 8, 8)]],
    },
    VatCountry {
        iso: "BE",
        prefix: "BE",
        name: "Belgium",
        shape: "BE + 10 digits starting with 0 or 1",
        patterns: &[&[(Set("01"), 1, 1), (Digit, 9, 9)]],
    },
    VatCountry {
        iso: "BG",
        prefix: "BG",
        name: "Bulgaria",
        shape: "BG + 9 or 10 digits",
        patterns: &[&[(Digit, 9, 10)]],
    },
    VatCountry {
        iso: "CY",
        prefix: "CY",
        name: "Cyprus",
        shape: "CY + 8 digits + 1 letter",
        patterns: &[&[(Digit, 8, 8), (Letter, 1, 1)]],
    },
    VatCountry {
        iso: "CZ",
        prefix: "CZ",
        name: "Czechia",
        shape: "CZ + 8, 9 or 10 digits",
        patterns: &[&[(Digit, 8, 10)]],
    },
    VatCountry {
        iso: "DE",
        prefix: "DE",
        name: "Germany",
        shape: "DE + 9 digits",
        patterns: &[&[(Digit, 9, 9)]],
    },
    VatCountry {
        iso: "DK",
        prefix: "DK",
        name: "Denmark",
        shape: "DK + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "EE",
        prefix: "EE",
        name: "Estonia",
        shape: "EE + 9 digits",
        patterns: &[&[(Digit, 9, 9)]],
    },
    VatCountry {
        iso: "GR",
        prefix: "EL",
        name: "Greece",
        shape: "EL + 9 digits",
        patterns: &[&[(Digit, 9, 9)]],
    },
    VatCountry {
        iso: "ES",
        prefix: "ES",
        name: "Spain",
        shape: "ES + 9 characters: a letter or digit, 7 digits, a letter or digit",
        patterns: &[&[(Alnum, 1, 1), (Digit, 7, 7), (Alnum, 1, 1)]],
    },
    VatCountry {
        iso: "FI",
        prefix: "FI",
        name: "Finland",
        shape: "FI + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "FR",
        prefix: "FR",
        name: "France",
        shape: "FR + 2 letters or digits (no O or I) + 9 digits",
        patterns: &[&[
            (Set("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"), 2, 2),
            (Digit, 9, 9),
        ]],
    },
    VatCountry {
        iso: "HR",
        prefix: "HR",
        name: "Croatia",
        shape: "HR + 11 digits",
        patterns: &[&[(Digit, 11, 11)]],
    },
    VatCountry {
        iso: "HU",
        prefix: "HU",
        name: "Hungary",
        shape: "HU + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "IE",
        prefix: "IE",
        name: "Ireland",
        shape: "IE + 7 digits + 1 or 2 letters, or IE + digit, letter/+/*, 5 digits, letter",
        patterns: &[
            &[
                (Digit, 7, 7),
                (Set("ABCDEFGHIJKLMNOPQRSTUVW"), 1, 1),
                (Set("ABCDEFGHIW"), 0, 1),
            ],
            &[
                (Digit, 1, 1),
                (Set("ABCDEFGHIJKLMNOPQRSTUVWXYZ+*"), 1, 1),
                (Digit, 5, 5),
                (Set("ABCDEFGHIJKLMNOPQRSTUVW"), 1, 1),
            ],
        ],
    },
    VatCountry {
        iso: "IT",
        prefix: "IT",
        name: "Italy",
        shape: "IT + 11 digits",
        patterns: &[&[(Digit, 11, 11)]],
    },
    VatCountry {
        iso: "LT",
        prefix: "LT",
        name: "Lithuania",
        shape: "LT + 9 or 12 digits",
        patterns: &[&[(Digit, 9, 9)], &[(Digit, 12, 12)]],
    },
    VatCountry {
        iso: "LU",
        prefix: "LU",
        name: "Luxembourg",
        shape: "LU + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "LV",
        prefix: "LV",
        name: "Latvia",
        shape: "LV + 11 digits",
        patterns: &[&[(Digit, 11, 11)]],
    },
    VatCountry {
        iso: "MT",
        prefix: "MT",
        name: "Malta",
        shape: "MT + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "NL",
        prefix: "NL",
        name: "the Netherlands",
        shape: "NL + 9 digits + B + 2 digits",
        patterns: &[&[(Digit, 9, 9), (Set("B"), 1, 1), (Digit, 2, 2)]],
    },
    VatCountry {
        iso: "PL",
        prefix: "PL",
        name: "Poland",
        shape: "PL + 10 digits (the NIP)",
        patterns: &[&[(Digit, 10, 10)]],
    },
    VatCountry {
        iso: "PT",
        prefix: "PT",
        name: "Portugal",
        shape: "PT + 9 digits",
        patterns: &[&[(Digit, 9, 9)]],
    },
    VatCountry {
        iso: "RO",
        prefix: "RO",
        name: "Romania",
        shape: "RO + 2 to 10 digits",
        patterns: &[&[(Digit, 2, 10)]],
    },
    VatCountry {
        iso: "SE",
        prefix: "SE",
        name: "Sweden",
        shape: "SE + 12 digits ending in 01",
        patterns: &[&[(Digit, 10, 10), (Set("0"), 1, 1), (Set("1"), 1, 1)]],
    },
    VatCountry {
        iso: "SI",
        prefix: "SI",
        name: "Slovenia",
        shape: "SI + 8 digits",
        patterns: &[&[(Digit, 8, 8)]],
    },
    VatCountry {
        iso: "SK",
        prefix: "SK",
        name: "Slovakia",
        shape: "SK + 10 digits",
        patterns: &[&[(Digit, 10, 10)]],
    },
    // Northern Ireland: in VIES for goods (Windsor Framework); FA(3) knows XI both as a
    // country (`KodKraju`) and as an EU prefix (`KodUE`).
    VatCountry {
        iso: "XI",
        prefix: "XI",
        name: "Northern Ireland",
        shape: "XI + 9 or 12 digits, or XIGD/XIHA + 3 digits",
        patterns: &[
            &[(Digit, 9, 9)],
            &[(Digit, 12, 12)],
            &[(Set("G"), 1, 1), (Set("D"), 1, 1), (Digit, 3, 3)],
            &[(Set("H"), 1, 1), (Set("A"), 1, 1), (Digit, 3, 3)],
        ],
    },
];

fn matches_seq(s: &[char], seq: &[(Class, u8, u8)]) -> bool {
    let Some(((class, min, max), rest)) = seq.split_first() else {
        return s.is_empty();
    };
    let run = s
        .iter()
        .take(*max as usize)
        .take_while(|c| class.accepts(**c))
        .count();
    (*min as usize..=run)
        .rev()
        .any(|n| matches_seq(&s[n..], rest))
}

impl VatCountry {
    fn accepts(&self, number: &str) -> bool {
        let chars: Vec<char> = number.chars().collect();
        self.patterns.iter().any(|p| matches_seq(&chars, p))
    }
}

fn by_prefix(prefix: &str) -> Option<&'static VatCountry> {
    VAT_COUNTRIES.iter().find(|c| c.prefix == prefix)
}

fn by_iso(iso: &str) -> Option<&'static VatCountry> {
    VAT_COUNTRIES.iter().find(|c| c.iso == iso)
}

/// The VAT (VIES, FA(3) `KodUE`) prefix of a client's country: `EL` for Greece (whose
/// ISO code is `GR`), `XI` for Northern Ireland, the ISO code for other member states;
/// `None` outside the EU VAT area.
pub fn vies_prefix(country_iso: &str) -> Option<&'static str> {
    let c = country_iso.trim().to_ascii_uppercase();
    // `EL` as a country is a mistake [`client_problems`] reports; still Greece.
    let c = if c == "EL" { "GR".to_string() } else { c };
    by_iso(&c).map(|v| v.prefix)
}

/// A VAT id as VIES writes it: upper case, no spaces, dots, dashes or slashes. `+` and
/// `*` stay (Irish numbers use them).
pub fn normalise_vat_id(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '/' | ',' | '_'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// An EU VAT id split into its prefix and number (`EL` + `123456789`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatUeId {
    pub prefix: &'static str,
    pub number: String,
}

impl fmt::Display for VatUeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix, self.number)
    }
}

/// Why a VAT id was refused: (what is wrong, the fix).
type Refusal = (String, String);

/// The client's VAT-UE id, checked against its country: `Ok(None)` for a client outside
/// the EU VAT area (and for Polish clients, identified by NIP).
pub fn vat_ue_id(c: &ClientBilling) -> Result<Option<VatUeId>, Refusal> {
    if c.is_domestic() {
        return Ok(None);
    }
    let Some(country) = vies_prefix(&c.country).and_then(by_prefix) else {
        return Ok(None);
    };
    let raw = c.vat_id.as_deref().unwrap_or_default();
    parse_vat_ue(country, raw).map(Some)
}

fn parse_vat_ue(country: &'static VatCountry, raw: &str) -> Result<VatUeId, Refusal> {
    let id = normalise_vat_id(raw);
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '*'))
    {
        return Err((
            format!("= {raw:?} contains `{bad}`, which no VAT number has"),
            format!(
                "write the number as VIES shows it: {} (letters and digits only)",
                country.shape
            ),
        ));
    }
    let expected = country.prefix;
    let ok = |number: &str| VatUeId {
        prefix: expected,
        number: number.to_string(),
    };
    if let Some(rest) = id.strip_prefix(expected) {
        if country.accepts(rest) {
            return Ok(ok(rest));
        }
    }
    if country.accepts(&id) {
        return Ok(ok(&id));
    }
    let head: String = id.chars().take(2).collect();
    let rest: String = id.chars().skip(2).collect();
    if country.iso == "GR" && head == "GR" {
        return Err((
            format!("= {raw:?} starts with GR, but Greece's VAT prefix is EL (GR is only its ISO country code)"),
            format!("vat_id = \"EL{rest}\""),
        ));
    }
    if head != expected && head.chars().all(|c| c.is_ascii_uppercase()) {
        let other = by_prefix(&head).or_else(|| by_iso(&head).filter(|v| v.iso != v.prefix));
        if let Some(other) = other {
            return Err((
                format!(
                    "= {raw:?} has the VAT prefix {head} ({}), which contradicts the client's country {} ({})",
                    other.name,
                    country.iso,
                    country.name
                ),
                format!(
                    "if the client is in {}, give its VAT number there ({}); if it is in {}, set country = \"{}\"{}",
                    country.name,
                    country.shape,
                    other.name,
                    other.iso,
                    if other.iso != other.prefix {
                        format!(" and vat_id = \"{}{rest}\"", other.prefix)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    Err((
        format!(
            "= {raw:?} is not a valid VAT number for {}: VIES numbers there are {}",
            country.name, country.shape
        ),
        format!(
            "copy the number from the client's VIES confirmation (ec.europa.eu/taxation_customs/vies), written as {}",
            country.shape
        ),
    ))
}

/// True when FA(3) needs `Podmiot1/PrefiksPodatnika` = `PL`: the XSD documents it for
/// "art. 97 ust. 10 pkt 2 i 3" of the VAT Act, whose point 3 is a service taxed where the
/// buyer is (art. 28b) supplied to a taxable person in another member state — our
/// reverse-charge invoice to an EU business ("np II"). The seller must then use its
/// VAT-UE number, i.e. the NIP with the PL prefix. Not for Northern Ireland: the Windsor
/// Framework keeps it in the EU VAT area for goods only, so services there are outside
/// the EU (the client is not [`ClientBilling::is_eu`]).
pub fn needs_pl_prefix(c: &ClientBilling) -> bool {
    !c.is_domestic() && c.is_eu() && c.vat == VatTreatment::ReverseCharge
}

/// Everything that keeps this client from being invoiced (empty = ready). Field names are
/// the fleet file's keys, so the operator knows which line to edit.
pub fn client_problems(c: &ClientBilling) -> Vec<ClientProblem> {
    let mut out = Vec::new();
    let mut push = |field: &'static str, problem: String, fix: String| {
        out.push(ClientProblem {
            org_id: c.org_id.clone(),
            name: c.name.clone(),
            field,
            problem,
            fix,
        })
    };
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&c.name) {
        push(
            "legal_name",
            "is missing: the buyer's name is required on an invoice".into(),
            "set legal_name to the client's registered name".into(),
        );
    }
    if blank(&c.address_line1) {
        push(
            "address",
            "is missing: the buyer's address is required on an invoice".into(),
            "set address (street and number) and address_line2 (postal code and city)".into(),
        );
    }
    let country = c.country.trim().to_ascii_uppercase();
    let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic());
    if !country_ok {
        push(
            "country",
            format!("= {:?} is not a 2-letter ISO country code", c.country),
            "set country to the ISO 3166 code of the client's seat, e.g. \"PL\", \"DE\", \"GR\""
                .into(),
        );
    } else if country == "EL" {
        push(
            "country",
            "= \"EL\" is Greece's VAT prefix, not its country code (the address needs the ISO code GR)".into(),
            "country = \"GR\" (keep EL only in vat_id)".into(),
        );
    }
    if c.is_domestic() {
        match &c.nip {
            None => push(
                "nip",
                "is missing: a Polish buyer is identified by its NIP".into(),
                "set nip to the client's 10-digit NIP".into(),
            ),
            Some(n) => {
                if let Err(e) = normalise_nip(n) {
                    push(
                        "nip",
                        format!("is not valid: {e}"),
                        "copy the NIP from the client's documents or the MF white list".into(),
                    );
                }
            }
        }
        if c.vat == VatTreatment::ReverseCharge {
            push(
                "vat",
                "= \"np\", but reverse charge applies only to foreign business clients; a Polish client pays Polish VAT".into(),
                "vat = \"23\" (or \"8\"/\"5\" where the law says so)".into(),
            );
        }
    } else if country_ok {
        if blank(&c.vat_id) {
            push(
                "vat_id",
                "is missing: a foreign business buyer is identified by its VAT/tax id".into(),
                match vies_prefix(&country) {
                    Some(p) => format!(
                        "set vat_id to the client's VAT-UE number as VIES shows it ({})",
                        by_prefix(p).map(|v| v.shape).unwrap_or("prefix + number")
                    ),
                    None => "set vat_id to the client's tax id in its country".into(),
                },
            );
        } else if let Err((problem, fix)) = vat_ue_id(c) {
            push("vat_id", problem, fix);
        } else if vies_prefix(&country).is_none() {
            let id = normalise_vat_id(c.vat_id.as_deref().unwrap_or_default());
            if id.is_empty() || id.chars().any(|ch| !ch.is_ascii_alphanumeric()) {
                push(
                    "vat_id",
                    format!(
                        "= {:?} is not a tax id (letters and digits expected)",
                        c.vat_id.as_deref().unwrap_or_default()
                    ),
                    "set vat_id to the client's tax id as its registry shows it".into(),
                );
            }
        }
        if let VatTreatment::Rate(r) = c.vat {
            push(
                "vat",
                format!(
                    "= \"{r}\" (Polish VAT) for a business in {country}: services to a foreign business are taxed where the buyer is established \
                     (VAT Act art. 28b), so Polish VAT is not due and the buyer could not deduct it"
                ),
                "vat = \"np\" (not subject to Polish VAT, reverse charge: the buyer accounts for the VAT)".into(),
            );
        }
    }
    if c.currency == Currency::Eur {
        push(
            "invoice_currency",
            "= \"EUR\" is not supported: invoices are issued in PLN or USD".into(),
            "invoice_currency = \"PLN\" or \"USD\"".into(),
        );
    }
    out
}

/// IBAN lengths by country (SWIFT IBAN registry), for the countries a Polish seller's
/// account can plausibly be in; other countries get the mod-97 check only.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("UA", 29),
    ("VA", 22),
];

/// ISO 7064 mod 97-10 over an IBAN (letters as 10..35, the first four characters moved
/// to the end); a valid IBAN leaves 1.
fn iban_mod97(iban: &str) -> u32 {
    let rotated = iban.chars().skip(4).chain(iban.chars().take(4));
    let mut rem: u32 = 0;
    for ch in rotated {
        let v = ch.to_digit(36).unwrap_or(0);
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

/// Checks the seller's account: an IBAN of any country (mod 97 and, where known, the
/// country's length) or a bare 26-digit Polish NRB (the same check with `PL` in front).
/// Returns the IBAN without spaces.
pub fn check_bank_account(raw: &str) -> Result<String, String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    if s.len() == 26 && s.bytes().all(|b| b.is_ascii_digit()) {
        let iban = format!("PL{s}");
        return if iban_mod97(&iban) == 1 {
            Ok(iban)
        } else {
            Err(format!(
                "`{raw}` is a 26-digit Polish account number (NRB) whose check digits (the first two) do not match the rest: \
                 a digit is mistyped; copy it from a bank statement"
            ))
        };
    }
    // On bytes: a string slice at 2 or 4 could split a character (`€…`) and panic.
    let b = s.as_bytes();
    let looks_iban = b.len() >= 5
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric);
    if !looks_iban {
        return Err(format!(
            "`{raw}` is neither an IBAN (two letters, two check digits, the account: PL61 1090 1014 0000 0712 1981 2874) \
             nor a 26-digit Polish NRB; copy it from a bank statement"
        ));
    }
    let cc = &s[..2];
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc) {
        if s.len() != *len {
            return Err(format!(
                "`{raw}` has {} characters, but a {cc} IBAN has {len}; copy it from a bank statement",
                s.len()
            ));
        }
    } else if s.len() > 34 {
        return Err(format!("`{raw}` is longer than any IBAN (34 characters)"));
    }
    if iban_mod97(&s) != 1 {
        return Err(format!(
            "`{raw}` fails the IBAN check (mod 97): a character is mistyped; copy it from a bank statement"
        ));
    }
    Ok(s)
}

/// KSeF refuses a second invoice with the same seller NIP, kind and number for 10 years
/// (spec ksef-api.md, the duplicate check), and our sequence restarts each year: a
/// number without the year would repeat in January.
pub fn check_number_format_year(template: &str) -> Result<(), String> {
    if template.contains("{yyyy}") || template.contains("{yy}") {
        Ok(())
    } else {
        Err(format!(
            "`{template}` has no year: numbers restart every year, and KSeF refuses a number it already has from this seller \
             (it keeps them for 10 years); add {{yyyy}}, e.g. \"FV/{{yyyy}}/{{mm}}/{{seq:04}}\""
        ))
    }
}

/// The last day to issue the invoice for a month of continuous service: the 15th of the
/// following month (VAT Act art. 106i ust. 1, with art. 19a ust. 3: a service settled
/// in periods is performed on the period's last day).
pub fn issue_deadline(month: YearMonth) -> NaiveDate {
    month
        .next()
        .first_day()
        .with_day0(14)
        .unwrap_or_else(|| month.next().first_day())
}

/// Warn this many days ahead of [`issue_deadline`].
pub const DEADLINE_WARNING_DAYS: i64 = 3;

/// A warning when invoices of `month` are still to be issued and `today` is past the
/// deadline or within [`DEADLINE_WARNING_DAYS`] of it. `pending` are the org ids waiting.
pub fn deadline_warning(month: YearMonth, today: NaiveDate, pending: &[&str]) -> Option<String> {
    if pending.is_empty() {
        return None;
    }
    let deadline = issue_deadline(month);
    let left = (deadline - today).num_days();
    let who = pending.join(", ");
    if left < 0 {
        Some(format!(
            "invoices for {month} are late: the deadline was {deadline} (VAT Act art. 106i ust. 1: the 15th of the month after the service), \
             {} day(s) ago; still to issue: {who}. Issue them now",
            -left
        ))
    } else if left <= DEADLINE_WARNING_DAYS {
        Some(format!(
            "invoices for {month} must be issued by {deadline} (VAT Act art. 106i ust. 1), {}; still to issue: {who}",
            match left {
                0 => "today".to_string(),
                1 => "tomorrow".to_string(),
                n => format!("in {n} days"),
            }
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_strings() {
        let de = by_iso("DE").unwrap();
        assert!(de.accepts("123456789"));
        assert!(!de.accepts("12345678"));
        assert!(!de.accepts("1234567890"));
        let ie = by_iso("IE").unwrap();
        assert!(ie.accepts("6388047V"));
        assert!(ie.accepts("1234567WA"));
        assert!(ie.accepts("8Z49289F"));
        assert!(ie.accepts("1+23456F"));
        assert!(!ie.accepts("1234567"));
        let nl = by_iso("NL").unwrap();
        assert!(nl.accepts("123456789B01"));
        assert!(!nl.accepts("123456789A01"));
    }

    #[test]
    fn an_account_with_a_wide_character_is_refused_not_a_panic() {
        for raw in ["\u{20ac}1234567", "P\u{20ac}345678", "PL1\u{20ac}45678"] {
            assert!(check_bank_account(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn iban_check() {
        assert_eq!(
            check_bank_account("PL61 1090 1014 0000 0712 1981 2874").unwrap(),
            "PL61109010140000071219812874"
        );
        assert_eq!(
            check_bank_account("61 1090 1014 0000 0712 1981 2874").unwrap(),
            "PL61109010140000071219812874"
        );
        assert!(check_bank_account("DE89 3704 0044 0532 0130 00").is_ok());
        assert!(check_bank_account("GB82 WEST 1234 5698 7654 32").is_ok());
        assert!(check_bank_account("PL62 1090 1014 0000 0712 1981 2874").is_err());
        assert!(check_bank_account("62 1090 1014 0000 0712 1981 2874").is_err());
        assert!(check_bank_account("PL61 1090 1014 0000 0712 1981 287").is_err());
        assert!(check_bank_account("12345").is_err());
    }

    #[test]
    fn deadline_is_the_15th_of_the_next_month() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(issue_deadline("2025-12".parse().unwrap()), d("2026-01-15"));
        assert_eq!(issue_deadline("2026-02".parse().unwrap()), d("2026-03-15"));
    }
}
