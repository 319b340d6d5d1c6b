//! The KSeF endpoints, each as `open-api.json` shapes it: request checks in the
//! contract's order, answers with its status codes and field names.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Warsaw;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::config::Permission;
use super::crypto::{aes_cbc_decrypt, sha256_b64, PublishedKey};
use super::errors::{bad, ApiError};
use super::ids::{jwt_like, ksef_number, reference_number, timestamp};
use super::invoice::{file_checks, read_facts, InvoiceFacts};
use super::model::{
    invoice_status_description, session_status, AuthOp, AuthOutcome, Bearer, Challenge, Invoice,
    Outcome, Session, State as SimState,
};
use super::server::{json_ok, InvoiceFaults, Resp, Shared};
use super::upo::{invoice_upo, session_upo as render_session_upo, UpoDocument, UpoHeader};

type ApiResult = Result<Resp, ApiError>;

fn dur(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn input_error(e: impl std::fmt::Display) -> ApiError {
    bad(21405, e.to_string())
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| input_error(format!("Treść żądania: {e}")))
}

fn b64_field(value: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(value.trim())
        .map_err(|e| input_error(format!("{field}: nie jest poprawnym Base64 ({e}).")))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::Unauthorized(detail.to_string())
}

/// The authenticated context behind an access token.
struct Context {
    nip: String,
    permissions: Vec<Permission>,
}

fn access(st: &SimState, headers: &HeaderMap, now: DateTime<Utc>) -> Result<Context, ApiError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("Wymagane jest uwierzytelnienie."))?;
    match st.bearers.get(token) {
        Some(Bearer::Access {
            reference,
            valid_until,
        }) => {
            if *valid_until <= now {
                return Err(unauthorized(
                    "Token dostępu wygasł; odśwież go (POST /auth/token/refresh) lub uwierzytelnij się ponownie.",
                ));
            }
            let op = st
                .auth_ops
                .get(reference)
                .ok_or_else(|| unauthorized("Nieznany token dostępu."))?;
            let permissions = match &op.outcome {
                AuthOutcome::Success { permissions, .. } => permissions.clone(),
                AuthOutcome::Failed { .. } => Vec::new(),
            };
            Ok(Context {
                nip: op.nip.clone(),
                permissions,
            })
        }
        Some(_) => Err(unauthorized(
            "To nie jest token dostępu (accessToken); użyj tokena z POST /auth/token/redeem.",
        )),
        None => Err(unauthorized("Nieprawidłowy token dostępu.")),
    }
}

fn require(ctx: &Context, needed: &[Permission]) -> Result<(), ApiError> {
    if needed.iter().any(|p| ctx.permissions.contains(p)) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        detail: "Brak wymaganych uprawnień do wykonania operacji w bieżącym kontekście.".into(),
        reason_code: "missing-permissions",
        security: json!({
            "requiredAnyOfPermissions": needed.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "presentPermissions": ctx.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        }),
    })
}

const WRITE: &[Permission] = &[Permission::InvoiceWrite, Permission::EnforcementOperations];
const READ_STATUS: &[Permission] = &[
    Permission::InvoiceWrite,
    Permission::Introspection,
    Permission::EnforcementOperations,
];

// ---------------------------------------------------------------- public keys

pub(crate) async fn public_key_certificates(State(shared): State<Arc<Shared>>) -> Resp {
    let cert = |k: &PublishedKey| {
        json!({
            "certificate": B64.encode(&k.certificate_der),
            "certificateId": k.certificate_id,
            "publicKeyId": k.public_key_id,
            "validFrom": timestamp(k.valid_from),
            "validTo": timestamp(k.valid_to),
            "usage": [k.usage.as_str()],
        })
    };
    json_ok(
        200,
        &json!([cert(&shared.token_key), cert(&shared.symmetric_key)]),
    )
}

// ---------------------------------------------------------------- authentication

