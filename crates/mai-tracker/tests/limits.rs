//! Limits and timeouts under hostile clients and a stalled upstream (issue 12):
//! slowloris, unauthenticated uploads, a drip-fed upstream, a connection cap, the admin
//! rate limit. Settings and defaults: `mai_tracker::limits`.

mod common;
use common::*;
use mai_core::usage::EventState;
use mai_sim::openrouter::{OpenRouterSim, SimConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_bodies_are_refused_at_their_headers() {
    let env = start(SimConfig::fast()).await;
    // 16 MiB announced, 1 KiB sent: the 401 must come without waiting for the rest.
    for token in ["", "Authorization: Bearer wrong-token-000000\r\n"] {
        let mut s = TcpStream::connect(addr_of(&env.base)).await.unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{token}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            16 << 20
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b' '; 1024]).await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the 401 came while the body was still unsent")
            .unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    }
    // The same for the admin API (a key hand-over body).
    let mut s = TcpStream::connect(addr_of(&env.base)).await.unwrap();
    s.write_all(
        format!(
            "PUT /api/v1/admin/openrouter-key HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {READ}\r\nContent-Length: {}\r\n\r\n{{",
            1 << 20
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("401 before the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    let metrics = env
        .get("/metrics", READ)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mai_unauthorized_total{org=\"acme\"} 3"),
        "{metrics}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The real binary, so its memory is its own: 50 unauthenticated 16 MiB uploads at once
/// (800 MiB offered) leave its RSS within a few MiB of where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_unauthenticated_16_mib_uploads_keep_memory_bounded() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = env_map(&sim.base_url(), &dir.path().join("t.sqlite"), "acme");
    env.insert("MAI_TRACKER_LISTEN", format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG", "warn".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mai-tracker"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually("tracker ready", Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let before = rss_kib(child.id());
    let chunk = vec![b'a'; 64 * 1024];
    let uploads = (0..50).map(|_| {
        let addr = addr_of(&base);
        let chunk = chunk.clone();
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                16 << 20
            );
            s.write_all(head.as_bytes()).await.unwrap();
            // Keep sending until the server stops taking bytes (it answered and closed).
            let mut sent = 0usize;
            while sent < 16 << 20 {
                match tokio::time::timeout(Duration::from_secs(5), s.write_all(&chunk)).await {
                    Ok(Ok(())) => sent += chunk.len(),
                    _ => break,
                }
            }
            let (reply, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
            (reply, sent)
        })
    });
    let mut refused = 0;
    for u in uploads {
        let (reply, _sent) = u.await.unwrap();
        if reply.starts_with("HTTP/1.1 401") {
            refused += 1;
        }
    }
    let after = rss_kib(child.id());
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(refused, 50, "every upload answered 401");
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB for 50 refused uploads"
    );
}

/// Slowloris: connections that drip their headers are closed at the header timeout,
/// and with the connection cap reached a real request waits for a slot, then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_the_cap_holds() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[
            ("MAI_TRACKER_HEADER_TIMEOUT_SECONDS", "1"),
            ("MAI_TRACKER_MAX_CONNECTIONS", "4"),
        ],
    )
    .await;
    let addr = addr_of(&tracker.base_url());
    let mut lorises = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        lorises.push(s);
    }
    // The cap is reached: a real request waits for a slot, which frees at the timeout.
    let started = Instant::now();
    let drip = tokio::spawn(async move {
        let mut closed = 0;
        for mut s in lorises {
            // One more header byte now and then: the timeout is for the whole head.
            let _ = s.write_all(b"X").await;
            let (_, c) = read_until_closed(&mut s, Duration::from_secs(5)).await;
            closed += usize::from(c);
        }
        closed
    });
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", tracker.base_url()))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "served at once although 4 of 4 connections were taken ({:?})",
        started.elapsed()
    );
    assert_eq!(drip.await.unwrap(), 4, "every slowloris connection closed");
    tracker.shutdown().await.unwrap();
}

/// A body that stops arriving ends the connection at the client idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_cut() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[("MAI_TRACKER_CLIENT_IDLE_SECONDS", "1")],
    )
    .await;
    let mut s = TcpStream::connect(addr_of(&tracker.base_url()))
        .await
        .unwrap();
    s.write_all(
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PROXY}\r\nContent-Length: 1000\r\n\r\n{{\"model\":")
            .as_bytes(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "connection closed");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(sim.generations().len(), 0, "nothing reached OpenRouter");
    tracker.shutdown().await.unwrap();
}

/// An upstream that goes quiet mid-stream: the stream ends at the upstream idle timeout
/// and the generation is recorded as provisional (reconciliation fetches its cost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_fed_upstream_ends_at_the_idle_timeout_and_is_recorded() {
    let sim = OpenRouterSim::spawn(SimConfig {
        generation_ready_delay: mai_sim::openrouter::NEVER,
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[("MAI_UPSTREAM_IDLE_SECONDS", "1")],
    )
    .await;
    let t = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", tracker.base_url()))
        .bearer_auth(PROXY)
        .header("X-Sim-Fault", "drip=3000")
        .json(&body(true, Some("u-drip")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await;
    assert!(
        text.is_err(),
        "the stream ended without its clean end: {text:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "cut at the 1 s idle timeout, not after the 3 s drip ({:?})",
        t.elapsed()
    );
    tracker.state.writer.flush().await.unwrap();
    let ledger = mai_core::ledger::Ledger::open(&dir.path().join("tracker.sqlite")).unwrap();
    let page = ledger.events_since(0, 10).unwrap();
    assert_eq!(page.events.len(), 1, "the generation is in the ledger");
    assert_eq!(page.events[0].event.state, EventState::Provisional);
    tracker.shutdown().await.unwrap();
}

/// Sync and key hand-over: a burst, then 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_work_is_rate_limited() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[
            ("MAI_TRACKER_ADMIN_BURST", "2"),
            ("MAI_TRACKER_ADMIN_PER_MINUTE", "1"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let sync = || {
        http.post(format!("{}/api/v1/sync", tracker.base_url()))
            .bearer_auth(ADMIN)
            .send()
    };
    assert_eq!(sync().await.unwrap().status(), 200);
    assert_eq!(sync().await.unwrap().status(), 200);
    let r = sync().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.text().await.unwrap().contains("MAI_TRACKER_ADMIN_BURST"));
    // Reads are not limited.
    for _ in 0..5 {
        let s = http
            .get(format!("{}/api/v1/status", tracker.base_url()))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 200);
    }
    tracker.shutdown().await.unwrap();
}
