//! IPC boundary tests on tauri's mock runtime (`cargo test -p mai-console`):
//! the real command handlers, real serialization, a fleet of in-process fake trackers.

mod common;
use common::{app_with, invoke};

use axum::routing::{get, put};
use axum::{Json, Router};
use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::console::{
    Alert, AlertLevel, AppInfo, ClientRef, FleetRow, MaskedKey, SecretKind, SyncView,
};
use mai_wire::tracker::{
    Daily, DayUsage, EventPage, KeyState, KeyStatus, ProxyState, Status, SyncState, Today,
};
use mai_wire::{CommercialTerms, TokenCounts};
use serde_json::{json, Value};

/// A tracker that answers with mai-wire's types, the ones the real tracker serializes: it
/// has never synced, has no terms until the console pushes them, and served 3 requests
/// today (raw cost 0.0123 USD).
async fn fake_tracker() -> std::net::SocketAddr {
    let today = mai_core::time::warsaw_today();
    let tokens = TokenCounts {
        prompt: 1000,
        completion: 234,
        reasoning: 0,
        cached: 0,
        total: 1234,
    };
    let at = "2026-11-23T10:00:00Z".parse().unwrap();
    let status = Status {
        org_id: "acme".into(),
        org_name: None,
        version: "0.1.0".into(),
        uptime_seconds: 60,
        terms: None,
        key: KeyStatus {
            label: "sk-or-v1-…abcd".into(),
            hash: "ab".repeat(32),
            name: Some("mai-acme".into()),
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
    };
    let day = DayUsage {
        date: today,
        requests: 3,
        tokens,
        raw_cost_usd: "0.0123".parse().unwrap(),
        client_cost_usd: "0.01599".parse().unwrap(),
    };
    let today_body = Today {
        org_id: "acme".into(),
        date: today,
        requests: day.requests,
        tokens,
        raw_cost_usd: day.raw_cost_usd,
        client_cost_usd: day.client_cost_usd,
        markup_rate: "1.3".parse().unwrap(),
        last_updated: at,
    };
    let daily = Daily {
        org_id: "acme".into(),
        from: mai_core::time::YearMonth::of(today).first_day(),
        to: today,
        days: vec![day],
    };
    let app = Router::new()
        .route(
            "/api/v1/status",
            get(move || {
                let s = status.clone();
                async move { Json(s) }
            }),
        )
        .route(
            "/api/v1/usage/today",
            get(move || {
                let t = today_body.clone();
                async move { Json(t) }
            }),
        )
        .route(
            "/api/v1/usage/daily",
            get(move || {
                let d = daily.clone();
                async move { Json(d) }
            }),
        )
        .route(
            "/api/v1/admin/terms",
            put(|Json(t): Json<CommercialTerms>| async move { Json(t) }),
        )
        .route(
            "/api/v1/events",
            get(|| async {
                Json(EventPage {
                    events: vec![],
                    next_cursor: 0,
                    has_more: false,
                })
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}

fn fleet(addr: std::net::SocketAddr, dir: &std::path::Path) -> Fleet {
    Fleet::parse(&fleet_text(addr, dir), &dir.join("fleet.toml")).unwrap()
}

fn fleet_text(addr: std::net::SocketAddr, dir: &std::path::Path) -> String {
    unsafe { std::env::set_var("CONSOLE_TEST_TOKEN", "x") };
    format!(
        r#"[console]
data_dir = {dir:?}
[nbp]
base_url = "http://127.0.0.1:9"
[[hosts]]
name = "h"
docker = "unix:///nonexistent.sock"
[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "5261040828"
address = "ul. Prosta 1"
host = "h"
markup = "1.3"
tracker_url = "http://{addr}"
tracker_read_token = "env:CONSOLE_TEST_TOKEN"
tracker_admin_token = "env:CONSOLE_TEST_TOKEN"
"#
    )
}

/// The console opens the fleet (fleet file, the cache with its integrity check over the
/// whole file, keychain) on a thread of its own while the window starts (issue 14: the
/// check of a year's cache delayed the first paint); the first commands wait for it, and
/// a fleet file that fails to load is reported by them as before.
#[test]
fn a_fleet_opened_in_the_background_is_waited_for() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let addr = rt.block_on(fake_tracker());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fleet.toml");
    std::fs::write(&p, fleet_text(addr, dir.path())).unwrap();
    let mock = || {
        Ok(Keychain::with_store(
            keyring_core::mock::Store::new().unwrap(),
        ))
    };
    let (_app, w) = app_with(Console::open_in_background(p, mock));
    let info: AppInfo = typed(invoke(&w, "app_info", json!({})).unwrap());
    assert_eq!(info.load_error, None);
    assert_eq!(info.clients.len(), 1);
    let rows = invoke(&w, "fleet_status", json!({})).unwrap();
    assert_eq!(rows[0]["client_id"], "acme");
    assert_eq!(rows[0]["today_tokens"], 1234);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[clients]]\nid = 5\n").unwrap();
    let (_app, w) = app_with(Console::open_in_background(bad, mock));
    let e = invoke(&w, "fleet_status", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("bad.toml"), "{e}");
    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert!(
        info["load_error"].as_str().unwrap().contains("bad.toml"),
        "{info}"
    );
}

#[test]
fn fleet_status_and_keys_through_ipc() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let addr = rt.block_on(fake_tracker());
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut ops = Ops::new(fleet(addr, dir.path()), Ok(kc)).unwrap();
    ops.docker_enabled = false;
    let (_app, w) = app_with(Console::new(Ok(ops), None));

    // Every reply reads back as its mai-wire type, the one ui/src/lib/wire.ts is made from.
    let info: AppInfo = typed(invoke(&w, "app_info", json!({})).unwrap());
    assert_eq!(
        info.clients,
        [ClientRef {
            id: "acme".into(),
            legal_name: "ACME Sp. z o.o.".into()
        }]
    );
    assert_eq!(info.load_error, None);

    let raw = invoke(&w, "fleet_status", json!({})).unwrap();
    // 0.0123 x 1.3, exact, as a decimal string
    assert_eq!(raw[0]["today_client_cost_usd"], "0.01599");
    assert_eq!(raw[0]["today_tokens"], 1234);
    let rows: Vec<FleetRow> = typed(raw);
    assert_eq!(rows[0].client_id, "acme");
    assert!(rows[0].tracker_reachable);
    assert_eq!(rows[0].key_state, Some(KeyState::Ok));
    // The fake tracker has never synced.
    assert_eq!(rows[0].last_sync_state, SyncView::Unknown);
    assert_eq!(rows[0].docker_error.as_deref(), Some("Docker disabled"));
    // The terms push was taken, the key is fine: Docker being off is the only alert.
    assert_eq!(
        rows[0].alerts,
        [Alert {
            level: AlertLevel::Warning,
            message: "Docker host h unreachable: Docker disabled".into(),
        }]
    );

    let key = "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";
    let masked = invoke(
        &w,
        "key_set",
        json!({"clientId": "acme", "kind": "open-router", "secret": key}),
    )
    .unwrap();
    assert_eq!(masked, "sk-or-v1-…eeff");
    let list = invoke(&w, "keys_list", json!({})).unwrap();
    assert!(
        !list.to_string().contains("00112233"),
        "the listing must not carry the key"
    );
    let list: Vec<MaskedKey> = typed(list);
    assert_eq!(
        list[0],
        MaskedKey {
            client: "acme".into(),
            kind: SecretKind::OpenRouter,
            masked: Some("sk-or-v1-…eeff".into()),
            error: None,
        }
    );

    let err = invoke(
        &w,
        "key_set",
        json!({"clientId": "nobody", "kind": "open-router", "secret": key}),
    )
    .unwrap_err();
    assert!(err.as_str().unwrap().contains("unknown client"), "{err}");
    let err = invoke(&w, "sync_clients", json!({"clientIds": ["nobody"]})).unwrap_err();
    assert!(err.as_str().unwrap().contains("nobody"), "{err}");
    // Roles are an enum on both sides: a word outside it is refused before any Docker call.
    let err = invoke(
        &w,
        "restart_container",
        json!({"clientId": "acme", "role": "db"}),
    )
    .unwrap_err();
    assert!(
        err.as_str().unwrap().contains("`db`") && err.as_str().unwrap().contains("tracker"),
        "{err}"
    );
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[test]
fn a_bad_fleet_file_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fleet.toml");
    std::fs::write(&p, "[[clients]]\nid = 5\n").unwrap();
    let err = Fleet::load(&p).unwrap_err().to_string();
    let (_app, w) = app_with(Console::new(Err(err), Some(p)));
    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert!(
        info["load_error"].as_str().unwrap().contains(":1:")
            || info["load_error"].as_str().unwrap().contains(":2:"),
        "{info}"
    );
    let e = invoke(&w, "fleet_status", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("fleet.toml"), "{e}");
}
