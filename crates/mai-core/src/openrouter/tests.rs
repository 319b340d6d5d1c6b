use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const GENERATION: &str = r#"{"data":{"id":"gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ","request_id":"req-1767225600-Zy9xW8vU7tS6rQ5pO4nM","upstream_id":"chatcmpl-7f3c","created_at":"2026-01-01T00:00:00.412345+00:00","model":"deepseek/deepseek-chat-v3-0324","provider_name":"DeepInfra","api_type":"completions","streamed":true,"cancelled":false,"finish_reason":"stop","native_finish_reason":"stop","tokens_prompt":1180,"tokens_completion":246,"native_tokens_prompt":1200,"native_tokens_completion":250,"native_tokens_reasoning":0,"native_tokens_cached":0,"native_tokens_completion_images":0,"num_media_prompt":null,"total_cost":0.00066,"usage":0.00066,"cache_discount":null,"upstream_inference_cost":0.00066,"is_byok":false,"latency":840,"generation_time":1450,"external_user":"client-7-user-42","session_id":null,"provider_responses":[{"provider_name":"DeepInfra","status":200}],"brand_new_field":{"x":1}}}"#;

#[test]
fn generation_stats_spec_example() {
    let d: Data<GenerationStats> = serde_json::from_str(GENERATION).unwrap();
    let g = d.data;
    assert_eq!(g.id, "gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ");
    assert_eq!(g.total_cost, dec("0.00066"));
    assert_eq!(g.usage, Some(dec("0.00066")));
    assert_eq!(g.native_tokens_prompt, Some(1200));
    assert_eq!(g.native_tokens_completion, Some(250));
    assert_eq!(g.cache_discount, None);
    assert_eq!(g.external_user.as_deref(), Some("client-7-user-42"));
    assert_eq!(g.streamed, Some(true));
    assert_eq!(
        g.created_at.unwrap().to_rfc3339(),
        "2026-01-01T00:00:00.412345+00:00"
    );
}

#[test]
fn generation_stats_minimal_and_exponent() {
    let body =
        r#"{"data":{"id":"gen-x","total_cost":4.25e-6,"created_at":"2026-01-05T09:30:12Z"}}"#;
    let g: Data<GenerationStats> = serde_json::from_str(body).unwrap();
    assert_eq!(g.data.total_cost, dec("0.00000425"));
    assert_eq!(g.data.native_tokens_prompt, None);
    assert_eq!(g.data.model, None);
}

#[test]
fn key_info_spec_example_and_missing_byok() {
    let body = r#"{"data":{"label":"sk-or-v1-3f9...a12","limit":100,"limit_reset":"monthly","limit_remaining":74.5,"include_byok_in_limit":false,"usage":25.5,"usage_daily":0.42,"usage_weekly":3.17,"usage_monthly":25.5,"is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,"expires_at":null,"creator_user_id":"user_2","rate_limit":{"requests":-1,"interval":"10s","note":"x"},"free_model_daily_requests":{"used":1}}}"#;
    let k: Data<KeyInfo> = serde_json::from_str(body).unwrap();
    let k = k.data;
    assert_eq!(k.limit, Some(dec("100")));
    assert_eq!(k.limit_remaining, Some(dec("74.5")));
    assert_eq!(k.usage_daily, Some(dec("0.42")));
    assert_eq!(k.byok_usage_daily, None);
    assert!(!k.is_management());
    let unlimited = r#"{"data":{"label":"x","limit":null,"limit_remaining":null,"usage":0,"is_provisioning_key":true}}"#;
    let k: Data<KeyInfo> = serde_json::from_str(unlimited).unwrap();
    assert_eq!(k.data.limit, None);
    assert!(k.data.is_management());
}

