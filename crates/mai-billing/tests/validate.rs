//! Validation before a number is taken: VAT-UE ids per member state (EL/GR, XI, prefix
//! contradictions), foreign businesses on Polish VAT, the seller's account (IBAN / NRB),
//! the number format's year, FA(3)'s PrefiksPodatnika, the art. 106i deadline; and the
//! hook: an invalid client is listed with its problems and not issued, the others are.

mod common;

use chrono::NaiveDate;
use common::{d, event};
use mai_billing::config::{BillingConfig, ClientBilling, VatTreatment};
use mai_billing::report::{build_report, prepare_month, InvoiceRates, RowStatus};
use mai_billing::store::BillingStore;
use mai_billing::validate::{
    check_bank_account, client_problems, deadline_warning, issue_deadline, needs_pl_prefix,
    normalise_vat_id, vat_ue_id,
};
use mai_core::ledger::Ledger;
use mai_core::money::Currency;
use mai_core::nbp::InvoiceRate;
use mai_core::time::YearMonth;
use rust_decimal_macros::dec;

fn client(org: &str, country: &str, vat_id: Option<&str>, vat: VatTreatment) -> ClientBilling {
    ClientBilling {
        name: Some(format!("{org} Ltd")),
        vat_id: vat_id.map(str::to_string),
        address_line1: Some("Main Street 1".into()),
        country: country.into(),
        currency: Currency::Usd,
        vat,
        ..ClientBilling::unconfigured(org)
    }
}

fn eu(country: &str, vat_id: &str) -> ClientBilling {
    client("x", country, Some(vat_id), VatTreatment::ReverseCharge)
}

#[test]
fn vat_ue_ids_are_normalised_and_checked_per_member_state() {
    assert_eq!(normalise_vat_id(" de 123.456-789 "), "DE123456789");
    let ok = [
        ("DE", "de 123.456.789", "DE123456789"),
        ("DE", "123456789", "DE123456789"),
        ("AT", "ATU12345678", "ATU12345678"),
        ("BE", "BE 0123.456.789", "BE0123456789"),
        ("GR", "EL123456789", "EL123456789"),
        ("GR", "123456789", "EL123456789"),
        ("FR", "FR XX 123456789", "FRXX123456789"),
        ("NL", "NL123456789B01", "NL123456789B01"),
        ("IE", "IE6388047V", "IE6388047V"),
        ("IE", "IE1234567WA", "IE1234567WA"),
        ("ES", "ES-X1234567A", "ESX1234567A"),
        ("SE", "SE 1234567890 01", "SE123456789001"),
        ("CY", "CY12345678L", "CY12345678L"),
        ("LT", "LT123456789012", "LT123456789012"),
        ("XI", "XI 123 4567 89", "XI123456789"),
        ("XI", "XIGD123", "XIGD123"),
    ];
    for (country, raw, want) in ok {
        let got = vat_ue_id(&eu(country, raw))
            .unwrap_or_else(|e| panic!("{country} {raw}: {e:?}"))
            .unwrap();
        assert_eq!(got.to_string(), want, "{country} {raw}");
    }
    let bad = [
        ("DE", "DE12345678", "DE + 9 digits"),
        ("AT", "AT12345678", "ATU + 8 digits"),
        ("SE", "SE123456789012", "ending in 01"),
        ("NL", "NL123456789A01", "B + 2 digits"),
        ("FR", "FROI123456789", "no O or I"),
        ("DE", "DE 123#456789", "`#`"),
    ];
    for (country, raw, says) in bad {
        let (problem, fix) = vat_ue_id(&eu(country, raw)).unwrap_err();
        assert!(
            format!("{problem} {fix}").contains(says),
            "{country} {raw}: {problem} / {fix}"
        );
    }
}

#[test]
fn greece_is_gr_as_a_country_and_el_as_a_vat_prefix() {
    let (problem, fix) = vat_ue_id(&eu("GR", "GR123456789")).unwrap_err();
    assert!(
        problem.contains("EL") && problem.contains("GR"),
        "{problem}"
    );
    assert_eq!(fix, "vat_id = \"EL123456789\"");
    let el_country = client_problems(&eu("EL", "EL123456789"));
    assert_eq!(el_country.len(), 1, "{el_country:?}");
    assert_eq!(el_country[0].field, "country");
    assert!(el_country[0].fix.contains("country = \"GR\""));
}

#[test]
fn a_prefix_that_contradicts_the_country_names_both_and_the_fix() {
    let (problem, fix) = vat_ue_id(&eu("DE", "FR12345678901")).unwrap_err();
    assert!(
        problem.contains("FR (France)") && problem.contains("DE (Germany)"),
        "{problem}"
    );
    assert!(
        fix.contains("DE + 9 digits") && fix.contains("country = \"FR\""),
        "{fix}"
    );
    // A Greek number given to a German client: the fix names GR as the country.
    let (_, fix) = vat_ue_id(&eu("DE", "EL123456789")).unwrap_err();
    assert!(fix.contains("country = \"GR\""), "{fix}");
}

