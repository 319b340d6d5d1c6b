//! KSeF's request limits (`docs/limity-api.md`) and the client-side pacing that keeps
//! us inside them. KSeF counts per (context NIP, IP) in sliding windows of 1 s, 60 s and
//! 1 h, all at once, and answers an excess with 429 and a block whose length grows with
//! repeated excesses. So we do not probe for the limit: every request waits for a free
//! slot in all three windows of its group first, and a 429 still arriving (another
//! program in the same context and IP, skewed clocks) pauses every group for its
//! `Retry-After`.

use crate::config::Environment;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Requests per sliding second, minute and hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_second: u32,
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Limit {
    const fn new(per_second: u32, per_minute: u32, per_hour: u32) -> Self {
        Self {
            per_second,
            per_minute,
            per_hour,
        }
    }

    const fn times(self, k: u32) -> Self {
        Self::new(
            self.per_second.saturating_mul(k),
            self.per_minute.saturating_mul(k),
            self.per_hour.saturating_mul(k),
        )
    }
}

/// The groups of endpoints this client calls, each with its own counters in KSeF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /sessions/online`, `POST /sessions/online/{ref}/close` (`onlineSession`).
    pub online_session: Limit,
    /// `POST /sessions/online/{ref}/invoices` (`invoiceSend`).
    pub invoice_send: Limit,
    /// `GET /sessions/{ref}/invoices/{invoiceRef}` (`invoiceStatus`).
    pub invoice_status: Limit,
    /// Other `GET /sessions/*`, among them the UPO downloads (`sessionMisc`).
    pub session_misc: Limit,
    /// Everything else that needs a token, e.g. `GET /rate-limits` (`other`).
    pub other: Limit,
    /// The public endpoints (`/auth/*`, `/security/public-key-certificates`): 60 per
    /// second per IP, not part of `GET /rate-limits`.
    pub public: Limit,
}

impl RateLimits {
    /// PRD's published defaults (`docs/limity-api.md`, 2025-11-22; DEMO replicates PRD).
    pub const PRODUCTION: RateLimits = RateLimits {
        online_session: Limit::new(10, 30, 120),
        invoice_send: Limit::new(10, 30, 180),
        invoice_status: Limit::new(30, 120, 1200),
        session_misc: Limit::new(10, 120, 1200),
        other: Limit::new(10, 30, 120),
        public: Limit::new(60, u32::MAX, u32::MAX),
    };

    /// What to pace by when `GET /rate-limits` cannot tell: TEST's defaults are ten
    /// times PRD's (`docs/limity-api.md`, "Środowisko TE"); DEMO copies PRD.
    pub fn published(env: Environment) -> RateLimits {
        let p = Self::PRODUCTION;
        match env {
            Environment::Test => RateLimits {
                online_session: p.online_session.times(10),
                invoice_send: p.invoice_send.times(10),
                invoice_status: p.invoice_status.times(10),
                session_misc: p.session_misc.times(10),
                other: p.other.times(10),
                public: p.public,
            },
            Environment::Demo | Environment::Prd => p,
        }
    }

