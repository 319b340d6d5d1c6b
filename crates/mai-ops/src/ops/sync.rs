//! Sync: reconciliation on a tracker, then a pull of its events into the console cache.
//! What an outcome says is decided by [`outcome_of_reply`] and [`with_pull`], apart from
//! the HTTP calls, so "unreachable" versus "error" versus "partial" is tested directly.

use std::time::Duration;

use futures::StreamExt;

use super::{Ops, OpsError};
use crate::cache::PullResult;
use crate::tracker::{SyncReport, SyncStatus, TrackerError};

/// A sync's outcome and progress cross the console's IPC as they are.
pub use mai_wire::console::{SyncOutcome, SyncOutcomeStatus, SyncProgress};

/// The outcome of the tracker's reconciliation reply. A tracker that answers `partial`
/// still counts as a sync that ran (its failed look-ups are retried by the tracker);
/// only `error` and a tracker that cannot be reached are failures.
pub fn outcome_of_reply(client_id: &str, reply: Result<SyncReport, TrackerError>) -> SyncOutcome {
    match reply {
        Ok(r) => SyncOutcome {
            client_id: client_id.to_string(),
            ok: r.status != SyncStatus::Error,
            checked: Some(r.checked),
            confirmed: Some(r.confirmed),
            corrected: Some(r.corrected),
            pulled: None,
            error: (!r.errors.is_empty()).then(|| format!("{} lookups failed", r.errors.len())),
            status: r.status.into(),
        },
        Err(e) => SyncOutcome {
            status: if e.is_unreachable() {
                SyncOutcomeStatus::Unreachable
            } else {
                SyncOutcomeStatus::Error
            },
            ..SyncOutcome::failed(client_id, e.to_string())
        },
    }
}

/// Adds the pull into the cache to a sync that ran: a failed pull fails the whole sync,
/// since the console would otherwise show numbers older than the tracker's.
pub fn with_pull(mut out: SyncOutcome, pull: Result<PullResult, OpsError>) -> SyncOutcome {
    match pull {
        Ok(p) => out.pulled = Some(p.pulled as u64),
        Err(e) => {
            out.ok = false;
            out.error = Some(format!(
                "sync ran but the pull into the console cache failed: {e}"
            ));
        }
    }
    out
}

/// Cache meta key of a client's event cursor.
fn cursor_key(client_id: &str) -> String {
    format!("cursor:{client_id}")
}

impl Ops {
    /// Pulls new events of one client into the console cache.
    ///
    /// The event API has no ledger identity, so a tracker whose ledger was replaced (new
    /// container, restored backup) restarts its sequence below our cursor and an
    /// incremental pull would silently skip events. Guard: take the tracker's today totals
    /// *before* pulling; if the cache still has fewer requests or less cost for today
    /// afterwards, pull again from the start (upserts by generation id keep it idempotent).
    pub async fn pull(&self, id: &str) -> Result<PullResult, OpsError> {
        let c = self.client(id)?;
        let t = self.tracker(id).await?;
        let today = self.today();
        let before = t.today().await.ok().filter(|r| r.date == today);
        let first = self.cache.pull(&c.id, &t).await?;
        let Some(remote) = before else {
            return Ok(first);
        };
        let org = c.id.clone();
        let local = self.cache.with(move |l| l.day(&org, today)).await?;
        if remote.requests > local.requests || remote.raw_cost_usd > local.cost_usd {
            tracing::warn!(client = %c.id, remote_requests = remote.requests, local_requests = local.requests,
                "the cache misses events the tracker has (ledger replaced?); pulling from the start");
            self.cache.set_meta(&cursor_key(&c.id), "0").await?;
            return Ok(self.cache.pull(&c.id, &t).await?);
        }
        Ok(first)
    }

    /// Reconciliation on the tracker, then a pull into the cache.
    pub async fn sync_one(&self, id: &str) -> SyncOutcome {
        let t = match self.tracker(id).await {
            Ok(t) => t,
            Err(e) => return SyncOutcome::failed(id, e.to_string()),
        };
        let reply = t.sync(1, Duration::from_secs(120)).await;
        let answered = reply.is_ok();
        let mut out = outcome_of_reply(id, reply);
        if !answered {
            return out;
        }
        if let Err(e) = self.push_terms(id, &t).await {
            out.ok = false;
            out.error = Some(format!(
                "the tracker did not take the fleet file's markup and limit: {e}"
            ));
        }
        with_pull(out, self.pull(id).await)
    }

