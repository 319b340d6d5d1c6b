//! Who asked, and in which chat: Open WebUI's forwarded headers, read as Open WebUI
//! 0.12.4 writes them (`open_webui/utils/headers.py`; ../shared/specs/openwebui.md).
//!
//! Two modes, chosen by configuration:
//!
//! - **Plain headers** (no `MAI_OPENWEBUI_JWT_SECRET`): `X-OpenWebUI-User-{Id,Email,Name}`
//!   are taken as sent. The name arrives percent-encoded (Python's
//!   `quote(name.strip(), safe=' ')`: "Zofia Łukasiewicz" is `Zofia %C5%81ukasiewicz`)
//!   and is decoded. Anyone holding the proxy token can send any of them.
//! - **Signed identity** (`MAI_OPENWEBUI_JWT_SECRET` set): the user comes only from the
//!   HS256 JWT Open WebUI sends in `X-OpenWebUI-User-Jwt` when its
//!   `FORWARD_USER_INFO_HEADER_JWT_SECRET` is the same secret. Plain user headers are
//!   then ignored, never trusted (they are what a spoofer would send). A request that
//!   spends (every method but GET/HEAD/OPTIONS) without a valid token is refused with
//!   401 before anything is forwarded, so no call is paid for unattributed. A read
//!   (the model list, which Open WebUI also fetches at start-up with no user) may come
//!   without a token; a token that is present is checked either way, so a wrong secret
//!   shows at once as an empty model list in Open WebUI rather than later.
//!
//! In both modes the chat id (`X-OpenWebUI-Chat-Id`), the task (`X-Mai-Task`, filled by
//! Open WebUI with `{{TASK}}`) and the groups (`X-Mai-User-Groups`, `{{USER_GROUPS}}`)
//! are read from their headers. They are not covered by the signature (Open WebUI does
//! not sign them), so they are only as trustworthy as the proxy token.
//!
//! Header values are raw bytes: they are read as UTF-8 losslessly; a value that is not
//! UTF-8 is kept in its lossy form (U+FFFD for the bad bytes), counted in `/metrics`
//! (`mai_identity_header_invalid_utf8_total`) and logged at debug, never dropped.
//! Every field is bounded to [`MAX_FIELD_BYTES`], cut on a character boundary.
//!
//! The token check is on the hot path: the HMAC key schedule is computed once at start
//! and cloned per request; the token is at most [`MAX_TOKEN_BYTES`].
//!
//! The JWT is verified here with RustCrypto's `hmac` + `sha2` (already the tracker's,
//! for webhook signatures) rather than the `jsonwebtoken` crate: its current major
//! needs a crypto backend (`aws-lc-rs`, a C build, or the RustCrypto RSA/ECDSA/EdDSA
//! stack) for one HS256 check, in a daemon whose size and memory are budgeted. What is
//! checked is deliberately narrow: compact form, header `alg` exactly `HS256`, the
//! signature (constant time), `iss` = `open-webui`, `exp` required, `iat` not in the
//! future, both with [`LEEWAY_SECONDS`] of clock leeway. The tests check it against
//! tokens minted by PyJWT, the library Open WebUI uses.

use crate::metrics::Metrics;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use mai_core::usage::{ChatContext, UserRef, MAX_FIELD_BYTES, TASK_CHAT};
use serde::Deserialize;
use sha2::Sha256;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

/// Clock difference tolerated between Open WebUI and the tracker for `exp` and `iat`.
/// Open WebUI mints a fresh token per request valid for
/// `FORWARD_USER_INFO_HEADER_JWT_EXPIRES_SECONDS` (default 300 s), so 30 s covers
/// ordinary drift without letting a captured token live much longer.
pub const LEEWAY_SECONDS: i64 = 30;

/// Longest token read. Open WebUI's are ~300 bytes; the cap bounds the work an
/// unauthenticated-but-proxy-token-holding caller can ask for.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The issuer Open WebUI writes (`iss`).
pub const ISSUER: &str = "open-webui";

