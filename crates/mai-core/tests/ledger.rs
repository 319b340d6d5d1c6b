//! Behaviour of the SQLite ledger on real files.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use mai_core::ledger::{ContextKey, Ledger, LedgerError, RecordOutcome};
use mai_core::pricing::MarkupSchedule;
use mai_core::time::YearMonth;
use mai_core::usage::{ChatContext, EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn ev(id: &str, at: DateTime<Utc>, cost: Decimal) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: UserRef {
            id: Some("u1".into()),
            email: Some("anna@acme.pl".into()),
            name: Some("Anna Żółć".into()),
        },
        model: "openai/gpt-4o-mini".into(),
        provider: Some("OpenAI".into()),
        tokens: Tokens {
            prompt: 100,
            completion: 20,
            reasoning: 0,
            cached: 10,
        },
        cost_usd: cost,
        source: Source::Proxy,
        state: EventState::Provisional,
        created_at: at,
        context: Default::default(),
    }
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[test]
fn same_generation_twice_counts_once_and_correction_moves_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
    let e = ev("gen-1", at(2026, 11, 23, 10, 0), dec!(0.001));
    assert_eq!(l.record(&e).unwrap(), RecordOutcome::Inserted);
    // Webhook delivers the same generation: same authority, ignored.
    let mut w = e.clone();
    w.source = Source::Webhook;
    assert_eq!(l.record(&w).unwrap(), RecordOutcome::Unchanged);
    assert_eq!(l.day("acme", day("2026-11-23")).unwrap().requests, 1);

    // Reconciliation: OpenRouter's record has other tokens and cost, no user details.
    let mut c = e.clone();
    c.source = Source::Reconciliation;
    c.state = EventState::Confirmed;
    c.cost_usd = dec!(0.0015);
    c.tokens.completion = 30;
    c.user = UserRef {
        id: Some("u1".into()),
        email: None,
        name: None,
    };
    assert_eq!(l.record(&c).unwrap(), RecordOutcome::Corrected);
    let t = l.day("acme", day("2026-11-23")).unwrap();
    assert_eq!(
        (t.requests, t.tokens.completion, t.cost_usd),
        (1, 30, dec!(0.0015))
    );
    let stored = l.get("acme", "gen-1").unwrap().unwrap();
    assert_eq!(
        stored.event.user.email.as_deref(),
        Some("anna@acme.pl"),
        "user details kept"
    );
    assert_eq!(stored.event.state, EventState::Confirmed);
    // A late proxy copy cannot undo the confirmation.
    assert_eq!(l.record(&e).unwrap(), RecordOutcome::Unchanged);
    let users = l
        .by_user("acme", day("2026-11-01"), day("2026-11-30"))
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user.name.as_deref(), Some("Anna Żółć"));
    assert_eq!(users[0].totals.cost_usd, dec!(0.0015));
}

#[test]
fn correction_that_changes_model_moves_between_model_rollups() {
    let mut l = Ledger::open_in_memory().unwrap();
    let e = ev("gen-2", at(2026, 11, 23, 10, 0), dec!(0.5));
    l.record(&e).unwrap();
    let mut c = e.clone();
    c.model = "openai/gpt-4o".into(); // the fallback model actually served
    c.state = EventState::Confirmed;
    c.source = Source::Reconciliation;
    l.record(&c).unwrap();
    let models = l
        .by_model("acme", day("2026-11-23"), day("2026-11-23"))
        .unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].model, "openai/gpt-4o");
}

#[test]
fn events_land_on_warsaw_days_including_dst_nights() {
    let mut l = Ledger::open_in_memory().unwrap();
    // 00:30 CET on 2026-03-29 (spring forward) is 23:30 UTC on the 28th.
    l.record(&ev("a", at(2026, 3, 28, 23, 30), dec!(1)))
        .unwrap();
    // 00:30 CEST on 2026-10-25 (fall back) is 22:30 UTC on the 24th.
    l.record(&ev("b", at(2026, 10, 24, 22, 30), dec!(2)))
        .unwrap();
    assert_eq!(l.day("acme", day("2026-03-29")).unwrap().cost_usd, dec!(1));
    assert_eq!(l.day("acme", day("2026-03-28")).unwrap().requests, 0);
    assert_eq!(l.day("acme", day("2026-10-25")).unwrap().cost_usd, dec!(2));
}

