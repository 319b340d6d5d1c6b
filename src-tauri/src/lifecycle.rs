//! Onboarding and offboarding a client from the console's Clients view: thin commands
//! over `mai_ops::Ops` (`onboard`, `offboard`), progress as `onboard-progress` and
//! `offboard-progress` events (`LifecycleProgress`). After a change to the fleet file the
//! console's `Ops` is loaded again, so the new client (or its absence) shows at once.

use mai_wire::lifecycle::{
    FieldError, OffboardCheck, OffboardResult, OnboardRequest, OnboardResult,
};
use tauri::{Emitter, Runtime, State};

use crate::Console;

/// The fleet file's hosts, for the form's host list.
#[tauri::command]
pub async fn fleet_hosts(state: State<'_, Console>) -> Result<Vec<String>, String> {
    Ok(state
        .ops()
        .await?
        .fleet
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .collect())
}

/// The form's field errors against the fleet file as it is now; empty = valid. Creates
/// nothing.
#[tauri::command]
pub async fn onboard_validate(
    state: State<'_, Console>,
    request: OnboardRequest,
) -> Result<Vec<FieldError>, String> {
    Ok(state.ops().await?.onboard_validate(&request))
}

#[tauri::command]
pub async fn onboard_client<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    request: OnboardRequest,
) -> Result<OnboardResult, String> {
    let ops = state.ops().await?;
    let sink = move |p| {
        let _ = app.emit("onboard-progress", &p);
    };
    let r = ops
        .onboard(&request, &sink)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = state.reload(&ops) {
        tracing::error!("the fleet file changed but cannot be loaded again: {e}");
    }
    Ok(r)
}

#[tauri::command]
pub async fn offboard_check(
    state: State<'_, Console>,
    client_id: String,
) -> Result<OffboardCheck, String> {
    state
        .ops()
        .await?
        .offboard_check(&client_id)
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn offboard_client<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    client_id: String,
) -> Result<OffboardResult, String> {
    let ops = state.ops().await?;
    let sink = move |p| {
        let _ = app.emit("offboard-progress", &p);
    };
    let r = ops.offboard(&client_id, &sink).await;
    // Reload even after a stop halfway: the fleet file may be marked already.
    if let Err(e) = state.reload(&ops) {
        tracing::error!("the fleet file changed but cannot be loaded again: {e}");
    }
    r.map_err(|e| e.to_string())
}
