//! `Ops::billing_export` against a real console-cache ledger file, the NBP simulator and
//! the KSeF simulator: exports cover invoices KSeF accepted (others are skipped with the
//! reason), per-client results, progress events, NBP down.

use std::path::Path;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_billing::{ExportFormat, ExportProgress};
use mai_core::ledger::Ledger;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::ops::{InvoiceExportRequest, InvoiceExportResult};
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::ksef::{KsefConfig, KsefSim, TokenSpec};
use mai_sim::nbp::{self as sim, NbpSim};
use rust_decimal::Decimal;

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
payment_days = 14

[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn event(org: &str, id: &str, day: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.to_string(),
        org_id: org.to_string(),
        user: UserRef {
            id: Some("u1".into()),
            email: None,
            name: Some("Jan".into()),
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: Decimal::from_str(cost).unwrap(),
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: Utc.from_utc_datetime(&d(day).and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
}

const SELLER_NIP: &str = "1234563218";
const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

/// The KSeF simulator (plain HTTP on loopback) with the seller's token registered.
async fn ksef_sim() -> KsefSim {
    KsefSim::spawn(KsefConfig {
        tokens: vec![TokenSpec::new(SELLER_NIP, TOKEN)],
        ..KsefConfig::default()
    })
    .await
    .unwrap()
}

/// A fleet whose console cache holds December 2025 usage of `acme` and `nodata`, sending
/// to the KSeF at `ksef_base`.
fn setup(dir: &Path, nbp_base: &str, ksef_base: &str) -> Ops {
    let data = dir.join("console");
    std::fs::create_dir_all(&data).unwrap();
    let mut ledger = Ledger::open(&data.join("console-cache.sqlite")).unwrap();
    ledger
        .record_batch(&[
            event("acme", "g1", "2025-12-02", "12.345678901"),
            event("acme", "g2", "2025-12-20", "0.000000007"),
            event("nodata", "g3", "2025-12-05", "3.5"),
        ])
        .unwrap();
    drop(ledger);
    std::fs::write(dir.join("billing.toml"), BILLING).unwrap();
    let fleet = format!(
        "[console]\ndata_dir = {data:?}\n\n[nbp]\nbase_url = \"{nbp_base}\"\n\n[billing]\nconfig = \"billing.toml\"\n\n[ksef]\nbase_url = \"{ksef_base}\"\n\n\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         address_line2 = \"30-001 Kraków\"\ninvoice_lines = \"summary\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED_TOKEN\"\n"
    );
    let fleet = Fleet::parse(&fleet, &dir.join("fleet.toml")).unwrap();
    let keychain = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut o = Ops::new(fleet, Ok(keychain)).unwrap();
    o.docker_enabled = false;
    o
}

fn request(format: ExportFormat, out: &Path) -> InvoiceExportRequest {
    InvoiceExportRequest {
        month: "2025-12".into(),
        format,
        client: None,
        out_dir: Some(out.to_path_buf()),
        dialect: Default::default(),
        issue_date: None,
        allow_unconfirmed: None,
    }
}

async fn export(
    o: &Ops,
    req: &InvoiceExportRequest,
) -> (Result<InvoiceExportResult, String>, Vec<ExportProgress>) {
    let mut events = Vec::new();
    let r = o
        .billing_export(req, &mut |p| events.push(p))
        .await
        .map_err(|e| e.to_string());
    (r, events)
}

#[tokio::test]
async fn only_invoices_ksef_accepted_are_exported_with_their_ksef_number() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let ksef = ksef_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let o = setup(dir.path(), &nbp.base_url(), &ksef.base_url());
    let out = dir.path().join("out");

    // Before KSeF: no invoice, so no file; each client says why.
    let (r, events) = export(&o, &request(ExportFormat::Pdf, &out)).await;
    let r = r.unwrap();
    assert!(r.files.is_empty(), "{r:?}");
    let acme = r.clients.iter().find(|c| c.org_id == "acme").unwrap();
    assert!(acme.invoice_number.is_none() && !acme.newly_issued);
    let why = acme.skipped.as_deref().unwrap();
    assert!(why.contains("KSeF"), "{why}");
    let nodata = r.clients.iter().find(|c| c.org_id == "nodata").unwrap();
    assert!(nodata.skipped.as_deref().unwrap().contains("address"));
    assert!(events.contains(&ExportProgress::Started { total: 0 }));

    // Sent to KSeF and accepted: now the PDF is an invoice with its KSeF number.
    o.ksef_token_set(TOKEN.into()).await.unwrap();
    let sent = o.ksef_send("2025-12", None, &mut |_| {}).await.unwrap();
    assert_eq!(sent.accepted, 1, "{:#?}", sent.rows);
    let accepted = ksef.accepted();
    assert_eq!(accepted.len(), 1);
    let ksef_number = accepted[0].ksef_number.clone();
    let number = accepted[0].invoice_number.clone();
    assert!(
        number.starts_with("FV/") && number.ends_with("/0001"),
        "{number}"
    );

    let (r, events) = export(&o, &request(ExportFormat::Pdf, &out)).await;
    let r = r.unwrap();
    let acme = r.clients.iter().find(|c| c.org_id == "acme").unwrap();
    assert_eq!(acme.invoice_number.as_deref(), Some(number.as_str()));
    assert!(!acme.newly_issued);
    assert_eq!(acme.files.len(), 1);
    let pdf = std::fs::read(&acme.files[0]).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert_eq!(r.files, acme.files);
    assert_eq!(
        events.last(),
        Some(&ExportProgress::Wrote {
            path: acme.files[0].clone(),
            done: 1,
            total: 1
        })
    );
    let text = std::process::Command::new("pdftotext")
        .arg(&acme.files[0])
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&ksef_number), "{text}");

    // The report shows the number; the KSeF export is the very XML KSeF received, with
    // the exact net at table A mid of 2025-12-30.
    let report = o.billing_report("2025-12").await.unwrap();
    let row = report.clients.iter().find(|c| c.org_id == "acme").unwrap();
    assert_eq!(row.invoice_number.as_deref(), Some(number.as_str()));
    let (r2, _) = export(&o, &request(ExportFormat::Ksef, &out)).await;
    let r2 = r2.unwrap();
    let acme2 = r2.clients.iter().find(|c| c.org_id == "acme").unwrap();
    let xml = std::fs::read_to_string(&acme2.files[0]).unwrap();
    assert_eq!(xml, accepted[0].xml);
    let mid = sim::rate_a("USD", d("2025-12-30")).unwrap();
    let raw = Decimal::from_str("12.345678908").unwrap();
    let net = mai_core::money::round_minor(raw * Decimal::new(13, 1) * mid);
    assert!(
        xml.contains(&format!("<P_13_1>{net:.2}</P_13_1>")),
        "net {net} not in {xml}"
    );
}

