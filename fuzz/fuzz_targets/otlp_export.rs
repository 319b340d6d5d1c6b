//! The Broadcast webhook's OTLP/JSON parser (`mai_tracker::otlp::parse_export`, the
//! entry point of `POST /api/v1/webhook/openrouter`) on arbitrary bodies.
//!
//! Invariants: no panic (in the parser, nor in `UsageEvent::validate`, which the
//! handler runs next); every event belongs to the given org and comes from the webhook,
//! is confirmed exactly when it carries a cost, and survives the ledger's JSON form
//! unchanged when valid; parsing is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mai_core::usage::{EventState, Source, UsageEvent};
use mai_tracker::otlp::parse_export;

fuzz_target!(|data: &[u8]| {
    let Ok(spans) = parse_export(data, "acme") else {
        return;
    };
    let events: Vec<UsageEvent> = spans.into_iter().filter_map(|s| s.event).collect();
    for e in &events {
        assert_eq!(e.org_id, "acme");
        assert_eq!(e.source, Source::Webhook);
        assert!(!e.model.is_empty(), "model falls back to \"unknown\"");
        // Webhook records wait for OpenRouter's own `/generation` (reconciliation).
        assert_eq!(e.state, EventState::Provisional);
        assert!(!e.cost_usd.is_sign_negative(), "no negative cost");
        if e.validate().is_ok() {
            let json = serde_json::to_string(e).expect("serialize");
            let back: UsageEvent = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(&back, e, "JSON round trip");
        }
    }
    let again: Vec<UsageEvent> = parse_export(data, "acme")
        .expect("same input, same result")
        .into_iter()
        .filter_map(|s| s.event)
        .collect();
    // created_at falls back to now() for spans without an end time: compare the rest.
    let key = |v: &[UsageEvent]| {
        v.iter()
            .map(|e| (e.generation_id.clone(), e.tokens, e.cost_usd, e.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&events), key(&again));
});
