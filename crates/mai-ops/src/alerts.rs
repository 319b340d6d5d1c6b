//! Alerts (issue 14): pure evaluation of one refresh against the previous alert state,
//! and the outgoing Slack-compatible webhook.
//!
//! [`evaluate`] takes what a refresh saw ([`Observation`]: the fleet rows, the latest
//! tracker snapshots, the NBP display rate, KSeF rejections) and the remembered state
//! ([`AlertMemory`], persisted in the console cache by `ops::alerts`) and returns the new
//! state and what changed ([`AlertChange`]). Rules:
//! - an alert's id is stable (`<kind>:<client>`), so it keeps its first-seen time and its
//!   acknowledgement for as long as its cause lasts;
//! - an alert clears itself on the first evaluation that no longer sees its cause; facts
//!   that were not observed this time (Docker host down, NBP or KSeF not checked) keep
//!   their alerts as they were instead of clearing them;
//! - a tracker is "unreachable" only after [`TRACKER_DEBOUNCE`] failed refreshes in a row:
//!   one slow answer raises nothing;
//! - acknowledged lasts until the alert clears; a mute lasts for its period, even across
//!   a clear and a new raise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mai_wire::alerts::{ActiveAlert, AlertKind, AlertsView};
use mai_wire::console::{
    Alert, AlertLevel, ContainerHealth, ContainerInfo, ContainerState, FleetRow, PlnRate, SyncView,
};
use mai_wire::tracker::KeyState;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::fleet::AlertSettings;
use crate::refresh::TrackerSnapshot;

/// Failed refreshes in a row before a tracker is reported unreachable.
pub const TRACKER_DEBOUNCE: u32 = 3;
/// Cleared alerts kept for the view.
pub const CLEARED_KEPT: usize = 50;
/// A container Docker restarted (its restart count grew) stays an alert this long after
/// the last restart: a crash loop spends most of its time "running".
pub const RESTART_WINDOW_MINUTES: i64 = 15;

/// A container's restart count as last seen, and when it last grew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartSeen {
    pub count: i64,
    pub last_increase: Option<DateTime<Utc>>,
}

/// The alert state between refreshes (the console cache's `alerts:memory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMemory {
    /// Failed tracker refreshes in a row, per client.
    #[serde(default)]
    pub tracker_failures: BTreeMap<String, u32>,
    /// Restart counts of the containers, by `<client>/<role>`.
    #[serde(default)]
    pub restarts: BTreeMap<String, RestartSeen>,
    /// Active alerts by id.
    #[serde(default)]
    pub active: BTreeMap<String, ActiveAlert>,
    /// Recently cleared, newest first.
    #[serde(default)]
    pub cleared: Vec<ActiveAlert>,
    /// Muted ids and until when.
    #[serde(default)]
    pub mutes: BTreeMap<String, DateTime<Utc>>,
    #[serde(default)]
    pub evaluated_at: Option<DateTime<Utc>>,
}

/// What one refresh saw.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// This refresh's rows (active clients).
    pub rows: &'a [FleetRow],
    /// The latest snapshot of each client's tracker (this refresh's or the last good one).
    pub snapshots: &'a HashMap<String, TrackerSnapshot>,
    /// The NBP display rate; `None` when not checked (its alert is kept as it was).
    pub nbp: Option<&'a PlnRate>,
    /// KSeF-rejected invoice numbers by client; `None` when not checked.
    pub ksef_rejected: Option<&'a BTreeMap<String, Vec<String>>>,
}

/// One transition, for notifications and the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    Raised(ActiveAlert),
    Cleared(ActiveAlert),
}

impl AlertChange {
    pub fn alert(&self) -> &ActiveAlert {
        match self {
            AlertChange::Raised(a) | AlertChange::Cleared(a) => a,
        }
    }

    /// Worth telling someone: not muted at `now`.
    pub fn is_loud(&self, now: DateTime<Utc>) -> bool {
        !self.alert().is_muted(now)
    }

    /// The one-line text of notifications and the webhook (secret-free: messages are
    /// built from states, amounts and masked labels only).
    pub fn text(&self) -> String {
        let a = self.alert();
        let who = a.client.as_deref().unwrap_or("fleet");
        match self {
            AlertChange::Raised(_) => {
                format!(
                    "[{}] {who}: {} ({})",
                    level_word(a.severity),
                    a.message,
                    a.id
                )
            }
            AlertChange::Cleared(_) => format!("[cleared] {who}: {} ({})", a.message, a.id),
        }
    }
}

fn level_word(l: AlertLevel) -> &'static str {
    match l {
        AlertLevel::Info => "info",
        AlertLevel::Warning => "warning",
        AlertLevel::Critical => "critical",
    }
}