#[test]
fn each_problem_names_the_client_the_fleet_key_and_the_fix() {
    let c = ClientBilling {
        name: Some("Muster GmbH".into()),
        ..eu("DE", "DE12345678")
    };
    let c = ClientBilling {
        org_id: "gmbh".into(),
        ..c
    };
    let p = client_problems(&c);
    assert_eq!(p.len(), 1, "{p:?}");
    let msg = p[0].to_string();
    assert!(
        msg.starts_with("client `gmbh` (Muster GmbH): `vat_id` = \"DE12345678\" is not a valid VAT number for Germany"),
        "{msg}"
    );
    assert!(msg.contains("; fix: "), "{msg}");
    // missing_invoice_data (the report's pre-issue check) carries the same sentences.
    assert_eq!(c.missing_invoice_data(), vec![msg]);
}

#[test]
fn a_foreign_business_on_polish_vat_is_refused_with_the_reason() {
    for (country, vat_id) in [("DE", "DE123456789"), ("US", "98-7654321")] {
        let c = client("f", country, Some(vat_id), VatTreatment::Rate(23));
        let p = client_problems(&c);
        assert_eq!(p.len(), 1, "{country}: {p:?}");
        assert_eq!(p[0].field, "vat");
        assert!(
            p[0].problem.contains("art. 28b") && p[0].problem.contains("\"23\""),
            "{}",
            p[0].problem
        );
        assert!(p[0].fix.starts_with("vat = \"np\""), "{}", p[0].fix);
        let ok = client("f", country, Some(vat_id), VatTreatment::ReverseCharge);
        assert!(client_problems(&ok).is_empty(), "{country}");
    }
    // And the other way round: reverse charge for a Polish client.
    let pl = ClientBilling {
        nip: Some("9876543210".into()),
        ..client("pl", "PL", None, VatTreatment::ReverseCharge)
    };
    let p = client_problems(&pl);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].field, "vat");
}

#[test]
fn fa3_pl_prefix_only_for_eu_reverse_charge_services() {
    assert!(needs_pl_prefix(&eu("DE", "DE123456789")));
    assert!(needs_pl_prefix(&eu("GR", "EL123456789")));
    // Northern Ireland is in the EU VAT area for goods only: a service there is not.
    assert!(!needs_pl_prefix(&eu("XI", "XI123456789")));
    assert!(!needs_pl_prefix(&client(
        "us",
        "US",
        Some("123"),
        VatTreatment::ReverseCharge
    )));
    assert!(!needs_pl_prefix(&client(
        "de",
        "DE",
        Some("DE123456789"),
        VatTreatment::Rate(23)
    )));
    let pl = ClientBilling {
        nip: Some("9876543210".into()),
        ..client("pl", "PL", None, VatTreatment::Rate(23))
    };
    assert!(!needs_pl_prefix(&pl));
}

#[test]
fn seller_account_iban_and_nrb() {
    // Valid: Polish IBAN (with and without spaces), the bare NRB, foreign IBANs.
    for ok in [
        "PL61 1090 1014 0000 0712 1981 2874",
        "pl61109010140000071219812874",
        "61 1090 1014 0000 0712 1981 2874",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "NO93 8601 1117 947",
    ] {
        assert!(check_bank_account(ok).is_ok(), "{ok}");
    }
    let e = check_bank_account("61 1090 1014 0000 0712 1981 2875").unwrap_err();
    assert!(e.contains("NRB") && e.contains("check digits"), "{e}");
    let e = check_bank_account("PL61 1090 1014 0000 0712 1981 287").unwrap_err();
    assert!(e.contains("PL IBAN has 28"), "{e}");
    let e = check_bank_account("DE88 3704 0044 0532 0130 00").unwrap_err();
    assert!(e.contains("mod 97"), "{e}");
}

const SELLER: &str = r#"
[seller]
name = "S"
nip = "1234563218"
address_line1 = "ul. A 1"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

#[test]
fn the_number_format_must_carry_the_year_and_is_refused_at_load() {
    for ok in [
        "FV/{yyyy}/{mm}/{seq:04}",
        "{seq}/{yy}",
        "F-{yy}{mm}-{seq:05}",
    ] {
        let text = format!("invoice_number_format = \"{ok}\"\n{SELLER}");
        assert!(BillingConfig::parse(&text).is_ok(), "{ok}");
    }
    let text = format!("invoice_number_format = \"FV/{{mm}}/{{seq:04}}\"\n{SELLER}");
    let e = BillingConfig::parse(&text).unwrap_err();
    assert!(
        e.contains("invoice_number_format")
            && e.contains("10 years")
            && e.contains("\"FV/{yyyy}/{mm}/{seq:04}\""),
        "{e}"
    );
    let bad = SELLER.replace("PL61", "PL16");
    let e = BillingConfig::parse(&bad).unwrap_err();
    assert!(e.starts_with("seller.bank_account"), "{e}");
}

