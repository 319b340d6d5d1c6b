//! The seller's KSeF token in the real OS keychain (Secret Service over D-Bus), through
//! `Ops` (the console's calls) and the real `maictl ksef token` (stdin). What is expected
//! depends on the environment tests/run-keyring-tests.sh sets up, as in keychain_real.rs:
//! - `MAI_KEYCHAIN_EXPECT=unlocked`: set, replace, status (masked), delete; audited; the
//!   token in no output, message or audit line; one entry per seller and KSeF;
//! - `locked`: a clear "locked" error (maictl exit 4), audited as failed;
//! - `absent` (no session bus): a clear "not available" error (maictl exit 4).

use std::path::{Path, PathBuf};
use std::process::Output;

use mai_ops::audit::AuditLog;
use mai_ops::keys::KeyError;
use mai_ops::{Fleet, Keychain, Ops, OpsError};
use mai_wire::ksef::{KsefEnvironment, KsefTokenStatus};

const SELLER: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "123-456-32-18"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

fn expectation() -> String {
    std::env::var("MAI_KEYCHAIN_EXPECT").unwrap_or_else(|_| {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            "unlocked"
        } else {
            "absent"
        }
        .into()
    })
}

/// A fleet file whose KSeF is a custom one on `port` (nothing listens: only the keychain
/// entry's name depends on it), so a run never touches the entry of a real KSeF.
fn fleet(dir: &Path, port: u16) -> PathBuf {
    std::fs::write(dir.join("billing.toml"), SELLER).unwrap();
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            "[console]\ndata_dir = \"data\"\n[billing]\nconfig = \"billing.toml\"\n[ksef]\nbase_url = \"http://127.0.0.1:{port}/v2\"\n"
        ),
    )
    .unwrap();
    path
}

fn port() -> u16 {
    20000 + (std::process::id() % 40000) as u16
}

fn ops(fleet_path: &Path) -> Ops {
    let f = Fleet::load(fleet_path).unwrap();
    let mut o = Ops::new(f, Keychain::secret_service()).unwrap();
    o.docker_enabled = false;
    o
}

