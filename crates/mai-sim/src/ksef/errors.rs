//! Error answers in the contract's shapes: `ExceptionResponse` (400), or with the
//! request header `X-Error-Format: problem-details` the `application/problem+json`
//! variants; 401/403 always as problem details, 429 as `TooManyRequestsResponse` with
//! `Retry-After`.
//!
//! Handlers return an [`ApiError`]; the router's outer layer renders it, because only
//! there are the request's headers and path at hand.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::ids::timestamp;

#[derive(Debug, Clone)]
pub(crate) enum ApiError {
    /// 400 with one `exceptionDetailList` entry.
    BadRequest {
        code: u32,
        description: &'static str,
        details: Vec<String>,
    },
    Unauthorized(String),
    Forbidden {
        detail: String,
        reason_code: &'static str,
        security: Value,
    },
    NotFound(String),
    TooManyRequests {
        retry_after: u64,
    },
    Server {
        status: u16,
    },
}

pub(crate) fn bad(code: u32, details: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code,
        description: exception_description(code),
        details: vec![details.into()],
    }
}

/// The contract's `ExceptionDescription` of each code the simulator answers with.
pub(crate) fn exception_description(code: u32) -> &'static str {
    match code {
        21111 => "Nieprawidłowe wyzwanie autoryzacyjne.",
        21155 => "Przekroczono dozwoloną liczbę faktur w sesji.",
        21173 => "Brak sesji o wskazanym numerze referencyjnym.",
        21178 => "Nie znaleziono UPO dla podanych kryteriów.",
        21180 => "Status sesji nie pozwala na wykonanie operacji.",
        21301 => "Brak autoryzacji.",
        21304 => "Brak uwierzytelnienia.",
        21402 => "Nieprawidłowy rozmiar pliku.",
        21403 => "Nieprawidłowy skrót pliku.",
        21405 => "Błąd walidacji danych wejściowych.",
        21418 => "Przekazany token kontynuacji ma nieprawidłowy format.",
        21470 => "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
        _ => "Błąd.",
    }
}

impl IntoResponse for ApiError {
    /// A placeholder carrying the error; [`render`] replaces it on the way out.
    fn into_response(self) -> Response<Body> {
        let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

fn json_body(status: u16, content_type: &'static str, v: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

const PROBLEM: &str = "application/problem+json";

/// The answer for `e` to a request for `path`, in the format the request asked for.
pub(crate) fn render(
    e: &ApiError,
    problem_details: bool,
    path: &str,
    trace_id: &str,
    now: DateTime<Utc>,
) -> Response<Body> {
    let ts = timestamp(now);
    match e {
        ApiError::BadRequest {
            code,
            description,
            details,
        } if problem_details => json_body(
            400,
            PROBLEM,
            &json!({
                "title": "Bad Request",
                "status": 400,
                "instance": path,
                "detail": "Żądanie jest nieprawidłowe.",
                "errors": [{"code": code, "description": description, "details": details}],
                "timestamp": ts,
                "traceId": trace_id,
            }),
        ),
        ApiError::BadRequest {
            code,
            description,
            details,
        } => json_body(
            400,
            "application/json",
            &json!({
                "exception": {
                    "exceptionDetailList": [{
                        "exceptionCode": code,
                        "exceptionDescription": description,
                        "details": details,
                    }],
                    "referenceNumber": null,
                    "serviceCode": format!("00-{trace_id}-{}-00", &trace_id[..16]),
                    "serviceCtx": "srvMAISIM",
                    "serviceName": "mai-sim KSeF",
                    "timestamp": ts,
                }
            }),
        ),
        ApiError::Unauthorized(detail) => json_body(
            401,
            PROBLEM,
            &json!({
                "title": "Unauthorized",
                "status": 401,
                "detail": detail,
                "instance": path,
                "traceId": trace_id,
                "timestamp": ts,
            }),
        ),
        ApiError::Forbidden {
            detail,
            reason_code,
            security,
        } => json_body(
            403,
            PROBLEM,
            &json!({
                "title": "Forbidden",
                "status": 403,
                "detail": detail,
                "instance": path,
                "reasonCode": reason_code,
                "security": security,
                "traceId": trace_id,
                "timestamp": ts,
            }),
        ),
        ApiError::NotFound(detail) => json_body(
            404,
            PROBLEM,
            &json!({
                "title": "Not Found",
                "status": 404,
                "detail": detail,
                "instance": path,
                "traceId": trace_id,
                "timestamp": ts,
            }),
        ),
        ApiError::TooManyRequests { retry_after } => {
            let detail = format!(
                "Przekroczono limit żądań (symulowany przez mai-sim). Spróbuj ponownie po {retry_after} sekundach."
            );
            let mut r = if problem_details {
                json_body(
                    429,
                    PROBLEM,
                    &json!({
                        "title": "Too Many Requests",
                        "status": 429,
                        "instance": path,
                        "detail": detail,
                        "timestamp": ts,
                        "traceId": trace_id,
                    }),
                )
            } else {
                json_body(
                    429,
                    "application/json",
                    &json!({"status": {"code": 429, "description": "Too Many Requests", "details": [detail]}}),
                )
            };
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            r
        }
        ApiError::Server { status } => {
            let title = StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Server Error");
            json_body(
                *status,
                PROBLEM,
                &json!({
                    "title": title,
                    "status": status,
                    "detail": "Symulowany błąd serwera (mai-sim); ponów żądanie później.",
                    "instance": path,
                    "traceId": trace_id,
                    "timestamp": ts,
                }),
            )
        }
    }
}
