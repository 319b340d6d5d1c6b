//! One row per client for the fleet table, built concurrently: all Docker hosts and all
//! trackers are asked at once (bounded), each with its own timeout, so a refresh takes
//! about one slow round trip and a dead host never blocks the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use mai_core::pricing::{self, limit_state, MarkupSchedule};
use mai_core::usage::Totals;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::docker::{self, ContainerInfo, ContainerRole, ContainerState};
use crate::fleet::{Client, Fleet};
use crate::tracker::{Daily, KeyState, Status, Today, TrackerClient};

/// The fleet table's row and alerts are the console's IPC types.
pub use mai_wire::console::{Alert, AlertLevel, FleetRow, SyncView};

/// What a tracker told us the last time it answered; kept so an unreachable tracker
/// still shows numbers, with their age. Only raw (OpenRouter) costs are taken from the
/// tracker: every client price is computed here from the fleet file's terms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackerSnapshot {
    pub fetched_at: DateTime<Utc>,
    pub status: Status,
    pub today: Today,
    /// The month so far, day by day (raw costs), to price by markup segment.
    pub month_days: Option<Daily>,
    /// Pushing the fleet file's terms to the tracker failed (it prices its own reports
    /// with older terms until the next push succeeds).
    #[serde(default)]
    pub terms_error: Option<String>,
}

/// Inputs of [`build_row`]: everything gathered for one client.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub containers: Result<Vec<ContainerInfo>, String>,
    pub tracker: Result<TrackerSnapshot, String>,
    pub last_good: Option<TrackerSnapshot>,
}