async fn maictl(fleet_path: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"));
    cmd.arg("--fleet")
        .arg(fleet_path)
        .args(args)
        .env_remove("KSEF_BASE_URL")
        .env_remove("MAI_BILLING_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).await.unwrap();
    }
    drop(pipe);
    child.wait_with_output().await.unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Nothing the user or a log can see holds the token's secret part.
fn assert_no_token(what: &str, s: &str) {
    assert!(
        !s.contains("6f1c0e7b9a2d") && !s.contains("9a8b7c6d5e"),
        "{what} leaks the KSeF token: {s}"
    );
}

#[tokio::test]
async fn ksef_token_in_the_real_secret_service() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), port());
    let audit = AuditLog::in_dir(&dir.path().join("data"));
    match expectation().as_str() {
        "unlocked" => {
            let o = ops(&f);
            let st = o.ksef_token_status().await.unwrap();
            assert_eq!(
                st,
                KsefTokenStatus {
                    seller_nip: "1234563218".into(),
                    environment: KsefEnvironment::Custom,
                    base_url: format!("http://127.0.0.1:{}/v2", port()),
                    present: false,
                    masked: None,
                }
            );
            // A token that is not one is refused before the keychain or the audit log.
            let e = o
                .ksef_token_set("20251010-EC-1B5A8A2000-9D0F7C3E21-5A".into())
                .await
                .unwrap_err();
            assert!(e.to_string().contains("reference number"), "{e}");
            assert!(audit.read().unwrap().is_empty());

            let st = o.ksef_token_set(format!("{TOKEN}\n")).await.unwrap();
            assert!(st.present);
            assert_eq!(st.masked.as_deref(), Some("…6d5e"));
            let conn = o.ksef_connection().await.unwrap();
            assert_eq!(conn.token.expose(), TOKEN);
            assert_eq!(conn.seller_nip, "1234563218");
            assert_no_token("the connection's Debug", &format!("{conn:?}"));

            // Another KSeF (another port) has its own entry: nothing stored there.
            let other = tempfile::tempdir().unwrap();
            let o2 = ops(&fleet(other.path(), port() + 1));
            assert!(!o2.ksef_token_status().await.unwrap().present);
            let e = o2.ksef_connection().await.unwrap_err();
            assert!(
                matches!(e, OpsError::Key(KeyError::MissingKsefToken { .. })),
                "{e:?}"
            );
            assert!(e.to_string().contains("maictl ksef token set"), "{e}");

            // Replace, then delete, through the real maictl (token on stdin).
            let replaced = TOKEN.replace("6d5e", "7a7a");
            let out = maictl(&f, &["ksef", "token", "set"], Some(&replaced)).await;
            assert!(out.status.success(), "{}", text(&out));
            assert!(
                text(&out).contains("token stored (…7a7a)"),
                "{}",
                text(&out)
            );
            assert_no_token("maictl ksef token set", &text(&out));
            assert_eq!(o.ksef_connection().await.unwrap().token.expose(), replaced);
            let out = maictl(&f, &["ksef", "token", "status", "--json"], None).await;
            assert!(out.status.success(), "{}", text(&out));
            let st: KsefTokenStatus = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!((st.present, st.masked.as_deref()), (true, Some("…7a7a")));
            let out = maictl(&f, &["ksef", "token", "set"], Some("two words")).await;
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            assert!(text(&out).contains("one line"), "{}", text(&out));
            let out = maictl(&f, &["ksef", "token", "delete"], None).await;
            assert!(out.status.success(), "{}", text(&out));
            assert!(text(&out).contains("no token stored"), "{}", text(&out));
            assert!(!o.ksef_token_status().await.unwrap().present);
            // Deleting what is gone is not an error.
            o.ksef_token_delete().await.unwrap();

            let records = audit.read().unwrap();
            let seen: Vec<(&str, &str)> = records
                .iter()
                .map(|r| (r.action.as_str(), r.outcome.as_str()))
                .collect();
            assert_eq!(
                seen,
                [
                    ("ksef_token_set", "started"),
                    ("ksef_token_set", "ok"),
                    ("ksef_token_set", "started"),
                    ("ksef_token_set", "ok"),
                    ("ksef_token_delete", "started"),
                    ("ksef_token_delete", "ok"),
                    ("ksef_token_delete", "started"),
                    ("ksef_token_delete", "ok"),
                ]
            );
            assert!(records.iter().all(|r| r.client == "seller 1234563218"));
            assert_eq!(records[3].detail["token"], "…7a7a");
            assert_no_token(
                "the audit log",
                &std::fs::read_to_string(audit.path()).unwrap(),
            );
            println!("ksef token: set/replace/status/delete through the real Secret Service ok");
        }
        "locked" => {
            let o = ops(&f);
            let e = o.ksef_token_set(TOKEN.into()).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    OpsError::Key(KeyError::Locked(_)) | OpsError::NoKeychain(_)
                ),
                "{e:?}"
            );
            assert!(
                e.to_string().contains("unlock") || e.to_string().contains("locked"),
                "{e}"
            );
            assert_no_token("the error", &e.to_string());
            let outcomes: Vec<String> = audit
                .read()
                .unwrap()
                .into_iter()
                .map(|r| r.outcome)
                .collect();
            if matches!(e, OpsError::Key(_)) {
                assert_eq!(outcomes, ["started", "failed"]);
            }
            let out = maictl(&f, &["ksef", "token", "set"], Some(TOKEN)).await;
            assert_eq!(out.status.code(), Some(4), "{}", text(&out));
            assert_no_token("maictl", &text(&out));
            println!("ksef token: locked -> {e}");
        }
        "absent" => {
            let o = ops(&f);
            let e = o.ksef_token_status().await.unwrap_err().to_string();
            assert!(e.contains("not available"), "{e}");
            let out = maictl(&f, &["ksef", "token", "set"], Some(TOKEN)).await;
            assert_eq!(out.status.code(), Some(4), "{}", text(&out));
            assert!(
                text(&out).contains("never stored in plain text"),
                "{}",
                text(&out)
            );
            assert_no_token("maictl", &text(&out));
            assert!(audit.read().unwrap().is_empty());
            println!("ksef token: absent -> {e}");
        }
        other => panic!("MAI_KEYCHAIN_EXPECT={other} is not one of unlocked, locked, absent"),
    }
}
