//! Alerts on the facade: every fleet refresh ([`Ops::refresh`]) is evaluated by
//! [`crate::alerts::evaluate`] against the state kept in the console cache (meta key
//! `alerts:memory`, its one owner), so the debounce history survives restarts and
//! `maictl alerts` run from cron debounces like the console. Raised and cleared alerts go
//! to the alert sink (the console's desktop notifications) and to the webhook, which
//! runs in the background and never holds up a refresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mai_wire::alerts::{ActiveAlert, AlertsView};
use mai_wire::console::{FleetRow, PlnRate};

use super::{Ops, OpsError};
use crate::alerts::{self, AlertChange, AlertMemory, Observation};
use crate::refresh::TrackerSnapshot;

/// Cache meta key of the alert state.
pub(crate) const MEMORY_KEY: &str = "alerts:memory";

/// Told about every evaluation's changes (muted ones included; see
/// [`AlertChange::is_loud`]). Must not block: the refresh calls it inline.
pub type AlertSink = Arc<dyn Fn(&[AlertChange]) + Send + Sync>;

impl Ops {
    /// Sets who is told about raised and cleared alerts (replacing any earlier one).
    pub fn set_alert_sink(&self, sink: AlertSink) {
        *self.alert_sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    pub(crate) fn alert_sink(&self) -> Option<AlertSink> {
        self.alert_sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn alert_memory(&self) -> Result<AlertMemory, OpsError> {
        Ok(match self.cache.get_meta(MEMORY_KEY).await? {
            // An unreadable state (a newer console's) starts afresh rather than failing.
            Some(j) => serde_json::from_str(&j).unwrap_or_else(|e| {
                tracing::warn!(
                    "alert state in the console cache is unreadable ({e}); starting afresh"
                );
                AlertMemory::default()
            }),
            None => AlertMemory::default(),
        })
    }

    async fn save_alert_memory(&self, m: &AlertMemory) -> Result<(), OpsError> {
        let j = serde_json::to_string(m).expect("alert memory serializes");
        Ok(self.cache.set_meta(MEMORY_KEY, &j).await?)
    }

    /// The NBP display rate for the alerts, only where PLN matters (`[billing]`), with
    /// its own short deadline; `None` = not checked (its alert stays as it was).
    pub(crate) async fn alert_nbp(&self) -> Option<PlnRate> {
        self.fleet.billing.as_ref()?;
        tokio::time::timeout(Duration::from_secs(10), self.pln_rate())
            .await
            .ok()
    }

    /// KSeF-rejected invoices not yet sent again, by client; `None` when KSeF is not
    /// configured or the billing store cannot be read (then its alerts stay as they were).
    async fn alert_ksef_rejected(&self) -> Option<BTreeMap<String, Vec<String>>> {
        self.fleet.ksef.as_ref()?;
        let store = self.billing_files().ok()?.store;
        if !store.exists() {
            return Some(BTreeMap::new());
        }
        let rows = tokio::task::spawn_blocking(move || {
            mai_billing::store::BillingStore::open(&store).and_then(|s| s.awaiting_ksef())
        })
        .await
        .ok()?
        .map_err(|e| tracing::warn!("alerts: the billing store cannot be read: {e}"))
        .ok()?;
        let mut by_client: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows
            .into_iter()
            .filter(|r| r.state == mai_billing::store::KsefState::Rejected)
        {
            by_client.entry(r.org_id).or_default().push(r.number);
        }
        Some(by_client)
    }

    /// Evaluates one refresh's rows (called by [`Ops::refresh`]); evaluations are one at
    /// a time, so two refreshes at once cannot lose a failure count. Returns the new
    /// memory (the rows show its active alerts) and what changed.
    pub(crate) async fn evaluate_alerts(
        &self,
        rows: &[FleetRow],
        snapshots: &HashMap<String, TrackerSnapshot>,
        nbp: Option<PlnRate>,
    ) -> Result<(AlertMemory, Vec<AlertChange>), OpsError> {
        let ksef = self.alert_ksef_rejected().await;
        let _one = self.alert_lock.lock().await;
        let memory = self.alert_memory().await?;
        let now = Utc::now();
        let (next, changes) = alerts::evaluate(
            &memory,
            Observation {
                rows,
                snapshots,
                nbp: nbp.as_ref(),
                ksef_rejected: ksef.as_ref(),
            },
            &self.fleet.alerts,
            now,
        );
        self.save_alert_memory(&next).await?;
        drop(_one);
        if !changes.is_empty() {
            for c in &changes {
                let a = c.alert();
                match c {
                    AlertChange::Raised(_) => {
                        tracing::warn!(id = %a.id, "alert raised: {}", a.message)
                    }
                    AlertChange::Cleared(_) => tracing::info!(id = %a.id, "alert cleared"),
                }
            }
            if let Some(sink) = self.alert_sink() {
                sink(&changes);
            }
            self.send_webhook(&changes, now);
        }
        Ok((next, changes))
    }

    /// Posts the loud changes to `[alerts] webhook_url` in the background.
    fn send_webhook(&self, changes: &[AlertChange], now: DateTime<Utc>) {
        let Some(url) = self.fleet.alerts.webhook_url.clone() else {
            return;
        };
        let loud: Vec<&AlertChange> = changes.iter().filter(|c| c.is_loud(now)).collect();
        if loud.is_empty() {
            return;
        }
        let body = alerts::webhook_body(&loud);
        let http = self.http.clone();
        let task = tokio::spawn(async move {
            match alerts::post_webhook(&http, &url, &body).await {
                Ok(n) if n > 1 => tracing::info!("alert webhook delivered after {n} attempts"),
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        });
        let mut tasks = self.webhook_tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Waits (at most `limit`) for webhook deliveries still running: a short-lived
    /// caller (maictl) calls it before it exits.
    pub async fn flush_alert_webhooks(&self, limit: Duration) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.webhook_tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
    }

    /// The alerts as the last evaluation left them (no refresh).
    pub async fn alerts(&self) -> Result<AlertsView, OpsError> {
        Ok(alerts::view(&self.alert_memory().await?, Utc::now()))
    }

    /// Refreshes the fleet once (which evaluates the alerts) and returns the view.
    pub async fn alerts_refreshed(&self) -> Result<AlertsView, OpsError> {
        self.refresh().await;
        self.alerts().await
    }

    /// Acknowledges an active alert until it clears.
    pub async fn alert_ack(&self, id: &str) -> Result<ActiveAlert, OpsError> {
        let _one = self.alert_lock.lock().await;
        let mut m = self.alert_memory().await?;
        let a = alerts::ack(&mut m, id).map_err(|e| OpsError::Alert(e.to_string()))?;
        self.save_alert_memory(&m).await?;
        Ok(a)
    }

    /// Mutes an alert's id for `period` (no notification, webhook or exit code).
    pub async fn alert_mute(
        &self,
        id: &str,
        period: chrono::Duration,
    ) -> Result<ActiveAlert, OpsError> {
        if period <= chrono::Duration::zero() {
            return Err(OpsError::Alert(format!(
                "a mute needs a positive period, got {}s",
                period.num_seconds()
            )));
        }
        let _one = self.alert_lock.lock().await;
        let mut m = self.alert_memory().await?;
        let a = alerts::mute(&mut m, id, Utc::now() + period)
            .map_err(|e| OpsError::Alert(e.to_string()))?;
        self.save_alert_memory(&m).await?;
        Ok(a)
    }
}
