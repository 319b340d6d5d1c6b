//! Faults of the ledger under a real tracker in front of the simulator: nothing lost,
//! nothing doubled, readiness honest; and the sanity caps on manual records.

mod common;
use common::*;
use mai_core::usage::EventState;
use mai_sim::openrouter::SimConfig;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::time::Duration;

async fn ready(env: &Env) -> u16 {
    env.http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn metrics(env: &Env) -> String {
    env.get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series whose line starts with `series` (0 when absent).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn burst(env: &Env, n: usize, tag: &str) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = env.chat(body(i % 2 == 0, Some(&format!("{tag}-{i}"))));
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Another process holds the ledger's write lock (SQLITE_BUSY) in the middle of a burst:
/// the proxy keeps serving, readiness turns false, the writer retries with backoff, and
/// once the lock is gone every generation is in the ledger exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_ledger_mid_burst_loses_and_doubles_nothing() {
    let env = start(SimConfig {
        seed: 21,
        ..SimConfig::fast()
    })
    .await;
    burst(&env, 6, "before").await;
    env.flush().await;
    assert_eq!(ready(&env).await, 200);

    // A second connection takes the write lock and keeps it (what a backup tool or a
    // stray sqlite3 shell does).
    let lock = rusqlite::Connection::open(env.db()).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    burst(&env, 12, "during").await;
    eventually(
        "readiness false while writes fail",
        Duration::from_secs(30),
        || async { ready(&env).await == 503 },
    )
    .await;
    let m = metrics(&env).await;
    assert!(
        metric(
            &m,
            "mai_ledger_write_failures_total{org=\"acme\",kind=\"busy\"}"
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(&m, "mai_ledger_pending_events{org=\"acme\"}") >= 1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        1,
        "{m}"
    );
    // Still proxying while the ledger is down.
    burst(&env, 6, "still").await;

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    eventually(
        "readiness back after the lock is released",
        Duration::from_secs(30),
        || async { ready(&env).await == 200 },
    )
    .await;
    env.flush().await;

    let truth = env.sim.generations();
    assert_eq!(truth.len(), 24);
    let ledger = env.ledger();
    let page = ledger.events_since(0, 10_000).unwrap();
    let ids: Vec<_> = page
        .events
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
        assert_eq!(e.state, EventState::Confirmed, "{}", g.id);
    }
    let total: Decimal = truth.iter().map(|g| g.cost).sum();
    let today = mai_core::time::warsaw_today();
    let day = ledger
        .range("acme", today - chrono::Duration::days(1), today)
        .unwrap();
    assert_eq!(day.cost_usd, total, "rollup equals the truth");
    assert_eq!(day.requests, 24);
    let m = metrics(&env).await;
    assert!(
        metric(&m, "mai_ledger_write_retries_total{org=\"acme\"}") >= 1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_pending_events{org=\"acme\"}"),
        0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        0,
        "{m}"
    );
}

/// Manual records above the sanity caps are refused with 422 and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_records_above_the_caps_are_refused_and_counted() {
    let env = start(SimConfig::fast()).await;
    let post = |b: serde_json::Value| {
        env.http
            .post(format!(
                "{}/api/v1/usage-tracking/usage/manual-record",
                env.base
            ))
            .bearer_auth(ADMIN)
            .json(&b)
            .send()
    };
    let r = post(serde_json::json!({"model": "a/b", "tokens": 10, "cost": 1000.5}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("cost_usd") && text.contains("1000"), "{text}");
    let r = post(serde_json::json!({"model": "a/b", "tokens": 100_000_001u64, "cost": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("tokens.prompt"));
    // At the cap is fine.
    let r = post(serde_json::json!({"model": "a/b", "tokens": 100_000_000u64, "cost": 1000}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = metrics(&env).await;
    assert_eq!(
        metric(
            &m,
            "mai_events_refused_total{org=\"acme\",path=\"manual\",reason=\"over_cap\"}"
        ),
        2,
        "{m}"
    );
    env.flush().await;
    assert_eq!(env.ledger().events_since(0, 10).unwrap().events.len(), 1);
}
