//! What can go wrong, in words an operator can act on. Every message names the step (the
//! endpoint), the HTTP status and KSeF's own codes and descriptions, and says what to do.
//! No error ever carries a token: request bodies are not echoed, and the URLs we call hold
//! only reference numbers.

use crate::wire;
use std::fmt;
use std::time::Duration;

/// One of KSeF's error entries: `exceptionCode`/`exceptionDescription`/`details` in the
/// default body, `code`/`description`/`details` in problem details and 429 bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemEntry {
    pub code: i32,
    pub description: String,
    pub details: Vec<String>,
}

/// A KSeF error body, whichever of its shapes it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiProblem {
    pub entries: Vec<ProblemEntry>,
    /// Problem details' `detail` (or `title`) where there are no entries.
    pub summary: Option<String>,
    /// 403's `reasonCode` (`missing-permissions`, `ip-not-allowed`, ...).
    pub reason_code: Option<String>,
    /// `traceId`, or the default body's `referenceNumber`/`serviceCode`: what KSeF's
    /// support asks for.
    pub trace: Option<String>,
    /// The start of a body we could not read as any of KSeF's shapes.
    pub unparsed: Option<String>,
}

impl ApiProblem {
    pub fn has_code(&self, code: i32) -> bool {
        self.entries.iter().any(|e| e.code == code)
    }

    /// Reads any of the contract's error bodies; never fails (an unknown body is kept,
    /// shortened, in `unparsed`).
    pub(crate) fn parse(body: &[u8]) -> ApiProblem {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return ApiProblem::default();
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
            if v.get("exception").is_some() {
                if let Ok(r) = serde_json::from_value::<wire::ExceptionResponse>(v.clone()) {
                    let info = r.exception;
                    return ApiProblem {
                        entries: info
                            .as_ref()
                            .and_then(|i| i.exception_detail_list.as_ref())
                            .into_iter()
                            .flatten()
                            .map(|d| ProblemEntry {
                                code: d.exception_code,
                                description: d.exception_description.clone().unwrap_or_default(),
                                details: d.details.clone().unwrap_or_default(),
                            })
                            .collect(),
                        trace: info.and_then(|i| i.reference_number.or(i.service_code)),
                        ..ApiProblem::default()
                    };
                }
            }
            if v.get("status").is_some_and(serde_json::Value::is_object) {
                if let Ok(r) = serde_json::from_value::<wire::TooManyRequestsResponse>(v.clone()) {
                    return ApiProblem {
                        entries: vec![ProblemEntry {
                            code: r.status.code,
                            description: r.status.description,
                            details: r.status.details.unwrap_or_default(),
                        }],
                        ..ApiProblem::default()
                    };
                }
            }
            if let Ok(p) = serde_json::from_value::<wire::ProblemDetails>(v) {
                if p.title.is_some() || p.detail.is_some() || p.errors.is_some() {
                    let entries: Vec<ProblemEntry> = p
                        .errors
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| ProblemEntry {
                            code: e.code,
                            description: e.description.unwrap_or_default(),
                            details: e.details.unwrap_or_default(),
                        })
                        .collect();
                    return ApiProblem {
                        summary: p.detail.or(p.title),
                        entries,
                        reason_code: p.reason_code,
                        trace: p.trace_id,
                        unparsed: None,
                    };
                }
            }
        }
        ApiProblem {
            unparsed: Some(trimmed.chars().take(300).collect()),
            ..ApiProblem::default()
        }
    }
}

