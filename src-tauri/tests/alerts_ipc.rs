//! The alert commands over IPC on tauri's mock runtime: every `fleet_status` is an alert
//! evaluation, so a tracker nobody answers for is listed after the third one; ack and mute
//! reply with the new view; an unknown id is an error that says what to do.

mod common;
use common::{app_with, invoke};

use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::alerts::{AlertKind, AlertsView};
use serde_json::json;

fn view(v: serde_json::Value) -> AlertsView {
    serde_json::from_value(v).unwrap()
}

#[test]
fn alerts_list_ack_and_mute_through_ipc() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    unsafe { std::env::set_var("ALERTS_IPC_TOKEN", "x") };
    let text = format!(
        r#"[console]
data_dir = {:?}
tracker_timeout_ms = 500
[alerts]
drift_usd = "2.50"
[[hosts]]
name = "h"
docker = "unix:///nonexistent.sock"
[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "5261040828"
address = "ul. Prosta 1"
host = "h"
tracker_url = "http://127.0.0.1:9"
tracker_read_token = "env:ALERTS_IPC_TOKEN"
tracker_admin_token = "env:ALERTS_IPC_TOKEN"
"#,
        dir.path()
    );
    let fleet = Fleet::parse(&text, &dir.path().join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut ops = Ops::new(fleet, Ok(kc)).unwrap();
    ops.docker_enabled = false;
    let (_app, w) = app_with(Console::new(Ok(ops), None));

    let v = view(invoke(&w, "alerts_list", json!({})).unwrap());
    assert!(v.active.is_empty() && v.evaluated_at.is_none());
    for n in 1..=3 {
        invoke(&w, "fleet_status", json!({})).unwrap();
        let v = view(invoke(&w, "alerts_list", json!({})).unwrap());
        assert_eq!(
            v.active.len(),
            usize::from(n == 3),
            "after refresh {n}: {v:?}"
        );
        assert!(v.evaluated_at.is_some());
    }
    let v = view(invoke(&w, "alerts_list", json!({})).unwrap());
    let a = &v.active[0];
    assert_eq!(
        (a.id.as_str(), a.kind),
        ("tracker_unreachable:acme", AlertKind::TrackerUnreachable)
    );
    assert_eq!(a.client.as_deref(), Some("acme"));
    assert_eq!(
        (v.attention, v.attention_by_client.get("acme")),
        (1, Some(&1))
    );

    let v = view(invoke(&w, "alert_ack", json!({"id": "tracker_unreachable:acme"})).unwrap());
    assert!(v.active[0].acked);
    assert_eq!(v.attention, 0);

    let e = invoke(
        &w,
        "alert_mute",
        json!({"request": {"id": "drift:acme", "seconds": 3600}}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        json!("alerts: no active alert \"drift:acme\"; list them with `maictl alerts` (ids look like tracker_unreachable:acme)")
    );
    let v = view(
        invoke(
            &w,
            "alert_mute",
            json!({"request": {"id": "tracker_unreachable:acme", "seconds": 3600}}),
        )
        .unwrap(),
    );
    let until = v.active[0].muted_until.expect("muted");
    let left = (until - chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&left), "{left}");
}
