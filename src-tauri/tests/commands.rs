//! IPC boundary tests on tauri's mock runtime (`cargo test -p mai-console`):
//! the real command handlers, real serialization, a fleet of in-process fake trackers.

mod common;
use common::{app_with, invoke};

use axum::routing::get;
use axum::{Json, Router};
use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use serde_json::{json, Value};

async fn fake_tracker() -> std::net::SocketAddr {
    let today = mai_core::time::warsaw_today().to_string();
    let tokens =
        json!({"prompt": 1000, "completion": 234, "reasoning": 0, "cached": 0, "total": 1234});
    let t2 = tokens.clone();
    let app = Router::new()
        .route(
            "/api/v1/status",
            get(|| async { Json(json!({"org_id": "acme", "version": "0.1.0", "key": {"label": "sk-or-v1-…abcd", "state": "ok"}, "sync": null})) }),
        )
        .route(
            "/api/v1/usage/today",
            get(move || {
                let today = today.clone();
                let tokens = tokens.clone();
                async move {
                    Json(json!({"org_id": "acme", "date": today, "requests": 3, "tokens": tokens,
                                "raw_cost_usd": "0.0123", "client_cost_usd": "0.01599", "markup_rate": "1.3"}))
                }
            }),
        )
        .route(
            "/api/v1/usage/month",
            get(move || {
                let t = t2.clone();
                async move {
                    Json(json!({"org_id": "acme", "month": "2026-11", "provisional": true, "days_elapsed": 23, "requests": 3,
                                "tokens": t, "raw_cost_usd": "1", "client_cost_usd": "1.3", "profit_usd": "0.3",
                                "daily_average_client_cost_usd": "0.05", "limit": null}))
                }
            }),
        )
        .route("/api/v1/events", get(|| async { Json(json!({"events": [], "next_cursor": 0, "has_more": false})) }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}

fn fleet(addr: std::net::SocketAddr, dir: &std::path::Path) -> Fleet {
    unsafe { std::env::set_var("CONSOLE_TEST_TOKEN", "x") };
    let text = format!(
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
tracker_token = "env:CONSOLE_TEST_TOKEN"
"#
    );
    Fleet::parse(&text, &dir.join("fleet.toml")).unwrap()
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

    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert_eq!(info["clients"][0]["id"], "acme");
    assert_eq!(info["load_error"], Value::Null);

    let rows = invoke(&w, "fleet_status", json!({})).unwrap();
    assert_eq!(rows[0]["client_id"], "acme");
    assert_eq!(rows[0]["tracker_reachable"], true);
    // 0.0123 x 1.3, exact, as a decimal string
    assert_eq!(rows[0]["today_client_cost_usd"], "0.01599");
    assert_eq!(rows[0]["today_tokens"], 1234);

    let key = "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";
    let masked = invoke(
        &w,
        "key_set",
        json!({"clientId": "acme", "kind": "open-router", "secret": key}),
    )
    .unwrap();
    assert_eq!(masked, "sk-or-v1-…eeff");
    let list = invoke(&w, "keys_list", json!({})).unwrap();
    assert_eq!(list[0]["masked"], "sk-or-v1-…eeff");
    assert!(
        !list.to_string().contains("00112233"),
        "the listing must not carry the key"
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