impl fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for e in &self.entries {
            let mut s = format!("{} {}", e.code, e.description.trim());
            if !e.details.is_empty() {
                s.push_str(&format!(" ({})", e.details.join("; ")));
            }
            parts.push(s);
        }
        if parts.is_empty() {
            if let Some(s) = &self.summary {
                parts.push(s.clone());
            }
        }
        if let Some(r) = &self.reason_code {
            parts.push(format!("reason {r}"));
        }
        if let Some(u) = &self.unparsed {
            parts.push(format!("body: {u}"));
        }
        if parts.is_empty() {
            parts.push("no error body".into());
        }
        if let Some(t) = &self.trace {
            parts.push(format!("trace {t}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// A failed call or flow. `step` is the endpoint as the contract names it (e.g.
/// `POST /sessions/online/{referenceNumber}/invoices`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum KsefError {
    #[error("KSeF client configuration: {detail}")]
    Config { detail: String },

    #[error("KSeF {step}: could not reach {base}: {detail}; check the network, KSEF_BASE_URL and KSEF_CA_CERT, then retry")]
    Transport {
        step: String,
        base: String,
        detail: String,
        /// False when the connection was never made: the request certainly did not arrive.
        maybe_delivered: bool,
    },

    #[error("KSeF {step}: HTTP {status}: {problem}; {advice}")]
    Api {
        step: String,
        status: u16,
        /// Boxed: errors travel in every `Result` of the crate.
        problem: Box<ApiProblem>,
        advice: String,
    },

    #[error("KSeF {step}: request limit exceeded (HTTP 429, {problem}){}; KSeF blocks this NIP and IP for a while: retry after that, and do not run another KSeF program for the same NIP from this address meanwhile", retry_after.map(|d| format!(", Retry-After {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        step: String,
        retry_after: Option<Duration>,
        problem: Box<ApiProblem>,
    },

    #[error("KSeF authentication with the KSeF token for NIP {nip} failed: status {code} {description}{}; {advice}", if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) })]
    AuthFailed {
        nip: String,
        code: i32,
        description: String,
        details: Vec<String>,
        advice: String,
    },

    #[error("KSeF {step}: unexpected answer: {detail}; KSEF_BASE_URL may point at something else, or the API changed: report this message")]
    Protocol { step: String, detail: String },

    #[error("KSeF {step}: {detail}")]
    Crypto { step: String, detail: String },

    #[error("KSeF {step}: no final answer after {} s; {advice}", waited.as_secs())]
    Timeout {
        step: String,
        waited: Duration,
        advice: String,
    },
}

impl KsefError {
    pub(crate) fn config(detail: String) -> Self {
        KsefError::Config { detail }
    }

    pub(crate) fn protocol(step: &str, detail: impl Into<String>) -> Self {
        KsefError::Protocol {
            step: step.to_owned(),
            detail: detail.into(),
        }
    }

    /// The same call may succeed later unchanged: network failures, 429, 5xx, timeouts,
    /// authentication statuses KSeF itself calls transient (500, 550).
    pub fn is_temporary(&self) -> bool {
        match self {
            KsefError::Transport { .. }
            | KsefError::RateLimited { .. }
            | KsefError::Timeout { .. } => true,
            KsefError::Api { status, .. } => *status >= 500 || *status == 408,
            KsefError::AuthFailed { code, .. } => matches!(code, 500 | 550),
            KsefError::Config { .. } | KsefError::Protocol { .. } | KsefError::Crypto { .. } => {
                false
            }
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            KsefError::Api { status, .. } => Some(*status),
            KsefError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub fn problem(&self) -> Option<&ApiProblem> {
        match self {
            KsefError::Api { problem, .. } | KsefError::RateLimited { problem, .. } => {
                Some(problem)
            }
            _ => None,
        }
    }

    /// A 400 carrying this `exceptionCode`.
    pub fn has_code(&self, code: i32) -> bool {
        matches!(self, KsefError::Api { status: 400, problem, .. } if problem.has_code(code))
    }
}

/// What to do about an HTTP error, by status and KSeF's codes.
pub(crate) fn advice(status: u16, problem: &ApiProblem, nip: &str) -> String {
    let code_advice = problem.entries.iter().find_map(|e| {
        Some(match e.code {
            21470 => "KSeF no longer accepts the public key we used (rotated); the client fetches the certificates again on the next attempt: retry",
            21111 => "the authentication challenge was refused (expired or reused): retry, a new challenge is fetched",
            21301 => "KSeF refused the tokens (already redeemed, the KSeF token revoked, or the authentication not finished): authenticate again; if it persists create a new KSeF token",
            21155 => "the session holds its maximum number of invoices: a new session is needed",
            21173 | 21180 => "the online session is gone or closed (expired after 12 h?): a new session is needed",
            21402 | 21403 => "the invoice's size or hash does not match what was encrypted: a client bug, report it with this message",
            21405 => "KSeF's input validation refused the request (see the details): fix what they name",
            21178 => "the UPO is not there (yet): ask again later",
            _ => return None,
        })
    });
    if let Some(a) = code_advice {
        return a.to_owned();
    }
    match status {
        400 => "KSeF refused the request as invalid (see the codes above): fix what they name; the same request will fail again".to_owned(),
        401 => "KSeF did not accept our access token even after a fresh authentication: check the KSeF token and the seller NIP".to_owned(),
        403 => match problem.reason_code.as_deref() {
            Some("missing-permissions") => format!("the KSeF token lacks the permission needed (InvoiceWrite to send) in the context of NIP {nip}: create a token with InvoiceWrite for this NIP in KSeF and store it"),
            Some("ip-not-allowed") => "this IP address is not allowed by the authentication's IP policy: run from an allowed address".to_owned(),
            Some("security-service-blocked") => "KSeF's security service blocked the request: contact the Ministry of Finance through its KSeF form, quoting the trace".to_owned(),
            _ => format!("KSeF refused access in the context of NIP {nip}: check the KSeF token's permissions"),
        },
        404 => "no such endpoint or resource: check that KSEF_BASE_URL ends with /v2 and the reference numbers".to_owned(),
        410 => "the operation expired at KSeF: start it again".to_owned(),
        413 => "the request is too large for KSeF (an invoice may have at most 1 MB)".to_owned(),
        s if s >= 500 => "KSeF is failing at the moment: retry later; nothing was decided by this request".to_owned(),
        _ => "unexpected status: retry later, and report it if it persists".to_owned(),
    }
}

/// What to do about a failed authentication status (`GET /auth/{referenceNumber}`).
pub(crate) fn auth_advice(code: i32, nip: &str) -> String {
    match code {
        415 => format!("the KSeF token has no permissions in the context of NIP {nip}: use a token created for this NIP (with InvoiceWrite)"),
        425 => "the authentication was revoked in KSeF together with its refresh tokens: authenticate again (the client does so on the next call)".to_owned(),
        450 => format!("the KSeF token is wrong, revoked or inactive (or the challenge was stale): check the token stored for NIP {nip}; create a new one in KSeF if it was revoked"),
        460 => "a certificate problem (not expected for token authentication): report it".to_owned(),
        470 => "KSeF refuses the authorisation of a deceased person: a new token must be created by an authorised person".to_owned(),
        480 => "KSeF blocked the authentication (suspected security incident): contact the Ministry of Finance through its KSeF form".to_owned(),
        500 | 550 => "KSeF failed internally: retry later".to_owned(),
        _ => "unexpected status: retry later, and report it if it persists".to_owned(),
    }
}

/// Why KSeF refused an invoice, by its status code (`SessionInvoiceStatusResponse.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// 430 (file verification: schema, forbidden characters, size) and 450 (semantics,
    /// e.g. `P_1` after the acquisition date, NIP checksums): the invoice must be fixed.
    InvalidInvoice,
    /// 440: KSeF already holds an invoice of this seller with this `RodzajFaktury` and
    /// number (`P_2`) — possibly this very invoice, sent before (see
    /// [`Rejection::original_ksef_number`]). Not to be resent as is.
    Duplicate,
    /// 410 (permissions), 415 (attachments not enabled for the seller): the seller's KSeF
    /// setup must change before this invoice can go.
    NotPermitted,
    /// 405 (cancelled with its session), 435 (decryption failed), 500 (unknown), 550
    /// (cancelled by the system, "try again"): nothing wrong with the invoice; resending it
    /// unchanged may succeed.
    SystemFailure,
}

/// KSeF processed an invoice and refused it. Final for this submission: the invoice did
/// not get a KSeF number (so it was not issued through KSeF).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KSeF rejected the invoice: status {code} {description}{}{}; {}", if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }, original_ksef_number.as_ref().map(|n| format!(", original KSeF number {n}")).unwrap_or_default(), self.advice())]
pub struct Rejection {
    pub code: i32,
    pub description: String,
    pub details: Vec<String>,
    /// 440: the KSeF number of the invoice this one duplicates.
    pub original_ksef_number: Option<String>,
    /// 440: the session the original was sent in.
    pub original_session_reference_number: Option<String>,
    pub invoice_reference_number: String,
    pub session_reference_number: String,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        match self.code {
            430 | 450 => RejectionKind::InvalidInvoice,
            440 => RejectionKind::Duplicate,
            410 | 415 => RejectionKind::NotPermitted,
            _ => RejectionKind::SystemFailure,
        }
    }

    pub fn advice(&self) -> &'static str {
        match self.kind() {
            RejectionKind::InvalidInvoice => {
                "fix the invoice as the details say and send it again"
            }
            RejectionKind::Duplicate => {
                "this seller's invoice number is already in KSeF: if the original is this invoice (sent before), it is issued under the original KSeF number; otherwise the numbering collides"
            }
            RejectionKind::NotPermitted => {
                "the seller's KSeF permissions or settings must change before this invoice can be sent"
            }
            RejectionKind::SystemFailure => {
                "KSeF failed, not the invoice: send it again unchanged"
            }
        }
    }
}