pub(crate) async fn challenge(State(shared): State<Arc<Shared>>, req: Request) -> Resp {
    let ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_string(), |c| c.0.ip().to_string());
    let mut st = shared.lock();
    let now = st.now();
    let n = st.next();
    let challenge = reference_number("CR", now, shared.cfg.seed, n);
    st.challenges.insert(
        challenge.clone(),
        Challenge {
            issued: now,
            used: false,
        },
    );
    json_ok(
        200,
        &json!({
            "challenge": challenge,
            "timestamp": timestamp(now),
            "timestampMs": now.timestamp_millis(),
            "clientIp": ip,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KsefTokenRequest {
    challenge: String,
    context_identifier: ContextIdentifier,
    encrypted_token: String,
    #[serde(default)]
    public_key_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    authorization_policy: Option<Value>,
}

const BAD_TOKEN: &str = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu";

pub(crate) async fn ksef_token(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let r: KsefTokenRequest = parse_json(&body)?;
    if r.context_identifier.kind != "Nip" {
        return Err(input_error(format!(
            "contextIdentifier.type `{}`: symulator obsługuje tylko kontekst Nip.",
            r.context_identifier.kind
        )));
    }
    let nip = r.context_identifier.value.trim().to_string();
    if nip.len() != 10 || !nip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(input_error(format!(
            "contextIdentifier.value `{nip}` nie jest numerem NIP (10 cyfr)."
        )));
    }
    if let Some(id) = r.public_key_id.as_deref() {
        if id != shared.token_key.public_key_id {
            return Err(bad(
                21470,
                format!("Klucz o identyfikatorze {id} nie jest wspierany."),
            ));
        }
    }
    let encrypted = b64_field(&r.encrypted_token, "encryptedToken")?;
    let mut st = shared.lock();
    let now = st.now();
    let ttl = dur(shared.cfg.timing.challenge_ttl);
    let issued = match st.challenges.get_mut(&r.challenge) {
        Some(c) if !c.used && now < c.issued + ttl => {
            c.used = true;
            c.issued
        }
        Some(c) if c.used => {
            return Err(bad(
                21111,
                format!(
                    "Wyzwanie {} zostało już użyte; pobierz nowe (POST /auth/challenge).",
                    r.challenge
                ),
            ))
        }
        Some(_) => {
            return Err(bad(
                21111,
                format!(
                    "Wyzwanie {} wygasło (ważne 10 minut); pobierz nowe.",
                    r.challenge
                ),
            ))
        }
        None => return Err(bad(21111, format!("Nieznane wyzwanie {}.", r.challenge))),
    };
    let failed = |code: u16, description: &'static str, detail: &str| AuthOutcome::Failed {
        code,
        description,
        detail: detail.to_string(),
    };
    // What the asynchronous check will conclude, decided now and revealed by the clock.
    let outcome = match shared.token_key.decrypt_oaep(&encrypted) {
        Err(_) => failed(450, BAD_TOKEN, "Nieprawidłowy token"),
        Ok(plain) => match String::from_utf8(plain).ok().and_then(|t| {
            t.rsplit_once('|')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        }) {
            None => failed(450, BAD_TOKEN, "Nieprawidłowy token"),
            Some((token, ts)) => {
                if ts.trim().parse::<i64>().ok() != Some(issued.timestamp_millis()) {
                    failed(450, BAD_TOKEN, "Nieprawidłowy czas tokena")
                } else {
                    match st.token(&nip, &token) {
                        None => failed(450, BAD_TOKEN, "Nieprawidłowy token"),
                        Some(t) if t.spec.revoked => failed(450, BAD_TOKEN, "Token unieważniony"),
                        Some(t) if t.spec.permissions.is_empty() => failed(
                            415,
                            "Uwierzytelnianie zakończone niepowodzeniem",
                            "Brak przypisanych uprawnień",
                        ),
                        Some(t) => AuthOutcome::Success {
                            token_reference: t.reference.clone(),
                            permissions: t.spec.permissions.clone(),
                        },
                    }
                }
            }
        },
    };
    let n = st.next();
    let reference = reference_number("AU", now, shared.cfg.seed, n);
    let valid_until = now + dur(shared.cfg.timing.authentication_token_ttl);
    let token = jwt_like(
        "OperationToken",
        &reference,
        &nip,
        now.timestamp(),
        valid_until.timestamp(),
        shared.cfg.seed,
        n,
    );
    st.auth_ops.insert(
        reference.clone(),
        AuthOp {
            nip,
            started: now,
            ready_at: now + dur(shared.cfg.timing.auth_processing),
            outcome,
            redeemed: false,
            refresh_valid_until: None,
            last_refresh: None,
        },
    );
    st.bearers.insert(
        token.clone(),
        Bearer::Operation {
            reference: reference.clone(),
            valid_until,
        },
    );
    Ok(json_ok(
        202,
        &json!({
            "referenceNumber": reference,
            "authenticationToken": {"token": token, "validUntil": timestamp(valid_until)},
        }),
    ))
}

/// The authentication operation behind an operation token.
fn operation(st: &SimState, headers: &HeaderMap, now: DateTime<Utc>) -> Result<String, ApiError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("Wymagane jest uwierzytelnienie."))?;
    match st.bearers.get(token) {
        Some(Bearer::Operation {
            reference,
            valid_until,
        }) if *valid_until > now => Ok(reference.clone()),
        Some(Bearer::Operation { .. }) => Err(unauthorized(
            "Token operacji uwierzytelnienia wygasł; uwierzytelnij się ponownie.",
        )),
        _ => Err(unauthorized(
            "Wymagany jest token operacji uwierzytelnienia (authenticationToken z POST /auth/ksef-token).",
        )),
    }
}

