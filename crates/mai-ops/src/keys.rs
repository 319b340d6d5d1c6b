//! Secrets in the OS keychain (Secret Service on Linux) through keyring-core.
//!
//! There is deliberately no plaintext fallback: if the keychain is absent or locked the
//! operation fails with an error that says how to fix it. Calls are blocking D-Bus
//! round trips; async callers wrap them in `spawn_blocking`.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KrError};

/// Keychain service name of every entry the console writes.
pub const SERVICE: &str = "mai-fleet";
/// Entry of the OpenRouter management (provisioning) key.
pub const MANAGEMENT: &str = "openrouter-management";

/// Which secret, and a listing of them, cross the console's IPC as they are.
pub use mai_wire::console::{MaskedKey, SecretKind};

/// The keychain entry (user name under [`SERVICE`]) of a client's secret.
fn entry_user(kind: SecretKind, client: &str) -> String {
    match kind {
        SecretKind::OpenRouter => format!("openrouter:{client}"),
        SecretKind::TrackerToken => format!("tracker-token:{client}"),
        SecretKind::TrackerReadToken => format!("tracker-read-token:{client}"),
    }
}

/// What error messages call the secret.
fn describe(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::OpenRouter => "OpenRouter key",
        SecretKind::TrackerToken => "tracker admin token",
        SecretKind::TrackerReadToken => "tracker read token",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the OS keychain is not available ({0}); start a Secret Service (e.g. gnome-keyring) in this desktop session; keys are never stored in plain text")]
    Unavailable(String),
    #[error("the OS keychain is locked ({0}); unlock it (log in to the desktop session or run `gnome-keyring-daemon --unlock`) and retry")]
    Locked(String),
    #[error("no {what} stored for {client}; set one with `maictl keys set {client}` or in the console's Keys view")]
    Missing { what: &'static str, client: String },
    #[error("the keychain refused the {what} of {client}: {message}")]
    Other {
        what: &'static str,
        client: String,
        message: String,
    },
    #[error("no KSeF token stored for seller NIP {nip} in KSeF {environment}; store it with `maictl ksef token set` (reads it from stdin) or in the console's Billing view (KSeF token)")]
    MissingKsefToken { nip: String, environment: String },
    #[error("{0}")]
    Invalid(String),
}

/// Masked form of a key for display: `sk-or-v1-…abcd` (the one masking rule, in mai-core).
pub use mai_core::secret::mask_key as mask;

/// Rejects what is obviously not an OpenRouter key before it reaches the keychain.
pub fn validate_openrouter_key(key: &str) -> Result<(), KeyError> {
    let hex = key.strip_prefix("sk-or-v1-").ok_or_else(|| {
        KeyError::Invalid("that is not an OpenRouter key: it must start with `sk-or-v1-`; copy the whole key from openrouter.ai/settings/keys".into())
    })?;
    if hex.len() < 16 || !hex.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(KeyError::Invalid(format!(
            "the OpenRouter key {} looks truncated or has stray characters; paste it again without spaces",
            mask(key)
        )));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Keychain {
    store: Arc<StoreBox>,
}

/// Owns the store so that its last drop (which closes a zbus connection, a blocking call)
/// also happens off the tokio threads.
struct StoreBox(Option<Arc<CredentialStore>>);

impl Drop for StoreBox {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            off_runtime(move || drop(s));
        }
    }
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keychain")
    }
}

/// The Secret Service store drives zbus's blocking API, which panics when called on a
/// thread that is running a tokio runtime. Every keychain call therefore runs on its own
/// short-lived OS thread, whatever the caller's context.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

fn classify(e: KrError, what: &'static str, client: &str) -> KeyError {
    match e {
        KrError::NoEntry => KeyError::Missing {
            what,
            client: client.to_string(),
        },
        KrError::NoStorageAccess(p) => KeyError::Locked(p.to_string()),
        KrError::PlatformFailure(p) => {
            let s = p.to_string();
            if s.contains("ocked") || s.contains("NoResult") {
                KeyError::Locked(s)
            } else {
                KeyError::Unavailable(s)
            }
        }
        KrError::NoDefaultStore => KeyError::Unavailable("no credential store configured".into()),
        other => KeyError::Other {
            what,
            client: client.to_string(),
            message: other.to_string(),
        },
    }
}

