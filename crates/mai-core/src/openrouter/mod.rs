//! Client of the real OpenRouter API (base URL from config). See shared/specs/openrouter-api.md.
//!
//! Only what accounting needs: per-generation stats, the key's counters, credits,
//! activity and the management-key API used for key rotation. Chat traffic itself is
//! proxied byte for byte by the tracker; [`chat`] holds the parsers it uses on the way.
//! The key is only ever put into the `Authorization` header; errors and logs show
//! [`mask_key`] at most.

pub mod chat;
mod error;
mod model;
pub mod number;
pub mod shapes;

pub use error::{classify_refusal, ApiError, OpenRouterError, Refusal};
pub use model::{
    key_hash, parse_activity_date, ActivityRow, ApiKey, CreateKeyRequest, CreatedKey, Credits,
    GenerationStats, KeyInfo, SecretKey, UpdateKeyRequest,
};

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;

/// Production base URL; tests point the client at the simulator instead.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// `sk-or-v1-…abcd`: the most of a key that may appear in a log, error or response.
pub use crate::secret::mask_key;

/// Async client for one key (inference or management).
#[derive(Clone)]
pub struct OpenRouterClient {
    http: reqwest::Client,
    base: String,
    key: SecretKey,
}

impl std::fmt::Debug for OpenRouterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRouterClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish()
    }
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct CreatedRaw {
    data: ApiKey,
    key: String,
}

impl OpenRouterClient {
    /// A client with its own connection pool and a 30 s per-request timeout (the
    /// generation endpoint is known to hang sometimes).
    pub fn new(base_url: &str, key: SecretKey) -> Result<Self, OpenRouterError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mai-fleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpenRouterError::Config {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Self::with_http(http, base_url, key)
    }

