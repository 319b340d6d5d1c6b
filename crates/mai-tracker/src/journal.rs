//! Crash journal of generation ids seen by the proxy.
//!
//! The ledger write happens off the hot path, so a `kill -9` could lose events still
//! queued for the writer. To keep "no generation lost" without putting SQLite on the
//! hot path, the proxy appends one short line per generation id to this file the
//! moment it learns the id (one `write` syscall; the page cache survives a process
//! kill). On start-up, and when the file grows, ids not in the ledger are recorded as
//! provisional and reconciliation completes them.

use chrono::{DateTime, Utc};
use mai_core::usage::UserRef;
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
    read_from(BufReader::new(f))
}

/// The entries of a journal's bytes, one JSON object per line. Public for the fuzz
/// target (fuzz/fuzz_targets/journal_lines.rs).
///
/// Lines are bytes, not text: a torn write can end in the middle of a multi-byte
/// character (a user's name), and a crash can leave garbage blocks. Such a line is
/// skipped like any other bad line; reading it as UTF-8 text failed the whole file,
/// and with it the tracker's start-up, on every restart (found by fuzzing).
pub fn read_from(mut r: impl BufRead) -> std::io::Result<Vec<JournalEntry>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(out);
        }
        // A torn line (killed mid-write) is skipped; its id is also in the client's
        // response, and reconciliation by /key drift will show it.
        if let Ok(e) = serde_json::from_slice::<JournalEntry>(&line) {
            out.push(e);
        }
    }
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
            });
        }
        assert!(!j.is_empty());
        let old = j.rotate().unwrap();
        assert_eq!(old.len(), 3);
        assert_eq!(j.len(), 0);
        j.done_with_old().unwrap();
        // Reopening sees an empty live file and no old file.
        drop(j);
        let j = Journal::open(&db).unwrap();
        assert!(j.rotate().unwrap().is_empty());
    }

    /// Found by fuzz/fuzz_targets/journal_lines.rs: a line that is not UTF-8 (here
    /// bytes 0x91 0xa5, as a torn write leaves a cut multi-byte character) made the
    /// whole journal unreadable, so `rotate` failed and the tracker could not start.
    #[test]
    fn a_line_that_is_not_utf8_is_skipped_not_fatal() {
        let crash: &[u8] = &[
            123, 34, 105, 100, 34, 58, 34, 103, 101, 110, 45, 50, 34, 44, 34, 97, 116, 34, 34, 109,
            145, 165, 101, 108, 34, 58, 34, 111, 112, 101, 110, 97, 105, 47, 103, 112, 58, 48, 49,
            90, 34, 44, 34, 109, 111, 100, 101, 108, 34, 58, 34, 111, 112, 1, 0, 0, 0, 0, 0, 0, 98,
            45, 52, 111, 45, 109, 105, 110, 105, 34, 125, 10,
        ];
        assert!(read_from(crash).unwrap().is_empty());

        // On disk, between good entries: a torn "Zoë" followed by the next append.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        let good = |id: &str| JournalEntry {
            id: id.into(),
            at: Utc::now(),
            model: "a/b".into(),
            user: UserRef::default(),
        };
        let mut bytes = serde_json::to_vec(&good("gen-1")).unwrap();
        bytes.extend_from_slice(b"\n{\"id\":\"gen-torn\",\"user\":{\"name\":\"Zo\xc3");
        bytes.extend_from_slice(crash);
        bytes.extend(serde_json::to_vec(&good("gen-2")).unwrap());
        bytes.push(b'\n');
        std::fs::write(format!("{}.journal", db.display()), bytes).unwrap();
        let j = Journal::open(&db).unwrap();
        let ids: Vec<String> = j.rotate().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["gen-1", "gen-2"]);
    }
}