/// Pure: turns what was gathered into the row and its notes. A condition the alerts
/// module owns (an [`mai_wire::alerts::AlertKind`]: a container down, the tracker
/// unreachable, reconciliation failing, a key or monthly limit reached) is not noted
/// here: `Ops::refresh` adds the client's active alerts to the row
/// ([`crate::alerts::attach`]), so each condition has one message, debounced, with one
/// threshold.
pub fn build_row(client: &Client, g: Gathered, now: DateTime<Utc>) -> FleetRow {
    // What the fleet file allows but weakens (plain HTTP to another machine, polling
    // with the admin token) is shown on every refresh, not only at load.
    let mut alerts: Vec<Alert> = client
        .warnings
        .iter()
        .map(|w| Alert {
            level: AlertLevel::Warning,
            message: w.clone(),
        })
        .collect();
    let (container, tracker_container, docker_error) = match &g.containers {
        Ok(list) => {
            let mine: Vec<&ContainerInfo> = list.iter().filter(|c| c.client == client.id).collect();
            let chat = mine
                .iter()
                .find(|c| c.role == ContainerRole::Chat)
                .map(|c| (*c).clone());
            let tr = mine
                .iter()
                .find(|c| c.role == ContainerRole::Tracker)
                .map(|c| (*c).clone());
            (chat, tr, None)
        }
        Err(e) => (None, None, Some(e.clone())),
    };
    if let Some(e) = &docker_error {
        alerts.push(Alert {
            level: AlertLevel::Warning,
            message: format!("Docker host {} unreachable: {e}", client.host),
        });
    } else if container.is_none() {
        alerts.push(Alert {
            level: AlertLevel::Warning,
            message: format!(
                "no chat container labelled mai.client={} on {}",
                client.id, client.host
            ),
        });
    }
    let (snapshot, tracker_reachable, tracker_error) = match g.tracker {
        Ok(s) => (Some(s), true, None),
        Err(e) => (g.last_good, false, Some(e)),
    };
    let mut row = FleetRow {
        client_id: client.id.clone(),
        legal_name: client.legal_name.clone(),
        host: client.host.clone(),
        host_mode: None,
        markup: client.markup_on(mai_core::time::warsaw_day(now)),
        uptime_seconds: container
            .as_ref()
            .filter(|c| c.state == ContainerState::Running)
            .and_then(|c| c.started_at)
            .map(|s| (now - s).num_seconds().max(0)),
        container,
        tracker_container,
        docker_error,
        tracker_reachable,
        tracker_error,
        tracker_version: None,
        last_sync_state: SyncView::Unknown,
        last_sync_at: None,
        last_sync_error: None,
        today_requests: None,
        today_tokens: None,
        today_raw_cost_usd: None,
        today_client_cost_usd: None,
        month_client_cost_usd: None,
        month_raw_cost_usd: None,
        limit: None,
        projection: None,
        key_state: None,
        key_label: None,
        key_limit_remaining_usd: None,
        alerts: Vec::new(),
        data_fetched_at: None,
        data_age_seconds: None,
        refreshed_at: now,
    };
    if let Some(s) = snapshot {
        row.data_fetched_at = Some(s.fetched_at);
        row.data_age_seconds = Some((now - s.fetched_at).num_seconds().max(0));
        row.tracker_version = Some(s.status.version.clone());
        let sync = &s.status.sync;
        row.last_sync_at = sync.last_run;
        row.last_sync_error = sync.last_error.clone();
        row.last_sync_state = if sync.running {
            SyncView::Running
        } else if sync.last_error.is_some() {
            SyncView::Error
        } else if sync.last_success.is_some() {
            SyncView::Ok
        } else {
            SyncView::Unknown
        };
        if let Some(ok) = sync.last_success {
            let iv = sync.interval_seconds;
            if iv > 0 && (now - ok).num_seconds() > 3 * iv as i64 {
                alerts.push(Alert {
                    level: AlertLevel::Warning,
                    message: format!("no successful sync for {} min", (now - ok).num_minutes()),
                });
            }
        }
        if let Some(d) = sync.drift.as_ref().map(|d| d.day_usd) {
            if !d.is_zero() {
                alerts.push(Alert {
                    level: AlertLevel::Info,
                    message: format!("today's drift vs OpenRouter: ${d}"),
                });
            }
        }
        if let Some(e) = &s.terms_error {
            alerts.push(Alert {
                level: AlertLevel::Warning,
                message: format!("the tracker has not taken the fleet file's markup and limit ({e}); its own reports may price differently"),
            });
        }
        let k = &s.status.key;
        row.key_state = Some(k.state);
        row.key_label = Some(k.label.clone());
        row.key_limit_remaining_usd = k.limit_remaining;
        match k.state {
            KeyState::AccountOutOfCredits => alerts.push(Alert {
                level: AlertLevel::Critical,
                message: "OpenRouter account out of credits (402 \"Insufficient credits\"): every client's key has stopped; top up the credits at openrouter.ai/credits".into(),
            }),
            KeyState::Invalid => alerts.push(Alert {
                level: AlertLevel::Critical,
                message: "OpenRouter key invalid or disabled; set or rotate it".into(),
            }),
            KeyState::Error => alerts.push(Alert {
                level: AlertLevel::Warning,
                message: format!(
                    "OpenRouter key check failed: {}",
                    k.error.clone().unwrap_or_default()
                ),
            }),
            // LimitReached is the alerts module's (`AlertKind::KeyLimit`).
            KeyState::Ok | KeyState::Unknown | KeyState::LimitReached => {}
        }
        row.today_requests = Some(s.today.requests);
        row.today_tokens = Some(s.today.tokens.total);
        row.today_raw_cost_usd = Some(s.today.raw_cost_usd);
        // Every price comes from the fleet file's terms through the one pricing function.
        // A price that does not fit exactly is shown as unknown, with an alert.
        let today_price = pricing::price(&client.terms.markup, s.today.date, s.today.raw_cost_usd);
        let month_price = s
            .month_days
            .as_ref()
            .map(|m| month_client_cost(&client.terms.markup, m))
            .transpose();
        if let Some(e) = today_price.as_ref().err().or(month_price.as_ref().err()) {
            alerts.push(Alert {
                level: AlertLevel::Critical,
                message: format!("client cost cannot be computed: {e}"),
            });
        }
        row.today_client_cost_usd = today_price.ok();
        row.month_raw_cost_usd = s.month_days.as_ref().and_then(|m| {
            m.days
                .iter()
                .try_fold(Decimal::ZERO, |a, d| a.checked_add(d.raw_cost_usd))
                .map(|x| x.normalize())
        });
        if let Ok(Some(month)) = month_price {
            row.month_client_cost_usd = Some(month);
            row.projection = Some(crate::ops::overview::project(
                month,
                client.monthly_limit_usd(),
                now,
            ));
            if let Some(limit) = client.monthly_limit_usd() {
                row.limit = Some(limit_state(limit, month));
            }
        }
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.level));
    row.alerts = alerts;
    row
}

/// The month's client cost from its days' raw costs, priced by markup segment.
pub fn month_client_cost(
    schedule: &MarkupSchedule,
    days: &Daily,
) -> Result<Decimal, pricing::PricingError> {
    let daily: Vec<(NaiveDate, Totals)> = days
        .days
        .iter()
        .map(|d| {
            (
                d.date,
                Totals {
                    requests: d.requests,
                    tokens: d.tokens.into(),
                    cost_usd: d.raw_cost_usd,
                },
            )
        })
        .collect();
    pricing::price_period(schedule, &daily)
}

