//! One HTTP exchange with KSeF: pacing (limits), retries that cannot change the outcome,
//! and the translation of failures into [`KsefError`]s.
//!
//! Retries: a 429 is always retried after its `Retry-After` (KSeF refused the request
//! before doing anything). 5xx answers and network failures are retried only where a
//! repeat is harmless ([`Retry::Idempotent`]: reads, a challenge, a session opening);
//! for the rest ([`Retry::Once`]: sending an invoice, redeeming tokens) only 503 and a
//! connection that was never made are, and anything else goes back to the caller, who
//! knows what a repeat would mean.

use crate::error::{advice, ApiProblem, KsefError};
use crate::limits::{Group, Limiter};
use crate::token::Bearer;
use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use std::time::Duration;

/// Retries of 5xx / network failures per call, with backoff 0.5, 1, 2, 4 s.
const MAX_RETRIES: u32 = 4;
/// 429s honoured per call before giving up.
const MAX_RATE_LIMITED: u32 = 6;
/// A `Retry-After` longer than this is not waited for inside a call: the error goes back
/// with the time, and the operator decides (KSeF lengthens blocks for repeated excesses).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// When a 429 comes without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Repeating the request cannot do harm.
    Idempotent,
    /// A repeat after the server may have acted on it could act twice.
    Once,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    Json,
    Xml,
}

/// One request as the contract names it.
pub(crate) struct Call {
    pub method: Method,
    /// The concrete path after the base URL, e.g. `/sessions/online`.
    pub path: String,
    /// The contract's name of the endpoint, for messages.
    pub step: &'static str,
    pub group: Group,
    pub retry: Retry,
    pub bearer: Option<Bearer>,
    pub json_body: Option<Bytes>,
    pub accept: Accept,
}

impl Call {
    pub(crate) fn new(method: Method, step: &'static str, path: String, group: Group) -> Self {
        let retry = if method == Method::GET {
            Retry::Idempotent
        } else {
            Retry::Once
        };
        Self {
            method,
            path,
            step,
            group,
            retry,
            bearer: None,
            json_body: None,
            accept: Accept::Json,
        }
    }

    pub(crate) fn bearer(mut self, b: &Bearer) -> Self {
        self.bearer = Some(b.clone());
        self
    }

    pub(crate) fn json<T: serde::Serialize>(mut self, body: &T) -> Result<Self, KsefError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            KsefError::protocol(self.step, format!("cannot serialise the request ({e})"))
        })?;
        self.json_body = Some(Bytes::from(bytes));
        Ok(self)
    }

    pub(crate) fn retry(mut self, r: Retry) -> Self {
        self.retry = r;
        self
    }

    pub(crate) fn accept(mut self, a: Accept) -> Self {
        self.accept = a;
        self
    }
}

/// A 2xx answer.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, step: &str) -> Result<T, KsefError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            KsefError::protocol(
                step,
                format!("HTTP {} with a body we cannot read ({e})", self.status),
            )
        })
    }
}

/// The decision after one attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    RetryAfter(Duration),
    GiveUp,
}

/// Backoff for the `n`-th retry (0-based) of a 5xx or network failure.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64 << n.min(6))
}

/// `Retry-After` in seconds (the contract's `RetryAfter` is an integer), or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let d = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(d.to_std().unwrap_or(Duration::ZERO))
}

/// What to do after a 429 (the `n`-th of this call, 0-based).
pub(crate) fn after_429(n: u32, retry_after: Option<Duration>) -> Next {
    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
    if n >= MAX_RATE_LIMITED || wait > MAX_RETRY_AFTER {
        Next::GiveUp
    } else {
        Next::RetryAfter(wait)
    }
}

/// What to do after a 5xx (the `n`-th failure of this call, 0-based).
pub(crate) fn after_5xx(n: u32, status: u16, retry: Retry) -> Next {
    let may = match retry {
        Retry::Idempotent => true,
        // 503: the service did not take the request at all.
        Retry::Once => status == 503,
    };
    if may && n < MAX_RETRIES {
        Next::RetryAfter(backoff(n))
    } else {
        Next::GiveUp
    }
}

/// What to do after a network failure (the `n`-th of this call, 0-based).
pub(crate) fn after_transport(n: u32, connected: bool, retry: Retry) -> Next {
    let may = match retry {
        Retry::Idempotent => true,
        Retry::Once => !connected,
    };
    if may && n < MAX_RETRIES {
        Next::RetryAfter(backoff(n))
    } else {
        Next::GiveUp
    }
}

pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    nip: String,
    pub(crate) limiter: Limiter,
}

