//! The Backups panel of a client (`ui/src/views/BackupsPanel.svelte`): thin commands over
//! `mai_ops::ops::backup`, and the schedule (`[backup] every`): while the console runs it
//! backs up every active client whose newest backup is older than that.

use mai_wire::backup::{BackupOutcome, ClientBackups, RebuildReport, RestoreResult};
use tauri::{Emitter, Manager, Runtime, State};

use crate::Console;

/// How often the schedule looks for clients due a backup.
const SCHEDULE_TICK: std::time::Duration = std::time::Duration::from_secs(60);

#[tauri::command]
pub async fn backup_list(
    state: State<'_, Console>,
    client_id: String,
) -> Result<ClientBackups, String> {
    state
        .ops()
        .await?
        .backups_with_ledger(&client_id)
        .await
        .map_err(|e| e.to_string())
}

/// Back up now; progress as `backup-progress` events `[client, bytes, total]`.
#[tauri::command]
pub async fn backup_now<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    client_id: String,
) -> Result<BackupOutcome, String> {
    let ops = state.ops().await?;
    let out = ops
        .backup_run(Some(&client_id), None, |c, b, t| {
            let _ = app.emit("backup-progress", (c, b, t));
        })
        .await
        .map_err(|e| e.to_string())?;
    out.into_iter()
        .next()
        .ok_or_else(|| format!("no backup was made of {client_id}"))
}

/// Restores `file` (a path from `backup_list`) onto the client's (new) tracker, with the
/// cache's later events when `with_cache`.
#[tauri::command]
pub async fn backup_restore(
    state: State<'_, Console>,
    client_id: String,
    file: String,
    with_cache: bool,
) -> Result<RestoreResult, String> {
    state
        .ops()
        .await?
        .backup_restore(
            &client_id,
            Some(std::path::Path::new(&file)),
            None,
            with_cache,
        )
        .await
        .map_err(|e| e.to_string())
}

/// Rebuilds a lost ledger from the cache and `/activity` (`month` = `YYYY-MM` or none).
#[tauri::command]
pub async fn backup_rebuild(
    state: State<'_, Console>,
    client_id: String,
    month: Option<String>,
) -> Result<RebuildReport, String> {
    let month = match month.filter(|m| !m.is_empty()) {
        Some(m) => Some(
            m.parse::<mai_core::time::YearMonth>()
                .map_err(|_| format!("month {m:?} is not a month; use YYYY-MM"))?,
        ),
        None => None,
    };
    state
        .ops()
        .await?
        .backup_rebuild(&client_id, month, None)
        .await
        .map_err(|e| e.to_string())
}

/// The schedule: every minute, the clients due (`Ops::backups_due`) are backed up one by
/// one; each outcome is logged and emitted as `backup-done`.
pub async fn schedule<R: Runtime>(app: tauri::AppHandle<R>) {
    loop {
        tokio::time::sleep(SCHEDULE_TICK).await;
        let Some(ops) = app.state::<Console>().current() else {
            continue;
        };
        for id in ops.backups_due_now() {
            match ops.backup_run(Some(&id), None, |_, _, _| {}).await {
                Ok(out) => {
                    for o in out {
                        match &o.error {
                            None => tracing::info!(client = %o.client_id, "scheduled backup made"),
                            Some(e) => {
                                tracing::warn!(client = %o.client_id, error = %e, "scheduled backup failed")
                            }
                        }
                        let _ = app.emit("backup-done", &o);
                    }
                }
                Err(e) => tracing::warn!(client = %id, error = %e, "scheduled backup failed"),
            }
        }
    }
}
