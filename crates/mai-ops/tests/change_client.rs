//! `Ops::change_client` against real parts: a tracker in process (its ledger on disk),
//! the OpenRouter simulator's key management, the fleet file on disk, the audit log, the
//! billing store. Markup from a day on, the monthly limit pushed to the key and the
//! tracker, invoice data; refusals that leave everything as it was; a tracker that is
//! down after OpenRouter took the change.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_core::ledger::Ledger;
use mai_core::openrouter::key_hash;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::keys::SecretKind;
use mai_ops::ops::change::{
    ApplyState, AuditAction, AuditOutcome, ClientChange, ClientField, FieldValue, MarkupChange,
};
use mai_ops::{Fleet, Keychain, Ops, OpsError};
use mai_sim::openrouter::{FaultEndpoint, FaultRule, KeySpec, OpenRouterSim, SimConfig};
use rust_decimal::Decimal;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c1";
const MGMT: &str = "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111";
const ADMIN: &str = "admin-token-change-test";
const READ: &str = "read-token-change-test";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const FLEET: &str = r#"# Our fleet (hand-written; the console keeps these comments)
[console]
data_dir = "console"

[openrouter]
base_url = "SIM"

[[hosts]]
name = "h1"
docker = "unix:///nonexistent/docker.sock"

[[clients]]
# ACME, since 2025
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"  # checked with the client
address = "ul. Prosta 1"
host = "h1"
# Price = OpenRouter cost × markup.
markup = "1.3"
# Client cost per month, USD.
monthly_limit_usd = "100"
invoice_currency = "PLN"
tracker_url = "TRACKER"
tracker_read_token = "env:CHANGE_TEST_READ"
tracker_admin_token = "env:CHANGE_TEST_ADMIN"
"#;

struct Env {
    dir: tempfile::TempDir,
    sim: mai_sim::openrouter::SimHandle,
    tracker: Option<mai_tracker::Tracker>,
    ops: Ops,
    kc: Keychain,
}

impl Env {
    fn fleet_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fleet.toml")).unwrap()
    }

    async fn tracker_terms(&self) -> Option<mai_wire::CommercialTerms> {
        let s: mai_wire::tracker::Status = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/status",
                self.tracker.as_ref().unwrap().base_url()
            ))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s.terms
    }

    async fn key_on_openrouter(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/keys/{}", self.sim.base_url(), key_hash(KEY)))
            .bearer_auth(MGMT)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()["data"]
            .clone()
    }
}

async fn setup() -> Env {
    // SAFETY: the same values in every test of this file, set before threads read them.
    unsafe {
        std::env::set_var("CHANGE_TEST_READ", READ);
        std::env::set_var("CHANGE_TEST_ADMIN", ADMIN);
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        accept_any_key: false,
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    sim.register_key(KeySpec {
        name: "mai-acme".into(),
        limit: Some(dec("76.92")),
        ..KeySpec::new(KEY)
    });
    let db = dir.path().join("tracker.sqlite");
    let env: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.base_url()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("MAI_TRACKER_DB", db.display().to_string()),
        (
            "MAI_TRACKER_PROXY_TOKEN",
            "proxy-token-change-test".to_owned(),
        ),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();
    let text = FLEET
        .replace("SIM", &sim.base_url())
        .replace("TRACKER", &tracker.base_url());
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, &text).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    kc.set(SecretKind::OpenRouter, "acme", KEY).unwrap();
    kc.set_management_key(MGMT).unwrap();
    let mut ops = Ops::new(Fleet::load(&path).unwrap(), Ok(kc.clone())).unwrap();
    ops.docker_enabled = false;
    ops.today = Some(day("2026-11-20"));
    Env {
        dir,
        sim,
        tracker: Some(tracker),
        ops,
        kc,
    }
}

fn markup(rate: &str, from: &str) -> ClientChange {
    ClientChange {
        markup: Some(MarkupChange {
            rate: rate.into(),
            from: from.into(),
        }),
        ..Default::default()
    }
}

