//! Faults of the ledger under a real tracker in front of the simulator: nothing lost,
//! nothing doubled, readiness honest; and the sanity caps on manual records.

mod common;
use common::*;
use mai_core::usage::EventState;
use mai_sim::openrouter::SimConfig;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::time::Duration;

async fn ready(env: &Env) -> u16 {
    env.http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn metrics(env: &Env) -> String {
    env.get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series whose line starts with `series` (0 when absent).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn burst(env: &Env, n: usize, tag: &str) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = env.chat(body(i % 2 == 0, Some(&format!("{tag}-{i}"))));
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The ledger equals the simulator's ground truth: exactly `n` generations, each once,
/// with the simulator's cost and tokens, and the day's rollup summing to the exact
/// decimal total.
fn assert_ledger_is_the_truth(env: &Env, n: usize) {
    let truth = env.sim.generations();
    assert_eq!(truth.len(), n, "generations the simulator served");
    let ledger = env.ledger();
    let page = ledger.events_since(0, 10_000).unwrap();
    let ids: Vec<_> = page
        .events
        .iter()
        .map(|e| e.event.generation_id.clone())
        .collect();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no generation twice");
    let truth_ids: HashSet<_> = truth.iter().map(|g| g.id.clone()).collect();
    assert_eq!(unique, truth_ids, "every served generation, nothing else");
    for g in &truth {
        let e = ledger.get("acme", &g.id).unwrap().unwrap().event;
        assert_eq!(e.cost_usd, g.cost, "{}", g.id);
        assert_eq!(e.tokens.completion, g.completion_tokens as u64, "{}", g.id);
        assert_eq!(e.state, EventState::Confirmed, "{}", g.id);
    }
    let total: Decimal = truth.iter().map(|g| g.cost).sum();
    let today = mai_core::time::warsaw_today();
    let day = ledger
        .range("acme", today - chrono::Duration::days(1), today)
        .unwrap();
    assert_eq!(day.cost_usd, total, "rollup equals the truth");
    assert_eq!(day.requests, n as u64);
}

/// Another process holds the ledger's write lock (SQLITE_BUSY) in the middle of a burst:
/// the proxy keeps serving, readiness turns false, the writer retries with backoff, and
/// once the lock is gone every generation is in the ledger exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_ledger_mid_burst_loses_and_doubles_nothing() {
    let env = start(SimConfig {
        seed: 21,
        ..SimConfig::fast()
    })
    .await;
    burst(&env, 6, "before").await;
    env.flush().await;
    assert_eq!(ready(&env).await, 200);

    // A second connection takes the write lock and keeps it (what a backup tool or a
    // stray sqlite3 shell does).
    let lock = rusqlite::Connection::open(env.db()).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    burst(&env, 12, "during").await;
    eventually(
        "readiness false while writes fail",
        Duration::from_secs(30),
        || async { ready(&env).await == 503 },
    )
    .await;
    let m = metrics(&env).await;
    assert!(
        metric(
            &m,
            "mai_ledger_write_failures_total{org=\"acme\",kind=\"busy\"}"
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(&m, "mai_ledger_pending_events{org=\"acme\"}") >= 1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        1,
        "{m}"
    );
    // Still proxying while the ledger is down.
    burst(&env, 6, "still").await;

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    eventually(
        "readiness back after the lock is released",
        Duration::from_secs(30),
        || async { ready(&env).await == 200 },
    )
    .await;
    env.flush().await;
    assert_ledger_is_the_truth(&env, 24);
    let m = metrics(&env).await;
    assert!(
        metric(&m, "mai_ledger_write_retries_total{org=\"acme\"}") >= 1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_pending_events{org=\"acme\"}"),
        0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        0,
        "{m}"
    );
}

/// Manual records above the sanity caps are refused with 422 and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_records_above_the_caps_are_refused_and_counted() {
    let env = start(SimConfig::fast()).await;
    let post = |b: serde_json::Value| {
        env.http
            .post(format!(
                "{}/api/v1/usage-tracking/usage/manual-record",
                env.base
            ))
            .bearer_auth(ADMIN)
            .json(&b)
            .send()
    };
    let r = post(serde_json::json!({"model": "a/b", "tokens": 10, "cost": 1000.5}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("cost_usd") && text.contains("1000"), "{text}");
    let r = post(serde_json::json!({"model": "a/b", "tokens": 100_000_001u64, "cost": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("tokens.prompt"));
    // At the cap is fine.
    let r = post(serde_json::json!({"model": "a/b", "tokens": 100_000_000u64, "cost": 1000}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = metrics(&env).await;
    assert_eq!(
        metric(
            &m,
            "mai_events_refused_total{org=\"acme\",path=\"manual\",reason=\"over_cap\"}"
        ),
        2,
        "{m}"
    );
    env.flush().await;
    assert_eq!(env.ledger().events_since(0, 10).unwrap().events.len(), 1);
}

/// A tmpfs mounted over a test directory: a small file system of its own that a test
/// can fill to the last page without touching the machine's disks.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount(8) syntax, e.g. `4m`) over `path`. Mounting
    /// needs root (CAP_SYS_ADMIN). Without it the test is skipped with a line on the
    /// terminal, never passed quietly, except under CI (`CI=true`), where it fails.
    fn mount(path: &std::path::Path, size: &str, test: &str) -> Option<Tmpfs> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("mai-ledger-test")
            .arg(path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    path: path.to_path_buf(),
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            Err(e) => format!("cannot run mount(8): {e}"),
        };
        let msg = format!(
            "SKIPPED: {test} needs root/CAP_SYS_ADMIN to mount a small tmpfs for the ledger \
             (`mount -t tmpfs -o size={size} … {}` failed: {why}); run it as root or in a \
             privileged container",
            path.display()
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg}: under CI this test must run, not skip"
        );
        // Straight to the terminal: the test harness captures `eprintln!` of passing
        // tests, and a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "\n{msg}\n");
        None
    }

    /// Fills the file system with one file until the kernel answers ENOSPC, and proves
    /// it full: not one more byte fits in a new file. Returns the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => panic!("tmpfs accepted a write of 0 bytes; expected ENOSPC"),
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
        assert!(written > 0, "the tmpfs was already full before the filler");
        let probe = self.path.join("probe");
        let r = std::fs::write(&probe, [0u8; 1]);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::StorageFull),
            "the file system is not full after {written} bytes of filler: {r:?}"
        );
        let _ = std::fs::remove_file(probe);
        filler
    }
}

