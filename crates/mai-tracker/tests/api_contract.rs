//! The tracker's HTTP contract, end to end: every endpoint of a real tracker (against the
//! in-process OpenRouter simulator) is called over HTTP with request bodies written from
//! the `mai_wire` types, and every reply is read *strictly* into its `mai_wire` type,
//! written back, and compared with what was on the wire. Then the commercial terms the
//! console pushes (`PUT /api/v1/admin/terms`): they price every reply, survive restarts,
//! and bad ones are refused with the field named.

mod common;
use common::*;
use mai_core::time::{warsaw_day, warsaw_today, YearMonth};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_sim::openrouter::{OpenRouterSim, SimConfig};
use mai_wire::pricing::{CommercialTerms, LimitLevel, MarkupEntry, MarkupSchedule};
use mai_wire::tracker::{
    seed, ByChat, ByGroup, ByModel, ByTask, ByUser, Daily, ErrorBody, EventPage, KeyHandover,
    KeyLabel, KeyState, Month, Status, SyncReport, SyncRequest, SyncStatus, Today,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Debug;
use std::str::FromStr;
use std::time::Duration;

const MGMT: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Reads a reply strictly into `T` (the wire types refuse unknown fields), checks that
/// `T` written back is the reply as JSON (no field of the reply is lost) and that
/// serialize -> deserialize is the identity.
async fn typed<T>(r: reqwest::Response, status: u16) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let code = r.status().as_u16();
    let what = format!("{} {}", r.url().path(), std::any::type_name::<T>());
    let text = r.text().await.unwrap();
    assert_eq!(code, status, "{what}: {text}");
    let v: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: the reply is not its wire type: {e}\n{text}"));
    let written = serde_json::to_string(&v).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&written).unwrap(),
        serde_json::from_str::<Value>(&text).unwrap(),
        "{what}: the type written back differs from the reply"
    );
    assert_eq!(serde_json::from_str::<T>(&written).unwrap(), v, "{what}");
    v
}

/// An error reply: the status and an [`ErrorBody`] carrying the same code.
async fn error(r: reqwest::Response, status: u16) -> String {
    let e: ErrorBody = typed(r, status).await;
    assert_eq!(e.error.code, status);
    e.error.message
}