fn limit(v: &str) -> ClientChange {
    ClientChange {
        monthly_limit_usd: Some(v.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_limit_and_invoice_data_reach_the_file_the_key_the_tracker_and_the_audit() {
    let env = setup().await;
    let before = env.fleet_text();

    // Markup from next month: appended, comments kept, the tracker prices with it.
    let r = env
        .ops
        .change_client("acme", &markup("1.4", "2026-12-01"), "anna")
        .await
        .unwrap();
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].field, ClientField::Markup);
    assert_eq!(r.changes[0].old.as_deref(), Some("1.3"));
    assert_eq!(r.changes[0].new.as_deref(), Some("1.4 from 2026-12-01"));
    assert_eq!(r.fleet_file, ApplyState::Done);
    assert_eq!(r.tracker, ApplyState::Done);
    // Today's rate is unchanged, so is the key's cap; the cap will follow on Dec 1.
    assert_eq!(r.openrouter_key, ApplyState::NotNeeded);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("2026-12-01") && w.contains("--monthly-limit 100")),
        "{:?}",
        r.warnings
    );
    let text = env.fleet_text();
    let added: Vec<_> = text
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(
        added,
        ["markup_changes = [{ from = 2026-12-01, rate = \"1.4\" }]"],
        "{text}"
    );
    assert_eq!(before.lines().count() + 1, text.lines().count());
    for comment in [
        "# Our fleet",
        "# ACME, since 2025",
        "# checked with the client",
        "# Price = OpenRouter cost × markup.",
        "# Client cost per month, USD.",
    ] {
        assert!(text.contains(comment), "{comment} kept:\n{text}");
    }
    let f = Fleet::load(&env.dir.path().join("fleet.toml")).unwrap();
    assert_eq!(
        f.client("acme").unwrap().markup_on(day("2026-12-01")),
        dec("1.4")
    );
    assert_eq!(
        env.tracker_terms().await.as_ref(),
        Some(&f.client("acme").unwrap().terms)
    );

    // The monthly limit: the key's cap (limit / today's markup, cents down), the file,
    // the tracker.
    let r = env
        .ops
        .change_client("acme", &limit("200"), "anna")
        .await
        .unwrap();
    assert_eq!(r.openrouter_key, ApplyState::Done);
    assert_eq!(r.key_limit_usd, Some(dec("153.84")));
    assert_eq!(r.tracker, ApplyState::Done);
    let k = env.key_on_openrouter().await;
    assert_eq!(k["limit"], serde_json::json!(153.84), "{k}");
    assert_eq!(k["limit_reset"], "monthly", "{k}");
    assert!(env.fleet_text().contains("monthly_limit_usd = \"200\"\n"));
    assert!(env
        .fleet_text()
        .contains("# Client cost per month, USD.\nmonthly_limit_usd"));
    assert_eq!(
        env.tracker_terms().await.unwrap().monthly_limit_usd,
        Some(dec("200"))
    );

    // Invoice data: no key, no tracker; the NIP as typed.
    let r = env
        .ops
        .change_client(
            "acme",
            &ClientChange {
                invoice: vec![
                    FieldValue {
                        field: ClientField::Nip,
                        value: "7010002139".into(),
                    },
                    FieldValue {
                        field: ClientField::InvoiceEmail,
                        value: "faktury@acme.example".into(),
                    },
                    FieldValue {
                        field: ClientField::InvoiceCurrency,
                        value: "PLN".into(),
                    },
                ],
                ..Default::default()
            },
            "bartek",
        )
        .await
        .unwrap();
    assert_eq!(
        r.changes.len(),
        2,
        "the currency was PLN already: {:?}",
        r.changes
    );
    assert_eq!(
        (r.openrouter_key, r.tracker),
        (ApplyState::NotNeeded, ApplyState::NotNeeded)
    );
    let text = env.fleet_text();
    assert!(
        text.contains("nip = \"7010002139\"  # checked with the client\n"),
        "{text}"
    );
    assert!(
        text.contains("invoice_currency = \"PLN\"\ninvoice_email = \"faktury@acme.example\"\n"),
        "{text}"
    );

    // The audit history, newest first, who and old → new.
    let h = env.ops.client_history("acme").unwrap();
    assert_eq!(h.len(), 3, "{h:#?}");
    assert!(h
        .iter()
        .all(|e| e.action == AuditAction::ClientChange && e.outcome == AuditOutcome::Ok));
    assert_eq!(h[0].actor, "bartek");
    assert_eq!(h[0].changes[0].old.as_deref(), Some("526-104-08-28"));
    assert_eq!(h[1].changes[0].old.as_deref(), Some("100"));
    assert_eq!(h[1].changes[0].new.as_deref(), Some("200"));
    assert_eq!(h[2].actor, "anna");
    drop(env.kc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_file_the_key_and_the_tracker_as_they_were() {
    let mut env = setup().await;
    let before = env.fleet_text();
    // Field errors, each named; nothing written.
    let e = env
        .ops
        .change_client(
            "acme",
            &ClientChange {
                markup: Some(MarkupChange {
                    rate: "0.8".into(),
                    from: "2026-12-01".into(),
                }),
                monthly_limit_usd: Some("ten".into()),
                invoice: vec![FieldValue {
                    field: ClientField::Nip,
                    value: "526-104-08-29".into(),
                }],
            },
            "anna",
        )
        .await
        .unwrap_err();
    let OpsError::InvalidChange { errors, .. } = &e else {
        panic!("{e}")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            ClientField::Markup,
            ClientField::MonthlyLimitUsd,
            ClientField::Nip
        ]
    );
    assert!(matches!(
        env.ops.change_client("acme", &limit("100"), "anna").await,
        Err(OpsError::InvalidChange { .. })
    ));
    assert_eq!(env.fleet_text(), before);
    assert!(
        env.ops.client_history("acme").unwrap().is_empty(),
        "nothing to audit"
    );

    // OpenRouter refuses the new cap: nothing else is changed.
    env.sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Any,
        key: Some(MGMT.into()),
        ..FaultRule::parse("status=503").unwrap()
    });
    let e = env
        .ops
        .change_client("acme", &limit("300"), "anna")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("OpenRouter refused") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(env.fleet_text(), before);
    env.sim.clear_faults();
    assert_eq!(
        env.key_on_openrouter().await["limit"],
        serde_json::json!(76.92)
    );
    assert_eq!(env.tracker_terms().await, None, "never pushed");
    let h = env.ops.client_history("acme").unwrap();
    assert_eq!(h[0].outcome, AuditOutcome::Failed);
    assert!(h[0].error.as_deref().unwrap().contains("503"), "{h:?}");

    // The tracker is down after OpenRouter took the cap: the change stands (the cap
    // enforces it), the report says so and what to do.
    env.tracker.take().unwrap().shutdown().await.unwrap();
    let r = env
        .ops
        .change_client("acme", &limit("250"), "anna")
        .await
        .unwrap();
    assert_eq!(r.openrouter_key, ApplyState::Done);
    assert_eq!(r.tracker, ApplyState::Failed);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("maictl sync --client acme")
                && w.contains("cap, which enforces the limit")),
        "{:?}",
        r.warnings
    );
    assert!(env.fleet_text().contains("monthly_limit_usd = \"250\""));
    assert_eq!(
        env.key_on_openrouter().await["limit"],
        serde_json::json!(192.3)
    );
    assert_eq!(
        env.ops.client_history("acme").unwrap()[0].outcome,
        AuditOutcome::Partial
    );
}

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

