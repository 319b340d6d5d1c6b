//! The proxy's SSE scanner (`mai_tracker::sse::SseScanner`) on arbitrary upstream bytes.
//!
//! Invariants: no panic, and what it reads does not depend on how the stream was cut
//! into chunks: fed whole, byte by byte, and in pseudo-random chunk sizes derived from
//! the input, it ends with the same id, model, provider, usage, error, [DONE] flag and
//! data-event count. (Lines longer than the scanner's 4 MiB cap are read only when they
//! arrive in one chunk; fuzz inputs are far shorter.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use mai_tracker::sse::SseScanner;

fn scan<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> String {
    let mut s = SseScanner::new();
    for c in chunks {
        s.feed(c);
    }
    s.finish();
    format!(
        "id={:?} model={:?} provider={:?} usage={:?} error={:?} done={} events={}",
        s.id, s.model, s.provider, s.usage, s.error, s.done, s.data_events
    )
}

/// Chunk sizes 1..=64 from a small PRNG seeded by the input itself.
fn random_chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ data.len() as u64;
    for &b in data.iter().take(32) {
        seed = seed.rotate_left(5) ^ u64::from(b);
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (1 + (seed % 64) as usize).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = scan(std::iter::once(data));
    let bytewise = scan(data.chunks(1));
    assert_eq!(whole, bytewise, "fed whole vs byte by byte");
    let random = scan(random_chunks(data).into_iter());
    assert_eq!(whole, random, "fed whole vs random chunks");
    // An empty first chunk and empty chunks in between change nothing either.
    let with_empties =
        scan(std::iter::once(&data[..0]).chain(data.chunks(7).flat_map(|c| [c, &c[..0]])));
    assert_eq!(whole, with_empties, "fed with empty chunks");
});
