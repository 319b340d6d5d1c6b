//! The proxy against the real simulator and a real ledger.

mod common;
use common::*;
use futures::StreamExt;
use mai_core::usage::{EventState, Source};
use mai_sim::openrouter::{FaultRule, SimConfig};
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

fn fast() -> SimConfig {
    SimConfig {
        seed: 11,
        // Costs below 0.001 come in exponent form, as the spec warns.
        exponent_below: Some(Decimal::from_str("0.001").unwrap()),
        keepalive: mai_sim::openrouter::KeepAlive {
            leading: 3,
            interval: Duration::ZERO,
            every_events: 2,
        },
        ..SimConfig::fast()
    }
}

/// Every generation in the simulator's truth is in the ledger exactly, and nothing else is.
fn assert_ledger_equals_truth(env: &Env, expect_state: EventState) {
    let truth = env.sim.generations();
    let ledger = env.ledger();
    let page = ledger.events_since(0, 100_000).unwrap();
    let ids: HashSet<_> = page
        .events
        .iter()
        .map(|e| e.event.generation_id.clone())
        .collect();
    assert_eq!(ids.len(), page.events.len(), "an id is stored twice");
    let truth_ids: HashSet<_> = truth.iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids, truth_ids, "ledger ids differ from the simulator's");
    for g in &truth {
        let e = ledger.get("acme", &g.id).unwrap().unwrap().event;
        assert_eq!(e.cost_usd, g.cost, "{}", g.id);
        assert_eq!(e.tokens.prompt, g.prompt_tokens as u64, "{}", g.id);
        assert_eq!(e.tokens.completion, g.completion_tokens as u64, "{}", g.id);
        assert_eq!(e.state, expect_state, "{}", g.id);
        assert_eq!(e.model, g.model);
    }
    let total: Decimal = truth.iter().map(|g| g.cost).sum();
    let ours: Decimal = page.events.iter().map(|e| e.event.cost_usd).sum();
    assert_eq!(ours, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_and_plain_requests_are_metered_exactly() {
    let env = start(fast()).await;
    for i in 0..12 {
        let stream = i % 2 == 0;
        let resp = env
            .chat(body(stream, None))
            .header("X-OpenWebUI-User-Id", format!("u-{}", i % 3))
            .header("X-OpenWebUI-User-Email", format!("user{}@acme.pl", i % 3))
            .header("X-OpenWebUI-User-Name", "Anna")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        if stream {
            assert!(
                text.contains(": OPENROUTER PROCESSING"),
                "comments forwarded"
            );
            assert!(text.trim_end().ends_with("data: [DONE]"));
        } else {
            assert!(text.contains("\"usage\""));
        }
    }
    // The `user` field was set toward OpenRouter from the Open WebUI header.
    let truth = env.sim.generations();
    assert_eq!(truth.len(), 12);
    assert!(truth.iter().all(|g| g
        .external_user
        .as_deref()
        .is_some_and(|u| u.starts_with("u-"))));
    env.flush().await;
    assert_ledger_equals_truth(&env, EventState::Confirmed);
    let l = env.ledger();
    let e = l.get("acme", &truth[0].id).unwrap().unwrap().event;
    assert_eq!(e.source, Source::Proxy);
    assert_eq!(e.user.email.as_deref(), Some("user0@acme.pl"));
    assert_eq!(e.user.name.as_deref(), Some("Anna"));

    // The read API agrees with the truth.
    let today: serde_json::Value = env
        .get("/api/v1/usage/today", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total: Decimal = truth.iter().map(|g| g.cost).sum();
    assert_eq!(today["requests"], 12);
    assert_eq!(
        Decimal::from_str(today["raw_cost_usd"].as_str().unwrap()).unwrap(),
        total
    );
    assert_eq!(
        Decimal::from_str(today["client_cost_usd"].as_str().unwrap()).unwrap(),
        total * Decimal::from_str("1.3").unwrap()
    );
    let users: serde_json::Value = env
        .get("/api/v1/usage/by-user", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
    let models: serde_json::Value = env
        .get("/api/v1/usage/by-model", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["models"][0]["model"], "openai/gpt-4o-mini");
    let month: serde_json::Value = env
        .get("/api/v1/usage/month", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(month["requests"], 12);
    let events: serde_json::Value = env
        .get("/api/v1/events?after=0&limit=5", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 5);
    assert_eq!(events["has_more"], true);
    // Seed-compatible: numbers, written from the exact text.
    let rt = env
        .get("/api/v1/usage-tracking/usage/real-time/acme", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let raw_text = format!("\"raw_cost\":{}", total.normalize());
    assert!(rt.contains(&raw_text), "{rt} lacks {raw_text}");
    let other = env
        .get("/api/v1/usage-tracking/usage/real-time/other", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let status: serde_json::Value = env
        .get("/api/v1/status", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["org_id"], "acme");
    assert_eq!(status["key"]["label"], "sk-or-v1-…00a1");
    let metrics = env
        .get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mai_metered_generations_total{org=\"acme\",state=\"confirmed\"} 12"),
        "{metrics}"
    );
    env.tracker.unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_and_disconnects_become_provisional_then_confirmed() {
    cut_streams_and_disconnects(start(fast()).await).await;
}

/// The same faults over the production transport: HTTPS with HTTP/2 upstream, where a
/// cut is a reset stream and a client that leaves cancels its stream only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_and_disconnects_over_http2_are_exact_too() {
    cut_streams_and_disconnects(start_tls(fast(), 100, 100, true).await).await;
}

async fn cut_streams_and_disconnects(env: Env) {
    // 1. Upstream cuts the stream: the client sees the partial stream, no [DONE].
    let resp = env
        .chat(body(true, Some("cut-user")))
        .header("X-Sim-Fault", "cut_after=2;drip=5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let mut s = resp.bytes_stream();
    let mut errored = false;
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                errored = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("data: {"), "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(
        errored,
        "a cut upstream must not look like a clean end to the client"
    );

    // 2. Client disconnects mid-stream.
    let resp = env
        .chat(body(true, Some("gone-user")))
        .header("X-Sim-Fault", "drip=30")
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(s);
    // 3. Mid-stream error chunk carrying usage: confirmed straight away.
    let text = env
        .chat(body(true, None))
        .header("X-Sim-Fault", "mid_error=502;after=2;with_usage")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"error\""));

    eventually(
        "simulator recorded the cancelled generation",
        Duration::from_secs(10),
        || async { env.sim.generations().iter().filter(|g| g.cancelled).count() == 1 },
    )
    .await;
    let truth = env.sim.generations();
    assert_eq!(truth.len(), 3);
    eventually(
        "ledger holds all three",
        Duration::from_secs(10),
        || async {
            env.flush().await;
            env.ledger().events_since(0, 100).unwrap().events.len() == 3
        },
    )
    .await;
    let l = env.ledger();
    let states: Vec<_> = truth
        .iter()
        .map(|g| l.get("acme", &g.id).unwrap().unwrap().event.state)
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == EventState::Provisional)
            .count(),
        2,
        "cut + disconnect are provisional: {states:?}"
    );
    let r = env.sync().await;
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["confirmed"], 2, "{r}");
    env.flush().await;
    assert_ledger_equals_truth(&env, EventState::Confirmed);
    let l = env.ledger();
    assert_eq!(l.provisional_count("acme").unwrap(), 0);
    // Reconciliation kept the user attribution the proxy knew.
    let cut = truth
        .iter()
        .find(|g| g.external_user.as_deref() == Some("cut-user"))
        .unwrap();
    let e = l.get("acme", &cut.id).unwrap().unwrap().event;
    assert_eq!(e.user.id.as_deref(), Some("cut-user"));
    assert_eq!(e.source, Source::Reconciliation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_reach_the_client_unchanged() {
    let env = start(fast()).await;
    for fault in [
        "status=429;retry_after=2",
        "status=503;retry_after=1",
        "status=500",
        "status=402",
    ] {
        let via = env
            .chat(body(false, None))
            .header("X-Sim-Fault", fault)
            .send()
            .await
            .unwrap();
        let direct = env
            .http
            .post(format!("{}/chat/completions", env.sim.base_url()))
            .bearer_auth(KEY)
            .header("X-Sim-Fault", fault)
            .json(&body(false, None))
            .send()
            .await
            .unwrap();
        assert_eq!(via.status(), direct.status(), "{fault}");
        assert_eq!(
            via.headers().get("retry-after"),
            direct.headers().get("retry-after"),
            "{fault}"
        );
        let (a, b) = (via.text().await.unwrap(), direct.text().await.unwrap());
        // cf-ray style counters may differ; the error envelope must not.
        let pa: serde_json::Value = serde_json::from_str(&a).unwrap();
        let pb: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(pa["error"], pb["error"], "{fault}");
    }
    // Streaming request refused before the first byte: same status, JSON body.
    let via = env
        .chat(body(true, None))
        .header("X-Sim-Fault", "status=429;retry_after=3")
        .send()
        .await
        .unwrap();
    assert_eq!(via.status(), 429);
    assert_eq!(via.headers()["retry-after"], "3");
    env.flush().await;
    assert!(env.sim.generations().is_empty());
    assert!(env.ledger().events_since(0, 10).unwrap().events.is_empty());
    let metrics = env
        .get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mai_upstream_errors_total{org=\"acme\",status=\"429\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_bad_bodies_and_oversized_bodies() {
    let env = start(fast()).await;
    // Proxy: no token, wrong token, the read token.
    for tok in [None, Some("nope-nope-nope-nope"), Some(READ)] {
        let mut rb = env
            .http
            .post(format!("{}/v1/chat/completions", env.base))
            .json(&body(false, None));
        if let Some(t) = tok {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 401);
    }
    // Read endpoints refuse the proxy token and no token; admin endpoints refuse the read token.
    for (path, tok) in [
        ("/api/v1/status", PROXY),
        ("/api/v1/usage/today", ""),
        ("/api/v1/events", "x"),
        ("/metrics", PROXY),
        ("/api/v1/usage-tracking/usage/real-time/acme", PROXY),
    ] {
        let r = env.get(path, tok).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let t = r.text().await.unwrap();
        assert!(!t.contains("acme"), "no data in a 401: {t}");
    }
    let r = env
        .http
        .post(format!("{}/api/v1/sync", env.base))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Malformed JSON: 400, nothing forwarded.
    let r = env
        .http
        .post(format!("{}/v1/chat/completions", env.base))
        .bearer_auth(PROXY)
        .header("content-type", "application/json")
        .body("{\"model\": \"x\", \"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
    // Oversized (limit 64 KiB in this test).
    let big = "x".repeat(100_000);
    let r = env
        .chat(serde_json::json!({"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Bad query parameters.
    let r = env
        .get("/api/v1/usage/daily?from=2026-13-01", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env
        .get("/api/v1/usage/month?month=26-11", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Manual record with a malformed cost.
    let r = env
        .http
        .post(format!(
            "{}/api/v1/usage-tracking/usage/manual-record",
            env.base
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(r#"{"model":"m","tokens":1,"cost":"abc"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    env.flush().await;
    assert!(env.sim.generations().is_empty());
    assert!(env.ledger().events_since(0, 10).unwrap().events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_backs_off_on_429_and_reports_drift() {
    let env = start(fast()).await;
    let resp = env
        .chat(body(true, None))
        .header("X-Sim-Fault", "cut_after=1;drip=5")
        .send()
        .await
        .unwrap();
    let _ = resp.bytes().await;
    env.flush().await;
    // The next two /generation calls answer 429 with Retry-After: 1.
    let rule: FaultRule = serde_json::from_str(
        r#"{"fault":"status=429;retry_after=1","endpoint":"generation","count":2}"#,
    )
    .unwrap();
    env.sim.set_fault(rule);
    let started = std::time::Instant::now();
    let r = env.sync().await;
    assert_eq!(r["confirmed"], 1, "{r}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert_eq!(r["drift"]["day_usd"], "0", "{r}");
    let seed: serde_json::Value = env
        .http
        .post(format!(
            "{}/api/v1/usage-tracking/sync/openrouter-usage",
            env.base
        ))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"days_back": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seed["status"], "success", "{seed}");
    assert_eq!(seed["total_organizations"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_validates_and_hot_swaps_the_upstream_key() {
    let env = start(fast()).await;
    let put = |key: &str| {
        env.http
            .put(format!("{}/api/v1/admin/openrouter-key", env.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "key": key }))
            .send()
    };
    // A key OpenRouter refuses (malformed for the simulator): 422, old key kept.
    let r = put("sk-or-v1-not-a-real-key").await.unwrap();
    assert_eq!(r.status(), 422);
    let t = r.text().await.unwrap();
    assert!(!t.contains("not-a-real-key"), "never echo the key: {t}");
    let new_key = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b2";
    let r = put(new_key).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["label"], "sk-or-v1-…00b2");
    env.chat(body(false, None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(env.sim.key_totals(new_key).generations, 1);
    assert_eq!(env.sim.key_totals(KEY).generations, 0);
    // The read token cannot rotate.
    let r = env
        .http
        .put(format!("{}/api/v1/admin/openrouter-key", env.base))
        .bearer_auth(READ)
        .json(&serde_json::json!({ "key": new_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_comparison_with_a_management_key_reports_per_day_model_drift() {
    const MGMT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1";
    let sim = mai_sim::openrouter::OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        ..fast()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let mut m = env_map(&sim.base_url(), &db, "acme");
    m.insert("OPENROUTER_PROVISIONING_KEY", MGMT.into());
    let cfg = mai_tracker::config::Config::from_lookup(|k| m.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    // A generation OpenRouter dates yesterday (UTC) that the ledger has never seen,
    // e.g. made with the key outside the tracker.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    sim.set_now(yesterday);
    http.post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(KEY)
        .json(&body(false, None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.reset_clock();
    let g = sim.generations().remove(0);
    let r: serde_json::Value = http
        .post(format!("{}/api/v1/sync", tracker.base_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let act = r["drift"]["activity"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(act.len(), 1, "{r}");
    assert_eq!(act[0]["date"], yesterday.date_naive().to_string());
    assert_eq!(act[0]["model"], g.model);
    assert_eq!(
        Decimal::from_str(act[0]["openrouter_usd"].as_str().unwrap()).unwrap(),
        g.cost
    );
    assert_eq!(act[0]["ledger_usd"], "0");
    assert_eq!(act[0]["openrouter_requests"], 1);
    tracker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstream_is_multiplexed_over_http2_lanes_and_metered_exactly() {
    // The server takes 10 streams per connection; 35 streams at once need 4 lanes.
    let env = start_tls(
        SimConfig {
            chunk_interval: Duration::from_millis(15),
            ..fast()
        },
        10,
        10,
        true,
    )
    .await;
    let up = &env.tracker.as_ref().unwrap().state.upstream;
    eventually("the ALPN probe", Duration::from_secs(10), || async {
        up.speaks_h2()
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..35 {
        let req = env
            .chat(body(true, None))
            .header("X-OpenWebUI-User-Id", format!("u-{}", i % 4));
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    for t in tasks {
        let text = t.await.unwrap();
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
    let load = up.load();
    assert!(load.len() >= 4, "35 streams at 10 per lane ran on {load:?}");
    assert!(load.iter().all(|&n| n == 0), "lanes not released: {load:?}");
    env.flush().await;
    assert_eq!(env.sim.generations().len(), 35);
    assert_ledger_equals_truth(&env, EventState::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_upstream_certificate_is_a_clear_502() {
    let env = start_tls(fast(), 100, 100, false).await;
    let r = env.chat(body(true, None)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("certificate") && text.contains("MAI_UPSTREAM_CA_CERT"),
        "{text}"
    );
    assert!(env.sim.generations().is_empty());
}
