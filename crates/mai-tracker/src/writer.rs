//! The single ledger writer: every write goes through one channel to one thread.
//!
//! The proxy's hot path only sends a message (no SQLite, no lock held while a client
//! waits); the thread drains whatever is queued and commits it as one transaction, so
//! under load many events share one fsync.
//!
//! # Nothing lost on faults
//!
//! A proxied event leaves the channel only when it is committed, or when it can never
//! be (invalid, above a sanity cap: counted and logged with its id):
//!
//! - A write failing for a reason that may pass (`SQLITE_BUSY`/`LOCKED`, `SQLITE_FULL`,
//!   `SQLITE_READONLY`, I/O errors: [`mai_core::ledger::FailureKind::is_transient`]) keeps the events in
//!   a retry queue and tries again with exponential backoff, 50 ms doubling to 5 s.
//!   SQLite rolls a failed transaction back completely (its atomic commit), so a retry
//!   never doubles anything; SQLite's own guidance for `SQLITE_BUSY` is exactly this,
//!   retry the transaction. Every 5th consecutive failure the connection is reopened,
//!   which is what a process restart would do, without losing the queue.
//! - A panic inside a write is caught (`catch_unwind`); the connection is reopened and
//!   the batch retried one event at a time, so only an event that itself panics is set
//!   aside (counted, logged with its id).
//! - The queue is bounded ([`MAX_PENDING`]). Beyond it new proxy events are dropped from
//!   memory, counted, and left to the crash journal, which has every proxied id
//!   already: journal replay records them as provisional and reconciliation fills in
//!   cost and tokens from OpenRouter.
//! - While the queue holds events that could not be written, `/readyz` answers 503 and
//!   `/metrics` shows `mai_ledger_writer_failing 1`, the failures by kind, the retries
//!   and the pending count.
//!
//! The writer does not exit the process when the ledger stays unwritable: every
//! failure it retries is one a restart does not cure (a full disk, a read-only file
//! system, a lock another process holds), exiting would throw away the in-memory queue
//! (the only copy of the costs when the disk is full, since the journal cannot be
//! appended either), and it would stop the proxy, i.e. the client's chat, too. It
//! stays up, not ready, retrying; the orchestrator and the operator see `/readyz` and
//! the metrics. Only a failure to flush at shutdown makes the process exit non-zero
//! (see [`crate::Tracker::shutdown`]).

use mai_core::ledger::{Erasure, Ledger, LedgerError, PrivacySubject, RecordOutcome};
use mai_core::usage::UsageEvent;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 512;
/// Most proxied events held in memory (queued or waiting for a retry). At the typical
/// ~300 bytes an event this is ~15 MB, minutes of traffic of a busy client; beyond it
/// the crash journal is the backstop.
pub const MAX_PENDING: u64 = 50_000;
/// First wait after a failed write; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between retries. SQLite's busy timeout (5 s) already waits inside
/// each attempt for a lock, so a longer cap only delays recovery.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Consecutive failures after which the connection is reopened.
const REOPEN_EVERY: u32 = 5;

enum Cmd {
    Record(UsageEvent),
    RecordWait(
        Vec<UsageEvent>,
        oneshot::Sender<Result<Vec<RecordOutcome>, String>>,
    ),
    Audited {
        event: UsageEvent,
        actor: String,
        note: String,
        reply: oneshot::Sender<Result<RecordOutcome, String>>,
    },
    /// A setting of the tracker kept in the ledger (the pushed commercial terms): it goes
    /// through this thread like every other write, so the ledger has one writer.
    SetMeta {
        key: &'static str,
        value: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A person's erasure (GDPR art. 17): one transaction, then the file is rebuilt.
    Erase {
        org: String,
        subject: PrivacySubject,
        pseudonym: String,
        actor: String,
        reply: oneshot::Sender<Result<Erasure, String>>,
    },
    Flush(oneshot::Sender<()>),
    /// A restore: the staged ledger file (checked by the caller) replaces the live one,
    /// only while the live one holds no event. See [`LedgerWriter::swap_in_blocking`].
    Swap {
        staged: std::path::PathBuf,
        reply: oneshot::Sender<Result<u64, SwapError>>,
    },
}

/// Why a restore's swap did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The live ledger holds events: a restore never overwrites a ledger in use.
    #[error("this tracker's ledger already holds {0} events")]
    HasEvents(u64),
    #[error("events are waiting to be written (the ledger is failing); restore when /readyz answers 200")]
    Busy,
    #[error("the ledger writer has stopped (see the earlier log lines); restart the tracker")]
    Stopped,
    #[error("swapping in the restored ledger failed: {0}")]
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("the ledger writer has stopped (see the earlier log lines); restart the tracker")]
    Stopped,
    #[error("ledger write failed: {0}")]
    Ledger(String),
}

