//! End to end: the real console binary under Xvfb, driven over WebDriver (tauri-driver +
//! WebKitWebDriver), against real trackers (Docker containers) fed by the OpenRouter
//! simulator. Run by tests/run-e2e.sh, which starts everything this test needs and sets
//! E2E_STATE (demo state.json), E2E_FLEET, E2E_APP and E2E_OUT. Without E2E_STATE (a
//! plain `cargo test`) it says on the terminal that it was skipped and why; the Docker
//! tests (crates/mai-tracker/tests/fleet_e2e.rs) are gated the same way.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

mod e2e_support;
use e2e_support::{env, open_console, raw_cost_by_key_hash, usd, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn console_against_real_trackers() {
    if !e2e_support::enabled("console_against_real_trackers") {
        return;
    }
    let state = e2e_support::state();
    let out = PathBuf::from(env("E2E_OUT"));
    std::fs::create_dir_all(&out).unwrap();

    // Ground truth: what the OpenRouter simulator charged each client's key.
    let raw_by_hash = raw_cost_by_key_hash(state["openrouter"].as_str().unwrap()).await;
    let clients = state["clients"].as_array().unwrap();

    let c = open_console(&env("E2E_FLEET")).await;
    let shot = |name: &'static str| {
        let c = c.clone();
        let out = out.clone();
        async move { e2e_support::shot(&c, &out, name).await }
    };
    let text_of = |sel: String| {
        let c = c.clone();
        async move {
            match c.find(Locator::Css(&sel)).await {
                Ok(e) => e.text().await.ok(),
                Err(_) => None,
            }
        }
    };

    // 1. The fleet table shows every client with today's cost = simulator truth x markup.
    for cl in clients {
        let id = cl["id"].as_str().unwrap();
        let key = cl["key"].as_str().unwrap();
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        let raw = raw_by_hash.get(&hash).copied().unwrap_or_default();
        assert!(
            !raw.is_zero(),
            "the simulator recorded no spend for {id}; did the traffic run?"
        );
        let expected = usd(raw * Decimal::from_str(cl["markup"].as_str().unwrap()).unwrap());
        let sel = format!("[data-testid='row-{id}'] [data-testid='today-cost']");
        let start = Instant::now();
        let shown = loop {
            // The table auto-refreshes every 30 s; click Refresh to be quicker.
            if let Ok(b) = c.find(Locator::Css("[data-testid='refresh']")).await {
                let _ = b.click().await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await; // polling interval
            let t = text_of(sel.clone()).await;
            if t.as_deref() == Some(expected.as_str()) {
                break t.unwrap();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let body = text_of("body".into()).await.unwrap_or_default();
                eprintln!("e2e: page text at failure:\n{body}");
                shot("FAILED-fleet").await;
                panic!("today's cost of {id}: expected {expected}, the cell shows {t:?}; page text:\n{body}");
            }
        };
        println!("e2e: {id}: today {shown} (truth {raw} x {})", cl["markup"]);
    }
    shot("01-fleet").await;

    // 2. Sync all: progress, then one result per client.
    c.find(Locator::Css("[data-testid='sync-all']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let msg = wait_for("sync to finish", Duration::from_secs(120), || {
        text_of("[data-testid='message']".into())
    })
    .await;
    let msg = if msg.contains("Sync finished") {
        msg
    } else {
        wait_for(
            "sync finished message",
            Duration::from_secs(120),
            || async {
                text_of("[data-testid='message']".into())
                    .await
                    .filter(|m| m.contains("Sync finished"))
            },
        )
        .await
    };
    assert_eq!(msg, format!("Sync finished: {} ok", clients.len()));
    shot("02-fleet-after-sync").await;

    // 3. Restart the first client's chat container: the state shows a fresh uptime.
    let first = clients[0]["id"].as_str().unwrap().to_string();
    c.find(Locator::Css(&format!(
        "[data-testid='row-{first}'] [data-testid='restart']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let m = wait_for("restart message", Duration::from_secs(60), || async {
        text_of("[data-testid='message']".into())
            .await
            .filter(|m| m.contains("restarted"))
    })
    .await;
    assert!(m.contains("restarted: running"), "{m}");
    let st = wait_for(
        "fresh uptime after restart",
        Duration::from_secs(30),
        || async {
            text_of(format!(
                "[data-testid='row-{first}'] [data-testid='container-state']"
            ))
            .await
            .filter(|t| t.contains("running") && regex_like_seconds(t))
        },
    )
    .await;
    println!("e2e: after restart: {st}");
    shot("03-fleet-after-restart").await;

    // 4. Keys: set a key; only the mask is shown afterwards.
    c.find(Locator::Css("[data-testid='nav-keys']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let key = "sk-or-v1-e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e07a1c";
    let input = wait_for("key form", Duration::from_secs(10), || async {
        c.find(Locator::Css("[data-testid='key-secret']"))
            .await
            .ok()
    })
    .await;
    tokio::time::timeout(Duration::from_secs(20), input.send_keys(key))
        .await
        .expect("typing the key timed out")
        .unwrap();
    c.find(Locator::Css("[data-testid='key-save']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let msg = wait_for("key stored message", Duration::from_secs(20), || async {
        match text_of("[data-testid='keys-message']".into()).await {
            Some(m) => Some(m),
            None => text_of("[data-testid='keys-error']".into())
                .await
                .map(|e| format!("ERROR: {e}")),
        }
    })
    .await;
    assert!(msg.contains("sk-or-v1-…7a1c"), "{msg}");
    // (WebDriver's page-source command stalled on WebKitWebDriver; read the DOM instead.)
    let src = tokio::time::timeout(
        Duration::from_secs(20),
        c.execute("return document.documentElement.outerHTML + document.querySelector(\"[data-testid='key-secret']\").value", vec![]),
    )
    .await
    .expect("reading the DOM timed out")
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_string();
    assert!(
        !src.contains("e2e0e2e0e2e0"),
        "the plaintext key is still in the page"
    );
    let row = text_of(format!("[data-testid='key-{first}-open-router']"))
        .await
        .unwrap();
    assert!(row.contains("sk-or-v1-…7a1c"), "{row}");
    shot("04-keys").await;

    // 5. Settings.
    c.find(Locator::Css("[data-testid='nav-settings']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot("05-settings").await;
    // 5b. Billing: the demo fleet's [billing] section, the month from the console cache,
    // and a CSV export from the window (PDF/KSeF need a closed month).
    c.find(Locator::Css("[data-testid='nav-billing']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let table = wait_for("billing table", Duration::from_secs(30), || {
        text_of("[data-testid='billing-table']".into())
    })
    .await;
    println!("e2e: billing table: {}", table.replace('\n', " | "));
    for cl in clients {
        let id = cl["id"].as_str().unwrap();
        assert!(
            table.contains(id),
            "{id} missing from the billing table: {table}"
        );
    }
    assert!(!table.contains("missing data"), "{table}");
    let csv_dir = out.join("invoices");
    let _ = std::fs::remove_dir_all(&csv_dir);
    c.find(Locator::Css("[data-testid='export-format']"))
        .await
        .unwrap()
        .select_by_value("csv")
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid='export-dir']"))
        .await
        .unwrap()
        .send_keys(csv_dir.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid='export-run']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let summary = wait_for("billing export", Duration::from_secs(30), || {
        text_of("[data-testid='export-summary']".into())
    })
    .await;
    println!("e2e: billing export: {summary}");
    let written: Vec<_> = std::fs::read_dir(&csv_dir).unwrap().flatten().collect();
    assert_eq!(written.len(), 1, "{summary}");
    let csv = std::fs::read_to_string(written[0].path()).unwrap();
    for cl in clients {
        assert!(csv.contains(cl["id"].as_str().unwrap()), "{csv}");
    }
    shot("05b-billing").await;
    // 6. Client dashboard (last: navigating away from the uPlot view stalled WebKitWebDriver here).
    c.find(Locator::Css("[data-testid='nav-fleet']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("fleet table", Duration::from_secs(20), || {
        text_of(format!("[data-testid='row-{first}']"))
    })
    .await;
    c.find(Locator::Css(&format!("[data-testid='row-{first}'] button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let today = wait_for("dashboard cards", Duration::from_secs(30), || {
        text_of("[data-testid='card-today-cost']".into())
    })
    .await;
    println!("e2e: dashboard today card: {today}");
    assert!(today.starts_with('$'), "{today}");
    wait_for("trend chart", Duration::from_secs(10), || async {
        c.find(Locator::Css("[data-testid='trend-chart'] canvas"))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    shot("06-client-dashboard").await;

    c.close().await.unwrap();
}

/// "up 3s" / "up 59s" (a restart resets the uptime below a minute).
fn regex_like_seconds(t: &str) -> bool {
    t.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| {
            w[0] == "up" && w[1].ends_with('s') && w[1].trim_end_matches('s').parse::<u32>().is_ok()
        })
}
