//! The tracker against OpenRouter as it really answers (issue #11): the Broadcast webhook
//! with the attribute names really sent, a static secret header and a key-name filter;
//! drift across key rotations (a new key's counters start at zero, so a period's total is
//! the sum over every key used in it), on `/activity` rows in their live form
//! (`"date": "YYYY-MM-DD HH:MM:SS"`); the key's own cap apart from the account's credits.

mod common;
use common::*;
use mai_core::usage::{EventState, Source};
use mai_sim::openrouter::{GenerationTruth, KeySpec, OpenRouterSim, SimConfig};
use mai_wire::tracker::{KeyState, Status};
use rust_decimal::Decimal;
use std::str::FromStr;

const MGMT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1";
const KEY_B: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b2";
const HOOK_PATH: &str = "/api/v1/usage-tracking/webhook/openrouter-usage";

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openrouter")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One Broadcast span with the real attribute names for a generation the simulator served.
fn span_of(g: &GenerationTruth, key_name: &str) -> String {
    let ns = g.created_at.timestamp_nanos_opt().unwrap();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"openrouter.trace.id","value":{{"stringValue":"{id}"}}}}]}},"scopeSpans":[{{"spans":[{{"endTimeUnixNano":"{ns}","attributes":[{{"key":"gen_ai.response.id","value":{{"stringValue":"{id}"}}}},{{"key":"gen_ai.response.model","value":{{"stringValue":"{model}"}}}},{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"{p}"}}}},{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{c}"}}}},{{"key":"gen_ai.usage.total_cost","value":{{"doubleValue":{cost}}}}},{{"key":"trace.metadata.openrouter.api_key_name","value":{{"stringValue":"{key_name}"}}}}]}}]}}]}}]}}"#,
        id = g.id,
        model = g.model,
        p = g.prompt_tokens,
        c = g.completion_tokens,
        cost = g.cost,
    )
}

async fn hook(env: &Env, body: String, secret: Option<&str>, test: bool) -> reqwest::Response {
    let mut rb = env
        .http
        .post(format!("{}{HOOK_PATH}", env.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = secret {
        rb = rb.header("X-Mai-Webhook-Secret", s);
    }
    if test {
        rb = rb.header("X-Test-Connection", "true");
    }
    rb.send().await.unwrap()
}

/// Syncs until the key state is `want`: the tracker's own first key check, started in
/// the background at start-up, may answer after the test's first sync and report what
/// the key was before the test changed it.
async fn sync_until_key_state(env: &Env, want: KeyState) -> Status {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        env.sync().await;
        let s = status(env).await;
        if s.key.state == want || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn status(env: &Env) -> Status {
    env.get("/api/v1/status", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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

/// A chat request straight to the simulator with `key`: usage the tracker never saw.
async fn direct(sim: &mai_sim::openrouter::SimHandle, key: &str) -> GenerationTruth {
    let before = sim.generations().len();
    sim_chat(sim, key).await;
    sim.generations().remove(before)
}

async fn sim_chat(sim: &mai_sim::openrouter::SimHandle, key: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(key)
        .json(&body(false, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
}

async fn hand_over(env: &Env, key: &str, name: Option<&str>) {
    let mut b = serde_json::json!({ "key": key });
    if let Some(n) = name {
        b["name"] = n.into();
    }
    let r = env
        .http
        .put(format!("{}/api/v1/admin/openrouter-key", env.base))
        .bearer_auth(ADMIN)
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_webhook_secret_header_connection_test_and_key_filter() {
    let env = start(SimConfig::fast()).await;
    // OpenRouter's connection test: empty POST, X-Test-Connection and the custom headers.
    let r = hook(&env, String::new(), Some(HOOK), true).await;
    assert_eq!(r.status(), 200, "the destination can be saved");
    for wrong in [None, Some("webhook-secret-wrong-0000")] {
        let r = hook(&env, String::new(), wrong, true).await;
        assert_eq!(r.status(), 401, "the test fails without the secret");
        let t = r.text().await.unwrap();
        assert!(
            t.contains("x-mai-webhook-secret") && !t.contains(HOOK),
            "{t}"
        );
    }
    // A delivery of three spans: ours, another client's key, ours without a generation id.
    let delivery = fixture("broadcast_otlp.json");
    assert_eq!(
        hook(&env, delivery.clone(), None, false).await.status(),
        401
    );
    let r: serde_json::Value = hook(&env, delivery.clone(), Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["recorded"].as_u64(), r["duplicates"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    let r: serde_json::Value = hook(&env, delivery, Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["recorded"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "redelivery: {r}"
    );
    env.flush().await;
    let l = env.ledger();
    let evs = l.events_since(0, 10).unwrap().events;
    assert_eq!(evs.len(), 1, "the other key's span is never recorded");
    let e = &evs[0].event;
    assert_eq!(e.generation_id, "gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ");
    assert_eq!(
        e.cost_usd,
        Decimal::from_str("0.00033").unwrap(),
        "total_cost, exact"
    );
    assert_eq!(
        (
            e.tokens.prompt,
            e.tokens.completion,
            e.tokens.cached,
            e.tokens.reasoning
        ),
        (1200, 250, 1024, 64)
    );
    assert_eq!(e.model, "openai/gpt-4o-mini");
    assert_eq!(e.user.id.as_deref(), Some("anna@acme.pl"));
    assert_eq!(
        (e.source, e.state),
        (Source::Webhook, EventState::Provisional),
        "counted at once, checked against /generation by reconciliation"
    );
    assert_eq!(e.created_at.timestamp(), 1767225601);
    let m = metrics(&env).await;
    for line in [
        "mai_webhook_spans_skipped_total{org=\"acme\",reason=\"other_key\"} 2",
        "mai_webhook_spans_skipped_total{org=\"acme\",reason=\"no_generation_id\"} 2",
        "mai_webhook_rejected_total{org=\"acme\"} 3",
    ] {
        assert!(m.contains(line), "{line} missing from\n{m}");
    }
    // A span for what the proxy already metered is a duplicate, not a second charge.
    env.chat(body(false, Some("u1")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let g = env.sim.generations().remove(0);
    let r: serde_json::Value = hook(&env, span_of(&g, KEY_NAME), Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicates"], 1, "{r}");
    let s = status(&env).await;
    assert!(s.webhook.enabled);
    assert_eq!(s.webhook.key_names, [KEY_NAME]);
    assert_eq!(s.key.name.as_deref(), Some(KEY_NAME));
}

/// A Broadcast trace is a copy: OpenRouter's own record (`/generation`) corrects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_record_with_a_wrong_cost_is_corrected_by_the_next_sync() {
    let env = start(SimConfig::fast()).await;
    // A generation made with the client's key outside the tracker: only the webhook
    // tells the tracker of it, with a wrong cost and token count.
    let r = env
        .http
        .post(format!("{}/chat/completions", env.sim.base_url()))
        .bearer_auth(KEY)
        .json(&body(false, Some("u-9")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let g = env.sim.generations().remove(0);
    let mut wrong = g.clone();
    wrong.cost = g.cost * Decimal::from(3);
    wrong.completion_tokens += 7;
    let r: serde_json::Value = hook(&env, span_of(&wrong, KEY_NAME), Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["recorded"], 1, "{r}");
    env.flush().await;
    let e = env.ledger().get("acme", &g.id).unwrap().unwrap().event;
    assert_eq!(
        (e.source, e.state),
        (Source::Webhook, EventState::Provisional)
    );
    assert_eq!(e.cost_usd, wrong.cost, "counted at once with what it said");
    let rep = env.sync().await;
    assert_eq!(rep["corrected"], 1, "{rep}");
    env.flush().await;
    let e = env.ledger().get("acme", &g.id).unwrap().unwrap().event;
    assert_eq!(
        (e.source, e.state),
        (Source::Reconciliation, EventState::Confirmed)
    );
    assert_eq!(e.cost_usd, g.cost, "OpenRouter's truth");
    assert_eq!(e.tokens.completion, u64::from(g.completion_tokens));
    // A redelivery of the wrong trace changes nothing any more.
    let r: serde_json::Value = hook(&env, span_of(&wrong, KEY_NAME), Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicates"], 1, "{r}");
    env.flush().await;
    assert_eq!(
        env.ledger()
            .get("acme", &g.id)
            .unwrap()
            .unwrap()
            .event
            .cost_usd,
        g.cost
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_webhook_is_off_never_open() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = start_tracker(&sim.base_url(), dir.path(), &[("MAI_WEBHOOK_SECRET", "")]).await;
    let env = Env {
        base: t.base_url(),
        sim,
        tracker: Some(t),
        dir,
        http: reqwest::Client::new(),
    };
    for test in [true, false] {
        let r = hook(&env, fixture("broadcast_otlp.json"), Some(HOOK), test).await;
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("MAI_WEBHOOK_SECRET"));
    }
    env.flush().await;
    assert!(env.ledger().events_since(0, 10).unwrap().events.is_empty());
    let s = status(&env).await;
    assert!(!s.webhook.enabled);
    assert_eq!(s.webhook.secret_header, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_mid_day_gives_no_false_drift_and_a_real_difference_shows() {
    // No management key: the old key's counters are those read at the hand-over.
    let env = start(SimConfig::fast()).await;
    for _ in 0..2 {
        env.chat(body(false, None))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    hand_over(&env, KEY_B, Some("mai-acme-2")).await;
    env.chat(body(true, None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    env.flush().await;
    assert_eq!(env.sim.key_totals(KEY).generations, 2);
    assert_eq!(env.sim.key_totals(KEY_B).generations, 1);
    let r = env.sync().await;
    assert_eq!(r["status"], "ok", "{r}");
    // The new key's own /key counter only has its own request: summed with the old key's.
    assert_eq!(r["drift"]["day_usd"], "0", "no false drift: {r}");
    assert_eq!(r["drift"]["month_usd"], "0", "{r}");
    let s = status(&env).await;
    assert_eq!(s.key.name.as_deref(), Some("mai-acme-2"));
    assert_eq!(s.key.hash, mai_core::openrouter::key_hash(KEY_B));
    assert_eq!(
        s.webhook.key_names,
        ["mai-acme-2", KEY_NAME],
        "the old key's late spans still count"
    );
    // A late Broadcast span of the old key is still this client's.
    let g = env.sim.generations().remove(0);
    let r: serde_json::Value = hook(&env, span_of(&g, KEY_NAME), Some(HOOK), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicates"], 1, "{r}");
    // A real difference: the new key used outside the tracker.
    let outside = direct(&env.sim, KEY_B).await;
    let r = env.sync().await;
    assert_eq!(
        Decimal::from_str(r["drift"]["day_usd"].as_str().unwrap()).unwrap(),
        outside.cost,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_drift_sums_every_key_used_across_a_rotation_on_live_rows() {
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    // The keys as the console created them: their names are what Broadcast spans carry.
    sim.register_key(KeySpec {
        name: KEY_NAME.into(),
        ..KeySpec::new(KEY)
    });
    sim.register_key(KeySpec {
        name: "mai-acme-2".into(),
        ..KeySpec::new(KEY_B)
    });
    let dir = tempfile::tempdir().unwrap();
    let t = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[("OPENROUTER_PROVISIONING_KEY", MGMT)],
    )
    .await;
    let env = Env {
        base: t.base_url(),
        sim,
        tracker: Some(t),
        dir,
        http: reqwest::Client::new(),
    };
    // Yesterday (UTC): two generations on the first key, the rotation, one on the next.
    // The ledger learns them from Broadcast, dated as OpenRouter dates them.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    env.sim.set_now(yesterday);
    let a1 = direct(&env.sim, KEY).await;
    let a2 = direct(&env.sim, KEY).await;
    env.sim.reset_clock();
    hand_over(&env, KEY_B, Some("mai-acme-2")).await;
    env.sim.set_now(yesterday);
    let b1 = direct(&env.sim, KEY_B).await;
    env.sim.reset_clock();
    for (g, name) in [(&a1, KEY_NAME), (&a2, KEY_NAME), (&b1, "mai-acme-2")] {
        let r: serde_json::Value = hook(&env, span_of(g, name), Some(HOOK), false)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["recorded"], 1, "{r}");
    }
    env.flush().await;
    // The simulator serves /activity in the live form; the check runs on it.
    let raw = reqwest::Client::new()
        .get(format!("{}/activity", env.sim.base_url()))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        raw.contains(&format!("\"date\":\"{} 00:00:00\"", yesterday.date_naive())),
        "{raw}"
    );
    let r = env.sync().await;
    assert_eq!(r["status"], "ok", "{r}");
    assert!(
        r["drift"].get("activity").is_none(),
        "both keys summed: no false drift: {r}"
    );
    assert_eq!(r["drift"]["day_usd"], "0", "{r}");
    assert_eq!(r["drift"]["month_usd"], "0", "{r}");
    let s = status(&env).await;
    assert_eq!(
        s.key.name.as_deref(),
        Some("mai-acme-2"),
        "learned with the management key"
    );
    // A real difference: yesterday, the new key used outside the tracker.
    env.sim.set_now(yesterday);
    let outside = direct(&env.sim, KEY_B).await;
    env.sim.reset_clock();
    let r = env.sync().await;
    let act = r["drift"]["activity"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(act.len(), 1, "{r}");
    assert_eq!(act[0]["date"], yesterday.date_naive().to_string());
    assert_eq!(act[0]["model"], outside.model);
    let sum = a1.cost + a2.cost + b1.cost;
    assert_eq!(
        Decimal::from_str(act[0]["openrouter_usd"].as_str().unwrap()).unwrap(),
        sum + outside.cost
    );
    assert_eq!(
        Decimal::from_str(act[0]["ledger_usd"].as_str().unwrap()).unwrap(),
        sum
    );
    assert_eq!(
        (
            act[0]["openrouter_requests"].as_u64(),
            act[0]["ledger_requests"].as_u64()
        ),
        (Some(4), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_own_cap_and_the_accounts_credits_are_told_apart() {
    // The key's cap spent: 403 "Key limit exceeded" territory.
    let env = start(SimConfig::fast()).await;
    env.sim.register_key(KeySpec {
        limit: Some(Decimal::ZERO),
        ..KeySpec::new(KEY)
    });
    let s = sync_until_key_state(&env, KeyState::LimitReached).await;
    assert_eq!(s.key.state, KeyState::LimitReached);
    assert!(metrics(&env)
        .await
        .contains("mai_openrouter_key_state{org=\"acme\",state=\"limit_reached\"} 1"));
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let msg = r.text().await.unwrap();
    assert_eq!(
        mai_core::openrouter::classify_refusal(403, &msg),
        Some(mai_core::openrouter::Refusal::KeyLimitExceeded {
            window: Some("total".into())
        }),
        "{msg}"
    );
    // The account's credits spent: 402 for every key.
    let env = start(SimConfig {
        total_credits: Decimal::ZERO,
        ..SimConfig::fast()
    })
    .await;
    let s = sync_until_key_state(&env, KeyState::AccountOutOfCredits).await;
    assert_eq!(s.key.state, KeyState::AccountOutOfCredits);
    assert!(metrics(&env)
        .await
        .contains("mai_openrouter_key_state{org=\"acme\",state=\"account_out_of_credits\"} 1"));
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 402);
    let msg = r.text().await.unwrap();
    assert_eq!(
        mai_core::openrouter::classify_refusal(402, &msg),
        Some(mai_core::openrouter::Refusal::AccountOutOfCredits)
    );
}
