//! Memory of the operator library with 100 clients and 12 months of cached events:
//! fills the console cache (SQLite ledger) with a year of events for 100 clients, then
//! refreshes the fleet against 100 trackers and opens every client's dashboard, and
//! prints the process's peak RSS. `cargo bench -p mai-ops --bench footprint`
//! (FOOTPRINT_EVENTS_PER_DAY, default 20, scales the cache). With FOOTPRINT_KEEP_DIR=DIR
//! the fleet file and the filled cache are written to DIR and kept, so the desktop app
//! can be measured on them too (`deploy/bench/console-footprint.sh`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use rust_decimal::Decimal;

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let per_day: usize = std::env::var("FOOTPRINT_EVENTS_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    unsafe { std::env::set_var("FAKE_TRACKER_TOKEN", "bench-token") };
    unsafe {
        std::env::set_var(
            "FAKE_TRACKER_READ_TOKEN",
            common::read_token_of("bench-token"),
        )
    };
    // The guard deletes the directory at the end unless it is to be kept.
    let (_guard, dir) = match std::env::var_os("FOOTPRINT_KEEP_DIR") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            (
                None,
                tempfile::Builder::new().tempdir_in(keep).unwrap().keep(),
            )
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let (ops, fill) = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..100 {
            let (addr, _) =
                common::fake_tracker(&format!("c{i}"), "bench-token", Duration::ZERO).await;
            clients.push((format!("c{i}"), addr, "1.3"));
        }
        let text = common::fleet_text(&dir, &clients, None);
        let fleet = Fleet::parse(&text, &dir.join("fleet.toml")).unwrap();
        std::fs::write(dir.join("fleet.toml"), &text).unwrap();
        let mut o = Ops::new(
            fleet,
            Ok(Keychain::with_store(
                keyring_core::mock::Store::new().unwrap(),
            )),
        )
        .unwrap();
        o.docker_enabled = false;
        // A year of events straight into the cache (what 12 months of pulls leave behind).
        let start = Instant::now();
        let base = Utc::now() - chrono::Duration::days(365);
        let models = [
            "openai/gpt-4o-mini",
            "anthropic/claude-3.5-sonnet",
            "google/gemini-2.5-flash",
        ];
        for c in 0..100 {
            let mut batch = Vec::with_capacity(365 * per_day);
            for d in 0..365i64 {
                for k in 0..per_day {
                    batch.push(UsageEvent {
                        generation_id: format!("gen-{c}-{d}-{k}"),
                        org_id: format!("c{c}"),
                        user: UserRef {
                            id: Some(format!("u{}", k % 7)),
                            email: None,
                            name: None,
                        },
                        model: models[k % 3].into(),
                        provider: Some("P".into()),
                        tokens: Tokens {
                            prompt: 900,
                            completion: 300,
                            reasoning: 0,
                            cached: 0,
                        },
                        cost_usd: Decimal::from_str("0.000437").unwrap(),
                        source: Source::Reconciliation,
                        state: EventState::Confirmed,
                        created_at: base
                            + chrono::Duration::days(d)
                            + chrono::Duration::seconds(k as i64 * 60),
                        context: Default::default(),
                    });
                }
            }
            o.cache
                .with(move |l| l.record_batch(&batch).map(|_| ()))
                .await
                .unwrap();
        }
        (o, start.elapsed())
    });
    let events = 100 * 365 * per_day;
    let after_fill = rss_kib("VmRSS:");
    let t = Instant::now();
    let rows = rt.block_on(ops.refresh());
    let refresh = t.elapsed();
    assert_eq!(rows.len(), 100);
    let t = Instant::now();
    for c in 0..100 {
        rt.block_on(ops.dashboard(&format!("c{c}"))).unwrap();
    }
    let dashboards = t.elapsed();
    let db = std::fs::metadata(dir.join("console-cache.sqlite"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("footprint: fleet and cache in {}", dir.display());
    println!("footprint: {events} cached events ({per_day}/client/day x 365 days x 100 clients), filled in {fill:.1?}");
    println!("footprint: cache file {:.1} MiB", db as f64 / 1048576.0);
    println!("footprint: refresh of 100 clients {refresh:.1?}; 100 dashboards {dashboards:.1?}");
    println!(
        "footprint: RSS after fill {} MiB, now {} MiB, peak {} MiB",
        after_fill / 1024,
        rss_kib("VmRSS:") / 1024,
        rss_kib("VmHWM:") / 1024
    );
}
