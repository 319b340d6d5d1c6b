//! mai-tracker: the per-client metering proxy daemon (issue 4).
//!
//! The chat app talks to this daemon as if it were OpenAI; the daemon forwards to
//! OpenRouter with the client's key and meters every generation exactly once into the
//! client's ledger. Hot path: [`proxy`] (forward, watch, hand the record to [`writer`]).
//! Background: [`recon`] (confirm provisional records, measure drift), stopped with the
//! rest through [`shutdown`]. Read side: [`api`] (docs/tracker-api.md).

pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod endpoint;
pub mod handover;
pub mod identity;
pub mod journal;
pub mod key_history;
pub mod limits;
pub mod metrics;
pub mod otlp;
pub mod proxy;
pub mod recon;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod state;
pub mod terms;
pub mod tls;
pub mod upstream;
mod utc_sums;
pub mod writer;

use anyhow::Context;
use auth::Role;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use axum::Router;
use config::Config;
use mai_core::ledger::Ledger;
use shutdown::{Shutdown, Trigger};
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;

/// The route table. Each group carries its bearer-token check as a route layer
/// ([`limits::require_role`]), so a request is authenticated from its headers before any
/// handler reads its body; the endpoints that start work upstream are rate-limited too.
pub fn router(st: Arc<AppState>) -> Router {
    use axum::middleware::from_fn_with_state;
    use limits::{admin_rate_limit, require_role};
    let limit = st.cfg.limits.max_body_bytes;
    let role = |r: Role| from_fn_with_state((st.clone(), r), require_role);
    let proxy = Router::new()
        .route("/v1/{*rest}", any(proxy::handle))
        .route("/api/v1/chat/completions", post(proxy::handle))
        .route("/api/v1/completions", post(proxy::handle))
        .route("/api/v1/responses", post(proxy::handle))
        .route("/api/v1/messages", post(proxy::handle))
        .route("/api/v1/embeddings", post(proxy::handle))
        .route_layer(role(Role::Proxy));
    let read = Router::new()
        .route("/metrics", get(api::metrics))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/usage/today", get(api::today))
        .route("/api/v1/usage/daily", get(api::daily))
        .route("/api/v1/usage/by-user", get(api::by_user))
        .route("/api/v1/usage/by-model", get(api::by_model))
        .route("/api/v1/usage/by-task", get(api::by_task))
        .route("/api/v1/usage/by-group", get(api::by_group))
        .route("/api/v1/usage/by-chat", get(api::by_chat))
        .route("/api/v1/usage/month", get(api::month))
        .route("/api/v1/events", get(api::events))
        .route(
            "/api/v1/usage-tracking/usage/real-time/{client_org_id}",
            get(api::seed_real_time),
        )
        .route_layer(role(Role::Read));
    // Work upstream on demand: the rate limit runs after the token check.
    let admin_work = Router::new()
        .route("/api/v1/sync", post(api::sync))
        .route("/api/v1/admin/openrouter-key", put(api::put_key))
        // One metered request upstream (a health check of the whole chain).
        .route("/api/v1/admin/probe", post(api::probe))
        // Not upstream, but it rebuilds the ledger file (VACUUM): paced as well.
        .route("/api/v1/admin/privacy/erase", post(api::privacy_erase))
        .route(
            "/api/v1/usage-tracking/sync/openrouter-usage",
            post(api::seed_sync),
        )
        .route_layer(from_fn_with_state(st.clone(), admin_rate_limit))
        .route_layer(role(Role::Admin));
    let admin = Router::new()
        .route("/api/v1/admin/terms", put(api::put_terms))
        .route("/api/v1/admin/backup", get(backup::backup))
        .route("/api/v1/admin/restore", post(backup::restore))
        .route("/api/v1/admin/privacy/export", get(api::privacy_export))
        .route(
            "/api/v1/usage-tracking/usage/manual-record",
            post(api::seed_manual),
        )
        .route_layer(role(Role::Admin));
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        // Authenticated by its own shared secret, not a bearer token.
        .route(
            "/api/v1/usage-tracking/webhook/openrouter-usage",
            post(api::seed_webhook),
        )
        .merge(proxy)
        .merge(read)
        .merge(admin_work)
        .merge(admin)
        .fallback(|uri: axum::http::Uri| async move {
            api::error_response(
                axum::http::StatusCode::NOT_FOUND,
                &format!("no such endpoint {}; see docs/tracker-api.md", uri.path()),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(st)
}

/// How long shutdown waits for a failing ledger to take the queued events.
pub const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A running tracker (used by the binary and by in-process tests).
pub struct Tracker {
    pub addr: SocketAddr,
    /// SHA-256 of the served certificate (`AB:CD:…`) when the listener is HTTPS.
    pub tls_fingerprint: Option<String>,
    pub state: Arc<AppState>,
    trigger: Trigger,
    server: tokio::task::JoinHandle<()>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
}

impl Tracker {
    pub fn base_url(&self) -> String {
        let scheme = if self.tls_fingerprint.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight streams finish (bounded by the drain timeout),
    /// then flushes the ledger. A ledger still failing after [`FLUSH_TIMEOUT`] is an
    /// error (the binary exits non-zero); the unwritten events' ids are in the crash
    /// journal, which the next start replays.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.trigger.fire();
        let _ = (&mut self.server).await;
        match tokio::time::timeout(FLUSH_TIMEOUT, self.state.writer.flush()).await {
            Ok(r) => r.context("flushing the ledger at shutdown")?,
            Err(_) => anyhow::bail!(
                "the ledger could not be written within {}s at shutdown; {} events not written \
                 (their generation ids are in the crash journal and are replayed at the next start)",
                FLUSH_TIMEOUT.as_secs(),
                self.state.writer.pending()
            ),
        }
        tracing::info!("ledger flushed; tracker stopped");
        let _ = self.writer_thread.take();
        Ok(())
    }

    pub fn shutdown_signal(&self) -> Shutdown {
        self.trigger_clone()
    }

    fn trigger_clone(&self) -> Shutdown {
        // Shutdown handles are derived from the trigger's channel.
        self.trigger.subscribe()
    }
}

/// Start-up's choice between `OPENROUTER_API_KEY` and the key the console handed over
/// ([`handover`]): the hand-over wins over a key it replaced, so a restart never goes
/// back to a key the console has disabled since. Logs which one, by label only.
fn choose_key(cfg: &mut Config, keys: &key_history::KeyHistory) {
    let stored = match handover::load(&cfg.db_path) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, env_key = %cfg.openrouter_api_key.label(), "the handed-over key is unreadable; using OPENROUTER_API_KEY (if that key was disabled by a rotation, rotate again from the console)");
            None
        }
    };
    let known: Vec<String> = keys.0.iter().map(|k| k.hash.clone()).collect();
    match handover::choose(&cfg.openrouter_api_key, stored.as_ref(), &known) {
        handover::Choice::Environment => {
            tracing::info!(key = %cfg.openrouter_api_key.label(), "OpenRouter key: OPENROUTER_API_KEY");
        }
        handover::Choice::HandedOver => {
            let s = stored.expect("chosen from a stored key");
            tracing::info!(
                key = %s.key.label(),
                handed_over_at = %s.at,
                env_key = %cfg.openrouter_api_key.label(),
                "OpenRouter key: the one the console handed over (stored next to the ledger), not OPENROUTER_API_KEY, which a rotation replaced; update the environment when convenient"
            );
            cfg.openrouter_api_key = s.key;
            // The environment's name belongs to the environment's key.
            cfg.openrouter_key_name = s.name;
        }
        handover::Choice::EnvironmentIsNewer => {
            tracing::info!(
                key = %cfg.openrouter_api_key.label(),
                "OpenRouter key: OPENROUTER_API_KEY, a key this tracker has not used before (set by the operator), replaces the one the console handed over earlier"
            );
            if let Err(e) = handover::remove(&cfg.db_path) {
                tracing::warn!(error = %e, "the obsolete handed-over key could not be removed");
            }
        }
    }
}

