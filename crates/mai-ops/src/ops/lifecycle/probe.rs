//! The probe that proves a new client pair meters: one small chat request through the
//! tracker, with the identity Open WebUI would send (signed in JWT mode), then the
//! tracker's own event list until the request's generation is in its ledger.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::tracker::TrackerClient;

/// The probe's model: the cheapest common one; `max_tokens = 1` keeps it to a fraction of
/// a cent.
pub const PROBE_MODEL: &str = "openai/gpt-4o-mini";
/// Who the probe is in the client's by-user report.
pub const PROBE_USER_ID: &str = "mai-console-probe";
pub const PROBE_USER_EMAIL: &str = "probe@mai-console.invalid";
pub const PROBE_USER_NAME: &str = "mAI console (onboarding probe)";
/// The header Open WebUI signs identity in (the tracker's default
/// `MAI_OPENWEBUI_HEADER_JWT`).
pub const JWT_HEADER: &str = "X-OpenWebUI-User-Jwt";

/// An HS256 token with Open WebUI's claims (`_mint_forward_user_jwt`: `sub`, `email`,
/// `name`, `role`, `iss = "open-webui"`, `iat`, `exp`), signed with the client's secret.
pub fn openwebui_jwt(secret: &[u8], sub: &str, email: &str, name: &str, now: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": sub, "email": email, "name": name, "role": "user",
        "iss": "open-webui", "iat": now, "exp": now + 300,
    });
    let payload = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let sig = b64.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the probe request to {url} failed: {message}")]
    Send { url: String, message: String },
    #[error("the tracker answered the probe with HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the tracker's reply to the probe carries no generation id (X-Generation-Id or `id`)")]
    NoId,
    #[error("the probe's generation {id} did not appear in the tracker's events within {secs} s ({last})")]
    NotMetered { id: String, secs: u64, last: String },
}

/// Sends the probe and waits until the tracker's ledger holds it; returns its generation
/// id.
pub async fn probe(
    http: &reqwest::Client,
    tracker: &TrackerClient,
    proxy_token: &str,
    jwt_secret: Option<&str>,
    within: Duration,
) -> Result<String, ProbeError> {
    let url = format!(
        "{}/v1/chat/completions",
        tracker.base().as_str().trim_end_matches('/')
    );
    let mut req = http
        .post(&url)
        .bearer_auth(proxy_token)
        .timeout(Duration::from_secs(60))
        .json(&serde_json::json!({
            "model": PROBE_MODEL,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "mAI onboarding probe: answer with one word."}],
        }));
    req = match jwt_secret {
        Some(s) => req.header(
            JWT_HEADER,
            openwebui_jwt(
                s.as_bytes(),
                PROBE_USER_ID,
                PROBE_USER_EMAIL,
                PROBE_USER_NAME,
                chrono::Utc::now().timestamp(),
            ),
        ),
        None => req
            .header("X-OpenWebUI-User-Id", PROBE_USER_ID)
            .header("X-OpenWebUI-User-Email", PROBE_USER_EMAIL),
    };
    let resp = req.send().await.map_err(|e| ProbeError::Send {
        url: url.clone(),
        message: e.without_url().to_string(),
    })?;
    let status = resp.status();
    let header_id = resp
        .headers()
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(ProbeError::Status {
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        });
    }
    let id = header_id
        .or_else(|| {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()?
                .get("id")?
                .as_str()
                .map(str::to_string)
        })
        .ok_or(ProbeError::NoId)?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match tracker.events(0, 1000).await {
            Ok(page) if page.events.iter().any(|e| e.generation_id == id) => return Ok(id),
            Ok(page) => format!("{} events, not this one yet", page.events.len()),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ProbeError::NotMetered {
                id,
                secs: within.as_secs(),
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_hs256_over_open_webuis_claims() {
        let t = openwebui_jwt(
            b"0123456789abcdef0123456789abcdef",
            "u1",
            "a@b.pl",
            "Anna",
            1_700_000_000,
        );
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "open-webui");
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["exp"], 1_700_000_300);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&b64.decode(parts[2]).unwrap()).unwrap();
    }
}