impl Keychain {
    /// The Secret Service over D-Bus.
    pub fn secret_service() -> Result<Keychain, KeyError> {
        let store =
            off_runtime(zbus_secret_service_keyring_store::Store::new).map_err(|e| match e {
                KrError::NoStorageAccess(p) => KeyError::Locked(p.to_string()),
                other => KeyError::Unavailable(other.to_string()),
            })?;
        Ok(Keychain::with_store(store))
    }

    /// Any keyring-core store (tests use `keyring_core::mock::Store`).
    pub fn with_store(store: Arc<CredentialStore>) -> Keychain {
        Keychain {
            store: Arc::new(StoreBox(Some(store))),
        }
    }

    fn entry(&self, user: &str, what: &'static str, client: &str) -> Result<Entry, KeyError> {
        self.store
            .0
            .as_ref()
            .expect("present until drop")
            .build(SERVICE, user, None)
            .map_err(|e| classify(e, what, client))
    }

    /// Reads the entry `user` under [`SERVICE`]; `what` and `whose` name it in errors.
    pub(crate) fn get_entry(
        &self,
        user: &str,
        what: &'static str,
        whose: &str,
    ) -> Result<String, KeyError> {
        off_runtime(|| {
            self.entry(user, what, whose)?
                .get_password()
                .map_err(|e| classify(e, what, whose))
        })
    }

    /// Stores `secret` (already checked by the caller) as the entry `user`.
    pub(crate) fn set_entry(
        &self,
        user: &str,
        secret: &str,
        what: &'static str,
        whose: &str,
    ) -> Result<(), KeyError> {
        off_runtime(|| {
            self.entry(user, what, whose)?
                .set_password(secret)
                .map_err(|e| classify(e, what, whose))
        })
    }

    /// Deletes the entry `user`; deleting what is not there is not an error.
    pub(crate) fn delete_entry(
        &self,
        user: &str,
        what: &'static str,
        whose: &str,
    ) -> Result<(), KeyError> {
        off_runtime(
            || match self.entry(user, what, whose)?.delete_credential() {
                Ok(()) | Err(KrError::NoEntry) => Ok(()),
                Err(e) => Err(classify(e, what, whose)),
            },
        )
    }

    pub fn get(&self, kind: SecretKind, client: &str) -> Result<String, KeyError> {
        off_runtime(|| {
            let e = self.entry(&entry_user(kind, client), describe(kind), client)?;
            e.get_password()
                .map_err(|e| classify(e, describe(kind), client))
        })
    }

