//! Where KSeF is and who we are in it. The environment decides the defaults (API base
//! URL, QR host, published limits); `KSEF_BASE_URL` and `KSEF_CA_CERT` point the same
//! client at a simulator or a proxy without a code change.

use crate::error::KsefError;
use crate::limits::RateLimits;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Overrides the environment's API base URL (e.g. `https://127.0.0.1:8443/v2`).
pub const ENV_BASE_URL: &str = "KSEF_BASE_URL";
/// A PEM file of extra CA certificates to trust (a simulator's or a proxy's own CA).
pub const ENV_CA_CERT: &str = "KSEF_CA_CERT";

/// KSeF's public environments (`docs/srodowiska.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Integration tests; anyone may act for any NIP there, limits are ten times PRD's.
    Test,
    /// Pre-production, PRD's configuration and limits.
    Demo,
    /// Production: invoices with legal effect.
    Prd,
}

impl Environment {
    pub const fn api_base_url(self) -> &'static str {
        match self {
            Environment::Test => "https://api-test.ksef.mf.gov.pl/v2",
            Environment::Demo => "https://api-demo.ksef.mf.gov.pl/v2",
            Environment::Prd => "https://api.ksef.mf.gov.pl/v2",
        }
    }

    /// The host of the verification links printed as QR codes (`docs/kody-qr.md`).
    pub const fn qr_base_url(self) -> &'static str {
        match self {
            Environment::Test => "https://qr-test.ksef.mf.gov.pl",
            Environment::Demo => "https://qr-demo.ksef.mf.gov.pl",
            Environment::Prd => "https://qr.ksef.mf.gov.pl",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Environment::Test => "TEST",
            Environment::Demo => "DEMO",
            Environment::Prd => "PRD",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Environment {
    type Err = KsefError;

    /// `TEST` (or `TE`), `DEMO`, `PRD` (or `PROD`), in any case.
    fn from_str(s: &str) -> Result<Self, KsefError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TEST" | "TE" => Ok(Environment::Test),
            "DEMO" => Ok(Environment::Demo),
            "PRD" | "PROD" => Ok(Environment::Prd),
            _ => Err(KsefError::config(format!(
                "KSeF environment {s:?} is not one of TEST, DEMO, PRD"
            ))),
        }
    }
}

/// The client's configuration. Build it with [`KsefConfig::new`]; the fields are public
/// for the tunables, but a base URL or CA goes through the `with_*` methods, which check it.
#[derive(Clone)]
pub struct KsefConfig {
    pub environment: Environment,
    /// The API root including `/v2`, without a trailing slash.
    pub base_url: String,
    /// The seller's NIP: the context we authenticate in and send invoices for. Its checksum
    /// is mai-billing's to validate; here only the shape is checked.
    pub seller_nip: String,
    /// Extra trusted CA certificates (PEM), added to the public roots.
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// `None`: pace by `GET /rate-limits` (what KSeF says applies to this context now),
    /// falling back to the environment's published limits if it cannot be read.
    pub rate_limits: Option<RateLimits>,
    /// Invoices being worked on at once in a batch (sent, polled, receipt fetched). The
    /// rate limits bound the requests; this bounds the memory and the open connections.
    pub max_in_flight: usize,
    /// How long one invoice's status is polled before it is reported as pending.
    pub status_timeout: Duration,
    /// First pause before asking for an invoice's status; it grows by half each time.
    pub status_poll_initial: Duration,
    pub status_poll_max: Duration,
    /// Per HTTP request (an invoice is at most 1 MB, 1.4 MB as Base64).
    pub request_timeout: Duration,
}

