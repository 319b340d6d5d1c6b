//! The JSON bodies of the KSeF endpoints this client uses, as `open-api.json` defines them
//! (schema names in the comments). Fields we do not read are left out; optional ones are
//! `Option` even where the schema says required but the Ministry's own examples omit them.
//! The tests parse the contract's examples (`tests/fixtures/contract/`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The form of the invoices we send: FA(3), the only one PRD accepts for VAT invoices.
pub(crate) const FORM_CODE: FormCode = FormCode {
    system_code: "FA (3)",
    schema_version: "1-0E",
    value: "FA",
};

/// `PublicKeyCertificate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublicKeyCertificate {
    /// DER, Base64.
    pub certificate: String,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo, Base64; echoed in requests.
    #[serde(default)]
    pub public_key_id: Option<String>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    /// `KsefTokenEncryption`, `SymmetricKeyEncryption` (strings: a new usage must not
    /// break the parsing of the list).
    pub usage: Vec<String>,
}

/// `AuthenticationChallengeResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Challenge {
    pub challenge: String,
    pub timestamp_ms: i64,
}

/// `AuthenticationContextIdentifier`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ContextIdentifier<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: &'a str,
}

/// `InitTokenAuthenticationRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitTokenAuthenticationRequest<'a> {
    pub challenge: &'a str,
    pub context_identifier: ContextIdentifier<'a>,
    pub encrypted_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_id: Option<&'a str>,
}

/// `TokenInfo`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenInfo {
    pub token: String,
    pub valid_until: DateTime<Utc>,
}

/// `AuthenticationInitResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticationInitResponse {
    pub reference_number: String,
    pub authentication_token: TokenInfo,
}

/// `StatusInfo`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusInfo {
    pub code: i32,
    pub description: String,
    #[serde(default)]
    pub details: Option<Vec<String>>,
}

/// `AuthenticationOperationStatusResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AuthenticationOperationStatus {
    pub status: StatusInfo,
}

/// `AuthenticationTokensResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticationTokens {
    pub access_token: TokenInfo,
    pub refresh_token: TokenInfo,
}

/// `AuthenticationTokenRefreshResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticationTokenRefresh {
    pub access_token: TokenInfo,
}

/// `FormCode`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FormCode {
    pub system_code: &'static str,
    pub schema_version: &'static str,
    pub value: &'static str,
}

/// `EncryptionInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptionInfo<'a> {
    pub encrypted_symmetric_key: String,
    pub initialization_vector: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_id: Option<&'a str>,
}

/// `OpenOnlineSessionRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenOnlineSessionRequest<'a> {
    pub form_code: FormCode,
    pub encryption: EncryptionInfo<'a>,
}

/// `OpenOnlineSessionResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenOnlineSessionResponse {
    pub reference_number: String,
    pub valid_until: DateTime<Utc>,
}

/// `SendInvoiceRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendInvoiceRequest {
    pub invoice_hash: String,
    pub invoice_size: u64,
    pub encrypted_invoice_hash: String,
    pub encrypted_invoice_size: u64,
    pub encrypted_invoice_content: String,
    pub offline_mode: bool,
}

/// `SendInvoiceResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendInvoiceResponse {
    pub reference_number: String,
}

/// `InvoiceStatusInfo`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InvoiceStatusInfo {
    pub code: i32,
    pub description: String,
    #[serde(default)]
    pub details: Option<Vec<String>>,
    #[serde(default)]
    pub extensions: Option<BTreeMap<String, Option<String>>>,
}

/// `SessionInvoiceStatusResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionInvoiceStatus {
    #[serde(default)]
    pub invoice_number: Option<String>,
    #[serde(default)]
    pub ksef_number: Option<String>,
    pub reference_number: String,
    #[serde(default)]
    pub invoice_hash: Option<String>,
    #[serde(default)]
    pub acquisition_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub invoicing_date: Option<DateTime<Utc>>,
    pub status: InvoiceStatusInfo,
}

/// `EffectiveApiRateLimitValues`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RateLimitValues {
    pub per_second: u32,
    pub per_minute: u32,
    pub per_hour: u32,
}

/// `EffectiveApiRateLimits`: the groups this client uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EffectiveApiRateLimits {
    pub online_session: RateLimitValues,
    pub invoice_send: RateLimitValues,
    pub invoice_status: RateLimitValues,
    pub session_misc: RateLimitValues,
    pub other: RateLimitValues,
}

