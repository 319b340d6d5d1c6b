//! Every endpoint that spends money, through the tracker in front of the simulator:
//! metered exactly once with the simulator's cost, streamed or not; everything else
//! that could spend is refused before it is forwarded.

mod common;
use common::*;
use futures::StreamExt;
use mai_core::usage::EventState;
use mai_sim::openrouter::SimConfig;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fast() -> SimConfig {
    SimConfig {
        seed: 23,
        exponent_below: Some(Decimal::from_str("0.001").unwrap()),
        keepalive: mai_sim::openrouter::KeepAlive {
            leading: 2,
            interval: Duration::ZERO,
            every_events: 2,
        },
        ..SimConfig::fast()
    }
}

/// A request body of each API, in its own shape.
fn body_of(path: &str, stream: bool) -> serde_json::Value {
    match path {
        "/completions" => serde_json::json!({
            "model": "openai/gpt-4o-mini", "prompt": "Say hello to accounting.", "stream": stream,
        }),
        "/responses" => serde_json::json!({
            "model": "openai/gpt-4o-mini", "input": "Say hello to accounting.", "stream": stream,
        }),
        "/messages" => serde_json::json!({
            "model": "anthropic/claude-3.5-sonnet", "max_tokens": 200, "stream": stream,
            "messages": [{"role": "user", "content": "Say hello to accounting."}],
        }),
        "/embeddings" => serde_json::json!({
            "model": "openai/gpt-4o-mini", "input": ["invoice", "credit note"],
        }),
        other => panic!("{other}"),
    }
}

fn post(env: &Env, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
    env.http
        .post(format!("{}/v1{path}", env.base))
        .bearer_auth(PROXY)
        .json(body)
}

