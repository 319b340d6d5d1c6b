//! The simulator's rate data: a fixture of known rates plus a deterministic,
//! seeded random walk for every other publication day.
//!
//! Fixture format (TOML; all numbers are quoted strings so they stay exact decimals,
//! dates are quoted `YYYY-MM-DD`):
//!
//! ```toml
//! # Optional: centre of the random walk per currency, PLN per 1 unit, at the
//! # currency's published scale or less.
//! [levels]
//! USD = "4.0000"
//! EUR = "4.3"
//!
//! # Known table A rates: used as-is on that date; the walk continues from them.
//! [[rate]]
//! table = "A"
//! code = "USD"
//! date = "2025-01-31"
//! mid = "4.0864"
//!
//! # Known table C rates (bid and ask both required).
//! [[rate]]
//! table = "C"
//! code = "USD"
//! date = "2025-01-31"
//! bid = "4.0300"
//! ask = "4.1114"
//! ```
//!
//! Walk (all exact decimals, no floats): on every publication day from 2002-01-02,
//! `s ← s + s·ε + (level − s)·0.01` with ε drawn uniformly from ±0.40 % by a ChaCha8
//! stream seeded with SHA-256(seed, code); the state is kept at 10 decimals and the
//! published mid is the state rounded half away from zero to the currency's scale.
//! Table C on day `d` uses a hidden mid `m = s(tradingDate)·(1+δ)`, δ within ±0.15 %
//! drawn from SHA-256(seed, code, d), then `bid = round(m·0.99)`, `ask = round(m·1.01)`
//! at the currency's scale. Same seed and fixture ⇒ same numbers, whatever order the
//! dates are asked in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::{Decimal, RoundingStrategy};
use sha2::{Digest, Sha256};

use crate::nbp::calendar::{self, Table, FIRST_TABLE_DAY};
use crate::nbp::currency::{self, Currency};

/// A fixture file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read NBP rates fixture {path}: {source}; check the --rates path")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NBP rates fixture is not valid TOML: {0}; see the format in the mai_sim::nbp docs")]
    Toml(#[from] toml::de::Error),
    #[error("NBP rates fixture, {what}: {problem}; fix that entry")]
    Entry { what: String, problem: String },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    #[serde(default)]
    levels: BTreeMap<String, String>,
    #[serde(default)]
    rate: Vec<RawRate>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    table: String,
    code: String,
    date: String,
    mid: Option<String>,
    bid: Option<String>,
    ask: Option<String>,
}

/// A known published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownRate {
    Mid(Decimal),
    BidAsk(Decimal, Decimal),
}

/// Parsed and validated fixture: walk levels and known rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fixture {
    /// Walk centre per upper-case code, overriding the built-in level.
    pub levels: BTreeMap<String, Decimal>,
    /// Known rates by (table, upper-case code, date), already at published scale.
    pub rates: BTreeMap<(Table, String, NaiveDate), KnownRate>,
}

impl Fixture {
    /// Reads and validates a TOML fixture file.
    pub fn load(path: &Path) -> Result<Fixture, FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Fixture::from_toml_str(&text)
    }

    /// Parses and validates fixture text (see the module docs for the format).
    pub fn from_toml_str(text: &str) -> Result<Fixture, FixtureError> {
        let raw: RawFixture = toml::from_str(text)?;
        let mut fixture = Fixture::default();
        for (code, level) in raw.levels {
            let what = format!("level for {code}");
            let cur = currency::find(&code).ok_or_else(|| entry(&what, "unknown currency code"))?;
            let value = exact(&what, cur, &level)?;
            fixture.levels.insert(cur.code.to_string(), value);
        }
        for (i, r) in raw.rate.iter().enumerate() {
            let what = format!("rate #{} ({} {} {})", i + 1, r.table, r.code, r.date);
            let table = match Table::parse(&r.table) {
                Some(t @ (Table::A | Table::C)) => t,
                _ => return Err(entry(&what, "table must be \"A\" or \"C\"")),
            };
            let cur = currency::in_table(table, &r.code)
                .ok_or_else(|| entry(&what, "this currency is not in that table"))?;
            let date = NaiveDate::parse_from_str(&r.date, "%Y-%m-%d")
                .map_err(|_| entry(&what, "date must be YYYY-MM-DD"))?;
            if !calendar::is_publication_day(date) {
                return Err(entry(&what, "NBP publishes no table on that date"));
            }
            let known = match (table, &r.mid, &r.bid, &r.ask) {
                (Table::A, Some(mid), None, None) => KnownRate::Mid(exact(&what, cur, mid)?),
                (Table::C, None, Some(bid), Some(ask)) => {
                    KnownRate::BidAsk(exact(&what, cur, bid)?, exact(&what, cur, ask)?)
                }
                (Table::A, ..) => return Err(entry(&what, "table A needs exactly `mid`")),
                _ => return Err(entry(&what, "table C needs exactly `bid` and `ask`")),
            };
            let key = (table, cur.code.to_string(), date);
            if fixture.rates.insert(key, known).is_some() {
                return Err(entry(
                    &what,
                    "duplicate entry for that table, code and date",
                ));
            }
        }
        Ok(fixture)
    }
}

