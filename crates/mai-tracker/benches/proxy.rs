//! Proxy overhead benchmark: streaming requests straight to the simulator versus
//! through the tracker (a separate release process), at 100 and 1,000 concurrent
//! streams; time to first byte and total, p50/p99; tracker RSS idle and under load.
//!
//!     cargo bench -p mai-tracker --bench proxy            (defaults)
//!     MAI_BENCH_REQUESTS=4000 cargo bench -p mai-tracker --bench proxy
//!     MAI_BENCH_RATE=1000 cargo bench -p mai-tracker --bench proxy   (open loop: fixed req/s)
//!     MAI_BENCH_WRAP="heaptrack -o /tmp/ht" cargo bench ...        (tracker under a profiler;
//!         RSS figures are then the wrapper's; stop the tracker with SIGINT to flush)
//!     MALLOC_* variables are passed to the tracker (e.g. MALLOC_ARENA_MAX=1).
//!
//! Everything runs on loopback on this machine: the load generator and the simulator
//! share this process, the tracker is its own process (so its RSS is its own).

use futures::StreamExt;
use mai_sim::openrouter::{KeepAlive, OpenRouterSim, SimConfig};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b1";
/// Direct calls use another key, so the tracker's key totals only count proxied traffic.
const DIRECT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000d1";
const PROXY: &str = "bench-proxy-token-000";

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

struct Run {
    ttfb: Vec<Duration>,
    total: Vec<Duration>,
    wall: Duration,
    failed: usize,
}