/// A markup change never reprices an invoiced month: November is invoiced, so a rate
/// from any day of it (or before) is refused naming the invoice; December is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_an_invoiced_month_is_refused() {
    let nbp = mai_sim::nbp::NbpSim::spawn(mai_sim::nbp::NbpConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("console");
    std::fs::create_dir_all(&data).unwrap();
    Ledger::open(&data.join("console-cache.sqlite"))
        .unwrap()
        .record_batch(&[UsageEvent {
            generation_id: "g1".into(),
            org_id: "acme".into(),
            user: UserRef::default(),
            model: "openai/gpt-4o".into(),
            provider: None,
            tokens: Tokens {
                prompt: 100,
                completion: 50,
                reasoning: 0,
                cached: 0,
            },
            cost_usd: dec("12.5"),
            source: Source::Reconciliation,
            state: EventState::Confirmed,
            created_at: Utc.from_utc_datetime(&day("2026-11-10").and_hms_opt(12, 0, 0).unwrap()),
            context: Default::default(),
        }])
        .unwrap();
    std::fs::write(dir.path().join("billing.toml"), BILLING).unwrap();
    let text = format!(
        "[console]\ndata_dir = \"console\"\n\n[nbp]\nbase_url = \"{}\"\n\n[billing]\nconfig = \"billing.toml\"\n\n\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_admin_token = \"env:UNUSED\"\n",
        nbp.base_url()
    );
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, &text).unwrap();
    let mut ops = Ops::new(
        Fleet::load(&path).unwrap(),
        Ok(Keychain::with_store(
            keyring_core::mock::Store::new().unwrap(),
        )),
    )
    .unwrap();
    ops.docker_enabled = false;
    ops.today = Some(day("2026-12-03"));
    // November's invoice numbered (prepared for KSeF): the month is invoiced from then on.
    let cfg = mai_billing::config::BillingConfig::load(&dir.path().join("billing.toml"))
        .unwrap()
        .with_clients(
            ops.fleet
                .clients
                .iter()
                .map(|c| c.invoice.clone())
                .collect(),
        )
        .unwrap();
    let nbp_client = mai_core::nbp::NbpClient::new(mai_core::nbp::NbpConfig {
        base_url: Some(nbp.base_url()),
        ..Default::default()
    })
    .unwrap();
    let prepared = mai_billing::service::Billing::new(
        cfg,
        nbp_client,
        data.join("console-cache.sqlite"),
        data.join("billing-store.sqlite"),
    )
    .with_today(day("2026-12-03"))
    .prepare_for_ksef(&mai_billing::service::PrepareRequest {
        month: "2026-11".parse().unwrap(),
        client: None,
        issue_date: None,
        allow_unconfirmed: false,
    })
    .await
    .unwrap();
    let number = prepared.ready[0].number.clone();
    for from in ["2026-11-30", "2026-11-01", "2026-06-01"] {
        let e = ops
            .change_client("acme", &markup("1.5", from), "anna")
            .await
            .unwrap_err();
        let OpsError::InvalidChange { errors, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(errors[0].field, ClientField::MarkupFrom);
        assert!(
            errors[0].message.contains(&number) && errors[0].message.contains("2026-12-01"),
            "{}",
            errors[0].message
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // From December on (before today: repriced days of an open month, said so).
    let r = ops
        .change_client("acme", &markup("1.5", "2026-12-01"), "anna")
        .await
        .unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("repriced")),
        "{:?}",
        r.warnings
    );
    // The tracker is unreachable here: the fleet file has the change all the same.
    assert_eq!(r.tracker, ApplyState::Failed);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("markup_changes = [{ from = 2026-12-01, rate = \"1.5\" }]"));
}
