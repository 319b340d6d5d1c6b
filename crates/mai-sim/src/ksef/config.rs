//! What a KSeF simulator starts with: the seed, the KSeF tokens it knows, how long each
//! step takes, and standing faults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::faults::FaultRule;

/// A permission a KSeF token carries (`tokeny-ksef.md`; the contract's token permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    InvoiceWrite,
    InvoiceRead,
    CredentialsRead,
    CredentialsManage,
    SubunitManage,
    EnforcementOperations,
    Introspection,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::InvoiceWrite => "InvoiceWrite",
            Permission::InvoiceRead => "InvoiceRead",
            Permission::CredentialsRead => "CredentialsRead",
            Permission::CredentialsManage => "CredentialsManage",
            Permission::SubunitManage => "SubunitManage",
            Permission::EnforcementOperations => "EnforcementOperations",
            Permission::Introspection => "Introspection",
        }
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "InvoiceWrite" => Permission::InvoiceWrite,
            "InvoiceRead" => Permission::InvoiceRead,
            "CredentialsRead" => Permission::CredentialsRead,
            "CredentialsManage" => Permission::CredentialsManage,
            "SubunitManage" => Permission::SubunitManage,
            "EnforcementOperations" => Permission::EnforcementOperations,
            "Introspection" => Permission::Introspection,
            other => {
                return Err(format!(
                    "unknown permission `{other}`; one of InvoiceWrite, InvoiceRead, CredentialsRead, CredentialsManage, SubunitManage, EnforcementOperations, Introspection"
                ))
            }
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A KSeF token the simulator accepts for one NIP context.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub nip: String,
    pub token: String,
    pub permissions: Vec<Permission>,
    /// A revoked token fails authentication with 450 "Token unieważniony".
    pub revoked: bool,
}

impl fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSpec")
            .field("nip", &self.nip)
            .field("token", &mask(&self.token))
            .field("permissions", &self.permissions)
            .field("revoked", &self.revoked)
            .finish()
    }
}

/// At most the first and last four characters of a secret.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A `NIP=TOKEN` (or `NIP=TOKEN=Perm,Perm`) argument could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token `{input}`: {reason}; expected NIP=TOKEN or NIP=TOKEN=InvoiceWrite,InvoiceRead with a 10-digit NIP")]
pub struct TokenParseError {
    pub input: String,
    pub reason: String,
}

impl TokenSpec {
    /// A token for `nip` with InvoiceWrite and InvoiceRead, what issuing invoices needs.
    pub fn new(nip: impl Into<String>, token: impl Into<String>) -> Self {
        TokenSpec {
            nip: nip.into(),
            token: token.into(),
            permissions: vec![Permission::InvoiceWrite, Permission::InvoiceRead],
            revoked: false,
        }
    }

    pub fn with_permissions(mut self, permissions: &[Permission]) -> Self {
        self.permissions = permissions.to_vec();
        self
    }

    pub fn validate(&self) -> Result<(), TokenParseError> {
        let err = |reason: &str| TokenParseError {
            input: format!("{}={}", self.nip, mask(&self.token)),
            reason: reason.into(),
        };
        if self.nip.len() != 10 || !self.nip.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the NIP must be 10 digits"));
        }
        // Real KSeF tokens contain `|` (`{reference}|nip-{NIP}|{secret}`); the
        // simulator splits `token|timestampMs` at the last one, as it must.
        if self.token.is_empty() {
            return Err(err("the token must not be empty"));
        }
        Ok(())
    }
}

