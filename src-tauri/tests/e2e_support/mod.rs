//! What the WebDriver tests (`e2e*.rs`, run by tests/run-e2e.sh) share: their gate, the
//! variables run-e2e.sh sets, the simulator's truth, the WebDriver session with the real
//! console, polling and screenshots. One copy, so the tests agree on how they read
//! the fleet and the UI's money format.
#![allow(dead_code)] // each test target uses its own subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A variable tests/run-e2e.sh sets.
pub fn env(k: &str) -> String {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k} is not set; run this test through tests/run-e2e.sh"))
}

/// A copy of the demo fleet file (`E2E_FLEET`) named `name` beside it, with its own
/// console data under `data_dir_name` (emptied first: a fresh cache, alert history and
/// audit log) and `sections` (TOML) before the rest. Returns the copy's path and its
/// data dir.
pub fn fleet_copy(name: &str, data_dir_name: &str, sections: &str) -> (PathBuf, PathBuf) {
    let fleet_in = PathBuf::from(env("E2E_FLEET"));
    let data = fleet_in.parent().unwrap().join(data_dir_name);
    let _ = std::fs::remove_dir_all(&data);
    let text = std::fs::read_to_string(&fleet_in)
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("data_dir") {
                format!("data_dir = {:?}", data.to_string_lossy())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let fleet = fleet_in.with_file_name(name);
    std::fs::write(&fleet, format!("{sections}\n{text}\n")).unwrap();
    (fleet, data)
}

/// The gate: the test runs when tests/run-e2e.sh has set up what it needs, and otherwise
/// says so on the terminal (past the test harness's capture).
pub fn enabled(test: &str) -> bool {
    if std::env::var_os("E2E_STATE").is_some() {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs the demo fleet, Xvfb and tauri-driver; \
         run it through tests/run-e2e.sh (./test.sh does)"
    );
    false
}

/// The demo fleet's state file (tests/run-e2e.sh: E2E_STATE).
pub fn state() -> Value {
    serde_json::from_str(&std::fs::read_to_string(env("E2E_STATE")).unwrap()).unwrap()
}

/// The UI's rule (ui/src/lib/format.ts): under one cent 6 decimals, else 2; separators;
/// half-up, the one rounding rule (`mai_core::money::round_half_up`).
pub fn usd(d: Decimal) -> String {
    let dp = if !d.is_zero() && d.abs() < Decimal::new(1, 2) {
        6
    } else {
        2
    };
    let r = mai_core::money::round_half_up(d, dp);
    let s = format!("{r:.prec$}", prec = dp as usize);
    let (int, frac) = s.split_once('.').unwrap();
    let mut g = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            g.push(',');
        }
        g.push(ch);
    }
    format!("${g}.{frac}")
}

/// Polls `f` until it gives a value, or fails after `timeout` naming `what`.
pub async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll(timeout, f)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// `f`'s first value, asked every 200 ms; `None` once `timeout` has passed without one.
async fn poll<F, Fut, T>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval, not synchronisation
    }
}

/// What the OpenRouter simulator charged, per key hash (SHA-256 hex of the key): the
/// ground truth the console's figures are checked against.
pub async fn raw_cost_by_key_hash(openrouter: &str) -> HashMap<String, Decimal> {
    truth_by_key_hash(openrouter)
        .await
        .into_iter()
        .map(|(k, (_, cost))| (k, cost))
        .collect()
}

/// The SHA-256 hex of a key, as the simulator's truth names keys.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Per key hash: how many generations the simulator served and what it charged.
pub async fn truth_by_key_hash(openrouter: &str) -> HashMap<String, (u64, Decimal)> {
    let truth: Value = reqwest::get(format!("{openrouter}/__sim/truth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut raw_by_hash: HashMap<String, (u64, Decimal)> = HashMap::new();
    for g in truth["generations"].as_array().unwrap() {
        let cost = Decimal::from_str(
            &g["cost"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| g["cost"].to_string()),
        )
        .unwrap();
        let e = raw_by_hash
            .entry(g["key_hash"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 += cost;
    }
    raw_by_hash
}

/// A WebDriver session with the real console on `fleet`, through tauri-driver
/// (tests/run-e2e.sh starts it on 4444; E2E_DRIVER_PORT names another).
pub async fn open_console(fleet: &str) -> Client {
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "tauri:options": {"application": env("E2E_APP"), "args": ["--fleet", fleet]}
    }))
    .unwrap();
    // Both rustls backends are in the dependency graph: pick one for this process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let driver = std::env::var("E2E_DRIVER_PORT").unwrap_or_else(|_| "4444".into());
    ClientBuilder::rustls()
        .expect("TLS roots for the WebDriver client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver}"))
        .await
        .unwrap_or_else(|e| panic!("tauri-driver on {driver}: {e}"))
}

