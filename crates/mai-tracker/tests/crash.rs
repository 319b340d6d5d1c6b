//! The real binary: kill -9 during a burst, restart, reconcile; and graceful SIGTERM.

mod common;
use common::*;
use mai_core::ledger::Ledger;
use mai_sim::openrouter::{OpenRouterSim, SimConfig, SimHandle};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_tracker(sim: &SimHandle, db: &Path, port: u16) -> Child {
    let mut env = env_map(&sim.base_url(), db, "acme");
    env.insert("MAI_TRACKER_LISTEN", format!("127.0.0.1:{port}"));
    env.insert("MAI_TRACKER_MAX_BODY_BYTES", "1048576".into());
    env.insert("RUST_LOG", "warn".into());
    Command::new(env!("CARGO_BIN_EXE_mai-tracker"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning mai-tracker")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    eventually("tracker ready", Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

fn slow_sim() -> SimConfig {
    SimConfig {
        seed: 5,
        chunk_interval: Duration::from_millis(40),
        completion_tokens: (40, 60),
        ..SimConfig::fast()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_and_doubles_nothing() {
    let sim = OpenRouterSim::spawn(slow_sim()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn_tracker(&sim, &db, port);
    wait_ready(&http, &base).await;

    // A few completed requests first, then a burst of streams that are in flight
    // (headers received, tokens still dripping) when the tracker is killed.
    for _ in 0..5 {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(PROXY)
            .json(&body(false, Some("early")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let http = http.clone();
        let base = base.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(PROXY)
                .json(&body(true, Some(&format!("burst-{i}"))))
                .send()
                .await;
            if let Ok(r) = r {
                let _ = tx.send(r.status().as_u16());
                let _ = r.bytes().await; // errors once the tracker dies
            }
        }));
    }
    drop(tx);
    for _ in 0..30 {
        assert_eq!(rx.recv().await, Some(200), "every burst stream started");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    // The simulator notices the dropped connections and records cancelled generations.
    eventually(
        "simulator recorded all 35 generations",
        Duration::from_secs(20),
        || async { sim.generations().len() == 35 },
    )
    .await;

    let mut child = spawn_tracker(&sim, &db, port);
    wait_ready(&http, &base).await;
    eventually(
        "reconciliation confirmed everything",
        Duration::from_secs(30),
        || async {
            let r: serde_json::Value = http
                .post(format!("{base}/api/v1/sync"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["still_provisional"] == 0 && r["status"] == "ok"
        },
    )
    .await;
    let truth = sim.generations();
    let ledger = Ledger::open(&db).unwrap();
    let events = ledger.events_since(0, 10_000).unwrap().events;
    let ids: Vec<_> = events
        .iter()
        .map(|e| e.event.generation_id.clone())
        .collect();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no generation twice");
    let truth_ids: HashSet<_> = truth.iter().map(|g| g.id.clone()).collect();
    assert_eq!(unique, truth_ids, "every served generation, nothing else");
    for g in &truth {
        let e = ledger.get("acme", &g.id).unwrap().unwrap().event;
        assert_eq!(e.cost_usd, g.cost, "{}", g.id);
        assert_eq!(e.tokens.completion, g.completion_tokens as u64, "{}", g.id);
        assert_eq!(e.state, mai_core::usage::EventState::Confirmed);
    }
    assert_eq!(ledger.provisional_count("acme").unwrap(), 0);
    assert_eq!(truth.iter().filter(|g| g.cancelled).count(), 30);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_streams_finish_and_flushes_the_ledger() {
    let sim = OpenRouterSim::spawn(SimConfig {
        chunk_interval: Duration::from_millis(20),
        completion_tokens: (40, 40),
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn_tracker(&sim, &db, port);
    wait_ready(&http, &base).await;
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(PROXY)
        .json(&body(true, Some("term")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let text = r.text().await.unwrap();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream finished after SIGTERM"
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    let truth = sim.generations();
    assert_eq!(truth.len(), 1);
    let ledger = Ledger::open(&db).unwrap();
    let e = ledger
        .get("acme", &truth[0].id)
        .unwrap()
        .expect("flushed before exit")
        .event;
    assert_eq!(e.cost_usd, truth[0].cost);
    assert_eq!(e.state, mai_core::usage::EventState::Confirmed);
}

/// kill -9 mid-stream, and the crash journal then holds garbage besides the real ids (a
/// torn line, a line that is not JSON, bytes that are not UTF-8, an entry with an
/// oversize user name): the restart is not stopped by them, they are set aside in the
/// quarantine file and counted, and every served generation is reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_a_damaged_journal_still_starts_and_reconciles_everything() {
    use std::io::Write;
    let sim = OpenRouterSim::spawn(slow_sim()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn_tracker(&sim, &db, port);
    wait_ready(&http, &base).await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let http = http.clone();
        let base = base.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(PROXY)
                .json(&body(true, Some(&format!("stream-{i}"))))
                .send()
                .await;
            if let Ok(r) = r {
                let _ = tx.send(r.status().as_u16());
                let _ = r.bytes().await;
            }
        }));
    }
    drop(tx);
    for _ in 0..12 {
        assert_eq!(rx.recv().await, Some(200), "every stream started");
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    eventually(
        "simulator recorded all 12 generations",
        Duration::from_secs(20),
        || async { sim.generations().len() == 12 },
    )
    .await;

    // Damage the journal the killed process left.
    let journal = dir.path().join("t.sqlite.journal");
    let real = sim.generations()[0].id.clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    let oversize = serde_json::json!({
        "id": real, "at": "2026-01-01T00:00:00Z", "model": "openai/gpt-4o-mini",
        "user": {"id": "u", "name": "ż".repeat(3000)},
    });
    f.write_all(format!("{oversize}\n").as_bytes()).unwrap();
    f.write_all(b"this is not json\n").unwrap();
    f.write_all(&[0xc3, 0x28, 0xff, b'\n']).unwrap();
    f.write_all(br#"{"id":"gen-torn","at":"2026-0"#).unwrap(); // torn: no newline
    drop(f);

    let mut child = spawn_tracker(&sim, &db, port);
    wait_ready(&http, &base).await;
    eventually(
        "reconciliation confirmed everything",
        Duration::from_secs(30),
        || async {
            let r: serde_json::Value = http
                .post(format!("{base}/api/v1/sync"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["still_provisional"] == 0 && r["status"] == "ok"
        },
    )
    .await;
    let m = http
        .get(format!("{base}/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("mai_journal_quarantined_total{org=\"acme\"} 3"),
        "{m}"
    );
    let quarantine = std::fs::read(dir.path().join("t.sqlite.journal.quarantine")).unwrap();
    assert_eq!(quarantine.iter().filter(|b| **b == b'\n').count(), 3);

    let truth = sim.generations();
    let ledger = Ledger::open(&db).unwrap();
    let events = ledger.events_since(0, 10_000).unwrap().events;
    let ids: HashSet<_> = events
        .iter()
        .map(|e| e.event.generation_id.clone())
        .collect();
    assert_eq!(ids.len(), events.len(), "no generation twice");
    let truth_ids: HashSet<_> = truth.iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids, truth_ids, "every served generation, nothing else");
    for g in &truth {
        let e = ledger.get("acme", &g.id).unwrap().unwrap().event;
        assert_eq!(e.cost_usd, g.cost, "{}", g.id);
        assert_eq!(e.state, mai_core::usage::EventState::Confirmed);
        assert!(e.user.name.as_ref().is_none_or(|n| n.len() <= 512));
    }
    let _ = child.kill();
    let _ = child.wait();
}
