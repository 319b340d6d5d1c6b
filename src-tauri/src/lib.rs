//! mAI Fleet console: a thin Tauri shell. Every command forwards to `mai_ops::Ops`;
//! errors reach the UI as the library's own messages (what failed, on which input, what to do).
//! Replies, struct arguments and event payloads are `mai_wire::console` types, the ones
//! `ui/src/lib/wire.ts` is generated from.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::change::{ChangeCheck, ChangeReport, ClientChange, ClientFacts, HistoryEntry};
use mai_wire::console::{
    AppInfo, BillingReport, ClientRef, ContainerInfo, ContainerRole, Dashboard, FleetRow,
    InvoiceExportRequest, InvoiceExportResult, LogLine, MaskedKey, PrivacyErasure,
    PrivacyExportResult, Rotation, SecretKind, SyncOutcome, UpdateCheck,
};
use mai_wire::ksef::{KsefInvoiceRow, KsefSendSummary, KsefTokenStatus};
use mai_wire::update::{UpdatePlan, UpdatePreview, UpdateProgress, UpdateSummary};
use tauri::{Emitter, Manager, Runtime, State};
use tauri_plugin_updater::UpdaterExt;

pub mod alerts;
pub mod backup;
pub mod lifecycle;
pub mod update;

/// Process start, for the "cold start to first painted fleet view" figure.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Console state: the operator library (absent if the fleet file failed to load),
/// replaced when onboarding or offboarding changed the fleet file ([`Console::reload`]).
pub struct Console {
    /// Swapped for one with the fleet file read again after an action changed the file
    /// (a client change); commands in flight keep the one they started with.
    pub ops: std::sync::RwLock<Option<Arc<Ops>>>,
    pub fleet_path: Option<PathBuf>,
    load_error: std::sync::RwLock<Option<String>>,
    /// [`Console::from_env`] opens the fleet (fleet file, the cache with its integrity
    /// check over the whole file, keychain) on its own thread while the window and WebKit
    /// start; the first command that needs it waits for that thread ([`Console::opened`]).
    opening: Mutex<Option<std::thread::JoinHandle<Result<Ops, String>>>>,
    opened: tokio::sync::OnceCell<()>,
    logs: Mutex<HashMap<u32, tokio::task::AbortHandle>>,
    next_log: AtomicU32,
}

impl Console {
    pub fn new(ops: Result<Ops, String>, fleet_path: Option<PathBuf>) -> Console {
        let (ops, load_error) = match ops {
            Ok(o) => (Some(Arc::new(o)), None),
            Err(e) => (None, Some(e)),
        };
        Console {
            ops: std::sync::RwLock::new(ops),
            fleet_path,
            load_error: std::sync::RwLock::new(load_error),
            opening: Mutex::new(None),
            opened: tokio::sync::OnceCell::new(),
            logs: Mutex::new(HashMap::new()),
            next_log: AtomicU32::new(1),
        }
    }

    /// Loads the fleet named by `--fleet FILE` or `MAI_FLEET`, on a thread of its own
    /// (see [`Console::opening`]).
    pub fn from_env() -> Console {
        let mut args = std::env::args().skip(1);
        let mut path = std::env::var_os("MAI_FLEET").map(PathBuf::from);
        while let Some(a) = args.next() {
            if a == "--fleet" {
                path = args.next().map(PathBuf::from);
            } else if let Some(p) = a.strip_prefix("--fleet=") {
                path = Some(PathBuf::from(p));
            }
        }
        let Some(path) = path else {
            return Console::new(
                Err("no fleet file given; start the console with `--fleet FILE` or set MAI_FLEET (see fleet.example.toml)".into()),
                None,
            );
        };
        Console::open_in_background(path, Keychain::secret_service)
    }

