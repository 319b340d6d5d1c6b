//! Authentication with the KSeF token (`docs/uwierzytelnianie.md`, 2.2) and the
//! Ministry's public keys (`docs/klucze-publiczne-do-szyfrowania.md`).
//!
//! challenge → RSA-OAEP(`{token}|{timestampMs}`) → `POST /auth/ksef-token` → poll
//! `GET /auth/{ref}` until 200 → `POST /auth/token/redeem` → access + refresh token. The
//! access token is refreshed a minute before it expires; a 401 drops both tokens and
//! authenticates once more.

use crate::client::Inner;
use crate::crypto::{b64, b64_decode, key_from_certificate_der, rsa_oaep_sha256, MinistryKey};
use crate::error::{auth_advice, KsefError};
use crate::http::{backoff, Call, Reply, Retry};
use crate::limits::{Group, RateLimits};
use crate::token::Bearer;
use crate::wire;
use chrono::{DateTime, Utc};
use reqwest::Method;
use std::time::Duration;
use tokio::time::Instant;

/// The access token is replaced this long before KSeF says it expires.
const ACCESS_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How long `GET /auth/{ref}` is polled for a verdict.
const AUTH_STATUS_DEADLINE: Duration = Duration::from_secs(120);
/// The certificate list is fetched again after this long (the C# client: at most daily).
const KEYS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

pub(crate) struct Tokens {
    access: Bearer,
    access_until: DateTime<Utc>,
    refresh: Bearer,
    refresh_until: DateTime<Utc>,
    /// KSeF's clock minus ours, from the challenge: expiry times are KSeF's.
    skew: chrono::TimeDelta,
}

impl Tokens {
    fn access_fresh(&self, now: DateTime<Utc>) -> bool {
        self.access_until - self.skew - ACCESS_MARGIN > now
    }

    fn refresh_fresh(&self, now: DateTime<Utc>) -> bool {
        self.refresh_until - self.skew - ACCESS_MARGIN > now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUsage {
    KsefTokenEncryption,
    SymmetricKeyEncryption,
}

impl KeyUsage {
    fn name(self) -> &'static str {
        match self {
            KeyUsage::KsefTokenEncryption => "KsefTokenEncryption",
            KeyUsage::SymmetricKeyEncryption => "SymmetricKeyEncryption",
        }
    }
}

pub(crate) struct KeyCache {
    fetched: Instant,
    list: Vec<wire::PublicKeyCertificate>,
}

/// A key to encrypt with, and the `publicKeyId` to name it by in the request.
pub(crate) struct ChosenKey {
    pub key: MinistryKey,
    pub public_key_id: Option<String>,
}

/// The certificate for `usage` valid at `now`; of several, the latest `validFrom` (the
/// docs' rule for a planned rotation, and the C# client's).
pub(crate) fn choose_certificate(
    list: &[wire::PublicKeyCertificate],
    usage: KeyUsage,
    now: DateTime<Utc>,
) -> Option<&wire::PublicKeyCertificate> {
    list.iter()
        .filter(|c| c.usage.iter().any(|u| u == usage.name()))
        .filter(|c| c.valid_from <= now && now < c.valid_to)
        .max_by_key(|c| c.valid_from)
}

impl Inner {
    /// The Ministry's key for `usage`, from the cached list (fetched again when old, when
    /// nothing in it is valid now, or when KSeF said the key we used is retired: 21470).
    pub(crate) async fn ministry_key(
        &self,
        usage: KeyUsage,
        force_refresh: bool,
    ) -> Result<ChosenKey, KsefError> {
        const STEP: &str = "GET /security/public-key-certificates";
        let mut cache = self.keys.lock().await;
        let mut fresh = false;
        if force_refresh
            || cache
                .as_ref()
                .is_none_or(|c| c.fetched.elapsed() > KEYS_MAX_AGE)
        {
            *cache = Some(self.fetch_certificates().await?);
            fresh = true;
        }
        let now = Utc::now();
        let mut chosen =
            choose_certificate(&cache.as_ref().expect("filled above").list, usage, now).cloned();
        if chosen.is_none() && !fresh {
            *cache = Some(self.fetch_certificates().await?);
            chosen = choose_certificate(&cache.as_ref().expect("filled above").list, usage, now)
                .cloned();
        }
        let list = &cache.as_ref().expect("filled above").list;
        let Some(cert) = chosen else {
            let have: Vec<String> = list
                .iter()
                .map(|c| {
                    format!(
                        "{} valid {}..{}",
                        c.usage.join("+"),
                        c.valid_from.format("%Y-%m-%d"),
                        c.valid_to.format("%Y-%m-%d")
                    )
                })
                .collect();
            return Err(KsefError::protocol(
                STEP,
                format!(
                    "no {} certificate valid now ({} listed: {}); check the machine's clock",
                    usage.name(),
                    list.len(),
                    have.join(", ")
                ),
            ));
        };
        let der = b64_decode(&cert.certificate).map_err(|e| {
            KsefError::protocol(
                STEP,
                format!("{} certificate is not Base64 ({e})", usage.name()),
            )
        })?;
        let key = key_from_certificate_der(&der)
            .map_err(|e| KsefError::protocol(STEP, format!("{} certificate: {e}", usage.name())))?;
        if let Some(id) = &cert.public_key_id {
            if *id != key.spki_sha256 {
                tracing::warn!(
                    usage = usage.name(),
                    listed = %id,
                    computed = %key.spki_sha256,
                    "the publicKeyId KSeF lists is not the SHA-256 of the certificate's key; sending KSeF's id"
                );
            }
        }
        Ok(ChosenKey {
            key,
            public_key_id: cert.public_key_id,
        })
    }