    pub fn set(&self, kind: SecretKind, client: &str, secret: &str) -> Result<(), KeyError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(KeyError::Invalid(format!(
                "the {} for {client} is empty; nothing was stored",
                describe(kind)
            )));
        }
        if kind == SecretKind::OpenRouter {
            validate_openrouter_key(secret)?;
        }
        off_runtime(|| {
            let e = self.entry(&entry_user(kind, client), describe(kind), client)?;
            e.set_password(secret)
                .map_err(|e| classify(e, describe(kind), client))
        })?;
        tracing::info!(client, kind = describe(kind), key = %mask(secret), "secret stored in keychain");
        Ok(())
    }

    /// Deleting what is not there is not an error (the end state is the same).
    pub fn delete(&self, kind: SecretKind, client: &str) -> Result<(), KeyError> {
        off_runtime(|| {
            let e = self.entry(&entry_user(kind, client), describe(kind), client)?;
            match e.delete_credential() {
                Ok(()) | Err(KrError::NoEntry) => Ok(()),
                Err(e) => Err(classify(e, describe(kind), client)),
            }
        })
    }

    pub fn management_key(&self) -> Result<String, KeyError> {
        let got = off_runtime(|| {
            let e = self.entry(MANAGEMENT, "management key", "the fleet")?;
            e.get_password()
                .map_err(|e| classify(e, "management key", "the fleet"))
        });
        got.map_err(|e| match e {
            KeyError::Missing { .. } => KeyError::Invalid(
                "no OpenRouter management key in the keychain; set it with `maictl keys set-management` (key from stdin)".into(),
            ),
            other => other,
        })
    }

    pub fn set_management_key(&self, key: &str) -> Result<(), KeyError> {
        validate_openrouter_key(key.trim())?;
        off_runtime(|| {
            let e = self.entry(MANAGEMENT, "management key", "the fleet")?;
            e.set_password(key.trim())
                .map_err(|e| classify(e, "management key", "the fleet"))
        })
    }

    /// Masked view of every client's secrets; per-entry errors are reported, not fatal,
    /// except a locked/absent keychain which fails the whole listing.
    pub fn list_masked(&self, clients: &[String]) -> Result<Vec<MaskedKey>, KeyError> {
        let mut out = Vec::new();
        for c in clients {
            for kind in [
                SecretKind::OpenRouter,
                SecretKind::TrackerToken,
                SecretKind::TrackerReadToken,
            ] {
                let (masked, error) = match self.get(kind, c) {
                    Ok(k) => (Some(mask(&k)), None),
                    Err(KeyError::Missing { .. }) => (None, None),
                    Err(e @ (KeyError::Locked(_) | KeyError::Unavailable(_))) => return Err(e),
                    Err(e) => (None, Some(e.to_string())),
                };
                out.push(MaskedKey {
                    client: c.clone(),
                    kind,
                    masked,
                    error,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    fn mock() -> Keychain {
        Keychain::with_store(keyring_core::mock::Store::new().unwrap())
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask(KEY), "sk-or-v1-…abcd");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("tokentoken1234"), "…1234");
    }

    #[test]
    fn set_replace_delete_and_list() {
        let k = mock();
        let clients = vec!["acme".to_string()];
        assert!(matches!(
            k.get(SecretKind::OpenRouter, "acme"),
            Err(KeyError::Missing { .. })
        ));
        k.set(SecretKind::OpenRouter, "acme", KEY).unwrap();
        assert_eq!(k.get(SecretKind::OpenRouter, "acme").unwrap(), KEY);
        let other = KEY.replace("abcd", "ffff");
        k.set(SecretKind::OpenRouter, "acme", &other).unwrap();
        let list = k.list_masked(&clients).unwrap();
        assert_eq!(list[0].masked.as_deref(), Some("sk-or-v1-…ffff"));
        assert_eq!(list[1].masked, None);
        let json = serde_json::to_string(&list).unwrap();
        assert!(
            !json.contains(&other[12..]),
            "listing leaks the key: {json}"
        );
        k.delete(SecretKind::OpenRouter, "acme").unwrap();
        k.delete(SecretKind::OpenRouter, "acme").unwrap();
        assert!(matches!(
            k.get(SecretKind::OpenRouter, "acme"),
            Err(KeyError::Missing { .. })
        ));
    }

    #[test]
    fn refuses_garbage_keys() {
        let k = mock();
        let e = k.set(SecretKind::OpenRouter, "acme", "hello").unwrap_err();
        assert!(e.to_string().contains("sk-or-v1-"), "{e}");
        assert!(k.set(SecretKind::TrackerToken, "acme", "  ").is_err());
    }

    #[test]
    fn locked_store_gives_a_clear_error() {
        let e = classify(
            KrError::NoStorageAccess("collection is locked".into()),
            "OpenRouter key",
            "acme",
        );
        assert!(matches!(e, KeyError::Locked(_)));
        assert!(e.to_string().contains("unlock"), "{e}");
        let e = classify(
            KrError::PlatformFailure("Connection refused /run/user/0/bus".into()),
            "x",
            "acme",
        );
        assert!(e.to_string().contains("not available"), "{e}");
    }
}
