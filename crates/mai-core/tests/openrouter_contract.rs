//! The OpenRouter client against the real forms of OpenRouter's replies, pinned by
//! fixtures copied from `shared/specs/openrouter-api.md` (sources named in
//! `tests/fixtures/openrouter/README.md`), and against the simulator, which must serve
//! the same forms.

use mai_core::openrouter::{
    classify_refusal, key_hash, parse_activity_date, ActivityRow, ApiError, ApiKey,
    OpenRouterClient, Refusal, SecretKey,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::str::FromStr;

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openrouter")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn activity_live_rows_carry_a_time_suffix_and_are_read_by_their_day() {
    let rows: Data<Vec<ActivityRow>> =
        serde_json::from_str(&fixture("activity_live.json")).unwrap();
    let rows = rows.data;
    assert_eq!(rows[0].date.to_string(), "2026-08-23");
    assert_eq!(rows[1].date.to_string(), "2026-08-31");
    assert_eq!(rows[0].usage, dec("1.2375"));
    assert_eq!(
        rows[1].usage,
        dec("0.00000425"),
        "exponent form read exactly"
    );
    assert_eq!(rows[0].requests, 412);
}

#[test]
fn activity_openapi_example_with_a_bare_date_still_reads() {
    let rows: Data<Vec<ActivityRow>> =
        serde_json::from_str(&fixture("activity_openapi_example.json")).unwrap();
    assert_eq!(rows.data[0].date.to_string(), "2026-01-04");
}

#[test]
fn activity_dates_are_validated_not_guessed() {
    for ok in [
        "2026-08-23",
        "2026-08-23 00:00:00",
        "2026-08-23T00:00:00Z",
        "2026-08-23 00:00:00.000",
    ] {
        assert_eq!(
            parse_activity_date(ok).unwrap().to_string(),
            "2026-08-23",
            "{ok}"
        );
    }
    for bad in [
        "2026-8-23",
        "2026-08-32 00:00:00",
        "2026-08-23X00:00:00",
        "2026-08-23 ",
        "2026-08-23 25:00:00",
        "23.08.2026",
        "",
    ] {
        assert!(parse_activity_date(bad).is_err(), "{bad:?} accepted");
    }
    let bad = r#"{"data":[{"date":"yesterday","model":"m","usage":1}]}"#;
    assert!(serde_json::from_str::<Data<Vec<ActivityRow>>>(bad).is_err());
}

#[test]
fn key_object_with_its_workspace() {
    let k: Data<ApiKey> = serde_json::from_str(&fixture("key_object.json")).unwrap();
    assert_eq!(
        k.data.workspace_id.as_deref(),
        Some("0b7e2f4a-5c6d-4e8f-9a0b-1c2d3e4f5a6b")
    );
    assert_eq!(k.data.name.as_deref(), Some("client-acme"));
    assert_eq!(k.data.hash.len(), 64);
}

#[test]
fn the_hash_of_a_key_is_its_sha256_hex_as_the_simulator_computes_it_too() {
    let key = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let h = key_hash(key);
    assert_eq!(h.len(), 64);
    assert!(h
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(SecretKey::new(key).hash(), h);
    // An implementation that shares no code with ours.
    assert_eq!(mai_sim::openrouter::key_hash(key), h);
    // Known vector: SHA-256("abc").
    assert_eq!(
        key_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

fn api_error(file: &str, status: u16) -> ApiError {
    ApiError::from_response(
        "POST /chat/completions",
        status,
        &reqwest::header::HeaderMap::new(),
        fixture(file).as_bytes(),
    )
}

#[test]
fn a_402_is_the_account_and_a_403_key_limit_is_the_key() {
    for f in [
        "error_402_insufficient_credits.json",
        "error_402_can_only_afford.json",
    ] {
        let e = api_error(f, 402);
        assert_eq!(e.refusal(), Some(Refusal::AccountOutOfCredits), "{f}");
        assert!(e.to_string().contains("top up"), "{e}");
    }
    let e = api_error("error_403_key_limit_monthly.json", 403);
    assert_eq!(
        e.refusal(),
        Some(Refusal::KeyLimitExceeded {
            window: Some("monthly".into())
        })
    );
    assert!(
        e.to_string().contains("monthly limit in the fleet file"),
        "{e}"
    );
    let e = api_error("error_403_key_limit_daily.json", 403);
    assert_eq!(
        e.refusal(),
        Some(Refusal::KeyLimitExceeded {
            window: Some("daily".into())
        })
    );
    // Not a spending refusal: a 403 for a missing management key.
    let e = api_error("error_403_management_only.json", 403);
    assert_eq!(e.refusal(), None);
    assert!(e.to_string().contains("management key"), "{e}");
}

#[test]
fn the_message_decides_before_the_status() {
    // The docs' older wording: 402 for a key that ran out. The message says key limit.
    assert_eq!(
        classify_refusal(
            402,
            "Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys"
        ),
        Some(Refusal::KeyLimitExceeded {
            window: Some("total".into())
        })
    );
    assert_eq!(
        classify_refusal(403, "Key limit exceeded"),
        Some(Refusal::KeyLimitExceeded { window: None })
    );
    assert_eq!(
        classify_refusal(402, "Payment required"),
        Some(Refusal::AccountOutOfCredits)
    );
    assert_eq!(classify_refusal(403, "Flagged by moderation"), None);
    assert_eq!(classify_refusal(429, "Rate limit exceeded"), None);
}

#[tokio::test]
async fn the_simulator_serves_the_live_activity_form_and_the_client_reads_it() {
    use mai_sim::openrouter::{OpenRouterSim, SimConfig};
    const MGMT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1";
    const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000a1";
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    sim.set_now(yesterday);
    let http = reqwest::Client::new();
    http.post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.reset_clock();
    let raw: serde_json::Value = http
        .get(format!("{}/activity", sim.base_url()))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let date = raw["data"][0]["date"].as_str().unwrap();
    assert_eq!(
        date,
        format!("{} 00:00:00", yesterday.date_naive()),
        "the live form"
    );
    let c = OpenRouterClient::new(&sim.base_url(), SecretKey::new(MGMT)).unwrap();
    let hash = SecretKey::new(KEY).hash();
    let rows = c
        .activity(Some(yesterday.date_naive()), Some(&hash))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].date, yesterday.date_naive());
    assert_eq!(rows[0].usage, sim.key_totals(KEY).cost);
    sim.shutdown().await;
}