    async fn fetch_certificates(&self) -> Result<KeyCache, KsefError> {
        const STEP: &str = "GET /security/public-key-certificates";
        let call = Call::new(
            Method::GET,
            STEP,
            "/security/public-key-certificates".into(),
            Group::Public,
        );
        let list: Vec<wire::PublicKeyCertificate> = self.http.execute(&call).await?.json(STEP)?;
        tracing::debug!(count = list.len(), "KSeF public key certificates fetched");
        Ok(KeyCache {
            fetched: Instant::now(),
            list,
        })
    }

    /// A usable access token: the current one, a refreshed one, or a new authentication.
    /// Callers wait for one another, so a batch authenticates once.
    pub(crate) async fn access_token(&self) -> Result<Bearer, KsefError> {
        let mut state = self.tokens.lock().await;
        let now = Utc::now();
        if let Some(t) = state.as_mut() {
            if t.access_fresh(now) {
                return Ok(t.access.clone());
            }
            if t.refresh_fresh(now) {
                match self.refresh(&t.refresh).await {
                    Ok(access) => {
                        t.access = Bearer::new(access.token);
                        t.access_until = access.valid_until;
                        tracing::debug!("KSeF access token refreshed");
                        return Ok(t.access.clone());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "KSeF refresh failed; authenticating again");
                    }
                }
            }
        }
        *state = None;
        let t = self.authenticate().await?;
        let access = t.access.clone();
        *state = Some(t);
        Ok(access)
    }

    /// After a 401 with `used`: forget the tokens, unless another caller already replaced
    /// them.
    async fn invalidate(&self, used: &Bearer) {
        let mut state = self.tokens.lock().await;
        if state.as_ref().is_some_and(|t| t.access == *used) {
            *state = None;
        }
    }

    /// Runs a call that needs the access token; a 401 triggers one new authentication and
    /// one repeat (KSeF refused the token, so the request did nothing).
    pub(crate) async fn authorized(
        &self,
        make: impl Fn() -> Result<Call, KsefError>,
    ) -> Result<Reply, KsefError> {
        let token = self.access_token().await?;
        match self.http.execute(&make()?.bearer(&token)).await {
            Err(KsefError::Api { status: 401, .. }) => {
                tracing::info!("KSeF answered 401; authenticating again");
                self.invalidate(&token).await;
                let token = self.access_token().await?;
                self.http.execute(&make()?.bearer(&token)).await
            }
            r => r,
        }
    }

    async fn refresh(&self, refresh: &Bearer) -> Result<wire::TokenInfo, KsefError> {
        const STEP: &str = "POST /auth/token/refresh";
        let call = Call::new(
            Method::POST,
            STEP,
            "/auth/token/refresh".into(),
            Group::Public,
        )
        .bearer(refresh)
        .retry(Retry::Idempotent);
        let r: wire::AuthenticationTokenRefresh = self.http.execute(&call).await?.json(STEP)?;
        Ok(r.access_token)
    }

