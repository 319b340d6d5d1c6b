//! Open WebUI's identity headers as open-webui 0.12.4 really sends them, through a real
//! tracker in front of the in-process simulator: percent-encoded names, the signed
//! `X-OpenWebUI-User-Jwt`, the chat id and the custom task and groups headers; the
//! ledger and every report (by user, task, group, chat) against the simulator's truth.

mod common;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use mai_core::usage::EventState;
use mai_sim::openrouter::SimConfig;
use mai_wire::tracker::{ByChat, ByGroup, ByTask, ByUser, ErrorBody, KeyedUsage, Today};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use std::str::FromStr;

const JWT_SECRET: &str = "owui-jwt-secret-for-tests-0123456789abcdef";

/// A token as Open WebUI's `_mint_forward_user_jwt` makes one (PyJWT, HS256): claims
/// sub, email, name (not encoded), role, iss "open-webui", iat, exp = iat + `ttl`.
fn mint(secret: &str, alg: &str, sub: &str, email: &str, name: &str, iat: i64, ttl: i64) -> String {
    let header = serde_json::json!({"alg": alg, "typ": "JWT"});
    let claims = serde_json::json!({
        "sub": sub, "email": email, "name": name, "role": "user",
        "iss": "open-webui", "iat": iat, "exp": iat + ttl,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    if alg == "none" {
        format!("{signing_input}.")
    } else {
        format!("{signing_input}.{sig}")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn read<T: DeserializeOwned>(env: &Env, path: &str) -> T {
    let r = env.get(path, READ).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The rows sum exactly to the simulator's truth: requests, raw cost, client cost
/// (flat 1.3 until terms are pushed), tokens.
fn assert_rows_sum_to_truth(what: &str, rows: &[KeyedUsage], env: &Env) {
    let truth = env.sim.generations();
    let raw: Decimal = truth.iter().map(|g| g.cost).sum();
    let tokens: u64 = truth
        .iter()
        .map(|g| (g.prompt_tokens + g.completion_tokens) as u64)
        .sum();
    assert_eq!(
        rows.iter().map(|r| r.requests).sum::<u64>(),
        truth.len() as u64,
        "{what}"
    );
    assert_eq!(
        rows.iter().map(|r| r.raw_cost_usd).sum::<Decimal>(),
        raw,
        "{what}"
    );
    assert_eq!(
        rows.iter().map(|r| r.client_cost_usd).sum::<Decimal>(),
        raw * Decimal::from_str("1.3").unwrap(),
        "{what}"
    );
    assert_eq!(
        rows.iter().map(|r| r.tokens.total).sum::<u64>(),
        tokens,
        "{what}"
    );
}

fn row<'a>(rows: &'a [KeyedUsage], key: &str) -> &'a KeyedUsage {
    rows.iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("no row {key:?} in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_headers_are_decoded_and_every_report_sums_to_the_truth() {
    let env = start(SimConfig::fast()).await;
    // (user id, name as Open WebUI quotes it, chat, {{TASK}}, {{USER_GROUPS}} quoted)
    let traffic: [(&str, &str, &str, Option<&str>, &str); 6] = [
        (
            "u-zofia",
            "Zofia %C5%81ukasiewicz",
            "chat-1",
            Some(""),
            "Ksi%C4%99gowo%C5%9B%C4%87,Zarz%C4%85d",
        ),
        (
            "u-zofia",
            "Zofia %C5%81ukasiewicz",
            "chat-1",
            Some("title_generation"),
            "Zarz%C4%85d,Ksi%C4%99gowo%C5%9B%C4%87",
        ),
        (
            "u-zofia",
            "Zofia %C5%81ukasiewicz",
            "chat-1",
            Some("follow_up_generation"),
            "Ksi%C4%99gowo%C5%9B%C4%87, Zarz%C4%85d",
        ),
        (
            "u-jan",
            "Jan Brz%C4%99czyszczykiewicz",
            "chat-2",
            Some(""),
            "Sprzeda%C5%BC",
        ),
        (
            "u-jan",
            "Jan Brz%C4%99czyszczykiewicz",
            "chat-2",
            Some("tags_generation"),
            "Sprzeda%C5%BC",
        ),
        // An older Open WebUI without the custom headers.
        ("u-ola", "Ola", "chat-3", None, ""),
    ];
    for (i, (id, name, chat, task, groups)) in traffic.iter().enumerate() {
        let mut rb = env
            .chat(body(i % 2 == 0, None))
            .header("X-OpenWebUI-User-Id", *id)
            .header("X-OpenWebUI-User-Email", format!("{id}@acme.pl"))
            .header("X-OpenWebUI-User-Name", *name)
            .header("X-OpenWebUI-User-Role", "user")
            .header("X-OpenWebUI-Chat-Id", *chat);
        if let Some(t) = task {
            rb = rb
                .header("X-Mai-Task", *t)
                .header("X-Mai-User-Groups", *groups);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    // A call outside any chat (e.g. from a script with the proxy token).
    let r = env.chat(body(false, None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    env.flush().await;

    let truth = env.sim.generations();
    assert_eq!(truth.len(), 7);
    let l = env.ledger();
    let page = l.events_since(0, 100).unwrap();
    assert_eq!(page.events.len(), 7);
    for e in &page.events {
        assert_eq!(e.event.state, EventState::Confirmed);
    }
    let zofia = page
        .events
        .iter()
        .find(|e| e.event.user.id.as_deref() == Some("u-zofia"))
        .unwrap();
    assert_eq!(zofia.event.user.name.as_deref(), Some("Zofia Łukasiewicz"));
    assert_eq!(
        zofia.event.context.groups.as_deref(),
        Some("Księgowość, Zarząd")
    );

    let users: ByUser = read(&env, "/api/v1/usage/by-user").await;
    let mut names: Vec<_> = users.users.iter().filter_map(|u| u.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Jan Brzęczyszczykiewicz", "Ola", "Zofia Łukasiewicz"]
    );
    let today: Today = read(&env, "/api/v1/usage/today").await;
    assert_eq!(today.requests, 7);

    let tasks: ByTask = read(&env, "/api/v1/usage/by-task").await;
    assert_rows_sum_to_truth("by-task", &tasks.tasks, &env);
    assert_eq!(row(&tasks.tasks, "chat").requests, 2);
    assert_eq!(row(&tasks.tasks, "title_generation").requests, 1);
    assert_eq!(row(&tasks.tasks, "follow_up_generation").requests, 1);
    assert_eq!(row(&tasks.tasks, "tags_generation").requests, 1);
    assert_eq!(row(&tasks.tasks, "(unknown)").requests, 2);
    assert_eq!(tasks.tasks.len(), 5);

    let groups: ByGroup = read(&env, "/api/v1/usage/by-group").await;
    assert_rows_sum_to_truth("by-group", &groups.groups, &env);
    assert_eq!(row(&groups.groups, "Księgowość, Zarząd").requests, 3);
    assert_eq!(row(&groups.groups, "Sprzedaż").requests, 2);
    assert_eq!(row(&groups.groups, "(no group)").requests, 2);

    let chats: ByChat = read(&env, "/api/v1/usage/by-chat").await;
    assert_rows_sum_to_truth("by-chat", &chats.chats, &env);
    assert_eq!(row(&chats.chats, "chat-1").requests, 3);
    assert_eq!(row(&chats.chats, "(no chat)").requests, 1);
    // Each chat's cost is the simulator's cost of its generations.
    let chat1_ids: Vec<_> = page
        .events
        .iter()
        .filter(|e| e.event.context.chat_id.as_deref() == Some("chat-1"))
        .map(|e| e.event.generation_id.clone())
        .collect();
    let chat1_truth: Decimal = truth
        .iter()
        .filter(|g| chat1_ids.contains(&g.id))
        .map(|g| g.cost)
        .sum();
    assert_eq!(row(&chats.chats, "chat-1").raw_cost_usd, chat1_truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_jwt_secret_only_signed_identities_spend() {
    let mut env = start(SimConfig::fast()).await;
    env.restart(&[("MAI_OPENWEBUI_JWT_SECRET", JWT_SECRET)])
        .await;
    let jwt = |t: String| ("X-OpenWebUI-User-Jwt", t);

    // A valid token: the signed user counts; spoofed plain headers are ignored.
    let ok = mint(
        JWT_SECRET,
        "HS256",
        "u-zofia",
        "zofia@acme.pl",
        "Zofia Łukasiewicz",
        now(),
        300,
    );
    for stream in [true, false] {
        let (k, v) = jwt(ok.clone());
        let r = env
            .chat(body(stream, None))
            .header(k, v)
            .header("X-OpenWebUI-User-Id", "u-boss")
            .header("X-OpenWebUI-User-Email", "boss@acme.pl")
            .header("X-OpenWebUI-Chat-Id", "chat-9")
            .header("X-Mai-Task", "")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    assert_eq!(env.sim.generations().len(), 2);
    // OpenRouter's `user` is the signed id, not the spoofed one.
    assert!(env
        .sim
        .generations()
        .iter()
        .all(|g| g.external_user.as_deref() == Some("u-zofia")));

    // Refused, 401, never forwarded: missing, expired, wrong secret, alg none, spoofed
    // plain headers alone.
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "FORWARD_USER_INFO_HEADER_JWT_SECRET"),
        (
            Some(mint(
                JWT_SECRET,
                "HS256",
                "u-zofia",
                "z@acme.pl",
                "Z",
                now() - 1000,
                300,
            )),
            "expired",
        ),
        (
            Some(mint(
                "another-secret-another-secret-0123",
                "HS256",
                "u-x",
                "x@acme.pl",
                "X",
                now(),
                300,
            )),
            "same value as MAI_OPENWEBUI_JWT_SECRET",
        ),
        (
            Some(mint(
                JWT_SECRET,
                "none",
                "u-x",
                "x@acme.pl",
                "X",
                now(),
                300,
            )),
            "only HS256",
        ),
    ];
    for (token, says) in cases {
        let mut rb = env
            .chat(body(false, None))
            .header("X-OpenWebUI-User-Id", "u-boss")
            .header("X-OpenWebUI-User-Email", "boss@acme.pl");
        if let Some(t) = token {
            rb = rb.header("X-OpenWebUI-User-Jwt", t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let e: ErrorBody = r.json().await.unwrap();
        assert_eq!(e.error.code, 401);
        assert!(e.error.message.contains(says), "{}", e.error.message);
        assert!(!e.error.message.contains(JWT_SECRET));
    }
    assert_eq!(
        env.sim.generations().len(),
        2,
        "nothing refused reached OpenRouter"
    );

    // The model list may come without a token (Open WebUI fetches it at start-up).
    let r = env.get("/v1/models", PROXY).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let metrics = env
        .get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (reason, n) in [
        ("missing", 1),
        ("expired", 1),
        ("signature", 1),
        ("algorithm", 1),
    ] {
        let line = format!("mai_identity_rejected_total{{org=\"acme\",reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }

    env.flush().await;
    let users: ByUser = read(&env, "/api/v1/usage/by-user").await;
    assert_eq!(users.users.len(), 1);
    assert_eq!(users.users[0].user_id.as_deref(), Some("u-zofia"));
    assert_eq!(users.users[0].name.as_deref(), Some("Zofia Łukasiewicz"));
    assert_eq!(users.users[0].email.as_deref(), Some("zofia@acme.pl"));
    let chats: ByChat = read(&env, "/api/v1/usage/by-chat").await;
    assert_rows_sum_to_truth("by-chat", &chats.chats, &env);
    assert_eq!(row(&chats.chats, "chat-9").requests, 2);
    let tasks: ByTask = read(&env, "/api/v1/usage/by-task").await;
    assert_rows_sum_to_truth("by-task", &tasks.tasks, &env);
    assert_eq!(row(&tasks.tasks, "chat").requests, 2);
}