// ---- errors -------------------------------------------------------------------------

/// `ExceptionResponse` (the default error body; `deprecated` in favour of problem details
/// but still what KSeF sends without `X-Error-Format: problem-details`).
#[derive(Debug, Deserialize)]
pub(crate) struct ExceptionResponse {
    pub exception: Option<ExceptionInfo>,
}

/// `ExceptionInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExceptionInfo {
    #[serde(default)]
    pub exception_detail_list: Option<Vec<ExceptionDetails>>,
    #[serde(default)]
    pub reference_number: Option<String>,
    #[serde(default)]
    pub service_code: Option<String>,
}

/// `ExceptionDetails`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExceptionDetails {
    pub exception_code: i32,
    #[serde(default)]
    pub exception_description: Option<String>,
    #[serde(default)]
    pub details: Option<Vec<String>>,
}

/// `BadRequestProblemDetails`, `UnauthorizedProblemDetails`, `ForbiddenProblemDetails`,
/// `GoneProblemDetails`, `TooManyRequestsProblemDetails`: one shape with optional parts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProblemDetails {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Option<Vec<ApiErrorEntry>>,
    #[serde(default)]
    pub reason_code: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
}

/// `ApiError`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiErrorEntry {
    pub code: i32,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub details: Option<Vec<String>>,
}