/// The header names Open WebUI is configured with. Defaults are Open WebUI's own; each
/// can be renamed there (`FORWARD_USER_INFO_HEADER_*`) and here
/// (`MAI_OPENWEBUI_HEADER_*`), and the two must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user_name: HeaderName,
    pub user_id: HeaderName,
    pub user_email: HeaderName,
    pub user_role: HeaderName,
    pub chat_id: HeaderName,
    pub jwt: HeaderName,
    /// Ours: an `OPENAI_API_CONFIGS` custom header filled with `{{TASK}}`.
    pub task: HeaderName,
    /// Ours: an `OPENAI_API_CONFIGS` custom header filled with `{{USER_GROUPS}}`.
    pub user_groups: HeaderName,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        let h = HeaderName::from_static;
        IdentityHeaders {
            user_name: h("x-openwebui-user-name"),
            user_id: h("x-openwebui-user-id"),
            user_email: h("x-openwebui-user-email"),
            user_role: h("x-openwebui-user-role"),
            chat_id: h("x-openwebui-chat-id"),
            jwt: h("x-openwebui-user-jwt"),
            task: h("x-mai-task"),
            user_groups: h("x-mai-user-groups"),
        }
    }
}

impl IdentityHeaders {
    fn all(&self) -> [&HeaderName; 8] {
        [
            &self.user_name,
            &self.user_id,
            &self.user_email,
            &self.user_role,
            &self.chat_id,
            &self.jwt,
            &self.task,
            &self.user_groups,
        ]
    }
}

/// Who asked and in which chat, as far as the chat app told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: UserRef,
    pub context: ChatContext,
}

/// Why a request's signed identity was refused. Each is a `reason` label of
/// `mai_identity_rejected_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token on a request that spends.
    Missing,
    /// Not three base64url parts, bad JSON, or a claim of the wrong type or absent.
    Malformed(&'static str),
    /// The header's `alg` is not `HS256` (`none` included).
    Algorithm(String),
    /// The signature does not verify with our secret.
    Signature,
    /// `exp` is more than the leeway in the past.
    Expired { exp: i64, now: i64 },
    /// `iat` is more than the leeway in the future.
    NotYetValid { iat: i64, now: i64 },
    /// `iss` is not `open-webui`.
    Issuer(String),
}

impl Rejection {
    /// Every reason label, so `/metrics` shows each series from the start.
    pub const REASONS: [&'static str; 7] = [
        "missing",
        "malformed",
        "algorithm",
        "signature",
        "expired",
        "not_yet_valid",
        "issuer",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed(_) => "malformed",
            Rejection::Algorithm(_) => "algorithm",
            Rejection::Signature => "signature",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::Issuer(_) => "issuer",
        }
    }

    /// What failed and what to do, for the 401 body. Never holds the token or secret.
    pub fn message(&self, header: &HeaderName) -> String {
        const SAME: &str = "set FORWARD_USER_INFO_HEADER_JWT_SECRET in Open WebUI to the same value as MAI_OPENWEBUI_JWT_SECRET";
        match self {
            Rejection::Missing => format!(
                "this tracker requires a signed user identity (MAI_OPENWEBUI_JWT_SECRET is set) and the request has no {header} header: in Open WebUI set ENABLE_FORWARD_USER_INFO_HEADERS=true and {SAME} (and FORWARD_USER_INFO_HEADER_JWT={header} if renamed); the request was not forwarded"
            ),
            Rejection::Malformed(what) => format!(
                "the {header} header is not a usable Open WebUI token ({what}): {SAME}; the request was not forwarded"
            ),
            Rejection::Algorithm(alg) => format!(
                "the {header} token is signed with {alg:?}; only HS256 is accepted: {SAME}; the request was not forwarded"
            ),
            Rejection::Signature => format!(
                "the {header} token's signature does not match: {SAME}; the request was not forwarded"
            ),
            Rejection::Expired { exp, now } => format!(
                "the {header} token expired {} s ago (exp {exp}, {LEEWAY_SECONDS} s leeway): check that Open WebUI's and the tracker's clocks agree (NTP) and FORWARD_USER_INFO_HEADER_JWT_EXPIRES_SECONDS; the request was not forwarded",
                now - exp
            ),
            Rejection::NotYetValid { iat, now } => format!(
                "the {header} token was issued {} s in the future (iat {iat}, {LEEWAY_SECONDS} s leeway): check that Open WebUI's and the tracker's clocks agree (NTP); the request was not forwarded",
                iat - now
            ),
            Rejection::Issuer(iss) => format!(
                "the {header} token's issuer is {iss:?}, not {ISSUER:?}: only Open WebUI's tokens are accepted; the request was not forwarded"
            ),
        }
    }
}

