//! Crash journal of generation ids seen by the proxy.
//!
//! The ledger write happens off the hot path, so a `kill -9` could lose events still
//! queued for the writer. To keep "no generation lost" without putting SQLite on the
//! hot path, the proxy appends one short line per generation id to this file the
//! moment it learns the id (one `write` syscall; the page cache survives a process
//! kill). On start-up, and when the file grows, ids not in the ledger are recorded as
//! provisional and reconciliation completes them.
//!
//! # fsync policy: what a power loss can lose
//!
//! Appends are not fsynced: an fsync per generation would put a disk flush (about a
//! millisecond on an SSD, far more on a network disk) on every proxied request, which
//! is the cost SQLite's `synchronous=FULL` pays once per *batch* in the ledger instead.
//! So the journal survives a process crash or `kill -9` (the page cache is the kernel's,
//! not the process's), but a power loss or kernel crash can lose its lines written
//! since the kernel's last writeback (ext4 commits every 5 s by default). What that
//! loses in the ledger is only the events that were *also* still in the writer's queue
//! at that instant (the queue is committed, with fsync, within milliseconds when the
//! ledger is healthy; longer while it is failing): their generations are missing until
//! reconciliation against OpenRouter's `/key` totals shows the drift.
//!
//! # Bad lines
//!
//! Reading never stops start-up over a bad line. A torn line (killed mid-write), a line
//! that is not an entry, one longer than [`MAX_LINE_BYTES`] or one with an unusable
//! generation id is appended to the quarantine file next to the journal
//! (`<db>.journal.quarantine`), counted ([`Journal::quarantined`], exported as
//! `mai_journal_quarantined_total`) and logged. Oversize attribution fields in an
//! otherwise good entry are cut to `MAX_FIELD_BYTES`, keeping the generation.

use chrono::{DateTime, Utc};
use mai_core::usage::{
    bound_context, bound_field, bound_user, ChatContext, UserRef, MAX_FIELD_BYTES,
    MAX_GENERATION_ID_BYTES,
};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Rotate once the live file is this large.
pub const ROTATE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest line read back. A bounded entry is well under 8 KiB even with every field
/// JSON-escaped; anything longer is corruption and is quarantined unread.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

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

impl JournalEntry {
    /// Cuts the attribution fields to `MAX_FIELD_BYTES` (the same bound the ledger
    /// applies, `mai_core::usage::bound_field`). The id is not cut: a cut id names
    /// another generation.
    pub fn bound_fields(&mut self) {
        bound_field(&mut self.model, MAX_FIELD_BYTES);
        bound_user(&mut self.user);
        bound_context(&mut self.context);
    }

    fn is_bounded(&self) -> bool {
        let mut b = self.clone();
        b.bound_fields();
        b == *self
    }
}

pub struct Journal {
    path: PathBuf,
    old_path: PathBuf,
    quarantine_path: PathBuf,
    file: Mutex<(File, u64)>,
    quarantined: AtomicU64,
}

impl Journal {
    /// Opens the journal next to the ledger (`<db>.journal`).
    pub fn open(db_path: &Path) -> std::io::Result<Journal> {
        let path = PathBuf::from(format!("{}.journal", db_path.display()));
        let old_path = PathBuf::from(format!("{}.journal.old", db_path.display()));
        let quarantine_path = PathBuf::from(format!("{}.journal.quarantine", db_path.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut len = file.metadata()?.len();
        // A line torn by a kill is sealed with a newline, so the next append starts a
        // line of its own instead of being glued to (and lost with) the torn one.
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                len += 1;
            }
        }
        Ok(Journal {
            path,
            old_path,
            quarantine_path,
            file: Mutex::new((file, len)),
            quarantined: AtomicU64::new(0),
        })
    }

    /// Lines set aside in the quarantine file since start.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }

    pub fn quarantine_path(&self) -> &Path {
        &self.quarantine_path
    }