    /// Shares an existing `reqwest::Client` (and its pool) with other callers.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        key: SecretKey,
    ) -> Result<Self, OpenRouterError> {
        let parsed = url::Url::parse(base_url).map_err(|e| OpenRouterError::Config {
            detail: format!(
                "base URL {base_url:?} is not a URL ({e}); use e.g. {DEFAULT_BASE_URL}"
            ),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OpenRouterError::Config {
                detail: format!("base URL {base_url:?} must be http or https"),
            });
        }
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The masked key, for status pages and logs.
    pub fn key_label(&self) -> String {
        self.key.label()
    }

    /// `GET /generation?id=`. Right after a request this is often 404 for a while
    /// (stats are written asynchronously): callers retry, see [`ApiError::is_not_found`].
    pub async fn generation(&self, id: &str) -> Result<GenerationStats, OpenRouterError> {
        let d: Data<GenerationStats> = self
            .get_json("/generation", &[("id", id.to_owned())])
            .await?;
        Ok(d.data)
    }

    /// `GET /key`: limits and usage of the calling key.
    pub async fn key_info(&self) -> Result<KeyInfo, OpenRouterError> {
        let d: Data<KeyInfo> = self.get_json("/key", &[]).await?;
        Ok(d.data)
    }

    /// `GET /credits` (management key per the docs; some deployments accept any key).
    pub async fn credits(&self) -> Result<Credits, OpenRouterError> {
        let d: Data<Credits> = self.get_json("/credits", &[]).await?;
        Ok(d.data)
    }

    /// `GET /activity` (management key): per UTC day × model rows of the last 30
    /// completed days, optionally one day and one key.
    pub async fn activity(
        &self,
        date: Option<NaiveDate>,
        api_key_hash: Option<&str>,
    ) -> Result<Vec<ActivityRow>, OpenRouterError> {
        let mut q = Vec::new();
        if let Some(d) = date {
            q.push(("date", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(h) = api_key_hash {
            q.push(("api_key_hash", h.to_owned()));
        }
        let d: Data<Vec<ActivityRow>> = self.get_json("/activity", &q).await?;
        Ok(d.data)
    }

    /// `GET /keys?offset=`: one page (at most 100, newest first).
    pub async fn keys_list(
        &self,
        offset: u32,
        include_disabled: bool,
    ) -> Result<Vec<ApiKey>, OpenRouterError> {
        let d: Data<Vec<ApiKey>> = self
            .get_json(
                "/keys",
                &[
                    ("offset", offset.to_string()),
                    ("include_disabled", include_disabled.to_string()),
                ],
            )
            .await?;
        Ok(d.data)
    }

    /// Every key, following the 100-per-page pagination until a short page.
    pub async fn keys_list_all(
        &self,
        include_disabled: bool,
    ) -> Result<Vec<ApiKey>, OpenRouterError> {
        let mut all = Vec::new();
        loop {
            let page = self.keys_list(all.len() as u32, include_disabled).await?;
            let n = page.len();
            all.extend(page);
            if n < 100 {
                return Ok(all);
            }
        }
    }

    /// `POST /keys`. The returned plaintext key is shown once and never again.
    pub async fn keys_create(&self, req: &CreateKeyRequest) -> Result<CreatedKey, OpenRouterError> {
        let rb = self.http.post(self.url("/keys")).json(req);
        let raw: CreatedRaw = self.send_json("POST /keys", rb).await?;
        Ok(CreatedKey {
            key: SecretKey::new(raw.key),
            info: raw.data,
        })
    }

    /// `GET /keys/{hash}`.
    pub async fn keys_get(&self, hash: &str) -> Result<ApiKey, OpenRouterError> {
        let path = format!("/keys/{}", path_segment(hash));
        let rb = self.http.get(self.url(&path));
        let d: Data<ApiKey> = self.send_json("GET /keys/{hash}", rb).await?;
        Ok(d.data)
    }

    /// `PATCH /keys/{hash}` (rotation: disable the old key after handing over the new one).
    pub async fn keys_update(
        &self,
        hash: &str,
        req: &UpdateKeyRequest,
    ) -> Result<ApiKey, OpenRouterError> {
        let path = format!("/keys/{}", path_segment(hash));
        let rb = self.http.patch(self.url(&path)).json(req);
        let d: Data<ApiKey> = self.send_json("PATCH /keys/{hash}", rb).await?;
        Ok(d.data)
    }

    /// `DELETE /keys/{hash}`.
    pub async fn keys_delete(&self, hash: &str) -> Result<(), OpenRouterError> {
        let path = format!("/keys/{}", path_segment(hash));
        let rb = self.http.delete(self.url(&path));
        let _: serde_json::Value = self.send_json("DELETE /keys/{hash}", rb).await?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, OpenRouterError> {
        let rb = self.http.get(self.url(path)).query(query);
        self.send_json(&format!("GET {path}"), rb).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, OpenRouterError> {
        let resp = rb
            .bearer_auth(self.key.expose())
            .send()
            .await
            .map_err(|e| OpenRouterError::Transport {
                endpoint: endpoint.to_owned(),
                base: self.base.clone(),
                detail: error_chain(&e),
                timeout: e.is_timeout(),
            })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Error bodies come chunked without Content-Length: read to the end regardless.
        let body = resp.bytes().await.map_err(|e| OpenRouterError::Transport {
            endpoint: endpoint.to_owned(),
            base: self.base.clone(),
            detail: error_chain(&e),
            timeout: e.is_timeout(),
        })?;
        if !status.is_success() {
            return Err(OpenRouterError::Api(ApiError::from_response(
                endpoint,
                status.as_u16(),
                &headers,
                &body,
            )));
        }
        serde_json::from_slice(&body).map_err(|e| OpenRouterError::Decode {
            endpoint: endpoint.to_owned(),
            detail: e.to_string(),
        })
    }
}

fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An error with its causes, `outer: inner: ...` (reqwest's own message is only "error
/// sending request"; the cause, such as a refused connection or a certificate, is below).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests;