#[tokio::test]
async fn nbp_down_no_invoice_and_the_error_names_the_table_and_dates() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ksef = ksef_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let o = setup(dir.path(), &format!("http://{dead}/api"), &ksef.base_url());
    o.ksef_token_set(TOKEN.into()).await.unwrap();
    // Preparing the invoice needs the rate: nothing is numbered or sent.
    let e = o
        .ksef_send("2025-12", None, &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NBP unreachable") && e.contains("table A USD") && e.contains("2025-12-31"),
        "{e}"
    );
    assert!(ksef.invoices().is_empty());
    let report = o.billing_report("2025-12").await.unwrap();
    assert!(report.clients.iter().all(|c| c.invoice_number.is_none()));
    // An export needs no rate (it issues nothing): it works and says why nothing is there.
    let out = dir.path().join("out");
    let (r, _) = export(&o, &request(ExportFormat::Pdf, &out)).await;
    let r = r.unwrap();
    assert!(r.files.is_empty());
    assert!(r.clients.iter().all(|c| c.skipped.is_some()), "{r:?}");
}

#[tokio::test]
async fn csv_and_bad_input_errors() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ksef = ksef_sim().await;
    let o = setup(dir.path(), &nbp.base_url(), &ksef.base_url());
    let out = dir.path().join("csv");
    let (r, _) = export(&o, &request(ExportFormat::Csv, &out)).await;
    let r = r.unwrap();
    assert_eq!(r.files, vec![out.join("billing-2025-12-pl.csv")]);
    let csv = std::fs::read_to_string(&r.files[0]).unwrap();
    assert!(csv.contains("acme") && csv.contains("nodata"));

    let mut bad = request(ExportFormat::Csv, &out);
    bad.month = "2025-13".into();
    let (r, _) = export(&o, &bad).await;
    assert!(r.unwrap_err().contains("YYYY-MM"));

    let mut unknown = request(ExportFormat::Pdf, &out);
    unknown.client = Some("nobody".into());
    let (r, _) = export(&o, &unknown).await;
    assert!(r.unwrap_err().contains("nobody"));
}

#[test]
fn default_folder_is_per_month_under_home() {
    let ym = "2026-01".parse().unwrap();
    assert_eq!(
        mai_ops::ops::default_invoice_dir(Some("/home/anna".into()), ym),
        Path::new("/home/anna/mai-invoices/2026-01")
    );
}
