//! Amounts and counts at the edges (near `u64::MAX`, `i64::MAX`, `Decimal::MAX`): no
//! operation panics, and each result is either exact or a clear error.

use chrono::{TimeZone, Utc};
use mai_core::ledger::{FailureKind, Ledger, LedgerError};
use mai_core::pricing::{client_cost, limit_state, month_summary, price_days, MarkupSchedule};
use mai_core::usage::{
    check_bounds, exact_add, Caps, EventState, Source, Tokens, Totals, UsageError, UsageEvent,
    UserRef,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (u64::MAX - 1000)..=u64::MAX,
        (i64::MAX as u64 - 1000)..=(i64::MAX as u64 + 1000),
        0u64..1000,
    ]
}

/// Any non-negative decimal, with the extremes over-represented.
fn dec() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>(), 0u32..=28)
            .prop_map(|(l, m, h, s)| Decimal::from_parts(l, m, h, false, s)),
        (0u32..=28).prop_map(|s| {
            let mut d = Decimal::MAX;
            d.set_scale(s).unwrap();
            d
        }),
        (0i64..1_000_000_000_000, 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn tokens() -> impl Strategy<Value = Tokens> {
    (big_u64(), big_u64(), big_u64(), big_u64()).prop_map(|(p, c, r, k)| Tokens {
        prompt: p,
        completion: c,
        reasoning: r,
        cached: k,
    })
}

/// `m * 10^e` in u128, if it fits.
fn scaled(m: u128, e: u32) -> Option<u128> {
    10u128.checked_pow(e).and_then(|p| m.checked_mul(p))
}

/// Whether `r` is exactly `a + b` (non-negative operands), checked in u128.
fn is_exact_sum(r: Decimal, a: Decimal, b: Decimal) -> bool {
    let s = a.scale().max(b.scale()).max(r.scale());
    let want = scaled(a.mantissa() as u128, s - a.scale())
        .zip(scaled(b.mantissa() as u128, s - b.scale()))
        .and_then(|(x, y)| x.checked_add(y));
    want.is_some() && want == scaled(r.mantissa() as u128, s - r.scale())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn token_sums_are_exact_or_an_error_leaving_the_sum_alone(a in tokens(), b in tokens()) {
        let mut t = a;
        match t.add(&b) {
            Ok(()) => {
                for (x, y, z) in [
                    (a.prompt, b.prompt, t.prompt),
                    (a.completion, b.completion, t.completion),
                    (a.reasoning, b.reasoning, t.reasoning),
                    (a.cached, b.cached, t.cached),
                ] {
                    prop_assert_eq!(x as u128 + y as u128, z as u128);
                }
            }
            Err(e) => {
                prop_assert_eq!(t, a, "unchanged on error");
                prop_assert!(e.to_string().contains("overflows"));
                let fits = |x: u64, y: u64| x.checked_add(y).is_some();
                prop_assert!(!(fits(a.prompt, b.prompt) && fits(a.completion, b.completion)
                    && fits(a.reasoning, b.reasoning) && fits(a.cached, b.cached)));
            }
        }
        // Never panics; saturates only past u64::MAX.
        let total = a.total();
        prop_assert_eq!(total as u128, (a.prompt as u128 + a.completion as u128).min(u64::MAX as u128));
    }

    #[test]
    fn decimal_sums_are_exact_or_an_error(a in dec(), b in dec()) {
        if let Some(r) = exact_add(a, b) {
            prop_assert!(is_exact_sum(r, a, b), "{} + {} gave {}", a, b, r);
        }
        let (x, y) = (
            Totals { requests: u64::MAX - 1, tokens: Tokens::default(), cost_usd: a },
            Totals { requests: 1, tokens: Tokens::default(), cost_usd: b },
        );
        let mut t = x;
        match t.add(&y) {
            Ok(()) => {
                prop_assert_eq!(t.requests, u64::MAX);
                prop_assert!(is_exact_sum(t.cost_usd, a, b));
            }
            Err(_) => prop_assert_eq!(t, x),
        }
        let mut t = y;
        let one_more = Totals { requests: u64::MAX, ..y };
        prop_assert!(t.add(&one_more).is_err(), "request count overflow is an error");
    }

    #[test]
    fn client_cost_is_exact_or_an_error(raw in dec(), rate in dec()) {
        let (r, m) = (raw.normalize(), rate.normalize());
        let want = (r.mantissa() as u128).checked_mul(m.mantissa() as u128);
        match client_cost(raw, rate) {
            Ok(p) => {
                let want = want.expect("an exact product fits u128");
                let e = r.scale() + m.scale();
                prop_assert!(p.scale() <= e);
                prop_assert_eq!(scaled(p.mantissa() as u128, e - p.scale()), Some(want), "{} x {} = {}", raw, rate, p);
            }
            Err(e) => prop_assert!(e.to_string().contains("overflows")),
        }
        // Limits never panic either.
        let _ = limit_state(rate, raw);
        let _ = limit_state(Decimal::ZERO, raw);
    }

    #[test]
    fn a_month_of_huge_days_prices_or_errs(costs in proptest::collection::vec(dec(), 1..31), rate in 1u32..=10_000) {
        let month: mai_core::time::YearMonth = "2026-11".parse().unwrap();
        let daily: Vec<_> = costs
            .iter()
            .enumerate()
            .map(|(i, c)| (
                month.first_day() + chrono::Duration::days(i as i64),
                Totals { requests: u64::MAX / 16, tokens: Tokens::default(), cost_usd: *c },
            ))
            .collect();
        let s = MarkupSchedule::flat(Decimal::new(rate as i64, 2));
        if let Ok(segs) = price_days(&s, &daily) {
            let raw: Option<Decimal> = segs.iter().try_fold(Decimal::ZERO, |a, s| exact_add(a, s.raw_cost_usd));
            let want: Option<Decimal> = costs.iter().try_fold(Decimal::ZERO, |a, c| exact_add(a, *c));
            prop_assert_eq!(raw.map(|d| d.normalize()), want.map(|d| d.normalize()));
        }
        let _ = month_summary("acme", month, &daily, &s, month.last_day());
    }
}

fn event(id: &str, tokens: Tokens, cost: Decimal) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: UserRef::default(),
        model: "a/b".into(),
        provider: None,
        tokens,
        cost_usd: cost,
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0).unwrap(),
        context: Default::default(),
    }
}