pub(crate) async fn auth_status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let own = operation(&st, &headers, now)?;
    let op = st.auth_ops.get(&reference).filter(|_| own == reference).ok_or_else(|| {
        bad(
            21304,
            format!("Operacja uwierzytelniania o numerze referencyjnym {reference} nie została znaleziona."),
        )
    })?;
    let (code, description, detail) = op.status(now);
    let mut status = json!({"code": code, "description": description});
    if let Some(d) = detail {
        status["details"] = json!([d]);
    }
    let mut body = json!({
        "startDate": timestamp(op.started),
        "authenticationMethod": "Token",
        "authenticationMethodInfo": {"category": "Token", "code": "token.ksef", "displayName": "Token KSeF"},
        "status": status,
    });
    if code == 200 {
        body["isTokenRedeemed"] = json!(op.redeemed);
        if let Some(t) = op.last_refresh {
            body["lastTokenRefreshDate"] = json!(timestamp(t));
        }
        if let Some(t) = op.refresh_valid_until {
            body["refreshTokenValidUntil"] = json!(timestamp(t));
        }
    }
    Ok(json_ok(200, &body))
}

fn new_bearer(
    shared: &Shared,
    st: &mut SimState,
    kind: &str,
    reference: &str,
    nip: &str,
    ttl: std::time::Duration,
) -> (String, DateTime<Utc>) {
    let now = st.now();
    let n = st.next();
    let valid_until = now + dur(ttl);
    let token = jwt_like(
        kind,
        reference,
        nip,
        now.timestamp(),
        valid_until.timestamp(),
        shared.cfg.seed,
        n,
    );
    let b = match kind {
        "RefreshToken" => Bearer::Refresh {
            reference: reference.to_string(),
            valid_until,
        },
        _ => Bearer::Access {
            reference: reference.to_string(),
            valid_until,
        },
    };
    st.bearers.insert(token.clone(), b);
    (token, valid_until)
}

pub(crate) async fn redeem(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    let mut st = shared.lock();
    let now = st.now();
    let reference = operation(&st, &headers, now)?;
    let op = st.auth_ops.get(&reference).ok_or_else(|| {
        bad(
            21304,
            format!("Operacja uwierzytelniania o numerze referencyjnym {reference} nie została znaleziona."),
        )
    })?;
    let (code, _, _) = op.status(now);
    if code != 200 {
        return Err(bad(
            21301,
            format!("Status uwierzytelniania ({code}) nie pozwala na pobranie tokenów."),
        ));
    }
    if op.redeemed {
        return Err(bad(
            21301,
            format!("Tokeny dla operacji uwierzytelniania {reference} zostały już pobrane."),
        ));
    }
    let nip = op.nip.clone();
    let t = &shared.cfg.timing;
    let (access, access_until) = new_bearer(
        &shared,
        &mut st,
        "ContextToken",
        &reference,
        &nip,
        t.access_token_ttl,
    );
    let (refresh, refresh_until) = new_bearer(
        &shared,
        &mut st,
        "RefreshToken",
        &reference,
        &nip,
        t.refresh_token_ttl,
    );
    if let Some(op) = st.auth_ops.get_mut(&reference) {
        op.redeemed = true;
        op.refresh_valid_until = Some(refresh_until);
    }
    Ok(json_ok(
        200,
        &json!({
            "accessToken": {"token": access, "validUntil": timestamp(access_until)},
            "refreshToken": {"token": refresh, "validUntil": timestamp(refresh_until)},
        }),
    ))
}

pub(crate) async fn refresh(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    let mut st = shared.lock();
    let now = st.now();
    let token = bearer(&headers).ok_or_else(|| unauthorized("Wymagane jest uwierzytelnienie."))?;
    let reference = match st.bearers.get(token) {
        Some(Bearer::Refresh {
            reference,
            valid_until,
        }) if *valid_until > now => reference.clone(),
        Some(Bearer::Refresh { .. }) => {
            return Err(unauthorized(
                "Token odświeżający wygasł; uwierzytelnij się ponownie.",
            ))
        }
        _ => {
            return Err(unauthorized(
                "Wymagany jest token odświeżający (refreshToken z POST /auth/token/redeem).",
            ))
        }
    };
    let nip = st
        .auth_ops
        .get(&reference)
        .map(|o| o.nip.clone())
        .unwrap_or_default();
    let ttl = shared.cfg.timing.access_token_ttl;
    let (access, until) = new_bearer(&shared, &mut st, "ContextToken", &reference, &nip, ttl);
    if let Some(op) = st.auth_ops.get_mut(&reference) {
        op.last_refresh = Some(now);
    }
    Ok(json_ok(
        200,
        &json!({"accessToken": {"token": access, "validUntil": timestamp(until)}}),
    ))
}