/// A screenshot into `out/<name>.png`. A screenshot waits for a paint; a stalled one
/// only warns, never hangs the test.
pub async fn shot(c: &Client, out: &Path, name: &str) {
    match tokio::time::timeout(Duration::from_secs(15), c.screenshot()).await {
        Ok(Ok(png)) => std::fs::write(out.join(format!("{name}.png")), png).unwrap(),
        Ok(Err(e)) => eprintln!("e2e: WARNING: screenshot {name} failed: {e}"),
        Err(_) => eprintln!("e2e: WARNING: screenshot {name} timed out"),
    }
}

/// Polls `f` until it gives a value, failing after `timeout` with the page's text (what
/// the window showed instead).
pub async fn wait_on_page<F, Fut, T>(c: &Client, what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match poll(timeout, f).await {
        Some(v) => v,
        None => {
            let body = text_of(c, "body").await.unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for {what}; page text:\n{body}");
        }
    }
}

/// The text of the first element matching `sel`, `None` when there is none.
pub async fn text_of(c: &Client, sel: &str) -> Option<String> {
    match c.find(fantoccini::Locator::Css(sel)).await {
        Ok(e) => e.text().await.ok(),
        Err(_) => None,
    }
}

/// Resizes the window and waits until the page reports the new width and a frame was
/// drawn after it (a window manager may refuse a size: then it warns and goes on).
pub async fn window_size(c: &Client, width: u32, height: u32) {
    c.set_window_size(width, height).await.unwrap();
    let start = Instant::now();
    loop {
        let w = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 requestAnimationFrame(() => done(window.outerWidth));",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64());
        if w == Some(u64::from(width)) {
            return;
        }
        if start.elapsed() > Duration::from_secs(10) {
            eprintln!("e2e: WARNING: the window is {w:?} px wide, not {width}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
    }
}

/// Scrolls `sel`'s bottom to the window's bottom and waits until it stays there for a
/// frame (a view re-rendering meanwhile, e.g. a chart rebuilt, can reset the scroll).
pub async fn scroll_into_view(c: &Client, sel: &str) {
    let js = format!(
        "const done = arguments[arguments.length - 1]; \
         const e = document.querySelector({sel:?}); \
         if (!e) {{ done(false); return; }} \
         e.scrollIntoView({{block: 'end'}}); \
         requestAnimationFrame(() => requestAnimationFrame(() => {{ \
           const r = e.getBoundingClientRect(); \
           done(r.bottom > 0 && r.bottom <= window.innerHeight + 1); }}));"
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if c.execute_async(&js, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
    }
    eprintln!("e2e: WARNING: {sel} did not stay in view");
}

/// Screenshots with `sel` scrolled into view at 1280x800 (`<name>.png`) and in a narrow
/// window, 700x800 (`<name>-narrow.png`); the window is 1280x800 again afterwards.
pub async fn shots_wide_and_narrow(c: &Client, out: &Path, name: &str, sel: &str) {
    for (w, suffix) in [(1280, ""), (700, "-narrow")] {
        window_size(c, w, 800).await;
        scroll_into_view(c, sel).await;
        shot(c, out, &format!("{name}{suffix}")).await;
    }
    window_size(c, 1280, 800).await;
}

/// Runs `cmd`, failing the test with its output unless it succeeds; its stdout, trimmed.
pub fn run(cmd: &mut std::process::Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The docker CLI.
pub fn docker(args: &[&str]) -> String {
    run(std::process::Command::new("docker").args(args))
}

/// The one tracker container of client `id` in this run's demo fleet: demo-fleet.sh
/// labels its containers `mai.demo=<basename of DEMO_DIR>` (the directory of
/// E2E_STATE), and other fleets may share the engine.
pub fn tracker_container(id: &str) -> String {
    let state = std::path::PathBuf::from(env("E2E_STATE"));
    let tag = state
        .parent()
        .and_then(|d| d.file_name())
        .expect("E2E_STATE is in the demo's directory")
        .to_string_lossy()
        .into_owned();
    let t = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=mai.demo={tag}"),
        "--filter",
        &format!("label=mai.client={id}"),
        "--filter",
        "label=mai.role=tracker",
    ]);
    assert!(
        !t.is_empty() && !t.contains('\n'),
        "one tracker container of {id} in the demo fleet {tag}: {t:?}"
    );
    t
}
