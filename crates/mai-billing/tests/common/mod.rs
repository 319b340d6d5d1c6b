//! Shared fixtures: an NBP simulator, a ledger with December 2025 usage, a config.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_billing::{Billing, BillingConfig};
use mai_core::ledger::Ledger;
use mai_core::nbp::{NbpClient, NbpConfig};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_sim::nbp::{self as sim, NbpSim};
use rust_decimal::Decimal;

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub const CONFIG: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
payment_days = 14

[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
bank_name = "Bank Przykładowy S.A."
email = "faktury@example.pl"

[[clients]]
org_id = "acme"
name = "Zakład Usług Łączności Gęś Sp. z o.o."
nip = "9876543210"
address_line1 = "ul. Żółkiewskiego 5 m. 3"
address_line2 = "30-001 Kraków"
currency = "PLN"
vat = "23"
lines = "by_model"
hosting_eur = "25.00"
markup = { default_rate = "1.3", entries = [{ effective_from = "2025-12-15", rate = "1.5" }] }

[[clients]]
org_id = "beta"
name = "Beta Analytics S.A."
nip = "526-000-12-46"
address_line1 = "ul. Długa 7"
address_line2 = "80-001 Gdańsk"
currency = "USD"
vat = "23"
lines = "summary"

[[clients]]
org_id = "gmbh"
name = "Muster GmbH"
country = "DE"
vat_id = "DE123456789"
address_line1 = "Hauptstraße 1"
address_line2 = "10115 Berlin"
currency = "USD"
vat = "np"

[[clients]]
org_id = "nodata"
name = "Brak Danych Sp. z o.o."
"#;

pub const MODELS: &[&str] = &[
    "openai/gpt-4o",
    "anthropic/claude-sonnet-4",
    "google/gemini-2.5-flash",
];

/// Deterministic pseudo-random numbers (no dependency, same every run).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

pub fn event(org: &str, id: &str, model: &str, day: NaiveDate, cost: Decimal) -> UsageEvent {
    UsageEvent {
        generation_id: id.to_string(),
        org_id: org.to_string(),
        user: UserRef {
            id: Some("u1".into()),
            email: Some("jan@example.pl".into()),
            name: Some("Jan".into()),
        },
        model: model.to_string(),
        provider: None,
        tokens: Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: cost,
        source: Source::Proxy,
        state: EventState::Confirmed,
        // Noon UTC is the same Warsaw day all year.
        created_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
}

/// Usage of December 2025: acme (markup 1.3, then 1.5 from the 15th), beta, gmbh,
/// nodata (incomplete invoice data) and `stray` (not in the config).
pub fn december_events() -> Vec<UsageEvent> {
    let mut rng = Lcg(42);
    let mut out = Vec::new();
    let orgs = ["acme", "beta", "gmbh", "nodata", "stray"];
    for i in 0..400 {
        let org = orgs[(rng.next() % orgs.len() as u64) as usize];
        let model = MODELS[(rng.next() % MODELS.len() as u64) as usize];
        let day = d("2025-12-01") + chrono::Days::new(rng.next() % 31);
        // 1 nano-dollar .. 0.05 USD, at nano-dollar precision like OpenRouter.
        let cost = Decimal::new((rng.next() % 50_000_000 + 1) as i64, 9);
        out.push(event(org, &format!("gen-dec-{i}"), model, day, cost));
    }
    out
}

pub struct Env {
    pub sim: sim::NbpHandle,
    pub dir: tempfile::TempDir,
    pub ledger_path: PathBuf,
    pub store_path: PathBuf,
    pub cfg: BillingConfig,
}

impl Env {
    pub async fn new() -> Env {
        let sim = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ledger_path = dir.path().join("cache-ledger.sqlite");
        let store_path = dir.path().join("billing.sqlite");
        let mut ledger = Ledger::open(&ledger_path).unwrap();
        ledger.record_batch(&december_events()).unwrap();
        drop(ledger);
        let cfg = BillingConfig::parse_with_clients(CONFIG).unwrap();
        Env {
            sim,
            dir,
            ledger_path,
            store_path,
            cfg,
        }
    }

    pub fn nbp(&self) -> NbpClient {
        NbpClient::new(NbpConfig {
            base_url: Some(self.sim.base_url()),
            cache_path: Some(self.dir.path().join("nbp.sqlite")),
            timeout: Duration::from_millis(1500),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        })
        .unwrap()
    }

    pub fn billing(&self, today: &str) -> Billing {
        Billing::new(
            self.cfg.clone(),
            self.nbp(),
            self.ledger_path.clone(),
            self.store_path.clone(),
        )
        .with_today(d(today))
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.ledger_path).unwrap()
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd}: {e} (install it: see crates/mai-billing/README.md)")
        });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A KSeF number as KSeF makes them (`docs/numer-ksef.md`): seller NIP, acquisition date,
/// 12 upper hex digits, CRC-8 (polynomial 0x07, init 0) of the first 32 characters.
pub fn ksef_number(nip: &str, day: NaiveDate, n: u64) -> String {
    let head = format!("{nip}-{}-{n:012X}", day.format("%Y%m%d"));
    let mut crc: u8 = 0;
    for b in head.bytes() {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    format!("{head}-{crc:02X}")
}

/// A 36-character KSeF reference number (`SO` session, `EE` invoice).
pub fn ksef_ref(kind: &str, n: u64) -> String {
    format!("20260105-{kind}-{n:010X}-{:010X}-07", n * 7)
}

/// The SHA-256 of what the KSeF client sends: the stored bytes.
pub fn sent_hash(store: &mai_billing::BillingStore, number: &str) -> String {
    mai_billing::store::sha256_hex(&store.xml(number).unwrap().unwrap())
}

/// A number for KSeF's made-up identifiers, unique in the test process.
pub fn next_n() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What KSeF would answer for a prepared invoice when it accepts it: sent in a session,
/// then accepted on `day` (the test plays the KSeF client's part with these values).
pub fn accept(
    store: &mut mai_billing::BillingStore,
    number: &str,
    day: NaiveDate,
    n: u64,
) -> String {
    let session_ref = ksef_ref("SO", n);
    let invoice_ref = ksef_ref("EE", n);
    store
        .record_sent(
            number,
            &mai_billing::KsefSubmission {
                session_ref: session_ref.clone(),
                invoice_ref: invoice_ref.clone(),
                xml_sha256: sent_hash(store, number),
            },
        )
        .unwrap();
    let ksef = ksef_number("1234563218", day, n);
    store
        .record_accepted(
            number,
            &mai_billing::KsefAcceptance {
                ksef_number: ksef.clone(),
                acquisition_date: Utc.from_utc_datetime(&day.and_hms_opt(9, 30, 0).unwrap()),
                session_ref,
                invoice_ref,
                upo_xml: Some(format!("<Potwierdzenie><NumerKSeFDokumentu>{ksef}</NumerKSeFDokumentu></Potwierdzenie>")),
            },
        )
        .unwrap();
    ksef
}

/// Validates an FA(3) file with xmllint against the vendored XSD (independent of the
/// validator the crate runs).
pub fn xmllint(path: &Path) {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/ksef-fa3/schemat.xsd");
    let (code, out, err) = run(
        "xmllint",
        &[
            "--noout",
            "--nonet",
            "--schema",
            schema.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        code,
        0,
        "xmllint rejected {}:\n{out}\n{err}\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}
