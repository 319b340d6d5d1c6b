//! `fleet_overview` and `usage_export` through the IPC boundary on tauri's mock runtime:
//! the request as the UI sends it, `usage-export-progress` events, the file written and
//! its sums, errors as text that says what to do.

mod common;
use common::{app_with, invoke};

use std::sync::{Arc, Mutex};

use mai_console::Console;
use mai_core::ledger::Ledger;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use serde_json::{json, Value};
use tauri::Listener;

fn event(id: &str, at: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: UserRef {
            id: Some("u1".into()),
            email: None,
            name: Some("Anna".into()),
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
        created_at: at.parse().unwrap(),
        context: Default::default(),
    }
}

fn ops(dir: &std::path::Path) -> Ops {
    let data = dir.join("console");
    std::fs::create_dir_all(&data).unwrap();
    let mut l = Ledger::open(&data.join("console-cache.sqlite")).unwrap();
    l.record_batch(&[
        event("g1", "2025-12-03T12:00:00Z", "1.5"),
        event("g2", "2025-12-04T12:00:00Z", "0.000000001"),
    ])
    .unwrap();
    drop(l);
    let text = format!(
        "[console]\ndata_dir = {data:?}\n[nbp]\nbase_url = \"http://127.0.0.1:9/api\"\n\
         [[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         host = \"h\"\nmarkup = \"1.3\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED\"\n"
    );
    let fleet = Fleet::parse(&text, &dir.join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut o = Ops::new(fleet, Ok(kc)).unwrap();
    o.docker_enabled = false;
    o
}

#[test]
fn usage_export_and_fleet_overview_over_ipc() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("UNUSED", "t");
    let ops = ops(dir.path());
    // The console's overview takes NBP's and OpenRouter's answers only if they are in
    // when its rows are (else `pending`): asked here first, the answers are kept.
    rt.block_on(async { tokio::join!(ops.pln_rate(), ops.credits()) });
    let (app, w) = app_with(Console::new(Ok(ops), None));
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let ev = events.clone();
    app.listen_any("usage-export-progress", move |e| {
        ev.lock()
            .unwrap()
            .push(serde_json::from_str(e.payload()).unwrap());
    });

    let path = dir.path().join("exports/acme.csv");
    let r = invoke(
        &w,
        "usage_export",
        json!({"request": {"client": "acme", "month": "2025-12", "kind": "events", "format": "csv", "path": path}}),
    )
    .unwrap();
    assert_eq!(r["rows"], 2);
    assert_eq!(r["raw_cost_usd"], "1.500000001");
    assert_eq!(r["client_cost_usd"], "1.9500000013");
    assert_eq!(r["path"], json!(path));
    assert!(
        r["pull_error"].is_string(),
        "no tracker runs: said, not hidden"
    );
    let csv = std::fs::read_to_string(&path).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.contains(",0.000000001,1.3,0.0000000013,"), "{csv}");
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            json!({"client": "acme", "done": 0, "total": 2}),
            json!({"client": "acme", "done": 2, "total": 2}),
        ]
    );

    let e = invoke(
        &w,
        "usage_export",
        json!({"request": {"client": "acme", "month": "12/2025", "kind": "daily", "format": "json"}}),
    )
    .unwrap_err();
    assert!(e.as_str().unwrap().contains("use YYYY-MM"), "{e}");
    let e = invoke(
        &w,
        "usage_export",
        json!({"request": {"client": "acme", "month": "2025-12", "kind": "daily", "format": "json",
                            "path": dir.path().join("exports/acme.csv/not-a-dir/x.json")}}),
    )
    .unwrap_err();
    assert!(e.as_str().unwrap().contains("check the path"), "{e}");

    let o = invoke(&w, "fleet_overview", json!({})).unwrap();
    assert_eq!(o["rows"].as_array().unwrap().len(), 1);
    assert_eq!(o["totals"]["missing"], json!(["acme"]));
    assert_eq!(o["totals"]["pln"]["available"], false);
    assert_eq!(o["totals"]["pln"]["pending"], false, "{o}");
    assert_eq!(o["totals"]["credits"]["pending"], false, "{o}");
    assert_eq!(o["totals"]["credits"]["available"], false);
    assert!(
        o["totals"]["credits"]["error"]
            .as_str()
            .unwrap()
            .contains("management key"),
        "{o}"
    );
}