#[test]
fn month_summary_applies_markup_from_its_effective_day() {
    let mut l = Ledger::open_in_memory().unwrap();
    for d in 1..=30 {
        l.record(&ev(&format!("g{d}"), at(2026, 11, d, 10, 0), dec!(0.1)))
            .unwrap();
    }
    let mut schedule = mai_core::pricing::MarkupSchedule::default();
    schedule.set(day("2026-11-16"), dec!(2));
    let m = l
        .month_summary(
            "acme",
            "2026-11".parse::<YearMonth>().unwrap(),
            day("2026-12-05"),
            &schedule,
        )
        .unwrap();
    assert_eq!(m.totals.cost_usd, dec!(3));
    assert_eq!(m.client_cost_usd, dec!(4.95)); // 15 x 0.1 x 1.3 + 15 x 0.1 x 2
    assert!(!m.provisional);
}

#[test]
fn events_since_cursor_pages_and_sees_corrections() {
    let mut l = Ledger::open_in_memory().unwrap();
    let evs: Vec<_> = (0..5)
        .map(|i| ev(&format!("g{i}"), at(2026, 11, 1, 10, i), dec!(0.01)))
        .collect();
    l.record_batch(&evs).unwrap();
    let p = l.events_since(0, 3).unwrap();
    assert_eq!(p.events.len(), 3);
    assert!(p.has_more);
    let p2 = l.events_since(p.next_cursor, 3).unwrap();
    assert_eq!(p2.events.len(), 2);
    assert!(!p2.has_more);
    let mut c = evs[0].clone();
    c.state = EventState::Confirmed;
    c.source = Source::Reconciliation;
    l.record(&c).unwrap();
    let p3 = l.events_since(p2.next_cursor, 10).unwrap();
    assert_eq!(p3.events.len(), 1);
    assert_eq!(p3.events[0].event.generation_id, "g0");
    assert_eq!(p3.events[0].event.state, EventState::Confirmed);
}

#[test]
fn bad_event_rejects_the_whole_batch_and_touches_nothing() {
    let mut l = Ledger::open_in_memory().unwrap();
    l.record(&ev("keep", at(2026, 11, 1, 10, 0), dec!(1)))
        .unwrap();
    let mut bad = ev("bad", at(2026, 11, 1, 10, 0), dec!(-1));
    bad.cost_usd = dec!(-1);
    let err = l
        .record_batch(&[ev("ok", at(2026, 11, 1, 11, 0), dec!(1)), bad])
        .unwrap_err();
    assert!(
        err.to_string().contains("cost_usd") && err.to_string().contains("-1"),
        "{err}"
    );
    assert!(l.get("acme", "ok").unwrap().is_none());
    assert_eq!(l.day("acme", day("2026-11-01")).unwrap().cost_usd, dec!(1));
    let long = ev(&"x".repeat(300), at(2026, 11, 1, 10, 0), dec!(1));
    assert!(matches!(l.record(&long), Err(LedgerError::Invalid(_))));
}

#[test]
fn corrupt_file_is_reported_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("corrupt.db");
    let garbage =
        b"this is not an SQLite database, it is a text file that lost a fight".repeat(100);
    std::fs::write(&p, &garbage).unwrap();
    let err = Ledger::open(&p).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.db"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), garbage);
}

#[test]
fn newer_schema_is_refused_and_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("newer.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        l.record(&ev("g", at(2026, 11, 1, 10, 0), dec!(1))).unwrap();
    }
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 999).unwrap();
    }
    let err = Ledger::open(&p).unwrap_err();
    assert!(
        matches!(err, LedgerError::NewerSchema { found: 999, .. }),
        "{err}"
    );
    let c = rusqlite::Connection::open(&p).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        l.record(&ev("g", at(2026, 11, 1, 10, 0), dec!(0.000000001)))
            .unwrap();
        l.set_meta("cursor:acme", "42").unwrap();
    }
    let l = Ledger::open(&p).unwrap();
    assert_eq!(
        l.day("acme", day("2026-11-01")).unwrap().cost_usd,
        dec!(0.000000001)
    );
    assert_eq!(l.get_meta("cursor:acme").unwrap().as_deref(), Some("42"));
    assert_eq!(l.orgs().unwrap(), vec!["acme".to_string()]);
}

