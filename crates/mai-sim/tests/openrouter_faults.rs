//! Fault injection and cancellation: what a metering proxy must survive and recover.

use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mai_sim::openrouter::{FaultEndpoint, FaultRule, OpenRouterSim, SimConfig, SimHandle};
use reqwest::header::CONTENT_TYPE;
use rust_decimal::Decimal;

fn key(n: u32) -> String {
    format!("sk-or-v1-{n:064x}")
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .unwrap()
}

fn chat_body(stream: bool) -> String {
    serde_json::json!({
        "model": "deepseek/deepseek-chat-v3-0324",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": stream
    })
    .to_string()
}

async fn post(
    sim: &SimHandle,
    key: &str,
    stream: bool,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(key)
        .header(CONTENT_TYPE, "application/json")
        .body(chat_body(stream));
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("request sent")
}

/// Reads a body to its end or its failure: (bytes received, ended cleanly).
async fn drain(r: reqwest::Response) -> (String, bool) {
    let mut s = r.bytes_stream();
    let mut out = Vec::new();
    while let Some(part) = s.next().await {
        match part {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), true)
}

#[tokio::test]
async fn header_fault_503_with_retry_after() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(
        &sim,
        &key(1),
        true,
        &[("x-sim-fault", "status=503;retry_after=2")],
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Service temporarily unavailable. Please retry shortly.","code":503,"metadata":{"error_type":"provider_overloaded"}},"user_id":"user_2simSIMsimSIMsimSIMsimSIM"}"#
    );
    assert!(
        sim.generations().is_empty(),
        "pre-stream errors are not billed"
    );
}

#[tokio::test]
async fn upstream_and_free_tier_429s() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(
        &sim,
        &key(2),
        false,
        &[("x-sim-fault", "status=429;retry_after=7")],
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"deepseek/deepseek-chat-v3-0324 is temporarily rate-limited upstream. Please retry shortly.","provider_name":"DeepInfra","is_byok":false,"retry_after_seconds":7,"headers":{"Retry-After":"7"}}},"user_id":"user_2simSIMsimSIMsimSIMsimSIM"}"#
    );
    let r = post(
        &sim,
        &key(2),
        false,
        &[("x-sim-fault", "status=429;free_tier")],
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(r.headers()["x-ratelimit-limit"], "50");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    let reset = r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .to_string();
    let reset_ms: i64 = reset.parse().unwrap();
    assert_eq!(reset_ms % 86_400_000, 0, "next UTC midnight in epoch ms");
    assert!(reset_ms > chrono::Utc::now().timestamp_millis());
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("\"metadata\":{{\"headers\":{{\"X-RateLimit-Limit\":\"50\",\"X-RateLimit-Remaining\":\"0\",\"X-RateLimit-Reset\":\"{reset}\"}},\"provider_name\":null}}")), "{body}");
}