    /// Hands the fleet file's commercial terms to the tracker when it holds other ones
    /// (the fleet file owns them; the tracker only prices its own reports with them).
    pub async fn push_terms(
        &self,
        id: &str,
        t: &crate::tracker::TrackerClient,
    ) -> Result<bool, OpsError> {
        let c = self.client(id)?;
        if t.status().await?.terms.as_ref() == Some(&c.terms) {
            return Ok(false);
        }
        t.put_terms(&c.terms).await?;
        tracing::info!(client = %id, "commercial terms pushed to the tracker");
        Ok(true)
    }

    /// Syncs many clients concurrently; `progress` is called after each one finishes.
    pub async fn sync_many(
        &self,
        ids: &[String],
        mut progress: impl FnMut(SyncProgress),
    ) -> Vec<SyncOutcome> {
        let total = ids.len();
        let mut s = futures::stream::iter(
            ids.iter()
                .cloned()
                .map(|id| async move { self.sync_one(&id).await }),
        )
        .buffer_unordered(self.fleet.console.concurrency.clamp(1, 8));
        let mut all = Vec::new();
        while let Some(o) = s.next().await {
            all.push(o.clone());
            progress(SyncProgress {
                done: all.len(),
                total,
                outcome: o,
            });
        }
        all.sort_by_key(|o| ids.iter().position(|i| *i == o.client_id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: SyncStatus, errors: usize) -> SyncReport {
        SyncReport {
            status,
            checked: 5,
            confirmed: 4,
            still_provisional: 1,
            corrected: 2,
            errors: vec!["gen-x: 502".to_string(); errors],
            drift: None,
        }
    }

    fn pulled(n: usize) -> PullResult {
        PullResult {
            pulled: n,
            inserted: n,
            corrected: 0,
            cursor: n as i64,
        }
    }

    #[test]
    fn a_partial_reconciliation_is_a_sync_that_ran_with_its_failed_lookups_counted() {
        let o = with_pull(
            outcome_of_reply("acme", Ok(reply(SyncStatus::Partial, 2))),
            Ok(pulled(7)),
        );
        assert!(o.ok);
        assert_eq!(o.status, SyncOutcomeStatus::Partial);
        assert_eq!(
            (o.checked, o.confirmed, o.corrected, o.pulled),
            (Some(5), Some(4), Some(2), Some(7))
        );
        assert_eq!(o.error.as_deref(), Some("2 lookups failed"));
    }

    #[test]
    fn an_error_status_from_the_tracker_fails_the_sync() {
        let o = outcome_of_reply("acme", Ok(reply(SyncStatus::Error, 0)));
        assert!(!o.ok);
        assert_eq!(o.status, SyncOutcomeStatus::Error);
        assert_eq!(o.error, None);
    }

    #[test]
    fn a_tracker_that_cannot_be_reached_is_unreachable_not_error() {
        let o = outcome_of_reply(
            "acme",
            Err(TrackerError::Timeout {
                url: "http://t/api/v1/sync".into(),
                timeout_ms: 100,
            }),
        );
        assert_eq!(
            (o.ok, o.status, o.checked),
            (false, SyncOutcomeStatus::Unreachable, None)
        );
        assert!(o.error.unwrap().contains("did not answer within 100 ms"));
        let o = outcome_of_reply(
            "acme",
            Err(TrackerError::Unauthorized {
                url: "http://t/api/v1/sync".into(),
            }),
        );
        assert_eq!((o.ok, o.status), (false, SyncOutcomeStatus::Error));
    }

    #[test]
    fn a_failed_pull_fails_a_sync_that_ran() {
        let o = with_pull(
            outcome_of_reply("acme", Ok(reply(SyncStatus::Ok, 0))),
            Err(OpsError::UnknownClient("acme".into())),
        );
        assert!(!o.ok);
        assert_eq!(o.status, SyncOutcomeStatus::Ok);
        assert_eq!(o.pulled, None);
        assert!(o
            .error
            .unwrap()
            .starts_with("sync ran but the pull into the console cache failed"));
    }
}