#[test]
fn inverted_or_huge_ranges_are_refused_with_the_dates() {
    let l = Ledger::open_in_memory().unwrap();
    let e = l
        .daily("acme", day("2026-11-02"), day("2026-11-01"))
        .unwrap_err();
    assert!(e.to_string().contains("2026-11-02"), "{e}");
    assert!(l
        .daily("acme", day("2020-01-01"), day("2026-01-01"))
        .is_err());
}

#[test]
fn manual_records_leave_an_audit_trail_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        let mut m = ev("man-1", at(2026, 11, 2, 10, 0), dec!(0.5));
        m.source = Source::Manual;
        assert_eq!(
            l.record_audited(&m, "admin-token", "refund of a broken day")
                .unwrap(),
            RecordOutcome::Inserted
        );
        // A bad manual record writes neither the event nor the audit row.
        m.generation_id = "man-2".into();
        m.cost_usd = dec!(-3);
        assert!(l.record_audited(&m, "admin-token", "typo").is_err());
    }
    let c = rusqlite::Connection::open(&p).unwrap();
    let rows: Vec<(String, String, String)> = c
        .prepare("SELECT actor, generation_id, detail FROM audit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("admin-token", "man-1")
    );
    assert!(rows[0].2.contains("refund of a broken day") && rows[0].2.contains("0.5"));
}

#[test]
fn utc_windows_sum_events_by_model_for_drift_checks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    let mut l = Ledger::open(&p).unwrap();
    // 23:30 UTC on the 1st is the 2nd in Warsaw: in the UTC day of the 1st.
    l.record(&ev("a", at(2026, 11, 1, 23, 30), dec!(0.25)))
        .unwrap();
    l.record(&ev("b", at(2026, 11, 2, 0, 30), dec!(0.5)))
        .unwrap();
    let r = Ledger::open_read_only(&p).unwrap();
    let w = r
        .utc_window_by_model("acme", at(2026, 11, 1, 0, 0), at(2026, 11, 2, 0, 0))
        .unwrap();
    let t = &w["openai/gpt-4o-mini"];
    assert_eq!(
        (t.requests, t.cost_usd, t.tokens.prompt),
        (1, dec!(0.25), 100)
    );
}

fn with_context(
    mut e: UsageEvent,
    chat: Option<&str>,
    task: Option<&str>,
    groups: Option<&str>,
) -> UsageEvent {
    e.context = ChatContext {
        chat_id: chat.map(String::from),
        task: task.map(String::from),
        groups: groups.map(String::from),
    };
    e
}