async fn load(
    url: String,
    token: &'static str,
    concurrency: usize,
    requests: usize,
    rate: Option<f64>,
) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = serde_json::json!({
        "model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 32,
        "messages": [{"role": "user", "content": "benchmark"}]
    })
    .to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, body, next) = (http.clone(), url.clone(), body.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out = (Vec::new(), Vec::new(), 0usize);
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= requests {
                    break;
                }
                if let Some(r) = rate {
                    // Open loop: request k starts at k / rate seconds, whatever came before.
                    let at = started + Duration::from_secs_f64(k as f64 / r);
                    tokio::time::sleep_until(at.into()).await;
                }
                let t0 = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let Ok(r) = r else {
                    out.2 += 1;
                    continue;
                };
                if !r.status().is_success() {
                    out.2 += 1;
                    continue;
                }
                let mut s = r.bytes_stream();
                let mut first = None;
                let mut ok = true;
                while let Some(c) = s.next().await {
                    if c.is_err() {
                        ok = false;
                        break;
                    }
                    first.get_or_insert_with(|| t0.elapsed());
                }
                if ok {
                    out.0.push(first.unwrap_or_else(|| t0.elapsed()));
                    out.1.push(t0.elapsed());
                } else {
                    out.2 += 1;
                }
            }
            out
        }));
    }
    let mut run = Run {
        ttfb: Vec::new(),
        total: Vec::new(),
        wall: Duration::ZERO,
        failed: 0,
    };
    for w in workers {
        let (a, b, f) = w.await.unwrap();
        run.ttfb.extend(a);
        run.total.extend(b);
        run.failed += f;
    }
    run.wall = started.elapsed();
    run
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let requests: usize = std::env::var("MAI_BENCH_REQUESTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        let rate: Option<f64> = std::env::var("MAI_BENCH_RATE")
            .ok()
            .and_then(|v| v.parse().ok());
        // Streams that last a little (8 content chunks, 2 ms apart), like a short answer.
        let sim = OpenRouterSim::spawn(SimConfig {
            seed: 1,
            keepalive: KeepAlive {
                leading: 1,
                interval: Duration::ZERO,
                every_events: 0,
            },
            chunk_interval: Duration::from_millis(2),
            ..SimConfig::fast()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // MAI_BENCH_WRAP="heaptrack -o /tmp/ht" runs the tracker under a profiler.
        let wrap: Vec<String> = std::env::var("MAI_BENCH_WRAP")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let mut cmd = match wrap.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(env!("CARGO_BIN_EXE_mai-tracker"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_mai-tracker")),
        };
        let mut child = cmd
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_") || k == "PATH"))
            .env("OPENROUTER_API_KEY", KEY)
            .env("OPENROUTER_BASE_URL", sim.base_url())
            .env("MAI_ORG_ID", "bench")
            .env("MAI_TRACKER_LISTEN", format!("127.0.0.1:{port}"))
            .env("MAI_TRACKER_DB", dir.path().join("bench.sqlite"))
            .env("MAI_TRACKER_PROXY_TOKEN", PROXY)
            .env("MAI_TRACKER_READ_TOKEN", "bench-read-token-0000")
            .env("MAI_TRACKER_ADMIN_TOKEN", "bench-admin-token-000")
            .env("OPENROUTER_USAGE_SYNC_INTERVAL", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn mai-tracker");
        let base = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !probe
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "tracker did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = child.id();
        println!("tracker idle RSS: {} KiB", rss_kib(pid));
        let direct_url = format!("{}/chat/completions", sim.base_url());
        let proxy_url = format!("{base}/v1/chat/completions");
        for conc in [100usize, 1000] {
            // Warm-up both paths (connection pools, allocator).
            let _ = load(direct_url.clone(), DIRECT, conc, conc, None).await;
            let _ = load(proxy_url.clone(), PROXY, conc, conc, None).await;
            let mut d = load(direct_url.clone(), DIRECT, conc, requests, rate).await;
            let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let peak_fds = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sampler = {
                let (peak, fds) = (peak.clone(), peak_fds.clone());
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                        let n = std::fs::read_dir(format!("/proc/{pid}/fd"))
                            .map(|d| d.count() as u64)
                            .unwrap_or(0);
                        fds.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            };
            let mut p = load(proxy_url.clone(), PROXY, conc, requests, rate).await;
            sampler.abort();
            match rate {
                None => println!("\n== {conc} concurrent streams (closed loop), {requests} requests per path =="),
                Some(r) => println!("\n== up to {conc} concurrent streams, open loop at {r} req/s, {requests} requests per path =="),
            }
            println!(
                "direct : {:.0} req/s, failed {}, TTFB p50 {} p99 {}, total p50 {} p99 {}",
                requests as f64 / d.wall.as_secs_f64(),
                d.failed,
                ms(pct(&mut d.ttfb, 0.5)),
                ms(pct(&mut d.ttfb, 0.99)),
                ms(pct(&mut d.total, 0.5)),
                ms(pct(&mut d.total, 0.99))
            );
            println!(
                "proxied: {:.0} req/s, failed {}, TTFB p50 {} p99 {}, total p50 {} p99 {}",
                requests as f64 / p.wall.as_secs_f64(),
                p.failed,
                ms(pct(&mut p.ttfb, 0.5)),
                ms(pct(&mut p.ttfb, 0.99)),
                ms(pct(&mut p.total, 0.5)),
                ms(pct(&mut p.total, 0.99))
            );
            let add = |a: Duration, b: Duration| {
                format!("{:+.3} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
            };
            println!(
                "added  : TTFB p50 {} p99 {}, total p50 {} p99 {}",
                add(pct(&mut p.ttfb, 0.5), pct(&mut d.ttfb, 0.5)),
                add(pct(&mut p.ttfb, 0.99), pct(&mut d.ttfb, 0.99)),
                add(pct(&mut p.total, 0.5), pct(&mut d.total, 0.5)),
                add(pct(&mut p.total, 0.99), pct(&mut d.total, 0.99))
            );
            println!(
                "tracker RSS peak under load: {} KiB ({} threads, peak {} open fds: inbound + upstream sockets)",
                peak.load(std::sync::atomic::Ordering::Relaxed),
                status_field(pid, "Threads:"),
                peak_fds.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        // Everything proxied was metered.
        let _ = probe
            .post(format!("{base}/api/v1/sync"))
            .bearer_auth("bench-admin-token-000")
            .send()
            .await;
        let today: serde_json::Value = probe
            .get(format!("{base}/api/v1/usage/today"))
            .bearer_auth("bench-read-token-0000")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let served = sim.key_totals(KEY);
        println!(
            "\nledger: {} requests, raw cost {} USD; simulator served {} generations on the key, {} USD",
            today["requests"], today["raw_cost_usd"], served.generations, served.cost
        );
        println!("tracker idle RSS right after load: {} KiB", rss_kib(pid));
        // Idle upstream connections expire 20-40 s after use and the tracker trims the heap
        // on its 10 s maintenance tick when nothing is in flight: wait for RSS to settle.
        let t0 = Instant::now();
        let mut last = rss_kib(pid);
        while t0.elapsed() < Duration::from_secs(90) && last > 15 * 1024 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            last = rss_kib(pid);
        }
        println!(
            "tracker idle RSS {:.0} s after load: {} KiB",
            t0.elapsed().as_secs_f64(),
            last
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}
