//! The billing store: numbers reserved only by a successful preparation, gap-free per
//! seller, series and year; the KSeF state machine and its history; what the database
//! itself refuses; the upgrade of a version 1 store.

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{ksef_number, ksef_ref};
use mai_billing::compute::{price, ModelUsage, PriceInput, SegmentUsage, Statement};
use mai_billing::numbering::NumberFormat;
use mai_billing::store::NewInvoice;
use mai_billing::{
    BillingConfig, BillingError, BillingStore, InvoiceKind, IssuedInvoice, KsefAcceptance,
    KsefDuplicate, KsefRejection, KsefState, KsefSubmission, LineMode, VatTreatment,
};
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
        kind: InvoiceKind::Vat,
        issue_date: issue,
        due_date: issue,
        seller: cfg.seller.clone(),
        buyer,
        statement: statement(org, month),
        correction: None,
    }
}

/// Stands in for the FA(3) rendering and schema check: the store only keeps the bytes.
fn bytes(inv: &IssuedInvoice) -> Result<Vec<u8>, BillingError> {
    Ok(format!("<Faktura>{}</Faktura>", inv.number).into_bytes())
}

fn setup() -> (
    BillingConfig,
    NumberFormat,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let cfg = BillingConfig::parse_with_clients(CFG).unwrap();
    let fmt = NumberFormat::parse(&cfg.invoice_number_format).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billing.sqlite");
    (cfg, fmt, dir, path)
}

fn accepted(n: u64, day: NaiveDate) -> KsefAcceptance {
    KsefAcceptance {
        ksef_number: ksef_number("1234563218", day, n),
        acquisition_date: Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap()),
        session_ref: ksef_ref("SO", n),
        invoice_ref: ksef_ref("EE", n),
        upo_xml: None,
    }
}

fn sent(store: &BillingStore, number: &str, n: u64) -> KsefSubmission {
    KsefSubmission {
        session_ref: ksef_ref("SO", n),
        invoice_ref: ksef_ref("EE", n),
        xml_sha256: common::sent_hash(store, number),
    }
}

