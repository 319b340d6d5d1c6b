//! End to end, the fleet overview (issue 14): the real console binary under Xvfb driven
//! over WebDriver against the demo fleet's real trackers, like `e2e.rs` (run by
//! tests/run-e2e.sh after it, with the same E2E_* variables). Sorting the fleet table by
//! today's cost orders the rows by the simulator's truth × markup, both ways; search,
//! host and state filters leave the rows they should; the totals strip sums the clients.
//! Without E2E_STATE it says on the terminal that it was skipped and why.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn env(k: &str) -> String {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k} is not set; run this test through tests/run-e2e.sh"))
}

/// The UI's rule (ui/src/lib/format.ts): under one cent 6 decimals, else 2; separators.
fn usd(d: Decimal) -> String {
    let dp = if !d.is_zero() && d.abs() < Decimal::new(1, 2) {
        6
    } else {
        2
    };
    let r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
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
async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval, not synchronisation
    }
}

fn e2e_enabled() -> bool {
    if std::env::var_os("E2E_STATE").is_some() {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED fleet_overview_sort_and_filter: needs the demo fleet, Xvfb and tauri-driver; \
         run it through tests/run-e2e.sh (./test.sh does)"
    );
    false
}

/// The client ids of the table's rows, top to bottom.
async fn row_ids(c: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for e in c
        .find_all(Locator::Css("[data-testid^='row-']"))
        .await
        .unwrap()
    {
        if let Ok(Some(t)) = e.attr("data-testid").await {
            ids.push(t.trim_start_matches("row-").to_string());
        }
    }
    ids
}

async fn click(c: &Client, sel: &str) {
    c.find(Locator::Css(sel))
        .await
        .unwrap_or_else(|e| panic!("{sel}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn select(c: &Client, sel: &str, value: &str) {
    c.find(Locator::Css(sel))
        .await
        .unwrap_or_else(|e| panic!("{sel}: {e}"))
        .select_by_value(value)
        .await
        .unwrap();
}

/// Waits until the table shows exactly `want` (in this order).
async fn rows_become(c: &Client, what: &str, want: &[String]) {
    let mut last = Vec::new();
    let ok = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            last = row_ids(c).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await; // polling interval
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "{what}: expected rows {want:?}, the table shows {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_overview_sort_and_filter() {
    if !e2e_enabled() {
        return;
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(env("E2E_STATE")).unwrap()).unwrap();
    let out = PathBuf::from(env("E2E_OUT"));
    std::fs::create_dir_all(&out).unwrap();

    // Ground truth: what the simulator charged each key, priced at the client's markup.
    let truth: Value = reqwest::get(format!(
        "{}/__sim/truth",
        state["openrouter"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut raw_by_hash: HashMap<String, Decimal> = HashMap::new();
    for g in truth["generations"].as_array().unwrap() {
        let cost = Decimal::from_str(
            &g["cost"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| g["cost"].to_string()),
        )
        .unwrap();
        *raw_by_hash
            .entry(g["key_hash"].as_str().unwrap().to_string())
            .or_default() += cost;
    }
    let mut priced: Vec<(String, Decimal)> = state["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cl| {
            let hash = hex::encode(Sha256::digest(cl["key"].as_str().unwrap().as_bytes()));
            let raw = raw_by_hash.get(&hash).copied().unwrap_or_default();
            let markup = Decimal::from_str(cl["markup"].as_str().unwrap()).unwrap();
            (cl["id"].as_str().unwrap().to_string(), raw * markup)
        })
        .collect();
    assert!(priced.len() >= 2, "the demo fleet has several clients");

    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "tauri:options": {"application": env("E2E_APP"), "args": ["--fleet", env("E2E_FLEET")]}
    }))
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // tests/run-e2e.sh starts tauri-driver on 4444; E2E_DRIVER_PORT names another.
    let driver = std::env::var("E2E_DRIVER_PORT").unwrap_or_else(|_| "4444".into());
    let c = ClientBuilder::rustls()
        .expect("TLS roots for the WebDriver client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver}"))
        .await
        .unwrap_or_else(|e| panic!("tauri-driver on {driver}: {e}"));
    let shot = |name: &'static str| {
        let c = c.clone();
        let out = out.clone();
        async move {
            match tokio::time::timeout(Duration::from_secs(15), c.screenshot()).await {
                Ok(Ok(png)) => std::fs::write(out.join(format!("{name}.png")), png).unwrap(),
                Ok(Err(e)) => eprintln!("e2e: WARNING: screenshot {name} failed: {e}"),
                Err(_) => eprintln!("e2e: WARNING: screenshot {name} timed out"),
            }
        }
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

    // Every row shows the truth first (the trackers answered).
    for (id, cost) in &priced {
        let want = usd(*cost);
        let sel = format!("[data-testid='row-{id}'] [data-testid='today-cost']");
        wait_for(
            &format!("{id}'s today cost {want}"),
            Duration::from_secs(60),
            || {
                let c = c.clone();
                let t = text_of(sel.clone());
                let want = want.clone();
                async move {
                    if let Ok(b) = c.find(Locator::Css("[data-testid='refresh']")).await {
                        let _ = b.click().await;
                    }
                    t.await.filter(|t| *t == want)
                }
            },
        )
        .await;
    }
    shot("overview-01-fleet").await;

    // Totals: the sum of the clients' client cost, today and month to date (a fresh fleet).
    let total: Decimal = priced.iter().map(|(_, d)| *d).sum();
    let today = text_of("[data-testid='totals-today-client']".into())
        .await
        .unwrap_or_default();
    assert!(
        today.contains(&usd(total)),
        "totals today {today:?}, want {}",
        usd(total)
    );
    let month = text_of("[data-testid='totals-month-client']".into())
        .await
        .unwrap_or_default();
    assert!(
        month.contains(&usd(total)),
        "totals month {month:?}, want {}",
        usd(total)
    );

    // Sort by today's cost: ascending by the exact truth, then descending (ties by id are
    // left in table order, so compare only distinct costs' order).
    priced.sort_by_key(|a| a.1);
    let asc: Vec<String> = priced.iter().map(|(id, _)| id.clone()).collect();
    click(&c, "[data-testid='sort-today']").await;
    rows_become(&c, "sorted by today ascending", &asc).await;
    shot("overview-02-sorted-asc").await;
    click(&c, "[data-testid='sort-today']").await;
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    rows_become(&c, "sorted by today descending", &desc).await;
    shot("overview-03-sorted-desc").await;

    // Search one client; then filters by host and state over the whole fleet.
    let pick = asc[asc.len() / 2].clone();
    let search = c
        .find(Locator::Css("[data-testid='fleet-search']"))
        .await
        .unwrap();
    search.send_keys(&pick).await.unwrap();
    rows_become(&c, "search", std::slice::from_ref(&pick)).await;
    shot("overview-04-search").await;
    click(&c, "[data-testid='filter-clear']").await;
    rows_become(&c, "cleared", &desc).await;
    select(&c, "[data-testid='filter-host']", "local").await;
    rows_become(&c, "host local", &desc).await;
    select(&c, "[data-testid='filter-host']", "").await;
    select(&c, "[data-testid='filter-state']", "running").await;
    rows_become(&c, "state running", &desc).await;
    let count = text_of("[data-testid='fleet-count']".into())
        .await
        .unwrap_or_default();
    assert_eq!(count, format!("{n} of {n} clients", n = desc.len()));
    shot("overview-05-filtered").await;

    c.close().await.unwrap();
}