/// What the writer thread shares with its handles and `/metrics`.
#[derive(Default)]
struct Shared {
    alive: AtomicBool,
    /// Events are waiting because the last write attempt failed.
    failing: AtomicBool,
    written: AtomicU64,
    /// Proxy events in the channel or the retry queue.
    pending: AtomicU64,
    retries: AtomicU64,
    /// Failed write attempts by kind.
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Events given up on, by reason (invalid, over_cap, overflow, panic, queue_full).
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn count(map: &Mutex<BTreeMap<&'static str, u64>>, kind: &'static str, n: u64) {
        *map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += n;
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
}

impl LedgerWriter {
    /// Starts the writer thread owning `ledger`. The thread ends when every handle is
    /// dropped (after a last attempt at what is still queued).
    pub fn spawn(ledger: Ledger) -> (LedgerWriter, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Cmd>();
        let shared = Arc::new(Shared::default());
        shared.alive.store(true, Ordering::SeqCst);
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let mut w = Worker {
                    ledger,
                    rx,
                    sh: sh.clone(),
                    queue: VecDeque::new(),
                    flushes: Vec::new(),
                    backoff: FIRST_BACKOFF,
                    retry_at: None,
                    consecutive: 0,
                };
                // The loop itself catches panics of writes; this outer guard keeps
                // readiness honest if anything else in it ever panics.
                let r = catch_unwind(AssertUnwindSafe(|| w.run()));
                if r.is_err() {
                    tracing::error!("the ledger writer thread panicked outside a write; the tracker is not ready; restart it");
                }
                sh.alive.store(false, Ordering::SeqCst);
            })
            .expect("spawning the ledger writer thread");
        (LedgerWriter { tx, shared }, handle)
    }

    /// Queues one event; never blocks. Attribution fields are cut to
    /// `MAX_FIELD_BYTES` here, at the ledger's door, so an oversize `user` field or
    /// header costs a bounded amount and never gets the event refused.
    pub fn record(&self, mut ev: UsageEvent) {
        ev.bound_fields();
        let sh = &self.shared;
        if sh.pending.load(Ordering::Relaxed) >= MAX_PENDING {
            Shared::count(&sh.dropped, "queue_full", 1);
            tracing::error!(generation_id = %ev.generation_id, max = MAX_PENDING, "ledger write queue full; event left to the crash journal and reconciliation");
            return;
        }
        sh.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Cmd::Record(ev)).is_err() {
            sh.pending.fetch_sub(1, Ordering::Relaxed);
            Shared::count(&sh.dropped, "stopped", 1);
            tracing::error!("ledger writer stopped; a usage event was not queued (reconciliation will recover it from the journal)");
        }
    }

    /// Records events and waits for the outcomes (reconciliation, webhook, journal
    /// replay). Tried once: a failure is returned to the caller, which retries later.
    pub async fn record_wait(
        &self,
        mut evs: Vec<UsageEvent>,
    ) -> Result<Vec<RecordOutcome>, WriterError> {
        evs.iter_mut().for_each(UsageEvent::bound_fields);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::RecordWait(evs, reply))
            .map_err(|_| WriterError::Stopped)?;
        rx.await
            .map_err(|_| WriterError::Stopped)?
            .map_err(WriterError::Ledger)
    }

    pub async fn record_audited(
        &self,
        event: UsageEvent,
        actor: &str,
        note: &str,
    ) -> Result<RecordOutcome, WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Audited {
                event,
                actor: actor.to_owned(),
                note: note.to_owned(),
                reply,
            })
            .map_err(|_| WriterError::Stopped)?;
        rx.await
            .map_err(|_| WriterError::Stopped)?
            .map_err(WriterError::Ledger)
    }

    /// Stores `value` under the ledger meta `key` (committed, fsynced) and waits.
    pub async fn set_meta(&self, key: &'static str, value: String) -> Result<(), WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::SetMeta { key, value, reply })
            .map_err(|_| WriterError::Stopped)?;
        rx.await
            .map_err(|_| WriterError::Stopped)?
            .map_err(WriterError::Ledger)
    }

    /// Erases a person's identity from the ledger ([`Ledger::erase_user`]) after
    /// everything queued before it is committed, so an event of theirs still in the
    /// queue is erased too. Takes as long as rebuilding the file (`VACUUM`); proxy
    /// events wait in the queue meanwhile.
    pub async fn erase_user(
        &self,
        org: &str,
        subject: PrivacySubject,
        pseudonym: &str,
        actor: &str,
    ) -> Result<Erasure, WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Erase {
                org: org.to_owned(),
                subject,
                pseudonym: pseudonym.to_owned(),
                actor: actor.to_owned(),
                reply,
            })
            .map_err(|_| WriterError::Stopped)?;
        rx.await
            .map_err(|_| WriterError::Stopped)?
            .map_err(WriterError::Ledger)
    }

    /// Puts the ledger file `staged` (same directory, already checked: integrity, org,
    /// schema) in place of the live ledger, atomically (rename), if the live one holds no
    /// event, and reopens the writer's connection on it. Blocking: call from a blocking
    /// task, with every other connection to the ledger closed (the reader's). Returns the
    /// restored ledger's events.
    pub fn swap_in_blocking(&self, staged: std::path::PathBuf) -> Result<u64, SwapError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Swap { staged, reply })
            .map_err(|_| SwapError::Stopped)?;
        rx.blocking_recv().map_err(|_| SwapError::Stopped)?
    }

    /// Returns once everything queued before the call is committed (or given up on).
    /// While the ledger is failing this waits for it to recover.
    pub async fn flush(&self) -> Result<(), WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Flush(reply))
            .map_err(|_| WriterError::Stopped)?;
        rx.await.map_err(|_| WriterError::Stopped)
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Alive and not failing: what `/readyz` reports.
    pub fn is_ready(&self) -> bool {
        self.is_alive() && !self.shared.failing.load(Ordering::SeqCst)
    }

    /// Why the writer is not ready, for `/readyz`'s body.
    pub fn not_ready_reason(&self) -> Option<String> {
        if !self.is_alive() {
            return Some("ledger writer stopped".into());
        }
        if !self.shared.failing.load(Ordering::SeqCst) {
            return None;
        }
        let last = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        Some(format!(
            "ledger writes failing, retrying ({} events pending): {last}",
            self.pending()
        ))
    }

    /// Proxy events queued or waiting for a retry.
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Events committed so far, and events given up on.
    pub fn counts(&self) -> (u64, u64) {
        let dropped = self
            .shared
            .dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum();
        (self.shared.written.load(Ordering::Relaxed), dropped)
    }

    /// Appends the writer's series in the Prometheus text format.
    pub fn render_metrics(&self, org: &str, o: &mut String) {
        let sh = &self.shared;
        let _ = writeln!(o, "# HELP mai_ledger_write_failures_total Failed ledger write attempts by kind (busy, full, readonly, io, invalid, over_cap, overflow, panic, other).\n# TYPE mai_ledger_write_failures_total counter");
        for (k, n) in sh.failures.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                o,
                "mai_ledger_write_failures_total{{org=\"{org}\",kind=\"{k}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_ledger_write_retries_total Ledger writes retried after a transient failure.\n# TYPE mai_ledger_write_retries_total counter");
        let _ = writeln!(
            o,
            "mai_ledger_write_retries_total{{org=\"{org}\"}} {}",
            sh.retries.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP mai_ledger_events_dropped_total Events the writer gave up on, by reason (their ids stay in the crash journal).\n# TYPE mai_ledger_events_dropped_total counter");
        for (k, n) in sh.dropped.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                o,
                "mai_ledger_events_dropped_total{{org=\"{org}\",reason=\"{k}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_ledger_written_events_total Events committed by the ledger writer.\n# TYPE mai_ledger_written_events_total counter");
        let _ = writeln!(
            o,
            "mai_ledger_written_events_total{{org=\"{org}\"}} {}",
            sh.written.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP mai_ledger_pending_events Proxy events queued or waiting for a retry.\n# TYPE mai_ledger_pending_events gauge");
        let _ = writeln!(
            o,
            "mai_ledger_pending_events{{org=\"{org}\"}} {}",
            self.pending()
        );
        let _ = writeln!(o, "# HELP mai_ledger_writer_failing 1 while ledger writes fail and events wait for a retry.\n# TYPE mai_ledger_writer_failing gauge");
        let _ = writeln!(
            o,
            "mai_ledger_writer_failing{{org=\"{org}\"}} {}",
            u8::from(sh.failing.load(Ordering::SeqCst))
        );
    }
}

