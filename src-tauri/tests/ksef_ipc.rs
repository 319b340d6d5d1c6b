//! The KSeF commands through the IPC boundary on tauri's mock runtime, with the argument
//! names the UI sends (camelCase): the token form (status, set, replace, delete: only the
//! mask comes back, audited), and the send, status and UPO commands against the KSeF and
//! NBP simulators: `ksef-send-progress` events, the summary, the receipt file; argument
//! mistakes as text.

mod common;
use common::{app_with, invoke};

use mai_console::Console;
use mai_ops::{Fleet, Keychain, Ops};
use serde_json::json;

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

fn ops(dir: &std::path::Path, ksef: bool) -> Ops {
    ops_with(
        dir,
        if ksef {
            "[ksef]\nenvironment = \"test\"\n"
        } else {
            ""
        },
    )
}

/// `extra`: the `[ksef]` (and `[nbp]`) sections.
fn ops_with(dir: &std::path::Path, ksef: &str) -> Ops {
    std::fs::write(dir.join("billing.toml"), BILLING).unwrap();
    let text = format!(
        "[console]\ndata_dir = {:?}\n[billing]\nconfig = \"billing.toml\"\n{ksef}\
         [[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         address_line2 = \"30-001 Kraków\"\nhost = \"h\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED\"\n",
        dir.join("console")
    );
    let fleet = Fleet::parse(&text, &dir.join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut o = Ops::new(fleet, Ok(kc)).unwrap();
    o.docker_enabled = false;
    o
}

#[test]
fn the_token_form_over_ipc_only_ever_gets_the_mask_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops(dir.path(), true)), None));

    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert_eq!(info["ksef_available"], true);
    let st = invoke(&w, "ksef_token_status", json!({})).unwrap();
    assert_eq!(
        st,
        json!({"seller_nip": "1234563218", "environment": "test",
               "base_url": "https://api-test.ksef.mf.gov.pl/v2", "present": false, "masked": null})
    );
    let st = invoke(&w, "ksef_token_set", json!({"token": TOKEN})).unwrap();
    assert_eq!(
        (&st["present"], &st["masked"]),
        (&json!(true), &json!("…6d5e"))
    );
    let st = invoke(
        &w,
        "ksef_token_set",
        json!({"token": TOKEN.replace("6d5e", "0f0f")}),
    )
    .unwrap();
    assert_eq!(st["masked"], "…0f0f");
    let e = invoke(&w, "ksef_token_set", json!({"token": "two words"})).unwrap_err();
    assert!(e.as_str().unwrap().contains("one line"), "{e}");
    let st = invoke(&w, "ksef_token_delete", json!({})).unwrap();
    assert_eq!(st["present"], false);

    let audit = std::fs::read_to_string(dir.path().join("console/audit.log")).unwrap();
    assert_eq!(audit.lines().count(), 6, "{audit}");
    assert!(!audit.contains("6f1c0e7b9a2d"), "{audit}");
}

#[test]
fn send_status_and_upo_over_ipc_against_the_ksef_simulator() {
    use mai_sim::ksef::{KsefConfig, KsefSim, TokenSpec};
    use std::sync::{Arc, Mutex};
    use tauri::Listener;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let ksef = rt
        .block_on(KsefSim::spawn(KsefConfig {
            tokens: vec![TokenSpec::new("1234563218", TOKEN)],
            ..KsefConfig::default()
        }))
        .unwrap();
    let nbp = rt
        .block_on(mai_sim::nbp::NbpSim::spawn(
            mai_sim::nbp::NbpConfig::default(),
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("console");
    std::fs::create_dir_all(&data).unwrap();
    let mut l = mai_core::ledger::Ledger::open(&data.join("console-cache.sqlite")).unwrap();
    l.record(&mai_core::usage::UsageEvent {
        generation_id: "g1".into(),
        org_id: "acme".into(),
        user: mai_core::usage::UserRef {
            id: Some("u1".into()),
            email: None,
            name: None,
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: mai_core::usage::Tokens {
            prompt: 10,
            completion: 5,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: "7.25".parse().unwrap(),
        source: mai_core::usage::Source::Proxy,
        state: mai_core::usage::EventState::Confirmed,
        created_at: "2025-12-03T12:00:00Z".parse().unwrap(),
        context: Default::default(),
    })
    .unwrap();
    drop(l);
    let o = ops_with(
        dir.path(),
        &format!(
            "[ksef]\nbase_url = \"{}\"\n[nbp]\nbase_url = \"{}\"\n",
            ksef.base_url(),
            nbp.base_url()
        ),
    );
    let (app, w) = app_with(Console::new(Ok(o), None));
    let events: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let ev = events.clone();
    app.listen_any("ksef-send-progress", move |e| {
        ev.lock()
            .unwrap()
            .push(serde_json::from_str(e.payload()).unwrap());
    });
    let err = |cmd: &str, body| {
        invoke(&w, cmd, body)
            .unwrap_err()
            .as_str()
            .unwrap()
            .to_string()
    };
    // No token yet: the send says how to store one; nothing is numbered.
    let e = err("ksef_send", json!({"month": "2025-12", "clientId": null}));
    assert!(e.contains("KSeF token"), "{e}");
    invoke(&w, "ksef_token_set", json!({"token": TOKEN})).unwrap();

    let s = invoke(
        &w,
        "ksef_send",
        json!({"month": "2025-12", "clientId": null}),
    )
    .unwrap();
    assert_eq!(
        (&s["accepted"], &s["rejected"]),
        (&json!(1), &json!(0)),
        "{s}"
    );
    let row = &s["rows"][0];
    assert_eq!(row["state"], json!({"kind": "accepted"}));
    let k = row["ksef_number"].as_str().unwrap().to_string();
    assert_eq!(ksef.accepted()[0].ksef_number, k);
    let phases: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phases.first().map(String::as_str), Some("connecting"));
    assert_eq!(phases.last().map(String::as_str), Some("done"));

    let rows = invoke(&w, "ksef_status", json!({"month": "2025-12"})).unwrap();
    assert_eq!(rows[0]["ksef_number"], k);
    assert_eq!(rows[0]["upo_available"], true);
    let out = dir.path().join("out");
    let p = invoke(
        &w,
        "ksef_upo",
        json!({"month": "2025-12", "ksefNumber": k, "outDir": out}),
    )
    .unwrap();
    let upo = std::fs::read_to_string(p.as_str().unwrap()).unwrap();
    assert!(upo.contains(&k), "{upo}");

    let e = err(
        "ksef_send",
        json!({"month": "2025-12", "clientId": "nobody"}),
    );
    assert!(e.contains("unknown client"), "{e}");
    let e = err("ksef_status", json!({"month": "2026-13"}));
    assert!(e.contains("YYYY-MM"), "{e}");
    let e = err(
        "ksef_upo",
        json!({"month": "2025-12", "ksefNumber": "../../x", "outDir": null}),
    );
    assert!(e.contains("not a KSeF number"), "{e}");
}

#[test]
fn without_a_ksef_section_every_ksef_command_says_how_to_add_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let bare = tempfile::tempdir().unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops(bare.path(), false)), None));
    assert_eq!(
        invoke(&w, "app_info", json!({})).unwrap()["ksef_available"],
        false
    );
    let e = invoke(&w, "ksef_token_status", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("add a [ksef] section"), "{e}");
}
