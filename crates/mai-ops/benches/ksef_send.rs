//! 200 invoices of a month through `Ops::ksef_send` (mai-billing prepares and numbers
//! them, mai-ksef sends them, every answer recorded in the billing store) to the KSeF
//! simulator answering every call after 100 ms. Prints the wall time and fails over
//! 60 s. `cargo bench -p mai-ops --bench ksef_send` (deploy/bench/ksef-send.sh);
//! KSEF_BENCH_INVOICES and KSEF_BENCH_LATENCY_MS change the load.
//!
//! The pacing is the client's own: KSeF's published TEST limits (the simulator is a
//! custom URL, paced like TEST; it does not serve `/rate-limits`) and at most
//! `[ksef] concurrency` (default 32) invoices in flight. On PRD/DEMO the online-session
//! limit is 180 invoices an hour, so 200 invoices take over an hour there whatever the
//! latency.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use mai_core::ledger::Ledger;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::ksef::{FaultRule, KsefConfig, KsefSim, Timing, TokenSpec};
use rust_decimal::Decimal;

const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_usize("KSEF_BENCH_INVOICES", 200);
    let latency = Duration::from_millis(env_usize("KSEF_BENCH_LATENCY_MS", 100) as u64);
    let nbp = mai_sim::nbp::NbpSim::spawn(mai_sim::nbp::NbpConfig::default())
        .await
        .unwrap();
    let ksef = KsefSim::spawn(KsefConfig {
        tokens: vec![TokenSpec::new("1234563218", TOKEN)],
        timing: Timing::instant(),
        faults: vec![FaultRule::latency(latency)],
        ..KsefConfig::default()
    })
    .await
    .unwrap();

    // Last month (closed, so it can be invoiced today; the simulator's clock is today).
    let today = mai_core::time::warsaw_today();
    let prev = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .unwrap()
        .pred_opt()
        .unwrap();
    let month = format!("{:04}-{:02}", prev.year(), prev.month());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("console");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(dir.path().join("billing.toml"), BILLING).unwrap();
    let mut events = Vec::new();
    let mut fleet = format!(
        "[console]\ndata_dir = {data:?}\n[nbp]\nbase_url = \"{}\"\n[billing]\nconfig = \"billing.toml\"\n\
         [ksef]\nbase_url = \"{}\"\n\
         [[hosts]]\nname = \"h\"\ndocker = \"unix:///nonexistent.sock\"\n",
        nbp.base_url(),
        ksef.base_url()
    );
    for i in 0..n {
        let org = format!("c{i:03}");
        // Foreign business buyers (reverse charge): no NIP checksum to forge per client.
        fleet.push_str(&format!(
            "[[clients]]\nid = \"{org}\"\nlegal_name = \"Client {i} Inc.\"\ncountry = \"US\"\nvat_id = \"12-{:07}\"\nvat = \"np\"\n\
             address = \"{i} Main St\"\naddress_line2 = \"Springfield, IL 62701\"\ninvoice_currency = \"USD\"\n\
             host = \"h\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED\"\n",
            1_000_000 + i
        ));
        events.push(UsageEvent {
            generation_id: format!("g{i}"),
            org_id: org,
            user: UserRef {
                id: Some("u1".into()),
                email: None,
                name: None,
            },
            model: "openai/gpt-4o".into(),
            provider: None,
            tokens: Tokens {
                prompt: 100,
                completion: 50,
                reasoning: 0,
                cached: 0,
            },
            cost_usd: Decimal::from_str("3.25").unwrap(),
            source: Source::Proxy,
            state: EventState::Confirmed,
            created_at: Utc.from_utc_datetime(&prev.and_hms_opt(12, 0, 0).unwrap()),
            context: Default::default(),
        });
    }
    Ledger::open(&data.join("console-cache.sqlite"))
        .unwrap()
        .record_batch(&events)
        .unwrap();
    let fleet = Fleet::parse(&fleet, &dir.path().join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut ops = Ops::new(fleet, Ok(kc)).unwrap();
    ops.docker_enabled = false;
    ops.ksef_token_set(TOKEN.into()).await.unwrap();

    let started = Instant::now();
    let s = ops.ksef_send(&month, None, &mut |_| {}).await.unwrap();
    let took = started.elapsed();
    assert_eq!(s.accepted, n, "{:?}", (s.rejected, s.failed, s.pending));
    assert_eq!(ksef.accepted().len(), n);
    println!(
        "ksef_send: {n} invoices of {month} accepted in {:.1} s ({:.1} invoices/s), {} ms latency per KSeF call",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        latency.as_millis()
    );
    assert!(
        n != 200 || took < Duration::from_secs(60),
        "200 invoices took {took:?}, over the 60 s goal"
    );
}