/// The writer thread's state.
struct Worker {
    ledger: Ledger,
    rx: mpsc::Receiver<Cmd>,
    sh: Arc<Shared>,
    /// Proxy events not yet committed, oldest first.
    queue: VecDeque<UsageEvent>,
    /// Flushes waiting for the queue to empty.
    flushes: Vec<oneshot::Sender<()>>,
    backoff: Duration,
    /// When the next attempt is due after a failure.
    retry_at: Option<Instant>,
    consecutive: u32,
}

/// How one write attempt ended.
enum Attempt<T> {
    Done(T),
    Failed(LedgerError),
    Panicked,
}

impl Worker {
    fn run(&mut self) {
        let mut open = true;
        while open {
            // Wait for work: block when idle, until the retry is due when failing.
            let first = match self.retry_at {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(c) => Some(c),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            None
                        }
                    }
                }
                None if !self.queue.is_empty() => match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        None
                    }
                },
                None => match self.rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => {
                        open = false;
                        None
                    }
                },
            };
            let mut waiters = Vec::new();
            let mut next = first;
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Record(ev) => self.queue.push_back(ev),
                    Cmd::Flush(r) => self.flushes.push(r),
                    other => waiters.push(other),
                }
                if self.queue.len() >= MAX_BATCH || waiters.len() >= MAX_BATCH {
                    break;
                }
                match self.rx.try_recv() {
                    Ok(c) => next = Some(c),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            if self.retry_at.is_none_or(|at| Instant::now() >= at) {
                self.drain_queue();
            }
            for cmd in waiters {
                self.serve(cmd);
            }
            if self.queue.is_empty() {
                for f in self.flushes.drain(..) {
                    let _ = f.send(());
                }
            }
        }
        // Every handle is gone: one last attempt, then say what is left.
        self.retry_at = None;
        self.drain_queue();
        if !self.queue.is_empty() {
            tracing::error!(
                events = self.queue.len(),
                "ledger writer stopping with events not written; their ids are in the crash journal and will be reconciled at the next start"
            );
        }
        if let Err(e) = self.ledger.checkpoint() {
            tracing::warn!(error = %e, "WAL checkpoint at writer shutdown failed");
        }
    }

    /// Runs `f` on the ledger, catching a panic.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError>) -> Attempt<T> {
        match catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            tests::fault_point(self.ledger.path());
            f(&mut self.ledger)
        })) {
            Ok(Ok(v)) => Attempt::Done(v),
            Ok(Err(e)) => Attempt::Failed(e),
            Err(_) => Attempt::Panicked,
        }
    }

    /// Commits as much of the queue as it can; on a transient failure schedules a retry.
    fn drain_queue(&mut self) {
        while !self.queue.is_empty() {
            let n = self.queue.len().min(MAX_BATCH);
            let batch: Vec<UsageEvent> = self.queue.iter().take(n).cloned().collect();
            match self.attempt(|l| l.record_batch(&batch)) {
                Attempt::Done(o) => {
                    self.committed(o.len());
                }
                Attempt::Failed(e) if e.kind().is_transient() => {
                    self.transient(&e);
                    return;
                }
                Attempt::Failed(e) => {
                    // One bad event rejects the whole transaction: go one by one so the
                    // good ones are kept and the bad one is named.
                    tracing::warn!(error = %e, n, "batch write failed; retrying events one by one");
                    if !self.one_by_one(n) {
                        return;
                    }
                }
                Attempt::Panicked => {
                    self.panicked(n);
                    if !self.one_by_one(n) {
                        return;
                    }
                }
            }
        }
    }

    /// Writes the first `n` queued events singly. Returns false when a transient
    /// failure stopped it (a retry is scheduled).
    fn one_by_one(&mut self, n: usize) -> bool {
        for _ in 0..n {
            let Some(ev) = self.queue.front().cloned() else {
                break;
            };
            match self.attempt(|l| l.record(&ev)) {
                Attempt::Done(_) => self.committed(1),
                Attempt::Failed(e) if e.kind().is_transient() => {
                    self.transient(&e);
                    return false;
                }
                Attempt::Failed(e) => {
                    let kind = e.kind();
                    Shared::count(&self.sh.failures, kind.as_str(), 1);
                    self.give_up(kind.as_str(), &ev, &e.to_string());
                }
                Attempt::Panicked => {
                    self.panicked(1);
                    self.give_up("panic", &ev, "writing it panicked");
                }
            }
        }
        true
    }

    fn committed(&mut self, n: usize) {
        self.queue.drain(..n);
        self.sh.written.fetch_add(n as u64, Ordering::Relaxed);
        self.sh.pending.fetch_sub(n as u64, Ordering::Relaxed);
        self.recovered();
    }

    fn give_up(&mut self, reason: &'static str, ev: &UsageEvent, why: &str) {
        self.queue.pop_front();
        self.sh.pending.fetch_sub(1, Ordering::Relaxed);
        Shared::count(&self.sh.dropped, reason, 1);
        tracing::error!(generation_id = %ev.generation_id, model = %ev.model, cost_usd = %ev.cost_usd, tokens = ?ev.tokens, reason, error = why, "usage event not recorded");
    }

    fn recovered(&mut self) {
        if self.sh.failing.swap(false, Ordering::SeqCst) {
            tracing::info!(
                after_failures = self.consecutive,
                "ledger writes work again"
            );
        }
        self.consecutive = 0;
        self.backoff = FIRST_BACKOFF;
        self.retry_at = None;
    }

    /// A failure that may pass: keep the events, wait, retry.
    fn transient(&mut self, e: &LedgerError) {
        let kind = e.kind();
        Shared::count(&self.sh.failures, kind.as_str(), 1);
        self.sh.retries.fetch_add(1, Ordering::Relaxed);
        *self.sh.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        self.sh.failing.store(true, Ordering::SeqCst);
        self.consecutive += 1;
        tracing::warn!(error = %e, kind = kind.as_str(), pending = self.queue.len(), retry_in_ms = self.backoff.as_millis() as u64, "ledger write failed; will retry");
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        if self.consecutive.is_multiple_of(REOPEN_EVERY) {
            self.reopen();
        }
    }

    fn panicked(&mut self, n: usize) {
        Shared::count(&self.sh.failures, "panic", 1);
        tracing::error!(
            events = n,
            "a ledger write panicked; reopening the connection and retrying one by one"
        );
        self.reopen();
    }

    /// A fresh connection, as a restart would give, keeping the queue.
    fn reopen(&mut self) {
        let path = self.ledger.path().to_path_buf();
        if path.as_os_str() == ":memory:" {
            return;
        }
        match Ledger::open(&path) {
            Ok(mut l) => {
                l.set_caps(self.ledger.caps());
                self.ledger = l;
                tracing::info!(path = %path.display(), "ledger connection reopened");
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the ledger failed; keeping the old connection")
            }
        }
    }

    /// One waiting request, tried once; a failure goes back to its caller.
    fn serve(&mut self, cmd: Cmd) {
        fn done<T>(a: Attempt<T>, w: &mut Worker) -> Result<T, String> {
            match a {
                Attempt::Done(v) => Ok(v),
                Attempt::Failed(e) => {
                    Shared::count(&w.sh.failures, e.kind().as_str(), 1);
                    Err(e.to_string())
                }
                Attempt::Panicked => {
                    w.panicked(0);
                    Err("the ledger write panicked; see the log".into())
                }
            }
        }
        match cmd {
            Cmd::RecordWait(evs, reply) => {
                let a = self.attempt(|l| l.record_batch(&evs));
                let r = done(a, self);
                if let Ok(o) = &r {
                    self.sh.written.fetch_add(o.len() as u64, Ordering::Relaxed);
                }
                let _ = reply.send(r);
            }
            Cmd::Audited {
                event,
                actor,
                note,
                reply,
            } => {
                let a = self.attempt(|l| l.record_audited(&event, &actor, &note));
                let _ = reply.send(done(a, self));
            }
            Cmd::SetMeta { key, value, reply } => {
                let a = self.attempt(|l| l.set_meta(key, &value));
                let _ = reply.send(done(a, self));
            }
            Cmd::Erase {
                org,
                subject,
                pseudonym,
                actor,
                reply,
            } => {
                let a = self.attempt(|l| l.erase_user(&org, &subject, Some(&pseudonym), &actor));
                let _ = reply.send(done(a, self));
            }
            Cmd::Swap { staged, reply } => {
                let _ = reply.send(self.swap_in(&staged));
            }
            Cmd::Record(_) | Cmd::Flush(_) => unreachable!("queued, not served"),
        }
    }

    /// See [`LedgerWriter::swap_in_blocking`]. The check for events and the rename happen
    /// here, on the one writer, so no event can be written in between.
    fn swap_in(&mut self, staged: &std::path::Path) -> Result<u64, SwapError> {
        if !self.queue.is_empty() {
            return Err(SwapError::Busy);
        }
        let live = self
            .ledger
            .event_count(None)
            .map_err(|e| SwapError::Failed(e.to_string()))?;
        if live > 0 {
            return Err(SwapError::HasEvents(live));
        }
        let path = self.ledger.path().to_path_buf();
        let caps = self.ledger.caps();
        if let Err(e) = self.ledger.checkpoint() {
            return Err(SwapError::Failed(format!(
                "checkpoint of the empty ledger: {e}"
            )));
        }
        // Close the live connection (its WAL is folded in and removed), then rename.
        let placeholder = Ledger::open_in_memory().map_err(|e| SwapError::Failed(e.to_string()))?;
        drop(std::mem::replace(&mut self.ledger, placeholder));
        let moved = (|| -> std::io::Result<()> {
            for side in ["-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(side);
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(staged, &path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        // Reopen whichever file is in place now (the restored one, or the old one).
        match Ledger::open(&path) {
            Ok(mut l) => {
                l.set_caps(caps);
                self.ledger = l;
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "reopening the ledger after a restore failed; restart the tracker");
                return Err(SwapError::Failed(format!(
                    "reopening {}: {e}",
                    path.display()
                )));
            }
        }
        moved.map_err(|e| {
            SwapError::Failed(format!(
                "renaming {} to {}: {e}",
                staged.display(),
                path.display()
            ))
        })?;
        let n = self
            .ledger
            .event_count(None)
            .map_err(|e| SwapError::Failed(e.to_string()))?;
        tracing::info!(events = n, path = %path.display(), "ledger restored from a backup");
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;
    use mai_core::usage::{EventState, Source, Tokens, UserRef};
    use rust_decimal::Decimal;
    use std::sync::atomic::AtomicU32;

    /// Panics the next N write attempts on a ledger named `panic-test.sqlite`.
    static PANICS: AtomicU32 = AtomicU32::new(0);

    pub(crate) fn fault_point(path: &std::path::Path) {
        if path.ends_with("panic-test.sqlite")
            && PANICS
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("injected writer fault");
        }
    }

    fn ev(i: u32) -> UsageEvent {
        UsageEvent {
            generation_id: format!("gen-{i}"),
            org_id: "acme".into(),
            user: UserRef::default(),
            model: "a/b".into(),
            provider: None,
            tokens: Tokens::default(),
            cost_usd: Decimal::new(i as i64, 4),
            source: Source::Proxy,
            state: EventState::Confirmed,
            created_at: Utc::now(),
            context: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_panicking_write_loses_no_event_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("panic-test.sqlite");
        let (w, _t) = LedgerWriter::spawn(Ledger::open(&db).unwrap());
        // The batch attempt and the first single attempt panic; then writes work.
        PANICS.store(2, Ordering::SeqCst);
        for i in 0..10 {
            w.record(ev(i));
        }
        w.flush().await.unwrap();
        let l = Ledger::open(&db).unwrap();
        let stored = l.events_since(0, 100).unwrap().events.len();
        let (written, dropped) = w.counts();
        // Only an event whose own write panics is set aside (and counted).
        assert_eq!(stored as u64, written);
        assert_eq!(written + dropped, 10, "every event written or counted");
        assert!(dropped <= 1, "{dropped}");
        assert!(w.is_ready());
        let mut m = String::new();
        w.render_metrics("acme", &mut m);
        assert!(
            m.contains("mai_ledger_write_failures_total{org=\"acme\",kind=\"panic\"}"),
            "{m}"
        );
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn oversize_attribution_is_cut_at_the_ledger_door_not_refused() {
        let mut e = ev(1);
        e.user.name = Some("ż".repeat(400)); // 800 bytes, 2 per char
        e.model = "m".repeat(2000);
        e.bound_fields();
        assert!(e.validate().is_ok());
        assert_eq!(e.user.name.as_ref().unwrap().len(), 512);
        assert_eq!(e.model.len(), 512);
    }
}
