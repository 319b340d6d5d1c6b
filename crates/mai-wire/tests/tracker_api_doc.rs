//! docs/tracker-api.md is checked against the wire types: every ```json example is found
//! by the heading it sits under (its endpoint), read *strictly* into its type (the types
//! refuse unknown fields), written back and compared with the example as JSON values, so
//! a field the example leaves out, or spells differently, fails too. An example no entry
//! of the table below claims fails as well: the document cannot grow an unchecked body.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mai_wire::tracker::{self, seed};
use mai_wire::CommercialTerms;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The ```json blocks of the document by section: the heading's endpoint (`METHOD /path`
/// without the query or the auth note) or its plain title, then the blocks in order.
fn examples(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        let t = line.trim_start();
        if let Some(b) = block.as_mut() {
            if t.starts_with("```") {
                out.entry(section.clone())
                    .or_default()
                    .push(block.take().unwrap());
            } else {
                b.push_str(t);
                b.push('\n');
            }
        } else if t.starts_with("```json") {
            block = Some(String::new());
        } else if t.starts_with('#') {
            let title = t.trim_start_matches('#').trim();
            section = match title.split_once(' ') {
                Some((method, rest)) if method.chars().all(|c| c.is_ascii_uppercase()) => {
                    let path = rest.split([' ', '?']).next().unwrap_or(rest);
                    format!("{method} {path}")
                }
                _ => title.to_owned(),
            };
        }
    }
    assert!(block.is_none(), "a ```json block is not closed");
    out
}

/// Reads `text` into `T` strictly, writes it back, and compares both as JSON values.
fn check<T>(at: &str, text: &str)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let typed: T = serde_json::from_str(text).unwrap_or_else(|e| {
        panic!(
            "{at}: the example is not a {}: {e}\n{text}",
            std::any::type_name::<T>()
        )
    });
    let doc: Value = serde_json::from_str(text).unwrap();
    let written = serde_json::to_string(&typed).unwrap();
    let again: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        doc,
        again,
        "{at}: the example and its type {} differ (a field the example leaves out or writes \
         differently)\nexample: {doc}\ntype:    {again}",
        std::any::type_name::<T>()
    );
    let back: T = serde_json::from_str(&written).unwrap();
    assert_eq!(
        back, typed,
        "{at}: serialize -> deserialize is not the identity"
    );
}

type Check = fn(&str, &str);

/// (section, index of the block in it, type). Keep in the document's order.
const TABLE: &[(&str, usize, Check)] = &[
    ("Conventions", 0, check::<tracker::ErrorBody>),
    ("Proxy (OpenAI-compatible)", 0, check::<tracker::ErrorBody>),
    ("GET /api/v1/status", 0, check::<tracker::Status>),
    ("GET /api/v1/usage/today", 0, check::<tracker::Today>),
    ("GET /api/v1/usage/daily", 0, check::<tracker::Daily>),
    ("GET /api/v1/usage/by-user", 0, check::<tracker::ByUser>),
    ("GET /api/v1/usage/by-model", 0, check::<tracker::ByModel>),
    ("GET /api/v1/usage/by-task", 0, check::<tracker::ByTask>),
    ("GET /api/v1/usage/by-group", 0, check::<tracker::ByGroup>),
    ("GET /api/v1/usage/by-chat", 0, check::<tracker::ByChat>),
    ("GET /api/v1/usage/month", 0, check::<tracker::Month>),
    ("GET /api/v1/events", 0, check::<tracker::EventPage>),
    ("POST /api/v1/sync", 0, check::<tracker::SyncRequest>),
    ("POST /api/v1/sync", 1, check::<tracker::SyncReport>),
    (
        "PUT /api/v1/admin/openrouter-key",
        0,
        check::<tracker::KeyHandover>,
    ),
    (
        "PUT /api/v1/admin/openrouter-key",
        1,
        check::<tracker::KeyLabel>,
    ),
    ("PUT /api/v1/admin/terms", 0, check::<CommercialTerms>),
    ("PUT /api/v1/admin/terms", 1, check::<CommercialTerms>),
    (
        "POST /api/v1/admin/probe",
        0,
        check::<tracker::ProbeRequest>,
    ),
    ("POST /api/v1/admin/probe", 1, check::<tracker::ProbeReport>),
    (
        "POST /api/v1/admin/privacy/erase",
        0,
        check::<tracker::EraseRequest>,
    ),
    (
        "POST /api/v1/admin/privacy/erase",
        1,
        check::<tracker::ErasureReport>,
    ),
    (
        "POST /api/v1/admin/restore",
        0,
        check::<tracker::RestoreReport>,
    ),
    (
        "GET /api/v1/admin/privacy/export",
        0,
        check::<tracker::PrivacyExport>,
    ),
    (
        "POST /api/v1/usage-tracking/sync/openrouter-usage",
        0,
        check::<tracker::SyncRequest>,
    ),
    (
        "POST /api/v1/usage-tracking/sync/openrouter-usage",
        1,
        check::<seed::SyncReply>,
    ),
    (
        "GET /api/v1/usage-tracking/usage/real-time/{client_org_id}",
        0,
        check::<seed::RealTime>,
    ),
    (
        "POST /api/v1/usage-tracking/usage/manual-record",
        0,
        check::<seed::ManualRecord>,
    ),
    (
        "POST /api/v1/usage-tracking/usage/manual-record",
        1,
        check::<seed::Recorded>,
    ),
    (
        "POST /api/v1/usage-tracking/webhook/openrouter-usage",
        0,
        check::<seed::WebhookReply>,
    ),
];

#[test]
fn every_example_of_the_tracker_api_doc_is_its_wire_type() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/tracker-api.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/tracker-api.md");
    let found = examples(&doc);
    for (section, i, check) in TABLE {
        let blocks = found
            .get(*section)
            .unwrap_or_else(|| panic!("docs/tracker-api.md has no section `{section}`"));
        let text = blocks.get(*i).unwrap_or_else(|| {
            panic!(
                "section `{section}` has {} ```json example(s); expected one at index {i}",
                blocks.len()
            )
        });
        check(&format!("{section} [{i}]"), text);
    }
    for (section, blocks) in &found {
        for i in 0..blocks.len() {
            assert!(
                TABLE.iter().any(|(s, j, _)| s == section && *j == i),
                "docs/tracker-api.md: ```json example {i} of `{section}` is checked by no \
                 type; add it to TABLE in {}",
                file!()
            );
        }
    }
}

/// The checker itself fails on what it is meant to catch.
#[test]
fn the_check_refuses_unknown_and_missing_fields() {
    let ok = r#"{"label":"sk-or-v1-…abcd"}"#;
    check::<tracker::KeyLabel>("ok", ok);
    let unknown = r#"{"label":"x","key":"sk-or-v1-secret"}"#;
    assert!(std::panic::catch_unwind(|| check::<tracker::KeyLabel>("unknown", unknown)).is_err());
    // `activity` may be left out (it is skipped when empty); `checked_at` may not.
    let missing = r#"{"day_usd":"0","month_usd":"0"}"#;
    assert!(std::panic::catch_unwind(|| check::<tracker::Drift>("missing", missing)).is_err());
    // Written differently: "1.30" reads as 1.30 and is written back as "1.30", but a
    // number where a string belongs is refused.
    let number = r#"{"markup":{"default_rate":1.3,"entries":[]},"monthly_limit_usd":null}"#;
    assert!(std::panic::catch_unwind(|| check::<CommercialTerms>("number", number)).is_err());
}