    /// The whole token flow, again on a stale challenge, a retired key (21470) or a
    /// transient failure (at most three attempts).
    async fn authenticate(&self) -> Result<Tokens, KsefError> {
        let mut force_keys = false;
        let mut attempt = 0;
        loop {
            match self.authenticate_once(force_keys).await {
                Ok(t) => {
                    tracing::info!(nip = %self.config.seller_nip, token = %self.token, "authenticated in KSeF");
                    return Ok(t);
                }
                Err(e) if attempt < 2 && e.has_code(21470) => force_keys = true,
                Err(e) if attempt < 2 && (e.has_code(21111) || e.is_temporary()) => {
                    tracing::warn!(error = %e, "KSeF authentication failed; trying again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    async fn authenticate_once(&self, force_keys: bool) -> Result<Tokens, KsefError> {
        if self.token.is_empty() {
            return Err(KsefError::config(
                "the KSeF token is empty: store the seller's KSeF token first".into(),
            ));
        }
        let key = self
            .ministry_key(KeyUsage::KsefTokenEncryption, force_keys)
            .await?;

        const CHALLENGE: &str = "POST /auth/challenge";
        let call = Call::new(
            Method::POST,
            CHALLENGE,
            "/auth/challenge".into(),
            Group::Public,
        )
        .retry(Retry::Idempotent);
        let challenge: wire::Challenge = self.http.execute(&call).await?.json(CHALLENGE)?;
        let skew = DateTime::from_timestamp_millis(challenge.timestamp_ms)
            .map(|server| server - Utc::now())
            .unwrap_or_default();

        const INIT: &str = "POST /auth/ksef-token";
        let plaintext = format!("{}|{}", self.token.expose(), challenge.timestamp_ms);
        let encrypted = rsa_oaep_sha256(&key.key.key, plaintext.as_bytes()).map_err(|detail| {
            KsefError::Crypto {
                step: INIT.into(),
                detail: format!("cannot encrypt the KSeF token: {detail}"),
            }
        })?;
        drop(plaintext);
        let body = wire::InitTokenAuthenticationRequest {
            challenge: &challenge.challenge,
            context_identifier: wire::ContextIdentifier {
                kind: "Nip",
                value: &self.config.seller_nip,
            },
            encrypted_token: b64(&encrypted),
            public_key_id: key.public_key_id.as_deref(),
        };
        let call =
            Call::new(Method::POST, INIT, "/auth/ksef-token".into(), Group::Public).json(&body)?;
        let init: wire::AuthenticationInitResponse = self.http.execute(&call).await?.json(INIT)?;
        let operation = Bearer::new(init.authentication_token.token);
        let reference = crate::client::path_segment(INIT, &init.reference_number)?;

        const STATUS: &str = "GET /auth/{referenceNumber}";
        let deadline = Instant::now() + AUTH_STATUS_DEADLINE;
        let mut delay = Duration::from_millis(200);
        loop {
            let call = Call::new(
                Method::GET,
                STATUS,
                format!("/auth/{reference}"),
                Group::Public,
            )
            .bearer(&operation);
            let s: wire::AuthenticationOperationStatus =
                self.http.execute(&call).await?.json(STATUS)?;
            match s.status.code {
                200 => break,
                100 => {}
                code => {
                    return Err(KsefError::AuthFailed {
                        nip: self.config.seller_nip.clone(),
                        code,
                        description: s.status.description,
                        details: s.status.details.unwrap_or_default(),
                        advice: auth_advice(code, &self.config.seller_nip),
                    })
                }
            }
            if Instant::now() + delay > deadline {
                return Err(KsefError::Timeout {
                    step: STATUS.into(),
                    waited: AUTH_STATUS_DEADLINE,
                    advice: "KSeF is still verifying the authentication: retry later".into(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        }

        const REDEEM: &str = "POST /auth/token/redeem";
        // Tokens can be redeemed once: a repeat after KSeF acted would be refused, so a
        // failure here restarts the whole flow instead.
        let call = Call::new(
            Method::POST,
            REDEEM,
            "/auth/token/redeem".into(),
            Group::Public,
        )
        .bearer(&operation);
        let t: wire::AuthenticationTokens = self.http.execute(&call).await?.json(REDEEM)?;
        Ok(Tokens {
            access: Bearer::new(t.access_token.token),
            access_until: t.access_token.valid_until,
            refresh: Bearer::new(t.refresh_token.token),
            refresh_until: t.refresh_token.valid_until,
            skew,
        })
    }

    /// Paces by what KSeF says applies to this context (`GET /rate-limits`), once per
    /// client, unless the configuration fixes the limits. Without an answer the
    /// environment's published limits stay.
    pub(crate) async fn load_rate_limits(&self) {
        if self.config.rate_limits.is_some() {
            return;
        }
        self.limits_loaded
            .get_or_init(|| async {
                const STEP: &str = "GET /rate-limits";
                let r = self
                    .authorized(|| {
                        Ok(Call::new(
                            Method::GET,
                            STEP,
                            "/rate-limits".into(),
                            Group::Other,
                        ))
                    })
                    .await
                    .and_then(|reply| reply.json::<wire::EffectiveApiRateLimits>(STEP));
                match r {
                    Ok(l) => {
                        let limits = to_rate_limits(&l);
                        tracing::info!(?limits, "pacing by KSeF's limits for this context");
                        self.http.limiter.set_limits(limits);
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        environment = %self.config.environment,
                        "KSeF's current limits unknown; pacing by the published ones"
                    ),
                }
            })
            .await;
    }
}

fn to_rate_limits(l: &wire::EffectiveApiRateLimits) -> RateLimits {
    let v = |x: wire::RateLimitValues| crate::limits::Limit {
        per_second: x.per_second,
        per_minute: x.per_minute,
        per_hour: x.per_hour,
    };
    RateLimits {
        online_session: v(l.online_session),
        invoice_send: v(l.invoice_send),
        invoice_status: v(l.invoice_status),
        session_misc: v(l.session_misc),
        other: v(l.other),
        public: RateLimits::PRODUCTION.public,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(usage: &str, from: &str, to: &str, id: &str) -> wire::PublicKeyCertificate {
        wire::PublicKeyCertificate {
            certificate: String::new(),
            public_key_id: Some(id.into()),
            valid_from: from.parse().unwrap(),
            valid_to: to.parse().unwrap(),
            usage: vec![usage.into()],
        }
    }

    #[test]
    fn chooses_the_newest_certificate_valid_now_for_the_usage() {
        // docs/klucze-publiczne-do-szyfrowania.md 3.2.1: during a planned rotation both
        // the old and the new certificate are listed.
        let list = vec![
            cert(
                "KsefTokenEncryption",
                "2025-09-29T06:03:19Z",
                "2027-09-29T06:03:18Z",
                "token",
            ),
            cert(
                "SymmetricKeyEncryption",
                "2025-09-29T06:17:45Z",
                "2027-09-29T06:17:44Z",
                "old",
            ),
            cert(
                "SymmetricKeyEncryption",
                "2027-03-14T06:12:41Z",
                "2029-03-14T06:12:40Z",
                "new",
            ),
            cert(
                "SomethingElse",
                "2020-01-01T00:00:00Z",
                "2030-01-01T00:00:00Z",
                "other",
            ),
        ];
        let pick = |usage, at: &str| {
            choose_certificate(&list, usage, at.parse().unwrap())
                .and_then(|c| c.public_key_id.clone())
        };
        use KeyUsage::*;
        assert_eq!(
            pick(SymmetricKeyEncryption, "2026-12-06T00:00:00Z").as_deref(),
            Some("old")
        );
        assert_eq!(
            pick(SymmetricKeyEncryption, "2027-05-01T00:00:00Z").as_deref(),
            Some("new")
        );
        assert_eq!(
            pick(SymmetricKeyEncryption, "2029-03-14T06:12:40Z"),
            None,
            "validTo is exclusive"
        );
        assert_eq!(
            pick(KsefTokenEncryption, "2026-12-06T00:00:00Z").as_deref(),
            Some("token")
        );
        assert_eq!(
            pick(KsefTokenEncryption, "2025-01-01T00:00:00Z"),
            None,
            "not yet valid"
        );
    }

    #[test]
    fn tokens_are_replaced_a_minute_early_on_ksef_time() {
        let now: DateTime<Utc> = "2026-12-06T12:00:00Z".parse().unwrap();
        let t = |until: &str, skew_s: i64| Tokens {
            access: Bearer::new("a".into()),
            access_until: until.parse().unwrap(),
            refresh: Bearer::new("r".into()),
            refresh_until: "2026-12-13T12:00:00Z".parse().unwrap(),
            skew: chrono::TimeDelta::seconds(skew_s),
        };
        assert!(t("2026-12-06T12:01:01Z", 0).access_fresh(now));
        assert!(!t("2026-12-06T12:01:00Z", 0).access_fresh(now));
        // KSeF's clock is 5 minutes ahead of ours: its 12:04 is our 11:59.
        assert!(!t("2026-12-06T12:04:00Z", 300).access_fresh(now));
        assert!(t("2026-12-06T12:04:00Z", -300).access_fresh(now));
        assert!(t("2026-12-06T12:01:01Z", 0).refresh_fresh(now));
    }

    #[test]
    fn rate_limits_from_the_contract() {
        let l: wire::EffectiveApiRateLimits = serde_json::from_str(include_str!(
            "../tests/fixtures/contract/rate-limits.200.json"
        ))
        .unwrap();
        assert_eq!(to_rate_limits(&l), RateLimits::PRODUCTION);
    }
}
