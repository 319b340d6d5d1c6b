//! Configuration from the environment (12-factor), with the seed system's names.
//!
//! Every secret can also come from `<NAME>_FILE` (Docker secrets). Parsing is a pure
//! function over a lookup so tests need no process environment.

use crate::identity::IdentityHeaders;
use mai_core::openrouter::{SecretKey, DEFAULT_BASE_URL};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {name} is missing: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("setting {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("setting {name}_FILE={path:?} cannot be read: {detail}; mount the secret file or set {name} directly")]
    File {
        name: &'static str,
        path: String,
        detail: String,
    },
}

/// A token or secret that must not reach a log: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Log output shape (`MAI_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Default header of the Broadcast webhook's secret (lowercase: HTTP header names are
/// case-insensitive, `X-Mai-Webhook-Secret` in the destination's JSON works).
pub const DEFAULT_WEBHOOK_SECRET_HEADER: &str = "x-mai-webhook-secret";

#[derive(Debug, Clone)]
pub struct Config {
    pub openrouter_api_key: SecretKey,
    pub openrouter_base_url: String,
    pub provisioning_key: Option<SecretKey>,
    pub org_id: String,
    pub org_name: String,
    pub listen: SocketAddr,
    /// `MAI_TRACKER_INTERNAL_LISTEN`: a second, plain-HTTP listener for the chat app on
    /// the client's private network when the main one serves HTTPS (never published).
    pub internal_listen: Option<SocketAddr>,
    pub db_path: PathBuf,
    /// HTTPS on the listener ([`crate::tls`]); `None` = plain HTTP.
    pub tls: Option<crate::tls::TlsSource>,
    pub proxy_token: Secret,
    pub read_token: Secret,
    pub admin_token: Secret,
    /// The Broadcast webhook's shared secret; `None` = the webhook is off (404).
    /// OpenRouter cannot sign deliveries (spec 8): the destination sends this secret in
    /// a static custom header, compared in constant time.
    pub webhook_secret: Option<Secret>,
    /// The header carrying [`Self::webhook_secret`] (`MAI_WEBHOOK_SECRET_HEADER`).
    pub webhook_secret_header: http::HeaderName,
    /// The OpenRouter name of the key in `OPENROUTER_API_KEY` (what Broadcast spans carry);
    /// learned from the management API when one is configured, from the console at each
    /// hand-over after that.
    pub openrouter_key_name: Option<String>,
    /// `None` = periodic reconciliation disabled (interval 0); on-demand still works.
    pub sync_interval: Option<Duration>,
    pub sync_days_back: u32,
    pub log_format: LogFormat,
    /// Body size, timeouts on both sides, connection cap, admin rate ([`crate::limits`]).
    pub limits: crate::limits::Limits,
    /// How long in-flight streams may run after SIGTERM.
    pub drain_timeout: Duration,
    /// Retired settings found set (`MAI_MARKUP_RATE`, `MAI_MONTHLY_LIMIT_USD`): the
    /// markup and the limit are the fleet file's now, pushed by the console with
    /// `PUT /api/v1/admin/terms`. A tracker started from an old compose file must keep
    /// metering, so they are not an error; start-up names them in one warning.
    pub retired_settings: Vec<&'static str>,
    /// Extra CA certificates (PEM) trusted for OpenRouter besides the public roots: for
    /// a TLS-inspecting corporate proxy, or the simulator's made-up CA in tests.
    pub upstream_ca_pem: Option<Vec<u8>>,
    /// Most proxied requests one upstream connection pool carries at once; see
    /// [`crate::upstream`].
    pub upstream_streams_per_connection: usize,
    /// Sanity caps on one event (`MAI_MAX_EVENT_COST_USD`, default 1000;
    /// `MAI_MAX_EVENT_TOKENS`, default 100000000): above them an event is refused
    /// (422 on the API, counted in `/metrics`), never billed.
    pub caps: mai_core::usage::Caps,
    /// Open WebUI's `FORWARD_USER_INFO_HEADER_JWT_SECRET`: when set, the user comes only
    /// from its signed token and requests that spend without a valid one are refused
    /// ([`crate::identity`]).
    pub openwebui_jwt_secret: Option<Secret>,
    /// The header names Open WebUI sends (`MAI_OPENWEBUI_HEADER_*`, defaults Open WebUI's).
    pub openwebui_headers: IdentityHeaders,
}