    /// Opens the fleet file at `path` and its `Ops` (the console cache with its integrity
    /// check, the keychain from `keychain`) on a thread of its own; commands wait for it
    /// ([`Console::opened`]).
    pub fn open_in_background<K>(path: PathBuf, keychain: K) -> Console
    where
        K: FnOnce() -> Result<Keychain, mai_ops::keys::KeyError> + Send + 'static,
    {
        let file = path.clone();
        let open = move || {
            Fleet::load(&file)
                .map_err(|e| e.to_string())
                .and_then(|f| Ops::new(f, keychain()).map_err(|e| e.to_string()))
                .map(|mut o| {
                    o.docker_enabled = std::env::var("MAI_NO_DOCKER").is_err();
                    o
                })
        };
        let console = Console::new(Err("the fleet is still being opened".into()), Some(path));
        let handle = std::thread::Builder::new()
            .name("open-fleet".into())
            .spawn(open)
            .expect("the console could not start a thread to open the fleet (out of memory or threads?)");
        *console.opening.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        console
    }

    /// Waits until the fleet opened by [`Console::from_env`] is there (or failed to open).
    pub async fn opened(&self) {
        self.opened
            .get_or_init(|| async {
                let handle = self
                    .opening
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                let Some(handle) = handle else { return };
                let opened = match tokio::task::spawn_blocking(move || handle.join()).await {
                    Ok(Ok(r)) => r,
                    _ => Err("opening the fleet stopped unexpectedly (a bug); restart the console, and report it if it happens again".into()),
                };
                let (ops, error) = match opened {
                    Ok(o) => (Some(Arc::new(o)), None),
                    Err(e) => {
                        tracing::error!("{e}");
                        (None, Some(e))
                    }
                };
                *self.ops.write().unwrap_or_else(|p| p.into_inner()) = ops;
                *self.load_error.write().unwrap_or_else(|p| p.into_inner()) = error;
                mark_step("fleet_opened");
                // The opening (the integrity check over the whole cache, the fleet
                // file, the keychain) freed what it allocated; give it back to the OS
                // (issue 14: ~3 MiB of the console's PSS, a few ms).
                mai_core::alloc::trim();
            })
            .await;
    }