/// Fetches status, today and the month so far (up to `today`, a Warsaw day) from one
/// tracker, all at once, and pushes the fleet file's terms when the tracker holds other
/// ones.
pub async fn fetch_snapshot(
    t: &TrackerClient,
    client: &Client,
    today: NaiveDate,
) -> Result<TrackerSnapshot, String> {
    let first = mai_core::time::YearMonth::of(today).first_day();
    let (status, today_r, days) = tokio::join!(t.status(), t.today(), t.daily(first, today));
    let status = status.map_err(|e| e.to_string())?;
    let today_r = today_r.map_err(|e| e.to_string())?;
    let terms_error = if status.terms.as_ref() != Some(&client.terms) {
        t.put_terms(&client.terms)
            .await
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    Ok(TrackerSnapshot {
        fetched_at: Utc::now(),
        status,
        today: today_r,
        month_days: days.ok(),
        terms_error,
    })
}

/// What a refresh needs besides the fleet: tracker clients and the last good snapshots.
pub struct RefreshInput<'a> {
    pub fleet: &'a Fleet,
    pub trackers: &'a HashMap<String, Result<TrackerClient, String>>,
    pub last_good: &'a HashMap<String, TrackerSnapshot>,
    /// Skip Docker entirely (no engine, or a test of trackers only).
    pub docker: bool,
    /// The Warsaw day whose month the rows show.
    pub today: NaiveDate,
}

