//! Secrets in the OS keychain and OpenRouter key rotation. The OpenRouter API never
//! returns a key's plaintext, so the old key is found by its label ([`find_key_by_label`]);
//! each rotation is recorded in the cache without any secret ([`append_rotation`]).

use chrono::Utc;
use mai_core::openrouter::{
    ApiKey, CreateKeyRequest, OpenRouterClient, SecretKey, UpdateKeyRequest,
};

use super::{blocking, Ops, OpsError};
use crate::keys::{mask, MaskedKey, SecretKind};

/// Record of a rotation, kept in the cache (no secret in it) and returned to the console:
/// the IPC type.
pub use mai_wire::console::Rotation;

/// Finds the account key whose label OpenRouter derived from `key` (its first 12 and
/// last 3 characters), or says why the old key must be disabled by hand.
pub fn find_key_by_label(key: &str, account_keys: &[ApiKey]) -> Result<String, String> {
    let head: String = key.chars().take(12).collect();
    let tail: String = key
        .chars()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let matches: Vec<_> = account_keys
        .iter()
        .filter(|a| {
            a.label.as_deref().is_some_and(|l| {
                let lh: String = l.chars().take(12).collect();
                lh == head && l.ends_with(&tail)
            })
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.hash.clone()),
        [] => Err("the old key was not found among the account's keys; disable it by hand on openrouter.ai".to_string()),
        _ => Err("several keys match the old key's label; disable the old one by hand on openrouter.ai".to_string()),
    }
}

/// Cache meta key of a client's rotation history.
fn rotations_key(client_id: &str) -> String {
    format!("rotations:{client_id}")
}