impl Http {
    pub(crate) fn new(
        base: &str,
        nip: &str,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
        limiter: Limiter,
    ) -> Result<Self, KsefError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "mai-fleet/",
                env!("CARGO_PKG_VERSION"),
                " (mai-ksef)"
            ));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                KsefError::config(format!("the extra CA is not a PEM certificate bundle: {e}"))
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b
            .build()
            .map_err(|e| KsefError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.to_owned(),
            nip: nip.to_owned(),
            limiter,
        })
    }

    /// Runs `call` to a 2xx answer, or the error of its last attempt.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Reply, KsefError> {
        let url = format!("{}{}", self.base, call.path);
        let (mut failures, mut limited) = (0u32, 0u32);
        loop {
            self.limiter.acquire(call.group).await;
            let mut rb = self.client.request(call.method.clone(), &url).header(
                ACCEPT,
                match call.accept {
                    Accept::Json => "application/json",
                    Accept::Xml => "application/xml",
                },
            );
            if let Some(b) = &call.bearer {
                rb = rb.header(AUTHORIZATION, b.header_value());
            }
            if let Some(body) = &call.json_body {
                rb = rb
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let result = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let (status, headers, body) = match result {
                Ok(r) => r,
                Err(e) => {
                    let connected = !e.is_connect();
                    match after_transport(failures, connected, call.retry) {
                        Next::RetryAfter(d) => {
                            tracing::warn!(step = call.step, error = %error_chain(&e), retry_in_ms = d.as_millis() as u64, "KSeF unreachable, retrying");
                            failures += 1;
                            tokio::time::sleep(d).await;
                            continue;
                        }
                        Next::GiveUp => {
                            return Err(KsefError::Transport {
                                step: call.step.to_owned(),
                                base: self.base.clone(),
                                detail: error_chain(&e),
                                maybe_delivered: connected,
                            })
                        }
                    }
                }
            };
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    headers,
                    body,
                });
            }
            let problem = ApiProblem::parse(&body);
            if status == 429 {
                let ra = retry_after(&headers);
                match after_429(limited, ra) {
                    Next::RetryAfter(d) => {
                        tracing::warn!(step = call.step, retry_after_s = d.as_secs(), %problem, "KSeF request limit hit, waiting");
                        self.limiter.pause(d);
                        limited += 1;
                        continue;
                    }
                    Next::GiveUp => {
                        if let Some(d) = ra {
                            self.limiter.pause(d);
                        }
                        return Err(KsefError::RateLimited {
                            step: call.step.to_owned(),
                            retry_after: ra,
                            problem: Box::new(problem),
                        });
                    }
                }
            }
            if status >= 500 {
                if let Next::RetryAfter(d) = after_5xx(failures, status, call.retry) {
                    tracing::warn!(step = call.step, status, %problem, retry_in_ms = d.as_millis() as u64, "KSeF failed, retrying");
                    failures += 1;
                    tokio::time::sleep(d).await;
                    continue;
                }
            }
            return Err(KsefError::Api {
                step: call.step.to_owned(),
                status,
                advice: advice(status, &problem, &self.nip),
                problem: Box::new(problem),
            });
        }
    }
}

/// The error and its causes on one line (reqwest's own message stops at the first).
fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    if e.is_timeout() {
        s.push_str(" (timed out)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_retry_after() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn honours_retry_after_within_bounds() {
        assert_eq!(
            after_429(0, Some(Duration::from_secs(30))),
            Next::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(after_429(0, None), Next::RetryAfter(DEFAULT_RETRY_AFTER));
        assert_eq!(after_429(0, Some(Duration::from_secs(3600))), Next::GiveUp);
        assert_eq!(
            after_429(MAX_RATE_LIMITED, Some(Duration::from_secs(1))),
            Next::GiveUp
        );
    }

    #[test]
    fn retries_only_what_cannot_act_twice() {
        // Reads: any 5xx, any network failure, with growing pauses, bounded.
        assert_eq!(
            after_5xx(0, 500, Retry::Idempotent),
            Next::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(
            after_5xx(3, 502, Retry::Idempotent),
            Next::RetryAfter(Duration::from_secs(4))
        );
        assert_eq!(after_5xx(MAX_RETRIES, 503, Retry::Idempotent), Next::GiveUp);
        assert_eq!(
            after_transport(1, true, Retry::Idempotent),
            Next::RetryAfter(Duration::from_secs(1))
        );
        // Sending an invoice: only when KSeF certainly did not take it.
        assert_eq!(after_5xx(0, 500, Retry::Once), Next::GiveUp);
        assert_eq!(after_5xx(0, 504, Retry::Once), Next::GiveUp);
        assert_eq!(
            after_5xx(0, 503, Retry::Once),
            Next::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(after_transport(0, true, Retry::Once), Next::GiveUp);
        assert_eq!(
            after_transport(0, false, Retry::Once),
            Next::RetryAfter(Duration::from_millis(500))
        );
        let total: Duration = (0..MAX_RETRIES).map(backoff).sum();
        assert_eq!(total, Duration::from_millis(7_500));
    }
}
