//! The OpenRouter key the console handed over, kept on the tracker's data volume.
//!
//! A rotation hands the new key to the running tracker (`PUT /api/v1/admin/openrouter-key`)
//! and then disables the old one. The container's environment still holds the old key
//! (`OPENROUTER_API_KEY`): were the hand-over kept only in memory, the next restart would
//! go back to a disabled key and the client's chat would stop. So the handed-over key is
//! written next to the ledger (`<db>.openrouter-key`, mode 0600, temp file + fsync +
//! rename + directory fsync: a crash leaves the old file or the new one, never half of
//! one) *before* the tracker switches to it, and start-up prefers it to the environment's.
//!
//! One exception: an environment key this tracker has never used (not in the key
//! history) is an operator's deliberate change (a redeploy with a new key); it wins and
//! the stored file is removed. An environment key that *is* in the history is the stale
//! one a rotation replaced.
//!
//! The file holds a secret: it is never logged (labels only, `sk-or-v1-…abcd`), and it
//! lives on the same volume as the ledger, which the operator already protects.

use chrono::{DateTime, Utc};
use mai_core::openrouter::SecretKey;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's content. Not a wire type: only this module reads it.
#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    #[serde(default)]
    name: Option<String>,
    at: DateTime<Utc>,
}

/// A key read back from the file.
#[derive(Debug, Clone)]
pub struct HandedOver {
    pub key: SecretKey,
    pub name: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("writing the handed-over key to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the handed-over key {path}: {detail}")]
    Read { path: PathBuf, detail: String },
}

/// Where the key is kept for the ledger at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".openrouter-key");
    PathBuf::from(p)
}

/// Writes `key` atomically with mode 0600. Returns only when the file and its directory
/// entry are on disk, so a power loss after the tracker switched cannot bring back the
/// old key.
pub fn store(db: &Path, key: &SecretKey, name: Option<&str>) -> Result<(), HandoverError> {
    let path = path_for(db);
    let err = |source| HandoverError::Write {
        path: path.clone(),
        source,
    };
    let body = serde_json::to_vec(&Stored {
        key: key.expose().to_owned(),
        name: name.map(str::to_owned),
        at: Utc::now(),
    })
    .expect("plain struct");
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(err)?;
        f.write_all(&body).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &path).map_err(err)?;
    sync_dir(&path).map_err(err)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::File::open(d)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

/// The stored key, `None` when there is no file.
pub fn load(db: &Path) -> Result<Option<HandedOver>, HandoverError> {
    let path = path_for(db);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(HandoverError::Read {
                path,
                detail: e.to_string(),
            })
        }
    };
    let s: Stored = serde_json::from_slice(&text).map_err(|e| HandoverError::Read {
        path: path.clone(),
        // serde's message may quote the content: say where, not what.
        detail: format!(
            "not a stored key (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    if s.key.trim().is_empty() {
        return Err(HandoverError::Read {
            path,
            detail: "the stored key is empty".into(),
        });
    }
    Ok(Some(HandedOver {
        key: SecretKey::new(s.key.trim()),
        name: s.name,
        at: s.at,
    }))
}

/// Removes the stored key (the environment's new key replaces it).
pub fn remove(db: &Path) -> Result<(), HandoverError> {
    let path = path_for(db);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(&path).map_err(|source| HandoverError::Write { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(HandoverError::Write { path, source }),
    }
}

/// Which key start-up uses.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    /// The environment's key: no hand-over stored, or the stored one is that same key.
    Environment,
    /// The handed-over key: the environment's is one a rotation replaced.
    HandedOver,
    /// The environment's key is one this tracker never used: an operator's new key; the
    /// stored hand-over is obsolete.
    EnvironmentIsNewer,
}

/// Decides between the environment's key and the stored hand-over. `known_hashes` are the
/// key history's hashes (every key this tracker used and still remembers).
pub fn choose(env: &SecretKey, stored: Option<&HandedOver>, known_hashes: &[String]) -> Choice {
    let Some(s) = stored else {
        return Choice::Environment;
    };
    let env_hash = env.hash();
    if s.key.hash() == env_hash {
        Choice::Environment
    } else if known_hashes.contains(&env_hash) {
        Choice::HandedOver
    } else {
        Choice::EnvironmentIsNewer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::new(format!("sk-or-v1-{}", format!("{n:02x}").repeat(32)))
    }

    #[test]
    fn stored_atomically_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tracker.sqlite");
        assert!(load(&db).unwrap().is_none());
        store(&db, &key(1), Some("mai-acme-1")).unwrap();
        store(&db, &key(2), None).unwrap();
        let got = load(&db).unwrap().unwrap();
        assert_eq!(got.key.hash(), key(2).hash());
        assert_eq!(got.name, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_for(&db))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["tracker.sqlite.openrouter-key"],
            "no temp file left"
        );
        remove(&db).unwrap();
        assert!(load(&db).unwrap().is_none());
        remove(&db).unwrap();
    }

    #[test]
    fn a_damaged_file_is_an_error_that_does_not_quote_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        std::fs::write(path_for(&db), "sk-or-v1-secret{").unwrap();
        let e = load(&db).unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn the_handed_over_key_wins_over_a_replaced_one_not_over_a_new_one() {
        let stored = HandedOver {
            key: key(2),
            name: None,
            at: Utc::now(),
        };
        let known = vec![key(1).hash(), key(2).hash()];
        assert_eq!(choose(&key(1), None, &known), Choice::Environment);
        assert_eq!(choose(&key(2), Some(&stored), &known), Choice::Environment);
        assert_eq!(choose(&key(1), Some(&stored), &known), Choice::HandedOver);
        assert_eq!(
            choose(&key(3), Some(&stored), &known),
            Choice::EnvironmentIsNewer
        );
    }
}
