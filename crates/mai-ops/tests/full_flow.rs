//! A client's whole life on the real Docker engine (issue 13), once on a plain host and
//! once as services on a one-node Docker Swarm, through the same `Ops` entry points the
//! console and maictl call: onboard → chat through the client's chat app and tracker,
//! metered (the OpenRouter simulator) → change its markup → update its tracker with a
//! canary whose image fails its health gate (rolled back: the previous image runs, the
//! ledger is as it was) → update to an image that passes → rotate its key (the new key
//! works, the old one is disabled at the simulator; on Swarm a new secret version) →
//! offboard (nothing left on the engine, the archive written). Then bad input on Swarm:
//! a placement no node matches, an image that does not exist (nothing left).
//!
//! Needs Docker: runs when `MAI_TEST_DOCKER=1` (test.sh sets it). The swarm cases make
//! the engine a one-node swarm if it is not one and leave it so.

mod lifecycle_common;

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lifecycle_common::*;
use mai_ops::docker::ContainerRole;
use mai_ops::ops::change::{ApplyState, ClientChange, MarkupChange};
use mai_ops::ops::lifecycle::{LifecycleStep as S, StepState};
use mai_ops::ops::update::{ClientOutcome, TargetState, UpdatePlan, UpdateProgress};
use mai_ops::{Ops, SecretKind};
use rust_decimal::Decimal;

/// Every event the tracker holds: (generation id, cost).
async fn ledger(ops: &Ops, id: &str) -> Vec<(String, Decimal)> {
    let t = ops.tracker(id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.ready().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the tracker of {id} is not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut v: Vec<(String, Decimal)> = t
        .events(0, 1000)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.generation_id, e.cost_usd))
        .collect();
    v.sort();
    v
}

