//! Contract tests: the simulator's wire shapes, messages and accounting, pinned against
//! shared/specs/openrouter-api.md.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use mai_sim::openrouter::{
    KeySpec, LimitReset, OpenRouterSim, SimConfig, SimHandle, UsageChunkShape, NEVER,
};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

const MGMT: &str = "sk-or-v1-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn key(n: u32) -> String {
    format!("sk-or-v1-{n:064x}")
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .unwrap_or_else(|_| panic!("not a decimal: {s}"))
}

async fn start(cfg: SimConfig) -> SimHandle {
    OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        ..cfg
    })
    .await
    .expect("simulator starts")
}

fn chat_body(text: &str, stream: bool) -> String {
    serde_json::json!({
        "model": "deepseek/deepseek-chat-v3-0324",
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
        "usage": {"include": true},
        "stream_options": {"include_usage": true},
        "user": "client-7-user-42"
    })
    .to_string()
}

async fn post(
    sim: &SimHandle,
    key: &str,
    body: String,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(key)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("request sent")
}

async fn get(sim: &SimHandle, key: Option<&str>, path: &str) -> reqwest::Response {
    let mut rb = reqwest::Client::new().get(format!("{}{path}", sim.base_url()));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    rb.send().await.expect("request sent")
}

/// Asserts that `needles` occur in `hay` in this order.
fn in_order(hay: &str, needles: &[&str]) {
    let mut at = 0;
    for n in needles {
        match hay[at..].find(n) {
            Some(i) => at += i + n.len(),
            None => panic!("`{n}` missing or out of order in {hay}"),
        }
    }
}

