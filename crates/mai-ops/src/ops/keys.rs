//! Secrets in the OS keychain and OpenRouter key rotation. The old key is addressed by
//! its hash, the SHA-256 hex of the key string (spec 6.1): `GET/PATCH /keys/{hash}`
//! reach it in whatever workspace it is, and nothing is guessed from labels (which may
//! repeat). Each rotation is recorded in the cache without any secret
//! ([`append_rotation`]).

use chrono::Utc;
use mai_core::openrouter::{
    key_hash, ApiKey, CreateKeyRequest, OpenRouterClient, OpenRouterError, SecretKey,
    UpdateKeyRequest,
};

use super::{blocking, Ops, OpsError};
use crate::keys::{mask, MaskedKey, SecretKind};

/// Record of a rotation, kept in the cache (no secret in it) and returned to the console:
/// the IPC type.
pub use mai_wire::console::Rotation;

/// What `GET /keys/{hash}` said of the old key, as the rotation uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldKey {
    /// On the account: disable it after the hand-over, create the new key in its workspace.
    Found { workspace_id: Option<String> },
    /// 404: not on this account (already deleted, or another account's key).
    Missing,
    /// The lookup failed otherwise: still try to disable it by hash.
    Unknown(String),
}

/// Reads the answer of `GET /keys/{hash}` for the old key.
pub fn old_key_from(lookup: Result<ApiKey, OpenRouterError>) -> OldKey {
    match lookup {
        Ok(k) => OldKey::Found {
            workspace_id: k.workspace_id,
        },
        Err(OpenRouterError::Api(a)) if a.is_not_found() => OldKey::Missing,
        Err(e) => OldKey::Unknown(e.to_string()),
    }
}

/// How long the console keeps reading the tracker's status after a hand-over whose reply
/// did not come (or did, to see the check's outcome).
pub const CONFIRM_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);
const CONFIRM_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// What the tracker's status says of a hand-over of the key `new_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// The tracker uses the new key and its own `GET /key` check of it succeeded: the
    /// old key may be disabled.
    Confirmed,
    /// The tracker uses the new key, but its check says otherwise (or has not run):
    /// neither key may be disabled.
    InUseNotChecked(String),
    /// The tracker still uses another key.
    OldKeyInUse,
    /// The status could not be read.
    Unknown(String),
}

/// Reads a status reply as the rotation decides on it.
pub fn handover_seen(status: Result<&crate::tracker::Status, String>, new_hash: &str) -> Handover {
    use mai_wire::tracker::KeyState;
    match status {
        Err(e) => Handover::Unknown(e),
        Ok(s) if s.key.hash != new_hash => Handover::OldKeyInUse,
        Ok(s) => match (s.key.state, s.key.checked_at) {
            (KeyState::Ok, Some(_)) => Handover::Confirmed,
            (state, _) => Handover::InUseNotChecked(match &s.key.error {
                Some(e) => format!("state {state}: {e}"),
                None => format!("state {state}"),
            }),
        },
    }
}