#[derive(Deserialize)]
struct JwtHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
}

/// Open WebUI's claims (`_mint_forward_user_jwt`). Unknown claims are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    email: Option<String>,
    name: Option<String>,
    iss: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// Checks Open WebUI's HS256 tokens with one secret.
#[derive(Clone)]
pub struct JwtVerifier {
    /// Keyed once; cloned per token (a copy of the two hash states).
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier { key: <hidden> }")
    }
}

impl JwtVerifier {
    pub fn new(secret: &str) -> JwtVerifier {
        JwtVerifier {
            mac: Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes a key of any length"),
        }
    }

    /// The user of a valid token at unix time `now`.
    pub fn verify(&self, token: &[u8], now: i64) -> Result<UserRef, Rejection> {
        let token = trim_ascii(token);
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed("longer than 8 KiB"));
        }
        let mut parts = token.splitn(3, |b| *b == b'.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Rejection::Malformed("not three dot-separated parts"));
        };
        if s.contains(&b'.') {
            return Err(Rejection::Malformed("more than three parts"));
        }
        let header = URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| Rejection::Malformed("header is not base64url"))?;
        let header: JwtHeader<'_> = serde_json::from_slice(&header)
            .map_err(|_| Rejection::Malformed("header is not JSON with an alg"))?;
        // The algorithm is ours to choose, never the token's: anything but HS256
        // (`none` above all) is refused before the signature is looked at.
        if header.alg != "HS256" {
            return Err(Rejection::Algorithm(
                header.alg.chars().take(32).collect::<String>(),
            ));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| Rejection::Malformed("signature is not base64url"))?;
        let mut mac = self.mac.clone();
        mac.update(&token[..h.len() + 1 + p.len()]);
        mac.verify_slice(&sig).map_err(|_| Rejection::Signature)?;
        // Only a token we signed gets its claims read.
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| Rejection::Malformed("payload is not base64url"))?;
        let c: Claims = serde_json::from_slice(&payload).map_err(|_| {
            Rejection::Malformed(
                "claims are not JSON with sub/email/name/iss strings and iat/exp integers",
            )
        })?;
        if c.iss.as_deref() != Some(ISSUER) {
            return Err(Rejection::Issuer(
                c.iss.unwrap_or_default().chars().take(64).collect(),
            ));
        }
        let Some(exp) = c.exp else {
            return Err(Rejection::Malformed("no exp claim"));
        };
        if now > exp.saturating_add(LEEWAY_SECONDS) {
            return Err(Rejection::Expired { exp, now });
        }
        if let Some(iat) = c.iat {
            if iat > now.saturating_add(LEEWAY_SECONDS) {
                return Err(Rejection::NotYetValid { iat, now });
            }
        }
        Ok(UserRef {
            id: c.sub.as_deref().and_then(field),
            email: c.email.as_deref().and_then(field),
            name: c.name.as_deref().and_then(field),
        })
    }
}

/// Reads identities from requests with the tracker's configuration.
#[derive(Debug)]
pub struct IdentityReader {
    pub headers: IdentityHeaders,
    /// `Some` = signed identity required (see the module doc).
    jwt: Option<JwtVerifier>,
    /// A token arrived while no secret is configured (warned once).
    unverified_token_seen: AtomicBool,
}

