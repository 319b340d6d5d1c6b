//! Fault injection: a small grammar, rules scoped by endpoint and count, applied by the
//! router before a handler runs (status, latency) or handed to it (invoice outcome,
//! slow processing, session expiry).
//!
//! Grammar (request header `X-Sim-Fault`, `fault` of `POST /__sim/faults`, `--fault`):
//! `;`-separated items:
//!
//! | item | effect |
//! |---|---|
//! | `latency=MS` | wait MS before answering (combines with everything else) |
//! | `status=CODE` | answer CODE: 429 with `Retry-After` and the contract's `TooManyRequestsResponse`, 5xx with a problem body |
//! | `retry_after=S` | with `status`: the `Retry-After` seconds (429 defaults to 1) |
//! | `slow=MS` | invoice send: the invoice stays at 150 ("trwa przetwarzanie") MS longer |
//! | `reject=430\|435\|440\|450` | invoice send: the invoice ends in that status whatever its content |
//! | `expire_session` | a request naming an online session: that session expires now |
//!
//! Rules (`FaultRule`): `{"fault":"status=429;retry_after=3","endpoint":"send_invoice","count":2}`;
//! every matching rule fires (the first `status`, the longest `latency`), each counting
//! down its `count`. `reject`/`slow` rules are used up only by invoice sends and
//! `expire_session` only by requests that name a session, whatever their endpoint.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One fault, parsed from the grammar in the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSpec {
    pub latency: Option<Duration>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub slow: Option<Duration>,
    pub reject: Option<u16>,
    pub expire_session: bool,
}

/// A fault spec that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault `{input}`: {reason}; expected e.g. `status=429;retry_after=3`, `latency=100`, `reject=440`, `slow=5000`, `expire_session` (see `mai-sim ksef --help`)")]
pub struct FaultParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for FaultSpec {
    type Err = FaultParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultParseError {
            input: input.to_string(),
            reason,
        };
        let mut f = FaultSpec::default();
        for item in input.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let num = |v: Option<&str>| -> Result<u64, FaultParseError> {
                v.ok_or_else(|| err(format!("`{name}` needs a value")))?
                    .parse::<u64>()
                    .map_err(|_| err(format!("`{name}` needs a whole number")))
            };
            match name {
                "latency" => f.latency = Some(Duration::from_millis(num(value)?)),
                "status" => {
                    let n = num(value)?;
                    if n != 429 && !(500..=599).contains(&n) {
                        return Err(err(format!(
                            "`status={n}`: only 429 and 5xx are injected (KSeF's own 4xx come from the checks)"
                        )));
                    }
                    f.status = Some(n as u16);
                }
                "retry_after" => f.retry_after = Some(num(value)?),
                "slow" => f.slow = Some(Duration::from_millis(num(value)?)),
                "reject" => {
                    let n = num(value)?;
                    if !matches!(n, 430 | 435 | 440 | 450) {
                        return Err(err(format!("`reject={n}`: one of 430, 435, 440, 450")));
                    }
                    f.reject = Some(n as u16);
                }
                "expire_session" => f.expire_session = true,
                other => return Err(err(format!("unknown item `{other}`"))),
            }
        }
        if f == FaultSpec::default() {
            return Err(err("no fault given".into()));
        }
        if f.retry_after.is_some() && f.status.is_none() {
            return Err(err("`retry_after` needs `status`".into()));
        }
        Ok(f)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        if let Some(l) = self.latency {
            items.push(format!("latency={}", l.as_millis()));
        }
        if let Some(s) = self.status {
            items.push(format!("status={s}"));
        }
        if let Some(r) = self.retry_after {
            items.push(format!("retry_after={r}"));
        }
        if let Some(s) = self.slow {
            items.push(format!("slow={}", s.as_millis()));
        }
        if let Some(r) = self.reject {
            items.push(format!("reject={r}"));
        }
        if self.expire_session {
            items.push("expire_session".into());
        }
        f.write_str(&items.join(";"))
    }
}

impl Serialize for FaultSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEndpoint {
    /// Every `/v2` endpoint.
    #[default]
    Any,
    /// GET /security/public-key-certificates.
    PublicKeys,
    /// POST /auth/challenge.
    Challenge,
    /// POST /auth/ksef-token, GET /auth/{ref}, POST /auth/token/redeem and /refresh.
    Auth,
    /// POST /sessions/online.
    OpenSession,
    /// POST /sessions/online/{ref}/invoices.
    SendInvoice,
    /// POST /sessions/online/{ref}/close.
    CloseSession,
    /// GET /sessions/{ref}, its invoice lists and invoice statuses.
    Status,
    /// The UPO downloads (invoice and session).
    Upo,
}