/// Shortest `MAI_OPENWEBUI_JWT_SECRET`: HS256 wants a key of at least the hash size
/// (RFC 7518 3.2; PyJWT warns below it too).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &'static str| -> Option<String> {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &'static str| -> Result<Option<String>, ConfigError> {
            if let Some(v) = var(name) {
                return Ok(Some(v));
            }
            let file_var = format!("{name}_FILE");
            match get(&file_var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                None => Ok(None),
                Some(path) => std::fs::read_to_string(&path)
                    .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
                    .map_err(|e| ConfigError::File {
                        name,
                        path,
                        detail: e.to_string(),
                    }),
            }
        };
        let required_secret = |name: &'static str, hint: &'static str| {
            secret(name)?.ok_or(ConfigError::Missing { name, hint })
        };
        let invalid = |name: &'static str, value: &str, reason: String| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason,
        };

        let api_key = required_secret(
            "OPENROUTER_API_KEY",
            "set the client's OpenRouter key (sk-or-v1-…) or OPENROUTER_API_KEY_FILE",
        )?;
        if api_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            // Never echo the key itself.
            return Err(invalid(
                "OPENROUTER_API_KEY",
                &mai_core::secret::mask_key(&api_key),
                "contains whitespace or control characters".into(),
            ));
        }
        let base = var("OPENROUTER_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        match url_scheme(&base) {
            Some("http") | Some("https") => {}
            _ => {
                return Err(invalid(
                    "OPENROUTER_BASE_URL",
                    &base,
                    format!("must be an http(s) URL such as {DEFAULT_BASE_URL}"),
                ))
            }
        }
        let provisioning_key = secret("OPENROUTER_PROVISIONING_KEY")?.map(SecretKey::new);
        let org_id = var("MAI_ORG_ID").ok_or(ConfigError::Missing {
            name: "MAI_ORG_ID",
            hint: "set the client's organisation id, e.g. acme",
        })?;
        if org_id.len() > 128
            || !org_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "MAI_ORG_ID",
                &org_id,
                "use 1-128 characters from a-z, A-Z, 0-9, '-', '_', '.'".into(),
            ));
        }
        let org_name = var("MAI_ORG_NAME").unwrap_or_else(|| org_id.clone());
        let listen = match var("MAI_TRACKER_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(v) => SocketAddr::from_str(&v).map_err(|e| {
                invalid(
                    "MAI_TRACKER_LISTEN",
                    &v,
                    format!("{e}; use host:port such as 0.0.0.0:8080"),
                )
            })?,
        };
        let internal_listen = match var("MAI_TRACKER_INTERNAL_LISTEN") {
            None => None,
            Some(v) => Some(SocketAddr::from_str(&v).map_err(|e| {
                invalid(
                    "MAI_TRACKER_INTERNAL_LISTEN",
                    &v,
                    format!("{e}; use host:port such as 0.0.0.0:8081 (plain HTTP for the chat app on the private network)"),
                )
            })?),
        };
        let db_path = PathBuf::from(
            var("MAI_TRACKER_DB").unwrap_or_else(|| "/data/tracker.sqlite".to_owned()),
        );
        // MAI_TRACKER_TLS: on | off | auto (default). auto = HTTPS unless the listen
        // address is loopback: a tracker reachable from other machines serves TLS unless
        // the operator says otherwise (a listener on 127.0.0.1 is reached only through
        // this machine, e.g. an SSH tunnel or a reverse proxy, and the tests and the demo
        // fleet run there). The console refuses plain http:// to another machine anyway
        // unless its fleet entry says insecure_http = true.
        let tls_cert = var("MAI_TRACKER_TLS_CERT").map(PathBuf::from);
        let tls_key = var("MAI_TRACKER_TLS_KEY").map(PathBuf::from);
        let tls_mode = var("MAI_TRACKER_TLS");
        let tls_on = match tls_mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => !listen.ip().is_loopback(),
            Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(_) => return Err(invalid(
                "MAI_TRACKER_TLS",
                tls_mode.as_deref().unwrap_or_default(),
                "use on, off or auto (auto: HTTPS unless MAI_TRACKER_LISTEN is a loopback address)"
                    .into(),
            )),
        };
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => {
                if !tls_on {
                    return Err(invalid(
                        "MAI_TRACKER_TLS",
                        tls_mode.as_deref().unwrap_or("auto"),
                        "MAI_TRACKER_TLS_CERT and _KEY are set but TLS is off; remove them or set MAI_TRACKER_TLS=on".into(),
                    ));
                }
                Some(crate::tls::TlsSource::Files { cert, key })
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    name: "MAI_TRACKER_TLS_KEY",
                    hint: "MAI_TRACKER_TLS_CERT and MAI_TRACKER_TLS_KEY go together (PEM files of the certificate chain and its private key)",
                })
            }
            (None, None) if tls_on => Some(crate::tls::TlsSource::SelfSigned {
                dir: db_path
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            }),
            (None, None) => None,
        };
        let token = |name: &'static str| -> Result<String, ConfigError> {
            let t = required_secret(name, "set a random token of at least 16 characters")?;
            if t.len() < 16 {
                return Err(ConfigError::Invalid {
                    name,
                    value: "<hidden>".into(),
                    reason: format!("is {} characters; use at least 16", t.len()),
                });
            }
            Ok(t)
        };
        let proxy_token = token("MAI_TRACKER_PROXY_TOKEN")?;
        let read_token = token("MAI_TRACKER_READ_TOKEN")?;
        let admin_token = token("MAI_TRACKER_ADMIN_TOKEN")?;
        if proxy_token == read_token || proxy_token == admin_token || read_token == admin_token {
            return Err(ConfigError::Invalid {
                name: "MAI_TRACKER_PROXY_TOKEN",
                value: "<hidden>".into(),
                reason: "the proxy, read and admin tokens must all differ".into(),
            });
        }
        let webhook_secret = secret("MAI_WEBHOOK_SECRET")?;
        if let Some(s) = &webhook_secret {
            // A static header secret is all that guards the webhook: make it unguessable.
            if s.len() < 16 {
                return Err(ConfigError::Invalid {
                    name: "MAI_WEBHOOK_SECRET",
                    value: "<hidden>".into(),
                    reason: format!("is {} characters; use at least 16 random ones", s.len()),
                });
            }
            if !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::Invalid {
                    name: "MAI_WEBHOOK_SECRET",
                    value: "<hidden>".into(),
                    reason: "must be printable ASCII without spaces (it travels in an HTTP header)"
                        .into(),
                });
            }
        }
        let webhook_secret_header = match var("MAI_WEBHOOK_SECRET_HEADER") {
            None => http::HeaderName::from_static(DEFAULT_WEBHOOK_SECRET_HEADER),
            Some(v) => http::HeaderName::from_bytes(v.as_bytes()).map_err(|_| {
                invalid(
                    "MAI_WEBHOOK_SECRET_HEADER",
                    &v,
                    "is not an HTTP header name; use e.g. X-Mai-Webhook-Secret".into(),
                )
            })?,
        };
        let openrouter_key_name = var("OPENROUTER_API_KEY_NAME");
        let sync_interval = match var("OPENROUTER_USAGE_SYNC_INTERVAL") {
            None => Some(Duration::from_secs(600)),
            Some(v) => match v.parse::<u64>() {
                Ok(0) => None,
                Ok(n) => Some(Duration::from_secs(n)),
                Err(_) => {
                    return Err(invalid(
                        "OPENROUTER_USAGE_SYNC_INTERVAL",
                        &v,
                        "must be whole seconds (0 disables)".into(),
                    ))
                }
            },
        };
        let sync_days_back = match var("OPENROUTER_USAGE_SYNC_DAYS_BACK") {
            None => 1,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=30).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "OPENROUTER_USAGE_SYNC_DAYS_BACK",
                        &v,
                        "must be a whole number of days from 1 to 30".into(),
                    ))
                }
            },
        };
        let log_format = match var("MAI_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(v) => return Err(invalid("MAI_LOG_FORMAT", v, "use text or json".into())),
        };
        let limits = crate::limits::Limits::from_lookup(var).map_err(|e| ConfigError::Invalid {
            name: e.name,
            value: e.value.clone(),
            reason: format!("must be a whole number from {} to {}", e.min, e.max),
        })?;
        let drain_timeout = match var("MAI_TRACKER_DRAIN_SECONDS") {
            None => Duration::from_secs(25),
            Some(v) => Duration::from_secs(v.parse::<u64>().map_err(|_| {
                invalid(
                    "MAI_TRACKER_DRAIN_SECONDS",
                    &v,
                    "must be whole seconds".into(),
                )
            })?),
        };
        let retired_settings = crate::terms::RETIRED_ENV
            .into_iter()
            .filter(|name| var(name).is_some())
            .collect();
        let upstream_ca_pem = match var("MAI_UPSTREAM_CA_CERT") {
            None => None,
            Some(path) => {
                let pem = std::fs::read(&path).map_err(|e| {
                    invalid(
                        "MAI_UPSTREAM_CA_CERT",
                        &path,
                        format!("cannot be read ({e}); point it at a PEM file of CA certificates"),
                    )
                })?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certs) if !certs.is_empty() => Some(pem),
                    Ok(_) => {
                        return Err(invalid(
                            "MAI_UPSTREAM_CA_CERT",
                            &path,
                            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                        ))
                    }
                    Err(e) => {
                        return Err(invalid(
                            "MAI_UPSTREAM_CA_CERT",
                            &path,
                            format!("is not a PEM certificate bundle: {e}"),
                        ))
                    }
                }
            }
        };
        let upstream_streams_per_connection = match var("MAI_UPSTREAM_STREAMS_PER_CONNECTION") {
            None => 100,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "MAI_UPSTREAM_STREAMS_PER_CONNECTION",
                        &v,
                        "must be a whole number from 1 to 10000".into(),
                    ))
                }
            },
        };
        let defaults = mai_core::usage::Caps::DEFAULT;
        let absolute = mai_core::usage::Caps::ABSOLUTE;
        let max_cost_usd = match var("MAI_MAX_EVENT_COST_USD") {
            None => defaults.max_cost_usd,
            Some(v) => match rust_decimal::Decimal::from_str(&v) {
                Ok(d) if d > rust_decimal::Decimal::ZERO && d <= absolute.max_cost_usd => d,
                _ => {
                    return Err(invalid(
                        "MAI_MAX_EVENT_COST_USD",
                        &v,
                        format!(
                            "must be a positive decimal of USD up to {} (default {})",
                            absolute.max_cost_usd, defaults.max_cost_usd
                        ),
                    ))
                }
            },
        };
        let max_tokens = match var("MAI_MAX_EVENT_TOKENS") {
            None => defaults.max_tokens,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 && n <= absolute.max_tokens => n,
                _ => {
                    return Err(invalid(
                        "MAI_MAX_EVENT_TOKENS",
                        &v,
                        format!(
                            "must be a whole number from 1 to {} (default {})",
                            absolute.max_tokens, defaults.max_tokens
                        ),
                    ))
                }
            },
        };
        let openwebui_jwt_secret = secret("MAI_OPENWEBUI_JWT_SECRET")?;
        if let Some(s) = &openwebui_jwt_secret {
            if s.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    name: "MAI_OPENWEBUI_JWT_SECRET",
                    value: "<hidden>".into(),
                    reason: format!(
                        "is {} bytes; use at least {MIN_JWT_SECRET_BYTES} random characters (e.g. openssl rand -hex 32), the same in Open WebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET",
                        s.len()
                    ),
                });
            }
        }
        let mut openwebui_headers = IdentityHeaders::default();
        for (name, slot) in [
            (
                "MAI_OPENWEBUI_HEADER_USER_NAME",
                &mut openwebui_headers.user_name,
            ),
            (
                "MAI_OPENWEBUI_HEADER_USER_ID",
                &mut openwebui_headers.user_id,
            ),
            (
                "MAI_OPENWEBUI_HEADER_USER_EMAIL",
                &mut openwebui_headers.user_email,
            ),
            (
                "MAI_OPENWEBUI_HEADER_USER_ROLE",
                &mut openwebui_headers.user_role,
            ),
            (
                "MAI_OPENWEBUI_HEADER_CHAT_ID",
                &mut openwebui_headers.chat_id,
            ),
            ("MAI_OPENWEBUI_HEADER_JWT", &mut openwebui_headers.jwt),
            ("MAI_OPENWEBUI_HEADER_TASK", &mut openwebui_headers.task),
            (
                "MAI_OPENWEBUI_HEADER_USER_GROUPS",
                &mut openwebui_headers.user_groups,
            ),
        ] {
            if let Some(v) = var(name) {
                *slot = http::HeaderName::from_bytes(v.as_bytes()).map_err(|_| {
                    invalid(
                        name,
                        &v,
                        "is not an HTTP header name; use letters, digits and '-', as in Open WebUI's setting".into(),
                    )
                })?;
            }
        }
        Ok(Config {
            openrouter_api_key: SecretKey::new(api_key),
            openrouter_base_url: base.trim_end_matches('/').to_owned(),
            provisioning_key,
            org_id,
            org_name,
            listen,
            internal_listen,
            db_path,
            tls,
            proxy_token: Secret(proxy_token),
            read_token: Secret(read_token),
            admin_token: Secret(admin_token),
            webhook_secret: webhook_secret.map(Secret),
            webhook_secret_header,
            openrouter_key_name,
            sync_interval,
            sync_days_back,
            log_format,
            limits,
            drain_timeout,
            retired_settings,
            upstream_ca_pem,
            upstream_streams_per_connection,
            caps: mai_core::usage::Caps {
                max_cost_usd,
                max_tokens,
            },
            openwebui_jwt_secret: openwebui_jwt_secret.map(Secret),
            openwebui_headers,
        })
    }
}

fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    (!rest.is_empty()).then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                "OPENROUTER_API_KEY",
                "sk-or-v1-abcdef0123456789abcd".to_owned(),
            ),
            ("MAI_ORG_ID", "acme".to_owned()),
            ("MAI_TRACKER_PROXY_TOKEN", "p".repeat(20)),
            ("MAI_TRACKER_READ_TOKEN", "r".repeat(20)),
            ("MAI_TRACKER_ADMIN_TOKEN", "a".repeat(20)),
        ])
    }

    fn parse(m: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = parse(&base()).unwrap();
        assert_eq!(c.openrouter_base_url, DEFAULT_BASE_URL);
        assert!(c.retired_settings.is_empty());
        assert_eq!(c.sync_interval, Some(Duration::from_secs(600)));
        assert_eq!(c.sync_days_back, 1);
        assert_eq!(c.org_name, "acme");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.caps, mai_core::usage::Caps::DEFAULT);
        assert_eq!(c.caps.max_cost_usd, rust_decimal::Decimal::from(1000));
        let mut m = base();
        m.insert("MAI_MAX_EVENT_COST_USD", "2500.5".into());
        m.insert("MAI_MAX_EVENT_TOKENS", "5000".into());
        let c = parse(&m).unwrap();
        assert_eq!(c.caps.max_cost_usd.to_string(), "2500.5");
        assert_eq!(c.caps.max_tokens, 5000);
        assert_eq!(c.internal_listen, None);
        m.insert("MAI_TRACKER_INTERNAL_LISTEN", "0.0.0.0:8081".into());
        assert_eq!(
            parse(&m).unwrap().internal_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 8081)))
        );
    }

    #[test]
    fn each_bad_setting_is_named() {
        for (name, value) in [
            ("MAI_TRACKER_LISTEN", "localhost"),
            ("MAI_TRACKER_INTERNAL_LISTEN", "8081"),
            ("OPENROUTER_USAGE_SYNC_INTERVAL", "10m"),
            ("OPENROUTER_USAGE_SYNC_DAYS_BACK", "0"),
            ("OPENROUTER_BASE_URL", "openrouter.ai"),
            ("MAI_ORG_ID", "a b"),
            ("MAI_LOG_FORMAT", "xml"),
            ("MAI_UPSTREAM_CA_CERT", "/nonexistent/ca.pem"),
            ("MAI_UPSTREAM_CA_CERT", "/etc/hostname"),
            ("MAI_UPSTREAM_STREAMS_PER_CONNECTION", "0"),
            ("MAI_MAX_EVENT_COST_USD", "0"),
            ("MAI_MAX_EVENT_COST_USD", "ten"),
            ("MAI_MAX_EVENT_COST_USD", "1e13"),
            ("MAI_MAX_EVENT_TOKENS", "-1"),
            ("MAI_MAX_EVENT_TOKENS", "0"),
            ("MAI_WEBHOOK_SECRET", "short"),
            ("MAI_WEBHOOK_SECRET", "has a space in it, sixteen+"),
            ("MAI_WEBHOOK_SECRET_HEADER", "X Bad Header"),
            ("MAI_OPENWEBUI_HEADER_USER_NAME", "X User Name"),
            ("MAI_OPENWEBUI_HEADER_TASK", "x-mai-task:"),
        ] {
            let mut m = base();
            m.insert(name, value.to_owned());
            let e = parse(&m).unwrap_err().to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
        for name in [
            "OPENROUTER_API_KEY",
            "MAI_ORG_ID",
            "MAI_TRACKER_ADMIN_TOKEN",
        ] {
            let mut m = base();
            m.remove(name);
            let e = parse(&m).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("missing"), "{e}");
        }
    }

    #[test]
    fn retired_markup_and_limit_settings_are_noted_not_refused() {
        let mut m = base();
        m.insert("MAI_MARKUP_RATE", "1,3".into());
        m.insert("MAI_MONTHLY_LIMIT_USD", "100".into());
        let c = parse(&m).unwrap();
        assert_eq!(
            c.retired_settings,
            ["MAI_MARKUP_RATE", "MAI_MONTHLY_LIMIT_USD"]
        );
        m.insert("MAI_MARKUP_RATE", "  ".into());
        m.remove("MAI_MONTHLY_LIMIT_USD");
        assert!(parse(&m).unwrap().retired_settings.is_empty());
    }

    #[test]
    fn secrets_from_files_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "sk-or-v1-fromfile000000000000wxyz\n").unwrap();
        let mut m = base();
        m.remove("OPENROUTER_API_KEY");
        m.insert("OPENROUTER_API_KEY_FILE", f.display().to_string());
        m.insert("OPENROUTER_USAGE_SYNC_INTERVAL", "0".into());
        let c = parse(&m).unwrap();
        assert_eq!(
            c.openrouter_api_key.expose(),
            "sk-or-v1-fromfile000000000000wxyz"
        );
        assert_eq!(c.sync_interval, None);
        assert!(!format!("{c:?}").contains("fromfile"));
        m.insert("OPENROUTER_API_KEY_FILE", "/nonexistent/key".into());
        let e = parse(&m).unwrap_err().to_string();
        assert!(e.contains("OPENROUTER_API_KEY_FILE"), "{e}");
        let mut m = base();
        m.insert("MAI_OPENWEBUI_JWT_SECRET", "too-short-secret".into());
        let e = parse(&m).unwrap_err().to_string();
        assert!(
            e.contains("MAI_OPENWEBUI_JWT_SECRET") && !e.contains("too-short"),
            "{e}"
        );
        let mut m = base();
        m.insert("MAI_TRACKER_READ_TOKEN", "short".into());
        let e = parse(&m).unwrap_err().to_string();
        assert!(
            e.contains("MAI_TRACKER_READ_TOKEN") && !e.contains("short"),
            "{e}"
        );
    }

    #[test]
    fn open_webui_identity_settings() {
        let c = parse(&base()).unwrap();
        assert!(c.openwebui_jwt_secret.is_none());
        assert_eq!(c.openwebui_headers, IdentityHeaders::default());
        assert_eq!(c.openwebui_headers.jwt.as_str(), "x-openwebui-user-jwt");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("jwt");
        let secret = "s3cr3t-".repeat(6);
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        let mut m = base();
        m.insert("MAI_OPENWEBUI_JWT_SECRET_FILE", f.display().to_string());
        m.insert("MAI_OPENWEBUI_HEADER_USER_NAME", "X-Company-User".into());
        m.insert("MAI_OPENWEBUI_HEADER_CHAT_ID", "X-Company-Chat".into());
        let c = parse(&m).unwrap();
        assert_eq!(c.openwebui_jwt_secret.as_ref().unwrap().expose(), secret);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(c.openwebui_headers.user_name.as_str(), "x-company-user");
        assert_eq!(c.openwebui_headers.chat_id.as_str(), "x-company-chat");
        assert_eq!(c.openwebui_headers.task.as_str(), "x-mai-task");
    }
}