impl fmt::Debug for KsefConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KsefConfig")
            .field("environment", &self.environment)
            .field("base_url", &self.base_url)
            .field("seller_nip", &self.seller_nip)
            .field(
                "extra_root_ca_pem",
                &self.extra_root_ca_pem.as_ref().map(|p| p.len()),
            )
            .field("rate_limits", &self.rate_limits)
            .field("max_in_flight", &self.max_in_flight)
            .field("status_timeout", &self.status_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl KsefConfig {
    pub fn new(environment: Environment, seller_nip: &str) -> Result<Self, KsefError> {
        let nip = seller_nip.trim();
        let b = nip.as_bytes();
        if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
            return Err(KsefError::config(format!(
                "seller NIP {seller_nip:?} must be 10 digits without separators or a PL prefix (as mai-billing normalises it)"
            )));
        }
        Ok(Self {
            environment,
            base_url: environment.api_base_url().to_owned(),
            seller_nip: nip.to_owned(),
            extra_root_ca_pem: None,
            rate_limits: None,
            max_in_flight: 32,
            status_timeout: Duration::from_secs(300),
            status_poll_initial: Duration::from_millis(500),
            status_poll_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
        })
    }

    /// Another API root (a simulator, a proxy). It must be http(s) and include `/v2`
    /// where the server has it; the environment's limits and QR host stay.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, KsefError> {
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            KsefError::config(format!(
                "KSeF base URL {url:?} is not a URL ({e}); use e.g. {}",
                self.environment.api_base_url()
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(KsefError::config(format!(
                "KSeF base URL {url:?} must be http(s)://host[:port]/path, e.g. {}",
                self.environment.api_base_url()
            )));
        }
        self.base_url = url.trim().trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Trusts these CA certificates (PEM, one or more) besides the public roots.
    pub fn with_extra_root_ca_pem(mut self, pem: Vec<u8>) -> Result<Self, KsefError> {
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => {
                self.extra_root_ca_pem = Some(pem);
                Ok(self)
            }
            Ok(_) => Err(KsefError::config(
                "the extra CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            )),
            Err(e) => Err(KsefError::config(format!(
                "the extra CA is not a PEM certificate bundle: {e}"
            ))),
        }
    }

    /// Applies `KSEF_BASE_URL` and `KSEF_CA_CERT` (a path) from the process environment.
    pub fn with_env_overrides(self) -> Result<Self, KsefError> {
        self.with_overrides_from(|name| std::env::var(name).ok())
    }

    fn with_overrides_from(
        mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, KsefError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = set(ENV_BASE_URL) {
            self = self
                .with_base_url(&url)
                .map_err(|e| KsefError::config(format!("{ENV_BASE_URL}: {e}")))?;
        }
        if let Some(path) = set(ENV_CA_CERT) {
            let pem = std::fs::read(path.trim()).map_err(|e| {
                KsefError::config(format!(
                    "{ENV_CA_CERT}={path:?} cannot be read ({e}); point it at a PEM file of CA certificates"
                ))
            })?;
            self = self
                .with_extra_root_ca_pem(pem)
                .map_err(|e| KsefError::config(format!("{ENV_CA_CERT}={path:?}: {e}")))?;
        }
        Ok(self)
    }

    /// The limits to pace by before `GET /rate-limits` has answered.
    pub(crate) fn initial_limits(&self) -> RateLimits {
        self.rate_limits
            .unwrap_or_else(|| RateLimits::published(self.environment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_have_the_documented_urls() {
        assert_eq!(
            Environment::Test.api_base_url(),
            "https://api-test.ksef.mf.gov.pl/v2"
        );
        assert_eq!(
            Environment::Demo.api_base_url(),
            "https://api-demo.ksef.mf.gov.pl/v2"
        );
        assert_eq!(
            Environment::Prd.api_base_url(),
            "https://api.ksef.mf.gov.pl/v2"
        );
        for (s, e) in [
            ("test", Environment::Test),
            ("TE", Environment::Test),
            (" Demo ", Environment::Demo),
            ("PRD", Environment::Prd),
            ("prod", Environment::Prd),
        ] {
            assert_eq!(s.parse::<Environment>().unwrap(), e);
        }
        let err = "production".parse::<Environment>().unwrap_err().to_string();
        assert!(err.contains("TEST, DEMO, PRD"), "{err}");
    }

    #[test]
    fn checks_the_nip_shape() {
        assert_eq!(
            KsefConfig::new(Environment::Prd, " 5265877635 ")
                .unwrap()
                .seller_nip,
            "5265877635"
        );
        for bad in [
            "",
            "526-587-76-35",
            "PL5265877635",
            "526587763",
            "0265877635",
        ] {
            let e = KsefConfig::new(Environment::Prd, bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("10 digits"), "{bad}: {e}");
        }
    }

    #[test]
    fn environment_overrides() {
        let base = KsefConfig::new(Environment::Test, "5265877635").unwrap();
        assert_eq!(base.base_url, "https://api-test.ksef.mf.gov.pl/v2");
        let c = base
            .clone()
            .with_overrides_from(|n| (n == ENV_BASE_URL).then(|| "http://127.0.0.1:9/v2/".into()))
            .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9/v2");
        assert_eq!(c.environment, Environment::Test);
        let unchanged = base
            .clone()
            .with_overrides_from(|n| (n == ENV_BASE_URL).then(|| " ".into()))
            .unwrap();
        assert_eq!(unchanged.base_url, base.base_url);

        let e = base
            .clone()
            .with_overrides_from(|n| (n == ENV_BASE_URL).then(|| "ftp://x/v2".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(ENV_BASE_URL) && e.contains("http(s)"), "{e}");
        let e = base
            .clone()
            .with_overrides_from(|n| (n == ENV_CA_CERT).then(|| "/nonexistent/ca.pem".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(ENV_CA_CERT) && e.contains("cannot be read"),
            "{e}"
        );
        // A real certificate (the crypto tests' self-signed one) as PEM is accepted.
        use base64::Engine;
        let der = include_bytes!("../tests/fixtures/crypto/test-cert.der");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        let with_ca = base
            .clone()
            .with_extra_root_ca_pem(pem.into_bytes())
            .unwrap();
        assert!(with_ca.extra_root_ca_pem.is_some());
        assert!(format!("{with_ca:?}").contains("extra_root_ca_pem: Some("));

        let e = base
            .with_extra_root_ca_pem(b"not a certificate".to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("PEM"), "{e}");
    }
}
