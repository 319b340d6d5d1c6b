//! The real `maictl` binary's `clients set`, `clients history` and `fleet update` argument
//! handling: errors per field with exit code 2 and nothing written, a dry run, an invoice
//! change written in place and listed in the history, a fleet update without an image.

use std::path::Path;
use std::process::Output;

fn maictl(fleet: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .env_remove("MAI_FLEET")
        // No Secret Service: these commands must not need the keychain.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("USER", "ewa")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const FLEET: &str = r#"# hand-written
[console]
data_dir = "console"

[[hosts]]
name = "h1"
docker = "unix:///nonexistent/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"   # from the contract
address = "ul. Prosta 1"
host = "h1"
markup = "1.3"
tracker_url = "http://127.0.0.1:9"
tracker_admin_token = "env:UNUSED_TOKEN"
"#;

#[test]
fn clients_set_checks_each_field_writes_in_place_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, FLEET).unwrap();

    let o = maictl(
        &fleet,
        &[
            "clients",
            "set",
            "acme",
            "--nip",
            "526-104-08-29",
            "--vat",
            "17",
            "--monthly-limit",
            "ten",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("nothing was changed")
            && err.contains("nip:")
            && err.contains("vat:")
            && err.contains("monthly_limit_usd:"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&fleet).unwrap(), FLEET);

    let o = maictl(
        &fleet,
        &[
            "clients",
            "set",
            "acme",
            "--invoice-email",
            "faktury@acme.example",
            "--dry-run",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("invoice_email: (none) -> faktury@acme.example"));
    assert_eq!(
        std::fs::read_to_string(&fleet).unwrap(),
        FLEET,
        "a dry run writes nothing"
    );

    let o = maictl(
        &fleet,
        &[
            "clients",
            "set",
            "acme",
            "--invoice-email",
            "faktury@acme.example",
            "--nip",
            "7010002139",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let now = std::fs::read_to_string(&fleet).unwrap();
    assert!(
        now.contains("nip = \"7010002139\"   # from the contract\n"),
        "{now}"
    );
    assert!(now.contains("address = \"ul. Prosta 1\"\nhost = \"h1\"\nmarkup = \"1.3\"\ninvoice_email = \"faktury@acme.example\"\n"), "{now}");
    assert!(now.starts_with("# hand-written\n"));

    let o = maictl(&fleet, &["clients", "history", "acme", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let h: Vec<mai_wire::change::HistoryEntry> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].actor, "ewa");
    assert_eq!(h[0].changes.len(), 2);

    let o = maictl(&fleet, &["fleet", "update", "--parallelism", "4"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--tracker-image"),
        "{}",
        text(&o.stderr)
    );
    let o = maictl(
        &fleet,
        &[
            "fleet",
            "update",
            "--tracker-image",
            "mai-tracker:2",
            "--parallelism",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("1 to 32"), "{}", text(&o.stderr));
}