#[test]
fn numbers_are_reserved_gap_free_per_year_and_never_reused() {
    let (cfg, fmt, _dir, path) = setup();
    let mut store = BillingStore::open(&path).unwrap();
    let mut numbers = Vec::new();
    for (i, org) in ["a", "b", "c"].iter().enumerate() {
        let inv = store
            .prepare(
                &fmt,
                new_invoice(&cfg, org, "2026-11", d(2026, 12, 1 + i as u32)),
                &mut bytes,
            )
            .unwrap();
        assert_eq!(inv.state(), Some(KsefState::Prepared));
        numbers.push(inv.number);
    }
    assert_eq!(
        numbers,
        ["FV/2026/12/0001", "FV/2026/12/0002", "FV/2026/12/0003"]
    );
    // Same client and month again: refused, and no number is consumed.
    let err = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 5)),
            &mut bytes,
        )
        .unwrap_err();
    assert!(matches!(err, BillingError::AlreadyIssued { .. }), "{err}");
    assert!(err.to_string().contains("FV/2026/12/0001"));
    // A refused rendering (e.g. the schema check) takes no number either.
    let err = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "x", "2026-11", d(2026, 12, 5)),
            &mut |inv| {
                Err(BillingError::InvoiceInvalid {
                    org_id: "x".into(),
                    number: inv.number.clone(),
                    issues: vec![],
                })
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("FV/2026/12/0004"), "{err}");
    // A new year starts again at 1; the old year continues where it was.
    let jan = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-12", d(2027, 1, 4)),
            &mut bytes,
        )
        .unwrap();
    assert_eq!(jan.number, "FV/2027/01/0001");
    drop(store);
    // Reopened from disk: the sequence continues, the refused attempt left no trace.
    let mut store = BillingStore::open(&path).unwrap();
    let next = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "d", "2026-11", d(2026, 12, 31)),
            &mut bytes,
        )
        .unwrap();
    assert_eq!(next.number, "FV/2026/12/0004");
    assert_eq!(
        store.sequence("1234563218", 2026).unwrap(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(store.sequence("1234563218", 2027).unwrap(), vec![1]);
    // Stored invoices read back identically, with the bytes the renderer gave.
    assert_eq!(store.get("FV/2026/12/0004").unwrap().unwrap(), next);
    assert_eq!(
        store.xml("FV/2026/12/0004").unwrap().unwrap(),
        b"<Faktura>FV/2026/12/0004</Faktura>"
    );
    // Nothing is issued until KSeF accepts it.
    assert!(store
        .issued_sequence("1234563218", InvoiceKind::Vat, 2026)
        .unwrap()
        .is_empty());
}

#[test]
fn the_ksef_state_machine_records_every_step_and_refuses_the_impossible() {
    let (cfg, fmt, _dir, path) = setup();
    let mut store = BillingStore::open(&path).unwrap();
    let inv = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 1)),
            &mut bytes,
        )
        .unwrap();
    let n = inv.number.as_str();
    // Accepting needs a KSeF number of this seller.
    let mut wrong = accepted(1, d(2026, 12, 1));
    wrong.ksef_number = ksef_number("9876543210", d(2026, 12, 1), 1);
    let e = store.record_accepted(n, &wrong).unwrap_err().to_string();
    assert!(e.contains("not a KSeF number of seller 1234563218"), "{e}");
    // A 440 is not a rejection.
    let e = store
        .record_rejected(
            n,
            &KsefRejection {
                code: 440,
                description: "Duplikat faktury".into(),
                details: vec![],
                session_ref: None,
                invoice_ref: None,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("record_duplicate"), "{e}");
    // Only the stored bytes may have been sent.
    let mut other = sent(&store, n, 1);
    other.xml_sha256 = mai_billing::store::sha256_hex(b"<Faktura>something else</Faktura>");
    let e = store.record_sent(n, &other).unwrap_err().to_string();
    assert!(e.contains("not the XML stored"), "{e}");
    store.record_sent(n, &sent(&store, n, 1)).unwrap();
    store.record_sent(n, &sent(&store, n, 1)).unwrap(); // the same answer twice: no-op
    store.record_sent(n, &sent(&store, n, 2)).unwrap(); // a new session: a second attempt
    store
        .record_accepted(n, &accepted(2, d(2026, 12, 1)))
        .unwrap();
    store
        .record_accepted(n, &accepted(2, d(2026, 12, 1)))
        .unwrap(); // idempotent
    let e = store
        .record_accepted(n, &accepted(3, d(2026, 12, 1)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("accepted it as"), "{e}");
    let e = store
        .record_sent(n, &sent(&store, n, 4))
        .unwrap_err()
        .to_string();
    assert!(e.contains("KSeF already accepted it"), "{e}");
    store.record_upo(n, "<Potwierdzenie/>").unwrap();
    assert!(store.record_upo(n, "<Inne/>").is_err());
    assert_eq!(store.upo(n).unwrap().as_deref(), Some("<Potwierdzenie/>"));

    let got = store.get(n).unwrap().unwrap();
    let k = got.ksef.unwrap();
    assert_eq!(k.state, KsefState::Accepted);
    assert_eq!(
        k.ksef_number,
        Some(ksef_number("1234563218", d(2026, 12, 1), 2))
    );
    assert_eq!(
        k.xml_sha256.as_deref(),
        Some(mai_billing::store::sha256_hex(&store.xml(n).unwrap().unwrap()).as_str())
    );
    let status = store.ksef_status("2026-11".parse().unwrap()).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].attempts, 2);
    assert!(status[0].has_upo);
    let events: Vec<String> = store
        .history(n)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["prepared", "sent", "sent", "accepted", "upo"]);
    assert_eq!(
        store
            .issued_sequence("1234563218", InvoiceKind::Vat, 2026)
            .unwrap(),
        vec![1]
    );
}

#[test]
fn a_440_on_our_own_number_is_an_acceptance_under_the_original_ksef_number() {
    let (cfg, fmt, _dir, path) = setup();
    let mut store = BillingStore::open(&path).unwrap();
    let inv = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 1)),
            &mut bytes,
        )
        .unwrap();
    let n = inv.number.as_str();
    let xml_before = store.xml(n).unwrap().unwrap();
    // The first send's answer was lost (never recorded); the same bytes went again and
    // KSeF says it has them.
    store.record_sent(n, &sent(&store, n, 2)).unwrap();
    let original = ksef_number("1234563218", d(2026, 12, 1), 1);
    store
        .record_duplicate(
            n,
            &KsefDuplicate {
                original_ksef_number: original.clone(),
                original_session_ref: Some(ksef_ref("SO", 1)),
                session_ref: Some(ksef_ref("SO", 2)),
                invoice_ref: Some(ksef_ref("EE", 2)),
                description: "Duplikat faktury".into(),
            },
        )
        .unwrap();
    let got = store.get(n).unwrap().unwrap();
    assert!(got.is_issued());
    assert_eq!(got.ksef.unwrap().ksef_number, Some(original));
    assert_eq!(store.xml(n).unwrap().unwrap(), xml_before);
    let h = store.history(n).unwrap();
    let dup = h.last().unwrap();
    assert_eq!((dup.event.as_str(), dup.code), ("duplicate", Some(440)));
    assert!(dup.details[0].contains("not a recorded attempt"), "{dup:?}");
}