/// `TooManyRequestsResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct TooManyRequestsResponse {
    pub status: StatusInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/contract/", $name))
        };
    }

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The keys of a serialised request equal those of the contract's example (recursively).
    fn same_keys(ours: &Value, theirs: &Value, path: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                let ka: Vec<_> = a.keys().collect();
                let kb: Vec<_> = b.keys().collect();
                assert_eq!(ka, kb, "keys at {path}");
                for (k, v) in a {
                    same_keys(v, &b[k], &format!("{path}.{k}"));
                }
            }
            (a, b) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "type at {path}: {a} vs {b}"
            ),
        }
    }

    #[test]
    fn public_key_certificates() {
        let list: Vec<PublicKeyCertificate> = parse(fixture!("public-key-certificates.200.json"));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].usage, ["KsefTokenEncryption"]);
        assert_eq!(list[1].usage, ["SymmetricKeyEncryption"]);
        assert_eq!(
            list[1].public_key_id.as_deref(),
            Some("tmtCidSRzR4fvNpLU5hMOM6FzamxJf0BBR8IkXIAwsY=")
        );
        assert!(list[0].valid_from < list[0].valid_to);
        assert_eq!(
            list[0].valid_to.to_rfc3339(),
            "2028-07-11T12:23:56.015430200+00:00"
        );
    }

    #[test]
    fn authentication() {
        let c: Challenge = parse(fixture!("auth-challenge.200.json"));
        assert_eq!(c.challenge, "20250514-CR-226FB7B000-3ACF9BE4C0-10");
        assert_eq!(c.timestamp_ms, 1752236636015);

        let ours = serde_json::to_value(InitTokenAuthenticationRequest {
            challenge: "20250625-CR-2FDC223000-C2BFC98A9C-4E",
            context_identifier: ContextIdentifier {
                kind: "Nip",
                value: "5265877635",
            },
            encrypted_token: "...".into(),
            public_key_id: Some("QIoAK/Yc3s27Z4t3SZY4Mhp8JNLH7Vl4N3lNlJAEig8="),
        })
        .unwrap();
        let theirs: Value = serde_json::from_str(fixture!("auth-ksef-token.request.json")).unwrap();
        assert_eq!(ours, theirs);

        let init: AuthenticationInitResponse = parse(fixture!("auth-ksef-token.202.json"));
        assert_eq!(
            init.reference_number,
            "20250514-AU-2DFC46C000-3AC6D5877F-D4"
        );
        assert!(init.authentication_token.token.starts_with("eyJ"));

        let s: AuthenticationOperationStatus = parse(fixture!("auth-status.100.json"));
        assert_eq!(s.status.code, 100);
        let s: AuthenticationOperationStatus = parse(fixture!("auth-status.200.json"));
        assert_eq!(s.status.code, 200);
        let s: AuthenticationOperationStatus = parse(fixture!("auth-status.400.json"));
        assert_eq!(
            (s.status.code, s.status.details.unwrap()),
            (400, vec!["Nieważny certyfikat.".to_owned()])
        );

        let t: AuthenticationTokens = parse(fixture!("auth-token-redeem.200.json"));
        assert!(
            t.access_token.token.starts_with("eyJ") && t.refresh_token.token.starts_with("eyJ")
        );
        let r: AuthenticationTokenRefresh = parse(fixture!("auth-token-refresh.200.json"));
        assert_eq!(r.access_token.valid_until.timestamp(), 1752236636);
    }

    #[test]
    fn online_session() {
        let ours = serde_json::to_value(OpenOnlineSessionRequest {
            form_code: FORM_CODE,
            encryption: EncryptionInfo {
                encrypted_symmetric_key: "x".into(),
                initialization_vector: "y".into(),
                public_key_id: Some("z"),
            },
        })
        .unwrap();
        let theirs: Value = serde_json::from_str(fixture!("sessions-online.request.json")).unwrap();
        same_keys(&ours, &theirs, "$");
        assert_eq!(ours["formCode"], theirs["formCode"], "FA (3) 1-0E FA");

        let s: OpenOnlineSessionResponse = parse(fixture!("sessions-online.201.json"));
        assert_eq!(s.reference_number, "20250625-SO-2C3E6C8000-B675CF5D68-07");

        let ours = serde_json::to_value(SendInvoiceRequest {
            invoice_hash: "EbrK4cOSjW4hEpJaHU71YXSOZZmqP5++dK9nLgTzgV4=".into(),
            invoice_size: 6480,
            encrypted_invoice_hash: "miYb1z3Ljw5VucTZslv3Tlt+V/EK1V8Q8evD8HMQ0dc=".into(),
            encrypted_invoice_size: 6496,
            encrypted_invoice_content: "...".into(),
            offline_mode: false,
        })
        .unwrap();
        let theirs: Value = serde_json::from_str(fixture!("send-invoice.request.json")).unwrap();
        assert_eq!(ours, theirs);
        let r: SendInvoiceResponse = parse(fixture!("send-invoice.202.json"));
        assert_eq!(r.reference_number, "20250625-EE-319D7EE000-B67F415CDC-2C");
    }

    #[test]
    fn invoice_statuses() {
        let dup: SessionInvoiceStatus = parse(fixture!("invoice-status.440.json"));
        assert_eq!(dup.status.code, 440);
        assert_eq!(dup.ksef_number, None);
        let ext = dup.status.extensions.unwrap();
        assert_eq!(
            ext["originalKsefNumber"].as_deref(),
            Some("5265877635-20250626-010080DD2B5E-26")
        );
        assert_eq!(
            ext["originalSessionReferenceNumber"].as_deref(),
            Some("20250626-SO-2F14610000-242991F8C9-B4")
        );

        // The list's items are the same schema; the first is a success.
        let list: Value = serde_json::from_str(fixture!("session-invoices.200.json")).unwrap();
        let ok: SessionInvoiceStatus = parse(&list["invoices"][0].to_string());
        assert_eq!(ok.status.code, 200);
        assert_eq!(
            ok.ksef_number.as_deref(),
            Some("5265877635-20250626-010080DD2B5E-26")
        );
        assert_eq!(
            ok.acquisition_date.unwrap().to_rfc3339(),
            "2025-09-18T12:24:16.015430200+00:00"
        );
        assert_eq!(
            ok.invoice_hash.as_deref(),
            Some("mkht+3m5trnfxlTYhq3QFn74LkEO69MFNlsMAkCDSPA=")
        );
        let failed: SessionInvoiceStatus = parse(&list["invoices"][1].to_string());
        assert_eq!(failed.status.code, 440);
    }

    #[test]
    fn rate_limits() {
        let l: EffectiveApiRateLimits = parse(fixture!("rate-limits.200.json"));
        assert_eq!(
            (
                l.invoice_send.per_second,
                l.invoice_send.per_minute,
                l.invoice_send.per_hour
            ),
            (10, 30, 180)
        );
        assert_eq!(l.invoice_status.per_minute, 120);
        assert_eq!(l.online_session.per_hour, 120);
        assert_eq!(l.session_misc.per_second, 10);
        assert_eq!(l.other.per_minute, 30);
    }
}