/// A cause seen in this refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cause {
    kind: AlertKind,
    client: Option<String>,
    severity: AlertLevel,
    message: String,
}

impl Cause {
    fn id(&self) -> String {
        self.kind.id(self.client.as_deref())
    }
}

fn container_problem(c: &ContainerInfo) -> Option<String> {
    match (c.state, c.health) {
        (ContainerState::Running, Some(ContainerHealth::Unhealthy)) => Some("unhealthy".into()),
        (ContainerState::Running, _) => None,
        (s, _) => Some(s.to_string()),
    }
}

/// The causes one row shows, and the ids whose facts it could not observe (kept as
/// they were).
#[allow(clippy::too_many_arguments)]
fn row_causes(
    row: &FleetRow,
    snap: Option<&TrackerSnapshot>,
    failures: u32,
    settings: &AlertSettings,
    restarts: (
        &BTreeMap<String, RestartSeen>,
        &mut BTreeMap<String, RestartSeen>,
    ),
    now: DateTime<Utc>,
    out: &mut Vec<Cause>,
    unobserved: &mut BTreeSet<String>,
) {
    let (seen, next_seen) = restarts;
    let id = &row.client_id;
    let client = Some(id.clone());
    let mut push = |kind, severity, message: String| {
        out.push(Cause {
            kind,
            client: client.clone(),
            severity,
            message,
        })
    };
    if let Some(l) = &row.limit {
        let hundred = Decimal::from(100);
        // Exact: used × 100 ≥ threshold × limit, no rounded percentage in the decision.
        let used = l.used_usd * hundred;
        let pct = l.percent_used;
        if used >= settings.limit_reached_percent * l.monthly_limit_usd {
            push(
                AlertKind::LimitReached,
                AlertLevel::Critical,
                format!(
                    "monthly limit reached: ${} of ${} ({pct}%) this month; the OpenRouter key's cap stops further requests, so raise monthly_limit_usd (maictl clients set {id} --monthly-limit ...) or agree a new limit with the client",
                    l.used_usd, l.monthly_limit_usd
                ),
            );
        } else if used >= settings.limit_warning_percent * l.monthly_limit_usd {
            push(
                AlertKind::LimitWarning,
                AlertLevel::Warning,
                format!(
                    "{pct}% of the monthly limit used (${} of ${}); tell the client or raise monthly_limit_usd (maictl clients set {id} --monthly-limit ...) before requests stop",
                    l.used_usd, l.monthly_limit_usd
                ),
            );
        }
    }
    if row.key_state == Some(KeyState::LimitReached) {
        push(
            AlertKind::KeyLimit,
            AlertLevel::Critical,
            "OpenRouter refuses this client's key: its spending cap is reached (403 \"Key limit exceeded\"); raise monthly_limit_usd (the key's cap follows it) or the key's limit on openrouter.ai".into(),
        );
    }
    if failures >= TRACKER_DEBOUNCE {
        push(
            AlertKind::TrackerUnreachable,
            AlertLevel::Critical,
            format!(
                "tracker unreachable for {failures} refreshes in a row ({}); check its container (maictl logs {id} --role tracker) and the network to {}",
                row.tracker_error.as_deref().unwrap_or("no answer"),
                row.host
            ),
        );
    }
    if row.docker_error.is_some() {
        // The host did not answer: nothing is known about the containers this time.
        unobserved.insert(AlertKind::ChatContainer.id(Some(id)));
        unobserved.insert(AlertKind::TrackerContainer.id(Some(id)));
        for role in ["chat", "tracker"] {
            let key = format!("{id}/{role}");
            if let Some(r) = seen.get(&key) {
                next_seen.insert(key, r.clone());
            }
        }
    } else {
        for (kind, role, c) in [
            (AlertKind::ChatContainer, "chat", &row.container),
            (
                AlertKind::TrackerContainer,
                "tracker",
                &row.tracker_container,
            ),
        ] {
            let Some(c) = c.as_ref() else { continue };
            // Docker's restart count: growing means Docker restarted it (a crash loop
            // is "running" most of the time); a recreated container starts again at 0.
            let key = format!("{id}/{role}");
            let restarted = c.restart_count.and_then(|n| {
                let last_increase = match seen.get(&key) {
                    Some(prev) if n > prev.count => Some(now),
                    Some(prev) if n == prev.count => prev.last_increase,
                    _ => None,
                };
                next_seen.insert(
                    key,
                    RestartSeen {
                        count: n,
                        last_increase,
                    },
                );
                last_increase
                    .filter(|t| now - *t < chrono::Duration::minutes(RESTART_WINDOW_MINUTES))
                    .map(|t| (n, t))
            });
            let name = &c.name;
            if let Some(p) = container_problem(c) {
                push(
                    kind,
                    AlertLevel::Critical,
                    format!(
                        "{role} container {name} is {p}; read its logs (maictl logs {id} --role {role}) and restart it (maictl restart {id} --role {role})"
                    ),
                );
            } else if let Some((n, t)) = restarted {
                push(
                    kind,
                    AlertLevel::Warning,
                    format!(
                        "{role} container {name} was restarted by Docker (restart count {n}, last at {} UTC): it keeps failing; read its logs (maictl logs {id} --role {role})",
                        t.format("%Y-%m-%d %H:%M")
                    ),
                );
            }
        }
    }
    if let Some(d) = snap.and_then(|s| s.status.sync.drift.as_ref()) {
        if d.month_usd.abs() > settings.drift_usd {
            push(
                AlertKind::Drift,
                AlertLevel::Warning,
                format!(
                    "OpenRouter's month differs from the ledger by ${} (more than ${}); run a reconciliation (maictl sync --client {id}) and compare the provisional events",
                    d.month_usd, settings.drift_usd
                ),
            );
        }
    }
    if row.last_sync_state == SyncView::Error {
        push(
            AlertKind::Reconciliation,
            AlertLevel::Warning,
            format!(
                "reconciliation with OpenRouter failed: {}; check the client's key (maictl keys list) and run it again (maictl sync --client {id})",
                row.last_sync_error.as_deref().unwrap_or("no reason given")
            ),
        );
    }
}