/// Until the generation `g` is in the tracker's ledger (its writer batches).
async fn wait_metered(ops: &Ops, id: &str, g: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ledger(ops, id).await.iter().any(|(i, _)| i == g) {
        assert!(Instant::now() < deadline, "{g} not metered within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One chat request as a user of the client, through its chat app; the generation id.
async fn chat(chat_url: &str, n: u32) -> String {
    let r = reqwest::Client::new()
        .post(format!("{chat_url}/api/chat/completions"))
        .header("X-Standin-User-Id", "u-anna")
        .header("X-Standin-User-Email", "anna@example.invalid")
        .header("X-Standin-User-Name", "Anna Nowak")
        .json(&serde_json::json!({
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": format!("question {n}")}]
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let gen = r
        .headers()
        .get("x-generation-id")
        .map(|h| h.to_str().unwrap().to_string());
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
    gen.expect("a generation id")
}

fn plan(id: &str, image: String) -> UpdatePlan {
    UpdatePlan {
        tracker_image: Some(image),
        parallelism: 1,
        gate_timeout_ms: 20_000,
        clients: vec![id.to_string()],
        ..Default::default()
    }
}

/// The tracker image the client runs now, as the update preview reads it from the
/// engine (the container's image, or the service's `mai.image`).
async fn running_tracker_image(ops: &Ops, id: &str) -> String {
    let pv = ops
        .update_preview(&plan(id, tracker_image()))
        .await
        .unwrap();
    pv.clients[0].targets[0].current_image.clone().unwrap()
}

async fn full_flow(mode: &str) {
    build_tracker_variants();
    if mode == "swarm" {
        ensure_swarm();
    }
    let env = Env::with_mode("/var/run/docker.sock", mode).await;
    let id = client_id(&format!("flow-{mode}"));
    let _cleanup = Cleanup(id.clone());
    let mut req = env.request(&id);
    if mode == "swarm" {
        req.deploy.placement = vec!["node.role==manager".into()];
    }

    // ---- onboard
    let progress = Progress::default();
    let ops = env.ops();
    let t0 = Instant::now();
    let res = ops
        .onboard(&req, &progress.sink())
        .await
        .unwrap_or_else(|e| panic!("onboarding on {mode} failed: {e}"));
    println!(
        "onboarding {id} on {mode}: {:.1} s end to end",
        t0.elapsed().as_secs_f64()
    );
    let done: Vec<S> = progress
        .events()
        .iter()
        .filter(|p| p.state == StepState::Done)
        .map(|p| p.step)
        .collect();
    assert_eq!(done.last(), Some(&S::WriteFleet), "{done:?}");
    let o = env.objects(&id).await;
    assert_eq!(o.networks, [format!("mai-{id}")]);
    // A swarm publishes on every node's address: HTTPS with the pinned certificate
    // onboarding made (invariant 22); the local loopback host stays plain HTTP.
    let fleet_ops = env.ops();
    let c = fleet_ops.client(&id).unwrap();
    let swarm = mode == "swarm";
    assert_eq!(
        c.tracker_url.scheme(),
        if swarm { "https" } else { "http" },
        "{}",
        c.tracker_url
    );
    assert_eq!(c.tracker_cert_sha256.is_some(), swarm);
    if mode == "swarm" {
        assert_eq!(
            o.services,
            [format!("mai-{id}-chat"), format!("mai-{id}-tracker")]
        );
        assert!(
            o.secrets.contains(&format!("mai-{id}-openrouter-key-v1")),
            "{o:?}"
        );
        assert_eq!(o.volumes.len(), 2, "{o:?}");
        let fleet = std::fs::read_to_string(&env.fleet_path).unwrap();
        assert!(
            fleet.contains("placement = [\"node.role==manager\"]"),
            "{fleet}"
        );
        let net = Command::new("docker")
            .args([
                "network",
                "inspect",
                "-f",
                "{{.Driver}} {{.Attachable}}",
                &format!("mai-{id}"),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&net.stdout).trim(), "overlay true");
    } else {
        assert_eq!(
            o.containers,
            [format!("mai-{id}-chat"), format!("mai-{id}-tracker")]
        );
    }
    let key = env.keychain.get(SecretKind::OpenRouter, &id).unwrap();
    let ops = env.ops();

    // ---- chat through the client, metered; the fleet table lists it with its mode
    let mut gens = Vec::new();
    for n in 0..2 {
        gens.push(chat(&res.chat_url, n).await);
    }
    let sync = ops.sync_one(&id).await;
    assert!(sync.ok, "{sync:?}");
    let rows = ops.refresh().await;
    let row = rows.iter().find(|r| r.client_id == id).unwrap();
    assert!(row.tracker_reachable, "{row:?}");
    let tc = row
        .tracker_container
        .as_ref()
        .expect("the tracker is listed");
    assert_eq!(tc.image, tracker_image());
    assert_eq!(tc.state, mai_ops::docker::ContainerState::Running, "{tc:?}");
    assert_eq!(
        row.host_mode.map(|m| m.as_str()),
        Some(mode),
        "the fleet row says the host's mode"
    );
    for g in &gens {
        wait_metered(&ops, &id, g).await;
    }
    let served = ledger(&ops, &id).await;
    assert_eq!(served.len(), 3, "probe + 2 chats: {served:?}");
    let logs: Vec<_> = ops
        .logs(&id, ContainerRole::Tracker, 20, false)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        !logs.is_empty() && logs.iter().all(|l| l.is_ok()),
        "{logs:?}"
    );

    // ---- change its markup from next month
    let next_month = mai_core::time::YearMonth::of(ops.today())
        .next()
        .first_day();
    let r = ops
        .change_client(
            &id,
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
    assert!(std::fs::read_to_string(&env.fleet_path)
        .unwrap()
        .contains(&format!("{{ from = {next_month}, rate = \"1.4\" }}")));
    let ops = env.ops();

    // ---- a canary that fails its gate: rolled back, the previous image runs, the
    // ledger is as it was
    let before = ledger(&ops, &id).await;
    let broken = format!("{}-broken", tracker_image());
    let pv = ops
        .update_preview(&plan(&id, broken.clone()))
        .await
        .unwrap();
    assert_eq!(
        pv.clients[0].targets[0].state,
        TargetState::Update,
        "{pv:?}"
    );
    let log = std::sync::Mutex::new(Vec::new());
    let sink = |p: UpdateProgress| log.lock().unwrap().push(p);
    let t1 = Instant::now();
    let s = ops.update_images(&plan(&id, broken), &sink).await.unwrap();
    println!(
        "failing canary on {mode}: {:.1} s: {}",
        t1.elapsed().as_secs_f64(),
        s.clients[0].detail
    );
    assert_eq!((s.updated, s.rolled_back, s.failed), (0, 1, 0), "{s:#?}");
    assert_eq!(s.clients[0].outcome, ClientOutcome::RolledBack);
    assert!(s.clients[0].gate.iter().any(|g| !g.passed), "{s:#?}");
    assert_eq!(running_tracker_image(&ops, &id).await, tracker_image());
    assert_eq!(ledger(&ops, &id).await, before, "the ledger is as it was");
    if mode == "swarm" {
        let spec = Command::new("docker")
            .args([
                "service",
                "inspect",
                "-f",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                &format!("mai-{id}-tracker"),
            ])
            .output()
            .unwrap();
        let want = Command::new("docker")
            .args(["image", "inspect", "-f", "{{.Id}}", &tracker_image()])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&spec.stdout).trim(),
            String::from_utf8_lossy(&want.stdout).trim(),
            "Swarm runs the previous image (by id) again"
        );
    }

    // ---- an update that passes
    let next = format!("{}-next", tracker_image());
    let t2 = Instant::now();
    let s = ops
        .update_images(&plan(&id, next.clone()), &sink)
        .await
        .unwrap();
    println!(
        "passing update on {mode}: {:.1} s: {}",
        t2.elapsed().as_secs_f64(),
        s.clients[0].detail
    );
    assert_eq!((s.updated, s.rolled_back, s.failed), (1, 0, 0), "{s:#?}");
    assert_eq!(running_tracker_image(&ops, &id).await, next);
    let after = ledger(&ops, &id).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "every event kept, plus the gate's probe"
    );
    for e in &before {
        assert!(after.contains(e), "{e:?} kept");
    }

    // ---- rotate its key
    let rot = ops.rotate(&id).await.unwrap();
    assert!(rot.old_disabled, "{rot:?}");
    assert!(rot.warning.is_none(), "{rot:?}");
    let new_key = env.keychain.get(SecretKind::OpenRouter, &id).unwrap();
    assert_ne!(new_key, key);
    let keys = env.keys().await;
    let old = keys
        .iter()
        .find(|k| k["hash"] == mai_core::openrouter::key_hash(&key).as_str())
        .unwrap();
    assert_eq!(
        old["disabled"], true,
        "the old key is disabled at the simulator"
    );
    let g = chat(&res.chat_url, 9).await;
    wait_metered(&ops, &id, &g).await;
    if mode == "swarm" {
        let o = env.objects(&id).await;
        assert!(
            o.secrets.contains(&format!("mai-{id}-openrouter-key-v2")),
            "{o:?}"
        );
        assert!(
            !o.secrets.contains(&format!("mai-{id}-openrouter-key-v1")),
            "{o:?}"
        );
        // Restart (`service update --force`): Swarm replaces the task, the tracker, on
        // the v2 secret and its data volume, answers with every event.
        let events = ledger(&ops, &id).await;
        let c = ops.restart(&id, ContainerRole::Tracker).await.unwrap();
        assert_eq!(c.state, mai_ops::docker::ContainerState::Running);
        assert_eq!(ledger(&ops, &id).await, events);
        let g = chat(&res.chat_url, 10).await;
        wait_metered(&ops, &id, &g).await;
    }

    // ---- offboard
    let last = ledger(&ops, &id).await;
    let progress = Progress::default();
    let t3 = Instant::now();
    let off = ops
        .offboard(&id, &progress.sink())
        .await
        .unwrap_or_else(|e| panic!("offboarding on {mode} failed: {e}"));
    println!(
        "offboarding {id} on {mode}: {:.1} s; {} events exported",
        t3.elapsed().as_secs_f64(),
        off.ledger_events
    );
    assert!(off.key_disabled);
    assert!(off.warnings.is_empty(), "{:?}", off.warnings);
    let served = ledger_count_of(off.ledger_export.as_deref().unwrap());
    assert_eq!(served, off.ledger_events);
    assert_eq!(
        off.ledger_events,
        last.len() as u64,
        "the export = what the tracker served"
    );
    assert_eq!(
        off.ledger_raw_cost_usd,
        last.iter().map(|(_, c)| *c).sum::<Decimal>().normalize()
    );
    let archive = std::path::PathBuf::from(off.archive.as_ref().unwrap());
    assert!(std::fs::metadata(&archive).unwrap().len() > 1000);
    let o = env.objects(&id).await;
    assert!(o.is_empty(), "nothing left: {o:?}");
    assert!(env.keychain.get(SecretKind::OpenRouter, &id).is_err());
}

fn ledger_count_of(path: &str) -> u64 {
    let l = mai_core::ledger::Ledger::open_read_only(std::path::Path::new(path)).unwrap();
    l.events_since(0, 100_000).unwrap().events.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_a_plain_host() {
    if !docker_tests_enabled("full_flow_on_a_plain_host") {
        return;
    }
    full_flow("plain").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_a_one_node_swarm() {
    if !docker_tests_enabled("full_flow_on_a_one_node_swarm") {
        return;
    }
    full_flow("swarm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_bad_input_leaves_nothing() {
    if !docker_tests_enabled("swarm_bad_input_leaves_nothing") {
        return;
    }
    build_images();
    ensure_swarm();
    let env = Env::with_mode("/var/run/docker.sock", "swarm").await;
    let before = env.fleet_bytes();

    // A placement no node matches: Swarm cannot place the tracker; everything undone.
    let id = client_id("noplace");
    let _cleanup = Cleanup(id.clone());
    let mut req = env.request(&id);
    req.deploy.placement = vec!["node.labels.mai-test-nowhere==yes".into()];
    let progress = Progress::default();
    let t0 = Instant::now();
    let e = env
        .ops()
        .onboard(&req, &progress.sink())
        .await
        .expect_err("no node matches");
    let m = e.to_string();
    println!("unplaceable: {:.1} s: {m}", t0.elapsed().as_secs_f64());
    assert!(
        m.contains("wait_healthy") && m.contains("no suitable node"),
        "{m}"
    );
    assert!(m.contains("placement"), "{m}");
    assert!(t0.elapsed() < Duration::from_secs(90), "failed fast");
    let o = env.objects(&id).await;
    assert!(o.is_empty(), "nothing left: {o:?}");
    assert!(env.keys().await.iter().all(|k| k["disabled"] == true));
    assert_eq!(env.fleet_bytes(), before);
    assert!(env.keychain.get(SecretKind::OpenRouter, &id).is_err());

    // A placement that is no constraint: refused field by field, nothing created.
    let id = client_id("badplace");
    let mut req = env.request(&id);
    req.deploy.placement = vec!["hostname=x".into()];
    let errs = env.ops().onboard_validate(&req);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "deploy.placement");
    assert!(errs[0].message.contains("KEY==VALUE"), "{errs:?}");

    // An image that is not on the node: stopped before anything is created.
    let id = client_id("noimage");
    let _cleanup2 = Cleanup(id.clone());
    let mut req = env.request(&id);
    req.deploy.tracker_image = Some("mai-tracker:no-such-tag-anywhere".into());
    let e = env
        .ops()
        .onboard(&req, &Progress::default().sink())
        .await
        .expect_err("no such image");
    let m = e.to_string();
    assert!(
        m.contains("before anything was created") && m.contains("no-such-tag-anywhere"),
        "{m}"
    );
    assert!(env.objects(&id).await.is_empty());
    assert_eq!(env.fleet_bytes(), before);
}
