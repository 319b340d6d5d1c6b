//! Privacy requests about one person of one client (GDPR art. 15 and 17), audited.
//!
//! Erasure runs on the client's tracker first (the tracker owns the data; it returns
//! the pseudonym it chose), then in the console cache with the same pseudonym, so both
//! list the person's usage under the same `erased-…` user. If the tracker refuses or is
//! unreachable nothing is changed anywhere: erasing only the cache would be undone in
//! spirit by the tracker still holding the data, and the operator must know. Each action
//! writes a `started` record to the audit log before it runs (an unwritable log stops
//! it) and its outcome after, naming the person only by hash.

use chrono::Utc;
use mai_core::ledger::{normalize_subject, subject_hash, PrivacySubject, StoredEvent};
use mai_wire::console::{PrivacyErasure, PrivacyExportResult};
use mai_wire::tracker::{Event, PrivacyExport};

use super::{Ops, OpsError};
use crate::audit::{os_user, AuditLog, AuditRecord};

/// A ledger event as the tracker's API writes it (`GET /api/v1/events`).
fn wire_event(s: StoredEvent) -> Event {
    let e = s.event;
    Event {
        seq: s.seq,
        generation_id: e.generation_id,
        org_id: e.org_id,
        user: e.user,
        model: e.model,
        provider: e.provider,
        tokens: e.tokens.into(),
        cost_usd: e.cost_usd.normalize(),
        source: e.source,
        state: e.state,
        created_at: e.created_at,
        context: e.context,
    }
}

/// One audit record of `action` on `client` about the subject `hash`.
fn record(
    action: &str,
    client: &str,
    hash: &str,
    outcome: &str,
    detail: serde_json::Value,
    error: Option<String>,
) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        actor: os_user(),
        action: action.into(),
        client: client.into(),
        subject_hash: Some(hash.into()),
        outcome: outcome.into(),
        detail,
        error,
    }
}

impl Ops {
    /// The operator's audit log (`audit.log` in the fleet file's `data_dir`).
    pub fn audit_log(&self) -> AuditLog {
        AuditLog::in_dir(&self.fleet.console.data_dir)
    }

    fn subject(&self, client: &str, s: &PrivacySubject) -> Result<PrivacySubject, OpsError> {
        self.client(client)?;
        normalize_subject(s).map_err(|e| OpsError::Privacy(e.to_string()))
    }

    /// Erases one person's personal data of `client` on its tracker and in the console
    /// cache (module documentation). Totals and invoices do not change.
    pub async fn privacy_erase(
        &self,
        client: &str,
        subject: &PrivacySubject,
    ) -> Result<PrivacyErasure, OpsError> {
        const ACTION: &str = "privacy_erase";
        let subject = self.subject(client, subject)?;
        let hash = subject_hash(&subject);
        let log = self.audit_log();
        let none = serde_json::Value::Null;
        log.append(&record(
            ACTION,
            client,
            &hash,
            "started",
            none.clone(),
            None,
        ))?;
        let tracker = match self.tracker(client).await {
            Ok(t) => t,
            Err(e) => {
                log.append(&record(
                    ACTION,
                    client,
                    &hash,
                    "failed",
                    none,
                    Some(e.to_string()),
                ))?;
                return Err(e);
            }
        };
        let rep = match tracker.privacy_erase(&subject).await {
            Ok(r) => r,
            Err(e) => {
                log.append(&record(
                    ACTION,
                    client,
                    &hash,
                    "failed",
                    none,
                    Some(e.to_string()),
                ))?;
                return Err(e.into());
            }
        };
        let done = serde_json::json!({
            "tracker_events": rep.events,
            "tracker_rollup_rows": rep.rollup_rows,
            "journal_lines": rep.journal_lines,
            "tracker_compacted": rep.compacted,
        });
        let cache = match self
            .cache
            .erase_user(client, &subject, &rep.pseudonym, &os_user())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "erased on the tracker ({} events), but not in the console cache: {e}; \
                     repeat the erasure (the tracker then finds nothing, the cache is erased)",
                    rep.events
                );
                log.append(&record(
                    ACTION,
                    client,
                    &hash,
                    "partial",
                    done,
                    Some(msg.clone()),
                ))?;
                return Err(OpsError::Privacy(msg));
            }
        };
        let mut detail = done;
        detail["cache_events"] = cache.events.into();
        detail["cache_rollup_rows"] = cache.rollup_rows.into();
        detail["cache_compacted"] = cache.compacted.into();
        log.append(&record(ACTION, client, &hash, "ok", detail, None))?;
        tracing::info!(client, subject_hash = %hash, tracker_events = rep.events, cache_events = cache.events, "personal data erased");
        Ok(PrivacyErasure {
            client_id: client.to_owned(),
            subject_hash: hash,
            pseudonym: rep.pseudonym,
            tracker_events: rep.events,
            cache_events: cache.events,
            journal_lines: rep.journal_lines,
            compacted: rep.compacted && cache.compacted,
            at: rep.erased_at,
            audit_log: log.path().display().to_string(),
        })
    }

    /// One person's usage of `client` (GDPR art. 15): from the tracker, or from the
    /// console cache when the tracker is unreachable (`from_cache`, with a warning: the
    /// cache may lack the latest events). Audited; the data is returned only once the
    /// record is written.
    pub async fn privacy_export(
        &self,
        client: &str,
        subject: &PrivacySubject,
    ) -> Result<PrivacyExportResult, OpsError> {
        const ACTION: &str = "privacy_export";
        let subject = self.subject(client, subject)?;
        let hash = subject_hash(&subject);
        let log = self.audit_log();
        let from_tracker = match self.tracker(client).await {
            Ok(t) => t.privacy_export(&subject).await.map_err(OpsError::from),
            Err(e) => Err(e),
        };
        let (export, warning) = match from_tracker {
            Ok(x) => (x, None),
            Err(OpsError::Tracker(e)) if e.is_unreachable() => {
                let x = match self.cache.user_export(client, &subject).await {
                    Ok(x) => x,
                    Err(c) => {
                        let msg = format!("{e}; the console cache failed too: {c}");
                        log.append(&record(
                            ACTION,
                            client,
                            &hash,
                            "failed",
                            serde_json::Value::Null,
                            Some(msg.clone()),
                        ))?;
                        return Err(OpsError::Privacy(msg));
                    }
                };
                (
                    PrivacyExport {
                        org_id: client.to_owned(),
                        subject: subject.clone(),
                        generated_at: Utc::now(),
                        requests: x.totals.requests,
                        tokens: x.totals.tokens.into(),
                        raw_cost_usd: x.totals.cost_usd,
                        events: x.events.into_iter().map(wire_event).collect(),
                    },
                    Some(format!(
                        "from the console cache ({e}); events the cache has not pulled yet are missing"
                    )),
                )
            }
            Err(e) => {
                log.append(&record(
                    ACTION,
                    client,
                    &hash,
                    "failed",
                    serde_json::Value::Null,
                    Some(e.to_string()),
                ))?;
                return Err(e);
            }
        };
        let from_cache = warning.is_some();
        log.append(&record(
            ACTION,
            client,
            &hash,
            "ok",
            serde_json::json!({ "events": export.events.len(), "from_cache": from_cache }),
            None,
        ))?;
        tracing::info!(client, subject_hash = %hash, events = export.events.len(), from_cache, "personal data exported");
        Ok(PrivacyExportResult {
            client_id: client.to_owned(),
            from_cache,
            warning,
            export,
            audit_log: log.path().display().to_string(),
        })
    }
}