/// One evaluation: the new memory and what was raised or cleared.
pub fn evaluate(
    memory: &AlertMemory,
    obs: Observation<'_>,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> (AlertMemory, Vec<AlertChange>) {
    let mut next = AlertMemory {
        mutes: memory
            .mutes
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        evaluated_at: Some(now),
        ..Default::default()
    };
    let mut causes = Vec::new();
    let mut unobserved = BTreeSet::new();
    for row in obs.rows {
        let failures = if row.tracker_reachable {
            0
        } else {
            memory
                .tracker_failures
                .get(&row.client_id)
                .copied()
                .unwrap_or(0)
                .saturating_add(1)
        };
        if failures > 0 {
            next.tracker_failures
                .insert(row.client_id.clone(), failures);
        }
        row_causes(
            row,
            obs.snapshots.get(&row.client_id),
            failures,
            settings,
            (&memory.restarts, &mut next.restarts),
            now,
            &mut causes,
            &mut unobserved,
        );
    }
    match obs.nbp {
        // Not answered yet: not checked.
        Some(r) if r.pending => {
            unobserved.insert(AlertKind::NbpStale.id(None));
        }
        Some(r) if r.stale || !r.available => causes.push(Cause {
            kind: AlertKind::NbpStale,
            client: None,
            severity: AlertLevel::Warning,
            message: match (r.available, r.effective_date, &r.error) {
                (true, Some(d), _) => format!("the NBP USD→PLN rate is stale (table of {d}, NBP not answering now); PLN figures use it; check [nbp] base_url and the network"),
                (_, _, Some(e)) => format!("the NBP USD→PLN rate is unavailable ({e}); PLN figures are missing; check [nbp] base_url and the network"),
                _ => "the NBP USD→PLN rate is stale; check [nbp] base_url and the network".into(),
            },
        }),
        Some(_) => {}
        None => {
            unobserved.insert(AlertKind::NbpStale.id(None));
        }
    }
    match obs.ksef_rejected {
        Some(map) => {
            for (client, numbers) in map.iter().filter(|(_, n)| !n.is_empty()) {
                causes.push(Cause {
                    kind: AlertKind::KsefRejected,
                    client: Some(client.clone()),
                    severity: AlertLevel::Critical,
                    message: format!(
                        "KSeF rejected invoice {}; see Billing → KSeF for KSeF's reason, fix the data and send again (maictl invoices send --month ...)",
                        numbers.join(", ")
                    ),
                });
            }
        }
        None => {
            for id in memory.active.keys() {
                if id.starts_with(AlertKind::KsefRejected.as_str()) {
                    unobserved.insert(id.clone());
                }
            }
        }
    }

    let mut changes = Vec::new();
    let mut seen = BTreeSet::new();
    for c in causes {
        let id = c.id();
        if !seen.insert(id.clone()) {
            continue;
        }
        let muted_until = next.mutes.get(&id).copied();
        let alert = match memory.active.get(&id) {
            Some(prev) => ActiveAlert {
                severity: c.severity,
                message: c.message,
                age_seconds: (now - prev.first_seen).num_seconds().max(0),
                muted_until,
                ..prev.clone()
            },
            None => {
                let a = ActiveAlert {
                    id: id.clone(),
                    kind: c.kind,
                    severity: c.severity,
                    client: c.client,
                    message: c.message,
                    first_seen: now,
                    age_seconds: 0,
                    acked: false,
                    muted_until,
                    cleared_at: None,
                };
                changes.push(AlertChange::Raised(a.clone()));
                a
            }
        };
        next.active.insert(id, alert);
    }
    let mut newly_cleared = Vec::new();
    for (id, prev) in &memory.active {
        if next.active.contains_key(id) {
            continue;
        }
        if unobserved.contains(id) {
            let mut kept = prev.clone();
            kept.age_seconds = (now - prev.first_seen).num_seconds().max(0);
            kept.muted_until = next.mutes.get(id).copied();
            next.active.insert(id.clone(), kept);
            continue;
        }
        let mut gone = prev.clone();
        gone.cleared_at = Some(now);
        gone.age_seconds = (now - prev.first_seen).num_seconds().max(0);
        gone.muted_until = next.mutes.get(id).copied();
        changes.push(AlertChange::Cleared(gone.clone()));
        newly_cleared.push(gone);
    }
    next.cleared = newly_cleared;
    next.cleared.extend(memory.cleared.iter().cloned());
    next.cleared.truncate(CLEARED_KEPT);
    (next, changes)
}