fn entry(what: &str, problem: &str) -> FixtureError {
    FixtureError::Entry {
        what: what.to_string(),
        problem: problem.to_string(),
    }
}

/// Parses a quoted decimal and brings it to the published scale, refusing values
/// that would need rounding (a "known" rate must be exactly what NBP printed).
fn exact(what: &str, cur: &Currency, text: &str) -> Result<Decimal, FixtureError> {
    let mut value = Decimal::from_str(text.trim()).map_err(|_| {
        entry(
            what,
            &format!("`{text}` is not a decimal number (write it quoted, e.g. \"4.0864\")"),
        )
    })?;
    if value <= Decimal::ZERO {
        return Err(entry(what, "rates must be positive"));
    }
    if value.scale() > cur.scale {
        return Err(entry(
            what,
            &format!(
                "`{text}` has more than the {} decimals NBP publishes for {}",
                cur.scale, cur.code
            ),
        ));
    }
    value.rescale(cur.scale);
    Ok(value)
}

/// Per-currency walk state, extended lazily and strictly in date order.
struct Walk {
    rng: ChaCha8Rng,
    level: Decimal,
    /// Walk state after each publication day, keyed by date (kept in order).
    states: Vec<(NaiveDate, Decimal)>,
    next_day: NaiveDate,
    state: Decimal,
}

/// All rates the simulator will ever publish for a given seed and fixture.
pub struct RateBook {
    seed: u64,
    fixture: Fixture,
    walks: Mutex<HashMap<&'static str, Walk>>,
}

impl std::fmt::Debug for RateBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateBook")
            .field("seed", &self.seed)
            .field("fixture_rates", &self.fixture.rates.len())
            .finish()
    }
}

const STATE_DP: u32 = 10;

fn round_to(value: Decimal, scale: u32) -> Decimal {
    let mut v = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    v.rescale(scale);
    v
}