/// Refreshes every client; rows are in fleet-file order, with the fresh snapshots
/// (to remember as last-good data).
pub async fn refresh_all(
    input: RefreshInput<'_>,
) -> (Vec<FleetRow>, HashMap<String, TrackerSnapshot>) {
    let fleet = input.fleet;
    let sem = Arc::new(Semaphore::new(fleet.console.concurrency));
    // One container listing per host, all hosts at once.
    // Owned items keep these futures Send for any caller (Tauri commands need that).
    let hosts = futures::future::join_all(fleet.hosts.clone().into_iter().map(|h| {
        let sem = sem.clone();
        async move {
            if !input.docker {
                return (h.name.clone(), Err("Docker disabled".to_string()));
            }
            let _p = sem.acquire().await;
            let fut = async {
                let d = docker::connect(&h).await.map_err(|e| e.to_string())?;
                docker::list_clients(&d, &h)
                    .await
                    .map_err(|e| e.to_string())
            };
            let r = match tokio::time::timeout(Duration::from_millis(h.timeout_ms), fut).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", h.timeout_ms)),
            };
            (h.name.clone(), r)
        }
    }));
    let today = input.today;
    let trackers = futures::stream::iter(fleet.clients.clone().into_iter().map(|c| {
        let sem = sem.clone();
        let t = input.trackers.get(&c.id).cloned();
        async move {
            let id = c.id.clone();
            let r = match t {
                Some(Ok(t)) => {
                    let _p = sem.acquire().await;
                    fetch_snapshot(&t, &c, today).await
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err("no tracker client".to_string()),
            };
            (id, r)
        }
    }))
    .buffer_unordered(fleet.console.concurrency.max(1))
    .collect::<Vec<_>>();
    let (hosts, trackers) = tokio::join!(hosts, trackers);
    let hosts: HashMap<_, _> = hosts.into_iter().collect();
    let mut trackers: HashMap<_, _> = trackers.into_iter().collect();
    let now = Utc::now();
    let mut fresh = HashMap::new();
    let rows = fleet
        .clients
        .iter()
        .map(|c| {
            let tracker = trackers
                .remove(&c.id)
                .unwrap_or_else(|| Err("not fetched".into()));
            if let Ok(s) = &tracker {
                fresh.insert(c.id.clone(), s.clone());
            }
            let g = Gathered {
                containers: hosts
                    .get(&c.host)
                    .cloned()
                    .unwrap_or_else(|| Err("unknown host".into())),
                tracker,
                last_good: input.last_good.get(&c.id).cloned(),
            };
            let mut row = build_row(c, g, now);
            row.host_mode = fleet.host(&c.host).map(|h| h.mode);
            row
        })
        .collect();
    (rows, fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = r#"
[[hosts]]
name = "hel1"
docker = "unix:///var/run/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1, 00-001 Warszawa"
host = "hel1"
markup = "1.3"
tracker_url = "http://127.0.0.1:9001"
tracker_read_token = "env:ACME_READ_TOKEN"
tracker_admin_token = "env:ACME_TOKEN"
"#;

    fn client() -> Client {
        Fleet::parse(FLEET, std::path::Path::new("/etc/mai/fleet.toml"))
            .unwrap()
            .clients
            .remove(0)
    }

    fn now() -> DateTime<Utc> {
        "2026-11-10T12:00:00Z".parse().unwrap()
    }

    fn container(client: &str, role: ContainerRole, state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{client}-{role}"),
            name: format!("mai-{client}-{role}"),
            client: client.into(),
            role,
            image: "ghcr.io/open-webui/open-webui:0.6".into(),
            version: Some("0.6".into()),
            state,
            health: None,
            started_at: Some("2026-11-10T11:00:00Z".parse().unwrap()),
            restart_count: Some(0),
        }
    }

    fn row(containers: Vec<ContainerInfo>) -> FleetRow {
        build_row(
            &client(),
            Gathered {
                containers: Ok(containers),
                tracker: Err("not asked in this test".into()),
                last_good: None,
            },
            now(),
        )
    }

    fn container_alerts(r: &FleetRow) -> Vec<(AlertLevel, &str)> {
        r.alerts
            .iter()
            .filter(|a| a.message.contains("container"))
            .map(|a| (a.level, a.message.as_str()))
            .collect()
    }

    #[test]
    fn containers_are_matched_by_client_and_role() {
        let r = row(vec![
            container("other", ContainerRole::Chat, ContainerState::Running),
            container("acme", ContainerRole::Tracker, ContainerState::Running),
            container("acme", ContainerRole::Chat, ContainerState::Running),
        ]);
        assert_eq!(r.container.as_ref().unwrap().name, "mai-acme-chat");
        assert_eq!(
            r.tracker_container.as_ref().unwrap().name,
            "mai-acme-tracker"
        );
        assert_eq!(r.uptime_seconds, Some(3600));
        assert!(container_alerts(&r).is_empty(), "{:?}", r.alerts);
    }

    #[test]
    fn a_chat_container_down_is_left_to_the_alerts_module() {
        // Exited or unhealthy is `AlertKind::ChatContainer`'s: one message, with the
        // restart-loop memory, attached by `Ops::refresh` (`alerts::attach`).
        let r = row(vec![container(
            "acme",
            ContainerRole::Chat,
            ContainerState::Exited,
        )]);
        assert_eq!(r.uptime_seconds, None);
        assert!(container_alerts(&r).is_empty(), "{:?}", r.alerts);
        let mut c = container("acme", ContainerRole::Chat, ContainerState::Running);
        c.health = Some(crate::docker::ContainerHealth::Unhealthy);
        assert!(container_alerts(&row(vec![c])).is_empty());
    }

    #[test]
    fn only_a_tracker_container_means_no_chat_container() {
        let r = row(vec![container(
            "acme",
            ContainerRole::Tracker,
            ContainerState::Running,
        )]);
        assert!(r.container.is_none());
        assert_eq!(
            container_alerts(&r),
            [(
                AlertLevel::Warning,
                "no chat container labelled mai.client=acme on hel1"
            )]
        );
    }

    #[test]
    fn fleet_file_warnings_are_alerts_on_every_refresh() {
        let text = FLEET
            .replace("http://127.0.0.1:9001", "http://10.0.1.10:8080")
            .replace("tracker_url", "insecure_http = true\ntracker_url");
        let c = Fleet::parse(&text, std::path::Path::new("f.toml"))
            .unwrap()
            .clients
            .remove(0);
        let r = build_row(
            &c,
            Gathered {
                containers: Ok(vec![]),
                tracker: Err("x".into()),
                last_good: None,
            },
            now(),
        );
        assert!(
            r.alerts.iter().any(|a| a.level == AlertLevel::Warning
                && a.message.contains("plain HTTP (insecure_http = true)")),
            "{:?}",
            r.alerts
        );
    }

    #[test]
    fn an_unreachable_tracker_is_the_rows_state_and_the_alerts_modules_alert() {
        // No chat container is the row's own note; the tracker not answering is shown by
        // `tracker_reachable`/`tracker_error` at once, and as an alert only when the alerts
        // module's debounce says so (worst-first order: `alerts::attach`).
        let r = row(vec![]);
        let levels: Vec<_> = r.alerts.iter().map(|a| a.level).collect();
        assert_eq!(levels, [AlertLevel::Warning]);
        assert!(!r.tracker_reachable);
        assert_eq!(r.tracker_error.as_deref(), Some("not asked in this test"));
        assert_eq!(r.last_sync_state, SyncView::Unknown);
    }
}
