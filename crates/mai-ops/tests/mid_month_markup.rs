//! One owner per commercial fact, checked end to end: a markup change in the middle of a
//! month (fleet file `markup_changes`) leaves every view of that month equal — the
//! console's fleet row, the dashboard's by-user and by-model sums, the tracker's own
//! month (priced with the terms the console pushed to it) and the invoice — exactly, and
//! so to the cent. A real tracker (in process, its ledger on disk, the OpenRouter
//! simulator upstream), the real console library, the NBP simulator for the invoice.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_core::ledger::Ledger;
use mai_core::money::round_minor;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::nbp::{NbpConfig, NbpSim};
use mai_sim::openrouter::{OpenRouterSim, SimConfig};
use rust_decimal::Decimal;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000a1";
const ADMIN: &str = "admin-token-mid-month";
const READ: &str = "read-token-mid-month";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// November 2026 at noon UTC (13:00 in Warsaw: the same calendar day).
fn event(id: &str, d: &str, user: &str, model: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.into(),
        org_id: "acme".into(),
        user: UserRef {
            id: Some(user.to_lowercase()),
            email: Some(format!("{}@acme.pl", user.to_lowercase())),
            name: Some(user.into()),
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

#[tokio::test]
async fn a_mid_month_markup_change_prices_every_view_alike() {
    let dir = tempfile::tempdir().unwrap();
    // November's usage, on both sides of the 16th (1.3 before, 1.5 from then on), with
    // amounts whose products do not end on a cent.
    let events = vec![
        event(
            "gen-01",
            "2026-11-03",
            "Anna",
            "openai/gpt-4o",
            "0.123456789",
        ),
        event(
            "gen-02",
            "2026-11-10",
            "Łukasz",
            "openai/gpt-4o-mini",
            "0.000987654",
        ),
        event(
            "gen-03",
            "2026-11-15",
            "Anna",
            "anthropic/claude-sonnet-4",
            "1.000000001",
        ),
        event(
            "gen-04",
            "2026-11-16",
            "Zofia",
            "openai/gpt-4o",
            "0.333333333",
        ),
        event(
            "gen-05",
            "2026-11-20",
            "Łukasz",
            "anthropic/claude-sonnet-4",
            "2.718281828",
        ),
        event(
            "gen-06",
            "2026-11-28",
            "Anna",
            "openai/gpt-4o-mini",
            "0.000000007",
        ),
        event(
            "gen-07",
            "2026-11-30",
            "Zofia",
            "openai/gpt-4o",
            "0.055555555",
        ),
    ];
    let before: Decimal = events[..3].iter().map(|e| e.cost_usd).sum();
    let after: Decimal = events[3..].iter().map(|e| e.cost_usd).sum();
    let truth = before * dec("1.3") + after * dec("1.5");

    // The tracker's ledger holds the month; the tracker starts on it.
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
            "proxy-token-mid-month".to_owned(),
        ),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();

    let nbp = NbpSim::spawn(NbpConfig::default()).await.unwrap();
    std::fs::write(dir.path().join("billing.toml"), BILLING).unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("MID_MONTH_TRACKER_TOKEN", ADMIN) };
    let fleet = format!(
        "[console]\ndata_dir = \"console\"\n\n[nbp]\nbase_url = \"{nbp}\"\n\n[billing]\nconfig = \"billing.toml\"\n\n\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"9876543210\"\naddress = \"ul. Testowa 2\"\n\
         invoice_currency = \"USD\"\nhost = \"h1\"\nmarkup = \"1.3\"\n\
         markup_changes = [{{ from = 2026-11-16, rate = \"1.5\" }}]\nmonthly_limit_usd = \"100\"\n\
         tracker_url = \"{url}\"\ntracker_token = \"env:MID_MONTH_TRACKER_TOKEN\"\n",
        nbp = nbp.base_url(),
        url = tracker.base_url(),
    );
    let fleet = Fleet::parse(&fleet, &dir.path().join("fleet.toml")).unwrap();
    let keychain = || Keychain::with_store(keyring_core::mock::Store::new().unwrap());

    // The console on the month's last day: fleet row (which also pushes the terms to the
    // tracker), then the dashboard (which pulls the events into the console cache).
    let mut console = Ops::new(fleet.clone(), Ok(keychain())).unwrap();
    console.docker_enabled = false;
    console.today = Some(day("2026-11-30"));
    let row = console.refresh().await.remove(0);
    assert!(row.tracker_reachable, "{:?}", row.tracker_error);
    let row_month = row.month_client_cost_usd.unwrap();
    let dash = console.dashboard("acme").await.unwrap();
    assert!(dash.live, "{:?}", dash.pull_error);
    let by_user: Decimal = dash.by_user.iter().map(|b| b.client_cost_usd).sum();
    let by_model: Decimal = dash.by_model.iter().map(|b| b.client_cost_usd).sum();
    assert_eq!(dash.by_user.len(), 3);
    assert!(dash.by_user.iter().any(|b| b.label == "Łukasz"));

    // The tracker's own month, priced with the terms the console pushed.
    let month: mai_wire::tracker::Month = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/month?month=2026-11",
            tracker.base_url()
        ))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        month.markup_segments.len(),
        2,
        "{:?}",
        month.markup_segments
    );

    // The invoice, after the month has closed.
    console.today = Some(day("2026-12-03"));
    let report = console.billing_report("2026-11").await.unwrap();
    let statement = report.clients[0].statement.clone().unwrap();

    let views = [
        ("fleet row", row_month),
        ("dashboard month", dash.month_client_cost_usd),
        ("dashboard by user", by_user),
        ("dashboard by model", by_model),
        ("tracker month", month.client_cost_usd),
        ("invoice (client net, USD)", statement.client_net_usd),
    ];
    for (what, v) in views {
        assert_eq!(
            v, truth,
            "{what} differs from 1.3 x before the 16th + 1.5 x after"
        );
        assert_eq!(round_minor(v), round_minor(truth), "{what} to the cent");
    }
    // And the invoice's own rounded net is that amount to the cent, line by line.
    assert_eq!(statement.amounts.net, round_minor(truth));
    tracker.shutdown().await.unwrap();
}
