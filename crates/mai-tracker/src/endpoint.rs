//! Which requests the proxy forwards, and what it knows of each endpoint that spends
//! money: the one place that says "this path is a metered API of that shape".
//!
//! Every OpenRouter endpoint that bills the key is metered here (spec 1, first note):
//! chat completions, legacy completions, Responses, Anthropic Messages and embeddings.
//! Any other request that could spend (a POST, PUT, PATCH or DELETE to another path)
//! is refused before anything is forwarded: passing it through would spend invisibly
//! and only show up later as drift. Reads (GET, HEAD, OPTIONS: `/models` and the like)
//! pass through. Paths that an upstream or an intermediary could resolve to another
//! endpoint than the one classified here (`..`, encoded slashes or dots, empty
//! segments) are refused outright.

use crate::proxy::RequestInfo;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use mai_core::openrouter::shapes::UsageShape;
use mai_core::usage::UserRef;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// An OpenRouter API that spends money, metered by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `POST /chat/completions` (OpenAI chat shape).
    Chat,
    /// `POST /completions` (legacy OpenAI text completions: `choices[].text`, chat usage).
    Completions,
    /// `POST /responses` (OpenAI Responses shape).
    Responses,
    /// `POST /messages` (Anthropic Messages shape).
    Messages,
    /// `POST /embeddings` (OpenAI embeddings shape; never streamed).
    Embeddings,
}

impl Api {
    pub const ALL: [Api; 5] = [
        Api::Chat,
        Api::Completions,
        Api::Responses,
        Api::Messages,
        Api::Embeddings,
    ];

    /// The path below OpenRouter's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/chat/completions",
            Api::Completions => "/completions",
            Api::Responses => "/responses",
            Api::Messages => "/messages",
            Api::Embeddings => "/embeddings",
        }
    }

    /// Short name for logs and tracker-minted ids.
    pub fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
            Api::Responses => "responses",
            Api::Messages => "messages",
            Api::Embeddings => "embeddings",
        }
    }

    /// Where usage lives in replies and streams.
    pub fn shape(self) -> UsageShape {
        match self {
            Api::Chat | Api::Completions | Api::Embeddings => UsageShape::OpenAi,
            Api::Responses => UsageShape::Responses,
            Api::Messages => UsageShape::Messages,
        }
    }

    fn from_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.path() == path)
    }

    /// `/v1/chat/completions, /v1/completions, ...`: for refusal messages.
    fn list() -> String {
        Api::ALL
            .iter()
            .map(|a| format!("/v1{}", a.path()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `Some` for a metered API, `None` for a pass-through read.
    pub api: Option<Api>,
    /// Path and query below OpenRouter's base URL (`/chat/completions?x=1`).
    pub upstream: String,
}

/// Why a request is not forwarded; each message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such path {0}: the proxy serves /v1/* (and /api/v1/<metered endpoint>)")]
    NoSuchPath(String),
    #[error("path {0} is refused: `.` or `..` segments, empty segments, backslashes and percent-encoded slashes, backslashes, dots or NULs could reach another endpoint than the one metered; send the plain path")]
    UnsafePath(String),
    #[error("{method} {path} is not proxied: it may spend money the tracker cannot meter. Metered endpoints (POST): {supported}; reads (GET) pass through")]
    NotMetered {
        method: String,
        path: String,
        supported: String,
    },
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::UnsafePath(_) => StatusCode::BAD_REQUEST,
            Refusal::NoSuchPath(_) | Refusal::NotMetered { .. } => StatusCode::NOT_FOUND,
        }
    }
}

/// Refuses paths whose meaning could change on the way: dot segments, empty segments,
/// backslashes, and percent-encoded `/`, `\`, `.` or NUL (matched in the raw path, as
/// received, before any decoding).
pub fn check_path(raw: &str) -> Result<(), Refusal> {
    let unsafe_path = || Refusal::UnsafePath(raw.chars().take(200).collect());
    let lower = raw.to_ascii_lowercase();
    if raw.contains('\\')
        || ["%2f", "%5c", "%2e", "%00"]
            .iter()
            .any(|enc| lower.contains(enc))
    {
        return Err(unsafe_path());
    }
    let rest = raw.strip_prefix('/').unwrap_or(raw);
    if rest
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(unsafe_path());
    }
    Ok(())
}

/// Classifies a proxied request: metered API, pass-through read, or refused.
pub fn route(method: &Method, uri: &Uri) -> Result<Route, Refusal> {
    let raw = uri.path();
    let rest = raw
        .strip_prefix("/api/v1/")
        .or_else(|| raw.strip_prefix("/v1/"))
        .ok_or_else(|| Refusal::NoSuchPath(raw.chars().take(200).collect()))?;
    check_path(raw)?;
    let path = format!("/{rest}");
    let api = Api::from_path(&path);
    let api = match (method, api) {
        (&Method::POST, Some(api)) => Some(api),
        (&Method::GET | &Method::HEAD | &Method::OPTIONS, _) => None,
        _ => {
            return Err(Refusal::NotMetered {
                method: method.to_string(),
                path: raw.to_owned(),
                supported: Api::list(),
            })
        }
    };
    let mut upstream = path;
    if let Some(q) = uri.query() {
        upstream.push('?');
        upstream.push_str(q);
    }
    Ok(Route { api, upstream })
}

