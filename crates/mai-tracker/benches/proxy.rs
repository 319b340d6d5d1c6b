//! Proxy overhead benchmark: streaming chat requests straight to the simulator versus
//! through the tracker (a separate release process); time to first byte and total,
//! p50/p99; tracker RSS idle, under load and after.
//!
//!     cargo bench -p mai-tracker --bench proxy
//!     MAI_BENCH_UPSTREAM=http cargo bench ...     plain-HTTP/1.1 simulator (default: https,
//!         TLS with ALPN h2, as openrouter.ai is reached)
//!     MAI_BENCH_REQUESTS=6000 cargo bench ...     requests per latency scenario (default 4000)
//!     MAI_BENCH_WRAP="heaptrack -o /tmp/ht" cargo bench ...  (tracker under a profiler;
//!         RSS figures are then the wrapper's)
//!     MALLOC_* variables are passed to the tracker (e.g. MALLOC_ARENA_MAX=1).
//!
//! Scenarios:
//! 1. open loop, 1,000 req/s: request k starts at k ms whatever came before; even k go
//!    direct, odd k through the tracker, so both paths see the same moments of the
//!    machine (a shared 2-core box is noisy; sequential runs compared its noise).
//! 2. closed loop, 100 workers, each alternating direct and proxied requests.
//! 3. 1,000 streams held open at once through the tracker (one token per chunk, 50 ms
//!    apart, ~1.6 s each, like a model writing 20 tokens/s): memory per stream.
//! 4. closed loop, 1,000 concurrent streams through the tracker (then direct): the CPU
//!    saturates; memory at the worst moment.
//!
//! Before 3 and 4 the bench waits for the tracker's RSS to settle (it trims its heap on
//! a 10 s tick when nothing is in flight), since RSS keeps the high-water mark of the
//! scenario before.
//!
//! The chat app's side is HTTP/1.1 (Open WebUI's aiohttp), both direct and to the
//! tracker. The load generator and the simulator share this process; the tracker is its
//! own process, so its RSS is its own.

use futures::StreamExt;
use mai_sim::openrouter::{KeepAlive, OpenRouterSim, SimConfig, TlsOptions};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b1";
/// Direct calls use another key, so the tracker's key totals only count proxied traffic.
const DIRECT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000d1";
const PROXY: &str = "bench-proxy-token-000";

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

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn delta(a: Duration, b: Duration) -> String {
    format!("{:+.3} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
}

#[derive(Clone)]
struct Target {
    url: String,
    token: &'static str,
}

#[derive(Default)]
struct Samples {
    ttfb: Vec<Duration>,
    total: Vec<Duration>,
    failed: usize,
}

impl Samples {
    fn line(&mut self, name: &str, wall: Duration) -> String {
        format!(
            "{name}: {} ok ({:.0} req/s), failed {}, TTFB p50 {} p99 {}, total p50 {} p99 {}",
            self.ttfb.len(),
            self.ttfb.len() as f64 / wall.as_secs_f64(),
            self.failed,
            ms(pct(&mut self.ttfb, 0.5)),
            ms(pct(&mut self.ttfb, 0.99)),
            ms(pct(&mut self.total, 0.5)),
            ms(pct(&mut self.total, 0.99))
        )
    }
}

struct Load {
    targets: Vec<Target>,
    workers: usize,
    requests: usize,
    /// Open loop: request k starts at k / rate seconds.
    rate: Option<f64>,
    /// X-Sim-Fault of every request (e.g. a slow drip).
    sim_header: Option<&'static str>,
    max_tokens: u32,
}

/// Request k goes to `targets[k % len]`; samples per target.
async fn run(http: &reqwest::Client, l: &Load) -> (Vec<Samples>, Duration) {
    let body = serde_json::json!({
        "model": "openai/gpt-4o-mini", "stream": true, "max_tokens": l.max_tokens,
        "messages": [{"role": "user", "content": "benchmark"}]
    })
    .to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..l.workers {
        let (http, body, next) = (http.clone(), body.clone(), next.clone());
        let (targets, requests, rate, sim_header) =
            (l.targets.clone(), l.requests, l.rate, l.sim_header);
        tasks.push(tokio::spawn(async move {
            let mut out: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= requests {
                    break;
                }
                if let Some(r) = rate {
                    let at = started + Duration::from_secs_f64(k as f64 / r);
                    tokio::time::sleep_until(at.into()).await;
                }
                let (t, s) = (&targets[k % targets.len()], &mut out[k % targets.len()]);
                let t0 = Instant::now();
                let mut rb = http
                    .post(&t.url)
                    .bearer_auth(t.token)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(h) = sim_header {
                    rb = rb.header("x-sim-fault", h);
                }
                let r = match rb.send().await {
                    Ok(r) if r.status().is_success() => r,
                    _ => {
                        s.failed += 1;
                        continue;
                    }
                };
                let mut stream = r.bytes_stream();
                let mut first = None;
                let mut ok = true;
                while let Some(c) = stream.next().await {
                    if c.is_err() {
                        ok = false;
                        break;
                    }
                    first.get_or_insert_with(|| t0.elapsed());
                }
                if ok {
                    s.ttfb.push(first.unwrap_or_else(|| t0.elapsed()));
                    s.total.push(t0.elapsed());
                } else {
                    s.failed += 1;
                }
            }
            out
        }));
    }
    let mut all: Vec<Samples> = l.targets.iter().map(|_| Samples::default()).collect();
    for t in tasks {
        for (a, b) in all.iter_mut().zip(t.await.unwrap()) {
            a.ttfb.extend(b.ttfb);
            a.total.extend(b.total);
            a.failed += b.failed;
        }
    }
    (all, started.elapsed())
}