#[tokio::test]
async fn real_free_model_limiter_per_minute() {
    let mut cfg = SimConfig::fast();
    cfg.free_requests_per_minute = 3;
    let sim = OpenRouterSim::spawn(cfg).await.unwrap();
    let body = serde_json::json!({"model": "meta-llama/llama-3.3-70b-instruct:free", "messages": [{"role":"user","content":"x"}]}).to_string();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    sim.freeze_clock(chrono::Utc::now());
    for _ in 0..4 {
        let r = client
            .post(format!("{}/chat/completions", sim.base_url()))
            .bearer_auth(key(3))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["x-ratelimit-limit"], "3");
            let t = r.text().await.unwrap();
            assert!(t.starts_with(r#"{"error":{"message":"Rate limit exceeded: free-models-per-min.","code":429,"metadata":{"headers":"#), "{t}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Free generations cost 0 and leave usage at 0.
    assert_eq!(sim.key_totals(&key(3)).cost, Decimal::ZERO);
    assert_eq!(sim.key_totals(&key(3)).generations, 3);
}

#[tokio::test]
async fn scripted_statuses_have_envelopes() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    for (status, message) in [
        (408, "Operation timed out. Please try again later."),
        (500, "Internal Server Error"),
        (502, "Provider returned error"),
        (524, "Provider timed out. Please try again later."),
        (529, "Provider returned error"),
        (
            402,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
        ),
    ] {
        let spec = format!("status={status}");
        let r = post(&sim, &key(4), false, &[("x-sim-fault", spec.as_str())]).await;
        assert_eq!(r.status().as_u16(), status);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], status, "integer code");
        assert_eq!(v["error"]["message"], message);
    }
    let r = post(&sim, &key(4), false, &[("x-sim-fault", "bogus")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown item `bogus`"));
}

#[tokio::test]
async fn mid_stream_error_with_usage_then_done_and_recorded() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(
        &sim,
        &key(5),
        true,
        &[
            ("x-sim-fault", "mid_error=502;after=2;with_usage"),
            ("x-sim-usage", "prompt=100;completion=40"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let (raw, clean) = drain(r).await;
    assert!(clean);
    let ev: Vec<&str> = raw.trim_end().split("\n\n").collect();
    assert_eq!(*ev.last().unwrap(), "data: [DONE]");
    let err = ev[ev.len() - 2];
    assert!(err.contains(&format!("{{\"id\":\"{id}\",\"provider\":\"DeepInfra\",\"model\":\"deepseek/deepseek-chat-v3-0324\",\"object\":\"chat.completion.chunk\",\"created\":")), "{err}");
    assert!(err.contains(",\"error\":{\"code\":502,\"message\":\"Provider disconnected unexpectedly\",\"metadata\":{\"error_type\":\"provider_unavailable\"}},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\",\"native_finish_reason\":null}],\"usage\":{"), "{err}");
    let v: serde_json::Value = serde_json::from_str(err.strip_prefix("data: ").unwrap()).unwrap();
    let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        completion > 0 && completion < 40,
        "partial completion: {completion}"
    );
    let g = &sim.generations()[0];
    assert_eq!(g.id, id);
    assert_eq!(g.finish_reason.as_deref(), Some("error"));
    assert_eq!(u64::from(g.completion_tokens), completion);
    assert_eq!(
        g.cost,
        Decimal::from(100) * dec("0.0000003") + Decimal::from(completion) * dec("0.0000012")
    );
}

#[tokio::test]
async fn mid_stream_error_without_usage_string_code() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(
        &sim,
        &key(6),
        true,
        &[("x-sim-fault", "mid_error=500;string_code")],
    )
    .await;
    let (raw, clean) = drain(r).await;
    assert!(clean);
    assert!(!raw.contains("[DONE]"));
    assert!(!raw.contains("\"usage\""));
    assert!(
        raw.contains("\"error\":{\"code\":\"server_error\",\"message\":\"Internal Server Error\""),
        "{raw}"
    );
    assert_eq!(sim.generations().len(), 1, "still recorded for /generation");
}

#[tokio::test]
async fn cut_stream_has_no_usage_and_no_done_but_is_recoverable() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let k = key(7);
    let r = post(&sim, &k, true, &[("x-sim-fault", "cut_after=2")]).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let (raw, clean) = drain(r).await;
    assert!(!clean, "abrupt disconnect");
    assert!(
        !raw.contains("[DONE]") && !raw.contains("\"usage\""),
        "{raw}"
    );
    assert_eq!(raw.matches("data: ").count(), 2);
    let g = reqwest::Client::new()
        .get(format!("{}/generation?id={id}", sim.base_url()))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(g.status(), 200);
}

#[tokio::test]
async fn malformed_bodies() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(&sim, &key(8), false, &[("x-sim-fault", "malformed")]).await;
    assert_eq!(r.status(), 200);
    let t = r.text().await.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&t).is_err());
    let r = post(
        &sim,
        &key(8),
        true,
        &[
            ("x-sim-fault", "malformed"),
            ("x-sim-usage", "prompt=5;completion=12"),
        ],
    )
    .await;
    let (raw, clean) = drain(r).await;
    assert!(clean && raw.ends_with("data: [DONE]\n\n"));
    let bad = raw
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<serde_json::Value>(d).is_err())
        .count();
    assert_eq!(bad, 1);
}

