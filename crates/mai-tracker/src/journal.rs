//! Crash journal of generation ids seen by the proxy.
//!
//! The ledger write happens off the hot path, so a `kill -9` could lose events still
//! queued for the writer. To keep "no generation lost" without putting SQLite on the
//! hot path, the proxy appends one short line per generation id to this file the
//! moment it learns the id (one `write` syscall; the page cache survives a process
//! kill). On start-up, and when the file grows, ids not in the ledger are recorded as
//! provisional and reconciliation completes them.

use chrono::{DateTime, Utc};
use mai_core::usage::{ChatContext, UserRef};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Rotate once the live file is this large.
pub const ROTATE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub model: String,
    #[serde(default)]
    pub user: UserRef,
    /// Chat id, task and groups; absent from lines written before they were kept (and
    /// left out when unknown), read as unknown.
    #[serde(default, skip_serializing_if = "ChatContext::is_empty")]
    pub context: ChatContext,
}

pub struct Journal {
    path: PathBuf,
    old_path: PathBuf,
    file: Mutex<(File, u64)>,
}

impl Journal {
    /// Opens the journal next to the ledger (`<db>.journal`).
    pub fn open(db_path: &Path) -> std::io::Result<Journal> {
        let path = PathBuf::from(format!("{}.journal", db_path.display()));
        let old_path = PathBuf::from(format!("{}.journal.old", db_path.display()));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(Journal {
            path,
            old_path,
            file: Mutex::new((file, len)),
        })
    }

    /// Appends one entry. Errors are logged, not returned: a journal failure must not
    /// fail the client's request (the proxy record usually arrives anyway).
    pub fn append(&self, e: &JournalEntry) {
        let mut line = match serde_json::to_vec(e) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        match g.0.write_all(&line) {
            Ok(()) => g.1 += line.len() as u64,
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, "cannot append to the crash journal; check disk space")
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.file.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the live file aside (to `.old`, unless an unprocessed `.old` exists) and
    /// starts a fresh one. Returns the entries of the `.old` file; the caller records
    /// them and then calls [`Journal::done_with_old`].
    pub fn rotate(&self) -> std::io::Result<Vec<JournalEntry>> {
        {
            let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if !self.old_path.exists() && g.1 > 0 {
                std::fs::rename(&self.path, &self.old_path)?;
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                *g = (f, 0);
            }
        }
        read_entries(&self.old_path)
    }

    pub fn done_with_old(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.old_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn read_entries(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        // A torn last line (killed mid-write) is skipped; its id is also in the
        // client's response, and reconciliation by /key drift will show it.
        if let Ok(e) = serde_json::from_str::<JournalEntry>(&line) {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_rotate_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        let j = Journal::open(&db).unwrap();
        for i in 0..3 {
            j.append(&JournalEntry {
                id: format!("gen-{i}"),
                at: Utc::now(),
                model: "a/b".into(),
                user: UserRef::default(),
                context: ChatContext {
                    chat_id: Some(format!("chat-{i}")),
                    task: (i == 1).then(|| "title_generation".into()),
                    groups: Some("Księgowość, Zarząd".into()),
                },
            });
        }
        assert!(!j.is_empty());
        let old = j.rotate().unwrap();
        assert_eq!(old.len(), 3);
        assert_eq!(old[1].context.task.as_deref(), Some("title_generation"));
        assert_eq!(old[2].context.groups.as_deref(), Some("Księgowość, Zarząd"));
        assert_eq!(j.len(), 0);
        j.done_with_old().unwrap();
        // Reopening sees an empty live file and no old file.
        drop(j);
        let j = Journal::open(&db).unwrap();
        assert!(j.rotate().unwrap().is_empty());
    }

    #[test]
    fn lines_written_before_the_context_existed_still_parse() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        std::fs::write(
            format!("{}.journal", db.display()),
            concat!(
                r#"{"id":"gen-old","at":"2026-11-20T10:00:00Z","model":"a/b","user":{"id":"u1","email":null,"name":"Zofia Łukasiewicz"}}"#,
                "\n",
                r#"{"id":"gen-older","at":"2026-11-20T10:00:01Z","model":"a/b"}"#,
                "\n"
            ),
        )
        .unwrap();
        let j = Journal::open(&db).unwrap();
        let old = j.rotate().unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[0].user.name.as_deref(), Some("Zofia Łukasiewicz"));
        assert_eq!(old[0].context, ChatContext::default());
        assert!(old[1].user.is_unknown());
    }
}
