//! The proxy's connections to OpenRouter.
//!
//! Over HTTPS, OpenRouter is reached with HTTP/2 (ALPN) and one connection carries many
//! streams: that is what keeps the tracker small at a thousand concurrent streams (an
//! HTTP/1.1 upstream connection costs ~25 KB of hyper's buffers, an HTTP/2 stream a
//! few). But a server caps the streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS)
//! and a reqwest/hyper client keeps one HTTP/2 connection per host, queueing requests
//! beyond the cap until earlier streams end: a burst of chats would wait on each other.
//! So requests are spread over *lanes*, each a client with its own pool, each carrying at
//! most `per_lane` requests at once; a lane is added when all are full. With an HTTP/1.1
//! upstream (the plain-HTTP simulator) lanes only partition the connection pool.
//!
//! A new lane's first burst would race: before ALPN has answered, every request on it
//! opens its own TLS connection, and all but one are thrown away after the handshake
//! (measured: 1,000 streams on cold lanes cost ~12 MB of TLS state at the peak). So at
//! start-up one TLS handshake (no HTTP request) asks the upstream for ALPN, and once it
//! (or any response) has shown HTTP/2, lanes are built for HTTP/2 directly: hyper then
//! opens one connection per lane and queues the burst on it. A transport error on such a
//! lane retires it and puts new lanes back on ALPN, so an upstream that stopped speaking
//! HTTP/2 is followed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

struct Lane {
    http: reqwest::Client,
    inflight: AtomicUsize,
    /// Built for HTTP/2 without ALPN.
    h2_only: bool,
    /// Takes no new requests (an HTTP/2-only lane that could not reach the upstream).
    retired: AtomicBool,
}

/// Upstream clients for proxied traffic (no overall timeout: streams can be long).
pub struct Upstream {
    lanes: RwLock<Vec<Arc<Lane>>>,
    per_lane: usize,
    ca: Vec<reqwest::Certificate>,
    ca_pem: Option<Vec<u8>>,
    /// The upstream answered over HTTP/2: build new lanes for it without ALPN racing.
    h2: AtomicBool,
    /// Longest silence between two reads of a response ([`crate::limits`]).
    idle: Duration,
}

/// One request's claim on a lane: hold it until the response body is done.
pub struct LaneGuard(Arc<Lane>);