/// Rollups of events at the absolute caps: the sum that no longer fits an i64 is
/// refused as an overflow (nothing of it written), not wrapped or panicked on.
#[test]
fn rollups_refuse_an_overflowing_sum_and_stay_equal_to_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(&dir.path().join("o.sqlite")).unwrap();
    let max = Caps::ABSOLUTE.max_tokens;
    let t = Tokens {
        prompt: max,
        completion: max,
        reasoning: 0,
        cached: 0,
    };
    let mut stored = 0u64;
    let mut refused = 0;
    for i in 0..6 {
        match l.record(&event(&format!("gen-{i}"), t, Caps::ABSOLUTE.max_cost_usd)) {
            Ok(_) => stored += 1,
            Err(e) => {
                assert_eq!(e.kind(), FailureKind::Overflow, "{e}");
                assert!(!e.kind().is_transient());
                refused += 1;
            }
        }
    }
    assert_eq!(
        stored, 4,
        "four fit into an i64 rollup, the fifth would not"
    );
    assert_eq!(refused, 2);
    let day = l
        .day(
            "acme",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
        )
        .unwrap();
    assert_eq!(day.requests, stored);
    assert_eq!(day.tokens.prompt, stored * max);
    assert_eq!(
        day.cost_usd,
        Caps::ABSOLUTE.max_cost_usd * Decimal::from(stored)
    );
    assert_eq!(l.events_since(0, 100).unwrap().events.len() as u64, stored);
    // One more above the absolute caps is invalid, not an overflow.
    let over = Tokens {
        prompt: max + 1,
        ..Tokens::default()
    };
    let e = l.record(&event("gen-x", over, Decimal::ZERO)).unwrap_err();
    assert_eq!(e.kind(), FailureKind::OverCap, "{e}");
}

#[test]
fn configured_caps_refuse_in_the_ledger_and_in_check_bounds() {
    let caps = Caps::DEFAULT;
    let at = event(
        "gen-1",
        Tokens {
            prompt: caps.max_tokens,
            ..Tokens::default()
        },
        caps.max_cost_usd,
    );
    assert!(check_bounds(&at, &caps).is_ok());
    let mut over = at.clone();
    over.cost_usd += Decimal::new(1, 9);
    let e = check_bounds(&over, &caps).unwrap_err();
    assert!(
        matches!(
            e,
            UsageError::OverCap {
                field: "cost_usd",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("MAI_MAX_EVENT_COST_USD"), "{e}");
    let mut over_t = at.clone();
    over_t.tokens.cached = caps.max_tokens + 1;
    assert!(matches!(
        check_bounds(&over_t, &caps),
        Err(UsageError::OverCap {
            field: "tokens.cached",
            ..
        })
    ));
    let mut l = Ledger::open_in_memory().unwrap();
    l.set_caps(caps);
    let e = l.record_batch(&[at.clone(), over]).unwrap_err();
    assert!(matches!(
        e,
        LedgerError::Invalid(UsageError::OverCap { .. })
    ));
    assert_eq!(e.kind(), FailureKind::OverCap);
    assert!(
        l.events_since(0, 10).unwrap().events.is_empty(),
        "nothing of the batch"
    );
    l.record(&at).unwrap();
}

#[test]
fn bound_field_cuts_on_a_char_boundary() {
    use mai_core::usage::bound_field;
    for (s, max, want) in [
        ("abc", 5, "abc"),
        ("abcdef", 3, "abc"),
        ("żółw", 3, "ż"), // ż is 2 bytes, ó is 2: 3 bytes would split ó
        ("żółw", 4, "żó"),
        ("🙂🙂", 5, "🙂"),
        ("🙂", 3, ""),
    ] {
        let mut x = s.to_owned();
        bound_field(&mut x, max);
        assert_eq!(x, want, "{s} {max}");
    }
}