/// Reads a stored rotation history; an unreadable one reads as empty rather than
/// blocking further rotations.
pub fn parse_rotations(stored: Option<&str>) -> Vec<Rotation> {
    stored
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// The stored history with `rot` appended, as it is written back to the cache.
pub fn append_rotation(stored: Option<&str>, rot: Rotation) -> String {
    let mut all = parse_rotations(stored);
    all.push(rot);
    serde_json::to_string(&all).expect("plain struct")
}

impl Ops {
    pub async fn keys_list(&self) -> Result<Vec<MaskedKey>, OpsError> {
        let k = self.keychain("listing keys")?.clone();
        let ids: Vec<String> = self.fleet.clients.iter().map(|c| c.id.clone()).collect();
        blocking(move || k.list_masked(&ids)).await
    }

    /// Stores a secret; returns its masked form.
    pub async fn key_set(
        &self,
        id: &str,
        kind: SecretKind,
        secret: String,
    ) -> Result<String, OpsError> {
        self.client(id)?;
        let k = self.keychain("storing a key")?.clone();
        let id2 = id.to_string();
        let masked = mask(&secret);
        blocking(move || k.set(kind, &id2, &secret)).await?;
        Ok(masked)
    }

    pub async fn key_delete(&self, id: &str, kind: SecretKind) -> Result<(), OpsError> {
        self.client(id)?;
        let k = self.keychain("deleting a key")?.clone();
        let id = id.to_string();
        blocking(move || k.delete(kind, &id)).await
    }

    pub async fn set_management_key(&self, key: String) -> Result<String, OpsError> {
        let k = self.keychain("storing the management key")?.clone();
        let masked = mask(&key);
        blocking(move || k.set_management_key(&key)).await?;
        Ok(masked)
    }

    /// Rotation: create a new key with the client's limit, hand it to the tracker (which
    /// swaps it for new requests while in-flight ones finish on the old key), store it in
    /// the keychain, disable the old key, and record the rotation.
    pub async fn rotate(&self, id: &str) -> Result<Rotation, OpsError> {
        let c = self.client(id)?.clone();
        let kc = self.keychain("rotating a key")?.clone();
        let kc2 = kc.clone();
        let mgmt = blocking(move || kc2.management_key()).await?;
        let orc = |step: &'static str| {
            let id = c.id.clone();
            move |e: mai_core::openrouter::OpenRouterError| OpsError::OpenRouter {
                client: id.clone(),
                step,
                message: e.to_string(),
            }
        };
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(orc("client setup"))?;
        let kc3 = kc.clone();
        let cid = c.id.clone();
        let old_key = blocking(move || Ok(kc3.get(SecretKind::OpenRouter, &cid).ok())).await?;
        let old_label = old_key.as_deref().map(mask);
        let mut warning = None;
        let old_hash = match &old_key {
            Some(k) => match or.keys_list_all(false).await {
                Ok(list) => find_key_by_label(k, &list)
                    .map_err(|w| warning = Some(w))
                    .ok(),
                Err(e) => {
                    warning = Some(format!(
                        "could not list keys to find the old one ({e}); disable it by hand"
                    ));
                    None
                }
            },
            None => None,
        };
        let created = or
            .keys_create(&CreateKeyRequest {
                name: format!("mai-{}-{}", c.id, Utc::now().format("%Y%m%d%H%M%S")),
                limit: mai_core::pricing::key_limit_usd(&c.terms, self.today()),
                limit_reset: c.monthly_limit_usd().map(|_| "monthly".to_string()),
                ..Default::default()
            })
            .await
            .map_err(orc("create key"))?;
        let new_key = created.key.expose().to_string();
        let t = self.tracker(&c.id).await?;
        if let Err(e) = t.put_openrouter_key(&new_key).await {
            // The tracker still uses the old key: undo by disabling the new one.
            let _ = or
                .keys_update(
                    &created.info.hash,
                    &UpdateKeyRequest {
                        disabled: Some(true),
                        ..Default::default()
                    },
                )
                .await;
            return Err(e.into());
        }
        let kc4 = kc.clone();
        let cid = c.id.clone();
        let nk = new_key.clone();
        blocking(move || kc4.set(SecretKind::OpenRouter, &cid, &nk)).await?;
        let mut old_disabled = false;
        if let Some(h) = &old_hash {
            match or
                .keys_update(
                    h,
                    &UpdateKeyRequest {
                        disabled: Some(true),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => old_disabled = true,
                Err(e) => warning = Some(format!("the new key is live but disabling the old one failed ({e}); disable it by hand")),
            }
        }
        let rot = Rotation {
            client_id: c.id.clone(),
            at: Utc::now(),
            new_label: mask(&new_key),
            new_hash: created.info.hash.clone(),
            old_label,
            old_hash,
            old_disabled,
            warning,
        };
        let key = rotations_key(&c.id);
        let stored = self.cache.get_meta(&key).await?;
        self.cache
            .set_meta(&key, &append_rotation(stored.as_deref(), rot.clone()))
            .await?;
        tracing::info!(client = %c.id, new = %rot.new_label, old = ?rot.old_label, "OpenRouter key rotated");
        Ok(rot)
    }

    pub async fn rotations(&self, id: &str) -> Result<Vec<Rotation>, OpsError> {
        let stored = self.cache.get_meta(&rotations_key(id)).await?;
        Ok(parse_rotations(stored.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_key(hash: &str, label: &str) -> ApiKey {
        serde_json::from_value(serde_json::json!({ "hash": hash, "label": label })).unwrap()
    }

    const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_old_key_is_found_by_the_label_openrouter_derives() {
        let list = [
            account_key("h-other", "sk-or-v1-999...aaa"),
            account_key("h-old", "sk-or-v1-012...def"),
        ];
        assert_eq!(find_key_by_label(KEY, &list), Ok("h-old".to_string()));
    }

    #[test]
    fn no_or_several_matches_ask_for_a_manual_disable() {
        let none = find_key_by_label(KEY, &[account_key("h", "sk-or-v1-999...aaa")]);
        assert!(none.unwrap_err().contains("not found"));
        let two = find_key_by_label(
            KEY,
            &[
                account_key("h1", "sk-or-v1-012...def"),
                account_key("h2", "sk-or-v1-012...def"),
            ],
        );
        assert!(two.unwrap_err().contains("several keys match"));
    }

    fn rotation(new_hash: &str) -> Rotation {
        Rotation {
            client_id: "acme".into(),
            at: "2026-11-05T10:00:00Z".parse().unwrap(),
            new_label: "sk-or-v1-…cdef".into(),
            new_hash: new_hash.into(),
            old_label: None,
            old_hash: None,
            old_disabled: false,
            warning: None,
        }
    }

    #[test]
    fn rotations_are_appended_in_order() {
        let first = append_rotation(None, rotation("h1"));
        let both = append_rotation(Some(&first), rotation("h2"));
        let read = parse_rotations(Some(&both));
        assert_eq!(read, [rotation("h1"), rotation("h2")]);
    }

    #[test]
    fn an_unreadable_history_reads_as_empty() {
        assert!(parse_rotations(Some("{not json")).is_empty());
        assert_eq!(
            parse_rotations(Some(&append_rotation(Some("{not json"), rotation("h3")))),
            [rotation("h3")]
        );
    }
}
