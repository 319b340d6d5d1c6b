//! Onboarding and offboarding through the IPC boundary on tauri's mock runtime: the
//! request as the Clients view sends it, field errors as data, `onboard-progress` events,
//! failures as the library's text. The Docker host here answers nothing, so nothing is
//! created (the Docker tests of crates/mai-ops/tests/lifecycle_*.rs do the real thing).

mod common;
use common::{app_with, invoke};

use std::sync::{Arc, Mutex};

use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use serde_json::{json, Value};
use tauri::Listener;

const MGMT: &str = "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111";

fn ops(dir: &std::path::Path) -> Ops {
    let text = format!(
        "[console]\ndata_dir = {:?}\n[openrouter]\nbase_url = \"http://127.0.0.1:9/api/v1\"\n\
         [[hosts]]\nname = \"h\"\ndocker = \"unix://{}\"\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         host = \"h\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_admin_token = \"env:UNUSED\"\ntracker_read_token = \"env:UNUSED\"\n",
        dir.join("console"),
        dir.join("no-docker.sock").display()
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    kc.set_management_key(MGMT).unwrap();
    Ops::new(Fleet::load(&path).unwrap(), Ok(kc)).unwrap()
}

fn request(nip: &str) -> Value {
    json!({"request": {
        "client": {"id": "kowalski", "legal_name": "Kancelaria Kowalski sp.k.", "nip": nip, "vat_id": null,
            "address": "ul. Marszałkowska 10", "address_line2": null, "country": "PL", "invoice_currency": "PLN",
            "vat": "23", "invoice_email": null, "markup": "1.25", "monthly_limit_usd": "300"},
        "deploy": {"host": "h", "tracker_port": 18100, "chat_port": 18101, "publish_address": null, "chat_image": null,
            "tracker_image": null, "signed_identity": true, "tracker_openrouter_url": null}
    }})
}

#[test]
fn onboarding_over_ipc_field_errors_progress_and_a_clear_failure() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (app, w) = app_with(Console::new(Ok(ops(dir.path())), None));
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let ev = events.clone();
    app.listen_any("onboard-progress", move |e| {
        ev.lock()
            .unwrap()
            .push(serde_json::from_str(e.payload()).unwrap());
    });
    let fleet_before = std::fs::read(dir.path().join("fleet.toml")).unwrap();

    assert_eq!(invoke(&w, "fleet_hosts", json!({})).unwrap(), json!(["h"]));
    // The form's check: one error, on its field.
    let errs = invoke(&w, "onboard_validate", request("526-104-08-29")).unwrap();
    assert_eq!(errs.as_array().unwrap().len(), 1, "{errs}");
    assert_eq!(errs[0]["field"], "client.nip");
    assert_eq!(
        invoke(&w, "onboard_validate", request("526-104-08-28")).unwrap(),
        json!([])
    );

    // A valid request on a host that answers nothing: stopped before anything exists.
    let e = invoke(&w, "onboard_client", request("526-104-08-28")).unwrap_err();
    let e = e.as_str().unwrap();
    assert!(
        e.contains("onboarding kowalski stopped at preflight before anything was created")
            && e.contains("Docker host h does not answer"),
        "{e}"
    );
    let got: Vec<(String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["step"].as_str().unwrap().into(),
                p["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("validate", "started"),
        ("validate", "done"),
        ("preflight", "started"),
        ("preflight", "failed"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read(dir.path().join("fleet.toml")).unwrap(),
        fleet_before
    );

    // Offboarding's check works without the host, and says what it cannot see.
    let c = invoke(&w, "offboard_check", json!({"clientId": "acme"})).unwrap();
    assert_eq!(c["client_id"], "acme");
    assert_eq!(c["billing"].as_array().unwrap().len(), 2);
    assert!(
        c["warnings"][0]
            .as_str()
            .unwrap()
            .contains("cannot connect to Docker on host h"),
        "{c}"
    );
    let e = invoke(&w, "offboard_check", json!({"clientId": "nobody"})).unwrap_err();
    assert!(
        e.as_str().unwrap().contains("unknown client \"nobody\""),
        "{e}"
    );
}