impl Env {
    fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &B,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
    }

    async fn read<T: DeserializeOwned + Serialize + PartialEq + Debug>(&self, path: &str) -> T {
        typed(self.get(path, READ).send().await.unwrap(), 200).await
    }

    async fn push_terms(&self, t: &CommercialTerms) -> CommercialTerms {
        let r = self
            .send(reqwest::Method::PUT, "/api/v1/admin/terms", ADMIN, t)
            .send()
            .await
            .unwrap();
        typed(r, 200).await
    }

    async fn put_raw(&self, path: &str, token: &str, body: &str) -> reqwest::Response {
        self.http
            .put(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

fn otlp_span(id: &str, cost: &str, key_name: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"key":"gen_ai.response.id","value":{{"stringValue":"{id}"}}}},{{"key":"gen_ai.request.model","value":{{"stringValue":"openai/gpt-4o-mini"}}}},{{"key":"gen_ai.usage.total_cost","value":{{"doubleValue":{cost}}}}},{{"key":"trace.metadata.openrouter.api_key_name","value":{{"stringValue":"{key_name}"}}}}]}}]}}]}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_with_its_wire_type() {
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = start_tracker(
        &sim.base_url(),
        dir.path(),
        &[("OPENROUTER_PROVISIONING_KEY", MGMT)],
    )
    .await;
    let env = Env {
        base: tracker.base_url(),
        sim,
        tracker: Some(tracker),
        dir,
        http: reqwest::Client::new(),
    };
    // A generation OpenRouter dates yesterday (UTC) that the tracker never saw, so the
    // status carries an `/activity` drift row too.
    env.sim
        .set_now(chrono::Utc::now() - chrono::Duration::days(1));
    env.http
        .post(format!("{}/chat/completions", env.sim.base_url()))
        .bearer_auth(KEY)
        .json(&body(false, None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    env.sim.reset_clock();
    // Traffic through the tracker: two known users (one streaming) and one unknown.
    for (i, user) in [Some("u1"), Some("u2"), None].into_iter().enumerate() {
        let mut rb = env.chat(body(i == 0, None));
        if let Some(u) = user {
            rb = rb
                .header("X-OpenWebUI-User-Id", u)
                .header("X-OpenWebUI-User-Email", format!("{u}@acme.pl"))
                .header("X-OpenWebUI-Chat-Id", format!("chat-of-{u}"))
                .header("X-Mai-Task", if i == 0 { "" } else { "title_generation" })
                .header("X-Mai-User-Groups", "Zarz%C4%85d");
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    env.flush().await;
    let today = warsaw_today();

    // Probes and metrics (not JSON).
    assert_eq!(
        env.get("/healthz", "")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        env.get("/readyz", "")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ready"
    );
    let m = env.get("/metrics", READ).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m
        .text()
        .await
        .unwrap()
        .contains("mai_metered_generations_total"));

    // Admin: reconciliation now.
    let r = env
        .send(
            reqwest::Method::POST,
            "/api/v1/sync",
            ADMIN,
            &SyncRequest { days_back: Some(1) },
        )
        .send()
        .await
        .unwrap();
    let report: SyncReport = typed(r, 200).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report:?}");
    let drift = report.drift.as_ref().expect("drift measured");
    assert_eq!(drift.activity.len(), 1, "{report:?}");

    // Read side.
    let status: Status = env.read("/api/v1/status").await;
    assert_eq!(status.org_id, "acme");
    assert_eq!(status.org_name.as_deref(), Some("ACME Sp. z o.o."));
    assert_eq!(status.terms, None, "nothing pushed yet");
    assert_eq!(status.key.state, KeyState::Ok);
    assert_eq!(status.key.label, "sk-or-v1-…00a1");
    assert_eq!(status.key.hash, mai_core::openrouter::key_hash(KEY));
    assert!(status.webhook.enabled);
    assert_eq!(
        status.webhook.secret_header.as_deref(),
        Some("x-mai-webhook-secret")
    );
    assert_eq!(status.sync.interval_seconds, 0);
    assert_eq!(status.sync.provisional_pending, Some(0));
    assert!(status.sync.last_success.is_some());
    assert_eq!(status.sync.drift.as_ref().unwrap().activity.len(), 1);
    assert_eq!(status.proxy.inflight, 0);

    let t: Today = env.read("/api/v1/usage/today").await;
    assert_eq!((t.date, t.requests), (today, 3));
    assert_eq!(t.markup_rate, dec("1.3"));
    assert_eq!(t.client_cost_usd, t.raw_cost_usd * dec("1.3"));
    assert_eq!(t.tokens.total, t.tokens.prompt + t.tokens.completion);
    let d: Daily = env
        .read(&format!(
            "/api/v1/usage/daily?from={}&to={today}",
            today.pred_opt().unwrap()
        ))
        .await;
    assert_eq!(d.days.len(), 2);
    assert_eq!(d.days[1].requests, 3);
    let u: ByUser = env.read("/api/v1/usage/by-user").await;
    assert_eq!(u.users.len(), 3);
    assert!(u
        .users
        .iter()
        .any(|x| x.user_id.is_none() && x.email.is_none()));
    assert!(u
        .users
        .iter()
        .any(|x| x.email.as_deref() == Some("u1@acme.pl")));
    let m: ByModel = env.read("/api/v1/usage/by-model").await;
    assert_eq!(m.models.len(), 1);
    assert_eq!(m.models[0].requests, 3);
    let tasks: ByTask = env.read("/api/v1/usage/by-task").await;
    let mut keys: Vec<_> = tasks.tasks.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["(unknown)", "chat", "title_generation"]);
    let groups: ByGroup = env.read("/api/v1/usage/by-group").await;
    let mut keys: Vec<_> = groups.groups.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["(no group)", "Zarząd"]);
    let chats: ByChat = env.read("/api/v1/usage/by-chat").await;
    assert_eq!(chats.chats.len(), 3);
    for rows in [&tasks.tasks, &groups.groups, &chats.chats] {
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 3);
        assert_eq!(
            rows.iter().map(|r| r.raw_cost_usd).sum::<Decimal>(),
            t.raw_cost_usd
        );
        assert_eq!(
            rows.iter().map(|r| r.client_cost_usd).sum::<Decimal>(),
            t.client_cost_usd
        );
    }
    let month: Month = env.read("/api/v1/usage/month").await;
    assert_eq!(month.month, YearMonth::of(today).to_string());
    assert_eq!(month.requests, 3);
    assert_eq!(month.limit, None, "no limit until terms are pushed");
    let page: EventPage = env.read("/api/v1/events?after=0&limit=2").await;
    assert_eq!(page.events.len(), 2);
    assert!(page.has_more);
    let rest: EventPage = env
        .read(&format!(
            "/api/v1/events?after={}&limit=5",
            page.next_cursor
        ))
        .await;
    assert_eq!(rest.events.len(), 1);
    assert!(!rest.has_more);
    let all: Vec<_> = page.events.iter().chain(&rest.events).collect();
    assert!(all
        .iter()
        .all(|e| e.source == Source::Proxy && e.state == EventState::Confirmed));
    assert!(all
        .iter()
        .any(|e| e.context.chat_id.as_deref() == Some("chat-of-u1")
            && e.context.task.as_deref() == Some("chat")
            && e.context.groups.as_deref() == Some("Zarząd")));

    // Admin: terms and key hand-over.
    let terms = CommercialTerms {
        markup: MarkupSchedule::flat(dec("1.25")),
        monthly_limit_usd: Some(dec("100")),
    };
    assert_eq!(env.push_terms(&terms).await, terms);
    let r = env
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/openrouter-key",
            ADMIN,
            &KeyHandover {
                key: KEY.into(),
                name: None,
            },
        )
        .send()
        .await
        .unwrap();
    let label: KeyLabel = typed(r, 200).await;
    assert_eq!(label.label, "sk-or-v1-…00a1");

    // Seed-compatible endpoints.
    let r = env
        .send(
            reqwest::Method::POST,
            "/api/v1/usage-tracking/sync/openrouter-usage",
            ADMIN,
            &SyncRequest { days_back: None },
        )
        .send()
        .await
        .unwrap();
    let s: seed::SyncReply = typed(r, 200).await;
    assert_eq!(s.status, seed::RunStatus::Success);
    assert_eq!(s.results[0].organization, "acme");
    assert_eq!(s.results[0].status, seed::OrgStatus::Success);
    let rt: seed::RealTime = env
        .read("/api/v1/usage-tracking/usage/real-time/acme")
        .await;
    assert_eq!(rt.requests, 3);
    assert_eq!(rt.raw_cost, t.raw_cost_usd);
    assert_eq!(
        rt.cost,
        t.raw_cost_usd * dec("1.25"),
        "priced with the pushed terms"
    );
    let manual = seed::ManualRecord {
        model: "openai/gpt-4o-mini".into(),
        tokens: 1000,
        prompt_tokens: None,
        completion_tokens: Some(10),
        cost: dec("0.5"),
        user_id: Some("u1".into()),
        note: Some("contract test".into()),
    };
    let r = env
        .send(
            reqwest::Method::POST,
            "/api/v1/usage-tracking/usage/manual-record",
            ADMIN,
            &manual,
        )
        .send()
        .await
        .unwrap();
    let rec: seed::Recorded = typed(r, 201).await;
    assert_eq!(rec.status, seed::RecordedStatus::Recorded);
    assert!(rec.generation_id.starts_with("man-"));
    let hook = |b: String| {
        env.http
            .post(format!(
                "{}/api/v1/usage-tracking/webhook/openrouter-usage",
                env.base
            ))
            .header("X-Mai-Webhook-Secret", HOOK)
            .body(b)
            .send()
    };
    // The key's OpenRouter name, learned with the management key.
    let key_name = status.key.name.clone().expect("key name learned");
    let w: seed::WebhookReply = typed(hook(String::new()).await.unwrap(), 200).await;
    assert_eq!((w.recorded, w.duplicates), (0, 0));
    let w: seed::WebhookReply = typed(
        hook(otlp_span("gen-contract-1", "2.5e-5", &key_name))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!((w.recorded, w.duplicates), (1, 0));
    let w: seed::WebhookReply = typed(
        hook(otlp_span("gen-contract-1", "2.5e-5", &key_name))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!((w.recorded, w.duplicates), (0, 1));
    env.flush().await;
    let page: EventPage = env.read("/api/v1/events?after=0&limit=100").await;
    let manual_ev = page
        .events
        .iter()
        .find(|e| e.generation_id == rec.generation_id)
        .unwrap();
    assert_eq!(
        (manual_ev.source, manual_ev.cost_usd),
        (Source::Manual, dec("0.5"))
    );
    assert!(page
        .events
        .iter()
        .any(|e| e.source == Source::Webhook && e.cost_usd == dec("0.000025")));

    // Errors are ErrorBody everywhere.
    let msg = error(env.get("/api/v1/status", PROXY).send().await.unwrap(), 401).await;
    assert!(msg.contains("read or admin token"), "{msg}");
    let msg = error(env.get("/api/v1/nope", READ).send().await.unwrap(), 404).await;
    assert!(msg.contains("/api/v1/nope"), "{msg}");
    let msg = error(
        env.get("/api/v1/usage/daily?from=23.11.2026", READ)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("from=\"23.11.2026\""), "{msg}");
    error(
        env.get("/api/v1/usage-tracking/usage/real-time/other", READ)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let msg = error(
        env.http
            .post(format!("{}/api/v1/sync", env.base))
            .bearer_auth(ADMIN)
            .body(r#"{"days_bak":1}"#)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("days_bak"), "an unknown field is named: {msg}");
    let msg = error(
        env.http
            .post(format!(
                "{}/api/v1/usage-tracking/usage/manual-record",
                env.base
            ))
            .bearer_auth(ADMIN)
            .body(r#"{"model":"m","cost":1,"cost_usd":1}"#)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(msg.contains("cost_usd"), "{msg}");
    env.tracker.unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_terms_price_every_reply_survive_restarts_and_bad_ones_are_refused() {
    let mut env = start(SimConfig::fast()).await;
    let today = warsaw_today();
    // One confirmed event of u1 at least a day ago (written as reconciliation would)...
    let past_at = chrono::Utc::now() - chrono::Duration::hours(30);
    let past_day = warsaw_day(past_at);
    assert!(past_day < today);
    env.ledger()
        .record(&UsageEvent {
            generation_id: "gen-past-1".into(),
            org_id: "acme".into(),
            user: UserRef {
                id: Some("u1".into()),
                email: None,
                name: None,
            },
            model: "openai/gpt-4o-mini".into(),
            provider: None,
            tokens: Tokens {
                prompt: 10,
                completion: 5,
                reasoning: 0,
                cached: 0,
            },
            cost_usd: dec("1"),
            source: Source::Reconciliation,
            state: EventState::Confirmed,
            created_at: past_at,
            context: Default::default(),
        })
        .unwrap();
    // ...and two of u1 today through the proxy.
    for _ in 0..2 {
        env.chat(body(false, Some("u1")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    env.flush().await;
    let raw_today: Decimal = env.sim.generations().iter().map(|g| g.cost).sum();
    assert!(raw_today > Decimal::ZERO);
    let range = format!("from={past_day}&to={today}");

    // Before any push: the default, 1.3 flat, no limit.
    let s: Status = env.read("/api/v1/status").await;
    assert_eq!(s.terms, None);
    let u: ByUser = env.read(&format!("/api/v1/usage/by-user?{range}")).await;
    assert_eq!(
        u.users[0].client_cost_usd,
        (dec("1") + raw_today) * dec("1.3")
    );
    let month: Month = env.read("/api/v1/usage/month").await;
    assert_eq!(month.limit, None);

    // The console pushes: 1.3 until yesterday, 1.5 from today; a limit already passed.
    let terms = CommercialTerms {
        markup: MarkupSchedule {
            default_rate: dec("1.3"),
            entries: vec![MarkupEntry {
                effective_from: today,
                rate: dec("1.5"),
            }],
        },
        monthly_limit_usd: Some(dec("0.000001")),
    };
    assert_eq!(env.push_terms(&terms).await, terms);

    let check_priced = |env: &Env| {
        let (terms, range) = (terms.clone(), range.clone());
        let env_base = env.base.clone();
        let http = env.http.clone();
        async move {
            let get = |p: String| http.get(format!("{env_base}{p}")).bearer_auth(READ).send();
            let s: Status = typed(get("/api/v1/status".into()).await.unwrap(), 200).await;
            assert_eq!(s.terms.as_ref(), Some(&terms));
            let t: Today = typed(get("/api/v1/usage/today".into()).await.unwrap(), 200).await;
            assert_eq!(t.markup_rate, dec("1.5"));
            assert_eq!(t.client_cost_usd, raw_today * dec("1.5"));
            let d: Daily = typed(
                get(format!("/api/v1/usage/daily?{range}")).await.unwrap(),
                200,
            )
            .await;
            let past = d.days.iter().find(|x| x.date == past_day).unwrap();
            assert_eq!(
                past.client_cost_usd,
                dec("1.3"),
                "a past day keeps its rate"
            );
            assert_eq!(
                d.days.last().unwrap().client_cost_usd,
                raw_today * dec("1.5")
            );
            // By markup segment: the past dollar at 1.3, today's at 1.5 (not all at 1.5).
            let want = dec("1.3") + raw_today * dec("1.5");
            let u: ByUser = typed(
                get(format!("/api/v1/usage/by-user?{range}")).await.unwrap(),
                200,
            )
            .await;
            assert_eq!(u.users.len(), 1);
            assert_eq!(u.users[0].raw_cost_usd, dec("1") + raw_today);
            assert_eq!(u.users[0].client_cost_usd, want);
            let m: ByModel = typed(
                get(format!("/api/v1/usage/by-model?{range}"))
                    .await
                    .unwrap(),
                200,
            )
            .await;
            assert_eq!(m.models[0].client_cost_usd, want);
            let month: Month = typed(get("/api/v1/usage/month".into()).await.unwrap(), 200).await;
            let past_in_month = YearMonth::of(past_day) == YearMonth::of(today);
            let want_month = if past_in_month {
                want
            } else {
                raw_today * dec("1.5")
            };
            assert_eq!(month.client_cost_usd, want_month);
            let seg_sum: Decimal = month
                .markup_segments
                .iter()
                .map(|s| s.client_cost_usd)
                .sum();
            assert_eq!(seg_sum, want_month, "the month is the sum of its segments");
            let last = month.markup_segments.last().unwrap();
            assert_eq!((last.from, last.rate), (today, dec("1.5")));
            let limit = month.limit.expect("the pushed limit");
            assert_eq!(limit.monthly_limit_usd, dec("0.000001"));
            assert_eq!(limit.used_usd, want_month);
            assert_eq!(limit.level, LimitLevel::Reached);
            let rt: seed::RealTime = typed(
                get("/api/v1/usage-tracking/usage/real-time/acme".into())
                    .await
                    .unwrap(),
                200,
            )
            .await;
            assert_eq!(rt.cost, raw_today * dec("1.5"));
        }
    };
    check_priced(&env).await;

    // Bad pushes: refused with the field (and value) named; nothing changes.
    let good_markup = r#"{"default_rate":"1.3","entries":[]}"#;
    let cases: Vec<(String, u16, Vec<&str>)> = vec![
        (
            r#"{"markup":{"default_rate":"0","entries":[]},"monthly_limit_usd":null}"#.into(),
            422,
            vec!["markup.default_rate", "\"0\""],
        ),
        (
            r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-15","rate":"1.2"},{"effective_from":"2026-11-01","rate":"1.4"}]},"monthly_limit_usd":null}"#.into(),
            422,
            vec!["markup.entries[1].effective_from", "2026-11-01", "by day"],
        ),
        (
            r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-15","rate":"250"}]},"monthly_limit_usd":null}"#.into(),
            422,
            vec!["markup.entries[0].rate", "\"250\""],
        ),
        (
            format!(r#"{{"markup":{good_markup},"monthly_limit_usd":"-1"}}"#),
            422,
            vec!["monthly_limit_usd", "\"-1\"", "negative"],
        ),
        (
            format!(r#"{{"markup":{good_markup},"monthly_limit_usd":"ten"}}"#),
            400,
            vec!["monthly_limit_usd = \"ten\""],
        ),
        (
            format!(r#"{{"markup":{good_markup}}}"#),
            400,
            vec!["monthly_limit_usd"],
        ),
        (
            format!(r#"{{"markup":{good_markup},"monthly_limit_usd":null,"currency":"PLN"}}"#),
            400,
            vec!["currency"],
        ),
        ("markup=1.3".into(), 400, vec!["terms body rejected"]),
    ];
    for (body, status, want) in &cases {
        let msg = error(
            env.put_raw("/api/v1/admin/terms", ADMIN, body).await,
            *status,
        )
        .await;
        for w in want {
            assert!(msg.contains(w), "{body}: `{msg}` lacks `{w}`");
        }
    }
    let msg = error(
        env.put_raw(
            "/api/v1/admin/terms",
            READ,
            &serde_json::to_string(&terms).unwrap(),
        )
        .await,
        401,
    )
    .await;
    assert!(msg.contains("admin token"), "{msg}");
    check_priced(&env).await;

    // A restart keeps them, even with the retired settings in the environment.
    env.restart(&[("MAI_MARKUP_RATE", "9"), ("MAI_MONTHLY_LIMIT_USD", "1000")])
        .await;
    check_priced(&env).await;

    // A new push replaces them, and that survives a restart too.
    let flat = CommercialTerms {
        markup: MarkupSchedule::flat(dec("2")),
        monthly_limit_usd: None,
    };
    env.push_terms(&flat).await;
    env.restart(&[]).await;
    let s: Status = env.read("/api/v1/status").await;
    assert_eq!(s.terms, Some(flat));
    let t: Today = env.read("/api/v1/usage/today").await;
    assert_eq!(t.client_cost_usd, raw_today * dec("2"));
    let month: Month = env.read("/api/v1/usage/month").await;
    assert_eq!(month.limit, None);
    env.tracker.take().unwrap().shutdown().await.unwrap();
}

/// The real binary with the retired settings: it starts, serves, and says once, on its
/// log, that they are ignored and where markup and limit are set now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_markup_settings_are_ignored_with_one_warning() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = env_map(&sim.base_url(), &dir.path().join("t.sqlite"), "acme");
    vars.insert("MAI_TRACKER_LISTEN", format!("127.0.0.1:{port}"));
    vars.insert("MAI_MARKUP_RATE", "1.5".into());
    vars.insert("MAI_MONTHLY_LIMIT_USD", "100".into());
    vars.insert("RUST_LOG", "warn".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mai-tracker"))
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning mai-tracker");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually("tracker ready", Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let s: Status = typed(
        http.get(format!("{base}/api/v1/status"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(s.terms, None, "the retired settings are not terms");
    let t: Today = typed(
        http.get(format!("{base}/api/v1/usage/today"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(t.markup_rate, dec("1.3"), "MAI_MARKUP_RATE=1.5 is not used");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("MAI_MARKUP_RATE"))
        .collect();
    assert_eq!(lines.len(), 1, "one warning line:\n{log}");
    for w in [
        "WARN",
        "ignoring MAI_MARKUP_RATE and MAI_MONTHLY_LIMIT_USD",
        "fleet file",
        "PUT /api/v1/admin/terms",
    ] {
        assert!(lines[0].contains(w), "`{}` lacks `{w}`", lines[0]);
    }
}

/// GDPR: a person's usage exported and then erased over the admin API. Totals stay
/// exact, the person leaves the ledger file and the crash journal, others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_export_and_erase_round_trip() {
    use mai_wire::tracker::{EraseRequest, ErasureReport, PrivacyExport, PrivacySubject};
    let env = start(mai_sim::openrouter::SimConfig::fast()).await;
    for (id, name) in [
        ("u1", "Anna%20Nowak"),
        ("u1", "Anna%20Nowak"),
        ("u2", "Jan"),
    ] {
        let r = env
            .chat(body(false, None))
            .header("X-OpenWebUI-User-Id", id)
            .header("X-OpenWebUI-User-Email", format!("{id}@acme.pl"))
            .header("X-OpenWebUI-User-Name", name)
            .header("X-OpenWebUI-Chat-Id", format!("chat-of-{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    env.flush().await;
    let journal = format!("{}.journal", env.db().display());
    assert!(std::fs::read_to_string(&journal)
        .unwrap()
        .contains("u1@acme.pl"));
    let month_before: Month = env.read("/api/v1/usage/month").await;
    let models_before: ByModel = env.read("/api/v1/usage/by-model").await;

    // Export: admin only; by e-mail in another case.
    let path = "/api/v1/admin/privacy/export?email=U1@acme.pl";
    assert_eq!(env.get(path, READ).send().await.unwrap().status(), 401);
    let x: PrivacyExport = typed(env.get(path, ADMIN).send().await.unwrap(), 200).await;
    assert_eq!(
        (x.org_id.as_str(), x.requests, x.events.len()),
        ("acme", 2, 2)
    );
    assert!(x
        .events
        .iter()
        .all(|e| e.user.name.as_deref() == Some("Anna Nowak")));
    assert_eq!(
        x.raw_cost_usd,
        x.events.iter().map(|e| e.cost_usd).sum::<Decimal>()
    );
    let m = error(
        env.get("/api/v1/admin/privacy/export", ADMIN)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(m.contains("user id or e-mail"), "{m}");

    // Erase.
    let erase = |b: &str| {
        env.http
            .post(format!("{}/api/v1/admin/privacy/erase", env.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(b.to_owned())
    };
    let m = error(erase("{\"user\":{}}").send().await.unwrap(), 400).await;
    assert!(m.contains("user id or e-mail"), "{m}");
    error(
        erase("{\"email\":\"u1@acme.pl\"}").send().await.unwrap(),
        400,
    )
    .await;
    let req = EraseRequest {
        user: PrivacySubject {
            id: Some("u1".into()),
            email: Some("u1@acme.pl".into()),
        },
    };
    let r = env
        .send(
            reqwest::Method::POST,
            "/api/v1/admin/privacy/erase",
            READ,
            &req,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = env
        .send(
            reqwest::Method::POST,
            "/api/v1/admin/privacy/erase",
            ADMIN,
            &req,
        )
        .send()
        .await
        .unwrap();
    let rep: ErasureReport = typed(r, 200).await;
    assert_eq!((rep.events, rep.rollup_rows), (2, 1));
    assert!(rep.journal_lines >= 2, "{rep:?}");
    assert!(rep.compacted);
    assert_eq!(rep.subject_hash, mai_core::ledger::subject_hash(&req.user));

    let month_after: Month = env.read("/api/v1/usage/month").await;
    let models_after: ByModel = env.read("/api/v1/usage/by-model").await;
    assert_eq!(month_before, month_after);
    assert_eq!(models_before, models_after);
    let users: ByUser = env.read("/api/v1/usage/by-user").await;
    let p = users
        .users
        .iter()
        .find(|u| u.user_id.as_deref() == Some(rep.pseudonym.as_str()))
        .expect("the pseudonym's row");
    assert_eq!(
        (p.requests, p.email.as_deref(), p.name.as_deref()),
        (2, None, None)
    );
    assert_eq!(p.raw_cost_usd, x.raw_cost_usd);
    assert!(users
        .users
        .iter()
        .any(|u| u.email.as_deref() == Some("u2@acme.pl")));
    let x2: PrivacyExport = typed(env.get(path, ADMIN).send().await.unwrap(), 200).await;
    assert!(x2.events.is_empty());

    // Nothing of her is left in the ledger file, its WAL or the journal files.
    let mut bytes = std::fs::read(env.db()).unwrap();
    for f in [
        format!("{}-wal", env.db().display()),
        journal.clone(),
        format!("{journal}.old"),
        format!("{journal}.quarantine"),
    ] {
        bytes.extend(std::fs::read(f).unwrap_or_default());
    }
    let has = |n: &str| bytes.windows(n.len()).any(|w| w == n.as_bytes());
    for gone in ["u1@acme.pl", "Anna Nowak", "chat-of-u1", "\"u1\""] {
        assert!(!has(gone), "{gone} is still on disk");
    }
    assert!(has("u2@acme.pl"));
}