#[test]
fn context_is_stored_kept_through_corrections_and_reported_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
    let evs = [
        with_context(
            ev("g1", at(2026, 11, 9, 10, 0), dec!(0.0010)),
            Some("chat-a"),
            Some("chat"),
            Some("Księgowość, Zarząd"),
        ),
        with_context(
            ev("g2", at(2026, 11, 9, 10, 1), dec!(0.0003)),
            Some("chat-a"),
            Some("title_generation"),
            Some("Księgowość, Zarząd"),
        ),
        // After the markup change below.
        with_context(
            ev("g3", at(2026, 11, 12, 9, 0), dec!(0.0021)),
            Some("chat-b"),
            Some("chat"),
            None,
        ),
        with_context(
            ev("g4", at(2026, 11, 12, 9, 5), dec!(0.00007)),
            None,
            None,
            None,
        ),
    ];
    l.record_batch(&evs).unwrap();
    // Reconciliation knows nothing of the chat: the proxy's context stays.
    let mut c = evs[0].clone();
    c.context = ChatContext::default();
    c.source = Source::Reconciliation;
    c.state = EventState::Confirmed;
    c.cost_usd = dec!(0.0011);
    assert_eq!(l.record(&c).unwrap(), RecordOutcome::Corrected);
    assert_eq!(
        l.get("acme", "g1").unwrap().unwrap().event.context,
        evs[0].context
    );
    let page = l.events_since(0, 10).unwrap();
    assert!(page
        .events
        .iter()
        .any(|e| e.event.context == evs[1].context));

    let mut schedule = MarkupSchedule::flat(dec!(1.3));
    schedule.set(day("2026-11-10"), dec!(1.5));
    let (from, to) = (day("2026-11-01"), day("2026-11-30"));
    let total = l.range("acme", from, to).unwrap();
    let month_client =
        mai_core::pricing::price_days(&schedule, &l.daily("acme", from, to).unwrap())
            .unwrap()
            .iter()
            .fold(Decimal::ZERO, |a, s| {
                a + mai_core::pricing::client_cost(s.raw_cost_usd, s.rate).unwrap()
            });
    for key in [ContextKey::Task, ContextKey::Group, ContextKey::Chat] {
        let rows = l
            .by_context_priced("acme", from, to, &schedule, key)
            .unwrap();
        let (mut req, mut raw, mut client, mut tokens) = (0, Decimal::ZERO, Decimal::ZERO, 0);
        for r in &rows {
            req += r.row.totals.requests;
            raw += r.row.totals.cost_usd;
            client += r.client_cost_usd;
            tokens += r.row.totals.tokens.total();
        }
        assert_eq!(req, total.requests, "{key:?}");
        assert_eq!(raw, total.cost_usd, "{key:?}");
        assert_eq!(tokens, total.tokens.total(), "{key:?}");
        assert_eq!(client, month_client, "{key:?}");
    }
    let tasks = l
        .by_context_priced("acme", from, to, &schedule, ContextKey::Task)
        .unwrap();
    let keys: Vec<_> = tasks.iter().map(|r| r.row.key.as_str()).collect();
    assert_eq!(keys, ["chat", "title_generation", "(unknown)"]);
    // chat: 0.0011 at 1.3 + 0.0021 at 1.5, each day at its own rate.
    assert_eq!(tasks[0].row.totals.cost_usd, dec!(0.0032));
    assert_eq!(tasks[0].client_cost_usd, dec!(0.00458));
    assert_eq!(tasks[0].row.totals.requests, 2);
    let groups = l
        .by_context_priced("acme", from, to, &schedule, ContextKey::Group)
        .unwrap();
    let keys: Vec<_> = groups.iter().map(|r| r.row.key.as_str()).collect();
    assert_eq!(keys, ["(no group)", "Księgowość, Zarząd"]);
    let chats = l
        .by_context_priced("acme", from, to, &schedule, ContextKey::Chat)
        .unwrap();
    let keys: Vec<_> = chats.iter().map(|r| r.row.key.as_str()).collect();
    assert_eq!(keys, ["chat-b", "chat-a", "(no chat)"]);
}

#[test]
fn a_ledger_of_schema_1_is_migrated_and_its_rows_read_without_context() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v1.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        l.record(&ev("old", at(2026, 11, 1, 10, 0), dec!(0.5)))
            .unwrap();
    }
    {
        // Back to schema 1: what a ledger written before this version holds.
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "DROP INDEX events_org_day; ALTER TABLE events DROP COLUMN chat_id;
             ALTER TABLE events DROP COLUMN task; ALTER TABLE events DROP COLUMN groups;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let l = Ledger::open(&p).unwrap();
    let e = l.get("acme", "old").unwrap().unwrap().event;
    assert_eq!(e.context, ChatContext::default());
    assert_eq!(e.user.name.as_deref(), Some("Anna Żółć"));
    let rows = l
        .by_context_priced(
            "acme",
            day("2026-11-01"),
            day("2026-11-30"),
            &MarkupSchedule::flat(dec!(1.3)),
            ContextKey::Task,
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row.key, "(unknown)");
    assert_eq!(rows[0].client_cost_usd, dec!(0.65));
}

