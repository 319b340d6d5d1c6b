//! Limits and timeouts on both sides of the proxy (issue 12), in one place.
//!
//! The defaults follow what nginx and Envoy ship, adjusted to a chat app that is the only
//! legitimate client:
//!
//! | limit | default | modelled on |
//! |---|---|---|
//! | request body | 4 MiB (`MAI_TRACKER_MAX_BODY_BYTES`) | nginx `client_max_body_size` (1 MiB), raised for long chat histories |
//! | request headers | 30 s to arrive (`MAI_TRACKER_HEADER_TIMEOUT_SECONDS`) | nginx `client_header_timeout` (60 s) |
//! | client read inactivity | 60 s (`MAI_TRACKER_CLIENT_IDLE_SECONDS`): a body that stops arriving, or a kept-alive connection with nothing to say | nginx `client_body_timeout` / `keepalive_timeout` |
//! | client send stall | 60 s (`MAI_TRACKER_SEND_TIMEOUT_SECONDS`): a client that stops reading a stream | nginx `send_timeout` (60 s) |
//! | upstream inactivity | 120 s (`MAI_UPSTREAM_IDLE_SECONDS`): no byte from OpenRouter (it sends `: OPENROUTER PROCESSING` comments while a model thinks) | nginx `proxy_read_timeout`, Envoy `stream_idle_timeout` |
//! | connections | 4096 at once (`MAI_TRACKER_MAX_CONNECTIONS`); beyond, new ones wait in the listen queue | nginx `worker_connections`, Envoy `max_connections` |
//! | admin work (sync, key hand-over) | bursts of 5, then 1 per 6 s (`MAI_TRACKER_ADMIN_BURST`, `MAI_TRACKER_ADMIN_PER_MINUTE`) | nginx `limit_req` with `burst` |
//!
//! Authentication is checked before a body is read ([`require_role`] runs as a route
//! layer, ahead of the handlers' body extractors): an unauthenticated upload is answered
//! 401 at its headers, and its bytes are never buffered.
//!
//! A stream cut by either timeout is recorded like any cut stream: its generation id is
//! in the crash journal, the event is provisional, and reconciliation fetches its cost.

use crate::auth::Role;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The limits of one tracker; see the module table for what each bounds and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub header_timeout: Duration,
    pub client_idle: Duration,
    pub send_timeout: Duration,
    pub upstream_idle: Duration,
    pub max_connections: usize,
    pub admin_burst: u32,
    pub admin_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout: Duration::from_secs(30),
            client_idle: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            upstream_idle: Duration::from_secs(120),
            max_connections: 4096,
            admin_burst: 5,
            admin_per_minute: 10,
        }
    }
}

/// A limit setting that is not a number in its range: names the setting and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {name}={value:?} is invalid: must be a whole number from {min} to {max}")]
pub struct LimitError {
    pub name: &'static str,
    pub value: String,
    pub min: u64,
    pub max: u64,
}

impl Limits {
    /// Reads the settings of the module table; unset ones keep their defaults.
    pub fn from_lookup(var: impl Fn(&'static str) -> Option<String>) -> Result<Limits, LimitError> {
        let num = |name: &'static str, default: u64, min: u64, max: u64| match var(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(LimitError {
                    name,
                    value: v,
                    min,
                    max,
                }),
            },
        };
        let d = Limits::default();
        let secs = |name, default: Duration| {
            num(name, default.as_secs(), 1, 86_400).map(Duration::from_secs)
        };
        Ok(Limits {
            max_body_bytes: num(
                "MAI_TRACKER_MAX_BODY_BYTES",
                d.max_body_bytes as u64,
                1024,
                1 << 30,
            )? as usize,
            header_timeout: secs("MAI_TRACKER_HEADER_TIMEOUT_SECONDS", d.header_timeout)?,
            client_idle: secs("MAI_TRACKER_CLIENT_IDLE_SECONDS", d.client_idle)?,
            send_timeout: secs("MAI_TRACKER_SEND_TIMEOUT_SECONDS", d.send_timeout)?,
            upstream_idle: secs("MAI_UPSTREAM_IDLE_SECONDS", d.upstream_idle)?,
            max_connections: num(
                "MAI_TRACKER_MAX_CONNECTIONS",
                d.max_connections as u64,
                1,
                1_000_000,
            )? as usize,
            admin_burst: num("MAI_TRACKER_ADMIN_BURST", d.admin_burst.into(), 1, 1000)? as u32,
            admin_per_minute: num(
                "MAI_TRACKER_ADMIN_PER_MINUTE",
                d.admin_per_minute.into(),
                1,
                60_000,
            )? as u32,
        })
    }
}

/// Route layer: the bearer token of `role`, checked from the headers alone, before any
/// handler reads the body.
pub async fn require_role(
    State((st, role)): State<(Arc<AppState>, Role)>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(r) = crate::api::require(&st, req.headers(), role) {
        st.metrics
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return r;
    }
    next.run(req).await
}

