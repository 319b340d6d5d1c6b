//! The console's own cache: a `mai_core::ledger::Ledger` fed by `GET /api/v1/events`
//! pulls, so history and billing work while a host is down and survive restarts.
//! Cursors and last-good tracker snapshots live in the ledger's meta table.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use mai_core::ledger::{Ledger, LedgerError};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;

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
    let source = match e.source.as_str() {
        "proxy" => Source::Proxy,
        "webhook" => Source::Webhook,
        "manual" => Source::Manual,
        "reconciliation" => Source::Reconciliation,
        other => return Err(bad(format!("unknown source {other:?}"))),
    };
    let state = match e.state.as_str() {
        "provisional" => EventState::Provisional,
        "confirmed" => EventState::Confirmed,
        other => return Err(bad(format!("unknown state {other:?}"))),
    };
    Ok(UsageEvent {
        generation_id: e.generation_id.clone(),
        // The fleet's client id is the console's key, whatever the tracker calls itself.
        org_id: client.to_string(),
        user: UserRef {
            id: e.user.id.clone(),
            email: e.user.email.clone(),
            name: e.user.name.clone(),
        },
        model: e.model.clone(),
        provider: e.provider.clone(),
        tokens: Tokens {
            prompt: e.tokens.prompt,
            completion: e.tokens.completion,
            reasoning: e.tokens.reasoning,
            cached: e.tokens.cached,
        },
        cost_usd: e.cost_usd,
        source,
        state,
        created_at: e.created_at,
    })
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

    /// Keeps the cache's markup for `client` equal to the fleet file from `today` on,
    /// without re-pricing earlier days.
    pub async fn ensure_markup(
        &self,
        client: &str,
        rate: Decimal,
        today: NaiveDate,
    ) -> Result<(), CacheError> {
        let client = client.to_string();
        self.with(move |l| {
            let s = l.markup_schedule(&client)?;
            if s.entries.is_empty() {
                l.set_markup(
                    &client,
                    NaiveDate::from_ymd_opt(2000, 1, 1).expect("static"),
                    rate,
                )
            } else if s.rate_on(today) != rate {
                l.set_markup(&client, today, rate)
            } else {
                Ok(())
            }
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
}
