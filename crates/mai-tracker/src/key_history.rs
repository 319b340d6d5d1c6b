//! The OpenRouter keys this tracker has used, with when, kept in the ledger's meta table.
//!
//! OpenRouter counts usage per key and a new key starts at zero (spec 6.1), so after a
//! rotation a period's OpenRouter total for this client is the sum over every key it
//! used in that period. Drift checks therefore need the hashes of the earlier keys
//! (`/activity?api_key_hash=`, `GET /keys/{hash}`), and the Broadcast webhook needs
//! their names (traces of the old key can arrive after the hand-over). Only hashes,
//! masked labels and names are stored: never a key.

use chrono::{DateTime, Datelike, Utc};
use mai_core::openrouter::SecretKey;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Meta key of the history in the ledger.
pub const META_KEY: &str = "tracker.openrouter_keys";

/// How long after its hand-over an old key still counts: its spans may still arrive
/// (Broadcast is asynchronous) and `/activity` reaches 30 completed days back.
pub const KEEP_DAYS: i64 = 32;

/// One key's period of use. Stored as JSON in the ledger's meta table; read only by this
/// module (not a wire type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    /// SHA-256 hex of the key (OpenRouter's `hash`).
    pub hash: String,
    /// Masked key, `sk-or-v1-…abcd`.
    pub label: String,
    /// The key's name on OpenRouter, once known (hand-over, `OPENROUTER_API_KEY_NAME`,
    /// or `GET /keys/{hash}` with the management key).
    #[serde(default)]
    pub name: Option<String>,
    /// `None` for the first key: it was in use before the history was kept.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// `None` while in use.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// The key's own `/key` counters read at the hand-over, for drift without a
    /// management key (which would read them live with `GET /keys/{hash}`).
    #[serde(default)]
    pub at_handover: Option<Counters>,
}

/// `/key` usage counters (USD, UTC windows) as read at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub at: DateTime<Utc>,
    #[serde(with = "rust_decimal::serde::str")]
    pub usage_daily: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub usage_monthly: Decimal,
}

impl Counters {
    /// The counter that still covers `now`'s UTC day / month, else zero: a counter read
    /// on an earlier day says nothing of today.
    pub fn daily_on(&self, now: DateTime<Utc>) -> Decimal {
        if self.at.date_naive() == now.date_naive() {
            self.usage_daily
        } else {
            Decimal::ZERO
        }
    }
    pub fn monthly_on(&self, now: DateTime<Utc>) -> Decimal {
        if (self.at.year(), self.at.month()) == (now.year(), now.month()) {
            self.usage_monthly
        } else {
            Decimal::ZERO
        }
    }
}

/// The history, oldest first; the last entry is the key in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory(pub Vec<KeyUse>);

#[derive(Debug, thiserror::Error)]
#[error("the stored key history (meta {META_KEY}) is unreadable: {0}")]
pub struct HistoryError(String);