/// Samples the tracker's RSS and open file descriptors every 20 ms while alive.
struct Sampler {
    peak_rss: Arc<AtomicU64>,
    peak_fds: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (peak_rss, peak_fds) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (r, f) = (peak_rss.clone(), peak_fds.clone());
        let task = tokio::spawn(async move {
            loop {
                r.fetch_max(rss_kib(pid), Ordering::Relaxed);
                let n = std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.count() as u64)
                    .unwrap_or(0);
                f.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Sampler {
            peak_rss,
            peak_fds,
            task,
        }
    }

    fn stop(self, pid: u32) -> String {
        self.task.abort();
        format!(
            "tracker RSS peak {} ({} threads, peak {} open fds: inbound + upstream sockets)",
            mib(self.peak_rss.load(Ordering::Relaxed)),
            status_field(pid, "Threads:"),
            self.peak_fds.load(Ordering::Relaxed)
        )
    }
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
            .unwrap_or(4000);
        let https = std::env::var("MAI_BENCH_UPSTREAM").as_deref() != Ok("http");
        // Short answers: 8 content chunks 2 ms apart after one keep-alive comment.
        let cfg = SimConfig {
            seed: 1,
            keepalive: KeepAlive {
                leading: 1,
                interval: Duration::ZERO,
                every_events: 0,
            },
            chunk_interval: Duration::from_millis(2),
            ..SimConfig::fast()
        };
        let sim = if https {
            OpenRouterSim::spawn_tls(cfg, TlsOptions::default()).await
        } else {
            OpenRouterSim::spawn(cfg).await
        }
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("sim-ca.pem");
        let mut client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true);
        if let Some(pem) = sim.ca_pem() {
            std::fs::write(&ca_path, pem).unwrap();
            client = client.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        let http = client.build().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        cmd.env_clear()
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
            .stdout(Stdio::null());
        if https {
            cmd.env("MAI_UPSTREAM_CA_CERT", &ca_path);
        }
        let mut child = cmd.spawn().expect("spawn mai-tracker");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "tracker did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = child.id();
        println!(
            "upstream: {} ({}); tracker idle RSS: {}",
            sim.base_url(),
            if https { "TLS, ALPN h2" } else { "plain HTTP/1.1" },
            mib(rss_kib(pid))
        );
        let direct = Target {
            url: format!("{}/chat/completions", sim.base_url()),
            token: DIRECT,
        };
        let proxied = Target {
            url: format!("{base}/v1/chat/completions"),
            token: PROXY,
        };
        let both = vec![direct.clone(), proxied.clone()];
        let load = |targets: Vec<Target>, workers, requests, rate| Load {
            targets,
            workers,
            requests,
            rate,
            sim_header: None,
            max_tokens: 32,
        };

        // Warm both paths up (connections, TLS sessions, allocator).
        run(&http, &load(both.clone(), 200, 2000, None)).await;

        for (title, l) in [
            (
                "open loop, 1,000 req/s, direct and proxied interleaved".to_owned(),
                load(both.clone(), 1000, requests, Some(1000.0)),
            ),
            (
                "closed loop, 100 workers alternating direct and proxied".to_owned(),
                load(both.clone(), 100, requests, None),
            ),
        ] {
            let sampler = Sampler::start(pid);
            let (mut s, wall) = run(&http, &l).await;
            println!("\n== {title}, {requests} requests ==");
            println!("{}", s[0].line("direct ", wall));
            println!("{}", s[1].line("proxied", wall));
            println!(
                "added  : TTFB p50 {} p99 {}, total p50 {} p99 {}",
                delta(pct(&mut s[1].ttfb, 0.5), pct(&mut s[0].ttfb, 0.5)),
                delta(pct(&mut s[1].ttfb, 0.99), pct(&mut s[0].ttfb, 0.99)),
                delta(pct(&mut s[1].total, 0.5), pct(&mut s[0].total, 0.5)),
                delta(pct(&mut s[1].total, 0.99), pct(&mut s[0].total, 0.99))
            );
            println!("{}", sampler.stop(pid));
        }

        // Memory scenarios start from a settled tracker: RSS is a high-water mark, and
        // the heap is only handed back on the tracker's idle tick.
        let settle = || async {
            let t0 = Instant::now();
            let mut last = rss_kib(pid);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let now = rss_kib(pid);
                if (now < last && now < 20 * 1024) || t0.elapsed() > Duration::from_secs(25) {
                    return now;
                }
                last = now;
            }
        };

