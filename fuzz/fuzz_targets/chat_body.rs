//! The proxy's request rewrite (`mai_tracker::proxy::rewrite_chat_body`) on arbitrary
//! bodies and identity headers.
//!
//! Invariants: no panic; a body that is a JSON object is accepted and anything else is
//! refused; the output is a JSON object that keeps every original key with its value
//! byte for byte (only `user` may be filled in, and only when the body had no non-empty
//! string there), asks for usage (`usage`, and `stream_options` when streaming) without
//! overriding what the client set, and the request info matches the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mai_core::usage::UserRef;
use mai_tracker::proxy::rewrite_chat_body;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

type RawMap = BTreeMap<String, Box<RawValue>>;

fn header_users(selector: u8) -> UserRef {
    match selector % 4 {
        0 => UserRef::default(),
        1 => UserRef {
            id: Some("user-7".into()),
            ..UserRef::default()
        },
        2 => UserRef {
            email: Some("zażółć@example.pl".into()),
            name: Some("Gęślą Jaźń".into()),
            ..UserRef::default()
        },
        _ => UserRef {
            id: Some("x".repeat(300)),
            email: Some("e@x".into()),
            name: None,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    // The last byte picks the identity headers; the rest is the body. (Seeds end in a
    // newline, which picks "user-7".)
    let Some((&sel, body)) = data.split_last() else {
        return;
    };
    let header_user = header_users(sel);
    let original: Option<RawMap> = serde_json::from_slice(body).ok();
    match (original, rewrite_chat_body(body, &header_user)) {
        (None, Err(_)) => {}
        (None, Ok(_)) => panic!("accepted a body that is not a JSON object"),
        (Some(_), Err(e)) => panic!("refused a JSON object: {e}"),
        (Some(orig), Ok(r)) => check(&orig, r, &header_user),
    }
});

fn check(orig: &RawMap, (out, info): (Vec<u8>, mai_tracker::proxy::RequestInfo), hdr: &UserRef) {
    // Valid JSON by syntax: not `serde_json::Value`, which refuses numbers beyond f64
    // (RFC 8259 has no such limit; the proxy forwards them verbatim).
    serde_json::from_slice::<serde::de::IgnoredAny>(&out).expect("output is valid JSON");
    let new: RawMap = serde_json::from_slice(&out).expect("output is a JSON object");

    let body_user = orig
        .get("user")
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .filter(|s| !s.is_empty());
    for (k, raw) in orig {
        let got = new.get(k).unwrap_or_else(|| panic!("key {k:?} dropped"));
        if k == "user" && body_user.is_none() {
            continue; // may be filled from the identity headers
        }
        assert_eq!(got.get(), raw.get(), "value of {k:?} changed");
    }
    let stream = orig
        .get("stream")
        .and_then(|r| serde_json::from_str::<bool>(r.get()).ok())
        .unwrap_or(false);
    assert_eq!(info.stream, stream);
    let model = orig
        .get("model")
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok());
    assert_eq!(info.model, model);
    assert!(new.contains_key("usage"), "usage not requested");
    if stream {
        assert!(
            new.contains_key("stream_options"),
            "stream usage not requested"
        );
    }
    let mut allowed: Vec<&str> = vec!["usage", "stream_options", "user"];
    allowed.retain(|k| !orig.contains_key(*k));
    for k in new.keys() {
        assert!(
            orig.contains_key(k) || allowed.contains(&k.as_str()),
            "unexpected key {k:?} added"
        );
    }
    // The user: the body's own wins for the upstream request; the header's id wins
    // for metering.
    if let Some(u) = &body_user {
        assert_eq!(
            serde_json::from_str::<String>(new["user"].get())
                .ok()
                .as_ref(),
            Some(u)
        );
    } else if let Some(h) = hdr.id.as_ref().or(hdr.email.as_ref()) {
        let sent: String = serde_json::from_str(new["user"].get()).expect("user is a string");
        assert_eq!(sent, h.chars().take(128).collect::<String>());
    }
    assert_eq!(
        info.user.id,
        hdr.id.clone().or(body_user),
        "metered user id"
    );
}