#[test]
fn issue_deadline_and_its_warning() {
    let dec: YearMonth = "2025-12".parse().unwrap();
    assert_eq!(issue_deadline(dec), d("2026-01-15"));
    assert_eq!(issue_deadline("2026-01".parse().unwrap()), d("2026-02-15"));
    let pending = ["acme", "beta"];
    assert_eq!(deadline_warning(dec, d("2026-01-11"), &pending), None);
    let w = deadline_warning(dec, d("2026-01-12"), &pending).unwrap();
    assert!(
        w.contains("2026-01-15") && w.contains("in 3 days") && w.contains("acme, beta"),
        "{w}"
    );
    let w = deadline_warning(dec, d("2026-01-15"), &pending).unwrap();
    assert!(w.contains("today"), "{w}");
    let w = deadline_warning(dec, d("2026-01-17"), &pending).unwrap();
    assert!(w.contains("late") && w.contains("2 day(s) ago"), "{w}");
    assert_eq!(
        deadline_warning(dec, d("2026-01-17"), &[]),
        None,
        "nothing pending"
    );
}

fn rates() -> InvoiceRates {
    InvoiceRates {
        usd: InvoiceRate {
            code: "USD".into(),
            mid: dec!(4.0000),
            table_no: "250/A/NBP/2025".into(),
            effective_date: d("2025-12-30"),
            reference_date: d("2025-12-31"),
        },
        eur: None,
    }
}

/// The hook: a client with a wrong VAT id is `missing_data` with its problem, skipped
/// by issuing (no number taken), while the valid clients are issued.
#[test]
fn an_invalid_client_is_listed_and_skipped_the_others_are_issued() {
    let cfg = BillingConfig::parse_with_clients(&format!(
        r#"{SELLER}
[[clients]]
org_id = "acme"
name = "Acme Sp. z o.o."
nip = "9876543210"
address_line1 = "ul. B 2"

[[clients]]
org_id = "gmbh"
name = "Muster GmbH"
country = "DE"
vat_id = "DE 1234 5678"
address_line1 = "Hauptstraße 1"
currency = "USD"
vat = "np"

[[clients]]
org_id = "athens"
name = "Hellas AE"
country = "GR"
vat_id = "EL123456789"
address_line1 = "Odos 1"
currency = "USD"
vat = "23"
"#
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let day = d("2025-12-10");
    ledger
        .record_batch(&[
            event("acme", "g1", "m", day, dec!(10)),
            event("gmbh", "g2", "m", day, dec!(20)),
            event("athens", "g3", "m", day, dec!(30)),
        ])
        .unwrap();
    let mut store = BillingStore::open(&dir.path().join("store.sqlite")).unwrap();
    let month: YearMonth = "2025-12".parse().unwrap();
    let today: NaiveDate = d("2026-01-13");
    let r = rates();
    let report = build_report(&cfg, &ledger, &store, month, today, Ok(&r), None).unwrap();
    let row = |org: &str| report.clients.iter().find(|c| c.org_id == org).unwrap();
    assert_eq!(row("acme").status, RowStatus::ReadyToIssue);
    assert_eq!(row("gmbh").status, RowStatus::MissingData);
    assert!(
        row("gmbh").missing[0]
            .starts_with("client `gmbh` (Muster GmbH): `vat_id` = \"DE 1234 5678\""),
        "{:?}",
        row("gmbh").missing
    );
    assert_eq!(row("athens").status, RowStatus::MissingData);
    assert!(
        row("athens")
            .missing
            .iter()
            .any(|m| m.contains("`vat`") && m.contains("art. 28b")),
        "{:?}",
        row("athens").missing
    );
    assert_eq!(report.issue_deadline, d("2026-01-15"));
    let w = report.deadline_warning.as_deref().unwrap();
    assert!(
        w.contains("in 2 days") && w.contains("acme, athens, gmbh"),
        "{w}"
    );

    let out = prepare_month(
        &cfg,
        &ledger,
        &mut store,
        month,
        d("2026-01-13"),
        today,
        Some(&r),
        None,
        false,
    )
    .unwrap();
    let issued: Vec<&str> = out.ready.iter().map(|i| i.org_id.as_str()).collect();
    assert_eq!(issued, ["acme"]);
    assert_eq!(out.ready[0].number, "FV/2026/01/0001");
    // Invalid clients get no number: listed as problems (or not issued) with the reasons.
    let skipped: Vec<(String, String)> = out
        .problems
        .iter()
        .map(|p| (p.org_id.clone(), p.messages.join(" | ")))
        .chain(
            out.not_issued
                .iter()
                .map(|n| (n.org_id.clone(), n.reason.clone())),
        )
        .collect();
    let skipped: Vec<(&str, &str)> = skipped
        .iter()
        .map(|(o, r)| (o.as_str(), r.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(o, r)| *o == "gmbh" && r.contains("DE + 9 digits")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|(o, r)| *o == "athens" && r.contains("vat = \"np\"")),
        "{skipped:?}"
    );
}