/// An invoice KSeF received (it has a reference number) whose outcome or receipt we could
/// not learn in time. Ask again with `KsefClient::await_invoice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvoice {
    pub session_reference_number: String,
    pub invoice_reference_number: String,
    /// Set when KSeF already accepted it and only the UPO is missing: the invoice is issued.
    pub ksef_number: Option<String>,
    /// The last status code seen (100 accepted for processing, 150 processing, 200 done).
    pub last_status: Option<i32>,
    pub reason: String,
}

/// Why one invoice of a batch has no [`crate::Accepted`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Final: KSeF refused the invoice ([`Rejection::kind`] says whether to fix it).
    #[error("{0}")]
    Rejected(Rejection),
    /// KSeF took the invoice but its outcome (or, with `ksef_number`, its UPO) is not known
    /// yet. Do not resend: ask with `KsefClient::await_invoice(session, invoice)`. (A
    /// resend is harmless, KSeF answers it with 440 and the original number, but useless.)
    #[error("KSeF received the invoice (session {}, invoice {}){} but {}; ask for it later with the reference numbers instead of sending it again", .0.session_reference_number, .0.invoice_reference_number, .0.ksef_number.as_ref().map(|n| format!(", KSeF number {n}")).unwrap_or_default(), .0.reason)]
    Pending(PendingInvoice),
    /// KSeF did not take the invoice, or it cannot be told whether the request arrived
    /// (`KsefError::Transport { maybe_delivered: true, .. }`). Nothing was decided: send
    /// it again (if it did arrive and was accepted, KSeF answers the resend with 440 and
    /// the original KSeF number). [`KsefError::is_temporary`] says whether waiting helps.
    #[error("the invoice was not accepted by KSeF: {0}")]
    NotAccepted(KsefError),
}

