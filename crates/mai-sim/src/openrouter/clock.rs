//! The simulator's notion of "now": real time, shifted, or frozen, so tests can make
//! generations on past UTC days (needed for /activity, which skips today).

use chrono::{DateTime, TimeDelta, Utc};

/// How the simulated clock relates to the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    #[default]
    Real,
    /// Real time plus this offset (time keeps flowing).
    Offset(TimeDelta),
    /// Always this instant.
    Frozen(DateTime<Utc>),
}

impl ClockMode {
    pub fn now(&self) -> DateTime<Utc> {
        match *self {
            ClockMode::Real => Utc::now(),
            ClockMode::Offset(d) => Utc::now() + d,
            ClockMode::Frozen(t) => t,
        }
    }

    /// A flowing clock that reads `t` right now.
    pub fn starting_at(t: DateTime<Utc>) -> Self {
        ClockMode::Offset(t - Utc::now())
    }
}

/// `2026-01-02T08:00:00.000000+00:00`, the form the management API uses.
pub fn iso_micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}
