//! Shared test harness: a real simulator and a real tracker in-process.
#![allow(dead_code)]

use mai_core::ledger::Ledger;
use mai_sim::openrouter::{OpenRouterSim, SimConfig, SimHandle};
use mai_tracker::config::Config;
use mai_tracker::Tracker;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000a1";
pub const PROXY: &str = "proxy-token-0123456789";
pub const READ: &str = "read-token-0123456789";
pub const ADMIN: &str = "admin-token-0123456789";
pub const HOOK: &str = "webhook-secret-0123456789";
/// The OpenRouter name of [`KEY`] the tracker is told (`OPENROUTER_API_KEY_NAME`).
pub const KEY_NAME: &str = "mai-acme-test";

pub struct Env {
    pub sim: SimHandle,
    pub tracker: Option<Tracker>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub base: String,
}

pub fn env_map(sim_base: &str, db: &std::path::Path, org: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim_base.to_owned()),
        ("MAI_ORG_ID", org.to_owned()),
        ("MAI_ORG_NAME", "ACME Sp. z o.o.".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("MAI_TRACKER_DB", db.display().to_string()),
        ("MAI_TRACKER_PROXY_TOKEN", PROXY.to_owned()),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("MAI_WEBHOOK_SECRET", HOOK.to_owned()),
        ("OPENROUTER_API_KEY_NAME", KEY_NAME.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
        ("MAI_TRACKER_MAX_BODY_BYTES", "65536".to_owned()),
        ("MAI_TRACKER_DRAIN_SECONDS", "5".to_owned()),
    ])
}

pub async fn start(sim_cfg: SimConfig) -> Env {
    let sim = OpenRouterSim::spawn(sim_cfg).await.expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tracker.sqlite");
    let m = env_map(&sim.base_url(), &db, "acme");
    let cfg = Config::from_lookup(|k| m.get(k).cloned()).expect("config");
    let tracker = mai_tracker::start(cfg).await.expect("tracker");
    let base = tracker.base_url();
    Env {
        sim,
        tracker: Some(tracker),
        dir,
        http: reqwest::Client::new(),
        base,
    }
}

/// Like [`start`], with the simulator over HTTPS (ALPN h2) capped at `h2_max_streams`
/// streams per connection, and the tracker trusting its CA only when `trust_ca`.
pub async fn start_tls(
    sim_cfg: SimConfig,
    h2_max_streams: u32,
    per_lane: usize,
    trust_ca: bool,
) -> Env {
    let sim = OpenRouterSim::spawn_tls(sim_cfg, mai_sim::openrouter::TlsOptions { h2_max_streams })
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tracker.sqlite");
    let mut m = env_map(&sim.base_url(), &db, "acme");
    if trust_ca {
        let ca = dir.path().join("sim-ca.pem");
        std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
        m.insert("MAI_UPSTREAM_CA_CERT", ca.display().to_string());
    }
    m.insert("MAI_UPSTREAM_STREAMS_PER_CONNECTION", per_lane.to_string());
    let cfg = Config::from_lookup(|k| m.get(k).cloned()).expect("config");
    let tracker = mai_tracker::start(cfg).await.expect("tracker");
    let base = tracker.base_url();
    Env {
        sim,
        tracker: Some(tracker),
        dir,
        http: reqwest::Client::new(),
        base,
    }
}

/// A tracker on an existing simulator and ledger directory, with extra settings (or
/// settings removed, with an empty value): what a restart with a changed environment is.
pub async fn start_tracker(
    sim_base: &str,
    dir: &std::path::Path,
    extra: &[(&'static str, &str)],
) -> Tracker {
    let mut m = env_map(sim_base, &dir.join("tracker.sqlite"), "acme");
    for (k, v) in extra {
        m.insert(k, (*v).to_owned());
    }
    let cfg = Config::from_lookup(|k| m.get(k).cloned()).expect("config");
    mai_tracker::start(cfg).await.expect("tracker")
}

impl Env {
    /// Stops the tracker (draining and flushing the ledger) and starts a new one on the
    /// same ledger with `extra` settings.
    pub async fn restart(&mut self, extra: &[(&'static str, &str)]) {
        self.tracker.take().unwrap().shutdown().await.unwrap();
        let t = start_tracker(&self.sim.base_url(), self.dir.path(), extra).await;
        self.base = t.base_url();
        self.tracker = Some(t);
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("tracker.sqlite")
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.db()).unwrap()
    }

    pub async fn flush(&self) {
        self.tracker
            .as_ref()
            .unwrap()
            .state
            .writer
            .flush()
            .await
            .unwrap();
    }

    pub fn chat(&self, body: serde_json::Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(PROXY)
            .json(&body)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(token)
    }

    pub async fn sync(&self) -> serde_json::Value {
        self.http
            .post(format!("{}/api/v1/sync", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Polls `f` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn body(stream: bool, user: Option<&str>) -> serde_json::Value {
    let mut b = serde_json::json!({
        "model": "openai/gpt-4o-mini",
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello to the accounting department."}],
    });
    if let Some(u) = user {
        b["user"] = serde_json::Value::String(u.to_owned());
    }
    b
}
