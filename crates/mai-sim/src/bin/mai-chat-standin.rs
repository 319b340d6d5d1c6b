//! `mai-chat-standin`: the chat app's stand-in in the Docker tests of onboarding (image
//! `mai-chat-standin`, FROM scratch, built by deploy/build-images.sh). Production runs
//! the Open WebUI image; the real Open WebUI is tested in front of a tracker by
//! tests/openwebui_e2e.py. This binary only does what onboarding relies on, configured
//! the way Open WebUI is (environment names from ../shared/specs/openwebui.md):
//!
//! - `GET /health` answers `{"status":true}` (Open WebUI's health endpoint);
//! - `POST /api/chat/completions` forwards the body to `$OPENAI_API_BASE_URL/chat/completions`
//!   with `Authorization: Bearer $OPENAI_API_KEY` and the asking user's identity: with
//!   `FORWARD_USER_INFO_HEADER_JWT_SECRET` an HS256 `X-OpenWebUI-User-Jwt` with Open
//!   WebUI's claims, else (with `ENABLE_FORWARD_USER_INFO_HEADERS=true`) the plain
//!   `X-OpenWebUI-User-*` headers. The user is given by the caller in
//!   `X-Standin-User-Id` / `-Email` / `-Name` (Open WebUI knows it from its login);
//! - `mai-chat-standin healthcheck`: the image's HEALTHCHECK (no curl in a scratch image).
//!
//! Listens on `0.0.0.0:$PORT` (default 8080, Open WebUI's).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        std::process::exit(healthcheck());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let app = Router::new()
            .route(
                "/health",
                get(|| async { ([("content-type", "application/json")], "{\"status\":true}") }),
            )
            .route("/api/chat/completions", post(chat));
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port()));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        eprintln!(
            "mai-chat-standin: listening on {addr}, OpenAI base {:?}",
            std::env::var("OPENAI_API_BASE_URL").ok()
        );
        // PID 1 in its container: without a handler SIGTERM would be ignored and every
        // `docker stop` would wait out its grace period.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                term.recv().await;
            })
            .await
            .expect("serving");
    });
}

fn healthcheck() -> i32 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port())) else {
        return 1;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 1;
    }
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    if buf[..n].starts_with(b"HTTP/1.1 200") {
        0
    } else {
        1
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104), the signature of an HS256 token.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.map(|x| x ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn jwt(secret: &str, id: &str, email: &str, name: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": id, "email": email, "name": name, "role": "user",
        "iss": "open-webui", "iat": now, "exp": now + 300,
    });
    let input = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let sig = b64url(&hmac_sha256(secret.as_bytes(), input.as_bytes()));
    format!("{input}.{sig}")
}

fn fail(status: StatusCode, msg: String) -> Response {
    (status, axum::Json(serde_json::json!({ "detail": msg }))).into_response()
}

async fn chat(headers: HeaderMap, body: Bytes) -> Response {
    let Ok(base) = std::env::var("OPENAI_API_BASE_URL") else {
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPENAI_API_BASE_URL is not set".into(),
        );
    };
    let uri: http::Uri = match format!("{}/chat/completions", base.trim_end_matches('/')).parse() {
        Ok(u) => u,
        Err(e) => {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("bad OPENAI_API_BASE_URL: {e}"),
            )
        }
    };
    let (Some(host), Some("http")) = (uri.host(), uri.scheme_str()) else {
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPENAI_API_BASE_URL must be http://host:port/...".into(),
        );
    };
    let port = uri.port_u16().unwrap_or(80);
    let user = |h: &str, d: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(d)
            .to_string()
    };
    let id = user("x-standin-user-id", "standin-user");
    let email = user("x-standin-user-email", "user@standin.invalid");
    let name = user("x-standin-user-name", "Stand-in User");
    let mut req = http::Request::post(uri.path())
        .header("host", format!("{host}:{port}"))
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!(
                "Bearer {}",
                std::env::var("OPENAI_API_KEY").unwrap_or_default()
            ),
        );
    match std::env::var("FORWARD_USER_INFO_HEADER_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(secret) => req = req.header("x-openwebui-user-jwt", jwt(&secret, &id, &email, &name)),
        None if std::env::var("ENABLE_FORWARD_USER_INFO_HEADERS")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            req = req
                .header("x-openwebui-user-id", id)
                .header("x-openwebui-user-email", email)
                .header("x-openwebui-user-name", name);
        }
        None => {}
    }
    let req = match req.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let stream = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                format!("cannot reach {host}:{port}: {e}"),
            )
        }
    };
    let (mut send, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return fail(StatusCode::BAD_GATEWAY, e.to_string()),
        };
    tokio::spawn(conn);
    let resp = match send.send_request(req).await {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return fail(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let mut out = Response::builder().status(parts.status);
    for h in ["content-type", "x-generation-id"] {
        if let Some(v) = parts.headers.get(h) {
            out = out.header(h, v);
        }
    }
    out.body(axum::body::Body::from(bytes))
        .unwrap_or_else(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_base64url_match_the_references() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        let t = jwt("s", "u", "e", "n");
        assert_eq!(t.split('.').count(), 3);
    }
}
