//! Alerts: what the console raises from its refreshes (issue 14), as the Alerts view,
//! `maictl alerts --json` and the notifications see them. The evaluation lives in
//! mai-ops (`alerts`); these are only its shapes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::console::AlertLevel;

/// What an alert is about. With the client, it makes the alert's stable id
/// (`<kind>:<client>`, or `<kind>` for the fleet-wide ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The month's client cost reached the fleet file's warning share of the limit (80%).
    LimitWarning,
    /// The month's client cost reached the monthly limit (100%).
    LimitReached,
    /// The OpenRouter key's own cap refused requests (403 "Key limit exceeded").
    KeyLimit,
    /// The tracker did not answer three refreshes in a row (debounced).
    TrackerUnreachable,
    /// The chat container is restarting, stopped or unhealthy.
    ChatContainer,
    /// The tracker container is restarting, stopped or unhealthy.
    TrackerContainer,
    /// OpenRouter's month differs from the ledger by more than `[alerts] drift_usd`.
    Drift,
    /// The tracker's last reconciliation failed.
    Reconciliation,
    /// The NBP display rate is stale or unavailable (fleet-wide).
    NbpStale,
    /// KSeF rejected an invoice of this client that is not yet sent again.
    KsefRejected,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LimitWarning => "limit_warning",
            AlertKind::LimitReached => "limit_reached",
            AlertKind::KeyLimit => "key_limit",
            AlertKind::TrackerUnreachable => "tracker_unreachable",
            AlertKind::ChatContainer => "chat_container",
            AlertKind::TrackerContainer => "tracker_container",
            AlertKind::Drift => "drift",
            AlertKind::Reconciliation => "reconciliation",
            AlertKind::NbpStale => "nbp_stale",
            AlertKind::KsefRejected => "ksef_rejected",
        }
    }

    /// The stable id of this kind of alert for `client` (`None`: fleet-wide).
    pub fn id(self, client: Option<&str>) -> String {
        match client {
            Some(c) => format!("{}:{c}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert, active or cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ActiveAlert {
    /// Stable: `<kind>:<client>` (or `<kind>`); what ack and mute take.
    pub id: String,
    pub kind: AlertKind,
    pub severity: AlertLevel,
    /// The client's id; `null` for a fleet-wide alert (the NBP rate).
    pub client: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
    /// When this alert was first raised (since it last cleared).
    pub first_seen: DateTime<Utc>,
    /// Seconds since `first_seen`, at the evaluation that produced this view.
    pub age_seconds: i64,
    /// Acknowledged by the operator; stays so until the alert clears.
    pub acked: bool,
    /// Muted until then (no notification, webhook or exit code while muted).
    pub muted_until: Option<DateTime<Utc>>,
    /// When the cause went away (cleared alerts only).
    pub cleared_at: Option<DateTime<Utc>>,
}

impl ActiveAlert {
    /// Needs the operator: active, neither acknowledged nor muted at `now`.
    pub fn needs_attention(&self, now: DateTime<Utc>) -> bool {
        self.cleared_at.is_none() && !self.acked && !self.is_muted(now)
    }

    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|u| u > now)
    }
}

/// The Alerts view (`alerts_list`, `maictl alerts --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AlertsView {
    /// Worst first, then oldest first.
    pub active: Vec<ActiveAlert>,
    /// Recently cleared, newest first (at most 50).
    pub cleared: Vec<ActiveAlert>,
    /// Active alerts needing attention (not acknowledged, not muted) per client id: the
    /// count a fleet row shows. Fleet-wide alerts are not in it.
    pub attention_by_client: BTreeMap<String, u32>,
    /// Active alerts needing attention, fleet-wide ones included: the nav badge.
    pub attention: u32,
    /// The evaluation this view comes from; `null` before the first refresh.
    pub evaluated_at: Option<DateTime<Utc>>,
}

/// `alert_mute`'s argument: an alert id and how long, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MuteRequest {
    pub id: String,
    pub seconds: i64,
}