/// The ledger holds exactly the simulator's generations, each with its cost and tokens.
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
        assert_eq!(e.tokens.cached, g.cached_tokens as u64, "{}", g.id);
        assert_eq!(e.state, expect_state, "{}", g.id);
        assert_eq!(e.model, g.model, "{}", g.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spending_endpoint_is_metered_exactly_once_streamed_or_not() {
    let env = start(fast()).await;
    for path in ["/completions", "/responses", "/messages", "/embeddings"] {
        for stream in [false, true] {
            if path == "/embeddings" && stream {
                continue;
            }
            let resp = post(&env, path, &body_of(path, stream))
                .header("X-OpenWebUI-User-Id", "u-7")
                // Cached prompt tokens, to check each shape's cache accounting.
                .header("X-Sim-Usage", "prompt=2048;cached=1024")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path} stream={stream}");
            assert!(resp.headers().contains_key("x-generation-id"));
            let text = resp.text().await.unwrap();
            if stream {
                assert!(text.contains(": OPENROUTER PROCESSING"), "{path}: {text}");
            } else {
                serde_json::from_str::<serde_json::Value>(&text).unwrap();
            }
        }
    }
    let truth = env.sim.generations();
    assert_eq!(truth.len(), 7);
    // Only completions get `user` added toward OpenRouter; the other bodies are as sent.
    let users: Vec<_> = truth.iter().map(|g| g.external_user.as_deref()).collect();
    assert_eq!(
        users,
        [Some("u-7"), Some("u-7"), None, None, None, None, None]
    );
    env.flush().await;
    assert_ledger_equals_truth(&env, EventState::Confirmed);
    let l = env.ledger();
    for g in &truth {
        assert_eq!(
            l.get("acme", &g.id)
                .unwrap()
                .unwrap()
                .event
                .user
                .id
                .as_deref(),
            Some("u-7")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_without_cost_are_provisional_then_confirmed_by_reconciliation() {
    let env = start(fast()).await;
    for path in ["/completions", "/responses", "/messages", "/embeddings"] {
        for stream in [false, true] {
            if path == "/embeddings" && stream {
                continue;
            }
            let text = post(&env, path, &body_of(path, stream))
                .header("X-Sim-Fault", "no_cost")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!text.contains("\"cost\""), "{path}: {text}");
        }
    }
    env.flush().await;
    let l = env.ledger();
    let events = l.events_since(0, 100).unwrap().events;
    assert_eq!(events.len(), 7);
    for e in &events {
        // Tokens are known; the cost is not, and is not claimed to be zero.
        assert_eq!(e.event.state, EventState::Provisional, "{:?}", e.event);
        assert!(e.event.tokens.prompt > 0);
    }
    let r = env.sync().await;
    assert_eq!(r["confirmed"], 7, "{r}");
    env.flush().await;
    assert_ledger_equals_truth(&env, EventState::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_abandoned_streams_of_every_shape_are_metered() {
    let env = start(fast()).await;
    for path in ["/completions", "/responses", "/messages"] {
        // Upstream cut after two content events: the id was seen, the usage was not.
        let resp = post(&env, path, &body_of(path, true))
            .header("X-Sim-Fault", "cut_after=2;drip=5")
            .send()
            .await
            .unwrap();
        let mut s = resp.bytes_stream();
        while let Some(c) = s.next().await {
            if c.is_err() {
                break;
            }
        }
        // The client leaves after the first bytes.
        let resp = post(&env, path, &body_of(path, true))
            .header("X-Sim-Fault", "drip=30")
            .send()
            .await
            .unwrap();
        let mut s = resp.bytes_stream();
        s.next().await.unwrap().unwrap();
        drop(s);
    }
    eventually(
        "the simulator recorded every generation",
        Duration::from_secs(10),
        || async { env.sim.generations().len() == 6 },
    )
    .await;
    eventually(
        "the ledger holds all six",
        Duration::from_secs(10),
        || async {
            env.flush().await;
            env.ledger().events_since(0, 100).unwrap().events.len() == 6
        },
    )
    .await;
    let r = env.sync().await;
    assert_eq!(r["confirmed"], 6, "{r}");
    env.flush().await;
    assert_ledger_equals_truth(&env, EventState::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_without_any_generation_id_are_metered_under_a_tracker_id() {
    let env = start(fast()).await;
    let resp = post(&env, "/embeddings", &body_of("/embeddings", false))
        .header("X-Sim-Fault", "no_id")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("x-generation-id"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(v.get("id").is_none(), "{v}");
    env.flush().await;
    let g = env.sim.generations().remove(0);
    let events = env.ledger().events_since(0, 10).unwrap().events;
    assert_eq!(events.len(), 1);
    let e = &events[0].event;
    assert!(e.generation_id.starts_with("mai-embeddings-"), "{e:?}");
    assert_eq!(e.cost_usd, g.cost);
    assert_eq!(e.state, EventState::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writes_are_refused_and_reads_pass_through() {
    let env = start(fast()).await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/audio/speech"),
        (reqwest::Method::POST, "/v1/images/generations"),
        (reqwest::Method::POST, "/v1/rerank"),
        (reqwest::Method::DELETE, "/v1/chat/completions"),
    ] {
        let r = env
            .http
            .request(method.clone(), format!("{}{path}", env.base))
            .bearer_auth(PROXY)
            .json(&serde_json::json!({"model": "openai/gpt-4o-mini", "input": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
        let v: serde_json::Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(path) && msg.contains("/v1/responses") && msg.contains("/v1/embeddings"),
            "{msg}"
        );
    }
    let models = env
        .http
        .get(format!("{}/v1/models", env.base))
        .bearer_auth(PROXY)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    // A non-JSON body for a metered endpoint: 400, nothing forwarded.
    let r = env
        .http
        .post(format!("{}/v1/responses", env.base))
        .bearer_auth(PROXY)
        .body("input=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(env.sim.generations().is_empty());
}

/// Sends `request` as raw bytes (no client library normalizes the path) and returns
/// the status code and body.
async fn raw(addr: &str, request: String) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_and_encoded_separators_are_refused_before_forwarding() {
    let env = start(fast()).await;
    let addr = env.base.trim_start_matches("http://").to_owned();
    let body =
        r#"{"model":"openai/gpt-4o-mini","prompt":"x","messages":[{"role":"user","content":"x"}]}"#;
    for path in [
        "/v1/../v1/completions",
        "/v1/chat/../completions",
        "/v1/./completions",
        "/v1/chat%2Fcompletions",
        "/v1/chat%2fcompletions",
        "/v1/%2e%2e/api/v1/completions",
        "/v1/%2E%2E/completions",
        "/v1/chat/%2e%2e/completions",
        "/v1//completions",
        "/v1/chat%5Ccompletions",
    ] {
        for method in ["POST", "GET"] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {PROXY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let (status, text) = raw(&addr, req).await;
            assert_eq!(status, 400, "{method} {path}: {text}");
            assert!(text.contains("refused"), "{text}");
        }
    }
    assert!(env.sim.generations().is_empty(), "nothing was forwarded");
    // The plain path still works over the same raw client.
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {PROXY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(&addr, req).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(env.sim.generations().len(), 1);
}
