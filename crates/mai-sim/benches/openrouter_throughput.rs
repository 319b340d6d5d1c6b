//! The OpenRouter simulator's own ceiling on loopback: streamed (and plain) chat
//! completions per second with `SimConfig::fast()`, client in the same process.
//! The client shares the CPU, so the figures are a lower bound of the simulator alone.
//!
//! `cargo bench -p mai-sim --bench openrouter_throughput`
//! Env: `OR_BENCH_REQUESTS` (default 20000), `OR_BENCH_CONCURRENCY` (default 64).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mai_sim::openrouter::{OpenRouterSim, SimConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    bytes: usize,
}

async fn run(stream: bool, total: usize, concurrency: usize) -> anyhow::Result<Figures> {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await?;
    let url = format!("{}/chat/completions", sim.base_url());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let body = serde_json::json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "Summarise the invoice rules in two sentences."}],
        "stream": stream,
        "user": "bench"
    })
    .to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, url, body, next) = (client.clone(), url.clone(), body.clone(), next.clone());
        let key = format!("sk-or-v1-{:064x}", w % 8 + 1);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut bytes = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "status {}", r.status());
                let b = r.bytes().await?;
                anyhow::ensure!(
                    !stream || b.ends_with(b"data: [DONE]\n\n"),
                    "incomplete stream"
                );
                bytes += b.len();
                lat.push(t0.elapsed());
            }
            anyhow::Ok((lat, bytes))
        }));
    }
    let mut lat = Vec::new();
    let mut bytes = 0;
    for t in tasks {
        let (l, b) = t.await??;
        lat.extend(l);
        bytes += b;
    }
    let elapsed = start.elapsed();
    anyhow::ensure!(sim.generations().len() == total, "every request recorded");
    sim.shutdown().await;
    lat.sort();
    Ok(Figures {
        per_sec: total as f64 / elapsed.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        bytes,
    })
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let total = env_or("OR_BENCH_REQUESTS", 20_000);
    let concurrency = env_or("OR_BENCH_CONCURRENCY", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for stream in [true, false] {
        // Warm-up, then the measured run.
        rt.block_on(run(stream, 500, concurrency))?;
        let f = rt.block_on(run(stream, total, concurrency))?;
        println!(
            "openrouter sim, {}: {total} requests, concurrency {concurrency}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} KiB/req",
            if stream { "streamed" } else { "non-streamed" },
            f.per_sec,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.bytes as f64 / total as f64 / 1024.0
        );
    }
    Ok(())
}
