//! The simulator over HTTPS: ALPN picks HTTP/2 for clients that offer it, HTTP/1.1 for
//! the others, the made-up CA is what makes the certificate trusted, and the stream cap
//! per HTTP/2 connection is what was configured.

use futures::StreamExt;
use mai_sim::openrouter::{OpenRouterSim, SimConfig, TlsOptions};
use std::time::Duration;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000a1";

fn client(ca: &str, http1_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

fn chat(stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "openai/gpt-4o-mini", "stream": stream, "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}]
    })
}

#[tokio::test]
async fn https_negotiates_h2_or_http1_and_streams() {
    let sim = OpenRouterSim::spawn_tls(SimConfig::fast(), TlsOptions::default())
        .await
        .unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let ca = sim.ca_pem().unwrap().to_owned();
    let url = format!("{}/chat/completions", sim.base_url());
    for (http1_only, want) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let r = client(&ca, http1_only)
            .post(&url)
            .bearer_auth(KEY)
            .json(&chat(true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), want);
        assert_eq!(r.status(), 200);
        let mut body = String::new();
        let mut s = r.bytes_stream();
        while let Some(c) = s.next().await {
            body.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
        }
        assert!(body.contains("\"usage\""), "{body}");
        assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    }
    assert_eq!(sim.key_totals(KEY).generations, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_certificate_is_not_trusted_without_the_ca() {
    let sim = OpenRouterSim::spawn_tls(SimConfig::fast(), TlsOptions::default())
        .await
        .unwrap();
    let err = reqwest::Client::new()
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn streams_beyond_the_h2_cap_wait_on_one_connection() {
    // Long streams, a cap of 2: the third request on the same connection gets its first
    // byte only after one of the first two ended.
    let sim = OpenRouterSim::spawn_tls(
        SimConfig {
            chunk_interval: Duration::from_millis(40),
            ..SimConfig::fast()
        },
        TlsOptions { h2_max_streams: 2 },
    )
    .await
    .unwrap();
    let http = client(sim.ca_pem().unwrap(), false);
    let url = format!("{}/chat/completions", sim.base_url());
    // One request first, so the three below share its (HTTP/2) connection.
    let warm = http
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.version(), reqwest::Version::HTTP_2);
    let t0 = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(&url)
                .bearer_auth(KEY)
                .json(&chat(true))
                .send()
                .await
                .unwrap();
            let headers_at = t0.elapsed();
            let _ = r.bytes().await.unwrap();
            (headers_at, t0.elapsed())
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    times.sort();
    // (headers, end) per request, by headers time: the third waited for most of a stream.
    let stream_len = times[0].1 - times[0].0;
    assert!(
        times[2].0 > times[1].0 + stream_len / 2,
        "the third stream started before a slot was free: {times:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_binary_serves_https_and_writes_its_ca() {
    let exe = env!("CARGO_BIN_EXE_mai-sim");
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "openrouter",
            "--fast",
            "--listen",
            "127.0.0.1:0",
            "--tls-ca-out",
        ])
        .arg(&ca_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .await
    .unwrap();
    let base = line.trim().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    let r = client(&ca, false)
        .get(format!("{base}/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    child.kill().await.unwrap();

    // An unwritable CA path stops start-up with a message naming the flag.
    let out = tokio::process::Command::new(exe)
        .args(["openrouter", "--listen", "127.0.0.1:0", "--tls-ca-out"])
        .arg(dir.path().join("no/such/dir/ca.pem"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-ca-out"), "{err}");
}