#[tokio::test]
async fn drip_stream_sends_one_token_per_chunk() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(
        &sim,
        &key(9),
        true,
        &[
            ("x-sim-fault", "drip=1"),
            ("x-sim-usage", "prompt=5;completion=6"),
        ],
    )
    .await;
    let (raw, _) = drain(r).await;
    // 6 content chunks + usage chunk + [DONE].
    assert_eq!(raw.matches("data: ").count(), 8, "{raw}");
}

#[tokio::test]
async fn control_endpoint_rules_by_key_rate_and_count() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let client = reqwest::Client::new();
    let rule = serde_json::json!({"fault": "status=500", "key": key(10), "count": 2});
    let r = client
        .post(format!("http://{}/__sim/faults", sim.addr()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&sim, &key(10), false, &[]).await.status().as_u16());
    }
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(
        post(&sim, &key(11), false, &[]).await.status(),
        200,
        "other keys unaffected"
    );

    // Rate: deterministic draws from the seed; roughly half of 200 fail.
    sim.set_fault(FaultRule {
        rate: 0.5,
        ..FaultRule::parse("status=502").unwrap()
    });
    let mut failed = 0;
    for _ in 0..200 {
        if post(&sim, &key(12), false, &[]).await.status() == 502 {
            failed += 1;
        }
    }
    assert!((60..=140).contains(&failed), "{failed}");
    let r = client
        .delete(format!("http://{}/__sim/faults", sim.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(post(&sim, &key(12), false, &[]).await.status(), 200);
    let bad = client
        .post(format!("http://{}/__sim/faults", sim.addr()))
        .json(&serde_json::json!({"fault": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn generation_lookup_faults() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let k = key(13);
    let r = post(&sim, &k, false, &[]).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Generation,
        count: Some(1),
        ..FaultRule::parse("status=429;retry_after=1").unwrap()
    });
    let url = format!("{}/generation?id={id}", sim.base_url());
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&k)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&k)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client
        .get(&url)
        .bearer_auth(&k)
        .header("x-sim-fault", "status=500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // Chat is unaffected by generation-scoped rules.
    sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Generation,
        ..FaultRule::parse("status=502").unwrap()
    });
    assert_eq!(post(&sim, &k, false, &[]).await.status(), 200);
}

#[tokio::test]
async fn client_abort_records_a_cancelled_generation_with_partial_tokens() {
    let mut cfg = SimConfig::fast();
    cfg.chunk_interval = Duration::from_millis(20);
    let sim = OpenRouterSim::spawn(cfg).await.unwrap();
    let k = key(14);
    let r = post(
        &sim,
        &k,
        true,
        &[("x-sim-usage", "prompt=100;completion=400")],
    )
    .await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let mut s = r.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(s);

    let deadline = Instant::now() + Duration::from_secs(10);
    let g = loop {
        if let Some(g) = sim.generations().into_iter().find(|g| g.id == id) {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "cancelled generation never recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(g.cancelled && g.streamed);
    assert!(
        g.completion_tokens > 0 && g.completion_tokens < 400,
        "partial: {}",
        g.completion_tokens
    );
    assert_eq!(g.finish_reason, None);
    assert_eq!(
        g.cost,
        Decimal::from(100) * dec("0.0000003")
            + Decimal::from(g.completion_tokens) * dec("0.0000012")
    );
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/generation?id={id}", sim.base_url()))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["cancelled"], true);
    assert_eq!(v["data"]["native_tokens_completion"], g.completion_tokens);
    assert_eq!(sim.key_totals(&k).cost, g.cost);
}

#[tokio::test]
async fn latency_fault_delays_the_answer() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let t0 = Instant::now();
    let r = post(
        &sim,
        &key(15),
        false,
        &[("x-sim-fault", "latency=150;status=524")],
    )
    .await;
    assert_eq!(r.status(), 524);
    assert!(t0.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn non_streamed_cut_sends_half_a_body_then_disconnects() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let r = post(&sim, &key(16), false, &[("x-sim-fault", "cut")]).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let (raw, clean) = drain(r).await;
    assert!(!clean, "connection dropped mid-body");
    assert!(raw.starts_with(&format!("{{\"id\":\"{id}\"")), "{raw}");
    assert_eq!(sim.generations()[0].id, id, "billed and recoverable");
}
