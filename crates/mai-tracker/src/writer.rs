//! The single ledger writer: every write goes through one channel to one thread.
//!
//! The proxy's hot path only sends a message (no SQLite, no lock held while a client
//! waits); the thread drains whatever is queued and commits it as one transaction, so
//! under load many events share one fsync.

use mai_core::ledger::{Ledger, RecordOutcome};
use mai_core::usage::UsageEvent;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 512;

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
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("the ledger writer has stopped (see the earlier log lines); restart the tracker")]
    Stopped,
    #[error("ledger write failed: {0}")]
    Ledger(String),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::UnboundedSender<Cmd>,
    alive: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl LedgerWriter {
    /// Starts the writer thread owning `ledger`. The thread ends when every handle is dropped.
    pub fn spawn(mut ledger: Ledger) -> (LedgerWriter, std::thread::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        let alive = Arc::new(AtomicBool::new(true));
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (a, w, f) = (alive.clone(), written.clone(), failed.clone());
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let mut batch: Vec<UsageEvent> = Vec::with_capacity(MAX_BATCH);
                let mut waiters: Vec<Cmd> = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    let mut next = Some(first);
                    while let Some(cmd) = next.take() {
                        match cmd {
                            Cmd::Record(ev) => batch.push(ev),
                            other => waiters.push(other),
                        }
                        if batch.len() >= MAX_BATCH {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                    commit(&mut ledger, &mut batch, &w, &f);
                    for cmd in waiters.drain(..) {
                        match cmd {
                            Cmd::RecordWait(evs, reply) => {
                                let r = ledger.record_batch(&evs).map_err(|e| e.to_string());
                                if let Ok(o) = &r {
                                    w.fetch_add(o.len() as u64, Ordering::Relaxed);
                                }
                                let _ = reply.send(r);
                            }
                            Cmd::Audited {
                                event,
                                actor,
                                note,
                                reply,
                            } => {
                                let r = ledger
                                    .record_audited(&event, &actor, &note)
                                    .map_err(|e| e.to_string());
                                let _ = reply.send(r);
                            }
                            Cmd::SetMeta { key, value, reply } => {
                                let r = ledger.set_meta(key, &value).map_err(|e| e.to_string());
                                let _ = reply.send(r);
                            }
                            Cmd::Flush(reply) => {
                                let _ = reply.send(());
                            }
                            Cmd::Record(_) => unreachable!("records are batched"),
                        }
                    }
                }
                if let Err(e) = ledger.checkpoint() {
                    tracing::warn!(error = %e, "WAL checkpoint at writer shutdown failed");
                }
                a.store(false, Ordering::SeqCst);
            })
            .expect("spawning the ledger writer thread");
        (
            LedgerWriter {
                tx,
                alive,
                written,
                failed,
            },
            handle,
        )
    }

    /// Queues one event; never blocks.
    pub fn record(&self, ev: UsageEvent) {
        if self.tx.send(Cmd::Record(ev)).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!("ledger writer stopped; a usage event was not queued (reconciliation will recover it from the journal)");
        }
    }

    /// Records events and waits for the outcomes (reconciliation, webhook).
    pub async fn record_wait(
        &self,
        evs: Vec<UsageEvent>,
    ) -> Result<Vec<RecordOutcome>, WriterError> {
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

    /// Returns once everything queued before the call is committed.
    pub async fn flush(&self) -> Result<(), WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Flush(reply))
            .map_err(|_| WriterError::Stopped)?;
        rx.await.map_err(|_| WriterError::Stopped)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Events committed so far, and events that could not be written.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn commit(ledger: &mut Ledger, batch: &mut Vec<UsageEvent>, w: &AtomicU64, f: &AtomicU64) {
    if batch.is_empty() {
        return;
    }
    match ledger.record_batch(batch) {
        Ok(o) => {
            w.fetch_add(o.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            // One bad event rejects the whole transaction: retry one by one so the
            // good ones are kept and the bad one is named.
            tracing::warn!(error = %e, n = batch.len(), "batch write failed; retrying events one by one");
            for ev in batch.iter() {
                match ledger.record(ev) {
                    Ok(_) => {
                        w.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        f.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(generation_id = %ev.generation_id, error = %e, "usage event not recorded");
                    }
                }
            }
        }
    }
    batch.clear();
}
