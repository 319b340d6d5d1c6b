//! End to end on the real Docker engine: one client deployed as containers (its tracker
//! from deploy/build-images.sh, a stand-in chat app FROM scratch, the OpenRouter
//! simulator), driven through the operator library as the console and maictl drive it:
//! change its markup (fleet file, comments kept, audit), change its monthly limit (the
//! simulator's key cap, the tracker's terms), update its tracker with a canary that fails
//! its health gate (rolled back, ledger intact), then with one that passes (updated,
//! every event kept, totals equal but for the gate's own probe).
//!
//! Needs a Docker engine, so it runs only when `MAI_TEST_DOCKER=1` says one answers (like
//! crates/mai-tracker/tests/fleet_e2e.rs); elsewhere it says it was skipped and why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use mai_core::openrouter::key_hash;
use mai_ops::keys::SecretKind;
use mai_ops::ops::change::{ApplyState, AuditAction, AuditOutcome, ClientChange, MarkupChange};
use mai_ops::ops::update::{
    ClientOutcome, GateCheck, TargetState, UpdatePlan, UpdateProgress, UpdateSummary,
};
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::tracker::{Event, EventPage, Status, PROBE_USER};
use rust_decimal::Decimal;

const TAG: &str = "upd";
const MGMT: &str = "sk-or-v1-2222222222222222222222222222222222222222222222222222222222222222";
const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000d1";
const PROXY: &str = "proxy-token-update-e2e-0000";
const READ: &str = "read-token-update-e2e-00000";
const ADMIN: &str = "admin-token-update-e2e-0000";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// The gate of the Docker tests (see fleet_e2e.rs).
fn docker_tests_enabled(test: &str) -> bool {
    if std::env::var("MAI_TEST_DOCKER").is_ok_and(|v| v == "1") {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs a Docker engine; set MAI_TEST_DOCKER=1 to run it \
         (./test.sh does, after starting dockerd)"
    );
    false
}

