//! `mai-tracker`: configured from the environment (see docs/tracker-api.md and the README).

use anyhow::Context;
use mai_tracker::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // `mai-tracker healthcheck`: for Docker's HEALTHCHECK in a FROM-scratch image (no curl).
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        std::process::exit(healthcheck());
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mai-tracker: configuration error: {e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match cfg.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    mai_core::alloc::limit_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let tracker = mai_tracker::start(cfg).await?;
        wait_for_signal().await;
        tracing::info!("shutdown requested: draining in-flight requests");
        tracker.shutdown().await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// GET /healthz on the configured port (over TLS when the tracker serves HTTPS); exit
/// code 0 when it answers 200.
fn healthcheck() -> i32 {
    use std::io::{Read, Write};
    let listen = std::env::var("MAI_TRACKER_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let port = listen.rsplit(':').next().unwrap_or("8080");
    let addr = format!("127.0.0.1:{port}");
    let timeout = std::time::Duration::from_secs(3);
    let Ok(sock) = addr.parse() else { return 1 };
    let Ok(s) = std::net::TcpStream::connect_timeout(&sock, timeout) else {
        eprintln!("healthcheck: cannot connect to {addr}");
        return 1;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut buf = [0u8; 64];
    let tls = Config::from_env().ok().and_then(|c| c.tls);
    let n = match tls {
        None => {
            let mut s = s;
            if s.write_all(req).is_err() {
                return 1;
            }
            s.read(&mut buf).unwrap_or(0)
        }
        Some(src) => {
            // Trust exactly the certificate this tracker serves (read from its file).
            let Ok(server) = mai_tracker::tls::TlsServer::load(&src) else {
                return 1;
            };
            let Ok(mut conn) = mai_tracker::tls::loopback_client(&server.fingerprint) else {
                return 1;
            };
            let mut s = s;
            let mut stream = rustls::Stream::new(&mut conn, &mut s);
            if stream.write_all(req).is_err() {
                return 1;
            }
            stream.read(&mut buf).unwrap_or(0)
        }
    };
    if buf[..n].starts_with(b"HTTP/1.1 200") {
        0
    } else {
        1
    }
}