    /// Why the fleet is not loaded, if it is not.
    pub fn load_error(&self) -> Option<String> {
        self.load_error
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The operator library now (see [`Console::ops`]'s field).
    pub fn current(&self) -> Option<Arc<Ops>> {
        self.ops.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the fleet file again after `ops` changed it (a client change, onboarding,
    /// offboarding); on failure the old `Ops` stays.
    fn reload(&self, ops: &Ops) -> Result<(), String> {
        let fresh = Arc::new(ops.reloaded().map_err(|e| e.to_string())?);
        *self.ops.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
        Ok(())
    }

    async fn ops(&self) -> Result<Arc<Ops>, String> {
        self.opened().await;
        self.current().ok_or_else(|| {
            self.load_error()
                .unwrap_or_else(|| "the fleet is not loaded".into())
        })
    }
}

#[tauri::command]
async fn app_info(state: State<'_, Console>) -> Result<AppInfo, String> {
    mark_step("first_ipc");
    state.opened().await;
    let current = state.current();
    let ops = current.as_deref();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        fleet_path: state.fleet_path.as_ref().map(|p| p.display().to_string()),
        load_error: state.load_error(),
        keychain_error: ops.and_then(|o| o.keychain_error().map(String::from)),
        clients: ops
            .map(|o| {
                o.fleet
                    .active_clients()
                    .map(|c| ClientRef {
                        id: c.id.clone(),
                        legal_name: c.legal_name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        update_endpoint: ops.and_then(|o| o.fleet.updater.as_ref().map(|u| u.endpoint.clone())),
        billing_available: ops.is_some_and(|o| o.fleet.billing.is_some()),
        ksef_available: ops.is_some_and(|o| o.fleet.ksef.is_some()),
    })
}

#[tauri::command]
async fn fleet_status(state: State<'_, Console>) -> Result<Vec<FleetRow>, String> {
    Ok(state.ops().await?.refresh().await)
}

/// The fleet table and its totals (today, month to date, PLN, credits, projections)
/// from one refresh.
#[tauri::command]
async fn fleet_overview(
    state: State<'_, Console>,
) -> Result<mai_wire::overview::FleetOverview, String> {
    static REFRESHES: AtomicU32 = AtomicU32::new(0);
    let overview = state
        .ops()
        .await?
        .fleet_overview(mai_ops::ops::overview::OutsideAnswers::IfReady)
        .await;
    // The fleet view's refreshes (the first one included), for the footprint benchmark.
    let n = REFRESHES.fetch_add(1, Ordering::Relaxed) + 1;
    mark(|| {
        format!(
            "console_refresh n={n} rows={} ms={}",
            overview.rows.len(),
            since_process_start().as_millis()
        )
    });
    // A refresh of every client (HTTP clients, JSON, snapshots) frees what it allocated,
    // spread over the runtime's threads' malloc arenas; glibc keeps it unless asked.
    mai_core::alloc::trim();
    Ok(overview)
}

/// Exports one client's month of usage (CSV/JSON) to a file; progress goes out as
/// `usage-export-progress` events (`UsageExportProgress`).
#[tauri::command]
async fn usage_export<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    request: mai_wire::overview::UsageExportRequest,
) -> Result<mai_wire::overview::UsageExportResult, String> {
    let client = request.client.clone();
    state
        .ops()
        .await?
        .usage_export_request(&request, move |done, total| {
            let _ = app.emit(
                "usage-export-progress",
                mai_wire::overview::UsageExportProgress {
                    client: client.clone(),
                    done,
                    total,
                },
            );
        })
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn client_dashboard(
    state: State<'_, Console>,
    client_id: String,
) -> Result<Dashboard, String> {
    state
        .ops()
        .await?
        .dashboard(&client_id)
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn sync_clients<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    client_ids: Vec<String>,
) -> Result<Vec<SyncOutcome>, String> {
    let ops = state.ops().await?;
    for id in &client_ids {
        ops.client(id).map_err(|e| e.to_string())?;
    }
    Ok(ops
        .sync_many(&client_ids, |p| {
            let _ = app.emit("sync-progress", &p);
        })
        .await)
}

#[tauri::command]
async fn restart_container(
    state: State<'_, Console>,
    client_id: String,
    role: Option<ContainerRole>,
) -> Result<ContainerInfo, String> {
    state
        .ops()
        .await?
        .restart(&client_id, role.unwrap_or_default())
        .await
        .map_err(|e| e.to_string())
}

/// Starts streaming a container's logs as `log-line` events; returns the stream id.
#[tauri::command]
async fn logs_start<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    client_id: String,
    role: Option<ContainerRole>,
) -> Result<u32, String> {
    let ops = state.ops().await?;
    let mut s = Box::pin(
        ops.logs(&client_id, role.unwrap_or_default(), 200, true)
            .await
            .map_err(|e| e.to_string())?,
    );
    let id = state.next_log.fetch_add(1, Ordering::Relaxed);
    let task = tokio::spawn(async move {
        while let Some(l) = s.next().await {
            let line = match l {
                Ok(l) => l,
                Err(e) => format!("[log stream ended: {e}]\n"),
            };
            if app.emit("log-line", LogLine { stream: id, line }).is_err() {
                break;
            }
        }
    });
    state
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, task.abort_handle());
    Ok(id)
}

#[tauri::command]
fn logs_stop(state: State<'_, Console>, stream: u32) {
    if let Some(h) = state
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&stream)
    {
        h.abort();
    }
}

#[tauri::command]
async fn keys_list(state: State<'_, Console>) -> Result<Vec<MaskedKey>, String> {
    state
        .ops()
        .await?
        .keys_list()
        .await
        .map_err(|e| e.to_string())
}

/// The secret crosses IPC once, goes to the keychain, and only its mask comes back.
#[tauri::command]
async fn key_set(
    state: State<'_, Console>,
    client_id: String,
    kind: SecretKind,
    secret: String,
) -> Result<String, String> {
    state
        .ops()
        .await?
        .key_set(&client_id, kind, secret)
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn key_delete(
    state: State<'_, Console>,
    client_id: String,
    kind: SecretKind,
) -> Result<(), String> {
    state
        .ops()
        .await?
        .key_delete(&client_id, kind)
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn key_rotate(state: State<'_, Console>, client_id: String) -> Result<Rotation, String> {
    state
        .ops()
        .await?
        .rotate(&client_id)
        .await
        .map_err(|e| e.to_string())
}

/// GDPR art. 17: erases one person of a client on its tracker and in the cache.
#[tauri::command]
async fn privacy_erase(
    state: State<'_, Console>,
    client_id: String,
    user_id: Option<String>,
    email: Option<String>,
) -> Result<PrivacyErasure, String> {
    let who = mai_wire::tracker::PrivacySubject { id: user_id, email };
    state
        .ops()
        .await?
        .privacy_erase(&client_id, &who)
        .await
        .map_err(|e| e.to_string())
}

/// GDPR art. 15: one person's usage of a client.
#[tauri::command]
async fn privacy_export(
    state: State<'_, Console>,
    client_id: String,
    user_id: Option<String>,
    email: Option<String>,
) -> Result<PrivacyExportResult, String> {
    let who = mai_wire::tracker::PrivacySubject { id: user_id, email };
    state
        .ops()
        .await?
        .privacy_export(&client_id, &who)
        .await
        .map_err(|e| e.to_string())
}

/// A client's changeable facts as the fleet file has them now (the change dialog's start).
#[tauri::command]
async fn client_facts(state: State<'_, Console>, client_id: String) -> Result<ClientFacts, String> {
    state
        .ops()
        .await?
        .client_facts(&client_id)
        .await
        .map_err(|e| e.to_string())
}

/// Checks a change: the errors per field, or what it would change.
#[tauri::command]
async fn client_change_check(
    state: State<'_, Console>,
    client_id: String,
    change: ClientChange,
) -> Result<ChangeCheck, String> {
    state
        .ops()
        .await?
        .check_client_change(&client_id, &change)
        .await
        .map_err(|e| e.to_string())
}

/// Applies a change to a client (audited as the OS user), then reads the fleet file again.
#[tauri::command]
async fn client_change(
    state: State<'_, Console>,
    client_id: String,
    change: ClientChange,
) -> Result<ChangeReport, String> {
    let ops = state.ops().await?;
    let mut r = ops
        .change_client(&client_id, &change, &mai_ops::audit::os_user())
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = state.reload(&ops) {
        r.warnings
            .push(format!("{e}; restart the console to see the change"));
    }
    Ok(r)
}

/// A client's audit history, newest first.
#[tauri::command]
async fn client_history(
    state: State<'_, Console>,
    client_id: String,
) -> Result<Vec<HistoryEntry>, String> {
    state
        .ops()
        .await?
        .client_history(&client_id)
        .map_err(|e| e.to_string())
}

/// Per client the image running versus the target; nothing changed.
#[tauri::command]
async fn fleet_update_preview(
    state: State<'_, Console>,
    plan: UpdatePlan,
) -> Result<UpdatePreview, String> {
    state
        .ops()
        .await?
        .update_preview(&plan)
        .await
        .map_err(|e| e.to_string())
}

/// Updates the fleet's images; progress goes out as `fleet-update-progress` events
/// (`UpdateProgress`).
#[tauri::command]
async fn fleet_update<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    plan: UpdatePlan,
) -> Result<UpdateSummary, String> {
    let ops = state.ops().await?;
    let progress = move |p: UpdateProgress| {
        let _ = app.emit("fleet-update-progress", &p);
    };
    ops.update_images(&plan, &progress)
        .await
        .map_err(|e| e.to_string())
}

/// Called once by the UI after the fleet table first painted its rows; returns the
/// milliseconds since the process started (see [`since_process_start`]).
#[tauri::command]
fn first_paint(rows: usize) -> u64 {
    let ms = since_process_start().as_millis() as u64;
    tracing::info!(rows, ms, "first fleet view painted {ms} ms after start");
    mark(|| format!("console_first_paint rows={rows} ms={ms}"));
    ms
}

/// With `MAI_CONSOLE_MARKS` set, prints one line on stdout per benchmark mark
/// (`console_mark`, `console_first_paint`, `console_refresh`), read by
/// deploy/bench/console-footprint.sh. The line is only made (and `/proc` only read) when
/// marks are on: refreshes run every 30 s.
fn mark(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MAI_CONSOLE_MARKS").is_some()) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line());
        let _ = out.flush();
    }
}

/// A start-up mark: `console_mark {step} ms=…` since the process started.
fn mark_step(step: &str) {
    mark(|| {
        format!(
            "console_mark {step} ms={}",
            since_process_start().as_millis()
        )
    });
}

/// Time since the kernel started this process (`/proc/self/stat` start time against
/// `/proc/uptime`, both since boot, in 10 ms steps), so dynamic linking and everything
/// before `main` count; since [`run`] began where `/proc` cannot tell.
pub fn since_process_start() -> std::time::Duration {
    fn from_proc() -> Option<std::time::Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Field 22 (starttime, clock ticks since boot); the fields after the command
        // name's closing parenthesis start at field 3.
        let ticks: u64 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(22 - 3)?
            .parse()
            .ok()?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        // "12345.67 ...": seconds since boot with two decimals.
        let (secs, centis) = uptime.split_whitespace().next()?.split_once('.')?;
        let up_ms = secs.parse::<u64>().ok()? * 1000 + centis.parse::<u64>().ok()? * 10;
        // USER_HZ, the unit of /proc's tick counts, is 100 on Linux.
        up_ms
            .checked_sub(ticks * 10)
            .map(std::time::Duration::from_millis)
    }
    from_proc().unwrap_or_else(|| STARTED.get().map(|s| s.elapsed()).unwrap_or_default())
}

/// The month report as the Billing view shows it (mai-billing's `MonthReport`, converted
/// by its one `From` into the IPC shape).
#[tauri::command]
async fn billing_report(state: State<'_, Console>, month: String) -> Result<BillingReport, String> {
    let r = state
        .ops()
        .await?
        .billing_report(&month)
        .await
        .map_err(|e| e.to_string())?;
    Ok(BillingReport::from(&r))
}

/// Exports a month's invoices; progress goes out as `billing-export-progress` events
/// (`ExportProgress`), like sync-all's `sync-progress` (`SyncProgress`).
#[tauri::command]
async fn billing_export<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    request: InvoiceExportRequest,
) -> Result<InvoiceExportResult, String> {
    let ops = state.ops().await?;
    ops.billing_export(&request, &mut |p| {
        let _ = app.emit("billing-export-progress", &p);
    })
    .await
    .map_err(|e| e.to_string())
}

/// The month's invoices in KSeF, one row per client (`KsefInvoiceRow`).
#[tauri::command]
async fn ksef_status(
    state: State<'_, Console>,
    month: String,
) -> Result<Vec<KsefInvoiceRow>, String> {
    state
        .ops()
        .await?
        .ksef_status(&month)
        .await
        .map_err(|e| e.to_string())
}

/// Sends the month's invoices (one client's, or all) to KSeF; progress goes out as
/// `ksef-send-progress` events (`KsefSendProgress`), like the export's.
#[tauri::command]
async fn ksef_send<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
    month: String,
    client_id: Option<String>,
) -> Result<KsefSendSummary, String> {
    let ops = state.ops().await?;
    ops.ksef_send(&month, client_id.as_deref(), &mut |p| {
        let _ = app.emit("ksef-send-progress", &p);
    })
    .await
    .map_err(|e| e.to_string())
}

