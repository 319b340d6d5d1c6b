//! Ledger sums over UTC windows, for comparison with OpenRouter's UTC counters.
//!
//! The ledger's rollups are per Warsaw day (what the client is billed on); drift
//! against `/key` and `/activity` needs UTC windows, which the ledger computes from
//! its events on a separate read-only connection (the writer thread owns the other).

use chrono::{DateTime, Utc};
use mai_core::ledger::Ledger;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;

/// Cost and request count per model of `org`'s events created in `[from, to)`.
pub fn cost_by_model(
    db: &Path,
    org: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BTreeMap<String, (Decimal, u64)>, String> {
    let ledger = Ledger::open_read_only(db).map_err(|e| e.to_string())?;
    let sums = ledger
        .utc_window_by_model(org, from, to)
        .map_err(|e| e.to_string())?;
    Ok(sums
        .into_iter()
        .map(|(model, t)| (model, (t.cost_usd, t.requests)))
        .collect())
}
