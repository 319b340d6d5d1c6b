//! Prometheus metrics, kept as plain atomics (no registry crate needed for a dozen series).

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the proxy latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    pub proxy_requests: Mutex<BTreeMap<u16, u64>>,
    pub upstream_errors: Mutex<BTreeMap<String, u64>>,
    pub metered_confirmed: AtomicU64,
    pub metered_provisional: AtomicU64,
    pub tokens_prompt: AtomicU64,
    pub tokens_completion: AtomicU64,
    pub cost_usd: Mutex<Decimal>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pub inflight: AtomicU64,
    pub sync_runs: Mutex<BTreeMap<&'static str, u64>>,
    pub webhook_rejected: AtomicU64,
    /// Requests refused at their headers for a missing or wrong token ([`crate::limits`]).
    pub unauthorized: AtomicU64,
    /// Sync and key hand-over requests refused by the admin rate limit.
    pub admin_rate_limited: AtomicU64,
    /// Events refused at an ingestion path, by (path, reason): e.g. a manual record
    /// above the sanity caps is `("manual", "over_cap")`.
    pub events_refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Broadcast spans not recorded, by reason (`other_key`, `no_key_name`,
    /// `own_key_name_unknown`, `no_generation_id`).
    pub webhook_skipped: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests refused for their signed identity, by [`crate::identity::Rejection::reason`].
    pub identity_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Identity, chat, task or group header values that were not UTF-8 (kept lossy).
    pub identity_invalid_utf8: AtomicU64,
}

