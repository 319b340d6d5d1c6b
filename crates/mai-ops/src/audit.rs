//! The operator's audit log: one JSON object per line, appended to
//! `<console data_dir>/audit.log`, never rewritten.
//!
//! Why a file of its own and not the console cache: the cache can be deleted and
//! pulled again from the trackers, an audit trail cannot. Who did it is the OS user
//! running the console or maictl (the person at the keyboard; the console has no
//! accounts of its own). A record names a person only by a hash
//! ([`mai_core::ledger::subject_hash`]), so the log itself holds no personal data.
//! Each append is one `write(2)` on a file opened with `O_APPEND` (mode 0600), then
//! fsynced: records of two processes (console and maictl) never interleave, and a
//! record written is on disk when the action reports success.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// The OS user ([`os_user`]).
    pub actor: String,
    /// `privacy_erase`, `privacy_export`.
    pub action: String,
    pub client: String,
    /// The person, as [`mai_core::ledger::subject_hash`] names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_hash: Option<String>,
    /// `ok`, `partial` (some of it done: see `error`) or `failed`.
    pub outcome: String,
    /// Counts of what was done (events changed, exported, ...).
    #[serde(default)]
    pub detail: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot append to the audit log {}: {source}; the action is not done without its record, fix the file or its directory and retry", path.display())]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The console's log: `audit.log` in the fleet file's `data_dir`.
    pub fn in_dir(data_dir: &Path) -> AuditLog {
        AuditLog {
            path: data_dir.join("audit.log"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (one line), fsynced.
    pub fn append(&self, r: &AuditRecord) -> Result<(), AuditError> {
        let err = |source| AuditError {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut line = serde_json::to_vec(r).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&self.path).map_err(err)?;
        f.write_all(&line).map_err(err)?;
        f.sync_data().map_err(err)
    }

    /// Every record, oldest first; lines that are not records are skipped.
    pub fn read(&self) -> Result<Vec<AuditRecord>, AuditError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) => Ok(s
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(AuditError {
                path: self.path.clone(),
                source: e,
            }),
        }
    }
}

/// The OS user running this process: `$USER`, else `$LOGNAME`, else `uid:<n>` (from
/// `/proc/self`), else `unknown`.
pub fn os_user() -> String {
    for v in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(u) = std::env::var(v) {
            let u = u.trim();
            if !u.is_empty() {
                return u.to_owned();
            }
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata("/proc/self") {
            return format!("uid:{}", m.uid());
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_one_per_line_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(&dir.path().join("sub"));
        for (i, action) in ["privacy_export", "privacy_erase"].into_iter().enumerate() {
            log.append(&AuditRecord {
                at: Utc::now(),
                actor: os_user(),
                action: action.into(),
                client: "acme".into(),
                subject_hash: Some("ab".repeat(32)),
                outcome: "ok".into(),
                detail: serde_json::json!({ "events": i }),
                error: None,
            })
            .unwrap();
        }
        let back = log.read().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].action, "privacy_erase");
        assert!(!back[0].actor.is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