    /// Appends one entry, its attribution fields bounded ([`JournalEntry::bound_fields`]).
    /// Errors are logged, not returned: a journal failure must not fail the client's
    /// request (the proxy record usually arrives anyway). Not fsynced (see the module
    /// documentation for what a power loss can lose).
    pub fn append(&self, e: &JournalEntry) {
        let bounded;
        let e = if e.is_bounded() {
            e
        } else {
            let mut b = e.clone();
            b.bound_fields();
            bounded = b;
            &bounded
        };
        let mut line = match serde_json::to_vec(e) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        match g.0.write_all(&line) {
            Ok(()) => g.1 += line.len() as u64,
            Err(err) => {
                // A failed append (ENOSPC mid-line) can leave part of the line behind;
                // the next append would be glued onto it and both lines lost at replay.
                // Cut the file back to its last whole line: shrinking a file needs no
                // free space, so this works on a full disk too.
                let cut = g.0.set_len(g.1);
                tracing::error!(path = %self.path.display(), error = %err, cut_back = cut.is_ok(), "cannot append to the crash journal; check disk space")
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
        let (entries, bad) = read_entries(&self.old_path)?;
        if !bad.is_empty() {
            self.quarantine(&bad);
        }
        Ok(entries)
    }

    /// Appends the bad lines to the quarantine file, counts and logs them. A failure to
    /// write the quarantine file is logged, never fatal: the lines are unusable anyway.
    fn quarantine(&self, bad: &[(Vec<u8>, String)]) {
        self.quarantined
            .fetch_add(bad.len() as u64, Ordering::Relaxed);
        let reasons: Vec<&str> = bad.iter().take(3).map(|(_, r)| r.as_str()).collect();
        tracing::warn!(
            lines = bad.len(),
            quarantine = %self.quarantine_path.display(),
            first_reasons = ?reasons,
            "crash journal: unusable lines set aside; the rest was replayed"
        );
        let r = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.quarantine_path)
            .and_then(|mut f| {
                let mut out = Vec::new();
                for (line, _) in bad {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
                f.write_all(&out)
            });
        if let Err(e) = r {
            tracing::error!(path = %self.quarantine_path.display(), error = %e, "cannot write the crash journal's quarantine file");
        }
    }

    pub fn done_with_old(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.old_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Which journal lines are a person's (GDPR erasure): their Open WebUI user id, or
/// their e-mail in any ASCII case, as [`mai_core::ledger::Ledger::erase_user`] matches.
#[derive(Debug, Clone)]
pub struct ScrubSubject {
    pub id: Option<String>,
    pub email: Option<String>,
    /// What the person's entries carry from now on (their generation ids stay: the
    /// journal is what keeps a crash from losing a generation).
    pub pseudonym: String,
}

impl ScrubSubject {
    fn matches(&self, u: &UserRef) -> bool {
        let id = self.id.is_some() && u.id == self.id;
        let email = match (&self.email, &u.email) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        id || email
    }

    /// The raw line mentions the person (for lines that are not entries).
    fn mentioned_in(&self, line: &[u8]) -> bool {
        let lower = line.to_ascii_lowercase();
        [self.id.as_deref(), self.email.as_deref()]
            .into_iter()
            .flatten()
            .map(|n| n.to_ascii_lowercase().into_bytes())
            .any(|n| !n.is_empty() && lower.windows(n.len()).any(|w| w == n.as_slice()))
    }
}

impl Journal {
    /// Removes a person's identity from the journal files (GDPR art. 17): in the live
    /// and the `.old` journal their entries get the pseudonym as user and lose the chat
    /// id (the generation id, model and time stay, so a crash still loses nothing);
    /// quarantined lines mentioning them are dropped (they are unusable anyway). Files
    /// are rewritten to a temporary file and renamed over the old one, which leaves the
    /// old bytes to the file system's free space, like the ledger's truncated WAL.
    /// Returns the lines changed or dropped.
    pub fn scrub(&self, who: &ScrubSubject) -> std::io::Result<u64> {
        let mut n = 0;
        {
            // Appends wait while the live file is rewritten.
            let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let (changed, len) = rewrite(&self.path, |line| scrub_entry(line, who))?;
            if changed > 0 {
                let f = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(&self.path)?;
                *g = (f, len);
            }
            n += changed;
        }
        n += rewrite(&self.old_path, |line| scrub_entry(line, who))?.0;
        n += rewrite(&self.quarantine_path, |line| {
            if who.mentioned_in(line) {
                Some(None)
            } else {
                None
            }
        })?
        .0;
        Ok(n)
    }
}

/// `None`: keep the line; `Some(None)`: drop it; `Some(Some(l))`: replace it.
type LineEdit = Option<Option<Vec<u8>>>;

fn scrub_entry(line: &[u8], who: &ScrubSubject) -> LineEdit {
    match serde_json::from_slice::<JournalEntry>(line) {
        Ok(mut e) if who.matches(&e.user) => {
            e.user = UserRef::erased(&who.pseudonym);
            e.context.chat_id = None;
            Some(serde_json::to_vec(&e).ok())
        }
        Ok(_) => None,
        // Not an entry (torn): it would be quarantined at the next replay.
        Err(_) if who.mentioned_in(line) => Some(None),
        Err(_) => None,
    }
}

/// Applies `edit` to each line of `path` (absent: nothing to do); rewrites the file
/// only when a line changed. Returns (lines changed, the file's new length).
fn rewrite(path: &Path, edit: impl Fn(&[u8]) -> LineEdit) -> std::io::Result<(u64, u64)> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(data.len());
    let mut changed = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        match edit(body) {
            None => out.extend_from_slice(line),
            Some(None) => changed += 1,
            Some(Some(new)) => {
                changed += 1;
                out.extend_from_slice(&new);
                out.push(b'\n');
            }
        }
    }
    if changed == 0 {
        return Ok((0, data.len() as u64));
    }
    let tmp = PathBuf::from(format!("{}.scrub", path.display()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok((changed, out.len() as u64))
}

/// Good entries, and bad lines with why. Reads at most [`MAX_LINE_BYTES`] of a line.
type Entries = (Vec<JournalEntry>, Vec<(Vec<u8>, String)>);

fn read_entries(path: &Path) -> std::io::Result<Entries> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e),
    };
    read_entries_from(BufReader::new(f))
}

/// The entries of a journal's bytes, one JSON object per line: public for the fuzz
/// target (fuzz/fuzz_targets/journal_lines.rs). Bad lines are left out.
pub fn read_from(r: impl BufRead) -> std::io::Result<Vec<JournalEntry>> {
    read_entries_from(r).map(|(good, _)| good)
}

/// Lines are bytes, not text: a torn write can end in the middle of a multi-byte
/// character (a user's name), and a crash can leave garbage blocks; such a line is set
/// aside like any other bad line, never fails the whole read (and with it start-up).
fn read_entries_from(mut r: impl BufRead) -> std::io::Result<Entries> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES {
            skip_line(&mut r)?;
            buf.truncate(MAX_LINE_BYTES);
            bad.push((
                buf.clone(),
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let line = buf.trim_ascii_end();
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(e) => good.push(e),
            Err(why) => bad.push((line.to_vec(), why)),
        }
    }
    Ok((good, bad))
}

/// One line into an entry: JSON of the entry with a usable id; attribution bounded.
fn parse_line(line: &[u8]) -> Result<JournalEntry, String> {
    let mut e: JournalEntry =
        serde_json::from_slice(line).map_err(|e| format!("not a journal entry: {e}"))?;
    if e.id.trim().is_empty() || e.id.len() > MAX_GENERATION_ID_BYTES {
        return Err(format!(
            "generation id of {} bytes (1 to {MAX_GENERATION_ID_BYTES} expected)",
            e.id.len()
        ));
    }
    e.bound_fields();
    Ok(e)
}

/// Consumes the rest of an over-long line.
fn skip_line(r: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
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

    fn entry(id: &str) -> JournalEntry {
        JournalEntry {
            id: id.into(),
            at: Utc::now(),
            model: "a/b".into(),
            user: UserRef::default(),
            context: ChatContext::default(),
        }
    }

    #[test]
    fn bad_lines_are_quarantined_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        let live = dir.path().join("t.sqlite.journal");
        let good = |id: &str| serde_json::to_string(&entry(id)).unwrap();
        let mut oversize = entry("gen-big");
        oversize.user.name = Some("ą".repeat(5000));
        oversize.model = "m".repeat(3000);
        let mut content = Vec::new();
        for l in [
            good("gen-1"),
            "{\"id\":\"gen-torn\",\"at\":\"2026".into(),
            "not json at all".into(),
            serde_json::to_string(&entry(&"x".repeat(300))).unwrap(),
            serde_json::to_string(&oversize).unwrap(),
            String::new(),
            good("gen-2"),
        ] {
            content.extend_from_slice(l.as_bytes());
            content.push(b'\n');
        }
        content.extend_from_slice(&[0xff, 0xfe, b'{', b'\n']); // not UTF-8
        content.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES * 2));
        content.push(b'\n');
        content.extend_from_slice(good("gen-3").as_bytes());
        content.extend_from_slice(b"\n{\"id\":\"gen-4"); // torn last line, no newline
        std::fs::write(&live, &content).unwrap();

        let j = Journal::open(&db).unwrap();
        // The torn tail was sealed: the next append is a line of its own.
        j.append(&entry("gen-5"));
        let got: Vec<String> = j.rotate().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(got, ["gen-1", "gen-big", "gen-2", "gen-3", "gen-5"]);
        assert_eq!(j.quarantined(), 6);
        let q = std::fs::read(j.quarantine_path()).unwrap();
        assert_eq!(q.iter().filter(|b| **b == b'\n').count(), 6);
        assert!(q.len() < 2 * MAX_LINE_BYTES, "quarantine is bounded too");
        j.done_with_old().unwrap();
    }

    #[test]
    fn appended_entries_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        let j = Journal::open(&db).unwrap();
        let mut e = entry("gen-1");
        e.user.email = Some("é".repeat(10_000));
        e.model = "m".repeat(10_000);
        j.append(&e);
        assert!(j.len() < 4 * MAX_FIELD_BYTES as u64, "{}", j.len());
        let back = j.rotate().unwrap();
        assert_eq!(back[0].user.email.as_ref().unwrap().len(), MAX_FIELD_BYTES);
        assert_eq!(back[0].model.len(), MAX_FIELD_BYTES);
    }

    #[test]
    fn scrub_replaces_the_persons_identity_and_keeps_the_generation_ids() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        let j = Journal::open(&db).unwrap();
        let with = |id: &str, email: &str, name: &str| {
            let mut e = entry(id);
            e.user = UserRef {
                id: Some(format!("u-{name}")),
                email: Some(email.into()),
                name: Some(name.into()),
            };
            e.context.chat_id = Some(format!("chat-{id}"));
            e
        };
        j.append(&with("gen-1", "zofia@acme.pl", "Zofia"));
        j.append(&with("gen-2", "jan@acme.pl", "Jan"));
        j.append(&with("gen-3", "ZOFIA@acme.pl", "Zofia"));
        std::fs::write(
            j.quarantine_path(),
            "{\"id\":\"gen-0\",\"user\":{\"email\":\"zofia@acme.pl\"\nnot json\n",
        )
        .unwrap();
        let who = ScrubSubject {
            id: None,
            email: Some("zofia@acme.pl".into()),
            pseudonym: "erased-00".into(),
        };
        assert_eq!(j.scrub(&who).unwrap(), 3);
        // Appends go on after the rewrite.
        j.append(&entry("gen-4"));
        let live = std::fs::read_to_string(format!("{}.journal", db.display())).unwrap();
        assert!(!live.to_lowercase().contains("zofia"), "{live}");
        assert!(!live.contains("chat-gen-1"), "{live}");
        assert!(live.contains("Jan"), "{live}");
        assert_eq!(
            std::fs::read_to_string(j.quarantine_path()).unwrap(),
            "not json\n"
        );
        let back = j.rotate().unwrap();
        let ids: Vec<&str> = back.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["gen-1", "gen-2", "gen-3", "gen-4"]);
        assert_eq!(back[0].user, UserRef::erased("erased-00"));
        assert_eq!(j.scrub(&who).unwrap(), 0, "nothing left");
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
            context: ChatContext::default(),
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