impl IdentityReader {
    pub fn new(headers: IdentityHeaders, jwt_secret: Option<&str>) -> IdentityReader {
        IdentityReader {
            headers,
            jwt: jwt_secret.map(JwtVerifier::new),
            unverified_token_seen: AtomicBool::new(false),
        }
    }

    pub fn requires_jwt(&self) -> bool {
        self.jwt.is_some()
    }

    /// A header of ours that must not travel upstream (identity, chat, task, groups:
    /// attribution stays with us; OpenRouter gets `user`).
    pub fn is_own_header(&self, name: &HeaderName) -> bool {
        self.headers.all().contains(&name) || name.as_str().starts_with("x-mai-")
    }

    /// The identity of a request; `spends` = the request may cost money (not a read).
    pub fn read(&self, h: &HeaderMap, spends: bool, m: &Metrics) -> Result<Identity, Rejection> {
        let res = self.read_at(h, spends, m, unix_now());
        if let Err(r) = &res {
            m.count_identity_rejected(r.reason());
        }
        res
    }

    fn read_at(
        &self,
        h: &HeaderMap,
        spends: bool,
        m: &Metrics,
        now: i64,
    ) -> Result<Identity, Rejection> {
        let hd = &self.headers;
        let user = match &self.jwt {
            // Signed mode: the plain user headers are never read.
            Some(v) => match h.get(&hd.jwt) {
                Some(t) => v.verify(t.as_bytes(), now)?,
                None if spends => return Err(Rejection::Missing),
                None => UserRef::default(),
            },
            None => {
                if h.contains_key(&hd.jwt)
                    && !self.unverified_token_seen.swap(true, Ordering::Relaxed)
                {
                    // Open WebUI sends the token *instead of* the plain headers: without
                    // the secret these requests are attributed to nobody.
                    tracing::warn!(header = %hd.jwt, "Open WebUI sends signed user identities but MAI_OPENWEBUI_JWT_SECRET is not set: their users are recorded as unknown; set it to Open WebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET");
                }
                self.plain_user(h, m)
            }
        };
        let task = text(h, &hd.task, m).map(|s| {
            let s = percent_decoded(&s, hd.task.as_str(), m);
            field(&s).unwrap_or_else(|| TASK_CHAT.to_owned())
        });
        let groups = text(h, &hd.user_groups, m)
            .and_then(|s| normalize_groups(&percent_decoded(&s, hd.user_groups.as_str(), m)));
        let chat_id = text(h, &hd.chat_id, m).as_deref().and_then(field);
        Ok(Identity {
            user,
            context: ChatContext {
                chat_id,
                task,
                groups,
            },
        })
    }
}

impl IdentityReader {
    /// The user as the plain headers name it (no secret configured).
    fn plain_user(&self, h: &HeaderMap, m: &Metrics) -> UserRef {
        let hd = &self.headers;
        UserRef {
            id: text(h, &hd.user_id, m).as_deref().and_then(field),
            email: text(h, &hd.user_email, m).as_deref().and_then(field),
            name: text(h, &hd.user_name, m)
                .map(|s| percent_decoded(&s, hd.user_name.as_str(), m).into_owned())
                .as_deref()
                .and_then(field),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// A header's value as text: UTF-8 when it is (lossless), else the lossy form,
/// counted and logged; never dropped.
fn text(h: &HeaderMap, name: &HeaderName, m: &Metrics) -> Option<String> {
    let v = h.get(name)?;
    Some(match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            m.identity_invalid_utf8.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(header = %name, "header value is not UTF-8; kept with U+FFFD for the bad bytes");
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
    })
}

/// Percent-decoding as Python's `urllib.parse.quote` encodes: `%XX` sequences are
/// bytes of UTF-8. A `%` not followed by two hex digits stays as it is. When the
/// decoded bytes are not UTF-8 the text is kept undecoded (and counted): it was not
/// written by `quote`.
///
/// For Open WebUI's custom headers (`{{TASK}}`, `{{USER_GROUPS}}`), 0.12.4's
/// `parse_custom_headers` applies `quote(value, safe=punctuation + ' \t')`: non-ASCII
/// is encoded but `%` itself is not, so a group literally named `50%41` reads as
/// `50A`. Nothing can tell those apart; names with `%` followed by two hex digits are
/// the price.
pub fn percent_decoded<'a>(s: &'a str, header: &str, m: &Metrics) -> Cow<'a, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    match percent_encoding::percent_decode_str(s).decode_utf8() {
        Ok(d) => d,
        Err(_) => {
            m.identity_invalid_utf8.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                header,
                "percent-encoded value is not UTF-8 once decoded; kept as sent"
            );
            Cow::Borrowed(s)
        }
    }
}

