//! The KSeF commands through the IPC boundary on tauri's mock runtime, with the argument
//! names the UI sends (camelCase): the token form (status, set, replace, delete: only the
//! mask comes back, audited), and the send, status and UPO commands, which check their
//! arguments and, not being wired to a KSeF client in this build, say so as text.

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
    std::fs::write(dir.join("billing.toml"), BILLING).unwrap();
    let ksef = if ksef {
        "[ksef]\nenvironment = \"test\"\n"
    } else {
        ""
    };
    let text = format!(
        "[console]\ndata_dir = {:?}\n[billing]\nconfig = \"billing.toml\"\n{ksef}\
         [[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         host = \"h\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED\"\n",
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
fn send_status_and_upo_check_their_arguments_then_say_they_are_not_wired() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops(dir.path(), true)), None));

    let err = |cmd: &str, body| {
        invoke(&w, cmd, body)
            .unwrap_err()
            .as_str()
            .unwrap()
            .to_string()
    };
    let e = err("ksef_send", json!({"month": "2026-11", "clientId": null}));
    assert!(e.contains("not available in this build yet"), "{e}");
    let e = err(
        "ksef_send",
        json!({"month": "2026-11", "clientId": "nobody"}),
    );
    assert!(e.contains("unknown client"), "{e}");
    let e = err("ksef_status", json!({"month": "2026-13"}));
    assert!(e.contains("YYYY-MM"), "{e}");
    let e = err("ksef_status", json!({"month": "2026-11"}));
    assert!(e.contains("not available in this build yet"), "{e}");
    let e = err(
        "ksef_upo",
        json!({"month": "2026-11", "ksefNumber": "../../x", "outDir": null}),
    );
    assert!(e.contains("not a KSeF number"), "{e}");
    let e = err(
        "ksef_upo",
        json!({"month": "2026-11", "ksefNumber": "1234563218-20261202-0100001AF629-AF", "outDir": ""}),
    );
    assert!(e.contains("not available in this build yet"), "{e}");

    // Without [ksef] every KSeF command says how to add it.
    let bare = tempfile::tempdir().unwrap();
    let (_app, w) = app_with(Console::new(Ok(ops(bare.path(), false)), None));
    assert_eq!(
        invoke(&w, "app_info", json!({})).unwrap()["ksef_available"],
        false
    );
    let e = invoke(&w, "ksef_token_status", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("add a [ksef] section"), "{e}");
}