    fn of(&self, g: Group) -> Limit {
        match g {
            Group::Public => self.public,
            Group::OnlineSession => self.online_session,
            Group::InvoiceSend => self.invoice_send,
            Group::InvoiceStatus => self.invoice_status,
            Group::SessionMisc => self.session_misc,
            Group::Other => self.other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Public,
    OnlineSession,
    InvoiceSend,
    InvoiceStatus,
    SessionMisc,
    Other,
}

const GROUPS: [Group; 6] = [
    Group::Public,
    Group::OnlineSession,
    Group::InvoiceSend,
    Group::InvoiceStatus,
    Group::SessionMisc,
    Group::Other,
];

type LimitOf = fn(&Limit) -> u32;

/// The windows are counted a little longer than KSeF's: a request leaves here some
/// milliseconds before KSeF counts it, and two that left 1.00 s apart may arrive 0.98 s
/// apart.
const WINDOWS: [(Duration, LimitOf); 3] = [
    (Duration::from_millis(1_100), |l| l.per_second),
    (Duration::from_secs(62), |l| l.per_minute),
    (Duration::from_secs(3_602), |l| l.per_hour),
];

/// One group's request start times within the longest window.
#[derive(Debug)]
pub(crate) struct Window {
    limit: Limit,
    starts: VecDeque<Instant>,
}

impl Window {
    pub(crate) fn new(limit: Limit) -> Self {
        Self {
            limit,
            starts: VecDeque::new(),
        }
    }

    /// Takes a slot at `now`, or says how long until one frees up in every window.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let longest = WINDOWS[WINDOWS.len() - 1].0;
        while let Some(&t) = self.starts.front() {
            if now.saturating_duration_since(t) >= longest {
                self.starts.pop_front();
            } else {
                break;
            }
        }
        let mut wait = Duration::ZERO;
        for (len, limit_of) in WINDOWS {
            let limit = limit_of(&self.limit).max(1) as usize;
            // Start times are in order, so the ones inside this window are a suffix.
            let first_inside = self
                .starts
                .partition_point(|&t| now.saturating_duration_since(t) >= len);
            let inside = self.starts.len() - first_inside;
            if inside >= limit {
                // The oldest `inside - limit + 1` must leave the window first.
                let leaving = self.starts[first_inside + (inside - limit)];
                wait = wait.max((leaving + len).saturating_duration_since(now));
            }
        }
        if wait.is_zero() {
            self.starts.push_back(now);
            Ok(())
        } else {
            Err(wait)
        }
    }

    fn set_limit(&mut self, limit: Limit) {
        self.limit = limit;
    }
}

/// The client's pacing: one [`Window`] per group, and a pause after a 429.
#[derive(Debug)]
pub(crate) struct Limiter {
    windows: Mutex<Vec<Window>>,
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            windows: Mutex::new(GROUPS.iter().map(|&g| Window::new(limits.of(g))).collect()),
            paused_until: Mutex::new(None),
        }
    }

    pub(crate) fn set_limits(&self, limits: RateLimits) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &g) in GROUPS.iter().enumerate() {
            w[i].set_limit(limits.of(g));
        }
    }

    /// Waits until a request of group `g` may start, and counts it.
    pub(crate) async fn acquire(&self, g: Group) {
        let index = GROUPS.iter().position(|&x| x == g).unwrap_or(0);
        loop {
            let now = Instant::now();
            let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = paused.filter(|&u| u > now) {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let r = self.windows.lock().unwrap_or_else(|p| p.into_inner())[index].try_take(now);
            match r {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// After a 429: nothing starts before `d` has passed (KSeF blocks the context and IP,
    /// and a request during the block may lengthen it).
    pub(crate) fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if p.is_none_or(|old| old < until) {
            *p = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes slots as early as the window allows, from `t0`, and returns the start times.
    fn schedule(limit: Limit, n: usize) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut w = Window::new(limit);
        let mut now = t0;
        let mut out = Vec::new();
        while out.len() < n {
            match w.try_take(now) {
                Ok(()) => out.push(now - t0),
                Err(wait) => {
                    assert!(!wait.is_zero());
                    now += wait;
                }
            }
        }
        out
    }

    fn max_in_any(starts: &[Duration], window: Duration) -> usize {
        starts
            .iter()
            .map(|&s| starts.iter().filter(|&&t| t >= s && t - s < window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_exceeds_any_published_window() {
        // PRD invoice sending: 10/s, 30/min, 180/h.
        let l = RateLimits::PRODUCTION.invoice_send;
        let starts = schedule(l, 200);
        assert_eq!(max_in_any(&starts, Duration::from_secs(1)), 10);
        assert_eq!(max_in_any(&starts, Duration::from_secs(60)), 30);
        assert_eq!(max_in_any(&starts, Duration::from_secs(3600)), 180);
        // The first 10 go at once, the next 10 after the (padded) second.
        assert!(starts[..10].iter().all(|d| d.is_zero()));
        assert_eq!(starts[10], Duration::from_millis(1_100));
        // 181 requests need more than an hour: the 181st waits for the first to age out.
        assert!(
            starts[180] >= Duration::from_secs(3_600),
            "{:?}",
            starts[180]
        );
    }

    #[test]
    fn two_hundred_invoices_fit_in_a_minute_only_at_test_limits() {
        let test = RateLimits::published(Environment::Test);
        assert_eq!(test.invoice_send, Limit::new(100, 300, 1800));
        assert_eq!(test.invoice_status, Limit::new(300, 1200, 12_000));
        let starts = schedule(test.invoice_send, 200);
        assert!(starts[199] < Duration::from_secs(3), "{:?}", starts[199]);
        let prd = schedule(RateLimits::published(Environment::Prd).invoice_send, 200);
        assert!(prd[199] > Duration::from_secs(3_600), "{:?}", prd[199]);
        assert_eq!(
            RateLimits::published(Environment::Demo),
            RateLimits::PRODUCTION
        );
    }

    #[test]
    fn slots_free_up_as_the_window_slides() {
        let mut w = Window::new(Limit::new(2, 100, 1000));
        let t0 = Instant::now();
        w.try_take(t0).unwrap();
        w.try_take(t0 + Duration::from_millis(500)).unwrap();
        let wait = w.try_take(t0 + Duration::from_millis(600)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500)); // the first leaves at 1.1 s
        w.try_take(t0 + Duration::from_millis(1_100)).unwrap();
    }

    #[tokio::test]
    async fn acquire_returns_at_once_below_the_limit() {
        let l = Limiter::new(RateLimits::PRODUCTION);
        let t = std::time::Instant::now();
        for _ in 0..10 {
            l.acquire(Group::InvoiceSend).await;
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        l.set_limits(RateLimits::published(Environment::Test));
        for _ in 0..50 {
            l.acquire(Group::InvoiceSend).await;
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn a_pause_holds_every_group() {
        let l = Limiter::new(RateLimits::PRODUCTION);
        l.pause(Duration::from_millis(200));
        l.pause(Duration::from_millis(50)); // a shorter pause does not shorten it
        let t = std::time::Instant::now();
        l.acquire(Group::InvoiceStatus).await;
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
}
