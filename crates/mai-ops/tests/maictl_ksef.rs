//! The real `maictl invoices send|status` with nothing but `--fleet`: the fleet file's
//! `[ksef]` section and the billing file's seller are all they need (the KSeF token in a
//! real, throwaway Secret Service); a month sent to the KSeF simulator exits 3 while one
//! invoice is rejected and 0 once it is sent again and accepted. Mistakes in the arguments
//! or the fleet file are usage errors (exit 2) that say what to do.

use std::path::Path;
use std::process::Output;

const SELLER: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

/// A fleet file with one client; `ksef` is the `[ksef]` section's body, if any.
fn fleet(dir: &Path, ksef: Option<&str>) -> std::path::PathBuf {
    std::fs::write(dir.join("billing.toml"), SELLER).unwrap();
    let ksef = ksef.map(|k| format!("[ksef]\n{k}\n")).unwrap_or_default();
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            "[console]\ndata_dir = \"data\"\n[billing]\nconfig = \"billing.toml\"\n{ksef}\
             [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\
             [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\n\
             host = \"h1\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED_TOKEN\"\n"
        ),
    )
    .unwrap();
    path
}

async fn maictl(fleet: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .env_remove("KSEF_BASE_URL")
        .env_remove("MAI_BILLING_CONFIG")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

fn usage(org: &str, id: &str, day: &str) -> mai_core::usage::UsageEvent {
    use chrono::TimeZone;
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    mai_core::usage::UsageEvent {
        generation_id: id.into(),
        org_id: org.into(),
        user: mai_core::usage::UserRef {
            id: Some("u1".into()),
            email: None,
            name: None,
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: mai_core::usage::Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: "12.5".parse().unwrap(),
        source: mai_core::usage::Source::Proxy,
        state: mai_core::usage::EventState::Confirmed,
        created_at: chrono::Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
}

#[tokio::test]
async fn send_and_status_run_from_the_fleet_file_alone() {
    use mai_sim::ksef::{FaultRule, KsefConfig, KsefSim, TokenSpec};
    let nbp = mai_sim::nbp::NbpSim::spawn(mai_sim::nbp::NbpConfig::default())
        .await
        .unwrap();
    let ksef = KsefSim::spawn(KsefConfig {
        tokens: vec![TokenSpec::new("1234563218", TOKEN)],
        ..KsefConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(
        dir.path(),
        Some(&format!(
            "base_url = \"{}\"\n[nbp]\nbase_url = \"{}\"",
            ksef.base_url(),
            nbp.base_url()
        )),
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let mut l =
        mai_core::ledger::Ledger::open(&dir.path().join("data/console-cache.sqlite")).unwrap();
    l.record_batch(&[
        usage("acme", "g1", "2025-12-03"),
        usage("acme", "g2", "2025-12-19"),
    ])
    .unwrap();
    drop(l);

    // The first send meets a schema rejection (forced): exit 3, the rejection and its fix
    // on stdout. The second sends it again: accepted, exit 0. Status lists it.
    ksef.add_fault(FaultRule::reject_invoices(430, 1));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = r#"
        printf %s "$KSEF_TOKEN" | "$MAICTL" --fleet "$FLEET" ksef token set >/dev/null 2>&1 || { echo "token set failed" >&2; exit 90; }
        "$MAICTL" --fleet "$FLEET" invoices send --month 2025-12 >"$OUT/send1.txt" 2>"$OUT/send1.err"; echo $? >"$OUT/send1.code"
        "$MAICTL" --fleet "$FLEET" invoices send --month 2025-12 --json >"$OUT/send2.json" 2>"$OUT/send2.err"; echo $? >"$OUT/send2.code"
        "$MAICTL" --fleet "$FLEET" invoices status --month 2025-12 --json >"$OUT/status.json" 2>"$OUT/status.err"; echo $? >"$OUT/status.code"
    "#;
    let o = tokio::process::Command::new("dbus-run-session")
        .arg("--")
        .arg(root.join("scripts/with-keyring.sh"))
        .args(["bash", "-c", script])
        .env("MAICTL", env!("CARGO_BIN_EXE_maictl"))
        .env("FLEET", &f)
        .env("OUT", dir.path())
        .env("KSEF_TOKEN", TOKEN)
        .env_remove("KSEF_BASE_URL")
        .env_remove("MAI_BILLING_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    assert_eq!(read("send1.code").trim(), "3", "{}", read("send1.err"));
    let out1 = read("send1.txt");
    assert!(
        out1.contains("rejected") && out1.contains("430") && out1.contains("schema"),
        "{out1}"
    );
    assert!(
        read("send1.err").contains("connecting to KSeF"),
        "{}",
        read("send1.err")
    );
    assert_eq!(read("send2.code").trim(), "0", "{}", read("send2.err"));
    let s: mai_wire::ksef::KsefSendSummary = serde_json::from_str(&read("send2.json")).unwrap();
    assert_eq!((s.accepted, s.rejected), (1, 0), "{s:?}");
    let k = s.rows[0].ksef_number.clone().unwrap();
    assert_eq!(ksef.accepted()[0].ksef_number, k);
    assert_eq!(read("status.code").trim(), "0", "{}", read("status.err"));
    let rows: Vec<mai_wire::ksef::KsefInvoiceRow> =
        serde_json::from_str(&read("status.json")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].ksef_number.as_deref(), Some(k.as_str()));
    assert!(rows[0].upo_available);

    // The export is still `maictl invoices --month --format`.
    let o = maictl(&f, &["invoices", "--month", "2026-11"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
}

#[tokio::test]
async fn mistakes_are_usage_errors_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), Some("environment = \"test\""));
    let o = maictl(
        &f,
        &[
            "invoices", "send", "--month", "2026-11", "--client", "nobody",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown client \"nobody\""),
        "{}",
        stderr(&o)
    );
    let o = maictl(&f, &["invoices", "status", "--month", "2026-13"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // No [ksef] section: say how to add one.
    let bare = tempfile::tempdir().unwrap();
    let f = fleet(bare.path(), None);
    let o = maictl(&f, &["invoices", "send", "--month", "2026-11"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[ksef]") && stderr(&o).contains("environment = \"test\""),
        "{}",
        stderr(&o)
    );

    // A mistake in [ksef] names its line.
    let bad = tempfile::tempdir().unwrap();
    let f = fleet(bad.path(), Some("environment = \"production\""));
    let o = maictl(&f, &["ksef", "token", "status"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fleet.toml:6:15") && stderr(&o).contains("test, demo or prd"),
        "{}",
        stderr(&o)
    );

    // KSEF_BASE_URL to another machine over plain http is refused before any token is read.
    let ok = tempfile::tempdir().unwrap();
    let f = fleet(ok.path(), Some("environment = \"prd\""));
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .arg("--fleet")
        .arg(&f)
        .args(["ksef", "token", "status"])
        .env("KSEF_BASE_URL", "http://ksef.example:8080/v2")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("KSEF_BASE_URL") && stderr(&o).contains("https://"),
        "{}",
        stderr(&o)
    );
}