// ---------------------------------------------------------------- online session

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FormCode {
    system_code: String,
    schema_version: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptionInfo {
    encrypted_symmetric_key: String,
    initialization_vector: String,
    #[serde(default)]
    public_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenSessionRequest {
    form_code: FormCode,
    encryption: EncryptionInfo,
}

pub(crate) async fn open_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let (ctx, now) = {
        let st = shared.lock();
        let now = st.now();
        (access(&st, &headers, now)?, now)
    };
    require(&ctx, WRITE)?;
    let r: OpenSessionRequest = parse_json(&body)?;
    let f = &r.form_code;
    if (
        f.system_code.as_str(),
        f.schema_version.as_str(),
        f.value.as_str(),
    ) != ("FA (3)", "1-0E", "FA")
    {
        return Err(input_error(format!(
            "Wskazany kod formularza nie jest wspierany: {{systemCode: {}, schemaVersion: {}, value: {}}}; symulator przyjmuje FA (3) / 1-0E / FA.",
            f.system_code, f.schema_version, f.value
        )));
    }
    if let Some(id) = r.encryption.public_key_id.as_deref() {
        if id != shared.symmetric_key.public_key_id {
            return Err(bad(
                21470,
                format!("Klucz o identyfikatorze {id} nie jest wspierany."),
            ));
        }
    }
    let iv = b64_field(
        &r.encryption.initialization_vector,
        "encryption.initializationVector",
    )?;
    let iv: [u8; 16] = iv.as_slice().try_into().map_err(|_| {
        input_error(format!(
            "encryption.initializationVector: {} bajtów po dekodowaniu; wymagane 16.",
            iv.len()
        ))
    })?;
    let wrapped = b64_field(
        &r.encryption.encrypted_symmetric_key,
        "encryption.encryptedSymmetricKey",
    )?;
    // A key that does not decrypt still opens the session; its status is then 415.
    let key: Option<[u8; 32]> = shared
        .symmetric_key
        .decrypt_oaep(&wrapped)
        .ok()
        .and_then(|k| k.as_slice().try_into().ok());
    let token = bearer(&headers).unwrap_or_default().to_string();
    let mut st = shared.lock();
    let token_reference = match st.bearers.get(&token) {
        Some(Bearer::Access { reference, .. }) => {
            match st.auth_ops.get(reference).map(|o| &o.outcome) {
                Some(AuthOutcome::Success {
                    token_reference, ..
                }) => token_reference.clone(),
                _ => String::new(),
            }
        }
        _ => String::new(),
    };
    let n = st.next();
    let reference = reference_number("SO", now, shared.cfg.seed, n);
    let upo_reference = reference_number("EU", now, shared.cfg.seed, n);
    let valid_until = now + dur(shared.cfg.timing.session_ttl);
    st.sessions.insert(
        reference.clone(),
        Session {
            reference: reference.clone(),
            nip: ctx.nip,
            token_reference,
            created: now,
            updated: now,
            valid_until,
            key,
            iv,
            closed_at: None,
            invoices: Vec::new(),
            upo_reference,
        },
    );
    Ok(json_ok(
        201,
        &json!({"referenceNumber": reference, "validUntil": timestamp(valid_until)}),
    ))
}

fn no_session(reference: &str) -> ApiError {
    bad(
        21173,
        format!("Sesja o numerze referencyjnym {reference} nie została znaleziona."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendInvoiceRequest {
    invoice_hash: String,
    invoice_size: u64,
    encrypted_invoice_hash: String,
    encrypted_invoice_size: u64,
    encrypted_invoice_content: String,
    #[serde(default)]
    offline_mode: bool,
    #[serde(default)]
    #[allow(dead_code)]
    hash_of_corrected_invoice: Option<String>,
}

/// The plain invoice, or why it could not be had: `Err(Some(e))` rejects the request,
/// `Err(None)` accepts it and ends it in 435 (undecryptable).
fn decrypt_invoice(
    key: &[u8; 32],
    session_iv: &[u8; 16],
    content: &[u8],
    declared_hash: &str,
    declared_size: u64,
) -> Result<Vec<u8>, Option<ApiError>> {
    // The Ministry's C# client sends the ciphertext alone (the IV given at session
    // open); the docs say the IV is prefixed. Both are tried; the one whose plain text
    // matches the declared hash and size wins.
    let mut candidates = Vec::new();
    if let Some(p) = aes_cbc_decrypt(key, session_iv, content) {
        candidates.push(p);
    }
    if content.len() >= 32 {
        if let Some(p) = aes_cbc_decrypt(key, &content[..16], &content[16..]) {
            candidates.push(p);
        }
    }
    if let Some(i) = candidates
        .iter()
        .position(|p| p.len() as u64 == declared_size && sha256_b64(p) == declared_hash)
    {
        return Ok(candidates.swap_remove(i));
    }
    let Some(first) = candidates.first() else {
        return Err(None);
    };
    if first.len() as u64 != declared_size
        && !candidates.iter().any(|p| p.len() as u64 == declared_size)
    {
        return Err(Some(bad(
            21402,
            format!(
                "Długość treści nie zgadza się z rozmiarem pliku: invoiceSize = {declared_size}, odszyfrowana faktura ma {} bajtów.",
                first.len()
            ),
        )));
    }
    Err(Some(bad(
        21403,
        format!(
            "Skrót treści nie zgadza się ze skrótem pliku: invoiceHash = {declared_hash}, SHA-256 odszyfrowanej faktury = {}.",
            sha256_b64(first)
        ),
    )))
}

/// How an invoice that made it through decryption ends, before the checks that need
/// the session's state (duplicates, dates).
enum Verdict {
    Undecryptable,
    File(Vec<String>),
    Read(InvoiceFacts),
}

pub(crate) async fn send_invoice(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Extension(faults): Extension<InvoiceFaults>,
    body: Bytes,
) -> ApiResult {
    let (ctx, key, iv) = {
        let st = shared.lock();
        let now = st.now();
        let ctx = access(&st, &headers, now)?;
        require(&ctx, WRITE)?;
        let s = st
            .sessions
            .get(&reference)
            .filter(|s| s.nip == ctx.nip)
            .ok_or_else(|| no_session(&reference))?;
        let (code, _, _) = session_status(s, &st.invoices, dur(shared.cfg.timing.session_upo), now);
        if code != 100 {
            return Err(bad(
                21180,
                format!("Status sesji {code} uniemożliwia wysyłkę faktur."),
            ));
        }
        if s.invoices.len() >= shared.cfg.max_invoices_per_session {
            return Err(bad(
                21155,
                format!(
                    "Sesja o numerze referencyjnym {reference} osiągnęła dozwolony limit liczby faktur {}.",
                    shared.cfg.max_invoices_per_session
                ),
            ));
        }
        (ctx, s.key, s.iv)
    };
    let r: SendInvoiceRequest = parse_json(&body)?;
    for (field, v) in [
        ("invoiceHash", &r.invoice_hash),
        ("encryptedInvoiceHash", &r.encrypted_invoice_hash),
    ] {
        if v.len() != 44 || B64.decode(v).map(|b| b.len()) != Ok(32) {
            return Err(input_error(format!(
                "{field}: wymagany skrót SHA-256 w Base64 (44 znaki), otrzymano `{v}`."
            )));
        }
    }
    if r.invoice_size == 0 || r.encrypted_invoice_size == 0 {
        return Err(input_error(
            "invoiceSize i encryptedInvoiceSize muszą być ≥ 1.",
        ));
    }
    let content = b64_field(&r.encrypted_invoice_content, "encryptedInvoiceContent")?;
    if content.len() as u64 != r.encrypted_invoice_size {
        return Err(bad(
            21402,
            format!(
                "Długość treści nie zgadza się z rozmiarem pliku: encryptedInvoiceSize = {}, encryptedInvoiceContent ma {} bajtów.",
                r.encrypted_invoice_size,
                content.len()
            ),
        ));
    }
    if sha256_b64(&content) != r.encrypted_invoice_hash {
        return Err(bad(
            21403,
            format!(
                "Skrót treści nie zgadza się ze skrótem pliku: encryptedInvoiceHash = {}, SHA-256 encryptedInvoiceContent = {}.",
                r.encrypted_invoice_hash,
                sha256_b64(&content)
            ),
        ));
    }
    let plain = match key {
        None => None,
        Some(k) => match decrypt_invoice(&k, &iv, &content, &r.invoice_hash, r.invoice_size) {
            Ok(p) => Some(p),
            Err(Some(e)) => return Err(e),
            Err(None) => None,
        },
    };
    let verdict = match &plain {
        None => Verdict::Undecryptable,
        Some(bytes) => match file_checks(bytes) {
            Err(details) => Verdict::File(details),
            // The schema before the fields: xmllint names the element and the rule broken,
            // which says more than "P_2 is missing".
            Ok(text) => match &shared.validator {
                Some(v) => match v.validate(bytes).await {
                    Ok(()) => read_facts(text).map_or_else(Verdict::File, Verdict::Read),
                    Err(lines) => {
                        let mut details = vec![
                            "Faktura niezgodna ze schematem FA (3) (schemat_FA(3)_v1-0E.xsd):"
                                .to_string(),
                        ];
                        details.extend(lines);
                        Verdict::File(details)
                    }
                },
                None => read_facts(text).map_or_else(Verdict::File, Verdict::Read),
            },
        },
    };

    let mut st = shared.lock();
    let now = st.now();
    // The session may have been closed while the file was checked.
    {
        let s = st
            .sessions
            .get(&reference)
            .ok_or_else(|| no_session(&reference))?;
        let (code, _, _) = session_status(s, &st.invoices, dur(shared.cfg.timing.session_upo), now);
        if code != 100 {
            return Err(bad(
                21180,
                format!("Status sesji {code} uniemożliwia wysyłkę faktur."),
            ));
        }
    }
    let t = &shared.cfg.timing;
    let processing_from = now + dur(t.invoice_accepted);
    let done_at = processing_from
        + dur(t.invoice_processing)
        + faults.slow.map_or(chrono::Duration::zero(), dur);
    let n = st.next();
    let seed = shared.cfg.seed;
    let invoice_reference = reference_number("EE", now, seed, n);
    let technical = u64::from_be_bytes(
        Sha256::digest(format!("{seed}:ksef:{n}").as_bytes())[..8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    let fail = |code: u16, details: Vec<String>| Outcome::Failed {
        code,
        details,
        extensions: None,
    };
    let mut facts = None;
    let outcome = match verdict {
        Verdict::Undecryptable => fail(
            435,
            vec!["Nie udało się odszyfrować faktury kluczem i wektorem IV sesji (AES-256-CBC, PKCS#7).".into()],
        ),
        Verdict::File(details) => fail(430, details),
        Verdict::Read(f) => {
            let outcome = judge(&st, &f, &ctx, faults.reject, done_at, &reference, technical);
            facts = Some(f);
            outcome
        }
    };
    if let (Outcome::Success { .. }, Some(f)) = (&outcome, &facts) {
        let idx = st.invoices.len();
        st.issued.insert(
            (f.seller_nip.clone(), f.kind.clone(), f.number.clone()),
            idx,
        );
    }
    let ordinal = {
        let s = st.sessions.get(&reference).map_or(0, |s| s.invoices.len());
        s + 1
    };
    let idx = st.invoices.len();
    st.invoices.push(Invoice {
        ordinal,
        reference: invoice_reference.clone(),
        session: reference.clone(),
        hash: r.invoice_hash.clone(),
        received: now,
        processing_from,
        done_at,
        offline: r.offline_mode,
        outcome,
        facts,
        xml: plain.unwrap_or_default(),
    });
    if let Some(s) = st.sessions.get_mut(&reference) {
        s.invoices.push(idx);
        s.updated = now;
    }
    Ok(json_ok(
        202,
        &json!({ "referenceNumber": invoice_reference }),
    ))
}

/// The checks after the file's own: the seller's context, a forced outcome, the issue
/// date against the acquisition date, and the duplicate rule.
fn judge(
    st: &SimState,
    f: &InvoiceFacts,
    ctx: &Context,
    forced: Option<u16>,
    acquired: DateTime<Utc>,
    session: &str,
    technical: u64,
) -> Outcome {
    let fail = |code: u16, details: Vec<String>| Outcome::Failed {
        code,
        details,
        extensions: None,
    };
    let original = st
        .issued
        .get(&(f.seller_nip.clone(), f.kind.clone(), f.number.clone()))
        .map(|&i| &st.invoices[i]);
    let duplicate = |ksef: &str, orig_session: &str, forced: bool| {
        Outcome::Failed {
        code: 440,
        details: vec![format!(
            "Duplikat faktury. Faktura o numerze KSeF: {ksef} została już prawidłowo przesłana do systemu w sesji: {orig_session}{}",
            if forced { " (wymuszone przez mai-sim)" } else { "" }
        )],
        extensions: Some(BTreeMap::from([
            ("originalSessionReferenceNumber".to_string(), orig_session.to_string()),
            ("originalKsefNumber".to_string(), ksef.to_string()),
        ])),
    }
    };
    match forced {
        Some(440) => {
            return match original.and_then(|o| match &o.outcome {
                Outcome::Success { ksef_number } => Some((ksef_number.clone(), o.session.clone())),
                _ => None,
            }) {
                Some((k, s)) => duplicate(&k, &s, true),
                None => duplicate(
                    &ksef_number(&f.seller_nip, acquired, technical ^ 0x5a5a),
                    session,
                    true,
                ),
            }
        }
        Some(430) => {
            return fail(
                430,
                vec!["Błąd weryfikacji pliku faktury (wymuszony przez mai-sim).".into()],
            )
        }
        Some(435) => {
            return fail(
                435,
                vec!["Błąd odszyfrowania pliku (wymuszony przez mai-sim).".into()],
            )
        }
        Some(_) => {
            return fail(
                450,
                vec![
                    "Błąd weryfikacji semantyki dokumentu faktury (wymuszony przez mai-sim)."
                        .into(),
                ],
            )
        }
        None => {}
    }
    if f.seller_nip != ctx.nip {
        return fail(
            410,
            vec![format!(
                "Sprzedawca faktury (Podmiot1/NIP {}) nie jest podmiotem kontekstu {}; brak uprawnień do wystawienia faktury w jego imieniu.",
                f.seller_nip, ctx.nip
            )],
        );
    }
    let acquisition_day = acquired.with_timezone(&Warsaw).date_naive();
    if f.issue_date > acquisition_day {
        return fail(
            450,
            vec![format!(
                "Data wystawienia faktury (P_1 = {}) jest późniejsza niż data przyjęcia faktury do KSeF ({acquisition_day}).",
                f.issue_date
            )],
        );
    }
    if let Some(o) = original {
        if let Outcome::Success { ksef_number } = &o.outcome {
            return duplicate(ksef_number, &o.session, false);
        }
    }
    Outcome::Success {
        ksef_number: ksef_number(&f.seller_nip, acquired, technical),
    }
}

pub(crate) async fn close_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> ApiResult {
    let mut st = shared.lock();
    let now = st.now();
    let ctx = access(&st, &headers, now)?;
    require(&ctx, WRITE)?;
    let s = st
        .sessions
        .get(&reference)
        .filter(|s| s.nip == ctx.nip)
        .ok_or_else(|| no_session(&reference))?;
    let (code, _, _) = session_status(s, &st.invoices, dur(shared.cfg.timing.session_upo), now);
    if code != 100 {
        return Err(bad(
            21180,
            format!("Status sesji {code} uniemożliwia jej zamknięcie."),
        ));
    }
    if let Some(s) = st.sessions.get_mut(&reference) {
        s.closed_at = Some(now);
        s.updated = now;
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(r)
}

// ---------------------------------------------------------------- status and UPO

fn origin(shared: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if shared.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// How long a storage link stays valid (the Ministry's examples: three days).
const LINK_TTL: chrono::Duration = chrono::Duration::days(3);

fn invoice_json(inv: &Invoice, now: DateTime<Utc>, origin: &str) -> Value {
    let code = inv.status_code(now);
    let mut status = json!({"code": code, "description": invoice_status_description(code)});
    if let (
        true,
        Outcome::Failed {
            details,
            extensions,
            ..
        },
    ) = (inv.is_final(now), &inv.outcome)
    {
        status["details"] = json!(details);
        if let Some(x) = extensions {
            status["extensions"] = json!(x);
        }
    }
    let mut v = json!({
        "ordinalNumber": inv.ordinal,
        "referenceNumber": inv.reference,
        "invoiceHash": inv.hash,
        "invoicingDate": timestamp(inv.received),
        "invoicingMode": if inv.offline { "Offline" } else { "Online" },
        "status": status,
    });
    if let (true, Some(f)) = (inv.is_final(now), &inv.facts) {
        v["invoiceNumber"] = json!(f.number);
    }
    if let Some(k) = inv.ksef_number(now) {
        v["ksefNumber"] = json!(k);
        v["acquisitionDate"] = json!(timestamp(inv.done_at));
        let stored = inv.done_at + chrono::Duration::seconds(1);
        if now >= stored {
            v["permanentStorageDate"] = json!(timestamp(stored));
        }
        v["upoDownloadUrl"] = json!(format!("{origin}/storage/{}/invoice-upo/{k}", inv.session));
        v["upoDownloadUrlExpirationDate"] = json!(timestamp(now + LINK_TTL));
    }
    v
}

fn session_of<'a>(
    st: &'a SimState,
    headers: &HeaderMap,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<&'a Session, ApiError> {
    let ctx = access(st, headers, now)?;
    require(&ctx, READ_STATUS)?;
    st.sessions
        .get(reference)
        .filter(|s| s.nip == ctx.nip)
        .ok_or_else(|| no_session(reference))
}

fn session_status_json(shared: &Shared, headers: &HeaderMap, reference: &str) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, headers, reference, now)?;
    let (code, description, detail) =
        session_status(s, &st.invoices, dur(shared.cfg.timing.session_upo), now);
    let mut status = json!({"code": code, "description": description});
    if let Some(d) = detail {
        status["details"] = json!([d]);
    }
    let invs = s.invoices.iter().map(|&i| &st.invoices[i]);
    let ok = invs.clone().filter(|i| i.succeeded(now)).count();
    let failed = invs.filter(|i| i.failed(now)).count();
    let mut v = json!({
        "status": status,
        "dateCreated": timestamp(s.created),
        "dateUpdated": timestamp(s.updated),
        "validUntil": timestamp(s.valid_until),
        "invoiceCount": s.invoices.len(),
        "successfulInvoiceCount": ok,
        "failedInvoiceCount": failed,
    });
    if code == 200 {
        v["upo"] = json!({"pages": [{
            "referenceNumber": s.upo_reference,
            "downloadUrl": format!("{}/storage/{}/session-upo/{}", origin(shared, headers), s.reference, s.upo_reference),
            "downloadUrlExpirationDate": timestamp(now + LINK_TTL),
        }]});
    }
    Ok(json_ok(200, &v))
}

pub(crate) async fn get_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> ApiResult {
    session_status_json(&shared, &headers, &reference)
}

fn list(
    shared: &Shared,
    headers: &HeaderMap,
    reference: &str,
    query: &HashMap<String, String>,
    only_failed: bool,
) -> ApiResult {
    let page_size = match query.get("pageSize") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (10..=1000).contains(&n) => n,
            _ => {
                return Err(input_error(format!(
                    "pageSize `{v}`: wymagana liczba od 10 do 1000."
                )))
            }
        },
    };
    let offset = match headers.get("x-continuation-token") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| B64.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| {
                bad(
                    21418,
                    "Token kontynuacji nie pochodzi z poprzedniej strony wyników.",
                )
            })?,
    };
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, headers, reference, now)?;
    let origin = origin(shared, headers);
    let all: Vec<&Invoice> = s
        .invoices
        .iter()
        .map(|&i| &st.invoices[i])
        .filter(|i| !only_failed || i.failed(now))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|i| invoice_json(i, now, &origin))
        .collect();
    let mut v = json!({ "invoices": page });
    if offset + page_size < all.len() {
        v["continuationToken"] = json!(B64.encode(format!("offset:{}", offset + page_size)));
    }
    Ok(json_ok(200, &v))
}