/// Opens the ledger, replays the crash journal, binds and serves.
pub async fn start(mut cfg: Config) -> anyhow::Result<Tracker> {
    if let Some(dir) = cfg.db_path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "creating the ledger directory {} (MAI_TRACKER_DB)",
                    dir.display()
                )
            })?;
        }
    }
    if !cfg.retired_settings.is_empty() {
        tracing::warn!(
            "ignoring {}: markup and monthly limit are now set per client in the fleet file \
             and pushed by the console (PUT /api/v1/admin/terms); remove {} from this \
             tracker's environment",
            cfg.retired_settings.join(" and "),
            if cfg.retired_settings.len() == 1 {
                "it"
            } else {
                "them"
            }
        );
    }
    let mut ledger = Ledger::open(&cfg.db_path).with_context(|| {
        format!(
            "opening the ledger {} (MAI_TRACKER_DB)",
            cfg.db_path.display()
        )
    })?;
    // A stored copy we cannot read must not stop metering: price at the default and
    // report `terms: null`, so the console pushes them again.
    let terms = match terms::load(&ledger) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "pushed commercial terms not used; pricing at the default (1.3, no limit) until the console pushes them again");
            None
        }
    };
    match &terms {
        Some(t) => tracing::info!(
            default_rate = %t.markup.default_rate,
            entries = t.markup.entries.len(),
            monthly_limit_usd = ?t.monthly_limit_usd,
            "commercial terms loaded from the ledger"
        ),
        None => tracing::info!("no commercial terms pushed yet; pricing at the default (1.3, no limit) until the console pushes them"),
    }
    ledger.set_caps(cfg.caps);
    // The key history: the key of the environment becomes the current one (a restart
    // with a new key is a hand-over the console did not make).
    let mut keys = match ledger
        .get_meta(key_history::META_KEY)
        .map_err(|e| e.to_string())
        .and_then(|s| key_history::KeyHistory::parse(s.as_deref()).map_err(|e| e.to_string()))
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "key history not used; drift after a rotation is measured on the current key only until the next hand-over");
            key_history::KeyHistory::default()
        }
    };
    choose_key(&mut cfg, &keys);
    if keys.use_key(
        &cfg.openrouter_api_key,
        cfg.openrouter_key_name.clone(),
        None,
        chrono::Utc::now(),
    ) {
        ledger
            .set_meta(key_history::META_KEY, &keys.to_stored())
            .context("storing the key history in the ledger")?;
    }
    match (&cfg.webhook_secret, keys.names().is_empty()) {
        (None, _) => tracing::info!(
            "Broadcast webhook off (MAI_WEBHOOK_SECRET not set): its endpoint answers 404"
        ),
        (Some(_), false) => tracing::info!(
            header = %cfg.webhook_secret_header,
            key_names = ?keys.names(),
            "Broadcast webhook on: spans of these OpenRouter key names are recorded"
        ),
        (Some(_), true) => tracing::warn!(
            header = %cfg.webhook_secret_header,
            "Broadcast webhook on, but this key's OpenRouter name is not known yet: no span is recorded until it is (set OPENROUTER_API_KEY_NAME, or OPENROUTER_PROVISIONING_KEY to look it up)"
        ),
    }
    let reader = Ledger::open(&cfg.db_path)?;
    let journal = journal::Journal::open(&cfg.db_path).with_context(|| {
        format!(
            "opening the crash journal next to {}",
            cfg.db_path.display()
        )
    })?;
    let (writer, writer_thread) = writer::LedgerWriter::spawn(ledger);
    let listen = cfg.listen;
    let interval = cfg.sync_interval;
    let drain = cfg.drain_timeout;
    let limits = cfg.limits.clone();
    let st = AppState::new(cfg, writer, journal, reader, terms, keys)?;
    recon::replay_journal(&st)
        .await
        .context("replaying the crash journal into the ledger")?;
    {
        // In the background: an unreachable upstream must not delay start-up.
        let st = st.clone();
        tokio::spawn(async move {
            match st.upstream.probe(&st.cfg.openrouter_base_url).await {
                Ok(Some(p)) => tracing::info!(protocol = %p, "upstream protocol (ALPN)"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not ask the upstream for its protocol; learning it from the first response")
                }
            }
        });
    }
    let tls = match &st.cfg.tls {
        Some(src) => {
            let t = tls::TlsServer::load(src).context("setting up HTTPS (MAI_TRACKER_TLS)")?;
            // Not a secret: what the operator compares with the console's pin.
            tracing::info!(
                cert = %t.cert_path.display(),
                sha256 = %t.fingerprint,
                "serving HTTPS; pin this certificate in the fleet file: tracker_cert_sha256 = \"{}\"",
                t.fingerprint
            );
            Some(t)
        }
        None => {
            if !listen.ip().is_loopback() {
                tracing::warn!(%listen, "serving plain HTTP on a non-loopback address (MAI_TRACKER_TLS=off): tokens and usage data cross the network unencrypted");
            }
            None
        }
    };
    let tls_fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
    let _ = st.tls_fingerprint.set(tls_fingerprint.clone());
    let tls_config = tls.map(|t| t.config);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (MAI_TRACKER_LISTEN)"))?;
    let addr = listener.local_addr()?;
    // The chat app's plain-HTTP listener on the client's private network, when the main
    // one serves HTTPS to the console (onboarding publishes only the main one).
    let internal = match st.cfg.internal_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding {a} (MAI_TRACKER_INTERNAL_LISTEN)"))?;
            tracing::info!(addr = %l.local_addr()?, "plain-HTTP listener for the private network");
            Some(l)
        }
        None => None,
    };
    let (trigger, shutdown) = shutdown::channel();
    // The route table is resolved once, not per connection (it is ~10 KB).
    let app = router(st.clone()).with_state(());
    let sd = shutdown.clone();
    let server = tokio::spawn(async move {
        let internal = async {
            if let Some(l) = internal {
                server::serve(l, app.clone(), sd.clone(), limits.clone(), None).await
            }
        };
        tokio::select! {
            _ = async { tokio::join!(server::serve(listener, app.clone(), sd.clone(), limits.clone(), tls_config), internal) } => {}
            _ = async { sd.wait().await; tokio::time::sleep(drain).await } => {
                tracing::warn!(drain_s = drain.as_secs(), "drain timeout: in-flight streams cut; their ids are in the crash journal and will be reconciled");
            }
        }
    });
    // Keep the crash journal small even when periodic reconciliation is off, and give
    // memory back after bursts.
    {
        let st = st.clone();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = sd.wait() => return,
                }
                if st.journal.len() > journal::ROTATE_BYTES {
                    if let Err(e) = recon::replay_journal(&st).await {
                        tracing::error!(error = %e, "crash journal rotation failed");
                    }
                }
                // After a burst, hand the freed stream buffers back to the kernel.
                if st
                    .metrics
                    .inflight
                    .load(std::sync::atomic::Ordering::Relaxed)
                    == 0
                {
                    let _ = tokio::task::spawn_blocking(mai_core::alloc::trim).await;
                }
            }
        });
    }
    if let Some(i) = interval {
        tokio::spawn(recon::run_loop(st.clone(), i, shutdown.clone()));
    } else {
        // Still learn the key state once for the status page.
        let s = st.clone();
        tokio::spawn(async move {
            let _ = recon::check_key_and_drift(&s).await;
        });
    }
    tracing::info!(%addr, org = %st.cfg.org_id, key = %st.key().label(), upstream = %st.cfg.openrouter_base_url, "mai-tracker listening");
    Ok(Tracker {
        addr,
        tls_fingerprint,
        state: st,
        trigger,
        server,
        writer_thread: Some(writer_thread),
    })
}
