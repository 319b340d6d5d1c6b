//! Erasure (GDPR art. 17) and export (art. 15) of one person on a real ledger file:
//! totals stay exact, the person's fields leave the file's bytes, others are untouched.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use mai_core::ledger::{Ledger, PrivacySubject, RecordOutcome, ERASED_USER_PREFIX};
use mai_core::pricing::MarkupSchedule;
use mai_core::time::YearMonth;
use mai_core::usage::{ChatContext, EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const EMAIL: &str = "zofia.lukasiewicz@acme.pl";
const NAME: &str = "Zofia Łukasiewicz";

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn user(id: Option<&str>, email: Option<&str>, name: Option<&str>) -> UserRef {
    UserRef {
        id: id.map(Into::into),
        email: email.map(Into::into),
        name: name.map(Into::into),
    }
}

fn ev(id: &str, u: UserRef, t: DateTime<Utc>, model: &str, cost: Decimal) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: u,
        model: model.into(),
        provider: None,
        tokens: Tokens {
            prompt: 100,
            completion: 20,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: cost,
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: t,
        context: ChatContext {
            chat_id: Some(format!("chat-of-{id}")),
            task: Some("chat".into()),
            groups: Some("Zarząd".into()),
        },
    }
}

fn zofia() -> UserRef {
    user(Some("u-zofia"), Some(EMAIL), Some(NAME))
}

/// Zofia under her id (two days, two models), once with no id (e-mail only, another
/// case), a provisional one; Jan and an unknown user beside her; another org too.
fn seed(l: &mut Ledger) {
    let jan = user(Some("u-jan"), Some("jan@acme.pl"), Some("Jan Kowalski"));
    let evs = vec![
        ev(
            "gen-1",
            zofia(),
            at(3, 9),
            "openai/gpt-4o-mini",
            dec!(0.0011),
        ),
        ev("gen-2", zofia(), at(3, 11), "anthropic/claude", dec!(0.25)),
        ev(
            "gen-3",
            zofia(),
            at(14, 23),
            "openai/gpt-4o-mini",
            dec!(0.0009),
        ),
        ev(
            "gen-4",
            user(None, Some("Zofia.Lukasiewicz@ACME.pl"), Some(NAME)),
            at(20, 8),
            "openai/gpt-4o-mini",
            dec!(0.003),
        ),
        ev(
            "gen-5",
            jan.clone(),
            at(3, 10),
            "openai/gpt-4o-mini",
            dec!(0.5),
        ),
        ev("gen-6", jan, at(20, 10), "anthropic/claude", dec!(0.07)),
        ev(
            "gen-7",
            UserRef::default(),
            at(14, 12),
            "openai/gpt-4o-mini",
            dec!(0.01),
        ),
    ];
    l.record_batch(&evs).unwrap();
    let globex = user(Some("u-g"), Some("ewa@globex.pl"), Some("Ewa"));
    let mut other = ev("gen-8", globex, at(3, 9), "openai/gpt-4o-mini", dec!(1));
    other.org_id = "globex".into();
    let mut prov = ev("gen-9", zofia(), at(21, 9), "openai/gpt-4o-mini", dec!(0));
    prov.state = EventState::Provisional;
    l.record_batch(&[other, prov]).unwrap();
}

/// Everything a report or invoice reads, except the per-user identity.
#[derive(Debug, PartialEq)]
struct Figures {
    daily: Vec<(NaiveDate, mai_core::usage::Totals)>,
    by_model: Vec<(String, mai_core::usage::Totals, Decimal)>,
    month_client_cost: Decimal,
    jan: mai_core::usage::Totals,
    user_sum: mai_core::usage::Totals,
    globex: mai_core::usage::Totals,
}

