//! Hardening of issue #12: the OpenRouter key across hand-overs and restarts, the key
//! state the proxy learns from refusals, and provisional events weeks old.

mod common;
use common::*;
use mai_sim::openrouter::{FaultEndpoint, FaultRule, SimConfig};

const NEW_KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b2";

async fn hand_over(env: &Env, key: &str) -> reqwest::Response {
    env.http
        .put(format!("{}/api/v1/admin/openrouter-key", env.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "key": key, "name": "mai-acme-2" }))
        .send()
        .await
        .unwrap()
}

async fn status(env: &Env) -> serde_json::Value {
    env.get("/api/v1/status", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_key_survives_a_restart() {
    let mut env = start(SimConfig::fast()).await;
    let r = hand_over(&env, NEW_KEY).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let s = status(&env).await;
    assert_eq!(
        s["key"]["hash"],
        mai_core::openrouter::key_hash(NEW_KEY),
        "{s}"
    );
    assert_eq!(s["key"]["state"], "ok", "the hand-over's own check: {s}");
    // The key is on the data volume, readable by its owner only.
    let file = mai_tracker::handover::path_for(&env.db());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The restart's environment still names the old key (OPENROUTER_API_KEY = KEY).
    env.restart(&[]).await;
    let s = status(&env).await;
    assert_eq!(s["key"]["label"], "sk-or-v1-…00b2", "{s}");
    let r = env.chat(body(false, Some("u-1"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    assert_eq!(env.sim.key_totals(NEW_KEY).generations, 1);
    assert_eq!(env.sim.key_totals(KEY).generations, 0);
    // The key history is consistent: the old key closed, the new one current, named.
    env.flush().await;
    let h = mai_tracker::key_history::KeyHistory::parse(
        env.ledger()
            .get_meta(mai_tracker::key_history::META_KEY)
            .unwrap()
            .as_deref(),
    )
    .unwrap();
    assert_eq!(h.0.len(), 2, "{h:?}");
    assert_eq!(h.0[0].hash, mai_core::openrouter::key_hash(KEY));
    assert!(h.0[0].to.is_some());
    let cur = h.current().unwrap();
    assert_eq!(cur.hash, mai_core::openrouter::key_hash(NEW_KEY));
    assert_eq!(cur.name.as_deref(), Some("mai-acme-2"));
    assert_eq!(s["webhook"]["key_names"][0], "mai-acme-2", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_new_environment_key_replaces_the_stored_hand_over() {
    let mut env = start(SimConfig::fast()).await;
    assert_eq!(hand_over(&env, NEW_KEY).await.status(), 200);
    let third = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c3";
    env.restart(&[("OPENROUTER_API_KEY", third)]).await;
    let s = status(&env).await;
    assert_eq!(s["key"]["label"], "sk-or-v1-…00c3", "{s}");
    assert!(!mai_tracker::handover::path_for(&env.db()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_that_cannot_be_stored_keeps_the_old_key() {
    let env = start(SimConfig::fast()).await;
    // A directory where the file would go: the rename fails.
    std::fs::create_dir(mai_tracker::handover::path_for(&env.db())).unwrap();
    let r = hand_over(&env, NEW_KEY).await;
    assert_eq!(r.status(), 500);
    let t = r.text().await.unwrap();
    assert!(t.contains("old key stays in use"), "{t}");
    assert!(!t.contains(&NEW_KEY[12..]), "never the key: {t}");
    let s = status(&env).await;
    assert_eq!(s["key"]["hash"], mai_core::openrouter::key_hash(KEY));
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    assert_eq!(env.sim.key_totals(KEY).generations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_check_still_switches_when_the_caller_gives_up() {
    let env = start(SimConfig::fast()).await;
    env.sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Key,
        ..FaultRule::parse("latency=1500").unwrap()
    });
    // The caller stops waiting before the tracker's check is back.
    let r = env
        .http
        .put(format!("{}/api/v1/admin/openrouter-key", env.base))
        .bearer_auth(ADMIN)
        .timeout(std::time::Duration::from_millis(200))
        .json(&serde_json::json!({ "key": NEW_KEY }))
        .send()
        .await;
    assert!(r.is_err(), "the caller timed out");
    // The tracker finishes the hand-over all the same: stored and in use together.
    let hash = mai_core::openrouter::key_hash(NEW_KEY);
    eventually(
        "the hand-over completes",
        std::time::Duration::from_secs(10),
        || async { status(&env).await["key"]["hash"] == hash.as_str() },
    )
    .await;
    let stored = mai_tracker::handover::load(&env.db()).unwrap().unwrap();
    assert_eq!(stored.key.hash(), hash);
    // The fault is scoped to /key: chats go on meanwhile.
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_tells_the_key_cap_from_the_accounts_credits_at_once() {
    let env = start(SimConfig::fast()).await;
    // The start-up `/key` check first, so it cannot land after the refusal below.
    eventually(
        "the start-up key check",
        std::time::Duration::from_secs(10),
        || async { !status(&env).await["key"]["checked_at"].is_null() },
    )
    .await;
    env.sim.set_fault(
        FaultRule::parse("status=403;message=Key limit exceeded (monthly limit). Manage it using https://openrouter.ai/settings/keys")
            .unwrap(),
    );
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let t = r.text().await.unwrap();
    assert!(t.contains("Key limit exceeded"), "forwarded as is: {t}");
    // No reconciliation ran (OPENROUTER_USAGE_SYNC_INTERVAL=0): the proxy said it.
    let s = status(&env).await;
    assert_eq!(s["key"]["state"], "limit_reached", "{s}");
    assert!(
        s["key"]["error"].as_str().unwrap().contains("fleet file"),
        "with the advice: {s}"
    );
    env.sim.clear_faults();
    env.sim.set_fault(FaultRule::parse("status=402").unwrap());
    let r = env.chat(body(true, None)).send().await.unwrap();
    assert_eq!(r.status(), 402);
    r.text().await.unwrap();
    let s = status(&env).await;
    assert_eq!(s["key"]["state"], "account_out_of_credits", "{s}");
    // A moderation 403 is no spending refusal: the state stays.
    env.sim.clear_faults();
    env.sim
        .set_fault(FaultRule::parse("status=403;message=Your input was flagged").unwrap());
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    r.text().await.unwrap();
    assert_eq!(status(&env).await["key"]["state"], "account_out_of_credits");
    // Spending works again (topped up): the next success clears it.
    env.sim.clear_faults();
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let s = status(&env).await;
    assert_eq!(s["key"]["state"], "ok", "{s}");
    assert!(s["key"]["error"].is_null(), "{s}");
}

/// Reconciliation reaches back to the previous month, whatever `days_back` says: a
/// provisional event there would otherwise stay at $0 on the invoice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisional_event_weeks_old_is_still_confirmed() {
    use mai_core::usage::{EventState, Source, UsageEvent};
    let env = start(SimConfig::fast()).await;
    let when = chrono::Utc::now() - chrono::Duration::days(20);
    env.sim.set_now(when);
    let r = env
        .http
        .post(format!("{}/chat/completions", env.sim.base_url()))
        .bearer_auth(KEY)
        .json(&body(false, Some("u-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    env.sim.reset_clock();
    let g = env.sim.generations().remove(0);
    // What a crash left: the id, no cost.
    env.ledger()
        .record(&UsageEvent {
            generation_id: g.id.clone(),
            org_id: "acme".into(),
            user: Default::default(),
            model: g.model.clone(),
            provider: None,
            tokens: Default::default(),
            cost_usd: Default::default(),
            source: Source::Proxy,
            state: EventState::Provisional,
            created_at: when,
            context: Default::default(),
        })
        .unwrap();
    // OPENROUTER_USAGE_SYNC_DAYS_BACK is 1.
    let rep = env.sync().await;
    assert_eq!(rep["confirmed"], 1, "{rep}");
    env.flush().await;
    let e = env.ledger().get("acme", &g.id).unwrap().unwrap().event;
    assert_eq!(e.state, EventState::Confirmed);
    assert_eq!(e.cost_usd, g.cost);
    assert_eq!(
        e.created_at.timestamp_micros(),
        when.timestamp_micros(),
        "kept on its own day"
    );
}
