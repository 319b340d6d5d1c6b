//! The ledger's SQL schema, as an append-only list of migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Opening a database
//! runs the missing ones, each in its own transaction, so an upgrade either completes
//! or leaves the file as it was. Migrations only ever add: never edit a released one,
//! append a new one.

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: events, three daily rollups, markup schedule, key/value metadata, audit trail.
    r#"
    CREATE TABLE events (
        generation_id     TEXT PRIMARY KEY,
        seq               INTEGER NOT NULL UNIQUE,
        org_id            TEXT NOT NULL,
        day               TEXT NOT NULL,
        user_key          TEXT NOT NULL,
        user_id           TEXT,
        user_email        TEXT,
        user_name         TEXT,
        model             TEXT NOT NULL,
        provider          TEXT,
        prompt_tokens     INTEGER NOT NULL CHECK (prompt_tokens >= 0),
        completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
        reasoning_tokens  INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
        cached_tokens     INTEGER NOT NULL CHECK (cached_tokens >= 0),
        cost_usd          TEXT NOT NULL,
        source            TEXT NOT NULL,
        state             TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        recorded_at       TEXT NOT NULL
    );
    CREATE INDEX events_provisional ON events (org_id, created_at) WHERE state = 'provisional';
    CREATE INDEX events_org_created ON events (org_id, created_at);

    CREATE TABLE rollup_org_day (
        org_id TEXT NOT NULL, day TEXT NOT NULL,
        requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_usd TEXT NOT NULL,
        PRIMARY KEY (org_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_user_day (
        org_id TEXT NOT NULL, day TEXT NOT NULL, user_key TEXT NOT NULL,
        user_id TEXT, user_email TEXT, user_name TEXT,
        requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_usd TEXT NOT NULL,
        PRIMARY KEY (org_id, day, user_key)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_model_day (
        org_id TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL,
        requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_usd TEXT NOT NULL,
        PRIMARY KEY (org_id, day, model)
    ) WITHOUT ROWID;

    CREATE TABLE markup (
        org_id TEXT NOT NULL, effective_from TEXT NOT NULL, rate TEXT NOT NULL,
        PRIMARY KEY (org_id, effective_from)
    ) WITHOUT ROWID;

    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        generation_id TEXT,
        detail TEXT NOT NULL
    );
    "#,
    // 2: what the chat app told about each request besides the user (Open WebUI's chat
    // id, the background task, the user's groups). Rows written before read as unknown
    // (NULL). The reports by task, group and chat scan a range's events by Warsaw day.
    r#"
    ALTER TABLE events ADD COLUMN chat_id TEXT;
    ALTER TABLE events ADD COLUMN task TEXT;
    ALTER TABLE events ADD COLUMN groups TEXT;
    CREATE INDEX events_org_day ON events (org_id, day);
    "#,
    // 3: an event is keyed by (org, generation id), not by the generation id alone. The
    // console's cache holds every client's events in one ledger, and a generation id is
    // only unique within what one tracker (one OpenRouter account) has seen: with the id
    // alone as the key, a second client's tracker sending the same id would be taken for
    // a redelivery and dropped, or (more authoritative) booked under the first client.
    // A tracker's own ledger holds one org, where this changes nothing. SQLite cannot
    // change a primary key in place: new table, copy, drop, rename, indexes again, all
    // in the migration's one transaction (schema.rs runs each migration in its own).
    r#"
    CREATE TABLE events_v3 (
        generation_id     TEXT NOT NULL,
        seq               INTEGER NOT NULL UNIQUE,
        org_id            TEXT NOT NULL,
        day               TEXT NOT NULL,
        user_key          TEXT NOT NULL,
        user_id           TEXT,
        user_email        TEXT,
        user_name         TEXT,
        model             TEXT NOT NULL,
        provider          TEXT,
        prompt_tokens     INTEGER NOT NULL CHECK (prompt_tokens >= 0),
        completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
        reasoning_tokens  INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
        cached_tokens     INTEGER NOT NULL CHECK (cached_tokens >= 0),
        cost_usd          TEXT NOT NULL,
        source            TEXT NOT NULL,
        state             TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        recorded_at       TEXT NOT NULL,
        chat_id           TEXT,
        task              TEXT,
        groups            TEXT,
        PRIMARY KEY (org_id, generation_id)
    );
    INSERT INTO events_v3 (generation_id, seq, org_id, day, user_key, user_id, user_email,
        user_name, model, provider, prompt_tokens, completion_tokens, reasoning_tokens,
        cached_tokens, cost_usd, source, state, created_at, recorded_at, chat_id, task, groups)
    SELECT generation_id, seq, org_id, day, user_key, user_id, user_email,
        user_name, model, provider, prompt_tokens, completion_tokens, reasoning_tokens,
        cached_tokens, cost_usd, source, state, created_at, recorded_at, chat_id, task, groups
    FROM events;
    DROP TABLE events;
    ALTER TABLE events_v3 RENAME TO events;
    CREATE INDEX events_provisional ON events (org_id, created_at) WHERE state = 'provisional';
    CREATE INDEX events_org_created ON events (org_id, created_at);
    CREATE INDEX events_org_day ON events (org_id, day);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
