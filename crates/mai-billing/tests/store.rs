//! The billing store: gap-free numbering per seller and year, one VAT invoice per client
//! and month, and issued invoices that cannot be changed.

use chrono::NaiveDate;
use mai_billing::compute::{price, ModelUsage, PriceInput, SegmentUsage, Statement};
use mai_billing::numbering::NumberFormat;
use mai_billing::store::NewInvoice;
use mai_billing::{BillingConfig, BillingError, BillingStore, LineMode, VatTreatment};
use mai_core::money::Currency;
use mai_core::nbp::InvoiceRate;
use mai_core::usage::Totals;
use rust_decimal::Decimal;

const CFG: &str = r#"
[seller]
name = "S"
nip = "1234563218"
address_line1 = "ul. A 1"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
[[clients]]
org_id = "a"
name = "A"
nip = "9876543210"
address_line1 = "ul. B 2"
"#;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn statement(org: &str, month: &str) -> Statement {
    let month: mai_core::time::YearMonth = month.parse().unwrap();
    let rate = InvoiceRate {
        code: "USD".into(),
        mid: Decimal::new(40000, 4),
        table_no: "001/A/NBP/2026".into(),
        effective_date: month.last_day(),
        reference_date: month.last_day(),
    };
    price(&PriceInput {
        org_id: org,
        month,
        segments: vec![SegmentUsage {
            from: month.first_day(),
            to: month.last_day(),
            markup: Decimal::new(13, 1),
            models: vec![ModelUsage {
                model: "m".into(),
                totals: Totals {
                    requests: 1,
                    cost_usd: Decimal::ONE,
                    ..Totals::default()
                },
            }],
        }],
        carry_over: vec![],
        currency: Currency::Pln,
        vat: VatTreatment::Rate(23),
        line_mode: LineMode::ByModel,
        usd_rate: &rate,
        hosting: None,
    })
    .unwrap()
}

fn new_invoice(cfg: &BillingConfig, org: &str, month: &str, issue: NaiveDate) -> NewInvoice {
    let mut buyer = cfg.client("a").unwrap().clone();
    buyer.org_id = org.into();
    NewInvoice {
        issue_date: issue,
        due_date: issue,
        seller: cfg.seller.clone(),
        buyer,
        statement: statement(org, month),
    }
}

#[test]
fn numbers_are_gap_free_per_year_and_never_reused() {
    let cfg = BillingConfig::parse_with_clients(CFG).unwrap();
    let fmt = NumberFormat::parse(&cfg.invoice_number_format).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billing.sqlite");
    let mut store = BillingStore::open(&path).unwrap();
    let mut numbers = Vec::new();
    for (i, org) in ["a", "b", "c"].iter().enumerate() {
        let inv = store
            .issue(
                &fmt,
                new_invoice(&cfg, org, "2026-11", d(2026, 12, 1 + i as u32)),
            )
            .unwrap();
        numbers.push(inv.number);
    }
    assert_eq!(
        numbers,
        ["FV/2026/12/0001", "FV/2026/12/0002", "FV/2026/12/0003"]
    );
    // Same client and month again: refused, and no number is consumed.
    let err = store
        .issue(&fmt, new_invoice(&cfg, "a", "2026-11", d(2026, 12, 5)))
        .unwrap_err();
    assert!(matches!(err, BillingError::AlreadyIssued { .. }), "{err}");
    assert!(err.to_string().contains("FV/2026/12/0001"));
    // A new year starts again at 1; the old year continues where it was.
    let jan = store
        .issue(&fmt, new_invoice(&cfg, "a", "2026-12", d(2027, 1, 4)))
        .unwrap();
    assert_eq!(jan.number, "FV/2027/01/0001");
    drop(store);
    // Reopened from disk: the sequence continues.
    let mut store = BillingStore::open(&path).unwrap();
    let next = store
        .issue(&fmt, new_invoice(&cfg, "d", "2026-11", d(2026, 12, 31)))
        .unwrap();
    assert_eq!(next.number, "FV/2026/12/0004");
    assert_eq!(
        store.sequence("1234563218", 2026).unwrap(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(store.sequence("1234563218", 2027).unwrap(), vec![1]);
    // Stored invoices read back identically.
    assert_eq!(store.get("FV/2026/12/0004").unwrap().unwrap(), next);
}

#[test]
fn issued_invoices_cannot_be_changed_or_deleted() {
    let cfg = BillingConfig::parse_with_clients(CFG).unwrap();
    let fmt = NumberFormat::parse(&cfg.invoice_number_format).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billing.sqlite");
    let mut store = BillingStore::open(&path).unwrap();
    store
        .issue(&fmt, new_invoice(&cfg, "a", "2026-11", d(2026, 12, 1)))
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let upd = conn.execute("UPDATE invoice SET doc = '{}'", []);
    assert!(upd.unwrap_err().to_string().contains("cannot be changed"));
    let del = conn.execute("DELETE FROM invoice", []);
    assert!(del.unwrap_err().to_string().contains("cannot be deleted"));
}
