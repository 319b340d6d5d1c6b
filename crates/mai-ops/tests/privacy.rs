//! GDPR erasure and export through the console library, end to end: a real tracker (in
//! process, the OpenRouter simulator upstream), the real console cache and billing. The
//! person leaves the tracker's and the cache's files, the dashboard lists a pseudonym with
//! the same amounts, the invoice does not move, and the audit log names the person only
//! by hash.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_core::ledger::{Ledger, PrivacySubject};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops, OpsError};
use mai_sim::nbp::{NbpConfig, NbpSim};
use mai_sim::openrouter::{OpenRouterSim, SimConfig};
use rust_decimal::Decimal;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000a1";
const ADMIN: &str = "admin-token-privacy-test";
const EMAIL: &str = "zofia.lukasiewicz@acme.pl";
const NAME: &str = "Zofia Łukasiewicz";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn event(id: &str, d: &str, who: (&str, &str, &str), model: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: UserRef {
            id: Some(who.0.into()),
            email: Some(who.1.into()),
            name: Some(who.2.into()),
        },
        model: model.into(),
        provider: Some("OpenAI".into()),
        tokens: Tokens {
            prompt: 120,
            completion: 40,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: dec(cost),
        source: Source::Reconciliation,
        state: EventState::Confirmed,
        created_at: Utc.from_utc_datetime(&day(d).and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
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

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn bytes_of(db: &std::path::Path) -> Vec<u8> {
    let mut b = std::fs::read(db).unwrap();
    b.extend(std::fs::read(format!("{}-wal", db.display())).unwrap_or_default());
    b
}

#[tokio::test]
async fn erasure_on_tracker_and_cache_keeps_invoices_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let zofia = ("6f1c2a9e-zofia", EMAIL, NAME);
    let anna = ("u-anna", "anna@acme.pl", "Anna Nowak");
    let events = vec![
        event(
            "gen-01",
            "2026-11-03",
            zofia,
            "openai/gpt-4o",
            "0.123456789",
        ),
        event(
            "gen-02",
            "2026-11-10",
            anna,
            "openai/gpt-4o-mini",
            "0.000987654",
        ),
        event(
            "gen-03",
            "2026-11-16",
            zofia,
            "anthropic/claude-sonnet-4",
            "1.000000001",
        ),
        event("gen-04", "2026-11-20", anna, "openai/gpt-4o", "2.718281828"),
    ];
    let db = dir.path().join("tracker.sqlite");
    Ledger::open(&db).unwrap().record_batch(&events).unwrap();
    let sim = OpenRouterSim::spawn(SimConfig::default()).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.base_url()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("MAI_TRACKER_DB", db.display().to_string()),
        (
            "MAI_TRACKER_PROXY_TOKEN",
            "proxy-token-privacy-test".to_owned(),
        ),
        (
            "MAI_TRACKER_READ_TOKEN",
            "read-token-privacy-test".to_owned(),
        ),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();
    let nbp = NbpSim::spawn(NbpConfig::default()).await.unwrap();
    std::fs::write(dir.path().join("billing.toml"), BILLING).unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("PRIVACY_TRACKER_TOKEN", ADMIN) };
    let fleet = format!(
        "[console]\ndata_dir = \"console\"\n\n[nbp]\nbase_url = \"{nbp}\"\n\n[billing]\nconfig = \"billing.toml\"\n\n\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         invoice_currency = \"USD\"\nhost = \"h1\"\nmarkup = \"1.3\"\n\
         markup_changes = [{{ from = 2026-11-16, rate = \"1.5\" }}]\n\
         tracker_url = \"{url}\"\ntracker_token = \"env:PRIVACY_TRACKER_TOKEN\"\n",
        nbp = nbp.base_url(),
        url = tracker.base_url(),
    );
    let fleet = Fleet::parse(&fleet, &dir.path().join("fleet.toml")).unwrap();
    let keychain = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut console = Ops::new(fleet, Ok(keychain)).unwrap();
    console.docker_enabled = false;
    console.today = Some(day("2026-11-30"));
    console.refresh().await;
    let dash = console.dashboard("acme").await.unwrap();
    assert!(dash.live, "{:?}", dash.pull_error);
    assert!(dash.by_user.iter().any(|b| b.label == NAME));
    console.today = Some(day("2026-12-03"));
    let invoice_before = console.billing_report("2026-11").await.unwrap().clients[0]
        .statement
        .clone()
        .unwrap();

    let who = PrivacySubject {
        id: None,
        email: Some(EMAIL.to_uppercase()),
    };
    // Export (art. 15) from the tracker.
    let x = console.privacy_export("acme", &who).await.unwrap();
    assert!(!x.from_cache);
    assert_eq!(x.export.events.len(), 2);
    assert_eq!(x.export.raw_cost_usd, dec("1.12345679"));
    // Bad requests are refused before anything is asked.
    assert!(matches!(
        console
            .privacy_erase("acme", &PrivacySubject::default())
            .await,
        Err(OpsError::Privacy(_))
    ));
    assert!(matches!(
        console.privacy_erase("nobody", &who).await,
        Err(OpsError::UnknownClient(_))
    ));

    // Erase (art. 17) on the tracker and in the cache.
    let r = console.privacy_erase("acme", &who).await.unwrap();
    assert_eq!((r.tracker_events, r.cache_events), (2, 2));
    assert!(r.pseudonym.starts_with("erased-"));
    assert!(r.compacted);

    // The dashboard (which pulls the erased events again) lists the pseudonym with the
    // same amounts; the invoice does not move.
    console.today = Some(day("2026-11-30"));
    let after = console.dashboard("acme").await.unwrap();
    assert!(after.live);
    assert_eq!(after.month_client_cost_usd, dash.month_client_cost_usd);
    assert_eq!(after.by_model, dash.by_model);
    let find = |d: &mai_ops::ops::Dashboard, label: &str| {
        d.by_user
            .iter()
            .find(|b| b.label == label)
            .cloned()
            .unwrap()
    };
    let was = find(&dash, NAME);
    let now = find(&after, &r.pseudonym);
    assert_eq!(
        (now.requests, now.raw_cost_usd, now.client_cost_usd),
        (was.requests, was.raw_cost_usd, was.client_cost_usd)
    );
    assert_eq!(find(&after, "Anna Nowak"), find(&dash, "Anna Nowak"));
    assert!(!after.by_user.iter().any(|b| b.label == NAME));
    console.today = Some(day("2026-12-03"));
    let invoice_after = console.billing_report("2026-11").await.unwrap().clients[0]
        .statement
        .clone()
        .unwrap();
    assert_eq!(invoice_before, invoice_after);

    // Neither ledger file keeps her e-mail or name.
    let cache = console.cache_path();
    for f in [&db, &cache] {
        let b = bytes_of(f);
        for gone in [EMAIL, NAME, "6f1c2a9e-zofia"] {
            assert!(!contains(&b, gone), "{gone} left in {}", f.display());
        }
        assert!(contains(&b, "anna@acme.pl"), "{}", f.display());
    }

    // The audit log: who, what, which client, counts; the person only by hash.
    let log = console.audit_log();
    let recs = log.read().unwrap();
    let actions: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("privacy_export", "ok"),
            ("privacy_erase", "started"),
            ("privacy_erase", "ok")
        ]
    );
    assert!(recs.iter().all(|x| x.client == "acme"
        && x.subject_hash.as_deref() == Some(r.subject_hash.as_str())
        && !x.actor.is_empty()));
    assert_eq!(recs[2].detail["cache_events"], 2);
    let text = std::fs::read_to_string(log.path()).unwrap().to_lowercase();
    for gone in [EMAIL, "zofia", &r.pseudonym] {
        assert!(!text.contains(gone), "{gone} in the audit log");
    }

    // With the tracker down, export answers from the cache (and says so).
    tracker.shutdown().await.unwrap();
    let x = console
        .privacy_export(
            "acme",
            &PrivacySubject {
                id: Some(r.pseudonym.replace("erased-", "")),
                email: Some("anna@acme.pl".into()),
            },
        )
        .await
        .unwrap();
    assert!(x.from_cache && x.warning.is_some());
    assert_eq!(x.export.events.len(), 2);
}