fn sha_seed(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl RateBook {
    pub fn new(seed: u64, fixture: Fixture) -> RateBook {
        RateBook {
            seed,
            fixture,
            walks: Mutex::new(HashMap::new()),
        }
    }

    /// Unrounded walk state on a publication day (fixture A rates reset it).
    fn state_on(&self, cur: &'static Currency, date: NaiveDate) -> Decimal {
        let mut walks = self.walks.lock().unwrap_or_else(|e| e.into_inner());
        let walk = walks.entry(cur.code).or_insert_with(|| {
            let level = self
                .fixture
                .levels
                .get(cur.code)
                .copied()
                .unwrap_or_else(|| Decimal::from_str(cur.level).expect("built-in level"));
            Walk {
                rng: ChaCha8Rng::from_seed(sha_seed(&[
                    b"nbp-walk",
                    &self.seed.to_le_bytes(),
                    cur.code.as_bytes(),
                ])),
                level,
                states: Vec::new(),
                next_day: FIRST_TABLE_DAY,
                state: level,
            }
        });
        while walk.next_day <= date {
            let day = walk.next_day;
            walk.next_day = day.succ_opt().expect("date in range");
            if !calendar::is_publication_day(day) {
                continue;
            }
            if let Some(KnownRate::Mid(mid)) =
                self.fixture
                    .rates
                    .get(&(Table::A, cur.code.to_string(), day))
            {
                walk.state = *mid;
            } else if !walk.states.is_empty() {
                let eps = Decimal::new(walk.rng.gen_range(-400i64..=400), 5);
                let s = walk.state;
                let next = s + s * eps + (walk.level - s) * Decimal::new(1, 2);
                walk.state = next.round_dp(STATE_DP);
            }
            walk.states.push((day, walk.state));
        }
        match walk.states.binary_search_by_key(&date, |(d, _)| *d) {
            Ok(i) => walk.states[i].1,
            Err(_) => unreachable!("caller checked that {date} is a publication day"),
        }
    }

    /// Table A mid of `code` on `date` at published scale; `None` when no table A
    /// is published that day or the code is not in table A. Ignores the clock.
    pub fn rate_a(&self, code: &str, date: NaiveDate) -> Option<Decimal> {
        let cur = currency::in_table(Table::A, code)?;
        if !calendar::is_publication_day(date) {
            return None;
        }
        if let Some(KnownRate::Mid(mid)) =
            self.fixture
                .rates
                .get(&(Table::A, cur.code.to_string(), date))
        {
            return Some(*mid);
        }
        Some(round_to(self.state_on(cur, date), cur.scale))
    }

    /// Table C (bid, ask) of `code` on `date` at published scale; `None` when no
    /// table C is published that day or the code is not in table C.
    pub fn rate_c(&self, code: &str, date: NaiveDate) -> Option<(Decimal, Decimal)> {
        let cur = currency::in_table(Table::C, code)?;
        if !calendar::is_publication_day(date) {
            return None;
        }
        if let Some(KnownRate::BidAsk(bid, ask)) =
            self.fixture
                .rates
                .get(&(Table::C, cur.code.to_string(), date))
        {
            return Some((*bid, *ask));
        }
        // The very first table has no earlier trading day in range: use its own state.
        let trading = calendar::previous_publication_day(date).unwrap_or(date);
        let base = self.state_on(cur, trading);
        let mut rng = ChaCha8Rng::from_seed(sha_seed(&[
            b"nbp-c",
            &self.seed.to_le_bytes(),
            cur.code.as_bytes(),
            date.to_string().as_bytes(),
        ]));
        let delta = Decimal::new(rng.gen_range(-150i64..=150), 5);
        let hidden_mid = base * (Decimal::ONE + delta);
        let bid = round_to(hidden_mid * Decimal::new(99, 2), cur.scale);
        let ask = round_to(hidden_mid * Decimal::new(101, 2), cur.scale);
        Some((bid, ask))
    }

    /// The seed this book was generated with.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn order_of_queries_does_not_change_values() {
        let a = RateBook::new(7, Fixture::default());
        let b = RateBook::new(7, Fixture::default());
        let late = a.rate_a("USD", d(2025, 3, 3)).unwrap();
        let early = a.rate_a("USD", d(2003, 3, 3)).unwrap();
        assert_eq!(b.rate_a("usd", d(2003, 3, 3)).unwrap(), early);
        assert_eq!(b.rate_a("USD", d(2025, 3, 3)).unwrap(), late);
        assert_eq!(late.scale(), 4);
        assert_eq!(a.rate_a("IDR", d(2025, 3, 3)).unwrap().scale(), 8);
        assert_ne!(
            RateBook::new(8, Fixture::default())
                .rate_a("USD", d(2025, 3, 3))
                .unwrap(),
            late
        );
        assert_eq!(a.rate_a("USD", d(2025, 3, 1)), None);
    }

    #[test]
    fn fixture_rates_win_and_are_validated() {
        let f = Fixture::from_toml_str(
            "[levels]\nUSD = \"3.5\"\n[[rate]]\ntable = \"A\"\ncode = \"usd\"\ndate = \"2025-01-31\"\nmid = \"4.086\"\n",
        )
        .unwrap();
        let book = RateBook::new(1, f);
        assert_eq!(
            book.rate_a("USD", d(2025, 1, 31)).unwrap().to_string(),
            "4.0860"
        );
        let err = Fixture::from_toml_str(
            "[[rate]]\ntable = \"A\"\ncode = \"USD\"\ndate = \"2025-12-24\"\nmid = \"4.0\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no table on that date"), "{err}");
        assert!(Fixture::from_toml_str(
            "[[rate]]\ntable = \"A\"\ncode = \"USD\"\ndate = \"2025-01-31\"\nmid = \"4.08641\"\n"
        )
        .is_err());
    }

    #[test]
    fn table_c_spread_is_two_percent_of_a_hidden_mid() {
        let book = RateBook::new(3, Fixture::default());
        let (bid, ask) = book.rate_c("USD", d(2025, 6, 2)).unwrap();
        assert!(bid < ask);
        let mid = (bid + ask) / Decimal::TWO;
        let spread = (ask - bid) / mid;
        assert!(
            spread > Decimal::new(19, 3) && spread < Decimal::new(21, 3),
            "{spread}"
        );
        assert_eq!(book.rate_c("JPY", d(2025, 6, 2)).unwrap().0.scale(), 6);
        assert_eq!(book.rate_c("THB", d(2025, 6, 2)), None);
    }
}