/// The unknown-id error of ack and mute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no active alert {0:?}; list them with `maictl alerts` (ids look like tracker_unreachable:acme)")]
pub struct UnknownAlert(pub String);

/// Acknowledges an active alert (until it clears).
pub fn ack(memory: &mut AlertMemory, id: &str) -> Result<ActiveAlert, UnknownAlert> {
    let a = memory
        .active
        .get_mut(id)
        .ok_or_else(|| UnknownAlert(id.to_string()))?;
    a.acked = true;
    Ok(a.clone())
}

/// Mutes an active alert's id until `until` (kept across a clear and a new raise).
pub fn mute(
    memory: &mut AlertMemory,
    id: &str,
    until: DateTime<Utc>,
) -> Result<ActiveAlert, UnknownAlert> {
    let a = memory
        .active
        .get_mut(id)
        .ok_or_else(|| UnknownAlert(id.to_string()))?;
    a.muted_until = Some(until);
    memory.mutes.insert(id.to_string(), until);
    Ok(a.clone())
}

/// Adds each client's active alerts to its fleet row, worst first: the row's own notes
/// ([`crate::refresh::build_row`]) leave these conditions to this module, so the fleet
/// table and the Alerts view say the same thing with the same debounce and thresholds.
pub fn attach(rows: &mut [FleetRow], memory: &AlertMemory) {
    for row in rows {
        row.alerts.extend(
            memory
                .active
                .values()
                .filter(|a| a.client.as_deref() == Some(row.client_id.as_str()))
                .map(|a| Alert {
                    level: a.severity,
                    message: a.message.clone(),
                }),
        );
        row.alerts.sort_by_key(|a| std::cmp::Reverse(a.level));
    }
}

/// The view of a memory at `now`: active worst first then oldest first, ages at `now`.
pub fn view(memory: &AlertMemory, now: DateTime<Utc>) -> AlertsView {
    let mut active: Vec<ActiveAlert> = memory
        .active
        .values()
        .cloned()
        .map(|mut a| {
            a.age_seconds = (now - a.first_seen).num_seconds().max(0);
            if !a.is_muted(now) {
                a.muted_until = None;
            }
            a
        })
        .collect();
    active.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.id.cmp(&b.id))
    });
    let mut by_client = BTreeMap::new();
    let mut attention = 0;
    for a in active.iter().filter(|a| a.needs_attention(now)) {
        attention += 1;
        if let Some(c) = &a.client {
            *by_client.entry(c.clone()).or_insert(0) += 1;
        }
    }
    AlertsView {
        active,
        cleared: memory.cleared.clone(),
        attention_by_client: by_client,
        attention,
        evaluated_at: memory.evaluated_at,
    }
}

/// Parses a mute period: `90s`, `30m`, `2h`, `1d` (or a bare number of seconds).
pub fn parse_period(s: &str) -> Result<chrono::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a period; write e.g. 30m, 2h or 1d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("{s:?} is not a period; write e.g. 30m, 2h or 1d")),
    };
    if !(1..=90 * 86400).contains(&secs) {
        return Err(format!("{s:?} is out of range; mute for 1s to 90d"));
    }
    Ok(chrono::Duration::seconds(secs))
}

