//! The real `maictl` binary's finance commands (`nbp invoice-rate`, `billing`,
//! `invoices`) with nothing but `--fleet`: billing.toml, the console cache (usage ledger),
//! the billing store and the NBP API all come from the fleet file; the old flags only
//! override them; and a missing fleet file or [billing] section says what to do.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use mai_core::ledger::Ledger;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_sim::nbp::{self as sim, NbpSim};
use rust_decimal::Decimal;

const SELLER: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
payment_days = 14

[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn event(id: &str, day: &str, cost: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.to_string(),
        org_id: "acme".to_string(),
        user: UserRef {
            id: Some("u1".into()),
            email: None,
            name: Some("Jan".into()),
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: Decimal::from_str(cost).unwrap(),
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: Utc.from_utc_datetime(&d(day).and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
}

fn ledger(path: &Path, events: &[UsageEvent]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut l = Ledger::open(path).unwrap();
    l.record_batch(events).unwrap();
}

/// A fleet file in `dir` whose console cache holds two December 2025 requests of `acme`;
/// `billing` adds the [billing] section.
fn fleet(dir: &Path, nbp_base: &str, billing: bool) -> PathBuf {
    let data = dir.join("console");
    ledger(
        &data.join("console-cache.sqlite"),
        &[
            event("g1", "2025-12-02", "12.345678901"),
            event("g2", "2025-12-20", "0.000000007"),
        ],
    );
    std::fs::write(dir.join("billing.toml"), SELLER).unwrap();
    let section = if billing {
        "[billing]\nconfig = \"billing.toml\"\n\n"
    } else {
        ""
    };
    let text = format!(
        "[console]\ndata_dir = {data:?}\n\n[nbp]\nbase_url = \"{nbp_base}\"\n\n{section}\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED_TOKEN\"\n"
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs maictl as a user would: no billing or NBP variables leaking in from the test's
/// environment, and no Secret Service (finance needs none).
async fn maictl(cwd: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MAI_FLEET")
        .env_remove("MAI_BILLING_CONFIG")
        .env_remove("MAI_LEDGER")
        .env_remove("MAI_BILLING_STORE")
        .env_remove("MAI_NBP_CACHE")
        .env_remove("NBP_BASE_URL")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[tokio::test]
async fn billing_reads_the_fleet_files_with_fleet_alone() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), &nbp.base_url(), true);
    let f = f.to_str().unwrap();

    let v = json(
        &maictl(
            dir.path(),
            &["--fleet", f, "billing", "--month", "2025-12", "--json"],
        )
        .await,
    );
    assert_eq!(v["month"], "2025-12");
    assert_eq!(v["totals"]["requests"], 2, "{v}");
    assert_eq!(v["clients"][0]["org_id"], "acme");
    // The NBP API is the fleet file's (the simulator): its table A rate for the month.
    assert!(v["rate_error"].is_null(), "{v}");
    let table = d(v["rates"]["usd"]["effective_date"].as_str().unwrap());
    assert!(table < d("2026-01-01"), "{v}");
    let mid = nbp.rate_a("USD", table).unwrap();
    assert_eq!(v["rates"]["usd"]["mid"], mid.to_string(), "{v}");

    // OpenRouter's fees: no purchases recorded and no typical top-up, so the card's
    // 5.5 % alone, on the month's raw $12.345678908, exact.
    let dec = |x: &serde_json::Value| Decimal::from_str(x.as_str().unwrap()).unwrap();
    let t = &v["totals"];
    assert_eq!(t["fees_usd"], "0.67901233994", "{v}");
    assert!(
        v["fees_basis"]
            .as_str()
            .unwrap()
            .contains("top-up sizes unknown"),
        "{v}"
    );
    let fees_pln = dec(&t["fees_pln"]);
    assert_eq!(
        fees_pln,
        mai_core::money::round_minor(dec(&t["fees_usd"]) * mid),
        "{v}"
    );
    assert_eq!(
        dec(&t["profit_after_fees_pln"]),
        dec(&t["profit_pln"]) - fees_pln,
        "{v}"
    );
    // Margins are profit / net PLN: 1.3x is about 23.08 % before fees (0.3 / 1.3; the
    // PLN amounts are rounded to the grosz), not 30 %, and less after them.
    let pct = |profit: &str| {
        mai_core::money::round_minor(dec(&t[profit]) * Decimal::ONE_HUNDRED / dec(&t["net_pln"]))
    };
    let before = dec(&t["margin_before_fees_percent"]);
    assert_eq!(before, pct("profit_pln"), "{v}");
    assert!(
        (before - Decimal::from_str("23.08").unwrap()).abs() < Decimal::from_str("0.05").unwrap(),
        "{v}"
    );
    let effective = dec(&t["effective_margin_percent"]);
    assert_eq!(effective, pct("profit_after_fees_pln"), "{v}");
    assert!(effective < before, "{v}");
    let row = &v["clients"][0]["profit"];
    assert_eq!(row["fees_pln"], t["fees_pln"], "{v}");
    assert_eq!(
        row["effective_margin_percent"], t["effective_margin_percent"],
        "{v}"
    );
    // December's invoices were due on 15 January; acme's is still to issue.
    assert_eq!(v["issue_deadline"], "2026-01-15", "{v}");
    let today = d(v["today"].as_str().unwrap());
    if today > d("2026-01-15") {
        let w = v["deadline_warning"].as_str().unwrap_or_default();
        assert!(w.contains("late") && w.contains("acme"), "{v}");
    }

    // The same through MAI_FLEET, as text.
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .args(["billing", "--month", "2025-12"])
        .env("MAI_FLEET", f)
        .env_remove("MAI_LEDGER")
        .env_remove("MAI_BILLING_CONFIG")
        .env_remove("MAI_BILLING_STORE")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("Billing 2025-12\n"), "{text}");
    assert!(text.contains("TOTAL: 1 clients, 2 requests"), "{text}");
    assert!(
        text.contains("Issue deadline: 2026-01-15 (VAT Act art. 106i ust. 1)"),
        "{text}"
    );
    if today > d("2026-01-15") {
        assert!(
            text.contains("WARNING: invoices for 2025-12 are late"),
            "{text}"
        );
    }
    assert!(
        text.contains("fees PLN") && text.contains("after fees PLN"),
        "{text}"
    );
    let acme = text.lines().find(|l| l.starts_with("acme ")).unwrap();
    assert!(
        acme.contains(&format!("{effective}% ({before}%)"))
            && acme.contains(&mai_billing::export::format_pl(fees_pln)),
        "{acme}"
    );
    assert!(
        text.contains(&format!(
            "OpenRouter fees {} PLN ($0.68), profit after fees {} PLN",
            mai_billing::export::format_pl(fees_pln),
            mai_billing::export::format_pl(dec(&t["profit_after_fees_pln"]))
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("margin {effective}% after fees, {before}% before")),
        "{text}"
    );
    assert!(
        text.contains("Fee basis: credit-purchase fee 5.5% of credits used"),
        "{text}"
    );
    nbp.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_month_that_rounds_to_zero_is_not_invoiced_and_says_so() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), &nbp.base_url(), true);
    let f = f.to_str().unwrap();
    // $0.000003 × 1.3 is 0.00 PLN on the invoice.
    let tiny = dir.path().join("tiny").join("cache.sqlite");
    ledger(&tiny, &[event("g1", "2025-12-03", "0.000003")]);
    let args = [
        "--fleet",
        f,
        "billing",
        "--month",
        "2025-12",
        "--ledger",
        tiny.to_str().unwrap(),
    ];
    let v = json(&maictl(dir.path(), &[&args[..], &["--json"]].concat()).await);
    let row = &v["clients"][0];
    assert_eq!(row["zero_amounts"], true, "{v}");
    assert_eq!(row["status"], "no_usage", "{v}");
    assert!(
        row["profit"]["effective_margin_percent"].is_null(),
        "no margin of a zero net: {v}"
    );
    // Nothing is left to issue, so no deadline warning.
    assert!(v["deadline_warning"].is_null(), "{v}");

    let o = maictl(dir.path(), &args).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let acme = text.lines().position(|l| l.starts_with("acme ")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[acme].contains("- (-)"), "{text}");
    assert_eq!(
        lines[acme + 1].trim(),
        "not invoiced: amounts round to 0.00",
        "{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
    nbp.shutdown().await.unwrap();
}

#[tokio::test]
async fn flags_override_only_the_file_they_name() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), &nbp.base_url(), true);
    let other = dir.path().join("backup").join("cache.sqlite");
    ledger(&other, &[event("g9", "2025-12-03", "1.5")]);
    let v = json(
        &maictl(
            dir.path(),
            &[
                "--fleet",
                f.to_str().unwrap(),
                "billing",
                "--month",
                "2025-12",
                "--json",
                "--ledger",
                other.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(v["totals"]["requests"], 1, "{v}");
    assert_eq!(v["totals"]["raw_cost_usd"], "1.5", "{v}");

    // Without a [billing] section, --billing-config supplies the seller.
    let bare = tempfile::tempdir().unwrap();
    let f = fleet(bare.path(), &nbp.base_url(), false);
    let cfg = bare.path().join("billing.toml");
    let v = json(
        &maictl(
            bare.path(),
            &[
                "--fleet",
                f.to_str().unwrap(),
                "billing",
                "--month",
                "2025-12",
                "--json",
                "--billing-config",
                cfg.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(v["totals"]["requests"], 2, "{v}");
    nbp.shutdown().await.unwrap();
}

#[tokio::test]
async fn invoices_and_the_invoice_rate_go_through_the_fleet_file() {
    let nbp = NbpSim::spawn(sim::NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path(), &nbp.base_url(), true);
    let f = f.to_str().unwrap();

    let o = maictl(
        dir.path(),
        &[
            "--fleet",
            f,
            "nbp",
            "invoice-rate",
            "--tax-point",
            "2025-12-29",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let mid = nbp.rate_a("USD", d("2025-12-23")).unwrap();
    let text = stdout(&o);
    assert!(text.contains(&format!("1 USD = {mid} PLN")), "{text}");
    assert!(text.contains("/A/NBP/2025 of 2025-12-23"), "{text}");

    let out = dir.path().join("invoices");
    let v = json(
        &maictl(
            dir.path(),
            &[
                "--fleet",
                f,
                "invoices",
                "--month",
                "2025-12",
                "--format",
                "csv",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(v["out_dir"], out.to_str().unwrap());
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{v}");
    let csv = std::fs::read_to_string(files[0].as_str().unwrap()).unwrap();
    assert!(csv.contains("acme"), "{csv}");
    nbp.shutdown().await.unwrap();
}

#[tokio::test]
async fn what_is_missing_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let o = maictl(dir.path(), &["billing", "--month", "2026-11"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("fleet file fleet.toml not found")
            && e.contains("--fleet")
            && e.contains("MAI_FLEET"),
        "{e}"
    );

    let f = fleet(dir.path(), "http://127.0.0.1:9/api", false);
    let o = maictl(
        dir.path(),
        &[
            "--fleet",
            f.to_str().unwrap(),
            "billing",
            "--month",
            "2026-11",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("[billing]") && e.contains(f.to_str().unwrap()),
        "{e}"
    );
}