impl Metrics {
    pub fn observe_latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count_status(&self, status: u16) {
        *self
            .proxy_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    pub fn count_upstream_error(&self, what: String) {
        *self
            .upstream_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_default() += 1;
    }

    pub fn count_sync(&self, status: mai_wire::tracker::SyncStatus) {
        use mai_wire::tracker::SyncStatus;
        let outcome = match status {
            SyncStatus::Ok => "ok",
            SyncStatus::Partial => "partial",
            SyncStatus::Error => "error",
        };
        *self
            .sync_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn count_webhook_skipped(&self, reason: &'static str) {
        *self
            .webhook_skipped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn count_identity_rejected(&self, reason: &'static str) {
        *self
            .identity_rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Adds a metered cost to the counter. Checked: a sum that would overflow or lose
    /// digits leaves the counter as it is and says so once in the log (a metric, not a
    /// bill, so it must never take the proxy down).
    pub fn add_cost(&self, c: Decimal) {
        let mut g = self.cost_usd.lock().unwrap_or_else(|p| p.into_inner());
        match mai_core::usage::exact_add(*g, c) {
            Some(v) => *g = v,
            None => {
                tracing::warn!(cost = %c, total = %*g, "mai_cost_usd_total would overflow; not added")
            }
        }
    }

    pub fn count_refused(&self, path: &'static str, reason: &'static str) {
        *self
            .events_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((path, reason))
            .or_default() += 1;
    }

    /// Renders the text exposition format. `extra` lines (gauges owned elsewhere) are
    /// appended as given.
    pub fn render(&self, org: &str, extra: &[(&str, &str, String)]) -> String {
        let mut o = String::with_capacity(4096);
        let org = org.replace('"', "");
        let _ = writeln!(o, "# HELP mai_proxy_requests_total Proxied requests by upstream HTTP status.\n# TYPE mai_proxy_requests_total counter");
        for (s, n) in self
            .proxy_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "mai_proxy_requests_total{{org=\"{org}\",status=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_upstream_errors_total Upstream failures by status (or transport).\n# TYPE mai_upstream_errors_total counter");
        for (s, n) in self
            .upstream_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "mai_upstream_errors_total{{org=\"{org}\",status=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_metered_generations_total Generations metered by the proxy, by state.\n# TYPE mai_metered_generations_total counter");
        let _ = writeln!(
            o,
            "mai_metered_generations_total{{org=\"{org}\",state=\"confirmed\"}} {}",
            self.metered_confirmed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "mai_metered_generations_total{{org=\"{org}\",state=\"provisional\"}} {}",
            self.metered_provisional.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP mai_tokens_total Tokens metered by the proxy.\n# TYPE mai_tokens_total counter"
        );
        let _ = writeln!(
            o,
            "mai_tokens_total{{org=\"{org}\",kind=\"prompt\"}} {}",
            self.tokens_prompt.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "mai_tokens_total{{org=\"{org}\",kind=\"completion\"}} {}",
            self.tokens_completion.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP mai_cost_usd_total OpenRouter cost metered by the proxy (USD, exact decimal text).\n# TYPE mai_cost_usd_total counter");
        let _ = writeln!(
            o,
            "mai_cost_usd_total{{org=\"{org}\"}} {}",
            self.cost_usd
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .normalize()
        );
        let _ = writeln!(o, "# HELP mai_proxy_upstream_latency_seconds Time from request to upstream response headers.\n# TYPE mai_proxy_upstream_latency_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "mai_proxy_upstream_latency_seconds_bucket{{org=\"{org}\",le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "mai_proxy_upstream_latency_seconds_bucket{{org=\"{org}\",le=\"+Inf\"}} {count}"
        );
        let sum_us = self.latency_sum_us.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "mai_proxy_upstream_latency_seconds_sum{{org=\"{org}\"}} {}.{:06}",
            sum_us / 1_000_000,
            sum_us % 1_000_000
        );
        let _ = writeln!(
            o,
            "mai_proxy_upstream_latency_seconds_count{{org=\"{org}\"}} {count}"
        );
        let _ = writeln!(o, "# HELP mai_proxy_inflight Requests being proxied now.\n# TYPE mai_proxy_inflight gauge");
        let _ = writeln!(
            o,
            "mai_proxy_inflight{{org=\"{org}\"}} {}",
            self.inflight.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP mai_sync_runs_total Reconciliation runs by outcome.\n# TYPE mai_sync_runs_total counter");
        for (s, n) in self
            .sync_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "mai_sync_runs_total{{org=\"{org}\",outcome=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_webhook_rejected_total Webhook deliveries refused (secret header or body).\n# TYPE mai_webhook_rejected_total counter");
        let _ = writeln!(
            o,
            "mai_webhook_rejected_total{{org=\"{org}\"}} {}",
            self.webhook_rejected.load(Ordering::Relaxed)
        );
        for (name, help, v) in [
            (
                "mai_unauthorized_total",
                "Requests refused at their headers for a missing or wrong bearer token.",
                &self.unauthorized,
            ),
            (
                "mai_admin_rate_limited_total",
                "Sync and key hand-over requests refused by the admin rate limit (429).",
                &self.admin_rate_limited,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{org=\"{org}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP mai_events_refused_total Usage events refused at an ingestion path, by path and reason.\n# TYPE mai_events_refused_total counter");
        for ((path, reason), n) in self
            .events_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "mai_events_refused_total{{org=\"{org}\",path=\"{path}\",reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_webhook_spans_skipped_total Broadcast spans not recorded, by reason (other_key: another key's span).\n# TYPE mai_webhook_spans_skipped_total counter");
        for (r, n) in self
            .webhook_skipped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "mai_webhook_spans_skipped_total{{org=\"{org}\",reason=\"{r}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP mai_identity_rejected_total Requests refused, never forwarded, for a missing or invalid signed identity (X-OpenWebUI-User-Jwt), by reason.\n# TYPE mai_identity_rejected_total counter");
        {
            let rejected = self
                .identity_rejected
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for reason in crate::identity::Rejection::REASONS {
                let _ = writeln!(
                    o,
                    "mai_identity_rejected_total{{org=\"{org}\",reason=\"{reason}\"}} {}",
                    rejected.get(reason).copied().unwrap_or(0)
                );
            }
        }
        let _ = writeln!(o, "# HELP mai_identity_header_invalid_utf8_total Identity, chat, task or group header values that were not UTF-8 (kept with U+FFFD, not dropped).\n# TYPE mai_identity_header_invalid_utf8_total counter");
        let _ = writeln!(
            o,
            "mai_identity_header_invalid_utf8_total{{org=\"{org}\"}} {}",
            self.identity_invalid_utf8.load(Ordering::Relaxed)
        );
        for (name, help, line) in extra {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{line}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_counter_never_panics_near_decimal_max() {
        let m = Metrics::default();
        m.add_cost(Decimal::MAX);
        m.add_cost(Decimal::MAX); // would overflow: left as it was
        m.add_cost(Decimal::new(1, 28)); // would lose the digit: left as it was
        assert_eq!(*m.cost_usd.lock().unwrap(), Decimal::MAX);
        let m = Metrics::default();
        m.add_cost(Decimal::new(66, 5));
        m.add_cost(Decimal::new(1, 5));
        assert_eq!(*m.cost_usd.lock().unwrap(), Decimal::new(67, 5));
        m.count_refused("manual", "over_cap");
        assert!(m.render("acme", &[]).contains(
            "mai_events_refused_total{org=\"acme\",path=\"manual\",reason=\"over_cap\"} 1"
        ));
    }
}
