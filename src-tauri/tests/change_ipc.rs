//! The client-change and fleet-update commands over IPC on tauri's mock runtime: the real
//! handlers and serialization, a fleet file on disk, a fake tracker taking terms.

mod common;
use common::{app_with, invoke};

use std::sync::{Arc, Mutex};

use axum::routing::{get, put};
use axum::{Json, Router};
use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::change::{
    ApplyState, ChangeCheck, ChangeReport, ClientFacts, ClientField, HistoryEntry,
};
use mai_wire::console::AppInfo;
use mai_wire::tracker::{KeyState, KeyStatus, ProxyState, Status, SyncState};
use mai_wire::update::{TargetState, UpdatePreview};
use mai_wire::CommercialTerms;
use serde_json::{json, Value};

/// A tracker that keeps the terms pushed to it and reports them in its status.
async fn fake_tracker() -> (std::net::SocketAddr, Arc<Mutex<Option<CommercialTerms>>>) {
    let terms: Arc<Mutex<Option<CommercialTerms>>> = Arc::default();
    let t1 = terms.clone();
    let t2 = terms.clone();
    let app = Router::new()
        .route(
            "/api/v1/status",
            get(move || {
                let terms = t1.lock().unwrap().clone();
                async move {
                    Json(Status {
                        org_id: "acme".into(),
                        org_name: None,
                        version: "0.1.0".into(),
                        uptime_seconds: 1,
                        terms,
                        key: KeyStatus {
                            label: "sk-or-v1-…abcd".into(),
                            hash: "ab".repeat(32),
                            name: None,
                            state: KeyState::Ok,
                            limit: None,
                            limit_remaining: None,
                            usage_daily: None,
                            usage_monthly: None,
                            checked_at: None,
                            error: None,
                        },
                        sync: SyncState {
                            interval_seconds: 0,
                            days_back: 1,
                            running: false,
                            last_run: None,
                            last_success: None,
                            last_error: None,
                            next_run: None,
                            provisional_pending: Some(0),
                            drift: None,
                        },
                        proxy: ProxyState { inflight: 0 },
                        webhook: Default::default(),
                    })
                }
            }),
        )
        .route(
            "/api/v1/admin/terms",
            put(move |Json(t): Json<CommercialTerms>| {
                *t2.lock().unwrap() = Some(t.clone());
                async move { Json(t) }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (a, terms)
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("the reply reads back as its mai-wire type")
}

#[test]
fn change_a_client_and_preview_an_update_through_ipc() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let (addr, pushed) = rt.block_on(fake_tracker());
    let dir = tempfile::tempdir().unwrap();
    unsafe { std::env::set_var("CHANGE_IPC_TOKEN", "x") };
    let path = dir.path().join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            "# the console's fleet\n[console]\ndata_dir = {dir:?}\n\n[[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\ntimeout_ms = 500\n\n\
             [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"  # checked\naddress = \"ul. Prosta 1\"\nhost = \"h\"\n\
             markup = \"1.3\"\ntracker_url = \"http://{addr}\"\ntracker_read_token = \"env:CHANGE_IPC_TOKEN\"\ntracker_admin_token = \"env:CHANGE_IPC_TOKEN\"\n",
            dir = dir.path()
        ),
    )
    .unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let ops = Ops::new(Fleet::load(&path).unwrap(), Ok(kc)).unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops), Some(path.clone())));

    let facts: ClientFacts =
        typed(invoke(&w, "client_facts", json!({"clientId": "acme"})).unwrap());
    let nip = facts
        .invoice
        .iter()
        .find(|f| f.field == ClientField::Nip)
        .unwrap();
    assert_eq!(nip.value, "5261040828");

    // Errors per field, as the dialog shows them.
    let check: ChangeCheck = typed(
        invoke(
            &w,
            "client_change_check",
            json!({"clientId": "acme", "change": {"monthly_limit_usd": "ten", "invoice": [{"field": "nip", "value": "5261040829"}]}}),
        )
        .unwrap(),
    );
    let fields: Vec<_> = check.errors.iter().map(|e| e.field).collect();
    assert_eq!(fields, [ClientField::MonthlyLimitUsd, ClientField::Nip]);

    // Applied: the file, the tracker's terms, the console's own view (fleet read again).
    let r: ChangeReport = typed(
        invoke(
            &w,
            "client_change",
            json!({"clientId": "acme", "change": {"markup": {"rate": "1.4", "from": "2099-01-01"}, "invoice": [{"field": "legal_name", "value": "ACME Polska Sp. z o.o."}]}}),
        )
        .unwrap(),
    );
    assert_eq!(
        (r.fleet_file, r.tracker),
        (ApplyState::Done, ApplyState::Done)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# the console's fleet\n"));
    assert!(
        text.contains("legal_name = \"ACME Polska Sp. z o.o.\"\n"),
        "{text}"
    );
    assert!(
        text.contains("markup_changes = [{ from = 2099-01-01, rate = \"1.4\" }]"),
        "{text}"
    );
    let terms = pushed.lock().unwrap().clone().unwrap();
    assert_eq!(
        terms.markup.rate_on("2099-01-01".parse().unwrap()),
        "1.4".parse().unwrap()
    );
    let info: AppInfo = typed(invoke(&w, "app_info", json!({})).unwrap());
    assert_eq!(info.clients[0].legal_name, "ACME Polska Sp. z o.o.");
    let h: Vec<HistoryEntry> =
        typed(invoke(&w, "client_history", json!({"clientId": "acme"})).unwrap());
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].changes.len(), 2);

    // A bad change is an error string saying what failed.
    let e = invoke(
        &w,
        "client_change",
        json!({"clientId": "acme", "change": {"monthly_limit_usd": "-1"}}),
    )
    .unwrap_err();
    assert!(e.as_str().unwrap().contains("monthly_limit_usd"), "{e}");

    // Update preview: a host that does not answer is said per client; a plan without an
    // image is refused.
    let p: UpdatePreview = typed(
        invoke(
            &w,
            "fleet_update_preview",
            json!({"plan": {"tracker_image": "mai-tracker:0.2.0"}}),
        )
        .unwrap(),
    );
    assert_eq!(p.clients[0].targets[0].state, TargetState::HostError);
    assert_eq!(p.canary, None);
    let e = invoke(&w, "fleet_update", json!({"plan": {}})).unwrap_err();
    assert!(e.as_str().unwrap().contains("name the new image"), "{e}");
}