/// A standing fault; also the JSON body of `POST /__sim/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: FaultSpec,
    #[serde(default)]
    pub endpoint: FaultEndpoint,
    /// Fire this many times, then lapse; none = every matching request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl FaultRule {
    /// `spec` for every request of `endpoint`, `count` times (none = always).
    pub fn new(fault: FaultSpec, endpoint: FaultEndpoint, count: Option<u64>) -> Self {
        FaultRule {
            fault,
            endpoint,
            count,
        }
    }

    /// Parses `spec` into a rule for every request, every time.
    pub fn parse(spec: &str) -> Result<Self, FaultParseError> {
        Ok(FaultRule::new(spec.parse()?, FaultEndpoint::Any, None))
    }

    /// 429 with `Retry-After: retry_after` for the next `count` requests to `endpoint`.
    pub fn too_many_requests(endpoint: FaultEndpoint, retry_after: u64, count: u64) -> Self {
        let fault = FaultSpec {
            status: Some(429),
            retry_after: Some(retry_after),
            ..FaultSpec::default()
        };
        FaultRule::new(fault, endpoint, Some(count))
    }

    /// `status` (5xx) for the next `count` requests to `endpoint`.
    pub fn server_error(endpoint: FaultEndpoint, status: u16, count: u64) -> Self {
        let fault = FaultSpec {
            status: Some(status),
            ..FaultSpec::default()
        };
        FaultRule::new(fault, endpoint, Some(count))
    }

    /// `latency` before every answer, for good (a benchmark's "100 ms per call").
    pub fn latency(latency: Duration) -> Self {
        let fault = FaultSpec {
            latency: Some(latency),
            ..FaultSpec::default()
        };
        FaultRule::new(fault, FaultEndpoint::Any, None)
    }

    /// The next `count` invoices end in `status` (430, 435, 440 or 450).
    pub fn reject_invoices(status: u16, count: u64) -> Self {
        let fault = FaultSpec {
            reject: Some(status),
            ..FaultSpec::default()
        };
        FaultRule::new(fault, FaultEndpoint::SendInvoice, Some(count))
    }

    /// The next `count` invoices stay at 150 for `extra` longer.
    pub fn slow_processing(extra: Duration, count: u64) -> Self {
        let fault = FaultSpec {
            slow: Some(extra),
            ..FaultSpec::default()
        };
        FaultRule::new(fault, FaultEndpoint::SendInvoice, Some(count))
    }

    /// Whether a request to `endpoint` (naming a session or not) may use this rule.
    pub(crate) fn applies(&self, endpoint: FaultEndpoint, names_session: bool) -> bool {
        let f = &self.fault;
        let scope = self.endpoint == FaultEndpoint::Any || self.endpoint == endpoint;
        let only_invoice = (f.reject.is_some() || f.slow.is_some())
            && f.status.is_none()
            && f.latency.is_none()
            && !f.expire_session;
        let only_session = f.expire_session
            && f.status.is_none()
            && f.latency.is_none()
            && f.reject.is_none()
            && f.slow.is_none();
        scope
            && (!only_invoice || endpoint == FaultEndpoint::SendInvoice)
            && (!only_session || names_session)
    }
}

/// What the matching rules and the header add up to for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Firing {
    pub latency: Option<Duration>,
    pub status: Option<(u16, Option<u64>)>,
    pub slow: Option<Duration>,
    pub reject: Option<u16>,
    pub expire_session: bool,
}

impl Firing {
    pub fn add(&mut self, f: &FaultSpec, endpoint: FaultEndpoint, names_session: bool) {
        if let Some(l) = f.latency {
            self.latency = Some(self.latency.map_or(l, |m| m.max(l)));
        }
        if self.status.is_none() {
            self.status = f.status.map(|s| (s, f.retry_after));
        }
        if endpoint == FaultEndpoint::SendInvoice {
            self.slow = self.slow.or(f.slow);
            self.reject = self.reject.or(f.reject);
        }
        self.expire_session |= f.expire_session && names_session;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_round_trips_and_rejects_nonsense() {
        for s in [
            "status=429;retry_after=3",
            "latency=100",
            "reject=440",
            "slow=5000",
            "expire_session",
            "latency=20;status=503",
        ] {
            assert_eq!(s.parse::<FaultSpec>().unwrap().to_string(), s);
        }
        for bad in [
            "status=404",
            "reject=200",
            "retry_after=2",
            "",
            "boom",
            "latency=x",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn invoice_rules_wait_for_an_invoice() {
        let r = FaultRule::reject_invoices(430, 1);
        assert!(!r.applies(FaultEndpoint::OpenSession, false));
        assert!(r.applies(FaultEndpoint::SendInvoice, true));
        let e = FaultRule::parse("expire_session").unwrap();
        assert!(!e.applies(FaultEndpoint::Challenge, false));
        assert!(e.applies(FaultEndpoint::Status, true));
    }
}