#[test]
fn a_rejected_invoice_keeps_its_number_and_is_rendered_again() {
    let (cfg, fmt, _dir, path) = setup();
    let mut store = BillingStore::open(&path).unwrap();
    let first = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 1)),
            &mut bytes,
        )
        .unwrap();
    let n = first.number.clone();
    // Only a rejected invoice may be rendered again.
    let e = store
        .reprepare(
            &n,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 9)),
            &mut bytes,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("only an invoice KSeF rejected"), "{e}");
    store.record_sent(&n, &sent(&store, &n, 1)).unwrap();
    store
        .record_rejected(
            &n,
            &KsefRejection {
                code: 450,
                description: "Błąd weryfikacji semantyki dokumentu faktury".into(),
                details: vec!["Podmiot2: nieprawidłowy NIP".into()],
                session_ref: Some(ksef_ref("SO", 1)),
                invoice_ref: Some(ksef_ref("EE", 1)),
            },
        )
        .unwrap();
    let rows = store.awaiting_ksef().unwrap();
    assert_eq!(rows[0].rejection.as_ref().unwrap().code, 450);
    // The fixed data, the same number and issue date; a different client is refused.
    let mut other = new_invoice(&cfg, "b", "2026-11", d(2026, 12, 9));
    assert!(store.reprepare(&n, other.clone(), &mut bytes).is_err());
    other = new_invoice(&cfg, "a", "2026-11", d(2026, 12, 9));
    other.buyer.name = Some("A Fixed Sp. z o.o.".into());
    let again = store
        .reprepare(&n, other, &mut |inv| {
            Ok(format!(
                "<Faktura>{} {}</Faktura>",
                inv.number,
                inv.buyer.name.as_deref().unwrap()
            )
            .into_bytes())
        })
        .unwrap();
    assert_eq!(again.number, n);
    assert_eq!(again.issue_date, d(2026, 12, 1));
    assert_eq!(again.state(), Some(KsefState::Prepared));
    assert_eq!(
        store.xml(&n).unwrap().unwrap(),
        format!("<Faktura>{n} A Fixed Sp. z o.o.</Faktura>").into_bytes()
    );
    store.record_sent(&n, &sent(&store, &n, 2)).unwrap();
    store
        .record_accepted(&n, &accepted(2, d(2026, 12, 10)))
        .unwrap();
    let events: Vec<String> = store
        .history(&n)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        ["prepared", "sent", "rejected", "prepared", "sent", "accepted"]
    );
    assert_eq!(store.sequence("1234563218", 2026).unwrap(), vec![1]);
}