/// Saves an invoice's KSeF receipt (UPO) into the month's invoice folder (or `out_dir`,
/// the Billing view's folder field); returns the file's path.
#[tauri::command]
async fn ksef_upo(
    state: State<'_, Console>,
    month: String,
    ksef_number: String,
    out_dir: Option<PathBuf>,
) -> Result<PathBuf, String> {
    state
        .ops()
        .await?
        .ksef_upo(
            &month,
            &ksef_number,
            out_dir.filter(|d| !d.as_os_str().is_empty()),
        )
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn ksef_token_status(state: State<'_, Console>) -> Result<KsefTokenStatus, String> {
    state
        .ops()
        .await?
        .ksef_token_status()
        .await
        .map_err(|e| e.to_string())
}

/// The KSeF token crosses IPC once, goes to the keychain, and only its mask comes back.
#[tauri::command]
async fn ksef_token_set(
    state: State<'_, Console>,
    token: String,
) -> Result<KsefTokenStatus, String> {
    state
        .ops()
        .await?
        .ksef_token_set(token)
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn ksef_token_delete(state: State<'_, Console>) -> Result<KsefTokenStatus, String> {
    state
        .ops()
        .await?
        .ksef_token_delete()
        .await
        .map_err(|e| e.to_string())
}

#[tauri::command]
async fn check_update<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, Console>,
) -> Result<UpdateCheck, String> {
    state.opened().await;
    let cfg = state.current().and_then(|o| o.fleet.updater.clone());
    let mut b = app.updater_builder();
    if let Some(u) = cfg {
        let url = u.endpoint.parse().map_err(|e| {
            format!(
                "updater endpoint {:?} in the fleet file is not a URL: {e}",
                u.endpoint
            )
        })?;
        b = b
            .endpoints(vec![url])
            .map_err(|e| e.to_string())?
            .pubkey(u.pubkey);
    }
    Ok(update::check(b).await)
}

/// Adds every command and plugin to `b`; generic so tests can pass tauri's mock builder.
pub fn builder<R: Runtime>(b: tauri::Builder<R>, console: Console) -> tauri::Builder<R> {
    b.plugin(tauri_plugin_updater::Builder::new().build())
        .manage(console)
        .invoke_handler(tauri::generate_handler![
            app_info,
            fleet_status,
            fleet_overview,
            usage_export,
            client_dashboard,
            sync_clients,
            restart_container,
            logs_start,
            logs_stop,
            keys_list,
            key_set,
            key_delete,
            key_rotate,
            privacy_erase,
            privacy_export,
            check_update,
            billing_report,
            billing_export,
            ksef_status,
            ksef_send,
            ksef_upo,
            ksef_token_status,
            ksef_token_set,
            ksef_token_delete,
            first_paint,
            lifecycle::fleet_hosts,
            lifecycle::onboard_validate,
            lifecycle::onboard_client,
            lifecycle::offboard_check,
            lifecycle::offboard_client,
            client_facts,
            client_change_check,
            client_change,
            client_history,
            fleet_update_preview,
            fleet_update,
            alerts::alerts_list,
            alerts::alert_ack,
            alerts::alert_mute,
            backup::backup_list,
            backup::backup_now,
            backup::backup_restore,
            backup::backup_rebuild,
        ])
}

pub fn run() {
    STARTED.get_or_init(std::time::Instant::now);
    mark_step("main");
    // WebKit derives navigator.language from LANG; "C"/"POSIX" is not a valid BCP 47 tag
    // and makes Intl.NumberFormat throw (uPlot calls it at load), leaving a blank window.
    // Set before any thread starts.
    if std::env::var("LANG").map_or(true, |l| {
        l.is_empty() || l == "C" || l == "POSIX" || l.starts_with("C.")
    }) {
        std::env::set_var("LANG", "en_US.UTF-8");
    }
    // The web process's memory (issue 14, deploy/bench/console-footprint.sh); each is
    // kept as the operator's environment sets it. Accelerated compositing renders the page
    // through OpenGL; without a GPU (Xvfb, VMs, remote desktops) that is Mesa's llvmpipe,
    // ~110 MiB PSS of the web process, and a table-and-charts UI paints as fast without
    // it (`WEBKIT_DISABLE_COMPOSITING_MODE=0` brings it back). JavaScriptCore's JIT keeps
    // executable memory and compiled code (~15 MiB PSS); the UI's scripts are small
    // (`JSC_useJIT=1` brings it back). Both are inherited by WebKit's processes, so they
    // are set before any thread starts.
    for (var, value) in [
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ("JSC_useJIT", "0"),
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAI_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let console = Console::from_env();
    if let Some(e) = console
        .load_error()
        .filter(|_| console.fleet_path.is_none())
    {
        tracing::error!("{e}");
    }
    builder(tauri::Builder::<tauri::Wry>::new(), console)
        // Desktop notifications of raised alerts (only in the real app: the command
        // tests' mock runtime has no notification server).
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            mark_step("window_created");
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.set_title("mAI Fleet Console");
            }
            alerts::start(app.handle().clone());
            tauri::async_runtime::spawn(backup::schedule(app.handle().clone()));
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the console window could not start (is a display available?)");
}