/// The webhook's attempts and the first pause between them (doubled after each).
pub const WEBHOOK_ATTEMPTS: u32 = 4;
pub const WEBHOOK_FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The body a Slack-compatible incoming webhook takes.
pub fn webhook_body(changes: &[&AlertChange]) -> serde_json::Value {
    let lines: Vec<String> = changes.iter().map(|c| c.text()).collect();
    serde_json::json!({ "text": format!("mAI Fleet alerts\n{}", lines.join("\n")) })
}

/// Posts one message, retrying with backoff on a network error or a 5xx/429 answer.
/// Returns how many attempts it took, or why it gave up. The URL is never in the error.
pub async fn post_webhook(
    http: &reqwest::Client,
    url: &url::Url,
    body: &serde_json::Value,
) -> Result<u32, String> {
    let host = url.host_str().unwrap_or("?").to_string();
    let mut pause = WEBHOOK_FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        match http
            .post(url.clone())
            .timeout(Duration::from_secs(10))
            .json(body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(attempt),
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                last = format!("{host} answered {}", r.status());
            }
            Ok(r) => {
                return Err(format!(
                "the alert webhook on {host} refused the message ({}); check [alerts] webhook_url",
                r.status()
            ))
            }
            Err(e) => {
                last = format!(
                    "{host} did not answer ({})",
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection failed"
                    }
                )
            }
        }
        if attempt < WEBHOOK_ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    Err(format!(
        "the alert webhook gave up after {WEBHOOK_ATTEMPTS} attempts: {last}; check [alerts] webhook_url"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_wire::console::ContainerRole;
    use mai_wire::LimitLevel;
    use mai_wire::LimitState;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    fn row(id: &str) -> FleetRow {
        FleetRow {
            client_id: id.into(),
            legal_name: format!("{id} Sp. z o.o."),
            host: "hel1".into(),
            host_mode: None,
            markup: Decimal::new(13, 1),
            container: Some(container(id, ContainerRole::Chat, ContainerState::Running)),
            tracker_container: Some(container(
                id,
                ContainerRole::Tracker,
                ContainerState::Running,
            )),
            docker_error: None,
            uptime_seconds: Some(10),
            tracker_reachable: true,
            tracker_error: None,
            tracker_version: Some("0.1.0".into()),
            last_sync_state: SyncView::Ok,
            last_sync_at: None,
            last_sync_error: None,
            today_requests: None,
            today_tokens: None,
            today_raw_cost_usd: None,
            today_client_cost_usd: None,
            month_client_cost_usd: None,
            month_raw_cost_usd: None,
            projection: None,
            limit: None,
            key_state: Some(KeyState::Ok),
            key_label: None,
            key_limit_remaining_usd: None,
            alerts: vec![],
            data_fetched_at: None,
            data_age_seconds: None,
            refreshed_at: t("12:00:00"),
        }
    }

    fn container(client: &str, role: ContainerRole, state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{client}-{role}"),
            name: format!("mai-{client}-{role}"),
            client: client.into(),
            role,
            image: "img".into(),
            version: None,
            state,
            health: None,
            started_at: None,
            restart_count: Some(0),
        }
    }

    fn limit(used: &str, limit: &str) -> LimitState {
        let (u, l): (Decimal, Decimal) = (used.parse().unwrap(), limit.parse().unwrap());
        mai_core::pricing::limit_state(l, u)
    }

    fn eval(
        mem: &AlertMemory,
        rows: &[FleetRow],
        now: DateTime<Utc>,
    ) -> (AlertMemory, Vec<AlertChange>) {
        let snaps = HashMap::new();
        evaluate(
            mem,
            Observation {
                rows,
                snapshots: &snaps,
                nbp: None,
                ksef_rejected: None,
            },
            &AlertSettings::default(),
            now,
        )
    }

    fn ids(m: &AlertMemory) -> Vec<&str> {
        m.active.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_tracker_is_unreachable_only_after_three_failed_refreshes_in_a_row() {
        let mut r = row("acme");
        r.tracker_reachable = false;
        r.tracker_error = Some("no answer within 3000 ms".into());
        let (m1, c1) = eval(&AlertMemory::default(), &[r.clone()], t("12:00:00"));
        let (m2, c2) = eval(&m1, &[r.clone()], t("12:00:30"));
        assert!(c1.is_empty() && c2.is_empty(), "{c1:?} {c2:?}");
        assert!(m2.active.is_empty());
        // One good answer resets the streak: a slow answer now and then raises nothing.
        let (m3, _) = eval(&m2, &[row("acme")], t("12:01:00"));
        assert!(m3.tracker_failures.is_empty());
        let (m4, _) = eval(&m3, &[r.clone()], t("12:01:30"));
        let (m5, _) = eval(&m4, &[r.clone()], t("12:02:00"));
        assert!(m5.active.is_empty());
        let (m6, c6) = eval(&m5, &[r.clone()], t("12:02:30"));
        assert_eq!(ids(&m6), ["tracker_unreachable:acme"]);
        let a = &m6.active["tracker_unreachable:acme"];
        assert_eq!(a.first_seen, t("12:02:30"));
        assert_eq!(a.severity, AlertLevel::Critical);
        assert!(
            a.message.contains("3 refreshes") && a.message.contains("no answer within 3000 ms")
        );
        assert!(matches!(&c6[..], [AlertChange::Raised(x)] if x.id == "tracker_unreachable:acme"));
        // Still down: same alert, same first-seen, no new change, age grows.
        let (m7, c7) = eval(&m6, &[r], t("12:03:00"));
        assert!(c7.is_empty());
        assert_eq!(
            m7.active["tracker_unreachable:acme"].first_seen,
            t("12:02:30")
        );
        assert_eq!(m7.active["tracker_unreachable:acme"].age_seconds, 30);
        // Back: it clears on the first good refresh.
        let (m8, c8) = eval(&m7, &[row("acme")], t("12:03:30"));
        assert!(m8.active.is_empty());
        assert!(
            matches!(&c8[..], [AlertChange::Cleared(x)] if x.cleared_at == Some(t("12:03:30")))
        );
        assert_eq!(m8.cleared.len(), 1);
    }

    #[test]
    fn rows_show_their_clients_active_alerts_worst_first_and_nothing_else() {
        let mut down = row("acme");
        down.tracker_reachable = false;
        down.tracker_error = Some("connection refused".into());
        down.alerts = vec![Alert {
            level: AlertLevel::Info,
            message: "a note of the row's own".into(),
        }];
        let mut m = AlertMemory::default();
        for at in ["12:00:00", "12:00:30", "12:01:00"] {
            m = eval(&m, &[down.clone(), row("beta")], t(at)).0;
        }
        let mut rows = [down, row("beta")];
        attach(&mut rows, &m);
        let a = &m.active["tracker_unreachable:acme"];
        assert_eq!(
            rows[0].alerts,
            [
                Alert {
                    level: AlertLevel::Critical,
                    message: a.message.clone(),
                },
                Alert {
                    level: AlertLevel::Info,
                    message: "a note of the row's own".into(),
                },
            ]
        );
        assert!(rows[1].alerts.is_empty(), "{:?}", rows[1].alerts);
    }

    #[test]
    fn limit_alerts_at_80_and_100_percent_exactly_one_at_a_time() {
        let mut r = row("acme");
        r.limit = Some(limit("79.99", "100"));
        assert!(eval(&AlertMemory::default(), &[r.clone()], t("12:00:00"))
            .0
            .active
            .is_empty());
        r.limit = Some(limit("80", "100"));
        let (m, _) = eval(&AlertMemory::default(), &[r.clone()], t("12:00:00"));
        assert_eq!(ids(&m), ["limit_warning:acme"]);
        assert!(m.active["limit_warning:acme"]
            .message
            .contains("80.00% of the monthly limit"));
        r.limit = Some(limit("100.00", "100"));
        let (m2, c2) = eval(&m, &[r.clone()], t("12:00:30"));
        assert_eq!(ids(&m2), ["limit_reached:acme"]);
        assert_eq!(c2.len(), 2, "raised reached, cleared warning: {c2:?}");
        assert_eq!(
            m2.active["limit_reached:acme"].severity,
            AlertLevel::Critical
        );
        assert_eq!(
            m2.active["limit_reached:acme"]
                .message
                .split(';')
                .next()
                .unwrap(),
            "monthly limit reached: $100 of $100 (100.00%) this month"
        );
        // Configurable thresholds.
        let s = AlertSettings {
            limit_warning_percent: Decimal::from(50),
            ..Default::default()
        };
        r.limit = Some(limit("50", "100"));
        assert_eq!(r.limit.as_ref().unwrap().level, LimitLevel::Ok);
        let snaps = HashMap::new();
        let (m3, _) = evaluate(
            &AlertMemory::default(),
            Observation {
                rows: &[r],
                snapshots: &snaps,
                nbp: None,
                ksef_rejected: None,
            },
            &s,
            t("12:00:00"),
        );
        assert_eq!(ids(&m3), ["limit_warning:acme"]);
    }

    #[test]
    fn key_cap_containers_and_reconciliation_raise_and_clear_with_their_cause() {
        let mut r = row("acme");
        r.key_state = Some(KeyState::LimitReached);
        r.tracker_container = Some(container(
            "acme",
            ContainerRole::Tracker,
            ContainerState::Restarting,
        ));
        let mut chat = container("acme", ContainerRole::Chat, ContainerState::Running);
        chat.health = Some(ContainerHealth::Unhealthy);
        r.container = Some(chat);
        r.last_sync_state = SyncView::Error;
        r.last_sync_error = Some("OpenRouter /key answered 401".into());
        let (m, c) = eval(&AlertMemory::default(), &[r.clone()], t("12:00:00"));
        assert_eq!(
            ids(&m),
            [
                "chat_container:acme",
                "key_limit:acme",
                "reconciliation:acme",
                "tracker_container:acme"
            ]
        );
        assert_eq!(c.len(), 4);
        assert!(m.active["tracker_container:acme"]
            .message
            .contains("mai-acme-tracker is restarting"));
        assert!(m.active["chat_container:acme"]
            .message
            .contains("unhealthy"));
        assert!(m.active["key_limit:acme"]
            .message
            .contains("Key limit exceeded"));
        // Docker host unreachable: container facts unknown, their alerts stay.
        let mut blind = r.clone();
        blind.docker_error = Some("connection refused".into());
        blind.container = None;
        blind.tracker_container = None;
        let (m2, c2) = eval(&m, &[blind], t("12:00:30"));
        assert!(c2.is_empty(), "{c2:?}");
        assert_eq!(m2.active.len(), 4);
        // Causes gone: everything clears.
        let (m3, c3) = eval(&m2, &[row("acme")], t("12:01:00"));
        assert!(m3.active.is_empty());
        assert_eq!(c3.len(), 4);
        assert!(c3.iter().all(|c| matches!(c, AlertChange::Cleared(_))));
    }

    #[test]
    fn ack_lasts_until_clear_and_mute_lasts_its_period() {
        let mut r = row("acme");
        r.key_state = Some(KeyState::LimitReached);
        let (mut m, _) = eval(&AlertMemory::default(), &[r.clone()], t("12:00:00"));
        assert_eq!(view(&m, t("12:00:00")).attention, 1);
        ack(&mut m, "key_limit:acme").unwrap();
        assert_eq!(
            ack(&mut m, "nope:acme"),
            Err(UnknownAlert("nope:acme".into()))
        );
        let (m, _) = eval(&m, &[r.clone()], t("12:00:30"));
        assert!(m.active["key_limit:acme"].acked);
        let v = view(&m, t("12:00:30"));
        assert_eq!((v.attention, v.attention_by_client.get("acme")), (0, None));
        // Clears, comes back: not acknowledged any more.
        let (m, _) = eval(&m, &[row("acme")], t("12:01:00"));
        let (mut m, c) = eval(&m, &[r.clone()], t("12:01:30"));
        assert!(!m.active["key_limit:acme"].acked);
        assert!(c[0].is_loud(t("12:01:30")));
        // Muted for 1 h: survives a clear and a new raise, which is then quiet.
        mute(&mut m, "key_limit:acme", t("13:01:30")).unwrap();
        let (m, _) = eval(&m, &[row("acme")], t("12:02:00"));
        let (m, c) = eval(&m, &[r.clone()], t("12:02:30"));
        assert!(!c[0].is_loud(t("12:02:30")));
        assert_eq!(view(&m, t("12:02:30")).attention, 0);
        // After the period it needs attention again and the mute is forgotten.
        let (m, _) = eval(&m, &[r], t("13:02:00"));
        assert!(m.mutes.is_empty());
        let v = view(&m, t("13:02:00"));
        assert_eq!((v.attention, v.attention_by_client["acme"]), (1, 1));
        assert_eq!(v.active[0].muted_until, None);
    }

    #[test]
    fn a_container_docker_keeps_restarting_is_an_alert_for_a_while() {
        let with_count = |n: i64| {
            let mut r = row("acme");
            r.container.as_mut().unwrap().restart_count = Some(n);
            r
        };
        // First sight of a count: nothing to compare with, no alert.
        let (m, _) = eval(&AlertMemory::default(), &[with_count(4)], t("12:00:00"));
        assert!(m.active.is_empty());
        let (m, c) = eval(&m, &[with_count(5)], t("12:00:30"));
        assert_eq!(ids(&m), ["chat_container:acme"]);
        let a = &m.active["chat_container:acme"];
        assert_eq!(a.severity, AlertLevel::Warning);
        assert!(
            a.message
                .contains("restarted by Docker (restart count 5, last at 2026-12-07 12:00 UTC)"),
            "{}",
            a.message
        );
        assert_eq!(c.len(), 1);
        // Running since: the alert stays for the window after the last restart, then clears.
        let (m, c) = eval(&m, &[with_count(5)], t("12:14:00"));
        assert!(c.is_empty() && m.active.len() == 1);
        let (m, c) = eval(&m, &[with_count(5)], t("12:15:30"));
        assert!(m.active.is_empty());
        assert!(matches!(&c[..], [AlertChange::Cleared(_)]));
        // Recreated (count back to 0): no alert.
        let (m, _) = eval(&m, &[with_count(0)], t("12:16:00"));
        assert!(m.active.is_empty());
        assert_eq!(m.restarts["acme/chat"].count, 0);
    }

    #[test]
    fn nbp_and_ksef_are_kept_when_not_checked() {
        let snaps = HashMap::new();
        let stale = PlnRate {
            available: true,
            rate: Some(Decimal::new(40, 1)),
            table_no: Some("230/C/NBP/2026".into()),
            effective_date: Some("2026-12-01".parse().unwrap()),
            stale: true,
            error: None,
            pending: false,
        };
        let rejected: BTreeMap<String, Vec<String>> =
            [("acme".to_string(), vec!["FV/1/12/2026".to_string()])].into();
        let obs = |nbp, ksef| Observation {
            rows: &[],
            snapshots: &snaps,
            nbp,
            ksef_rejected: ksef,
        };
        let s = AlertSettings::default();
        let (m, _) = evaluate(
            &AlertMemory::default(),
            obs(Some(&stale), Some(&rejected)),
            &s,
            t("12:00:00"),
        );
        assert_eq!(ids(&m), ["ksef_rejected:acme", "nbp_stale"]);
        assert!(m.active["nbp_stale"]
            .message
            .contains("table of 2026-12-01"));
        assert_eq!(m.active["nbp_stale"].client, None);
        let (m, c) = evaluate(&m, obs(None, None), &s, t("12:00:30"));
        assert!(c.is_empty());
        assert_eq!(m.active.len(), 2);
        let fresh = PlnRate {
            stale: false,
            ..stale.clone()
        };
        let (m, c) = evaluate(
            &m,
            obs(Some(&fresh), Some(&BTreeMap::new())),
            &s,
            t("12:01:00"),
        );
        assert!(m.active.is_empty());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn drift_over_the_threshold() {
        let json = include_str!("../tests/data/alerts_snapshot.json");
        let mut snap: TrackerSnapshot = serde_json::from_str(json).unwrap();
        let d = snap.status.sync.drift.as_mut().unwrap();
        d.month_usd = "-1.01".parse().unwrap();
        let snaps: HashMap<String, TrackerSnapshot> = [("acme".to_string(), snap.clone())].into();
        let rows = [row("acme")];
        let obs = Observation {
            rows: &rows,
            snapshots: &snaps,
            nbp: None,
            ksef_rejected: None,
        };
        let (m, _) = evaluate(
            &AlertMemory::default(),
            obs,
            &AlertSettings::default(),
            t("12:00:00"),
        );
        assert_eq!(ids(&m), ["drift:acme"]);
        assert!(m.active["drift:acme"]
            .message
            .contains("$-1.01 (more than $1)"));
        let mut snaps = snaps;
        snaps
            .get_mut("acme")
            .unwrap()
            .status
            .sync
            .drift
            .as_mut()
            .unwrap()
            .month_usd = Decimal::ONE;
        let obs = Observation {
            rows: &rows,
            snapshots: &snaps,
            nbp: None,
            ksef_rejected: None,
        };
        let (m, _) = evaluate(&m, obs, &AlertSettings::default(), t("12:00:30"));
        assert!(m.active.is_empty());
    }

    #[test]
    fn views_sort_worst_then_oldest_and_the_webhook_text_is_plain() {
        let mut a = row("acme");
        a.last_sync_state = SyncView::Error;
        let (m, _) = eval(&AlertMemory::default(), &[a.clone()], t("12:00:00"));
        let mut b = row("beta");
        b.key_state = Some(KeyState::LimitReached);
        let (m, c) = eval(&m, &[a, b], t("12:00:30"));
        let v = view(&m, t("12:01:00"));
        let order: Vec<_> = v
            .active
            .iter()
            .map(|a| (a.id.as_str(), a.age_seconds))
            .collect();
        assert_eq!(order, [("key_limit:beta", 30), ("reconciliation:acme", 60)]);
        let body = webhook_body(&c.iter().collect::<Vec<_>>());
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("mAI Fleet alerts\n[critical] beta: OpenRouter refuses"),
            "{text}"
        );
        assert!(text.ends_with("(key_limit:beta)"));
    }

    #[test]
    fn mute_periods() {
        assert_eq!(parse_period("2h"), Ok(chrono::Duration::hours(2)));
        assert_eq!(parse_period("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_period("90"), Ok(chrono::Duration::seconds(90)));
        assert!(parse_period("2 weeks")
            .unwrap_err()
            .contains("30m, 2h or 1d"));
        assert!(parse_period("0s").is_err());
        assert!(parse_period("100d").is_err());
    }
}
