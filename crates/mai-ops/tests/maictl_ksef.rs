//! The real `maictl invoices send|status` with nothing but `--fleet`: the fleet file's
//! `[ksef]` section and the billing file's seller are all they need; mistakes in the
//! arguments or the fleet file are usage errors (exit 2) that say what to do. The send
//! itself is not wired to a KSeF client in this build: it says so (exit 1) and sends
//! nothing.

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

#[tokio::test]
async fn send_and_status_run_from_the_fleet_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), Some("environment = \"test\""));
    for args in [
        &["invoices", "send", "--month", "2026-11"][..],
        &[
            "invoices", "send", "--month", "2026-11", "--client", "acme", "--json",
        ],
        &["invoices", "status", "--month", "2026-11", "--json"],
    ] {
        let o = maictl(&f, args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not available in this build yet")
                && stderr(&o).contains("nothing was sent"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty(), "{args:?}");
    }
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