fn assert_gen_id(id: &str, created: i64) {
    let rest = id
        .strip_prefix(&format!("gen-{created}-"))
        .unwrap_or_else(|| panic!("id {id} is not gen-{created}-…"));
    assert_eq!(rest.len(), 20, "{id}");
    assert!(rest.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
}

#[derive(Deserialize)]
struct CostOnly {
    usage: UsageCost,
}
#[derive(Deserialize)]
struct UsageCost {
    cost: Box<RawValue>,
}

/// Polls `f` until it returns Some, failing after `secs`.
async fn poll<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn non_streaming_reply_has_spec_shape_and_exact_usage() {
    let sim = start(SimConfig::fast()).await;
    let k = key(1);
    let r = post(
        &sim,
        &k,
        chat_body("hello", false),
        &[("x-sim-usage", "prompt=1200;completion=250")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let gen_id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["x-provider-name"], "DeepInfra");
    assert_eq!(r.headers()["server"], "cloudflare");
    assert!(r.headers().contains_key("cf-ray"));
    let raw = r.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let created = v["created"].as_i64().unwrap();
    assert_eq!(v["id"], gen_id.as_str());
    assert_gen_id(&gen_id, created);
    in_order(
        &raw,
        &[
            "{\"id\":", "\"provider\":\"DeepInfra\"", "\"model\":\"deepseek/deepseek-chat-v3-0324\"",
            "\"object\":\"chat.completion\"", "\"created\":", "\"choices\":[{\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\",\"native_finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":",
            "\"refusal\":null,\"reasoning\":null}}]",
        ],
    );
    assert!(
        raw.ends_with(",\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":250,\"total_tokens\":1450,\"cost\":0.00066,\"is_byok\":false,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"image_tokens\":0},\"cost_details\":{\"upstream_inference_cost\":0.00066,\"upstream_inference_prompt_cost\":0.00036,\"upstream_inference_completions_cost\":0.0003}}}"),
        "{raw}"
    );
    let truth = sim.generations();
    assert_eq!(truth.len(), 1);
    assert_eq!(truth[0].id, gen_id);
    assert_eq!(truth[0].cost, dec("0.00066"));
    assert_eq!(truth[0].external_user.as_deref(), Some("client-7-user-42"));
    assert!(!truth[0].streamed);
}

fn sse_events(raw: &str) -> Vec<&str> {
    assert!(
        raw.ends_with("\n\n"),
        "stream must end with a blank line: {raw:?}"
    );
    raw.trim_end_matches("\n\n").split("\n\n").collect()
}

#[tokio::test]
async fn stream_has_keepalives_chunks_finish_usage_chunk_and_done() {
    let sim = start(SimConfig::default()).await;
    let k = key(2);
    let r = post(
        &sim,
        &k,
        chat_body("tell me a story", true),
        &[("x-sim-usage", "prompt=1200;completion=250")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/event-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.headers().get(CONTENT_LENGTH).is_none());
    let gen_id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let raw = r.text().await.unwrap();
    let ev = sse_events(&raw);
    assert_eq!(ev[0], ": OPENROUTER PROCESSING");
    assert_eq!(ev[1], ": OPENROUTER PROCESSING");
    assert_eq!(*ev.last().unwrap(), "data: [DONE]");
    let data: Vec<&str> = ev[2..ev.len() - 1]
        .iter()
        .map(|e| e.strip_prefix("data: ").expect("data event"))
        .collect();
    assert!(data.len() >= 3, "content, finish and usage chunks");
    let mut text = String::new();
    let mut created = 0;
    for (i, d) in data.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(d).unwrap();
        assert_eq!(v["id"], gen_id.as_str(), "same id on every chunk");
        assert_eq!(v["object"], "chat.completion.chunk");
        created = v["created"].as_i64().unwrap();
        in_order(d, &["{\"id\":", "\"provider\":\"DeepInfra\",\"model\":\"deepseek/deepseek-chat-v3-0324\",\"object\":\"chat.completion.chunk\",\"created\":", "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"]);
        let is_usage = i == data.len() - 1;
        let is_finish = i == data.len() - 2;
        if is_usage {
            assert!(
                d.ends_with("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"native_finish_reason\":null,\"logprobs\":null}],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":250,\"total_tokens\":1450,\"cost\":0.00066,\"is_byok\":false,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"cost_details\":{\"upstream_inference_cost\":0.00066,\"upstream_inference_prompt_cost\":0.00036,\"upstream_inference_completions_cost\":0.0003},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"image_tokens\":0}}}"),
                "{d}"
            );
        } else {
            assert!(v.get("usage").is_none());
            let finish = &v["choices"][0]["finish_reason"];
            if is_finish {
                assert_eq!(finish, "stop");
                assert!(
                    !v["choices"][0]["delta"]["content"]
                        .as_str()
                        .unwrap()
                        .is_empty(),
                    "finish chunk carries content"
                );
            } else {
                assert!(finish.is_null());
            }
            text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
        }
    }
    assert_gen_id(&gen_id, created);
    // Same request without streaming: same text (deterministic output).
    let r = post(
        &sim,
        &k,
        chat_body("tell me a story", false),
        &[("x-sim-usage", "prompt=1200;completion=250")],
    )
    .await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str().unwrap(),
        text
    );
    let t = sim.generations();
    assert!(t[0].streamed && !t[0].cancelled);
}

#[tokio::test]
async fn empty_choices_usage_chunk_and_keepalives_between_events() {
    let mut cfg = SimConfig::fast();
    cfg.usage_chunk = UsageChunkShape::EmptyChoices;
    cfg.keepalive.every_events = 1;
    let sim = start(cfg).await;
    let raw = post(
        &sim,
        &key(3),
        chat_body("x", true),
        &[("x-sim-usage", "prompt=10;completion=6")],
    )
    .await
    .text()
    .await
    .unwrap();
    let ev = sse_events(&raw);
    let usage = ev[ev.len() - 2];
    assert!(usage.contains("\"choices\":[],\"usage\":{"), "{usage}");
    let between = ev
        .iter()
        .filter(|e| **e == ": OPENROUTER PROCESSING")
        .count();
    assert!(between >= 1, "comments between data events: {raw}");
}

#[tokio::test]
async fn exponent_form_is_an_option() {
    let mut cfg = SimConfig::fast();
    cfg.exponent_below = Some(dec("0.00001"));
    let sim = start(cfg).await;
    let body = serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let raw = post(
        &sim,
        &key(4),
        body,
        &[("x-sim-usage", "prompt=10;completion=5")],
    )
    .await
    .text()
    .await
    .unwrap();
    // 10 * 0.00000015 + 5 * 0.0000006 = 0.0000045
    assert!(raw.contains("\"cost\":4.5e-6,"), "{raw}");
    let c: CostOnly = serde_json::from_str(&raw).unwrap();
    assert_eq!(dec(c.usage.cost.get()), dec("0.0000045"));
}

#[derive(Deserialize)]
struct GenStats {
    data: GenData,
}
#[derive(Deserialize)]
struct GenData {
    id: String,
    total_cost: Box<RawValue>,
    usage: Box<RawValue>,
    streamed: bool,
    cancelled: bool,
    native_tokens_prompt: u32,
    native_tokens_completion: u32,
    native_tokens_reasoning: u32,
    external_user: Option<String>,
    finish_reason: Option<String>,
}

#[tokio::test]
async fn generation_is_404_then_200_with_full_record() {
    let mut cfg = SimConfig::fast();
    cfg.generation_ready_delay = Duration::from_millis(300);
    let sim = start(cfg).await;
    let k = key(5);
    let r = post(
        &sim,
        &k,
        chat_body("q", true),
        &[("x-sim-usage", "prompt=1200;completion=250;reasoning=20")],
    )
    .await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let _ = r.text().await.unwrap();
    let first = get(&sim, Some(&k), &format!("/generation?id={id}")).await;
    assert_eq!(first.status(), 404);
    assert!(
        first.headers().get(CONTENT_LENGTH).is_none(),
        "errors are chunked"
    );
    let body = first.text().await.unwrap();
    assert_eq!(
        body,
        format!("{{\"error\":{{\"message\":\"Generation {id} not found\",\"code\":404}}}}")
    );

    let raw = poll(5, || {
        let (sim, k, id) = (&sim, &k, &id);
        async move {
            let r = get(sim, Some(k), &format!("/generation?id={id}")).await;
            (r.status() == 200).then_some(r)
        }
    })
    .await
    .text()
    .await
    .unwrap();
    in_order(
        &raw,
        &[
            "{\"data\":{\"id\":",
            "\"request_id\":\"req-",
            "\"upstream_id\":",
            "\"created_at\":",
            "\"model\":",
            "\"provider_name\":\"DeepInfra\"",
            "\"api_type\":\"completions\"",
            "\"streamed\":true",
            "\"cancelled\":false",
            "\"finish_reason\":\"stop\"",
            "\"native_finish_reason\":",
            "\"tokens_prompt\":1180",
            "\"tokens_completion\":246",
            "\"native_tokens_prompt\":1200",
            "\"native_tokens_completion\":250",
            "\"native_tokens_reasoning\":20",
            "\"native_tokens_cached\":0",
            "\"native_tokens_completion_images\":0",
            "\"num_media_prompt\":null",
            "\"total_cost\":0.00066",
            "\"usage\":0.00066",
            "\"cache_discount\":null",
            "\"upstream_inference_cost\":0.00066",
            "\"is_byok\":false",
            "\"latency\":",
            "\"generation_time\":",
            "\"external_user\":\"client-7-user-42\"",
            "\"data_region\":\"global\"",
            "\"provider_responses\":[{",
        ],
    );
    let g: GenStats = serde_json::from_str(&raw).unwrap();
    assert_eq!(g.data.id, id);
    assert_eq!(dec(g.data.usage.get()), dec(g.data.total_cost.get()));
    assert!(g.data.streamed && !g.data.cancelled);
    assert_eq!(
        (
            g.data.native_tokens_prompt,
            g.data.native_tokens_completion,
            g.data.native_tokens_reasoning
        ),
        (1200, 250, 20)
    );
    assert_eq!(g.data.external_user.as_deref(), Some("client-7-user-42"));
    assert_eq!(g.data.finish_reason.as_deref(), Some("stop"));

    let missing = get(&sim, Some(&k), "/generation?id=gen-1-AAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn generation_never_ready_option() {
    let mut cfg = SimConfig::fast();
    cfg.generation_ready_delay = NEVER;
    let sim = start(cfg).await;
    let k = key(6);
    let r = post(&sim, &k, chat_body("q", false), &[]).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    assert_eq!(sim.generations().len(), 1, "recorded in the truth");
    assert_eq!(
        get(&sim, Some(&k), &format!("/generation?id={id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn auth_errors_have_exact_bodies() {
    let mut cfg = SimConfig::fast();
    cfg.accept_any_key = false;
    cfg.keys = vec![KeySpec::new(key(7))];
    let sim = start(cfg).await;
    let r = reqwest::Client::new()
        .post(format!("{}/chat/completions", sim.base_url()))
        .body(chat_body("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(CONTENT_LENGTH).is_none());
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"No auth credentials found","code":401}}"#
    );
    let r = post(&sim, &key(8), chat_body("x", false), &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"User not found.","code":401}}"#
    );
    assert_eq!(
        post(&sim, &key(7), chat_body("x", false), &[])
            .await
            .status(),
        200
    );
    // Management keys cannot do inference.
    assert_eq!(
        post(&sim, MGMT, chat_body("x", false), &[]).await.status(),
        403
    );
}

#[tokio::test]
async fn key_counters_limits_and_403_when_the_cap_is_spent() {
    let sim = start(SimConfig::fast()).await;
    let k = key(9);
    let mut spec = KeySpec::new(k.clone());
    spec.limit = Some(dec("0.002"));
    spec.limit_reset = Some(LimitReset::Daily);
    let hash = sim.register_key(spec);
    let mut served = Decimal::ZERO;
    let mut n = 0;
    loop {
        let r = post(
            &sim,
            &k,
            chat_body("x", n % 2 == 0),
            &[("x-sim-usage", "prompt=1200;completion=250")],
        )
        .await;
        if r.status() == 403 {
            assert_eq!(
                r.text().await.unwrap(),
                r#"{"error":{"message":"Key limit exceeded (daily limit). Manage it using https://openrouter.ai/settings/keys","code":403}}"#
            );
            break;
        }
        assert_eq!(r.status(), 200);
        let _ = r.text().await.unwrap();
        served += dec("0.00066");
        n += 1;
        assert!(n < 10, "limit never enforced");
    }
    assert_eq!(n, 4, "0.00066 * 3 < 0.002 <= 0.00066 * 4");
    assert_eq!(sim.key_totals(&k).cost, served);
    assert_eq!(sim.key_totals_by_hash(&hash).generations, 4);
    let raw = get(&sim, Some(&k), "/key").await.text().await.unwrap();
    assert_eq!(
        raw,
        format!("{{\"data\":{{\"label\":\"sk-or-v1-000...009\",\"limit\":0.002,\"limit_reset\":\"daily\",\"limit_remaining\":0,\"include_byok_in_limit\":false,\"usage\":0.00264,\"usage_daily\":0.00264,\"usage_weekly\":0.00264,\"usage_monthly\":0.00264,\"byok_usage\":0,\"byok_usage_daily\":0,\"byok_usage_weekly\":0,\"byok_usage_monthly\":0,\"is_free_tier\":false,\"is_management_key\":false,\"is_provisioning_key\":false,\"expires_at\":null,\"creator_user_id\":\"user_2simSIMsimSIMsimSIMsimSIM\",\"rate_limit\":{{\"requests\":-1,\"interval\":\"10s\",\"note\":\"This field is deprecated and safe to ignore.\"}}}}}}")
    );
    assert_eq!(
        get(&sim, Some(&k), "/auth/key").await.text().await.unwrap(),
        raw
    );
    // Tomorrow (UTC) the daily cap resets.
    sim.set_now(Utc::now() + TimeDelta::days(1));
    assert_eq!(
        post(&sim, &k, chat_body("x", false), &[]).await.status(),
        200
    );
}

#[tokio::test]
async fn credits_and_account_balance_402() {
    let mut cfg = SimConfig::fast();
    cfg.total_credits = dec("0.001");
    let sim = start(cfg).await;
    let k = key(10);
    let body = serde_json::json!({"model": "deepseek/deepseek-chat-v3-0324", "messages": [{"role":"user","content":"x"}], "max_tokens": 100000}).to_string();
    let r = post(&sim, &k, body, &[]).await;
    assert_eq!(r.status(), 402);
    let text = r.text().await.unwrap();
    assert!(text.starts_with(r#"{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 100000 tokens, but can only afford 831. To increase"#), "{text}");
    assert!(text.ends_with(r#""code":402,"metadata":{"provider_name":null}},"user_id":"user_2simSIMsimSIMsimSIMsimSIM"}"#), "{text}");
    // Spend the balance, then everything paid is refused.
    assert_eq!(
        post(
            &sim,
            &k,
            chat_body("x", false),
            &[("x-sim-usage", "prompt=1200;completion=250")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        post(
            &sim,
            &k,
            chat_body("x", false),
            &[("x-sim-usage", "prompt=1200;completion=250")]
        )
        .await
        .status(),
        200
    );
    let r = post(&sim, &k, chat_body("x", false), &[]).await;
    assert_eq!(r.status(), 402);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/credits","code":402},"user_id":"user_2simSIMsimSIMsimSIMsimSIM"}"#
    );
    let c = get(&sim, Some(&k), "/credits").await.text().await.unwrap();
    assert_eq!(
        c,
        r#"{"data":{"total_credits":0.001,"total_usage":0.00132}}"#
    );
}

#[derive(Deserialize)]
struct Created {
    data: KeyObj,
    key: String,
}
#[derive(Deserialize)]
struct KeyObj {
    hash: String,
    name: String,
    label: String,
    disabled: bool,
    limit: Option<Box<RawValue>>,
    limit_remaining: Option<Box<RawValue>>,
    updated_at: Option<String>,
}
#[derive(Deserialize)]
struct KeyList {
    data: Vec<KeyObj>,
}

async fn mgmt(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.base_url()))
        .bearer_auth(MGMT);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn management_api_create_list_page_update_delete() {
    let sim = start(SimConfig::fast()).await;
    use reqwest::Method;
    let r = mgmt(
        &sim,
        Method::POST,
        "/keys",
        Some(serde_json::json!({"name": "client-acme", "limit": 12.5, "limit_reset": "monthly"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let raw = r.text().await.unwrap();
    in_order(
        &raw,
        &[
            "{\"data\":{\"hash\":",
            "\"name\":\"client-acme\"",
            "\"label\":\"sk-or-v1-",
            "\"disabled\":false",
            "\"limit\":12.5",
            "\"limit_remaining\":12.5",
            "\"limit_reset\":\"monthly\"",
            "\"include_byok_in_limit\":false",
            "\"usage\":0",
            "\"usage_daily\":0",
            "\"byok_usage_monthly\":0",
            "\"created_at\":",
            "\"updated_at\":null",
            "\"expires_at\":null",
            "\"creator_user_id\":",
            &format!(
                "\"workspace_id\":\"{}\"}}",
                mai_sim::openrouter::DEFAULT_WORKSPACE_ID
            ),
            ",\"key\":\"sk-or-v1-",
        ],
    );
    let c: Created = serde_json::from_str(&raw).unwrap();
    assert!(mai_sim::openrouter::is_well_formed_key(&c.key));
    assert_eq!(c.data.hash, mai_sim::openrouter::key_hash(&c.key));
    assert_eq!(c.data.label, mai_sim::openrouter::mask_key(&c.key));
    assert_eq!(dec(c.data.limit.unwrap().get()), dec("12.5"));
    // The new key works for inference and its usage shows in the object.
    assert_eq!(
        post(
            &sim,
            &c.key,
            chat_body("x", false),
            &[("x-sim-usage", "prompt=1200;completion=250")]
        )
        .await
        .status(),
        200
    );
    let got: serde_json::Value = mgmt(&sim, Method::GET, &format!("/keys/{}", c.data.hash), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["name"], "client-acme");
    let got_raw = mgmt(&sim, Method::GET, &format!("/keys/{}", c.data.hash), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        got_raw.contains("\"limit_remaining\":12.49934,"),
        "{got_raw}"
    );
    assert!(got_raw.contains("\"usage\":0.00066,"), "{got_raw}");

    // Non-UTC expiry is rejected; UTC accepted.
    let r = mgmt(
        &sim,
        Method::POST,
        "/keys",
        Some(serde_json::json!({"name": "x", "expires_at": "2099-01-01T00:00:00+01:00"})),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = mgmt(
        &sim,
        Method::POST,
        "/keys",
        Some(serde_json::json!({"name": "x", "expires_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        mgmt(
            &sim,
            Method::POST,
            "/keys",
            Some(serde_json::json!({"name": ""}))
        )
        .await
        .status(),
        400
    );

    // 105 more keys: pages of 100, newest first.
    for i in 0..105 {
        let r = mgmt(
            &sim,
            Method::POST,
            "/keys",
            Some(serde_json::json!({"name": format!("bulk-{i}")})),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let p1: KeyList = mgmt(&sim, Method::GET, "/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p1.data.len(), 100);
    assert_eq!(p1.data[0].name, "bulk-104");
    let p2: KeyList = mgmt(&sim, Method::GET, "/keys?offset=100", None)
        .await
        .json()
        .await
        .unwrap();
    // 1 acme + 1 expiring + 105 bulk + the management key = 108 enabled keys.
    assert_eq!(p2.data.len(), 8);
    assert!(p2.data.iter().any(|k| k.name == "client-acme"));

    // PATCH disables (bumps updated_at); disabled keys get 401 and leave the default list.
    let r = mgmt(
        &sim,
        Method::PATCH,
        &format!("/keys/{}", c.data.hash),
        Some(serde_json::json!({"disabled": true, "limit": null})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let u: serde_json::Value = r.json().await.unwrap();
    assert_eq!(u["data"]["disabled"], true);
    assert!(u["data"]["limit"].is_null() && u["data"]["limit_remaining"].is_null());
    assert!(u["data"]["updated_at"].is_string());
    let r = post(&sim, &c.key, chat_body("x", false), &[]).await;
    assert_eq!(r.status(), 401);
    let all: KeyList = mgmt(&sim, Method::GET, "/keys?offset=100", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(!all.data.iter().any(|k| k.name == "client-acme"));
    let with: KeyList = mgmt(
        &sim,
        Method::GET,
        "/keys?offset=100&include_disabled=true",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let acme = with
        .data
        .iter()
        .find(|k| k.name == "client-acme")
        .expect("listed with include_disabled");
    assert!(
        acme.disabled
            && acme.updated_at.is_some()
            && acme.limit.is_none()
            && acme.limit_remaining.is_none()
    );

    // DELETE.
    let r = mgmt(
        &sim,
        Method::DELETE,
        &format!("/keys/{}", c.data.hash),
        None,
    )
    .await;
    assert_eq!(r.text().await.unwrap(), r#"{"deleted":true}"#);
    assert_eq!(
        mgmt(&sim, Method::GET, &format!("/keys/{}", c.data.hash), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        post(&sim, &c.key, chat_body("x", false), &[])
            .await
            .status(),
        401
    );

    // Ordinary keys are refused.
    let r = reqwest::Client::new()
        .get(format!("{}/keys", sim.base_url()))
        .bearer_auth(key(11))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Only management keys can perform this operation","code":403}}"#
    );
}

#[tokio::test]
async fn activity_aggregates_completed_utc_days_for_management_keys() {
    let sim = start(SimConfig::fast()).await;
    let (a, b) = (key(12), key(13));
    let now = Utc::now();
    let two_days_ago = now - TimeDelta::days(2);
    sim.freeze_clock(two_days_ago);
    for k in [&a, &a, &b] {
        assert_eq!(
            post(
                &sim,
                k,
                chat_body("x", false),
                &[("x-sim-usage", "prompt=1200;completion=250")]
            )
            .await
            .status(),
            200
        );
    }
    sim.freeze_clock(now - TimeDelta::days(40));
    assert_eq!(
        post(&sim, &a, chat_body("x", false), &[]).await.status(),
        200
    );
    sim.reset_clock();
    assert_eq!(
        post(&sim, &a, chat_body("x", false), &[]).await.status(),
        200
    );

    let r = get(&sim, Some(&a), "/activity").await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Only management keys can perform this operation","code":403}}"#
    );

    let raw = get(&sim, Some(MGMT), "/activity")
        .await
        .text()
        .await
        .unwrap();
    let date = two_days_ago.date_naive().format("%Y-%m-%d").to_string();
    in_order(
        &raw,
        &[
            // The live form (spec 5): the day with a time suffix.
            &format!("{{\"data\":[{{\"date\":\"{date} 00:00:00\""),
            "\"model\":\"deepseek/deepseek-chat-v3-0324\"",
            "\"model_permaslug\":\"deepseek/deepseek-chat-v3-0324\"",
            "\"endpoint_id\":",
            "\"provider_name\":\"DeepInfra\"",
            "\"usage\":0.00198",
            "\"byok_usage_inference\":0",
            "\"requests\":3",
            "\"prompt_tokens\":3600",
            "\"completion_tokens\":750",
            "\"reasoning_tokens\":0}]}",
        ],
    );
    let hash_a = mai_sim::openrouter::key_hash(&a);
    let only_a = get(
        &sim,
        Some(MGMT),
        &format!("/activity?api_key_hash={hash_a}&date={date}"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        only_a.contains("\"usage\":0.00132,") && only_a.contains("\"requests\":2,"),
        "{only_a}"
    );
    let today = now.date_naive().format("%Y-%m-%d").to_string();
    assert_eq!(
        get(&sim, Some(MGMT), &format!("/activity?date={today}"))
            .await
            .status(),
        400
    );
    assert_eq!(
        get(&sim, Some(MGMT), "/activity?date=05-01-2026")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn truth_equals_the_sum_of_served_costs_exactly() {
    let mut cfg = SimConfig::fast();
    cfg.seed = 42;
    let sim = start(cfg).await;
    let keys = [key(20), key(21), key(22)];
    let models = [
        "openai/gpt-4o-mini",
        "anthropic/claude-3.5-sonnet",
        "google/gemini-2.5-flash",
        "meta-llama/llama-3.3-70b-instruct",
    ];
    let mut sums = [Decimal::ZERO; 3];
    for i in 0..60usize {
        let stream = i % 3 == 0;
        let text = "lorem ipsum ".repeat(1 + i * 37 % 500);
        let body = serde_json::json!({"model": models[i % models.len()], "messages": [{"role":"user","content": text}], "stream": stream}).to_string();
        let raw = post(&sim, &keys[i % 3], body, &[])
            .await
            .text()
            .await
            .unwrap();
        let cost = if stream {
            let ev = sse_events(&raw);
            let usage = ev[ev.len() - 2].strip_prefix("data: ").unwrap();
            let c: CostOnly = serde_json::from_str(usage).unwrap();
            dec(c.usage.cost.get())
        } else {
            let c: CostOnly = serde_json::from_str(&raw).unwrap();
            dec(c.usage.cost.get())
        };
        sums[i % 3] += cost;
    }
    for (k, sum) in keys.iter().zip(sums) {
        let t = sim.key_totals(k);
        assert_eq!(t.generations, 20);
        assert_eq!(
            t.cost, sum,
            "simulator truth = what the client saw, exactly"
        );
        #[derive(Deserialize)]
        struct KeyUsage {
            data: Usage,
        }
        #[derive(Deserialize)]
        struct Usage {
            usage: Box<RawValue>,
        }
        let ku: KeyUsage = get(&sim, Some(k), "/key").await.json().await.unwrap();
        assert_eq!(dec(ku.data.usage.get()), sum);
    }
    let total: Decimal = sums.iter().sum();
    assert_eq!(sim.total_usage(), total);
    // Out-of-process view: exact decimal strings.
    let truth: serde_json::Value = reqwest::get(format!("http://{}/__sim/truth", sim.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth["generations"].as_array().unwrap().len(), 60);
    assert_eq!(dec(truth["total_usage"].as_str().unwrap()), total);
    let sum_truth: Decimal = truth["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| dec(g["cost"].as_str().unwrap()))
        .sum();
    assert_eq!(sum_truth, total);
}

#[tokio::test]
async fn same_seed_same_requests_same_ids_tokens_costs() {
    let at = Utc::now() - TimeDelta::hours(3);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(SimConfig {
            seed: 99,
            ..SimConfig::fast()
        })
        .await;
        sim.freeze_clock(at);
        let mut out = Vec::new();
        for i in 0..5 {
            let raw = post(
                &sim,
                &key(30),
                chat_body(&format!("question {i}"), i % 2 == 0),
                &[],
            )
            .await
            .text()
            .await
            .unwrap();
            out.push(raw);
        }
        let truth: Vec<_> = sim
            .generations()
            .into_iter()
            .map(|g| (g.id, g.prompt_tokens, g.completion_tokens, g.cost))
            .collect();
        runs.push((out, truth));
        sim.shutdown().await;
    }
    assert_eq!(runs[0], runs[1]);
    let other = start(SimConfig {
        seed: 100,
        ..SimConfig::fast()
    })
    .await;
    other.freeze_clock(at);
    let raw = post(&other, &key(30), chat_body("question 0", true), &[])
        .await
        .text()
        .await
        .unwrap();
    assert_ne!(raw, runs[0].0[0]);
}

#[tokio::test]
async fn models_list_prices_as_strings() {
    let sim = start(SimConfig::fast()).await;
    let raw = get(&sim, None, "/models").await.text().await.unwrap();
    assert!(
        raw.contains("\"id\":\"deepseek/deepseek-chat-v3-0324\""),
        "{raw}"
    );
    assert!(
        raw.contains(
            "\"pricing\":{\"prompt\":\"0.0000003\",\"completion\":\"0.0000012\",\"request\":\"0\""
        ),
        "{raw}"
    );
    assert!(
        raw.contains("\"input_cache_read\":\"0.0000003\",\"input_cache_write\":\"0.00000375\""),
        "{raw}"
    );
}

#[tokio::test]
async fn unknown_model_is_400_and_bad_json_is_400() {
    let sim = start(SimConfig::fast()).await;
    let body = serde_json::json!({"model": "nope/nothing", "messages": []}).to_string();
    let r = post(&sim, &key(31), body, &[]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"nope/nothing is not a valid model ID","code":400}}"#
    );
    let r = post(&sim, &key(31), "{not json".into(), &[]).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn byok_key_pays_only_the_fee_and_counts_byok_usage() {
    let sim = start(SimConfig::fast()).await;
    let k = key(32);
    let mut spec = KeySpec::new(k.clone());
    spec.byok = true;
    sim.register_key(spec);
    let raw = post(
        &sim,
        &k,
        chat_body("x", false),
        &[("x-sim-usage", "prompt=1200;completion=250")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(raw.contains("\"cost\":0.000033,\"is_byok\":true"), "{raw}");
    assert!(
        raw.contains("\"upstream_inference_cost\":0.00066,"),
        "{raw}"
    );
    let info = get(&sim, Some(&k), "/key").await.text().await.unwrap();
    assert!(
        info.contains("\"usage\":0.000033,") && info.contains("\"byok_usage\":0.00066,"),
        "{info}"
    );
}

#[tokio::test]
async fn expired_keys_get_401_and_credits_can_be_management_only() {
    let mut cfg = SimConfig::fast();
    cfg.credits_auth = mai_sim::openrouter::CreditsAuth::ManagementOnly;
    let sim = start(cfg).await;
    let k = key(40);
    let mut spec = KeySpec::new(k.clone());
    spec.expires_at = Some(Utc::now() + TimeDelta::hours(1));
    sim.register_key(spec);
    assert_eq!(
        post(&sim, &k, chat_body("x", false), &[]).await.status(),
        200
    );
    sim.set_now(Utc::now() + TimeDelta::hours(2));
    let r = post(&sim, &k, chat_body("x", false), &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"User not found.","code":401}}"#
    );
    sim.reset_clock();

    let r = get(&sim, Some(&key(41)), "/credits").await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Only management keys can perform this operation","code":403}}"#
    );
    let r = get(&sim, Some(MGMT), "/credits").await;
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"data":{"total_credits":1000,"total_usage":0.00066}}"#
            .replace("0.00066", &sim.total_usage().to_string())
    );

    // Management keys may read generation stats too.
    let gen_id = sim.generations()[0].id.clone();
    assert_eq!(
        get(&sim, Some(MGMT), &format!("/generation?id={gen_id}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn keys_live_in_workspaces_and_are_addressed_by_their_sha256() {
    let sim = start(SimConfig::fast()).await;
    use reqwest::Method;
    const OTHER: &str = "7d3c1f0e-2b4a-4c5d-8e9f-0a1b2c3d4e5f";
    let r = mgmt(
        &sim,
        Method::POST,
        "/keys",
        Some(serde_json::json!({"name": "client-beta", "workspace_id": OTHER})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let c: serde_json::Value = r.json().await.unwrap();
    let key = c["key"].as_str().unwrap();
    let hash = c["data"]["hash"].as_str().unwrap();
    assert_eq!(c["data"]["workspace_id"], OTHER);
    // hash = SHA-256 hex of the key string (spec 6.1), computed here independently.
    use sha2::Digest;
    assert_eq!(hash, hex::encode(sha2::Sha256::digest(key.as_bytes())));
    // The default listing is the default workspace's only; naming the workspace lists it.
    let default: serde_json::Value = mgmt(&sim, Method::GET, "/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        default["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["hash"] != hash),
        "{default}"
    );
    let other: serde_json::Value = mgmt(
        &sim,
        Method::GET,
        &format!("/keys?workspace_id={OTHER}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(other["data"][0]["hash"], hash, "{other}");
    // GET/PATCH by hash work whatever the workspace.
    let got = mgmt(&sim, Method::GET, &format!("/keys/{hash}"), None).await;
    assert_eq!(got.status(), 200);
    let r = mgmt(
        &sim,
        Method::PATCH,
        &format!("/keys/{hash}"),
        Some(serde_json::json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        post(&sim, key, chat_body("x", false), &[]).await.status(),
        401,
        "a disabled key fails inference"
    );
}
