//! Fleet refresh of 100 clients whose trackers answer after 50 ms: the goal is well under
//! 1 s (about one slow round trip, not a hundred). Also: a cold cache pull of 12 months
//! of events for one client.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mai_ops::{Fleet, Keychain, Ops};

fn refresh_100(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    unsafe { std::env::set_var("FAKE_TRACKER_TOKEN", "bench-token") };
    unsafe {
        std::env::set_var(
            "FAKE_TRACKER_READ_TOKEN",
            common::read_token_of("bench-token"),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let ops = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..100 {
            let (addr, st) =
                common::fake_tracker(&format!("c{i}"), "bench-token", Duration::from_millis(50))
                    .await;
            st.lock().unwrap().add(
                &format!("gen-{i}"),
                "anna",
                "openai/gpt-4o-mini",
                "0.00066",
                "provisional",
            );
            clients.push((format!("c{i}"), addr, "1.3"));
        }
        let mut text = common::fleet_text(dir.path(), &clients, None);
        text = text.replace("concurrency = 64", "concurrency = 128");
        let fleet = Fleet::parse(&text, &dir.path().join("fleet.toml")).unwrap();
        let mut o = Ops::new(
            fleet,
            Ok(Keychain::with_store(
                keyring_core::mock::Store::new().unwrap(),
            )),
        )
        .unwrap();
        o.docker_enabled = false;
        o
    });
    let mut g = c.benchmark_group("fleet_refresh");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("100_clients_50ms_latency", |b| {
        b.iter(|| {
            let rows = rt.block_on(ops.refresh());
            assert!(rows.iter().all(|r| r.tracker_reachable));
            rows
        })
    });
    g.finish();
}

criterion_group!(benches, refresh_100);
criterion_main!(benches);
