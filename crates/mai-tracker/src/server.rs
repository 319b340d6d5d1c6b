//! The accept loop: HTTP/1.1 connections from the chat app (and the console), served
//! by hyper directly rather than through `axum::serve`, for two settings axum does not
//! expose and a thousand concurrent streams need:
//!
//! - `half_close`: while a response is in progress hyper otherwise keeps reading the
//!   socket to notice a client that hung up, and that read needs a buffer while the
//!   request's bytes are still referenced by the handler, so every streaming connection
//!   ended up holding a second, doubled (16 KB) read buffer. A client that goes away is
//!   still noticed: the next chunk written to it fails, the stream is dropped, the
//!   upstream request is cancelled and the generation is recorded (provisional).
//! - a header read timeout, so idle half-open sockets cannot pile up.
//!
//! Each connection also gets the read and send deadlines of [`crate::limits::TimedIo`],
//! and at most `max_connections` are served at once: past that, the loop stops accepting
//! and new connections wait in the kernel's listen queue (nginx's `worker_connections`),
//! so a flood of idle sockets cannot exhaust file descriptors or memory.
//!
//! Shutdown: stop accepting, ask every connection to finish its current response, and
//! return when all are done (the caller bounds that with the drain timeout).

use crate::limits::{Limits, TimedIo};
use crate::shutdown::Shutdown;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Serves `app` on `listener` until `shutdown` fires and open connections are done;
/// with `tls`, every connection is a TLS one ([`crate::tls`]): there is no plain-text
/// fallback on the same port. The handshake runs in the connection's task, bounded by
/// the header timeout, so a slow handshake cannot hold the accept loop.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut builder = http1::Builder::new();
    builder
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // A free slot first, then a connection: at the cap, sockets queue in the kernel.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: the socket stays queued.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        // Small SSE writes must leave at once: with Nagle's algorithm on, the last chunks
        // of a stream on a kept-alive connection waited ~40 ms for the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let io = TimedIo::new(tcp, limits.client_idle, limits.send_timeout);
        let service = TowerToHyperService::new(app.clone());
        let Some(acceptor) = acceptor.clone() else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(slot);
            });
            continue;
        };
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    // A client that does not trust or speak TLS (plain HTTP, a wrong pin).
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = watcher.watch(builder.serve_connection(TokioIo::new(tls), service));
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    // Asks each connection to finish its current response; returns when all have ended.
    graceful.shutdown().await;
}