/// The console's cache holds every client's events in one ledger: two trackers that
/// send the same generation id (ids are unique per OpenRouter account, not across
/// clients) must each keep their own event and totals.
#[test]
fn two_orgs_with_the_same_generation_id_keep_their_own_events_and_totals() {
    let mut l = Ledger::open_in_memory().unwrap();
    let t = at(2026, 11, 23, 10, 0);
    let a = ev("gen-same", t, dec!(0.25));
    let mut b = ev("gen-same", t, dec!(4));
    b.org_id = "globex".into();
    b.user.email = Some("jan@globex.pl".into());
    assert_eq!(l.record(&a).unwrap(), RecordOutcome::Inserted);
    assert_eq!(l.record(&b).unwrap(), RecordOutcome::Inserted);
    // A confirmation of one client's event corrects that one only.
    let mut b2 = b.clone();
    b2.state = EventState::Confirmed;
    b2.source = Source::Reconciliation;
    b2.cost_usd = dec!(5);
    assert_eq!(l.record(&b2).unwrap(), RecordOutcome::Corrected);
    // The same id twice in one batch, for two orgs: two inserts.
    let mut c1 = ev("gen-batch", t, dec!(1));
    c1.org_id = "acme".into();
    let mut c2 = c1.clone();
    c2.org_id = "globex".into();
    assert_eq!(
        l.record_batch(&[c1, c2]).unwrap(),
        vec![RecordOutcome::Inserted, RecordOutcome::Inserted]
    );

    let ea = l.get("acme", "gen-same").unwrap().unwrap().event;
    let eb = l.get("globex", "gen-same").unwrap().unwrap().event;
    assert_eq!(
        (ea.cost_usd, ea.state),
        (dec!(0.25), EventState::Provisional)
    );
    assert_eq!((eb.cost_usd, eb.state), (dec!(5), EventState::Confirmed));
    assert_eq!(eb.user.email.as_deref(), Some("jan@globex.pl"));
    let ta = l.day("acme", day("2026-11-23")).unwrap();
    let tb = l.day("globex", day("2026-11-23")).unwrap();
    assert_eq!((ta.requests, ta.cost_usd), (2, dec!(1.25)));
    assert_eq!((tb.requests, tb.cost_usd), (2, dec!(6)));
    assert!(l.get("initech", "gen-same").unwrap().is_none());
}

/// A ledger of schema 2 (events keyed by the generation id alone) is migrated to the
/// (org, generation id) key with its rows, sequence numbers and indexes.
#[test]
fn a_ledger_of_schema_2_is_migrated_to_the_org_and_generation_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v2.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        l.record(&ev("gen-1", at(2026, 11, 1, 10, 0), dec!(0.5)))
            .unwrap();
        l.record(&ev("gen-2", at(2026, 11, 2, 10, 0), dec!(0.75)))
            .unwrap();
    }
    {
        // Back to schema 2's table: generation_id alone is the primary key.
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "BEGIN;
             CREATE TABLE events_v2 (
                generation_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, org_id TEXT NOT NULL,
                day TEXT NOT NULL, user_key TEXT NOT NULL, user_id TEXT, user_email TEXT, user_name TEXT,
                model TEXT NOT NULL, provider TEXT, prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
                cached_tokens INTEGER NOT NULL, cost_usd TEXT NOT NULL, source TEXT NOT NULL,
                state TEXT NOT NULL, created_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
                chat_id TEXT, task TEXT, groups TEXT);
             INSERT INTO events_v2 SELECT generation_id, seq, org_id, day, user_key, user_id, user_email,
                user_name, model, provider, prompt_tokens, completion_tokens, reasoning_tokens,
                cached_tokens, cost_usd, source, state, created_at, recorded_at, chat_id, task, groups
                FROM events;
             DROP TABLE events;
             ALTER TABLE events_v2 RENAME TO events;
             CREATE INDEX events_provisional ON events (org_id, created_at) WHERE state = 'provisional';
             CREATE INDEX events_org_created ON events (org_id, created_at);
             CREATE INDEX events_org_day ON events (org_id, day);
             PRAGMA user_version = 2;
             COMMIT;",
        )
        .unwrap();
    }
    let mut l = Ledger::open(&p).unwrap();
    let e = l.get("acme", "gen-1").unwrap().unwrap();
    assert_eq!(e.event.cost_usd, dec!(0.5));
    let page = l.events_since(0, 10).unwrap().events;
    assert_eq!(page.len(), 2, "every row copied");
    assert!(page[0].seq < page[1].seq, "sequence numbers kept");
    let mut other = ev("gen-1", at(2026, 11, 1, 10, 0), dec!(3));
    other.org_id = "globex".into();
    assert_eq!(l.record(&other).unwrap(), RecordOutcome::Inserted);
    drop(l);
    let c = rusqlite::Connection::open(&p).unwrap();
    let mut names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.sort();
    assert_eq!(
        names,
        ["events_org_created", "events_org_day", "events_provisional"]
    );
    let pk: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('events') WHERE pk > 0 ORDER BY pk")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pk, ["org_id", "generation_id"]);
}