pub(crate) async fn session_invoices(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    list(&shared, &headers, &reference, &q, false)
}

pub(crate) async fn failed_invoices(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    list(&shared, &headers, &reference, &q, true)
}

pub(crate) async fn invoice_status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((reference, invoice)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, &headers, &reference, now)?;
    let inv = s
        .invoices
        .iter()
        .map(|&i| &st.invoices[i])
        .find(|i| i.reference == invoice)
        .ok_or_else(|| {
            // The contract lists only 21405 for this endpoint [unconfirmed: the
            // Ministry's exact answer to an unknown invoice reference].
            input_error(format!(
                "Faktura o numerze referencyjnym {invoice} nie została znaleziona w sesji {reference}."
            ))
        })?;
    Ok(json_ok(
        200,
        &invoice_json(inv, now, &origin(&shared, &headers)),
    ))
}

fn xml_response(xml: String) -> Resp {
    let hash = sha256_b64(xml.as_bytes());
    let mut r = Response::new(Body::from(xml));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(&hash) {
        h.insert("x-ms-meta-hash", v);
    }
    r
}

fn upo_header<'a>(s: &'a Session) -> UpoHeader<'a> {
    UpoHeader {
        session_reference: &s.reference,
        context_nip: &s.nip,
        token_reference: &s.token_reference,
    }
}

