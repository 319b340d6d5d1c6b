//! Simulator of the NBP Web API (`api.nbp.pl`), exchange-rate tables A and C,
//! built from `shared/specs/nbp-and-invoicing.md` §1 ("Simulator must").
//!
//! It shares no code with mai-core's NBP client or calendar on purpose: a bug
//! cannot hide in both.
//!
//! # In-process use
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mai_sim::nbp::{NbpConfig, NbpSim, Fault};
//! use chrono::NaiveDate;
//!
//! let sim = NbpSim::spawn(NbpConfig::default()).await?;   // 127.0.0.1:ephemeral
//! let base = sim.base_url();                               // "http://127.0.0.1:PORT/api"
//! sim.set_now(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap().and_hms_opt(10, 0, 0).unwrap());
//! // GET {base}/exchangerates/rates/a/usd/2026-11-09/2026-11-20/?format=json
//! let truth = sim.rate_a("USD", NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
//! sim.set_fault(Fault::status(503).times(2));              // next two API requests fail
//! assert_eq!(sim.requests_served(), 0);
//! sim.shutdown().await?;
//! # let _ = (base, truth); Ok(()) }
//! ```
//!
//! * [`NbpConfig`]: seed, [`Fixture`] (known rates + walk levels), pinned clock
//!   (`None` = real Europe/Warsaw time) and publication [`Cutoffs`] (A 11:45, C 7:45).
//! * [`NbpHandle`]: `base_url()`, `addr()`, `set_now()` (pins the Warsaw wall clock;
//!   it does not advance), `use_system_clock()`, `set_fault()` / `clear_faults()`,
//!   `requests_served()` (every `/api/…` request, errors and faults included),
//!   `requests()` (their paths and queries, in order),
//!   `rate_a()` / `rate_c()` (this instance's truth), `shutdown().await`.
//! * Pure functions: [`is_publication_day`], [`table_number`], [`rate_a`] and
//!   [`rate_c`] (the truth for `NbpConfig::default()`), [`previous_publication_day`].
//!
//! # HTTP surface
//!
//! `GET /api/exchangerates/rates/{a|c}/{code}/[last/{n}/|today/|{date}/|{start}/{end}/]`
//! and `GET /api/exchangerates/tables/{a|c}/[…same…]`; trailing slash optional, table,
//! code and keywords in any case. JSON by default; `?format=json|xml` wins over
//! `Accept`. Success: `Content-Type: application/json; charset=utf-8` (or
//! `application/xml; charset=utf-8`), `Cache-Control: no-cache`, `ETag`. Errors are
//! plain text with NBP's exact bodies and the message as HTTP/1 reason phrase, e.g.
//! `HTTP/1.1 404 Not Found - Brak danych` + body `404 NotFound - Not Found - Brak danych`.
//! Table B is not simulated (404).
//!
//! Range rules: inclusive day count over 367 (rates) / 93 (tables) → 400; start after
//! end → 400 `Błędny zakres dat`; a range ending after today (Warsaw) → the same 400
//! (as the live service does); nothing published in the range → 404.
//!
//! Control endpoints (not counted in `requests_served`): `POST /__sim/faults` with a
//! fault directive text body (grammar in [`fault`]), `DELETE /__sim/faults`,
//! `POST /__sim/now` with `2026-11-23T10:00:00`, `DELETE /__sim/now`,
//! `GET /__sim/stats` → `{"requests_served":N,"now":"…"}`. Per request: header
//! `X-Sim-Fault: status=429; retry_after=7`.
//!
//! Data: fixture format and the generator are described in [`rates`].

pub mod api;
pub mod calendar;
pub mod currency;
pub mod fault;
pub mod rates;
pub mod render;
pub mod server;

use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

pub use api::{Cutoffs, NbpError};
pub use calendar::{is_publication_day, previous_publication_day, table_number, Table};
pub use fault::{BodyFault, Fault};
pub use rates::{Fixture, FixtureError, RateBook};
pub use server::{NbpHandle, NbpSim, FAULT_HEADER};

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 2002;

/// Everything that determines what the simulator answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbpConfig {
    /// Seed of the random walk; same seed and fixture ⇒ same rates.
    pub seed: u64,
    /// Known rates and walk levels (empty by default: pure generator).
    pub fixture: Fixture,
    /// Pinned Europe/Warsaw wall clock; `None` follows the real clock.
    pub now: Option<NaiveDateTime>,
    /// Publication cut-off times for tables A and C.
    pub cutoffs: Cutoffs,
}

impl Default for NbpConfig {
    fn default() -> Self {
        NbpConfig {
            seed: DEFAULT_SEED,
            fixture: Fixture::default(),
            now: None,
            cutoffs: Cutoffs::default(),
        }
    }
}

fn default_book() -> &'static RateBook {
    static BOOK: OnceLock<RateBook> = OnceLock::new();
    BOOK.get_or_init(|| RateBook::new(DEFAULT_SEED, Fixture::default()))
}

/// Table A mid the default-configured simulator publishes for `code` on `date`
/// (`None` on days without a table or for codes not in table A).
pub fn rate_a(code: &str, date: NaiveDate) -> Option<Decimal> {
    default_book().rate_a(code, date)
}

/// Table C (bid, ask) the default-configured simulator publishes.
pub fn rate_c(code: &str, date: NaiveDate) -> Option<(Decimal, Decimal)> {
    default_book().rate_c(code, date)
}