/// What the operator must still do by hand after a rotation: Broadcast destinations
/// filter by API key (`api_key_hashes`), which the console cannot change for them.
pub fn follow_up(new_name: &str) -> Vec<String> {
    vec![format!(
        "Broadcast webhook: if this client's destination on openrouter.ai (Settings → Broadcast) selects API keys, add the new key \"{new_name}\" to its API-key filter; the tracker already accepts the new key's spans"
    )]
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
        // Offboarding deleted the secrets of offboarded clients.
        let ids: Vec<String> = self.fleet.active_clients().map(|c| c.id.clone()).collect();
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
    /// stores it for restarts and swaps it for new requests while in-flight ones finish on
    /// the old key), confirm from the tracker's status that it uses the new key and that
    /// its check of it succeeded, store it in the keychain, and only then disable the old
    /// key; record the rotation. A key the tracker may be using is never disabled: if the
    /// tracker did not take the new key, the new key is deleted and the old one stays; if
    /// the outcome cannot be confirmed, both stay enabled and the error says what to check.
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
        let old_hash = old_key.as_deref().map(key_hash);
        let mut warning = None;
        let old = match &old_hash {
            Some(h) => old_key_from(or.keys_get(h).await),
            None => OldKey::Missing,
        };
        let workspace_id = match &old {
            OldKey::Found { workspace_id } => workspace_id.clone(),
            OldKey::Missing if old_hash.is_some() => {
                warning = Some("the old key is not on the account (GET /keys/{hash} answered 404): already deleted, or another account's key; check on openrouter.ai".to_string());
                None
            }
            OldKey::Missing => None,
            OldKey::Unknown(e) => {
                warning = Some(format!(
                    "could not look the old key up ({e}); the new key is in the default workspace"
                ));
                None
            }
        };
        let name = format!("mai-{}-{}", c.id, Utc::now().format("%Y%m%d%H%M%S"));
        let created = or
            .keys_create(&CreateKeyRequest {
                name: name.clone(),
                limit: mai_core::pricing::key_limit_usd(&c.terms, self.today()),
                limit_reset: c.monthly_limit_usd().map(|_| "monthly".to_string()),
                workspace_id,
                ..Default::default()
            })
            .await
            .map_err(orc("create key"))?;
        let new_key = created.key.expose().to_string();
        let new_hash = created.info.hash.clone();
        let t = self.tracker(&c.id).await?;
        let new_name = created.info.name.clone().unwrap_or(name);
        // Hand over, then confirm from the tracker's status; the old key is disabled only
        // once the tracker is seen using the new key and its check of it succeeded.
        let put = t.put_openrouter_key(&new_key, Some(&new_name)).await;
        let seen = match &put {
            // An answer with an error status: the tracker did not switch (it switches
            // only on success), so there is nothing to wait for.
            Err(crate::tracker::TrackerError::Api { .. })
            | Err(crate::tracker::TrackerError::Unauthorized { .. })
            | Err(crate::tracker::TrackerError::Decode { .. }) => Handover::OldKeyInUse,
            // Ok, or no answer: the status says what the tracker did.
            _ => {
                let deadline = tokio::time::Instant::now() + CONFIRM_WINDOW;
                loop {
                    let s = t.status().await;
                    let h = handover_seen(s.as_ref().map_err(|e| e.to_string()), &new_hash);
                    let done = match &h {
                        Handover::Confirmed => true,
                        // After an Ok reply the tracker has already switched.
                        Handover::OldKeyInUse => put.is_ok(),
                        _ => false,
                    };
                    if done || tokio::time::Instant::now() >= deadline {
                        break h;
                    }
                    tokio::time::sleep(CONFIRM_POLL).await;
                }
            }
        };
        // A successful reply means the tracker switched, whatever its status said since.
        let seen = match seen {
            Handover::Unknown(why) if put.is_ok() => Handover::InUseNotChecked(why),
            other => other,
        };
        let put_error = put.as_ref().err().map(|e| e.to_string());
        match &seen {
            Handover::Confirmed => {}
            Handover::OldKeyInUse => {
                // The client still runs on the old key: leave it enabled and remove the
                // new one, so nothing half-created stays behind.
                let undo = match or.keys_delete(&new_hash).await {
                    Ok(()) => "the new key was deleted".to_string(),
                    Err(e) => match or
                        .keys_update(
                            &new_hash,
                            &UpdateKeyRequest {
                                disabled: Some(true),
                                ..Default::default()
                            },
                        )
                        .await
                    {
                        Ok(_) => format!("the new key could not be deleted ({e}) and was disabled; delete it on openrouter.ai"),
                        Err(e2) => format!("the new key could not be deleted ({e}) nor disabled ({e2}): delete the key {} on openrouter.ai", mask(&new_key)),
                    },
                };
                return Err(OpsError::Rotation {
                    client: c.id.clone(),
                    message: format!(
                        "the tracker did not take the new key ({}); it still uses the old key {}, which stays enabled; {undo}. Check the tracker (status, logs) and rotate again",
                        put_error.unwrap_or_else(|| "its status still reports the old key".into()),
                        old_label.as_deref().unwrap_or("(unknown)")
                    ),
                });
            }
            Handover::InUseNotChecked(_) | Handover::Unknown(_) => {}
        }
        // From here the tracker may be using the new key: it is never disabled, and the
        // keychain keeps it (the tracker also stores it on its data volume).
        let kc4 = kc.clone();
        let cid = c.id.clone();
        let nk = new_key.clone();
        let in_use = matches!(seen, Handover::Confirmed | Handover::InUseNotChecked(_));
        if in_use {
            blocking(move || kc4.set(SecretKind::OpenRouter, &cid, &nk)).await?;
        }
        // On a swarm the tracker's Docker secret follows: secrets are immutable, so the
        // new key is a new secret version mounted under the same file name.
        if seen == Handover::Confirmed {
            if let Err(e) = self.swarm_key_secret(&c, &new_key).await {
                let w = format!(
                    "the tracker uses the new key, but its Docker secret was not renewed ({e}); the tracker keeps the key on its data volume, so it survives a restart"
                );
                warning = Some(match warning {
                    Some(x) => format!("{x}; {w}"),
                    None => w,
                });
            }
        }
        let mut old_disabled = false;
        match &seen {
            Handover::Confirmed => {
                if let (Some(h), OldKey::Found { .. } | OldKey::Unknown(_)) = (&old_hash, &old) {
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
            }
            Handover::InUseNotChecked(why) => {
                warning = Some(format!(
                    "the tracker uses the new key but its check of it did not succeed ({why}); the old key was left enabled: when the tracker's status shows the key as ok, disable the old key {} by hand (or rotate again)",
                    old_label.as_deref().unwrap_or("(unknown)")
                ));
            }
            Handover::Unknown(why) => {
                return Err(OpsError::Rotation {
                    client: c.id.clone(),
                    message: format!(
                        "the hand-over could not be confirmed ({}; status: {why}); both keys were left enabled and the keychain still holds the old key. When the tracker answers: if its status reports the key hash {new_hash}, disable the old key {} on openrouter.ai and store the new key; otherwise delete the new key {}",
                        put_error.unwrap_or_else(|| "no error from the hand-over".into()),
                        old_label.as_deref().unwrap_or("(unknown)"),
                        mask(&new_key),
                    ),
                });
            }
            Handover::OldKeyInUse => unreachable!("returned above"),
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
            follow_up: follow_up(&new_name),
        };
        let key = rotations_key(&c.id);
        let stored = self.cache.get_meta(&key).await?;
        self.cache
            .set_meta(&key, &append_rotation(stored.as_deref(), rot.clone()))
            .await?;
        tracing::info!(client = %c.id, new = %rot.new_label, old = ?rot.old_label, "OpenRouter key rotated");
        Ok(rot)
    }

    /// A client on a swarm host: its tracker service gets the new key as the next version
    /// of its `openrouter-key` secret (`mai-<id>-openrouter-key-v<N+1>`, same file name),
    /// Swarm replaces the task, the tracker answers again, and the old version is removed.
    /// A plain host: nothing to do (the key lives in the tracker's secrets volume and the
    /// hand-over file).
    async fn swarm_key_secret(
        &self,
        c: &crate::fleet::Client,
        new_key: &str,
    ) -> Result<(), String> {
        use crate::ops::lifecycle::{secret_labels, ClientPair, SECRET_OPENROUTER_KEY};
        use crate::swarm;
        let host = self.fleet.host(&c.host).expect("validated at parse");
        if host.mode != crate::fleet::HostMode::Swarm {
            return Ok(());
        }
        let d = crate::docker::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let pair = ClientPair::of(&c.id);
        let svc = swarm::service(&d, &host.name, &pair.tracker_container)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no service {} on {}", pair.tracker_container, host.name))?;
        let current = swarm::secret_refs(&svc)
            .into_iter()
            .find(|r| {
                r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(SECRET_OPENROUTER_KEY)
            })
            .and_then(|r| r.secret_name);
        let version = current
            .as_deref()
            .and_then(swarm::secret_version)
            .unwrap_or(1)
            + 1;
        let name = swarm::secret_name(&c.id, SECRET_OPENROUTER_KEY, version);
        let id = swarm::create_secret(
            &d,
            &host.name,
            &name,
            new_key,
            secret_labels(&pair, SECRET_OPENROUTER_KEY, version),
        )
        .await
        .map_err(|e| e.to_string())?;
        if let Err(e) = swarm::swap_secret(
            &d,
            &host.name,
            &pair.tracker_container,
            SECRET_OPENROUTER_KEY,
            &id,
            &name,
        )
        .await
        {
            let _ = swarm::remove_secret(&d, &host.name, &name).await;
            return Err(e.to_string());
        }
        swarm::wait_converged(
            &d,
            &host.name,
            &pair.tracker_container,
            swarm::CONVERGE_WITHIN,
        )
        .await
        .map_err(|e| e.to_string())?;
        let t = self.tracker(&c.id).await.map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + swarm::CONVERGE_WITHIN;
        while let Err(e) = t.ready().await {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the tracker is not ready after the secret update: {e}"
                ));
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
        if let Some(old) = current.filter(|o| o != &name) {
            swarm::remove_secret(&d, &host.name, &old)
                .await
                .map_err(|e| e.to_string())?;
        }
        tracing::info!(client = %c.id, secret = %name, "the tracker service mounts the new key's secret");
        Ok(())
    }

    pub async fn rotations(&self, id: &str) -> Result<Vec<Rotation>, OpsError> {
        let stored = self.cache.get_meta(&rotations_key(id)).await?;
        Ok(parse_rotations(stored.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_key_is_read_by_its_hash_lookup() {
        let k: ApiKey = serde_json::from_value(serde_json::json!({
            "hash": "ab", "workspace_id": "7d3c1f0e-2b4a-4c5d-8e9f-0a1b2c3d4e5f"
        }))
        .unwrap();
        assert_eq!(
            old_key_from(Ok(k)),
            OldKey::Found {
                workspace_id: Some("7d3c1f0e-2b4a-4c5d-8e9f-0a1b2c3d4e5f".into())
            }
        );
        let e = mai_core::openrouter::ApiError::from_response(
            "GET /keys/{hash}",
            404,
            &Default::default(),
            br#"{"error":{"code":404,"message":"not found"}}"#,
        );
        assert_eq!(old_key_from(Err(OpenRouterError::Api(e))), OldKey::Missing);
        assert!(follow_up("mai-acme-1")[0].contains("mai-acme-1"));
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
            follow_up: Vec::new(),
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