/// Everything this test started, removed at the end (containers with their anonymous
/// volumes, the network) whatever happened.
struct Deployment {
    label: String,
    network: String,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=mai.test={}", self.label),
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
        // The engine may still be detaching the removed containers' endpoints.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("docker")
            .args(["network", "rm", &self.network])
            .output()
            .is_ok_and(|o| !o.status.success())
            && Command::new("docker")
                .args(["network", "inspect", &self.network])
                .output()
                .is_ok_and(|o| o.status.success())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base}/readyz never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_events(http: &reqwest::Client, base: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let p: EventPage = http
            .get(format!("{base}/api/v1/events?after={after}&limit=1000"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(p.events);
        after = p.next_cursor;
        if !p.has_more {
            break;
        }
    }
    out.sort_by(|a, b| a.generation_id.cmp(&b.generation_id));
    out
}

fn image_of(container: &str) -> String {
    docker(&["inspect", "-f", "{{.Config.Image}}", container])
}

fn data_volume(container: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
        container,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_and_update_a_deployed_client_with_a_failing_then_a_passing_canary() {
    if !docker_tests_enabled(
        "change_and_update_a_deployed_client_with_a_failing_then_a_passing_canary",
    ) {
        return;
    }
    let root = repo_root();
    let t0 = Instant::now();
    run(Command::new(root.join("deploy/build-images.sh"))
        .arg(TAG)
        .env("MAI_IMAGE_PROFILE", "image-test"));
    run(Command::new(root.join("deploy/build-update-test-images.sh")).arg(TAG));
    println!("images ready in {:.1} s", t0.elapsed().as_secs_f64());

    // One client, named after this process: other tests on the same engine label theirs
    // too, and the console finds containers by label.
    let pid = std::process::id();
    let client = format!("upd{pid}");
    let dep = Deployment {
        label: format!("update-e2e-{pid}"),
        network: format!("mai-update-e2e-{pid}"),
    };
    docker(&["network", "create", &dep.network]);
    let test_label = format!("mai.test={}", dep.label);
    let sim_name = format!("mai-update-e2e-{pid}-sim");
    docker(&[
        "run",
        "-d",
        "--name",
        &sim_name,
        "--network",
        &dep.network,
        "-l",
        &test_label,
        "-e",
        &format!("MAI_SIM_MANAGEMENT_KEY={MGMT}"),
        "-p",
        "127.0.0.1::8090",
        &format!("mai-sim:{TAG}"),
        "--fast",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("openrouter.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The tracker runs as uid 10001; a test key may be world-readable.
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let tracker_name = format!("{client}-tracker");
    let client_label = format!("mai.client={client}");
    docker(&[
        "run",
        "-d",
        "--name",
        &tracker_name,
        "--network",
        &dep.network,
        "--network-alias",
        "tracker",
        "-l",
        &test_label,
        "-l",
        &client_label,
        "-l",
        "mai.role=tracker",
        "-v",
        &format!("{}:/run/secrets/openrouter-key:ro", key_file.display()),
        "-e",
        "OPENROUTER_API_KEY_FILE=/run/secrets/openrouter-key",
        "-e",
        &format!("OPENROUTER_BASE_URL=http://{sim_name}:8090/api/v1"),
        "-e",
        &format!("MAI_ORG_ID={client}"),
        "-e",
        &format!("MAI_TRACKER_PROXY_TOKEN={PROXY}"),
        "-e",
        &format!("MAI_TRACKER_READ_TOKEN={READ}"),
        "-e",
        &format!("MAI_TRACKER_ADMIN_TOKEN={ADMIN}"),
        "-e",
        "MAI_TRACKER_TLS=off",
        "-e",
        "OPENROUTER_USAGE_SYNC_INTERVAL=0",
        "-p",
        "127.0.0.1::8080",
        "--restart",
        "unless-stopped",
        &format!("mai-tracker:{TAG}"),
    ]);
    let chat_name = format!("{client}-chat");
    docker(&[
        "run",
        "-d",
        "--name",
        &chat_name,
        "--network",
        &dep.network,
        "-l",
        &test_label,
        "-l",
        &client_label,
        "-l",
        "mai.role=chat",
        "-e",
        "OPENAI_API_BASE_URL=http://tracker:8080/v1",
        &format!("mai-chat-standin:{TAG}"),
    ]);
    let port = |name: &str, p: &str| {
        format!(
            "http://{}",
            docker(&["port", name, p]).lines().next().unwrap().trim()
        )
    };
    let sim = port(&sim_name, "8090/tcp");
    let base = port(&tracker_name, "8080/tcp");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let volume_before = data_volume(&tracker_name);
    assert!(!volume_before.is_empty(), "the tracker's /data is a volume");

    // Some usage, from two people.
    for n in 0..6 {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(PROXY)
            .header("X-OpenWebUI-User-Id", format!("user-{}", n % 2))
            .json(&serde_json::json!({
                "model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": format!("question {n}")}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }

    // The console's view of this fleet.
    std::env::set_var("UPDATE_E2E_READ", READ);
    std::env::set_var("UPDATE_E2E_ADMIN", ADMIN);
    let fleet_path = dir.path().join("fleet.toml");
    let fleet_text = format!(
        "# The update test's fleet: comments and order stay as written.\n\
         [console]\ndata_dir = \"console\"\n\n[openrouter]\nbase_url = \"{sim}/api/v1\"\n\n\
         [[hosts]]\nname = \"local\"\ndocker = \"unix:///var/run/docker.sock\"\ntimeout_ms = 10000\n\n\
         [[clients]]\n# deployed by this test\nid = \"{client}\"\nlegal_name = \"Update Test Sp. z o.o.\"\n\
         nip = \"526-104-08-28\"\naddress = \"ul. Prosta 1\"\nhost = \"local\"\n\
         # the price\nmarkup = \"1.3\"\nmonthly_limit_usd = \"100\"  # USD of client cost\n\
         tracker_url = \"{base}\"\ntracker_read_token = \"env:UPDATE_E2E_READ\"\n\
         tracker_admin_token = \"env:UPDATE_E2E_ADMIN\"\n"
    );
    std::fs::write(&fleet_path, &fleet_text).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    kc.set(SecretKind::OpenRouter, &client, KEY).unwrap();
    kc.set_management_key(MGMT).unwrap();
    let ops = Ops::new(Fleet::load(&fleet_path).unwrap(), Ok(kc)).unwrap();
    let today = ops.today();

    // Change its markup from the first day of next month.
    let next_month = mai_core::time::YearMonth::of(today).next().first_day();
    let r = ops
        .change_client(
            &client,
            &ClientChange {
                markup: Some(MarkupChange {
                    rate: "1.4".into(),
                    from: next_month.to_string(),
                }),
                ..Default::default()
            },
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(r.tracker, ApplyState::Done);
    let text = std::fs::read_to_string(&fleet_path).unwrap();
    assert!(
        text.contains(&format!(
            "markup = \"1.3\"\nmarkup_changes = [{{ from = {next_month}, rate = \"1.4\" }}]\n"
        )),
        "{text}"
    );
    for c in [
        "# The update test's fleet",
        "# deployed by this test",
        "# the price",
        "# USD of client cost",
    ] {
        assert!(text.contains(c), "{c} kept:\n{text}");
    }

    // Change its monthly limit: the simulator's key cap and the tracker's terms.
    let r = ops
        .change_client(
            &client,
            &ClientChange {
                monthly_limit_usd: Some("200".into()),
                ..Default::default()
            },
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(
        (r.openrouter_key, r.tracker),
        (ApplyState::Done, ApplyState::Done)
    );
    let k: serde_json::Value = http
        .get(format!("{sim}/api/v1/keys/{}", key_hash(KEY)))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        k["data"]["limit"],
        serde_json::json!(153.84),
        "200 / 1.3, cents down: {k}"
    );
    let status: Status = http
        .get(format!("{base}/api/v1/status"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let terms = status.terms.unwrap();
    assert_eq!(terms.monthly_limit_usd, Some(Decimal::from(200)));
    assert_eq!(
        terms.markup.rate_on(next_month),
        Decimal::from_str("1.4").unwrap()
    );
    println!("change: markup from {next_month} and limit 200 USD applied (key cap 153.84)");

    // The ledger before any update.
    let before = all_events(&http, &base).await;
    assert_eq!(before.len(), 6);

    let progress_log = std::sync::Mutex::new(Vec::new());
    let progress = |p: UpdateProgress| progress_log.lock().unwrap().push(p);
    let update = |image: String| UpdatePlan {
        tracker_image: Some(image),
        parallelism: 4,
        gate_timeout_ms: 15_000,
        clients: vec![client.clone()],
        ..Default::default()
    };

    // A canary that fails its gate: the broken tracker exits; rolled back.
    let broken = format!("mai-tracker:{TAG}-broken");
    let pv = ops.update_preview(&update(broken.clone())).await.unwrap();
    assert_eq!(pv.canary.as_deref(), Some(client.as_str()));
    assert_eq!(pv.clients[0].targets[0].state, TargetState::Update);
    assert_eq!(
        pv.clients[0].targets[0].current_image.as_deref(),
        Some(format!("mai-tracker:{TAG}").as_str())
    );
    let s: UpdateSummary = ops.update_images(&update(broken), &progress).await.unwrap();
    println!("failing canary: {s:#?}");
    assert_eq!(
        (s.updated, s.rolled_back, s.skipped, s.failed),
        (0, 1, 0, 0)
    );
    assert!(s.stopped.as_deref().unwrap().contains("canary"), "{s:?}");
    let c = &s.clients[0];
    assert!(c.canary);
    assert_eq!(c.gate.len(), 1);
    assert_eq!(c.gate[0].check, GateCheck::TrackerReady);
    assert!(
        !c.gate[0].passed && c.gate[0].detail.contains("not running"),
        "{:?}",
        c.gate
    );
    assert_eq!(image_of(&tracker_name), format!("mai-tracker:{TAG}"));
    assert_eq!(data_volume(&tracker_name), volume_before);
    wait_ready(&http, &base).await;
    assert_eq!(
        all_events(&http, &base).await,
        before,
        "the ledger is exactly as it was"
    );
    let parked = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("name={tracker_name}-mai-previous"),
    ]);
    assert!(parked.is_empty(), "no parked container left");
    {
        let log = progress_log.lock().unwrap();
        assert!(matches!(log[0], UpdateProgress::Planned { .. }));
        assert!(log.iter().any(|p| matches!(
            p,
            UpdateProgress::Phase {
                phase: mai_ops::ops::update::UpdatePhase::RollingBack,
                ..
            }
        )));
    }

    // One that passes: the tracker and the chat app updated, every event kept.
    let next = format!("mai-tracker:{TAG}-next");
    let plan = UpdatePlan {
        chat_image: Some(format!("mai-chat-standin:{TAG}-next")),
        ..update(next.clone())
    };
    let s = ops.update_images(&plan, &progress).await.unwrap();
    println!("passing update: {s:#?}");
    assert_eq!(
        (s.updated, s.rolled_back, s.skipped, s.failed),
        (1, 0, 0, 0),
        "{s:#?}"
    );
    assert!(s.stopped.is_none());
    let c = &s.clients[0];
    assert_eq!(c.changes.len(), 2);
    let checks: Vec<_> = c.gate.iter().map(|g| (g.check, g.passed)).collect();
    assert_eq!(
        checks,
        [
            (GateCheck::TrackerReady, true),
            (GateCheck::ProbeMetered, true),
            (GateCheck::ChatHealthy, true)
        ]
    );
    assert!(
        c.gate[2].detail.contains("health check passes"),
        "{:?}",
        c.gate[2]
    );
    assert_eq!(image_of(&tracker_name), next);
    assert_eq!(image_of(&chat_name), format!("mai-chat-standin:{TAG}-next"));
    assert_eq!(
        data_volume(&tracker_name),
        volume_before,
        "the same ledger volume"
    );
    assert_eq!(port(&tracker_name, "8080/tcp"), base, "the same host port");
    let after = all_events(&http, &base).await;
    let (probes, kept): (Vec<_>, Vec<_>) = after
        .into_iter()
        .partition(|e| e.user.id.as_deref() == Some(PROBE_USER));
    assert_eq!(kept, before, "every event as it was");
    assert_eq!(probes.len(), 1, "the gate's probe, and nothing else");
    let total = |v: &[Event]| v.iter().map(|e| e.cost_usd).sum::<Decimal>();
    let today_now: mai_wire::tracker::Today = http
        .get(format!("{base}/api/v1/usage/today"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        today_now.raw_cost_usd,
        total(&before) + total(&probes),
        "totals before = after (plus the probe)"
    );
    assert_eq!(today_now.requests, 7);
    println!(
        "ledger: {} events, {} USD before; the same after, plus the gate's probe ({} USD)",
        before.len(),
        total(&before),
        total(&probes)
    );

    // Up to date now; the history lists both changes and both updates.
    let pv = ops.update_preview(&update(next)).await.unwrap();
    assert_eq!(pv.clients[0].targets[0].state, TargetState::UpToDate);
    assert_eq!(pv.canary, None);
    let h = ops.client_history(&client).unwrap();
    let seen: Vec<_> = h.iter().map(|e| (e.action, e.outcome)).collect();
    assert_eq!(
        seen,
        [
            (AuditAction::ImageUpdate, AuditOutcome::Ok),
            (AuditAction::ImageUpdate, AuditOutcome::RolledBack),
            (AuditAction::ClientChange, AuditOutcome::Ok),
            (AuditAction::ClientChange, AuditOutcome::Ok),
        ]
    );
    assert_eq!(
        h[1].changes[0].new.as_deref(),
        Some(format!("mai-tracker:{TAG}-broken").as_str())
    );
    assert_eq!(s.clients[0].outcome, ClientOutcome::Updated);
    drop(dep);
}