impl LaneGuard {
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Upstream {
    /// `ca_pem`: extra trusted CAs (validated by the configuration already).
    /// `idle`: a response that sends nothing for this long is cut (a stalled upstream).
    pub fn new(
        per_lane: usize,
        ca_pem: Option<&[u8]>,
        idle: Duration,
    ) -> reqwest::Result<Upstream> {
        let ca = match ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)?,
            None => Vec::new(),
        };
        let up = Upstream {
            lanes: RwLock::new(Vec::new()),
            per_lane: per_lane.max(1),
            ca,
            ca_pem: ca_pem.map(<[u8]>::to_vec),
            h2: AtomicBool::new(false),
            idle,
        };
        // Build one lane now, so a bad TLS setup fails at start-up, not on a request.
        let first = up.build_lane()?;
        up.lanes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(first);
        Ok(up)
    }

    fn build_lane(&self) -> reqwest::Result<Arc<Lane>> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Per read, not per response: a stream may last minutes, but not in silence.
            .read_timeout(self.idle)
            // Idle connections (HTTP/1.1: ~30 KB of buffers each) expire soon after a
            // burst, and the heap is trimmed once nothing is in flight.
            .pool_max_idle_per_host(self.per_lane)
            .pool_idle_timeout(Duration::from_secs(20))
            // Keeps a quiet HTTP/2 connection from being dropped by middleboxes.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(false)
            .tcp_nodelay(true);
        for c in &self.ca {
            b = b.add_root_certificate(c.clone());
        }
        let h2_only = self.h2.load(Ordering::Relaxed);
        if h2_only {
            b = b.http2_prior_knowledge();
        }
        Ok(Arc::new(Lane {
            http: b.build()?,
            inflight: AtomicUsize::new(0),
            h2_only,
            retired: AtomicBool::new(false),
        }))
    }

    /// A lane with room for one more request (a new lane when all are full).
    pub fn acquire(&self) -> reqwest::Result<LaneGuard> {
        if let Some(g) = self.try_claim(&self.lanes.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(g);
        }
        let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = self.try_claim(&lanes) {
            return Ok(g);
        }
        let lane = self.build_lane()?;
        lane.inflight.store(1, Ordering::Relaxed);
        lanes.retain(|l| {
            !(l.retired.load(Ordering::Relaxed) && l.inflight.load(Ordering::Relaxed) == 0)
        });
        lanes.push(lane.clone());
        tracing::debug!(lanes = lanes.len(), "upstream lane added");
        Ok(LaneGuard(lane))
    }

    fn try_claim(&self, lanes: &[Arc<Lane>]) -> Option<LaneGuard> {
        lanes.iter().find_map(|lane| {
            if lane.retired.load(Ordering::Relaxed) {
                return None;
            }
            lane.inflight
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                    (n < self.per_lane).then_some(n + 1)
                })
                .ok()
                .map(|_| LaneGuard(lane.clone()))
        })
    }

    /// Learns by one TLS handshake whether the upstream speaks HTTP/2 (ALPN), and if so
    /// rebuilds the idle lanes for it. Plain-HTTP upstreams are left alone. Returns the
    /// protocol the server chose, if any.
    pub async fn probe(&self, base_url: &str) -> Result<Option<String>, String> {
        let url = reqwest::Url::parse(base_url).map_err(|e| e.to_string())?;
        if url.scheme() != "https" {
            return Ok(None);
        }
        let host = url.host_str().ok_or("no host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let alpn = tokio::time::timeout(Duration::from_secs(5), self.alpn_of(&host, port))
            .await
            .map_err(|_| format!("no TLS answer from {host}:{port} within 5 s"))??;
        if alpn.as_deref() == Some("h2") {
            self.h2.store(true, Ordering::Relaxed);
            let lane = self.build_lane().map_err(|e| e.to_string())?;
            let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
            if lanes
                .iter()
                .all(|l| l.inflight.load(Ordering::Relaxed) == 0)
            {
                *lanes = vec![lane];
            }
        }
        Ok(alpn)
    }

    async fn alpn_of(&self, host: &str, port: u16) -> Result<Option<String>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &self.ca_pem {
            for c in CertificateDer::pem_slice_iter(pem).flatten() {
                let _ = roots.add(c);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
        Ok(tls
            .get_ref()
            .1
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()))
    }

    /// The extra trusted CAs (`MAI_UPSTREAM_CA_CERT`), for the accounting client too.
    pub fn extra_roots(&self) -> &[reqwest::Certificate] {
        &self.ca
    }

    /// Called with every upstream response's HTTP version.
    pub fn saw_version(&self, v: reqwest::Version) {
        if v == reqwest::Version::HTTP_2 && !self.h2.load(Ordering::Relaxed) {
            self.h2.store(true, Ordering::Relaxed);
        }
    }

    /// Whether new lanes are built for HTTP/2.
    pub fn speaks_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    /// Called when a request on `lane` could not reach the upstream at all.
    pub fn saw_transport_error(&self, lane: &LaneGuard) {
        self.h2.store(false, Ordering::Relaxed);
        if lane.0.h2_only {
            lane.0.retired.store(true, Ordering::Relaxed);
        }
    }

    /// Lanes built so far and requests in flight on them (status and tests).
    pub fn load(&self) -> Vec<usize> {
        self.lanes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| l.inflight.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_fill_up_then_grow_and_free_on_drop() {
        let up = Upstream::new(2, None, Duration::from_secs(120)).unwrap();
        let a = up.acquire().unwrap();
        let b = up.acquire().unwrap();
        assert_eq!(up.load(), vec![2]);
        let c = up.acquire().unwrap();
        assert_eq!(up.load(), vec![2, 1]);
        drop(a);
        // The freed slot on the first lane is used before the second lane's.
        let d = up.acquire().unwrap();
        assert_eq!(up.load(), vec![2, 1]);
        drop((b, c, d));
        assert_eq!(up.load(), vec![0, 0]);
    }

    #[test]
    fn an_http2_lane_that_fails_is_retired_and_new_lanes_use_alpn() {
        let up = Upstream::new(2, None, Duration::from_secs(120)).unwrap();
        up.saw_version(reqwest::Version::HTTP_2);
        let a = up.acquire().unwrap();
        let b = up.acquire().unwrap();
        let c = up.acquire().unwrap(); // second lane, built for HTTP/2
        assert!(c.0.h2_only && !a.0.h2_only);
        up.saw_transport_error(&c);
        assert!(!up.speaks_h2());
        drop(c);
        drop(a);
        // The retired lane takes nothing; the first lane's free slot is used.
        let d = up.acquire().unwrap();
        assert!(!d.0.h2_only);
        let e = up.acquire().unwrap(); // both full: a new ALPN lane replaces the retired one
        assert!(!e.0.h2_only);
        assert_eq!(up.load(), vec![2, 1]);
        drop((b, d, e));
    }
}