impl KeyHistory {
    pub fn parse(stored: Option<&str>) -> Result<KeyHistory, HistoryError> {
        match stored {
            None => Ok(KeyHistory::default()),
            Some(s) => serde_json::from_str(s)
                .map(KeyHistory)
                .map_err(|e| HistoryError(e.to_string())),
        }
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).expect("plain struct")
    }

    pub fn current(&self) -> Option<&KeyUse> {
        self.0.last()
    }

    fn current_mut(&mut self) -> Option<&mut KeyUse> {
        self.0.last_mut()
    }

    /// Makes `key` the key in use at `now` (start-up with a key from the environment, or a
    /// hand-over). The same key again changes nothing but a newly learned name; another
    /// key closes the current period and opens a new one. Returns whether anything
    /// changed (the caller stores it then).
    pub fn use_key(
        &mut self,
        key: &SecretKey,
        name: Option<String>,
        at_handover: Option<Counters>,
        now: DateTime<Utc>,
    ) -> bool {
        let hash = key.hash();
        if let Some(cur) = self.current_mut() {
            if cur.hash == hash {
                return match name {
                    Some(n) if cur.name.as_ref() != Some(&n) => {
                        cur.name = Some(n);
                        true
                    }
                    _ => false,
                };
            }
            cur.to = Some(now);
            cur.at_handover = at_handover;
        }
        let first = self.0.is_empty();
        self.0.push(KeyUse {
            hash,
            label: key.label(),
            name,
            from: (!first).then_some(now),
            to: None,
            at_handover: None,
        });
        // Keys out of every window are dropped so the list stays short.
        let cutoff = now - chrono::Duration::days(KEEP_DAYS);
        self.0.retain(|k| k.to.is_none_or(|t| t >= cutoff));
        true
    }

    /// Sets the current key's name (learned from the management API); true if changed.
    pub fn set_current_name(&mut self, name: String) -> bool {
        match self.current_mut() {
            Some(cur) if cur.name.as_ref() != Some(&name) => {
                cur.name = Some(name);
                true
            }
            _ => false,
        }
    }

    /// Earlier keys still in use at or after `since` (the current key excluded).
    pub fn earlier_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = &KeyUse> {
        let n = self.0.len().saturating_sub(1);
        self.0[..n]
            .iter()
            .filter(move |k| k.to.is_none_or(|t| t >= since))
    }

    /// Every key used at or after `since`, current included.
    pub fn used_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = &KeyUse> {
        self.0
            .iter()
            .filter(move |k| k.to.is_none_or(|t| t >= since))
    }

    /// The names Broadcast spans may carry for this client: the kept keys' known names.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.iter().rev().filter_map(|k| k.name.clone()).collect();
        let mut seen = std::collections::HashSet::new();
        v.retain(|n| seen.insert(n.clone()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(n: u8) -> SecretKey {
        SecretKey::new(format!("sk-or-v1-{}", format!("{n:02x}").repeat(32)))
    }

    #[test]
    fn a_rotation_closes_one_period_and_opens_the_next() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 5, 9, 0, 0).unwrap();
        let t1 = Utc.with_ymd_and_hms(2026, 11, 5, 13, 0, 0).unwrap();
        let mut h = KeyHistory::default();
        assert!(h.use_key(&key(1), None, None, t0));
        assert!(!h.use_key(&key(1), None, None, t0), "same key: no change");
        assert!(h.use_key(&key(1), Some("mai-acme-1".into()), None, t0));
        let c = Counters {
            at: t1,
            usage_daily: Decimal::new(5, 1),
            usage_monthly: Decimal::from(3),
        };
        assert!(h.use_key(&key(2), Some("mai-acme-2".into()), Some(c), t1));
        assert_eq!(h.0.len(), 2);
        assert_eq!(h.0[0].from, None, "the first key predates the history");
        assert_eq!(h.0[0].to, Some(t1));
        assert_eq!(h.0[0].at_handover, Some(c));
        assert_eq!(h.0[1].from, Some(t1));
        assert_eq!(h.current().unwrap().hash, key(2).hash());
        assert_eq!(h.names(), ["mai-acme-2", "mai-acme-1"]);
        assert_eq!(h.earlier_since(t0).count(), 1);
        assert_eq!(
            h.earlier_since(t1 + chrono::Duration::seconds(1)).count(),
            0
        );
        assert_eq!(h.used_since(t1 + chrono::Duration::days(1)).count(), 1);
        let back = KeyHistory::parse(Some(&h.to_stored())).unwrap();
        assert_eq!(back, h);
        assert!(!h.to_stored().contains(key(2).expose()), "never the key");
        // Counters speak only of their own day and month.
        assert_eq!(c.daily_on(t1), Decimal::new(5, 1));
        assert_eq!(c.daily_on(t1 + chrono::Duration::days(1)), Decimal::ZERO);
        assert_eq!(
            c.monthly_on(t1 + chrono::Duration::days(1)),
            Decimal::from(3)
        );
        assert_eq!(c.monthly_on(t1 + chrono::Duration::days(30)), Decimal::ZERO);
    }

    #[test]
    fn old_keys_leave_after_every_window() {
        let t0 = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
        let mut h = KeyHistory::default();
        h.use_key(&key(1), None, None, t0);
        h.use_key(&key(2), None, None, t0 + chrono::Duration::days(1));
        h.use_key(&key(3), None, None, t0 + chrono::Duration::days(40));
        assert_eq!(h.0.len(), 2, "key 1 ended 39 days before: dropped");
        assert!(KeyHistory::parse(Some("{nope")).is_err());
    }
}
