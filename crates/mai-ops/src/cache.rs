//! The console's own cache: a `mai_core::ledger::Ledger` fed by `GET /api/v1/events`
//! pulls, so history and billing work while a host is down and survive restarts.
//! Cursors and last-good tracker snapshots live in the ledger's meta table.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mai_core::ledger::{Ledger, LedgerError};
use mai_core::pricing::MarkupSchedule;
use mai_core::usage::{Tokens, UsageEvent};

use crate::tracker::{Event, TrackerClient, TrackerError};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("console cache: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error("event {id} from the tracker of {client} is unusable ({detail}); the tracker sent bad data, check its version")]
    BadEvent {
        client: String,
        id: String,
        detail: String,
    },
    #[error("console cache worker stopped unexpectedly: {0}")]
    Join(String),
}

/// Shared handle; the ledger is synchronous so every call runs on the blocking pool.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Mutex<Ledger>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PullResult {
    pub pulled: usize,
    pub inserted: usize,
    pub corrected: usize,
    pub cursor: i64,
}

pub fn to_usage_event(client: &str, e: &Event) -> Result<UsageEvent, CacheError> {
    let bad = |detail: String| CacheError::BadEvent {
        client: client.to_string(),
        id: e.generation_id.clone(),
        detail,
    };
    Ok(UsageEvent {
        generation_id: e.generation_id.clone(),
        // The fleet's client id is the console's key, whatever the tracker calls itself.
        org_id: client.to_string(),
        user: e.user.clone(),
        model: e.model.clone(),
        provider: e.provider.clone(),
        tokens: Tokens::from(e.tokens),
        cost_usd: e.cost_usd,
        source: e.source,
        state: e.state,
        created_at: e.created_at,
        context: e.context.clone(),
    })
    .and_then(|ev| ev.validate().map(|()| ev).map_err(|e| bad(e.to_string())))
}

fn cursor_key(client: &str) -> String {
    format!("cursor:{client}")
}

impl Cache {
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        Ok(Cache {
            inner: Arc::new(Mutex::new(Ledger::open(path)?)),
        })
    }

    pub fn in_memory() -> Result<Cache, CacheError> {
        Ok(Cache {
            inner: Arc::new(Mutex::new(Ledger::open_in_memory()?)),
        })
    }

    /// Runs `f` on the ledger off the async threads.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, CacheError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut l = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut l)
        })
        .await
        .map_err(|e| CacheError::Join(e.to_string()))?
        .map_err(CacheError::from)
    }

    /// The markup history an older console kept in this cache, when it differs from
    /// the fleet file's schedule: a dated rate the operator must carry into the fleet
    /// file (`markup_changes`), or past months would be priced at today's rate.
    pub async fn legacy_markup_conflict(
        &self,
        client: &str,
        fleet: &MarkupSchedule,
    ) -> Result<Option<String>, CacheError> {
        let (client, fleet) = (client.to_string(), fleet.clone());
        self.with(move |l| {
            let Some(old) = l.legacy_markup_schedule(&client)? else {
                return Ok(None);
            };
            let differs = old
                .entries
                .iter()
                .any(|e| fleet.rate_on(e.effective_from) != e.rate);
            Ok(differs.then(|| {
                let list: Vec<String> = old
                    .entries
                    .iter()
                    .map(|e| format!("{} from {}", e.rate, e.effective_from))
                    .collect();
                format!(
                    "client {client}: this console's cache remembers markup rates ({}) that the fleet file does not list; \
                     the fleet file is now the only source of markup, so add them as markup_changes = [{{ from = ..., rate = ... }}] \
                     to the client's entry, or past months are priced at the fleet file's rates",
                    list.join(", ")
                )
            }))
        })
        .await
    }

    pub async fn cursor(&self, client: &str) -> Result<i64, CacheError> {
        let key = cursor_key(client);
        self.with(move |l| Ok(l.get_meta(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0)))
            .await
    }

    /// Pulls everything after the stored cursor; upserts by generation id (the ledger is
    /// idempotent and lets a reconciliation correct a provisional record).
    pub async fn pull(
        &self,
        client: &str,
        tracker: &TrackerClient,
    ) -> Result<PullResult, CacheError> {
        let mut res = PullResult {
            cursor: self.cursor(client).await?,
            ..Default::default()
        };
        loop {
            let page = tracker.events(res.cursor, 5000).await?;
            let events = page
                .events
                .iter()
                .map(|e| to_usage_event(client, e))
                .collect::<Result<Vec<_>, _>>()?;
            let next = page.next_cursor.max(res.cursor);
            let key = cursor_key(client);
            let n = events.len();
            let outcomes = self
                .with(move |l| {
                    let out = l.record_batch(&events)?;
                    l.set_meta(&key, &next.to_string())?;
                    Ok(out)
                })
                .await?;
            res.pulled += n;
            for o in outcomes {
                match o {
                    mai_core::ledger::RecordOutcome::Inserted => res.inserted += 1,
                    mai_core::ledger::RecordOutcome::Corrected => res.corrected += 1,
                    _ => {}
                }
            }
            res.cursor = next;
            if !page.has_more || n == 0 {
                return Ok(res);
            }
        }
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, CacheError> {
        let key = key.to_string();
        self.with(move |l| l.get_meta(&key)).await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), CacheError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |l| l.set_meta(&key, &value)).await
    }
    /// Erases one person of `client` in the cache with the tracker's `pseudonym`, so
    /// both list the person alike ([`Ledger::erase_user`]).
    pub async fn erase_user(
        &self,
        client: &str,
        subject: &mai_core::ledger::PrivacySubject,
        pseudonym: &str,
        actor: &str,
    ) -> Result<mai_core::ledger::Erasure, CacheError> {
        let (client, subject, pseudonym, actor) = (
            client.to_owned(),
            subject.clone(),
            pseudonym.to_owned(),
            actor.to_owned(),
        );
        self.with(move |l| l.erase_user(&client, &subject, Some(&pseudonym), &actor))
            .await
    }

    /// One person's events of `client` in the cache and their sum.
    pub async fn user_export(
        &self,
        client: &str,
        subject: &mai_core::ledger::PrivacySubject,
    ) -> Result<mai_core::ledger::UserExport, CacheError> {
        let (client, subject) = (client.to_owned(), subject.clone());
        self.with(move |l| l.user_export(&client, &subject)).await
    }
}
