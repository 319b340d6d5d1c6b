//! A client's whole life on the real Docker engine (issue 13): onboarded against the
//! OpenRouter simulator (key created with its monthly cap, secrets in the keychain and
//! in the tracker's read-only secrets volume, the pair healthy, a probe metered, the fleet
//! file appended with its comments kept), chats through its chat app (the stand-in image,
//! signed identity) and its tracker, then offboarded (key disabled on the account, the
//! ledger exported equal to what the tracker served, the volume archived, nothing left
//! on the host but the archive, the fleet entry kept and marked). Needs Docker: runs
//! when `MAI_TEST_DOCKER=1` (test.sh sets it).

mod lifecycle_common;

use std::str::FromStr;
use std::time::Instant;

use lifecycle_common::*;
use mai_ops::ops::lifecycle::{LifecycleStep as S, StepState};
use mai_ops::SecretKind;
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_chat_offboard_on_docker() {
    if !docker_tests_enabled("onboard_chat_offboard_on_docker") {
        return;
    }
    build_images();
    let env = Env::new("/var/run/docker.sock").await;
    let id = client_id("life");
    let _cleanup = Cleanup(id.clone());
    let req = env.request(&id);
    let before = String::from_utf8(env.fleet_bytes()).unwrap();

    // ---- onboard
    let progress = Progress::default();
    let ops = env.ops();
    let t0 = Instant::now();
    let res = ops.onboard(&req, &progress.sink()).await;
    let took = t0.elapsed();
    let res = res.unwrap_or_else(|e| panic!("onboarding failed: {e}"));
    println!(
        "onboarding {id}: {:.1} s end to end (images present; key, network, volumes, secrets, two containers, healthy, probe metered, fleet file written)",
        took.as_secs_f64()
    );
    let steps: Vec<S> = progress
        .events()
        .iter()
        .filter(|p| p.state == StepState::Done)
        .map(|p| p.step)
        .collect();
    assert_eq!(
        steps,
        [
            S::Validate,
            S::Preflight,
            S::CreateKey,
            S::StoreSecrets,
            S::CreateNetwork,
            S::CreateVolumes,
            S::StartTracker,
            S::StartChat,
            S::WaitHealthy,
            S::Probe,
            S::PushTerms,
            S::WriteFleet
        ]
    );
    assert_eq!(res.tracker_container, format!("mai-{id}-tracker"));
    assert!(res.key_label.starts_with("sk-or-v1-…"));

    // The key on the account: named, capped at limit / markup = 130 / 1.3, monthly.
    let keys = env.keys().await;
    let k = keys
        .iter()
        .find(|k| k["hash"] == res.key_hash.as_str())
        .expect("the new key is on the account");
    assert_eq!(k["name"], res.key_name.as_str());
    assert_eq!(
        Decimal::from_str(&k["limit"].to_string()).unwrap(),
        Decimal::from(100)
    );
    assert_eq!(k["limit_reset"], "monthly");
    assert_eq!(k["disabled"], false);
    assert_eq!(res.key_limit_usd, Some(Decimal::from(100)));
    // The key and the tokens in the keychain, the key nowhere in the containers' config.
    let key = env.keychain.get(SecretKind::OpenRouter, &id).unwrap();
    assert_eq!(mai_core::openrouter::key_hash(&key), res.key_hash);
    env.keychain.get(SecretKind::TrackerToken, &id).unwrap();
    env.keychain.get(SecretKind::TrackerReadToken, &id).unwrap();
    for c in [&res.tracker_container, &res.chat_container] {
        let inspect = std::process::Command::new("docker")
            .args(["inspect", c])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&inspect.stdout);
        assert!(!text.contains(&key), "{c}'s configuration holds the key");
    }
    // What the fleet table discovers, and what the Docker engine knows of the client.
    let o = env.objects(&id).await;
    assert_eq!(
        o.containers,
        [format!("mai-{id}-chat"), format!("mai-{id}-tracker")]
    );
    assert_eq!(o.networks, [format!("mai-{id}")]);
    assert_eq!(o.volumes.len(), 3);

    // The fleet file: what was there, byte for byte, then the new entry, which loads.
    let after = String::from_utf8(env.fleet_bytes()).unwrap();
    assert!(after.starts_with(&before), "{after}");
    assert!(after.contains("# A fleet for the onboarding tests. This comment must survive"));
    let ops = env.ops();
    let c = ops.client(&id).unwrap();
    assert_eq!(c.invoice.nip.as_deref(), Some("5261040828"));
    assert_eq!(c.monthly_limit_usd(), Some(Decimal::from(130)));
    assert_eq!(c.tracker_url.as_str(), format!("{}/", res.tracker_url));

    // ---- chat as a user of the client, through its chat app (signed identity)
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = http
            .post(format!("{}/api/chat/completions", res.chat_url))
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
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        ids.push(r.headers()["x-generation-id"].to_str().unwrap().to_string());
    }
    // The tracker metered them for Anna (the JWT the chat app signed), and the console
    // sees them (the fleet table lists the client, sync pulls its events).
    let sync = ops.sync_one(&id).await;
    assert!(sync.ok, "{sync:?}");
    let dash = ops.dashboard(&id).await.unwrap();
    assert!(
        dash.by_user
            .iter()
            .any(|u| u.key.contains("anna@example.invalid") || u.label.contains("Anna")),
        "{:?}",
        dash.by_user
    );
    let rows = ops.refresh().await;
    let row = rows.iter().find(|r| r.client_id == id).unwrap();
    assert!(row.tracker_reachable, "{row:?}");
    // Everything the tracker holds now (probe + 3 chats), for the export's comparison.
    let tracker = ops.tracker(&id).await.unwrap();
    let page = tracker.events(0, 1000).await.unwrap();
    let served: Vec<(String, Decimal)> = page
        .events
        .iter()
        .map(|e| (e.generation_id.clone(), e.cost_usd))
        .collect();
    assert_eq!(served.len(), 4, "{served:?}");
    for g in &ids {
        assert!(served.iter().any(|(i, _)| i == g), "{g} not metered");
    }
    let served_total: Decimal = served.iter().map(|(_, c)| *c).sum();

    // ---- offboard
    let check = ops.offboard_check(&id).await.unwrap();
    assert_eq!(check.containers.len(), 2);
    assert_eq!(check.volumes.len(), 3);
    assert_eq!(check.billing.len(), 2);
    assert!(
        check.billing[1]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("billing is not configured"),
        "{:?}",
        check.billing
    );
    assert_eq!(check.key_label.as_deref(), Some(res.key_label.as_str()));
    let progress = Progress::default();
    let off = ops
        .offboard(&id, &progress.sink())
        .await
        .unwrap_or_else(|e| panic!("offboarding failed: {e}"));
    assert!(off.key_disabled);
    assert!(off.warnings.is_empty(), "{:?}", off.warnings);
    assert_eq!(off.ledger_events, 4);
    assert_eq!(off.ledger_raw_cost_usd, served_total.normalize());
    // The export is a ledger of its own with exactly the events the tracker served.
    let export = std::path::PathBuf::from(off.ledger_export.as_ref().unwrap());
    let ledger = mai_core::ledger::Ledger::open_read_only(&export).unwrap();
    let page = ledger.events_since(0, 1000).unwrap();
    let mut exported: Vec<(String, Decimal)> = page
        .events
        .iter()
        .map(|e| (e.event.generation_id.clone(), e.event.cost_usd))
        .collect();
    let mut served = served;
    exported.sort();
    served.sort();
    assert_eq!(exported, served);
    let archive = std::path::PathBuf::from(off.archive.as_ref().unwrap());
    assert!(archive.starts_with(env.dir.path().join("data/offboarded")));
    assert!(std::fs::metadata(&archive).unwrap().len() > 1000);

    // The key is disabled on the account; nothing is left on the host.
    let keys = env.keys().await;
    let k = keys
        .iter()
        .find(|k| k["hash"] == res.key_hash.as_str())
        .unwrap();
    assert_eq!(k["disabled"], true);
    assert!(
        env.objects(&id).await.is_empty(),
        "{:?}",
        env.objects(&id).await
    );
    assert!(env.keychain.get(SecretKind::OpenRouter, &id).is_err());
    assert!(env.keychain.get(SecretKind::TrackerToken, &id).is_err());
    // The fleet entry stays (past months bill), marked; the fleet table skips it.
    let ops = env.ops();
    let c = ops.client(&id).unwrap();
    assert_eq!(c.offboarded, Some(off.offboarded_on));
    assert_eq!(ops.fleet.active_clients().count(), 0);
    assert!(ops.refresh().await.iter().all(|r| r.client_id != id));
    assert!(String::from_utf8(env.fleet_bytes())
        .unwrap()
        .contains("This comment must survive"));
    // Both actions are in the audit log.
    let audit = env.audit();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(actions, [("onboard", "ok"), ("offboard", "ok")]);
    println!(
        "offboarding {id}: {:.1} s; ledger export {} events, ${} = what the tracker served; archive {} bytes",
        off.elapsed_ms as f64 / 1000.0,
        off.ledger_events,
        off.ledger_raw_cost_usd,
        off.archive_bytes
    );
}