impl SendError {
    pub fn is_rejected(&self) -> bool {
        matches!(self, SendError::Rejected(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../tests/fixtures/contract/", $name))
        };
    }

    #[test]
    fn parses_every_error_shape_of_the_contract() {
        let p = ApiProblem::parse(fixture!("error.exception-response.json"));
        assert_eq!(
            p.entries,
            vec![ProblemEntry {
                code: 12345,
                description: "Opis błędu.".into(),
                details: vec!["Opcjonalne dodatkowe szczegóły błędu.".into()],
            }]
        );
        assert_eq!(
            p.trace.as_deref(),
            Some("a1b2c3d4-e5f6-4789-ab12-cd34ef567890")
        );
        assert!(p.has_code(12345));

        let p = ApiProblem::parse(fixture!("error.bad-request.problem.json"));
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].code, 21405);
        assert_eq!(
            p.entries[1].details,
            ["Rozmiar części 1 przekroczył dozwolony rozmiar 100MB."]
        );
        assert_eq!(p.trace.as_deref(), Some("673843e023c432286660bc0501a3af44"));

        let p = ApiProblem::parse(fixture!("error.unauthorized.problem.json"));
        assert_eq!(
            p.summary.as_deref(),
            Some("Wymagane jest uwierzytelnienie.")
        );
        assert!(p.entries.is_empty());

