//! `billing_export` through the IPC boundary on tauri's mock runtime: the request as the
//! UI sends it, `billing-export-progress` events, per-client results, errors as text.

mod common;
use common::{app_with, invoke};

use std::sync::{Arc, Mutex};

use mai_console::Console;
use mai_core::ledger::Ledger;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::console::{BillingReport, BillingStatus};
use serde_json::{json, Value};
use tauri::Listener;

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

fn event(org: &str, id: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: org.into(),
        user: UserRef {
            id: Some("u1".into()),
            email: None,
            name: None,
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: Tokens {
            prompt: 10,
            completion: 5,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: cost.parse().unwrap(),
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: "2025-12-03T12:00:00Z".parse().unwrap(),
        context: Default::default(),
    }
}

fn ops(dir: &std::path::Path) -> Ops {
    let data = dir.join("console");
    std::fs::create_dir_all(&data).unwrap();
    let mut l = Ledger::open(&data.join("console-cache.sqlite")).unwrap();
    l.record_batch(&[event("acme", "g1", "1.5"), event("nodata", "g2", "2")])
        .unwrap();
    drop(l);
    std::fs::write(dir.join("billing.toml"), BILLING).unwrap();
    // NBP on a port nothing listens on: CSV and invoice exports need no rate.
    let text = format!(
        "[console]\ndata_dir = {data:?}\n[nbp]\nbase_url = \"http://127.0.0.1:9/api\"\n[billing]\nconfig = \"billing.toml\"\n\
         [[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         address_line2 = \"30-001 Kraków\"\n\
         host = \"h\"\nmarkup = \"1.3\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED\"\n"
    );
    let fleet = Fleet::parse(&text, &dir.join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut o = Ops::new(fleet, Ok(kc)).unwrap();
    o.docker_enabled = false;
    o
}

#[test]
fn billing_export_over_ipc_with_progress_events() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (app, w) = app_with(Console::new(Ok(ops(dir.path())), None));
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let ev = events.clone();
    app.listen_any("billing-export-progress", move |e| {
        ev.lock()
            .unwrap()
            .push(serde_json::from_str(e.payload()).unwrap());
    });

    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert_eq!(info["billing_available"], true);

    let out = dir.path().join("out");
    let r = invoke(
        &w,
        "billing_export",
        json!({"request": {"month": "2025-12", "format": "csv", "client": null, "out_dir": out}}),
    )
    .unwrap();
    let file = out.join("billing-2025-12-pl.csv");
    assert_eq!(r["files"], json!([file]));
    assert_eq!(r["format"], "csv");
    assert_eq!(r["clients"][0]["org_id"], "nodata");
    assert!(
        r["clients"][0]["skipped"]
            .as_str()
            .unwrap()
            .contains("missing invoice data"),
        "{r}"
    );
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.contains("acme"), "{csv}");
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            json!({"event": "started", "total": 1}),
            json!({"event": "wrote", "path": file, "done": 1, "total": 1}),
        ]
    );

    // A PDF export issues nothing since KSeF (no NBP call): without an invoice KSeF
    // accepted there is no file, and the client's row says to send it to KSeF first.
    let r = invoke(
        &w,
        "billing_export",
        json!({"request": {"month": "2025-12", "format": "pdf", "client": "acme", "out_dir": out}}),
    )
    .unwrap();
    assert_eq!(r["files"], json!([]));
    assert_eq!(r["clients"][0]["org_id"], "acme");
    let why = r["clients"][0]["skipped"].as_str().unwrap();
    assert!(why.contains("KSeF") && why.contains("send"), "{why}");

    let e = invoke(
        &w,
        "billing_export",
        json!({"request": {"month": "2025-12", "format": "xls", "client": null, "out_dir": null}}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("xls"), "{e}");
}

#[test]
fn billing_report_over_ipc_is_the_wire_view_of_the_month() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops(dir.path())), None));

    let raw = invoke(&w, "billing_report", json!({"month": "2025-12"})).unwrap();
    // Money stays exact decimal text on the wire.
    assert_eq!(raw["clients"][0]["raw_cost_usd"], "1.5");
    let r: BillingReport =
        serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{e}: {raw}"));
    assert_eq!(r.month, "2025-12");
    assert!(!r.provisional, "December 2025 is closed");
    // NBP is down in this fleet: no invoice rate, and the report says why.
    assert_eq!(r.usd_rate, None);
    assert!(
        r.rate_error.as_deref().unwrap_or("").contains("NBP"),
        "{raw}"
    );
    let rows: Vec<_> = r
        .clients
        .iter()
        .map(|c| {
            (
                c.org_id.as_str(),
                c.status,
                c.requests,
                c.raw_cost_usd.to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("acme", BillingStatus::ReadyToIssue, 1, "1.5".to_string()),
            ("nodata", BillingStatus::MissingData, 1, "2".to_string()),
        ]
    );
    assert_eq!(
        r.totals.requests, 0,
        "totals sum only rows with a statement (none without a rate)"
    );
    // No statement, no fees or margins; the invoices' deadline is known all the same.
    assert!(r.clients.iter().all(|c| c.profit.is_none()), "{raw}");
    assert_eq!(r.totals.effective_margin_percent, None);
    assert_eq!(raw["issue_deadline"], "2026-01-15");
    assert!(!r.fees_basis.is_empty(), "{raw}");

    let e = invoke(&w, "billing_report", json!({"month": "2025-13"})).unwrap_err();
    assert!(e.as_str().unwrap().contains("YYYY-MM"), "{e}");
}