impl Drop for Tmpfs {
    /// Detaches even while a stopped tracker's writer thread still holds the ledger
    /// open (and when a failing test unwinds with everything open).
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Requests `n` chat completions, at most `parallel` in flight, and calls `at_k` just
/// before sending request `k`: the fault lands while the requests before it are still
/// being proxied and written.
async fn burst_with_fault(
    env: &Env,
    n: usize,
    parallel: usize,
    tag: &str,
    k: usize,
    at_k: impl FnOnce(),
) {
    let mut at_k = Some(at_k);
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..n {
        if i == k {
            (at_k.take().unwrap())();
        }
        if inflight.len() >= parallel {
            inflight.join_next().await.unwrap().unwrap();
        }
        let req = env.chat(body(i % 2 == 0, Some(&format!("{tag}-{i}"))));
        inflight.spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        });
    }
    while let Some(r) = inflight.join_next().await {
        r.unwrap();
    }
}

/// The ledger's file system fills up in the middle of a burst (SQLITE_FULL: the WAL
/// cannot grow, nor the crash journal): the proxy keeps serving, readiness turns false
/// and `/metrics` counts `full` failures; once space is freed the writer's retries
/// commit every queued event, and the ledger equals the simulator's truth, also after
/// a restart that replays the crash journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_burst_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the new ledger, its WAL and journal, but little more.
    let Some(fs) = Tmpfs::mount(
        dir.path(),
        "4m",
        "a_full_disk_mid_burst_loses_and_doubles_nothing",
    ) else {
        return;
    };
    let sim = mai_sim::openrouter::OpenRouterSim::spawn(SimConfig {
        seed: 22,
        ..SimConfig::fast()
    })
    .await
    .expect("simulator");
    let tracker = start_tracker(&sim.base_url(), dir.path(), &[]).await;
    let base = tracker.base_url();
    let mut env = Env {
        sim,
        tracker: Some(tracker),
        dir,
        http: reqwest::Client::new(),
        base,
    };

    burst(&env, 6, "before").await;
    env.flush().await;
    assert_eq!(ready(&env).await, 200);

    // Mid-burst: the disk fills while earlier requests of the burst are in flight.
    let mut filler = None;
    burst_with_fault(&env, 24, 4, "mid", 8, || filler = Some(fs.fill())).await;
    let filler = filler.unwrap();
    // However the burst's writes fell around the fill, these cannot be committed.
    burst(&env, 6, "during").await;
    eventually(
        "readiness false while the disk is full",
        Duration::from_secs(30),
        || async { ready(&env).await == 503 },
    )
    .await;
    let why = env
        .http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(why.contains("disk is full"), "{why}");
    let m = metrics(&env).await;
    assert!(
        metric(
            &m,
            "mai_ledger_write_failures_total{org=\"acme\",kind=\"full\"}"
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(&m, "mai_ledger_pending_events{org=\"acme\"}") >= 6,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        1,
        "{m}"
    );
    // Still proxying on a full disk.
    burst(&env, 6, "still").await;
    // Past the writer's reconnect (every 5th consecutive failure): the fresh connection
    // meets the full disk too and the queue survives it.
    eventually(
        "six failed attempts on the full disk",
        Duration::from_secs(30),
        || async {
            metric(
                &metrics(&env).await,
                "mai_ledger_write_failures_total{org=\"acme\",kind=\"full\"}",
            ) >= 6
        },
    )
    .await;
    assert_eq!(ready(&env).await, 503);

    std::fs::remove_file(&filler).unwrap();
    eventually(
        "readiness back and nothing pending once space is freed",
        Duration::from_secs(30),
        || async {
            ready(&env).await == 200
                && metric(
                    &metrics(&env).await,
                    "mai_ledger_pending_events{org=\"acme\"}",
                ) == 0
        },
    )
    .await;
    // Traffic goes on after the recovery, on the normal path.
    burst(&env, 6, "after").await;
    env.flush().await;
    assert_ledger_is_the_truth(&env, 48);
    let m = metrics(&env).await;
    assert!(
        metric(&m, "mai_ledger_write_retries_total{org=\"acme\"}") >= 1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mai_ledger_writer_failing{org=\"acme\"}"),
        0,
        "{m}"
    );
    assert!(
        !m.contains("mai_ledger_events_dropped_total{"),
        "no event given up on: {m}"
    );

    // A restart replays the crash journal, whose appends failed while the disk was full:
    // a failed append is cut back to the last whole line, so nothing is torn (no
    // quarantine file) and every id in it is already in the ledger: nothing is added
    // or doubled.
    env.restart(&[]).await;
    env.flush().await;
    let quarantine = std::path::PathBuf::from(format!("{}.journal.quarantine", env.db().display()));
    assert!(
        !quarantine.exists(),
        "a journal line was torn by the full disk: {:?}",
        std::fs::read_to_string(&quarantine)
    );
    assert_ledger_is_the_truth(&env, 48);
    assert_eq!(ready(&env).await, 200);
    env.tracker.take().unwrap().shutdown().await.unwrap();
    drop(fs);
}
