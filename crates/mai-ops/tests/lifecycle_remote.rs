//! A client whose tracker is reachable off this machine (issue 13, "the client's pair on
//! a chosen host"): onboarded on the real engine with a non-loopback `publish_address`
//! (the docker0 gateway address, found at run time), its tracker serves HTTPS with the
//! certificate onboarding made and pinned in the fleet entry; a chat through the chat app
//! (plain HTTP to the tracker on the private network) is metered and read by the console
//! over HTTPS with the pin; a wrong pin is refused; offboarding leaves nothing. Needs
//! Docker: runs when `MAI_TEST_DOCKER=1` (test.sh sets it).

mod lifecycle_common;

use lifecycle_common::*;
use mai_ops::ops::lifecycle::LifecycleStep as S;
use mai_ops::ops::lifecycle::StepState;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// The docker0 bridge's IPv4 address: on this machine, not loopback.
fn docker0_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .expect("running `ip -4 -o addr show docker0`");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("docker0 has no IPv4 address: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_off_loopback_is_onboarded_with_https_and_a_pin() {
    if !docker_tests_enabled("a_tracker_off_loopback_is_onboarded_with_https_and_a_pin") {
        return;
    }
    build_images();
    let env = Env::new("/var/run/docker.sock").await;
    let id = client_id("remote");
    let _cleanup = Cleanup(id.clone());
    let addr = docker0_address();
    let mut req = env.request(&id);
    req.deploy.publish_address = Some(addr.clone());
    let port = req.deploy.tracker_port;

    let progress = Progress::default();
    let ops = env.ops();
    let res = ops
        .onboard(&req, &progress.sink())
        .await
        .unwrap_or_else(|e| panic!("onboarding failed: {e}"));
    assert!(progress
        .events()
        .iter()
        .any(|p| p.step == S::WriteFleet && p.state == StepState::Done));
    assert_eq!(res.tracker_url, format!("https://{addr}:{port}"));

    // The fleet entry: https:// and the pin, which loads.
    let fleet = String::from_utf8(env.fleet_bytes()).unwrap();
    assert!(
        fleet.contains(&format!("tracker_url = \"https://{addr}:{port}\"")),
        "{fleet}"
    );
    let ops = env.ops();
    let c = ops.client(&id).unwrap();
    let pin = c
        .tracker_cert_sha256
        .expect("the fleet entry pins the certificate");
    assert!(fleet.contains(&format!("tracker_cert_sha256 = \"{pin}\"")));
    // The published port speaks TLS only: plain HTTP gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}:{port}/readyz"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(
        !plain.as_ref().is_ok_and(|r| r.status().is_success()),
        "{plain:?}"
    );
    // The pin is the certificate the tracker has on its secrets volume (read through
    // the Docker API: the image has no shell).
    let out = std::process::Command::new("docker")
        .args([
            "cp",
            &format!(
                "{}:/run/secrets/tracker-tls-cert.pem",
                res.tracker_container
            ),
            "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pem = Vec::new();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    std::io::Read::read_to_end(
        &mut archive.entries().unwrap().next().unwrap().unwrap(),
        &mut pem,
    )
    .unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    use sha2::Digest as _;
    let got: [u8; 32] = sha2::Sha256::digest(der.as_ref()).into();
    assert_eq!(got, pin.0);

    // A chat as a user, through the chat app (plain HTTP to the tracker inside the
    // client's network): metered, and the console reads it over HTTPS with the pin.
    let r = reqwest::Client::new()
        .post(format!("{}/api/chat/completions", res.chat_url))
        .header("X-Standin-User-Id", "u-anna")
        .header("X-Standin-User-Email", "anna@example.invalid")
        .header("X-Standin-User-Name", "Anna Nowak")
        .json(&serde_json::json!({
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": "question"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let generation = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let sync = ops.sync_one(&id).await;
    assert!(sync.ok, "{sync:?}");
    let rows = ops.refresh().await;
    let row = rows.iter().find(|r| r.client_id == id).unwrap();
    assert!(row.tracker_reachable, "{row:?}");
    let page = ops
        .tracker(&id)
        .await
        .unwrap()
        .events(0, 1000)
        .await
        .unwrap();
    assert!(
        page.events.iter().any(|e| e.generation_id == generation),
        "{generation} not metered: {:?}",
        page.events
    );
    assert_eq!(page.events.len(), 2, "the probe and the chat");

    // A wrong pin is refused, naming both fingerprints.
    let good = env.fleet_bytes();
    let mut wrong = pin.0;
    wrong[0] ^= 0xff;
    let wrong = mai_ops::fleet::CertFingerprint(wrong);
    std::fs::write(
        &env.fleet_path,
        String::from_utf8(good.clone())
            .unwrap()
            .replace(&pin.to_string(), &wrong.to_string()),
    )
    .unwrap();
    let bad = env.ops();
    let row = bad
        .refresh()
        .await
        .into_iter()
        .find(|r| r.client_id == id)
        .unwrap();
    assert!(!row.tracker_reachable, "{row:?}");
    let e = bad
        .tracker(&id)
        .await
        .unwrap()
        .events(0, 10)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pins"), "{e}");
    println!("wrong pin: {e}");
    std::fs::write(&env.fleet_path, &good).unwrap();

    // Offboarding reads the ledger over HTTPS and leaves nothing on the host.
    let off = env
        .ops()
        .offboard(&id, &Progress::default().sink())
        .await
        .unwrap_or_else(|e| panic!("offboarding failed: {e}"));
    assert!(off.key_disabled);
    assert!(off.warnings.is_empty(), "{:?}", off.warnings);
    assert_eq!(off.ledger_events, 2);
    assert!(
        env.objects(&id).await.is_empty(),
        "{:?}",
        env.objects(&id).await
    );
}
