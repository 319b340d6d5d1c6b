//! The fleet file parser (`mai_ops::fleet::Fleet::parse`) on arbitrary text.
//!
//! Invariants: no panic; an error names a line and column inside the text (1-based,
//! at most one past the last line); a fleet that parses has unique host names and
//! client ids, every client's host is one of its hosts, its markup answers for any day,
//! and it serializes.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use mai_ops::fleet::{Fleet, FleetError};
use std::collections::HashSet;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Fleet::parse(text, Path::new("/etc/mai/fleet.toml")) {
        Err(FleetError::Invalid { line, column, .. }) => {
            let lines = text.split('\n').count();
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            assert!(column >= 1, "column {column}");
        }
        Err(_) => {}
        Ok(f) => {
            let hosts: HashSet<&str> = f.hosts.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(hosts.len(), f.hosts.len(), "duplicate host names accepted");
            let ids: HashSet<&str> = f.clients.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids.len(), f.clients.len(), "duplicate client ids accepted");
            for c in &f.clients {
                assert!(
                    hosts.contains(c.host.as_str()),
                    "client on an undefined host"
                );
                // The markup schedule answers for any day, and never below zero.
                for day in [
                    NaiveDate::MIN,
                    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                    NaiveDate::MAX,
                ] {
                    assert!(!c.markup_on(day).is_sign_negative(), "negative markup");
                }
                let _ = c.monthly_limit_usd();
            }
            // What `maictl ... --json` prints of it.
            serde_json::to_string(&f.clients).expect("a parsed fleet serializes");
        }
    }
});