#[test]
fn the_database_refuses_changing_what_was_sent_or_issued() {
    let (cfg, fmt, _dir, path) = setup();
    let mut store = BillingStore::open(&path).unwrap();
    let a = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-11", d(2026, 12, 1)),
            &mut bytes,
        )
        .unwrap();
    let b = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "b", "2026-11", d(2026, 12, 1)),
            &mut bytes,
        )
        .unwrap();
    store
        .record_sent(&a.number, &sent(&store, &a.number, 1))
        .unwrap();
    store
        .record_accepted(&a.number, &accepted(1, d(2026, 12, 1)))
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let upd = |sql: &str, n: &str| conn.execute(sql, [n]).unwrap_err().to_string();
    let e = upd("UPDATE invoice SET doc = '{}' WHERE number = ?1", &a.number);
    assert!(e.contains("cannot be changed"), "{e}");
    let e = upd(
        "UPDATE invoice SET state = 'rejected' WHERE number = ?1",
        &a.number,
    );
    assert!(e.contains("cannot be changed"), "{e}");
    // A prepared invoice's bytes are what will be sent.
    let e = upd(
        "UPDATE invoice SET xml = x'00' WHERE number = ?1",
        &b.number,
    );
    assert!(e.contains("bytes stored are the bytes sent"), "{e}");
    let e = upd("UPDATE invoice SET seq = 7 WHERE number = ?1", &b.number);
    assert!(e.contains("number and identity"), "{e}");
    let e = conn
        .execute(
            "UPDATE invoice SET state = 'legacy' WHERE number = ?1",
            [&b.number],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid KSeF state change"), "{e}");
    let e = conn
        .execute(
            "UPDATE invoice SET state = 'prepared' WHERE number = ?1",
            [&a.number],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be changed"), "{e}");
    let e = upd("DELETE FROM invoice WHERE number = ?1", &b.number);
    assert!(e.contains("cannot be deleted"), "{e}");
    let e = conn
        .execute("DELETE FROM ksef_event", [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("append-only"), "{e}");
}

/// The version 1 schema and a row as version 1 wrote it (from git history), kept as a
/// fixture: the upgrade must keep such invoices readable, issued and frozen.
const V1_SCHEMA: &str = "
CREATE TABLE invoice (
    number TEXT PRIMARY KEY, seller_nip TEXT NOT NULL, year INTEGER NOT NULL,
    seq INTEGER NOT NULL, kind TEXT NOT NULL, org_id TEXT NOT NULL, month TEXT NOT NULL,
    issue_date TEXT NOT NULL, created_at TEXT NOT NULL, doc TEXT NOT NULL,
    UNIQUE (seller_nip, year, seq));
CREATE UNIQUE INDEX invoice_one_vat_per_client_month ON invoice (org_id, month) WHERE kind = 'VAT';
CREATE TRIGGER invoice_no_update BEFORE UPDATE ON invoice
    BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be changed'); END;
CREATE TRIGGER invoice_no_delete BEFORE DELETE ON invoice
    BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be deleted'); END;
PRAGMA user_version = 1;
";

#[test]
fn a_version_1_store_upgrades_and_keeps_its_invoices_as_issued_before_ksef() {
    let (cfg, fmt, _dir, path) = setup();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(V1_SCHEMA).unwrap();
    // A document exactly as version 1 serialized it (no correction, no KSeF fields).
    let mut doc = serde_json::to_value(mai_billing::IssuedInvoice {
        number: "FV/2026/03/0001".into(),
        seq: 1,
        year: 2026,
        kind: InvoiceKind::Vat,
        issue_date: d(2026, 3, 2),
        due_date: d(2026, 3, 16),
        created_at: Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
        seller: cfg.seller.clone(),
        buyer: cfg.client("a").unwrap().clone(),
        statement: statement("a", "2026-02"),
        correction: None,
        ksef: None,
    })
    .unwrap();
    assert!(doc.get("correction").is_none() && doc.get("ksef").is_none());
    doc["kind"] = "VAT".into();
    conn.execute(
        "INSERT INTO invoice VALUES ('FV/2026/03/0001', '1234563218', 2026, 1, 'VAT', 'a', '2026-02',
         '2026-03-02', '2026-03-02T08:00:00+00:00', ?1)",
        [doc.to_string()],
    )
    .unwrap();
    drop(conn);

    let mut store = BillingStore::open(&path).unwrap();
    let old = store.get("FV/2026/03/0001").unwrap().unwrap();
    assert_eq!(old.state(), Some(KsefState::Legacy));
    assert!(old.is_issued());
    assert_eq!(old.statement, statement("a", "2026-02"));
    assert_eq!(store.xml(&old.number).unwrap(), None, "never sent");
    assert_eq!(store.history(&old.number).unwrap()[0].event, "legacy");
    // The sequence continues after the legacy numbers.
    let next = store
        .prepare(
            &fmt,
            new_invoice(&cfg, "a", "2026-03", d(2026, 4, 2)),
            &mut bytes,
        )
        .unwrap();
    assert_eq!(next.number, "FV/2026/04/0002");
    assert_eq!(
        store
            .issued_sequence("1234563218", InvoiceKind::Vat, 2026)
            .unwrap(),
        vec![1]
    );
    // Legacy invoices stay frozen.
    assert!(store
        .record_sent(
            &old.number,
            &KsefSubmission {
                session_ref: ksef_ref("SO", 1),
                invoice_ref: ksef_ref("EE", 1),
                xml_sha256: "00".repeat(32),
            }
        )
        .is_err());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 2);
    let e = conn
        .execute(
            "UPDATE invoice SET doc = '{}' WHERE number = 'FV/2026/03/0001'",
            [],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be changed"), "{e}");
    drop(conn);
    // Opening again is a no-op.
    let store = BillingStore::open(&path).unwrap();
    assert_eq!(store.invoices_for_org("a").unwrap().len(), 2);
}