/// Trimmed, at most [`MAX_FIELD_BYTES`] (cut on a character boundary), `None` if empty.
pub fn field(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(truncate(s, MAX_FIELD_BYTES).to_owned())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `{{USER_GROUPS}}` (comma-separated names) as one key per set of groups: names
/// trimmed, sorted, deduplicated, joined with ", "; `None` when there is none. A user in
/// Finance and Sales is counted once, under "Finance, Sales", so groups sum to the total.
pub fn normalize_groups(s: &str) -> Option<String> {
    let mut names: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    names.dedup();
    field(&names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Tokens minted by PyJWT 2.13.0 (the library of open-webui 0.12.4) exactly as
    /// `_mint_forward_user_jwt` does: `jwt.encode({sub, email, name, role, iss, iat,
    /// exp}, SECRET, algorithm="HS256")` (tests/data/README.md).
    const SECRET: &str = "owui-shared-secret-0123456789abcdef";
    /// iat 1_780_000_000, exp iat + 300; name "Zofia Łukasiewicz" (not encoded in JWTs).
    const PYJWT_VALID: &str = include_str!("../tests/data/pyjwt_valid.txt");
    /// The same claims signed with "another-secret".
    const PYJWT_OTHER_SECRET: &str = include_str!("../tests/data/pyjwt_other_secret.txt");
    /// The same claims, `alg: none`, no signature (PyJWT `algorithm=None`).
    const PYJWT_NONE: &str = include_str!("../tests/data/pyjwt_none.txt");
    /// The same claims with iss "someone-else".
    const PYJWT_OTHER_ISSUER: &str = include_str!("../tests/data/pyjwt_other_issuer.txt");
    const IAT: i64 = 1_780_000_000;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn plain() -> IdentityReader {
        IdentityReader::new(IdentityHeaders::default(), None)
    }

    fn signed() -> IdentityReader {
        IdentityReader::new(IdentityHeaders::default(), Some(SECRET))
    }

    #[test]
    fn polish_names_as_open_webui_quotes_them_are_decoded() {
        let m = Metrics::default();
        for (sent, want) in [
            // quote("Zofia Łukasiewicz", safe=' ')
            (&b"Zofia %C5%81ukasiewicz"[..], "Zofia Łukasiewicz"),
            // quote("Grzegorz Brzęczyszczykiewicz", safe=' ')
            (
                b"Grzegorz Brz%C4%99czyszczykiewicz",
                "Grzegorz Brzęczyszczykiewicz",
            ),
            // quote("Żółć Gęślą", safe=' ')
            (
                b"%C5%BB%C3%B3%C5%82%C4%87 G%C4%99%C5%9Bl%C4%85",
                "Żółć Gęślą",
            ),
            // quote("100% Anna", safe=' '): the % itself is encoded by quote
            (b"100%25 Anna", "100% Anna"),
            // quote("O'Brien & Co", safe=' ')
            (b"O%27Brien %26 Co", "O'Brien & Co"),
            // a raw UTF-8 name (another sender) is kept as is
            ("Łucja Ślęzak".as_bytes(), "Łucja Ślęzak"),
        ] {
            let id = plain()
                .read_at(&headers(&[("x-openwebui-user-name", sent)]), true, &m, IAT)
                .unwrap();
            assert_eq!(id.user.name.as_deref(), Some(want), "{sent:?}");
        }
        assert_eq!(m.identity_invalid_utf8.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn invalid_utf8_is_kept_lossy_and_counted_never_dropped() {
        let m = Metrics::default();
        // Latin-2 "Ł" (0xA3) raw, and a percent-encoding of bytes that are not UTF-8.
        let id = plain()
            .read_at(
                &headers(&[
                    ("x-openwebui-user-name", b"Zofia \xa3ukasiewicz"),
                    ("x-openwebui-user-email", b"zofia@example.pl"),
                    ("x-mai-user-groups", b"Ksi%EAgowo%B6%E6"),
                ]),
                true,
                &m,
                IAT,
            )
            .unwrap();
        assert_eq!(id.user.name.as_deref(), Some("Zofia \u{FFFD}ukasiewicz"));
        assert_eq!(id.user.email.as_deref(), Some("zofia@example.pl"));
        assert_eq!(id.context.groups.as_deref(), Some("Ksi%EAgowo%B6%E6"));
        assert_eq!(m.identity_invalid_utf8.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn fields_are_bounded_on_a_char_boundary() {
        let long = "Ł".repeat(400); // 800 bytes
        let m = Metrics::default();
        let id = plain()
            .read_at(
                &headers(&[("x-openwebui-user-name", long.as_bytes())]),
                true,
                &m,
                IAT,
            )
            .unwrap();
        let n = id.user.name.unwrap();
        assert_eq!(n.len(), MAX_FIELD_BYTES);
        assert!(n.chars().all(|c| c == 'Ł'));
        assert_eq!(truncate("aŁ", 2), "a");
    }

    #[test]
    fn task_chat_and_groups_are_read_in_both_modes() {
        let m = Metrics::default();
        for reader in [plain(), signed()] {
            let mut h = headers(&[
                (
                    "x-openwebui-chat-id",
                    b"6c1f0a2e-1b7a-4d0e-9d0e-0f6a3b2c1d00",
                ),
                ("x-mai-task", b"title_generation"),
                // parse_custom_headers: quote(",".join(names), safe=punctuation+' \t')
                (
                    "x-mai-user-groups",
                    b"Zarz%C4%85d, Ksi%C4%99gowo%C5%9B%C4%87 ,Zarz%C4%85d,,",
                ),
            ]);
            h.insert(
                "x-openwebui-user-jwt",
                HeaderValue::from_static(PYJWT_VALID.trim()),
            );
            let id = reader.read_at(&h, true, &m, IAT + 1).unwrap();
            assert_eq!(
                id.context,
                ChatContext {
                    chat_id: Some("6c1f0a2e-1b7a-4d0e-9d0e-0f6a3b2c1d00".into()),
                    task: Some("title_generation".into()),
                    groups: Some("Księgowość, Zarząd".into()),
                }
            );
        }
        // {{TASK}} is empty for the user's own message; absent = not told.
        let id = plain()
            .read_at(&headers(&[("x-mai-task", b"")]), true, &m, IAT)
            .unwrap();
        assert_eq!(id.context.task.as_deref(), Some(TASK_CHAT));
        let id = plain().read_at(&HeaderMap::new(), true, &m, IAT).unwrap();
        assert_eq!(id.context, ChatContext::default());
        assert_eq!(normalize_groups(" , "), None);
        assert_eq!(normalize_groups("50% Sales"), Some("50% Sales".into()));
    }

    #[test]
    fn a_pyjwt_token_gives_the_signed_user_and_plain_headers_are_ignored() {
        let m = Metrics::default();
        let mut h = headers(&[
            ("x-openwebui-user-id", b"spoofed-id"),
            ("x-openwebui-user-email", b"boss@example.pl"),
            ("x-openwebui-user-name", b"The Boss"),
        ]);
        h.insert(
            "x-openwebui-user-jwt",
            HeaderValue::from_static(PYJWT_VALID.trim()),
        );
        let id = signed().read_at(&h, true, &m, IAT + 10).unwrap();
        assert_eq!(
            id.user,
            UserRef {
                id: Some("0b8d7c3e-5f1a-4c2b-9e6d-7a8b9c0d1e2f".into()),
                email: Some("zofia@example.pl".into()),
                name: Some("Zofia Łukasiewicz".into()),
            }
        );
        // Without the token, the plain headers do not count: refused.
        h.remove("x-openwebui-user-jwt");
        assert_eq!(
            signed().read_at(&h, true, &m, IAT).unwrap_err(),
            Rejection::Missing
        );
        // A read (the model list) may come without one, as nobody.
        let id = signed().read_at(&h, false, &m, IAT).unwrap();
        assert!(id.user.is_unknown());
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        let v = JwtVerifier::new(SECRET);
        let ok = PYJWT_VALID.trim().as_bytes();
        assert!(v.verify(ok, IAT).is_ok());
        // exp = IAT + 300; 30 s leeway.
        assert!(v.verify(ok, IAT + 330).is_ok());
        assert_eq!(
            v.verify(ok, IAT + 331).unwrap_err(),
            Rejection::Expired {
                exp: IAT + 300,
                now: IAT + 331
            }
        );
        assert_eq!(
            v.verify(ok, IAT - 31).unwrap_err(),
            Rejection::NotYetValid {
                iat: IAT,
                now: IAT - 31
            }
        );
        assert!(v.verify(ok, IAT - 30).is_ok());
        assert_eq!(
            v.verify(PYJWT_OTHER_SECRET.trim().as_bytes(), IAT)
                .unwrap_err(),
            Rejection::Signature
        );
        assert_eq!(
            v.verify(PYJWT_NONE.trim().as_bytes(), IAT).unwrap_err(),
            Rejection::Algorithm("none".into())
        );
        assert_eq!(
            v.verify(PYJWT_OTHER_ISSUER.trim().as_bytes(), IAT)
                .unwrap_err(),
            Rejection::Issuer("someone-else".into())
        );
        // A flipped bit in the payload breaks the signature.
        let mut t = ok.to_vec();
        let dot = t.iter().position(|b| *b == b'.').unwrap();
        t[dot + 5] = if t[dot + 5] == b'A' { b'B' } else { b'A' };
        assert_eq!(v.verify(&t, IAT).unwrap_err(), Rejection::Signature);
        for bad in [&b""[..], b"abc", b"a.b", b"a.b.c.d", b"!!.??.##"] {
            assert!(
                matches!(v.verify(bad, IAT), Err(Rejection::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            v.verify(&vec![b'a'; MAX_TOKEN_BYTES + 1], IAT),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn rejections_are_counted_and_say_what_to_do() {
        let m = Metrics::default();
        let r = signed().read(&HeaderMap::new(), true, &m).unwrap_err();
        assert_eq!(r, Rejection::Missing);
        let h = HeaderName::from_static("x-openwebui-user-jwt");
        assert!(r
            .message(&h)
            .contains("FORWARD_USER_INFO_HEADER_JWT_SECRET"));
        assert!(Rejection::Signature
            .message(&h)
            .contains("same value as MAI_OPENWEBUI_JWT_SECRET"));
        let text = m.render("acme", &[]);
        assert!(
            text.contains("mai_identity_rejected_total{org=\"acme\",reason=\"missing\"} 1"),
            "{text}"
        );
        assert!(text.contains("mai_identity_rejected_total{org=\"acme\",reason=\"signature\"} 0"));
    }

    #[test]
    fn own_headers_are_recognised_for_stripping() {
        let r = plain();
        for n in [
            "x-openwebui-user-jwt",
            "x-mai-task",
            "x-mai-user-groups",
            "x-mai-anything",
        ] {
            assert!(r.is_own_header(&HeaderName::from_static(n)), "{n}");
        }
        assert!(!r.is_own_header(&HeaderName::from_static("content-type")));
    }
}
