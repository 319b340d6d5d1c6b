//! End to end, the fleet overview (issue 14): the real console binary under Xvfb driven
//! over WebDriver against the demo fleet's real trackers, like `e2e.rs` (run by
//! tests/run-e2e.sh after it, with the same E2E_* variables). Sorting the fleet table by
//! today's cost orders the rows by the simulator's truth × markup, both ways; search,
//! host and state filters leave the rows they should; the totals strip sums the clients.
//! Without E2E_STATE it says on the terminal that it was skipped and why.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use fantoccini::{Client, Locator};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

mod e2e_support;
use e2e_support::{env, open_console, raw_cost_by_key_hash, usd, wait_for};

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
    if !e2e_support::enabled("fleet_overview_sort_and_filter") {
        return;
    }
    let state = e2e_support::state();
    let out = PathBuf::from(env("E2E_OUT"));
    std::fs::create_dir_all(&out).unwrap();

    // Ground truth: what the simulator charged each key, priced at the client's markup.
    let raw_by_hash = raw_cost_by_key_hash(state["openrouter"].as_str().unwrap()).await;
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