        let p = ApiProblem::parse(fixture!("error.forbidden.problem.json"));
        assert_eq!(p.reason_code.as_deref(), Some("missing-permissions"));

        let p = ApiProblem::parse(fixture!("error.too-many-requests.json"));
        assert_eq!(p.entries[0].code, 429);
        assert!(p.entries[0].details[0].contains("20 żądań na minutę"));

        let p = ApiProblem::parse(fixture!("error.too-many-requests.problem.json"));
        assert!(p
            .summary
            .unwrap()
            .contains("Spróbuj ponownie po 30 sekundach"));

        let p = ApiProblem::parse(fixture!("auth-status.410.problem.json"));
        assert_eq!(
            p.summary.as_deref(),
            Some("Operacja wygasła i nie jest już dostępna.")
        );

        let p = ApiProblem::parse(b"<html>Bad gateway</html>");
        assert_eq!(p.unparsed.as_deref(), Some("<html>Bad gateway</html>"));
        assert_eq!(ApiProblem::parse(b"  "), ApiProblem::default());
    }

    #[test]
    fn messages_name_step_status_codes_and_advice() {
        let problem = ApiProblem::parse(
            br#"{"exception":{"exceptionDetailList":[{"exceptionCode":21405,"exceptionDescription":"B\u0142\u0105d walidacji danych wej\u015bciowych.","details":["invoiceSize must be > 0"]}],"serviceCode":"00-abc-00"}}"#,
        );
        let e = KsefError::Api {
            step: "POST /sessions/online/{referenceNumber}/invoices".into(),
            status: 400,
            advice: advice(400, &problem, "5265877635"),
            problem: Box::new(problem),
        };
        let m = e.to_string();
        for part in [
            "POST /sessions/online/{referenceNumber}/invoices",
            "HTTP 400",
            "21405 Błąd walidacji danych wejściowych.",
            "invoiceSize must be > 0",
            "trace 00-abc-00",
            "fix what they name",
        ] {
            assert!(m.contains(part), "{part:?} missing in {m}");
        }
        assert!(e.has_code(21405) && !e.is_temporary());

        let forbidden = ApiProblem::parse(fixture!("error.forbidden.problem.json"));
        let a = advice(403, &forbidden, "5265877635");
        assert!(
            a.contains("InvoiceWrite") && a.contains("5265877635"),
            "{a}"
        );

        let e = KsefError::AuthFailed {
            nip: "5265877635".into(),
            code: 450,
            description: "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu"
                .into(),
            details: vec!["Token unieważniony".into()],
            advice: auth_advice(450, "5265877635"),
        };
        let m = e.to_string();
        assert!(
            m.contains("status 450") && m.contains("Token unieważniony") && m.contains("revoked"),
            "{m}"
        );
        assert!(!e.is_temporary());
    }

    #[test]
    fn rejections_say_whether_the_invoice_is_at_fault() {
        let r = |code| Rejection {
            code,
            description: "d".into(),
            details: vec![],
            original_ksef_number: None,
            original_session_reference_number: None,
            invoice_reference_number: "i".into(),
            session_reference_number: "s".into(),
        };
        assert_eq!(r(430).kind(), RejectionKind::InvalidInvoice);
        assert_eq!(r(450).kind(), RejectionKind::InvalidInvoice);
        assert_eq!(r(440).kind(), RejectionKind::Duplicate);
        assert_eq!(r(410).kind(), RejectionKind::NotPermitted);
        assert_eq!(r(415).kind(), RejectionKind::NotPermitted);
        for c in [405, 435, 500, 550] {
            assert_eq!(r(c).kind(), RejectionKind::SystemFailure, "{c}");
        }
        let mut dup = r(440);
        dup.original_ksef_number = Some("5265877635-20250626-010080DD2B5E-26".into());
        let m = SendError::Rejected(dup).to_string();
        assert!(
            m.contains("status 440")
                && m.contains("original KSeF number 5265877635-20250626-010080DD2B5E-26"),
            "{m}"
        );
    }
}
