//! Ledger sums over UTC windows, for comparison with OpenRouter's UTC counters.
//!
//! The ledger's own rollups are per Warsaw day (what the client is billed on); drift
//! against `/key` and `/activity` needs UTC windows, so this reads the events table
//! directly on a separate read-only connection.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// Cost and request count per model of `org`'s events created in `[from, to)`.
pub fn cost_by_model(
    db: &Path,
    org: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BTreeMap<String, (Decimal, u64)>, String> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening {} read-only: {e}", db.display()))?;
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut st = conn
        .prepare(
            "SELECT model, cost_usd FROM events WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3",
        )
        .map_err(|e| format!("querying {}: {e}", db.display()))?;
    let rows = st
        .query_map(rusqlite::params![org, ts(from), ts(to)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(|e| format!("querying {}: {e}", db.display()))?;
    let mut out: BTreeMap<String, (Decimal, u64)> = BTreeMap::new();
    for row in rows {
        let (model, cost) = row.map_err(|e| e.to_string())?;
        let cost = Decimal::from_str(&cost).map_err(|e| format!("bad cost {cost:?}: {e}"))?;
        let e = out.entry(model).or_default();
        e.0 += cost;
        e.1 += 1;
    }
    Ok(out)
}
