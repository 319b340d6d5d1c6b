//! `POST /api/v1/admin/probe`: one metered request through the proxy's own path, answered
//! once it is in the ledger — the health gate of deployments and image updates.

mod common;
use common::*;
use mai_sim::openrouter::{FaultEndpoint, FaultRule, SimConfig};
use mai_wire::tracker::{EventPage, ProbeReport, PROBE_USER};

async fn probe(env: &Env, token: &str, body: Option<serde_json::Value>) -> reqwest::Response {
    let r = env
        .http
        .post(format!("{}/api/v1/admin/probe", env.base))
        .bearer_auth(token);
    match body {
        Some(b) => r.json(&b),
        None => r,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_is_metered_under_the_probe_user_and_visible_in_the_events() {
    let mut env = start(SimConfig::fast()).await;
    // Signed identity on: chat users need a JWT; the probe is the operator's and does not.
    env.restart(&[(
        "MAI_OPENWEBUI_JWT_SECRET",
        "owui-jwt-secret-for-tests-0123456789abcdef",
    )])
    .await;
    let r = probe(&env, ADMIN, None).await;
    assert_eq!(r.status(), 200);
    let rep: ProbeReport = r.json().await.unwrap();
    assert_eq!(rep.event.generation_id, rep.generation_id);
    assert_eq!(rep.event.user.id.as_deref(), Some(PROBE_USER));
    assert_eq!(rep.event.context.task.as_deref(), Some("mai_probe"));
    assert_eq!(rep.event.model, "openai/gpt-4o-mini");
    // OpenRouter has it on this client's key, and the ledger says so through its API.
    assert_eq!(env.sim.key_totals(KEY).generations, 1);
    let page: EventPage = env
        .get(
            &format!("/api/v1/events?after={}&limit=1", rep.event.seq - 1),
            READ,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.events[0].generation_id, rep.generation_id);
    // A model of the caller's choice; the read token is not enough.
    let r = probe(
        &env,
        ADMIN,
        Some(serde_json::json!({"model": "google/gemini-2.5-flash"})),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(probe(&env, READ, None).await.status(), 401);
    let r = probe(&env, ADMIN, Some(serde_json::json!({"modell": "x"}))).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("modell"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_probe_says_what_openrouter_answered() {
    let env = start(SimConfig::fast()).await;
    env.sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Chat,
        ..FaultRule::parse("status=503").unwrap()
    });
    let r = probe(&env, ADMIN, None).await;
    assert_eq!(r.status(), 502);
    let t = r.text().await.unwrap();
    assert!(t.contains("503") && t.contains("probe"), "{t}");
    env.flush().await;
    assert_eq!(
        env.ledger()
            .day("acme", mai_core::time::warsaw_today())
            .unwrap()
            .requests,
        0
    );
}