fn figures(l: &Ledger) -> Figures {
    let (from, to) = (d("2026-11-01"), d("2026-11-30"));
    let mut s = MarkupSchedule::flat(dec!(1.3));
    s.set(d("2026-11-15"), dec!(1.4));
    let users = l.by_user_priced("acme", from, to, &s).unwrap();
    let mut user_sum = mai_core::usage::Totals::default();
    for u in &users {
        user_sum.add(&u.row.totals).unwrap();
    }
    user_sum.cost_usd = user_sum.cost_usd.normalize();
    Figures {
        daily: l.daily("acme", from, to).unwrap(),
        by_model: l
            .by_model_priced("acme", from, to, &s)
            .unwrap()
            .into_iter()
            .map(|m| (m.row.model, m.row.totals, m.client_cost_usd))
            .collect(),
        month_client_cost: l
            .month_summary(
                "acme",
                YearMonth::new(2026, 11).unwrap(),
                d("2026-11-30"),
                &s,
            )
            .unwrap()
            .client_cost_usd,
        jan: users
            .iter()
            .find(|u| u.row.user.id.as_deref() == Some("u-jan"))
            .unwrap()
            .row
            .totals,
        user_sum,
        globex: l.range("globex", from, to).unwrap(),
    }
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn file_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut all = std::fs::read(db).unwrap();
    for ext in ["-wal", "-journal"] {
        if let Ok(b) = std::fs::read(format!("{}{ext}", db.display())) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn erasure_keeps_every_total_and_leaves_no_byte_of_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let mut l = Ledger::open(&db).unwrap();
    seed(&mut l);
    let before = figures(&l);
    let export = l
        .user_export(
            "acme",
            &PrivacySubject {
                id: None,
                email: Some(format!("  {} ", EMAIL.to_uppercase())),
            },
        )
        .unwrap();
    // By e-mail (any case): her id's events, and the one under her e-mail alone.
    let ids: Vec<&str> = export
        .events
        .iter()
        .map(|e| e.event.generation_id.as_str())
        .collect();
    assert_eq!(ids, ["gen-1", "gen-2", "gen-3", "gen-4", "gen-9"]);
    assert_eq!(export.totals.requests, 5);
    assert_eq!(export.totals.cost_usd, dec!(0.255));
    l.checkpoint().unwrap();
    assert!(contains(&file_bytes(&db), EMAIL), "the test sees the bytes");

    let r = l
        .erase_user(
            "acme",
            &PrivacySubject {
                id: Some("u-zofia".into()),
                email: Some(EMAIL.into()),
            },
            None,
            "operator",
        )
        .unwrap();
    assert_eq!(r.events, 5);
    assert!(r.pseudonym.starts_with(ERASED_USER_PREFIX));
    assert_eq!(r.pseudonym.len(), ERASED_USER_PREFIX.len() + 32);
    // u-zofia on 3, 14, 21 Nov; her e-mail key on 20 Nov.
    assert_eq!(r.rollup_rows, 4);
    assert!(r.compacted);

    let after = figures(&l);
    assert_eq!(
        before, after,
        "totals by day, model, user sum, org and month"
    );

    // The person is listed as one pseudonymous user with her exact totals.
    let (from, to) = (d("2026-11-01"), d("2026-11-30"));
    let users = l.by_user("acme", from, to).unwrap();
    let p = users
        .iter()
        .find(|u| u.user.id.as_deref() == Some(r.pseudonym.as_str()))
        .unwrap();
    assert_eq!((p.totals.requests, p.totals.cost_usd), (5, dec!(0.255)));
    assert_eq!(
        (p.user.email.as_deref(), p.user.name.as_deref()),
        (None, None)
    );
    assert!(!users.iter().any(|u| u.user.label() == Some(NAME)));
    // The stored events keep usage and lose identity and chat.
    let g2 = l.get("acme", "gen-2").unwrap().unwrap().event;
    assert_eq!(g2.user, UserRef::erased(&r.pseudonym));
    assert_eq!(g2.cost_usd, dec!(0.25));
    assert_eq!(g2.context.chat_id, None);
    assert_eq!(g2.context.groups.as_deref(), Some("Zarząd"));
    // Jan untouched.
    assert_eq!(
        l.get("acme", "gen-5")
            .unwrap()
            .unwrap()
            .event
            .user
            .name
            .as_deref(),
        Some("Jan Kowalski")
    );
    // Erased events come again in the change feed (a new seq).
    let page = l.events_since(0, 100).unwrap();
    let last: Vec<&str> = page.events[page.events.len() - 5..]
        .iter()
        .map(|e| e.event.generation_id.as_str())
        .collect();
    assert_eq!(last, ["gen-1", "gen-2", "gen-3", "gen-4", "gen-9"]);

    // No byte of her e-mail, name, id or chat ids is left in the file or the WAL.
    drop(l);
    let bytes = file_bytes(&db);
    for gone in [
        EMAIL,
        NAME,
        "u-zofia",
        "Zofia.Lukasiewicz@ACME.pl",
        "chat-of-gen-2",
    ] {
        assert!(!contains(&bytes, gone), "{gone} is still in the file");
    }
    assert!(contains(&bytes, "Jan Kowalski"));
    assert!(contains(&bytes, "chat-of-gen-5"));
    // The audit row names the subject by hash only.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (actor, detail): (String, String) = conn
        .query_row(
            "SELECT actor, detail FROM audit WHERE action = 'privacy_erase'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(actor, "operator");
    assert!(detail.contains(&r.subject_hash), "{detail}");
    assert!(!detail.contains(&r.pseudonym), "{detail}");
}

#[test]
fn a_later_record_of_an_erased_generation_does_not_bring_the_person_back() {
    let mut l = Ledger::open_in_memory().unwrap();
    seed(&mut l);
    // The same person at another client (org) of the same ledger (the console cache).
    let mut other = ev("gen-10", zofia(), at(3, 9), "openai/gpt-4o-mini", dec!(1));
    other.org_id = "globex".into();
    l.record(&other).unwrap();
    let r = l
        .erase_user(
            "acme",
            &PrivacySubject {
                id: Some("u-zofia".into()),
                email: None,
            },
            None,
            "t",
        )
        .unwrap();
    // gen-4 had only her e-mail and no id: not hers by id alone.
    assert_eq!(r.events, 4);
    // Reconciliation confirms the provisional one with OpenRouter's external_user.
    let mut c = ev(
        "gen-9",
        zofia(),
        at(21, 9),
        "openai/gpt-4o-mini",
        dec!(0.002),
    );
    c.source = Source::Reconciliation;
    assert_eq!(l.record(&c).unwrap(), RecordOutcome::Corrected);
    let g9 = l.get("acme", "gen-9").unwrap().unwrap().event;
    assert_eq!(g9.user, UserRef::erased(&r.pseudonym));
    assert_eq!(g9.context.chat_id, None);
    assert_eq!(g9.cost_usd, dec!(0.002));
    let users = l.by_user("acme", d("2026-11-21"), d("2026-11-21")).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user, UserRef::erased(&r.pseudonym));
    assert_eq!(users[0].totals.cost_usd, dec!(0.002));
    // Another org's events of the same person are that org's business.
    let g10 = l.get("globex", "gen-10").unwrap().unwrap().event;
    assert_eq!(g10.user, zofia());
}

#[test]
fn the_console_cache_takes_the_trackers_pseudonym_and_bad_requests_are_refused() {
    let mut l = Ledger::open_in_memory().unwrap();
    seed(&mut l);
    let p = format!("{ERASED_USER_PREFIX}{}", "ab".repeat(16));
    let s = PrivacySubject {
        id: None,
        email: Some(EMAIL.into()),
    };
    let r = l.erase_user("acme", &s, Some(&p), "t").unwrap();
    assert_eq!((r.pseudonym.as_str(), r.events), (p.as_str(), 5));
    // Again: nothing left to erase.
    assert_eq!(l.erase_user("acme", &s, Some(&p), "t").unwrap().events, 0);
    assert!(l.user_export("acme", &s).unwrap().events.is_empty());
    for bad in [
        PrivacySubject::default(),
        PrivacySubject {
            id: Some("  ".into()),
            email: Some(String::new()),
        },
        PrivacySubject {
            id: Some(p.clone()),
            email: None,
        },
    ] {
        assert!(l.erase_user("acme", &bad, None, "t").is_err(), "{bad:?}");
    }
    assert!(l.erase_user("acme", &s, Some("erased-x"), "t").is_err());
    // The hash names the subject the same way whatever the spacing and case.
    let h = mai_core::ledger::subject_hash;
    assert_eq!(
        h(&PrivacySubject {
            id: None,
            email: Some(format!(" {} ", EMAIL.to_uppercase()))
        }),
        h(&s)
    );
    assert_eq!(h(&s).len(), 64);
}
