//! The crash journal's reader (`mai_tracker::journal::read_from`, what start-up and
//! rotation run on `<db>.journal.old`) on arbitrary file contents: torn writes, a
//! `kill -9` mid-line, disk garbage.
//!
//! Invariants: reading bytes from memory never fails (a bad line is skipped, never the
//! whole file: a failure here stops the tracker from starting); at most one entry per
//! line; every entry read survives being appended and read back; a good entry after
//! garbage is still read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mai_tracker::journal::{read_from, JournalEntry};

fuzz_target!(|data: &[u8]| {
    let entries = read_from(data).expect("reading a journal from memory never fails");
    let lines = data.split(|&b| b == b'\n').count();
    assert!(
        entries.len() <= lines,
        "{} entries from {lines} lines",
        entries.len()
    );

    // What `Journal::append` writes (one JSON line each) reads back the same.
    let mut again = Vec::new();
    for e in &entries {
        again.extend(serde_json::to_vec(e).unwrap());
        again.push(b'\n');
    }
    assert_eq!(
        read_from(&again[..]).unwrap(),
        entries,
        "append/read round trip"
    );

    // A torn line never hides the entries after it.
    let good = JournalEntry {
        id: "gen-after-garbage".into(),
        at: "2026-11-30T12:00:00Z".parse().unwrap(),
        model: "a/b".into(),
        user: Default::default(),
        context: Default::default(),
    };
    let mut torn = data.to_vec();
    torn.push(b'\n');
    torn.extend(serde_json::to_vec(&good).unwrap());
    torn.push(b'\n');
    let read = read_from(&torn[..]).expect("reading a journal from memory never fails");
    assert_eq!(
        read.last(),
        Some(&good),
        "the entry after the garbage is lost"
    );
});
