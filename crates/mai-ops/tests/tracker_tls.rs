//! Console to tracker across hosts, no clear text: a real tracker (in process) serving
//! HTTPS with its self-signed certificate, and the console pinning that certificate by
//! its SHA-256 (fleet file `tracker_cert_sha256`). A wrong pin is refused naming both
//! fingerprints; the certificate survives a restart (same fingerprint, same pin).

use std::collections::HashMap;

use mai_ops::tracker::TrackerError;
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::openrouter::{OpenRouterSim, SimConfig, SimHandle};

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b2";
const ADMIN: &str = "admin-token-tls-test-0";
const READ: &str = "read-token-tls-test-00";

async fn tracker(sim: &SimHandle, dir: &std::path::Path, listen: &str) -> mai_tracker::Tracker {
    let env: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.base_url()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", listen.to_owned()),
        ("MAI_TRACKER_TLS", "on".to_owned()),
        (
            "MAI_TRACKER_DB",
            dir.join("tracker.sqlite").display().to_string(),
        ),
        (
            "MAI_TRACKER_PROXY_TOKEN",
            "proxy-token-tls-test-0".to_owned(),
        ),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    mai_tracker::start(cfg).await.unwrap()
}

fn console(dir: &std::path::Path, url: &str, pin: &str) -> Ops {
    // SAFETY: the same values in every test of this file, set before use.
    unsafe {
        std::env::set_var("TLS_TEST_READ_TOKEN", READ);
        std::env::set_var("TLS_TEST_ADMIN_TOKEN", ADMIN);
    }
    let text = format!(
        "[console]\ndata_dir = \"console\"\n\n[[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\ntracker_url = \"{url}\"\ntracker_cert_sha256 = \"{pin}\"\n\
         tracker_read_token = \"env:TLS_TEST_READ_TOKEN\"\ntracker_admin_token = \"env:TLS_TEST_ADMIN_TOKEN\"\n"
    );
    let fleet = Fleet::parse(&text, &dir.join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut o = Ops::new(fleet, Ok(kc)).unwrap();
    o.docker_enabled = false;
    o
}

#[tokio::test]
async fn console_reaches_an_https_tracker_only_through_the_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let t = tracker(&sim, dir.path(), "127.0.0.1:0").await;
    let fp = t
        .tls_fingerprint
        .clone()
        .expect("MAI_TRACKER_TLS=on serves HTTPS");
    let url = t.base_url();
    assert!(url.starts_with("https://"), "{url}");

    // /healthz shows the fingerprint (read on the tracker's host before pinning it).
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let health = insecure
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        health.contains(&format!("tls_cert_sha256={fp}")),
        "{health}"
    );
    // The key stays on the data volume next to the ledger, owner-only.
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.path().join("tracker-tls-key.pem")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", url.replace("https://", "http://")))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // Pinned: refresh and sync work.
    let cdir = tempfile::tempdir().unwrap();
    let o = console(cdir.path(), &url, &fp);
    let row = o.refresh().await.remove(0);
    assert!(row.tracker_reachable, "{:?}", row.tracker_error);
    let out = o.sync_one("acme").await;
    assert!(out.ok, "{out:?}");

    // Another pin: refused, naming both fingerprints and what to do.
    let wrong = "00:".repeat(31) + "00";
    let o2 = console(tempfile::tempdir().unwrap().path(), &url, &wrong);
    let err = o2
        .tracker("acme")
        .await
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::CertMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&fp) && msg.contains(&wrong), "{msg}");

    // A restart keeps the certificate: same fingerprint, the pin still holds.
    let addr = t.addr;
    t.shutdown().await.unwrap();
    let t2 = tracker(&sim, dir.path(), &addr.to_string()).await;
    assert_eq!(t2.tls_fingerprint.as_deref(), Some(fp.as_str()));
    let row = o.refresh().await.remove(0);
    assert!(row.tracker_reachable, "{:?}", row.tracker_error);
    t2.shutdown().await.unwrap();
}