impl FromStr for TokenSpec {
    type Err = TokenParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| TokenParseError {
            input: match s.split_once('=') {
                Some((nip, rest)) => format!("{nip}={}", mask(rest)),
                None => mask(s),
            },
            reason,
        };
        let (nip, rest) = s
            .split_once('=')
            .ok_or_else(|| err("no `=` between the NIP and the token".into()))?;
        let (token, perms) = match rest.rsplit_once('=') {
            Some((t, p))
                if !p.is_empty() && p.split(',').all(|x| x.parse::<Permission>().is_ok()) =>
            {
                (t, Some(p))
            }
            _ => (rest, None),
        };
        let mut spec = TokenSpec::new(nip.trim(), token);
        if let Some(p) = perms {
            spec.permissions = p
                .split(',')
                .map(|x| x.trim().parse::<Permission>())
                .collect::<Result<_, _>>()
                .map_err(err)?;
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// How long each asynchronous step takes, on the simulator's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// `POST /auth/challenge` → `/auth/ksef-token` (`uwierzytelnianie.md`: 10 minutes).
    pub challenge_ttl: Duration,
    /// How long `GET /auth/{ref}` answers 100 before the outcome.
    pub auth_processing: Duration,
    /// The authentication operation's token (the Ministry's example: 45 minutes).
    pub authentication_token_ttl: Duration,
    /// Access tokens (the Ministry's example JWT: 15 minutes).
    pub access_token_ttl: Duration,
    /// Refresh tokens ("do 7 dni").
    pub refresh_token_ttl: Duration,
    /// Online sessions (`sesja-interaktywna.md`: 12 hours).
    pub session_ttl: Duration,
    /// How long a sent invoice shows 100 ("przyjęta").
    pub invoice_accepted: Duration,
    /// How long it then shows 150 ("trwa przetwarzanie") before its outcome.
    pub invoice_processing: Duration,
    /// From the close (or the last invoice's outcome, if later) to the session UPO.
    pub session_upo: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            challenge_ttl: Duration::from_secs(600),
            auth_processing: Duration::from_millis(100),
            authentication_token_ttl: Duration::from_secs(45 * 60),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            invoice_accepted: Duration::from_millis(100),
            invoice_processing: Duration::from_millis(200),
            session_upo: Duration::from_millis(100),
        }
    }
}

impl Timing {
    /// Every asynchronous step done at once (load tests); the 100/150 states are never seen.
    pub fn instant() -> Self {
        Timing {
            auth_processing: Duration::ZERO,
            invoice_accepted: Duration::ZERO,
            invoice_processing: Duration::ZERO,
            session_upo: Duration::ZERO,
            ..Timing::default()
        }
    }
}

/// Everything the simulator starts with.
#[derive(Debug, Clone)]
pub struct KsefConfig {
    /// Seeds the RSA keys, reference numbers, KSeF numbers and tokens.
    pub seed: u64,
    pub tokens: Vec<TokenSpec>,
    pub timing: Timing,
    /// Validate each invoice against the FA(3) XSD with `xmllint` (status 430 on failure).
    pub validate_schema: bool,
    /// Standing faults, in order (see [`super::faults`]).
    pub faults: Vec<FaultRule>,
    /// `weryfikacja-faktury.md`: at most 10 000 invoices per session (21155 beyond).
    pub max_invoices_per_session: usize,
}

impl Default for KsefConfig {
    fn default() -> Self {
        KsefConfig {
            seed: 0,
            tokens: Vec::new(),
            timing: Timing::default(),
            validate_schema: true,
            faults: Vec::new(),
            max_invoices_per_session: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_arguments() {
        let t: TokenSpec = "5265877635=abc-123".parse().unwrap();
        assert_eq!(t.nip, "5265877635");
        assert_eq!(t.token, "abc-123");
        assert_eq!(
            t.permissions,
            vec![Permission::InvoiceWrite, Permission::InvoiceRead]
        );
        let t: TokenSpec = "5265877635=x=y=InvoiceRead".parse().unwrap();
        assert_eq!(t.token, "x=y");
        assert_eq!(t.permissions, vec![Permission::InvoiceRead]);
        let e = "12345=secret-token-value".parse::<TokenSpec>().unwrap_err();
        assert!(e.to_string().contains("10 digits"), "{e}");
        assert!(!e.to_string().contains("secret-token-value"), "{e}");
        assert!("5265877635".parse::<TokenSpec>().is_err());
    }
}