#[test]
fn credits_and_activity() {
    let c: Data<Credits> =
        serde_json::from_str(r#"{"data":{"total_credits":150,"total_usage":42.6875}}"#).unwrap();
    assert_eq!(c.data.balance(), dec("107.3125"));
    let body = r#"{"data":[{"date":"2026-01-04","model":"deepseek/deepseek-chat-v3-0324","model_permaslug":"deepseek/deepseek-chat-v3-0324","endpoint_id":"6f1d","provider_name":"DeepInfra","usage":1.2375,"byok_usage_inference":0,"requests":412,"prompt_tokens":2250000,"completion_tokens":468750.0,"reasoning_tokens":"0"}]}"#;
    let a: Data<Vec<ActivityRow>> = serde_json::from_str(body).unwrap();
    let r = &a.data[0];
    assert_eq!(r.date.to_string(), "2026-01-04");
    assert_eq!(r.usage, dec("1.2375"));
    assert_eq!(
        (r.requests, r.completion_tokens, r.reasoning_tokens),
        (412, 468750, 0)
    );
}

#[test]
fn key_objects_old_and_new_shapes() {
    let new = r#"{"data":{"hash":"9b2f","name":"client-acme","label":"sk-or-v1-7c1...e09","disabled":false,"limit":200,"limit_remaining":187.25,"limit_reset":"monthly","include_byok_in_limit":false,"usage":12.75,"usage_daily":0.5,"usage_weekly":3.25,"usage_monthly":12.75,"created_at":"2026-01-02T08:00:00.000000+00:00","updated_at":null,"expires_at":null,"workspace_id":"0b7e"}}"#;
    let k: Data<ApiKey> = serde_json::from_str(new).unwrap();
    assert_eq!(k.data.limit_remaining, Some(dec("187.25")));
    assert_eq!(k.data.updated_at, None);
    let old = r#"{"data":[{"hash":"ab","name":"n","label":"l","disabled":true,"limit":null,"usage":0,"created_at":"2025-09-01T00:00:00Z","updated_at":null}]}"#;
    let ks: Data<Vec<ApiKey>> = serde_json::from_str(old).unwrap();
    assert!(ks.data[0].disabled);
    let created = r#"{"data":{"hash":"ab","name":"n"},"key":"sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#;
    let c: CreatedRaw = serde_json::from_str(created).unwrap();
    let secret = SecretKey::new(c.key);
    assert_eq!(format!("{secret:?}"), "SecretKey(sk-or-v1-…cdef)");
}

#[test]
fn request_bodies_write_exact_numbers() {
    let req = CreateKeyRequest {
        name: "client-acme".into(),
        limit: Some(dec("12.345")),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"name":"client-acme","limit":12.345}"#
    );
    let patch = UpdateKeyRequest {
        disabled: Some(true),
        limit: Some(None),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&patch).unwrap(),
        r#"{"disabled":true,"limit":null}"#
    );
}

#[test]
fn masking() {
    assert_eq!(
        mask_key("sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"),
        "sk-or-v1-…abcd"
    );
    assert_eq!(mask_key("short"), "…");
}

/// Serves one canned HTTP reply and returns the request head it received.
async fn one_shot(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(reply.as_bytes()).await.unwrap();
        s.shutdown().await.ok();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (format!("http://{addr}/api/v1"), h)
}

const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

#[tokio::test]
async fn error_envelope_status_and_retry_after() {
    let (base, h) = one_shot(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n3a\r\n{\"error\":{\"code\":429,\"message\":\"Provider returned error\"}}\r\n0\r\n\r\n",
    )
    .await;
    let c = OpenRouterClient::new(&base, SecretKey::new(KEY)).unwrap();
    let err = c.generation("gen-1").await.unwrap_err();
    let req = h.await.unwrap();
    assert!(req.starts_with("GET /api/v1/generation?id=gen-1 "), "{req}");
    assert!(
        req.contains(&format!("authorization: Bearer {KEY}")),
        "{req}"
    );
    let OpenRouterError::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status, 429);
    assert_eq!(api.message, "Provider returned error");
    assert_eq!(api.retry_after, Some(std::time::Duration::from_secs(7)));
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("GET /generation") && text.contains("429"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn key_info_over_http() {
    let (base, h) = one_shot(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"data\":{\"label\":\"l\",\"limit\":null,\"usage_daily\":1e-7}}",
    )
    .await;
    let c = OpenRouterClient::new(&base, SecretKey::new(KEY)).unwrap();
    let k = c.key_info().await.unwrap();
    h.await.unwrap();
    assert_eq!(k.usage_daily, Some(dec("0.0000001")));
}

#[test]
fn bad_base_url_is_a_config_error() {
    let e = OpenRouterClient::new("openrouter.ai", SecretKey::new(KEY)).unwrap_err();
    assert!(e.to_string().contains("openrouter.ai"), "{e}");
}