        // 1,000 streams held open together, each ~1.6 s.
        let before = settle().await;
        println!(
            "\n== 1,000 streams held open at once (32 tokens, 50 ms apart); tracker RSS before: {} ==",
            mib(before)
        );
        let held = |t: Target| Load {
            targets: vec![t],
            workers: 1000,
            requests: 1000,
            rate: None,
            sim_header: Some("drip=50"),
            max_tokens: 32,
        };
        let sampler = Sampler::start(pid);
        let (mut p, wall) = run(&http, &held(proxied.clone())).await;
        let mem = sampler.stop(pid);
        let (mut d, dwall) = run(&http, &held(direct.clone())).await;
        println!("{}", d[0].line("direct ", dwall));
        println!("{}", p[0].line("proxied", wall));
        println!("{mem}");

        // 1,000 concurrent streams, closed loop: the machine saturates.
        let before = settle().await;
        println!(
            "\n== closed loop, 1,000 concurrent streams, 3,000 requests per path; tracker RSS before: {} ==",
            mib(before)
        );
        let sampler = Sampler::start(pid);
        let (mut p, wall) = run(&http, &load(vec![proxied.clone()], 1000, 3000, None)).await;
        let mem = sampler.stop(pid);
        let (mut d, dwall) = run(&http, &load(vec![direct.clone()], 1000, 3000, None)).await;
        println!("{}", d[0].line("direct ", dwall));
        println!("{}", p[0].line("proxied", wall));
        println!("{mem}");

        // Everything proxied was metered.
        let _ = http
            .post(format!("{base}/api/v1/sync"))
            .bearer_auth("bench-admin-token-000")
            .send()
            .await;
        let today: serde_json::Value = http
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
        println!("tracker RSS right after load: {}", mib(rss_kib(pid)));
        // Idle upstream connections expire 20-40 s after use and the tracker trims the heap
        // on its 10 s maintenance tick when nothing is in flight: wait for RSS to settle.
        let t0 = Instant::now();
        let mut last = rss_kib(pid);
        while t0.elapsed() < Duration::from_secs(90) && last > 15 * 1024 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            last = rss_kib(pid);
        }
        println!(
            "tracker RSS {:.0} s after load: {}",
            t0.elapsed().as_secs_f64(),
            mib(last)
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}