/// The body sent upstream and what the request said, for one metered API.
///
/// Chat bodies get `usage: {include: true}`, `stream_options` and `user`
/// ([`crate::proxy::rewrite_chat_body`]). Completions get only `user` (an OpenAI
/// field of that API) when the body has none. Every other body is forwarded byte for
/// byte: the tracker does not know which extra fields those upstreams accept, and they
/// report usage unasked. Every body must be a JSON object (what every one of these
/// APIs takes), so garbage is refused here rather than billed as an upstream 400.
pub fn prepare_body(
    api: Api,
    body: Bytes,
    header_user: &UserRef,
) -> Result<(Bytes, RequestInfo), String> {
    if api == Api::Chat {
        let (out, info) = crate::proxy::rewrite_chat_body(&body, header_user)?;
        return Ok((Bytes::from(out), info));
    }
    let map: BTreeMap<String, &RawValue> = serde_json::from_slice(&body)
        .map_err(|e| format!("request body is not a JSON object: {e}"))?;
    let string = |k: &str| {
        map.get(k)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            .filter(|s| !s.is_empty())
    };
    let model = string("model");
    let stream = map
        .get("stream")
        .and_then(|v| serde_json::from_str::<bool>(v.get()).ok())
        .unwrap_or(false);
    let body_user = string("user");
    let mut user = header_user.clone();
    if user.id.is_none() {
        user.id = body_user.clone();
    }
    let toward_openrouter = user.id.as_ref().or(user.email.as_ref());
    let out = match (api, &body_user, toward_openrouter) {
        (Api::Completions, None, Some(u)) => {
            let u: String = u.chars().take(128).collect();
            let value = serde_json::to_string(&u).map_err(|e| e.to_string())?;
            let value = RawValue::from_string(value).map_err(|e| e.to_string())?;
            let mut map = map;
            map.insert("user".into(), &value);
            Bytes::from(serde_json::to_vec(&map).map_err(|e| e.to_string())?)
        }
        _ => body,
    };
    Ok((
        out,
        RequestInfo {
            user,
            context: Default::default(),
            model,
            stream,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Result<Route, Refusal> {
        route(&method, &path.parse::<Uri>().unwrap())
    }

    #[test]
    fn metered_paths_under_both_prefixes() {
        for api in Api::ALL {
            for prefix in ["/v1", "/api/v1"] {
                let got = r(Method::POST, &format!("{prefix}{}?x=1", api.path())).unwrap();
                assert_eq!(got.api, Some(api));
                assert_eq!(got.upstream, format!("{}?x=1", api.path()));
            }
        }
        assert_eq!(Api::Messages.shape(), UsageShape::Messages);
        assert_eq!(Api::Embeddings.shape(), UsageShape::OpenAi);
    }

    #[test]
    fn reads_pass_through_and_other_writes_are_refused() {
        let got = r(Method::GET, "/v1/models").unwrap();
        assert_eq!((got.api, got.upstream.as_str()), (None, "/models"));
        assert_eq!(r(Method::GET, "/v1/chat/completions").unwrap().api, None);
        for (m, p) in [
            (Method::POST, "/v1/audio/speech"),
            (Method::POST, "/v1/images/generations"),
            (Method::POST, "/v1/rerank"),
            (Method::POST, "/v1/chat/completions/extra"),
            (Method::DELETE, "/v1/chat/completions"),
            (Method::PUT, "/v1/models"),
        ] {
            let e = r(m.clone(), p).unwrap_err();
            assert_eq!(e.status(), StatusCode::NOT_FOUND, "{m} {p}");
            let text = e.to_string();
            assert!(
                text.contains(p) && text.contains("/v1/embeddings"),
                "{text}"
            );
        }
        assert_eq!(
            r(Method::POST, "/v2/chat/completions")
                .unwrap_err()
                .status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn ambiguous_paths_are_refused_before_classification() {
        for p in [
            "/v1/../v1/completions",
            "/v1/chat/../completions",
            "/v1/./completions",
            "/v1/chat%2Fcompletions",
            "/v1/chat%2fcompletions",
            "/v1/%2e%2e/keys",
            "/v1/%2E/completions",
            "/v1//completions",
            "/v1/chat\\completions",
            "/v1/models%00",
            "/v1/models/",
        ] {
            let Ok(uri) = p.parse::<Uri>() else { continue };
            for m in [Method::GET, Method::POST] {
                let e = route(&m, &uri).unwrap_err();
                assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{m} {p}: {e}");
            }
        }
    }

    #[test]
    fn bodies_other_than_chat_and_completions_are_byte_exact() {
        let u = UserRef {
            id: Some("u-1".into()),
            email: None,
            name: None,
        };
        let body = Bytes::from_static(
            br#"{ "model" : "openai/gpt-4o-mini", "input":"hi", "temperature":0.70000000000000001, "stream":true }"#,
        );
        for api in [Api::Responses, Api::Messages, Api::Embeddings] {
            let (out, info) = prepare_body(api, body.clone(), &u).unwrap();
            assert_eq!(out, body, "{api:?}");
            assert_eq!(info.model.as_deref(), Some("openai/gpt-4o-mini"));
            assert!(info.stream);
            assert_eq!(info.user.id.as_deref(), Some("u-1"));
        }
        let (out, _) = prepare_body(Api::Completions, body.clone(), &u).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains(r#""user":"u-1""#), "{text}");
        assert!(
            text.contains(r#""temperature":0.70000000000000001"#),
            "{text}"
        );
        assert!(!text.contains("stream_options") && !text.contains(r#""usage""#));
        // A completions body naming its user is forwarded as is, and attributed to it.
        let own = Bytes::from_static(br#"{"model":"m","prompt":"x","user":"client-9"}"#);
        let (out, info) = prepare_body(Api::Completions, own.clone(), &UserRef::default()).unwrap();
        assert_eq!(out, own);
        assert_eq!(info.user.id.as_deref(), Some("client-9"));
        for api in Api::ALL {
            assert!(prepare_body(api, Bytes::from_static(b"[1,2]"), &u).is_err());
            assert!(prepare_body(api, Bytes::from_static(b"{nope"), &u).is_err());
        }
    }
}