fn upo_document<'a>(inv: &'a Invoice, now: DateTime<Utc>) -> Option<UpoDocument<'a>> {
    let f = inv.facts.as_ref()?;
    Some(UpoDocument {
        seller_nip: &f.seller_nip,
        ksef_number: inv.ksef_number(now)?,
        invoice_number: &f.number,
        issue_date: f.issue_date,
        sent: inv.received,
        acquired: inv.done_at,
        hash: &inv.hash,
        offline: inv.offline,
    })
}

/// The UPO of the invoice in session `s` that `pick` selects, or 21178.
fn invoice_upo_of(
    st: &SimState,
    s: &Session,
    now: DateTime<Utc>,
    pick: impl Fn(&Invoice) -> bool,
    not_found: String,
) -> ApiResult {
    let doc = s
        .invoices
        .iter()
        .map(|&i| &st.invoices[i])
        .find(|i| pick(i))
        .and_then(|i| upo_document(i, now))
        .ok_or_else(|| bad(21178, not_found))?;
    Ok(xml_response(invoice_upo(&upo_header(s), &doc)))
}

pub(crate) async fn invoice_upo_by_reference(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((reference, invoice)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, &headers, &reference, now)?;
    invoice_upo_of(
        &st,
        s,
        now,
        |i| i.reference == invoice,
        format!("UPO faktury o numerze referencyjnym {invoice} w sesji {reference} nie zostało znalezione (faktura nie ma statusu 200)."),
    )
}

