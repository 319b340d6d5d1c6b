//! Alerts in the console: the commands of the Alerts view, the background refresh that
//! keeps alerts evaluated while no view refreshes the fleet, and the desktop
//! notifications of raised alerts. Evaluation, ack and mute are `mai_ops` (Ops).

use std::sync::Arc;
use std::time::Duration;

use mai_ops::alerts::AlertChange;
use mai_wire::alerts::{ActiveAlert, AlertsView, MuteRequest};
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

use crate::Console;

/// The event the UI listens to (payload: the new view) after every evaluation that
/// changed something, and after ack and mute.
pub const ALERTS_EVENT: &str = "alerts-changed";

#[tauri::command]
pub async fn alerts_list(state: State<'_, Console>) -> Result<AlertsView, String> {
    state.ops().await?.alerts().await.map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn alert_ack<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Console>,
    id: String,
) -> Result<AlertsView, String> {
    let ops = state.ops().await?;
    ops.alert_ack(&id).await.map_err(|e| e.to_string())?;
    let v = ops.alerts().await.map_err(|e| e.to_string())?;
    let _ = app.emit(ALERTS_EVENT, &v);
    Ok(v)
}

#[tauri::command]
pub async fn alert_mute<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Console>,
    request: MuteRequest,
) -> Result<AlertsView, String> {
    let ops = state.ops().await?;
    ops.alert_mute(&request.id, chrono::Duration::seconds(request.seconds))
        .await
        .map_err(|e| e.to_string())?;
    let v = ops.alerts().await.map_err(|e| e.to_string())?;
    let _ = app.emit(ALERTS_EVENT, &v);
    Ok(v)
}

/// A raised alert's notification: title and body.
pub fn notification_text(a: &ActiveAlert) -> (String, String) {
    let who = a.client.as_deref().unwrap_or("fleet");
    (format!("mAI Fleet: {who}"), a.message.clone())
}

/// Installs the notification sink on the console's `Ops` and starts the background
/// refresh: every `[alerts] refresh_seconds`, unless a view refreshed the fleet since.
pub fn start(app: AppHandle<tauri::Wry>) {
    let sink_app = app.clone();
    let sink: mai_ops::ops::alerts::AlertSink = Arc::new(move |changes: &[AlertChange]| {
        notify(&sink_app, changes);
    });
    tauri::async_runtime::spawn(async move {
        // The fleet is opened in the background (Console::from_env): wait for it.
        app.state::<Console>().opened().await;
        let Some(ops) = app.state::<Console>().current() else {
            return;
        };
        ops.set_alert_sink(sink);
        drop(ops);
        loop {
            let Some(every) = app
                .state::<Console>()
                .current()
                .map(|o| o.fleet.alerts.refresh_seconds)
            else {
                return;
            };
            let every = Duration::from_secs(every);
            tokio::time::sleep(every).await;
            // After the sleep: a change or onboarding may have reloaded the fleet meanwhile.
            let Some(ops) = app.state::<Console>().current() else {
                return;
            };
            let last = ops.alerts().await.ok().and_then(|v| v.evaluated_at);
            let due = last.is_none_or(|t| {
                (chrono::Utc::now() - t).to_std().unwrap_or_default() + Duration::from_secs(1)
                    >= every
            });
            if due {
                ops.refresh().await;
            }
        }
    });
}

/// Emits the new view to the UI and shows one notification per loud raised alert. A
/// missing notification server is logged, never an error.
fn notify(app: &AppHandle<tauri::Wry>, changes: &[AlertChange]) {
    use tauri_plugin_notification::NotificationExt;
    let now = chrono::Utc::now();
    for c in changes {
        if let AlertChange::Raised(a) = c {
            if !c.is_loud(now) {
                continue;
            }
            let (title, body) = notification_text(a);
            if let Err(e) = app.notification().builder().title(title).body(body).show() {
                tracing::warn!("desktop notification of alert {} not shown: {e}", a.id);
            }
        }
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(ops) = app.state::<Console>().current() {
            if let Ok(v) = ops.alerts().await {
                let _ = app.emit(ALERTS_EVENT, &v);
            }
        }
    });
}
