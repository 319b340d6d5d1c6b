//! Fault injection for client tests.
//!
//! Grammar (per request in the `X-Sim-Fault` header, or as the text body of
//! `POST /__sim/faults`): directives separated by `;` or `,`, spaces ignored:
//!
//! | directive | effect |
//! |---|---|
//! | `latency_ms=N` | wait N ms before answering (combines with the others) |
//! | `timeout` | never answer; the connection stays open until the client gives up |
//! | `status=N` | answer status N (400–599) with a plain-text body `N <reason>` |
//! | `retry_after=S` | send `Retry-After: S`; `status=429` sends `Retry-After: 1` by default |
//! | `body=malformed` | 200 with the real body cut in half (invalid JSON/XML) |
//! | `body=empty_rates` | 200 with every `rates` array empty |
//! | `times=N` | control endpoint only: affect the next N API requests, then lapse |
//!
//! Example: `X-Sim-Fault: status=429; retry_after=7` or `latency_ms=1500`.

use std::str::FromStr;
use std::time::Duration;

/// What to do to the body of an otherwise successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    Malformed,
    EmptyRates,
}

/// One fault to inject. `Default` is "no fault".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fault {
    pub latency: Duration,
    pub timeout: bool,
    pub status: Option<u16>,
    pub retry_after_secs: Option<u64>,
    pub body: Option<BodyFault>,
    /// Only for faults set on the server: how many API requests it still applies to.
    pub times: Option<u64>,
}

/// A fault directive could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault directive `{directive}`: {problem}; grammar: latency_ms=N | timeout | status=400..599 | retry_after=S | body=malformed|empty_rates | times=N, separated by ';'")]
pub struct FaultParseError {
    pub directive: String,
    pub problem: String,
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault {
            status: Some(code),
            ..Fault::default()
        }
    }
    pub fn too_many_requests(retry_after_secs: u64) -> Fault {
        Fault {
            status: Some(429),
            retry_after_secs: Some(retry_after_secs),
            ..Fault::default()
        }
    }
    pub fn latency(latency: Duration) -> Fault {
        Fault {
            latency,
            ..Fault::default()
        }
    }
    pub fn timeout() -> Fault {
        Fault {
            timeout: true,
            ..Fault::default()
        }
    }
    pub fn malformed_json() -> Fault {
        Fault {
            body: Some(BodyFault::Malformed),
            ..Fault::default()
        }
    }
    pub fn empty_rates() -> Fault {
        Fault {
            body: Some(BodyFault::EmptyRates),
            ..Fault::default()
        }
    }
    /// Limits a server-side fault to the next `n` API requests.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }

    /// `Retry-After` value to send, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after_secs.or(if self.status == Some(429) {
            Some(1)
        } else {
            None
        })
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Fault, FaultParseError> {
        let mut fault = Fault::default();
        for raw in s.split([';', ',']) {
            let directive = raw.trim();
            if directive.is_empty() {
                continue;
            }
            let err = |problem: &str| FaultParseError {
                directive: directive.to_string(),
                problem: problem.to_string(),
            };
            let (key, value) = match directive.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
                None => (directive.to_ascii_lowercase(), None),
            };
            let number = |v: Option<&str>| -> Result<u64, FaultParseError> {
                v.ok_or_else(|| err("needs `=N`"))?
                    .parse::<u64>()
                    .map_err(|_| err("value must be a non-negative integer"))
            };
            match key.as_str() {
                "latency_ms" => fault.latency = Duration::from_millis(number(value)?),
                "timeout" if value.is_none() => fault.timeout = true,
                "status" => {
                    let code = number(value)?;
                    if !(400..=599).contains(&code) {
                        return Err(err("status must be between 400 and 599"));
                    }
                    fault.status = Some(code as u16);
                }
                "retry_after" => fault.retry_after_secs = Some(number(value)?),
                "times" => fault.times = Some(number(value)?),
                "body" => {
                    fault.body = Some(match value.map(str::to_ascii_lowercase).as_deref() {
                        Some("malformed") | Some("malformed_json") => BodyFault::Malformed,
                        Some("empty_rates") => BodyFault::EmptyRates,
                        _ => return Err(err("body must be `malformed` or `empty_rates`")),
                    })
                }
                _ => return Err(err("unknown directive")),
            }
        }
        Ok(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_round_trip() {
        let f: Fault = "status=429; retry_after=7, latency_ms=20".parse().unwrap();
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after(), Some(7));
        assert_eq!(f.latency, Duration::from_millis(20));
        assert_eq!(
            "status=429".parse::<Fault>().unwrap().retry_after(),
            Some(1)
        );
        assert_eq!(
            "timeout;times=2".parse::<Fault>().unwrap(),
            Fault::timeout().times(2)
        );
        assert_eq!(
            "body=empty_rates".parse::<Fault>().unwrap(),
            Fault::empty_rates()
        );
        assert!("status=200".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().is_err());
    }
}