pub(crate) async fn invoice_upo_by_ksef_number(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((reference, ksef)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, &headers, &reference, now)?;
    invoice_upo_of(
        &st,
        s,
        now,
        |i| i.ksef_number(now) == Some(ksef.as_str()),
        format!("UPO o numerze KSeF {ksef} i numerze referencyjnym sesji {reference} nie zostało znalezione."),
    )
}

fn session_upo_of(
    shared: &Shared,
    st: &SimState,
    s: &Session,
    upo: &str,
    now: DateTime<Utc>,
) -> ApiResult {
    let (code, _, _) = session_status(s, &st.invoices, dur(shared.cfg.timing.session_upo), now);
    if code != 200 || upo != s.upo_reference {
        return Err(bad(
            21178,
            format!(
                "UPO o numerze referencyjnym {upo} dla sesji {} nie zostało znalezione (status sesji {code}).",
                s.reference
            ),
        ));
    }
    let docs: Vec<UpoDocument<'_>> = s
        .invoices
        .iter()
        .filter_map(|&i| upo_document(&st.invoices[i], now))
        .collect();
    Ok(xml_response(render_session_upo(&upo_header(s), &docs)))
}

pub(crate) async fn session_upo(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((reference, upo)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = session_of(&st, &headers, &reference, now)?;
    session_upo_of(&shared, &st, s, &upo, now)
}

/// `upoDownloadUrl`: no bearer, as the Ministry's storage links.
pub(crate) async fn storage_invoice_upo(
    State(shared): State<Arc<Shared>>,
    Path((reference, ksef)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = st
        .sessions
        .get(&reference)
        .ok_or_else(|| ApiError::NotFound(format!("no session {reference}")))?;
    invoice_upo_of(
        &st,
        s,
        now,
        |i| i.ksef_number(now) == Some(ksef.as_str()),
        format!("UPO o numerze KSeF {ksef} i numerze referencyjnym sesji {reference} nie zostało znalezione."),
    )
}

pub(crate) async fn storage_session_upo(
    State(shared): State<Arc<Shared>>,
    Path((reference, upo)): Path<(String, String)>,
) -> ApiResult {
    let st = shared.lock();
    let now = st.now();
    let s = st
        .sessions
        .get(&reference)
        .ok_or_else(|| ApiError::NotFound(format!("no session {reference}")))?;
    session_upo_of(&shared, &st, s, &upo, now)
}