/// Route layer for the admin endpoints that start work upstream (sync, key hand-over):
/// a token bucket, so a script in a loop cannot hammer OpenRouter through us.
pub async fn admin_rate_limit(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    match st.admin_bucket.take(Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            st.metrics
                .admin_rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = crate::api::error_response(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "too many sync or key hand-over requests; retry in {secs} s \
                     (limit: MAI_TRACKER_ADMIN_BURST at once, then MAI_TRACKER_ADMIN_PER_MINUTE)"
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            r
        }
    }
}

/// A token bucket: `burst` at once, refilled at `per_minute`.
#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    per_sec: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(burst: u32, per_minute: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            burst: f64::from(burst),
            per_sec: f64::from(per_minute) / 60.0,
            state: Mutex::new((f64::from(burst), now)),
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.per_sec).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.per_sec))
        }
    }
}

/// A client connection with two deadlines hyper does not have: a read that stays
/// pending longer than `idle` (a body drip-fed or stopped, an idle kept-alive
/// connection) and a write that stays pending longer than `send` (a client that stopped
/// reading its stream) end the connection with `TimedOut`. A read is only pending while
/// hyper wants request bytes: with `half_close` it does not read during a response, so
/// a long stream is never cut by the read deadline.
pub struct TimedIo<T> {
    inner: T,
    idle: Duration,
    send: Duration,
    read_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    pub fn new(inner: T, idle: Duration, send: Duration) -> TimedIo<T> {
        TimedIo {
            inner,
            idle,
            send,
            read_deadline: None,
            write_deadline: None,
        }
    }
}

/// Passes a ready result through (and disarms the deadline); for a pending one, arms
/// the deadline on first sight and turns it into `TimedOut` once it has passed.
fn timed<T>(
    res: Poll<io::Result<T>>,
    slot: &mut Option<Pin<Box<Sleep>>>,
    after: Duration,
    cx: &mut Context<'_>,
    what: &str,
) -> Poll<io::Result<T>> {
    if res.is_ready() {
        *slot = None;
        return res;
    }
    let sleep = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} for {} s", after.as_secs()),
        ))),
        Poll::Pending => Poll::Pending,
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        timed(
            res,
            &mut this.read_deadline,
            this.idle,
            cx,
            "client sent nothing",
        )
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        timed(
            res,
            &mut this.write_deadline,
            this.send,
            cx,
            "client read nothing",
        )
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        timed(
            res,
            &mut this.write_deadline,
            this.send,
            cx,
            "client read nothing",
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn settings_parse_with_named_errors() {
        let l = Limits::from_lookup(|_| None).unwrap();
        assert_eq!(l, Limits::default());
        assert_eq!(l.max_body_bytes, 4 << 20);
        let e = Limits::from_lookup(|n| (n == "MAI_TRACKER_MAX_CONNECTIONS").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(e.name, "MAI_TRACKER_MAX_CONNECTIONS");
        assert!(e.to_string().contains("from 1 to"), "{e}");
        let l = Limits::from_lookup(|n| (n == "MAI_UPSTREAM_IDLE_SECONDS").then(|| "5".into()))
            .unwrap();
        assert_eq!(l.upstream_idle, Duration::from_secs(5));
    }

    #[test]
    fn bucket_allows_a_burst_then_paces() {
        let t0 = Instant::now();
        let b = TokenBucket::new(3, 60, t0);
        for _ in 0..3 {
            b.take(t0).unwrap();
        }
        let wait = b.take(t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        b.take(t0 + Duration::from_secs(1)).unwrap();
        b.take(t0 + Duration::from_secs(1)).unwrap_err();
    }

    // Real (short) time: tokio's paused clock would need its test-util feature, which
    // would change the workspace's one feature set.
    const IDLE: Duration = Duration::from_millis(150);
    const SEND: Duration = Duration::from_millis(250);

    #[tokio::test]
    async fn a_stalled_reader_or_writer_times_out() {
        // Reads: the peer says nothing.
        let (a, _b) = tokio::io::duplex(64);
        let mut io = TimedIo::new(a, IDLE, SEND);
        let t = std::time::Instant::now();
        let e = io.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= IDLE, "{:?}", t.elapsed());

        // Writes: the peer stops reading once the 64-byte pipe is full.
        let (a, _b) = tokio::io::duplex(64);
        let mut io = TimedIo::new(a, IDLE, SEND);
        let t = std::time::Instant::now();
        let e = io.write_all(&[1u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= SEND, "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn progress_resets_the_deadline() {
        // Four bytes, each 100 ms after the last: every gap is below the 150 ms
        // deadline, the whole exchange is longer than it, and every read succeeds.
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = TimedIo::new(a, IDLE, SEND);
        let writer = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(IDLE * 2 / 3).await;
                b.write_all(b"x").await.unwrap();
            }
            b
        });
        let t = std::time::Instant::now();
        let mut got = [0u8; 1];
        for _ in 0..4 {
            io.read_exact(&mut got).await.unwrap();
        }
        assert!(
            t.elapsed() > IDLE,
            "the reads spanned more than one deadline"
        );
        drop(writer.await.unwrap());
    }
}
