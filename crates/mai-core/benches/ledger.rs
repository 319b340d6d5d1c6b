//! Ledger benchmarks (issue 2): ingest rate, query latency on a 1,000,000-event month,
//! and on-disk size. Run: `cargo bench -p mai-core --bench ledger`.
//! Set `MAI_BENCH_EVENTS` to change the size of the big month (default 1,000,000).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mai_core::ledger::Ledger;
use mai_core::time::YearMonth;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;

fn event(i: u64, org: &str, minutes_in_month: u64) -> UsageEvent {
    let start = Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap(); // 2026-11-01 00:00 Warsaw
    UsageEvent {
        generation_id: format!("gen-1767225600-{i:020}"),
        org_id: org.to_string(),
        user: UserRef {
            id: Some(format!("user-{}", i % 50)),
            email: Some(format!("user{}@client.pl", i % 50)),
            name: None,
        },
        model: [
            "openai/gpt-4o-mini",
            "anthropic/claude-3.5-sonnet",
            "deepseek/deepseek-chat-v3-0324",
            "google/gemini-2.5-flash",
        ][(i % 4) as usize]
            .to_string(),
        provider: Some("OpenAI".into()),
        tokens: Tokens {
            prompt: 1200,
            completion: 250,
            reasoning: 0,
            cached: 100,
        },
        cost_usd: Decimal::new(660 + (i % 1000) as i64, 9),
        source: Source::Proxy,
        state: EventState::Provisional,
        created_at: start + chrono::Duration::minutes((minutes_in_month % (30 * 24 * 60)) as i64),
        context: Default::default(),
    }
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(8));

    let mut l = Ledger::open(&dir.path().join("single.db")).unwrap();
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_durable_transaction_per_event", |b| {
        b.iter(|| {
            n += 1;
            l.record(&event(n, "acme", n)).unwrap();
        })
    });

    let mut l = Ledger::open(&dir.path().join("batched.db")).unwrap();
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("durable_batches_of_1000", |b| {
        b.iter_batched(
            || {
                let evs: Vec<_> = (0..1000).map(|k| event(n + k, "acme", n + k)).collect();
                n += 1000;
                evs
            },
            |evs| l.record_batch(&evs).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let total: u64 = std::env::var("MAI_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("month.db");
    let mut l = Ledger::open(&path).unwrap();
    let t0 = Instant::now();
    let per_minute = total.div_ceil(30 * 24 * 60).max(1);
    let mut i = 0;
    while i < total {
        let evs: Vec<_> = (i..(i + 5000).min(total))
            .map(|k| event(k, "acme", k / per_minute))
            .collect();
        l.record_batch(&evs).unwrap();
        i += 5000;
    }
    let load = t0.elapsed();
    l.checkpoint().unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let month: YearMonth = "2026-11".parse().unwrap();
    let from = month.first_day();
    let to = month.last_day();
    // Bytes of the rollups alone: measured on a ledger that holds only rollups' worth of
    // distinct rows would need a second file; report SQLite's per-table page counts instead.
    let rollup_bytes = table_bytes(
        &path,
        &["rollup_org_day", "rollup_user_day", "rollup_model_day"],
    );
    let event_bytes = table_bytes(
        &path,
        &[
            "events",
            "sqlite_autoindex_events_1",
            "sqlite_autoindex_events_2",
            "events_provisional",
            "events_org_created",
        ],
    );
    println!(
        "\nledger size: {total} events in {:.1} s ({:.0} events/s batched 5000), file {} bytes = {:.0} bytes/event; \
         events+indexes {:.0} bytes/event; rollups {} bytes for 30 org-days = {:.0} bytes per org-day (50 users x 4 models)",
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64(),
        bytes,
        bytes as f64 / total as f64,
        event_bytes as f64 / total as f64,
        rollup_bytes,
        rollup_bytes as f64 / 30.0
    );

    let mut g = c.benchmark_group(format!("queries_{total}_events_month"));
    g.sample_size(20);
    let today = "2026-12-01".parse().unwrap();
    let schedule = mai_core::pricing::MarkupSchedule::default();
    g.bench_function("month_summary", |b| {
        b.iter(|| l.month_summary("acme", month, today, &schedule).unwrap())
    });
    g.bench_function("by_user", |b| {
        b.iter(|| l.by_user("acme", from, to).unwrap())
    });
    g.bench_function("by_model", |b| {
        b.iter(|| l.by_model("acme", from, to).unwrap())
    });
    g.bench_function("today", |b| b.iter(|| l.day("acme", to).unwrap()));
    // The tracker's drift check: the month's events in a UTC window, summed per model
    // (rollups are per Warsaw day, so this one scans events; once per sync interval).
    let utc = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc();
    g.bench_function("utc_month_window_by_model", |b| {
        b.iter(|| {
            l.utc_window_by_model("acme", utc(from), utc(to.succ_opt().unwrap()))
                .unwrap()
        })
    });
    g.finish();
}

/// On-disk bytes of the given tables/indexes, from SQLite's dbstat virtual table.
fn table_bytes(path: &std::path::Path, names: &[&str]) -> u64 {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut total = 0u64;
    for n in names {
        let b: Option<i64> = c
            .query_row("SELECT SUM(pgsize) FROM dbstat WHERE name = ?1", [n], |r| {
                r.get(0)
            })
            .unwrap_or(None);
        total += b.unwrap_or(0) as u64;
    }
    total
}

criterion_group!(benches, ingest, queries);
criterion_main!(benches);
