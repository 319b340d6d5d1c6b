//! Profit that matches the bank: OpenRouter's credit-purchase and BYOK fees in the
//! report's profit and margins, with hand-computed figures (NBP mid 4.0000 throughout,
//! so 1 USD = 4 PLN).

mod common;

use common::{d, event};
use mai_billing::config::BillingConfig;
use mai_billing::export::csv::{render, CsvDialect, COLUMNS};
use mai_billing::fees::{FeeBasis, FeeConfig};
use mai_billing::report::{build_report, InvoiceRates, MonthReport};
use mai_billing::store::BillingStore;
use mai_core::ledger::Ledger;
use mai_core::nbp::InvoiceRate;
use mai_core::time::YearMonth;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const SELLER: &str = r#"
[seller]
name = "S"
nip = "1234563218"
address_line1 = "ul. A 1"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

/// acme: PLN invoice, 1.3×, $100 of usage in 40 requests.
/// byokco: USD invoice, 1.3×, $200 of usage in 40 requests.
const CLIENTS: &str = r#"
[[clients]]
org_id = "acme"
name = "Acme Sp. z o.o."
nip = "9876543210"
address_line1 = "ul. B 2"
markup = { default_rate = "1.3", entries = [] }

[[clients]]
org_id = "byokco"
name = "Byok Sp. z o.o."
nip = "5260001246"
address_line1 = "ul. C 3"
currency = "USD"
markup = { default_rate = "1.3", entries = [] }
"#;

fn month() -> YearMonth {
    "2025-12".parse().unwrap()
}

fn rates() -> InvoiceRates {
    InvoiceRates {
        usd: InvoiceRate {
            code: "USD".into(),
            mid: dec!(4.0000),
            table_no: "250/A/NBP/2025".into(),
            effective_date: d("2025-12-30"),
            reference_date: d("2025-12-31"),
        },
        eur: None,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    store: BillingStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let mut events = Vec::new();
    for i in 0..40 {
        let day = d("2025-12-01") + chrono::Days::new(i % 28);
        events.push(event("acme", &format!("a{i}"), "m", day, dec!(2.5)));
        events.push(event("byokco", &format!("b{i}"), "m", day, dec!(5)));
    }
    ledger.record_batch(&events).unwrap();
    let store = BillingStore::open(&dir.path().join("store.sqlite")).unwrap();
    Fixture {
        _dir: dir,
        ledger,
        store,
    }
}

fn report(fees: &str, only: Option<&str>) -> MonthReport {
    let cfg = BillingConfig::parse_with_clients(&format!("{SELLER}\n{fees}\n{CLIENTS}")).unwrap();
    let f = fixture();
    let r = rates();
    build_report(
        &cfg,
        &f.ledger,
        &f.store,
        month(),
        d("2026-01-05"),
        Ok(&r),
        only,
    )
    .unwrap()
}

fn profit(r: &MonthReport, org: &str) -> mai_billing::fees::ClientProfit {
    r.clients
        .iter()
        .find(|c| c.org_id == org)
        .unwrap()
        .profit
        .clone()
        .unwrap()
}

#[test]
fn markup_1_3_is_a_23_08_percent_margin_before_fees_and_less_after() {
    // No [fees] section: OpenRouter's card fee, 5.5 %, top-up size unknown.
    let r = report("", None);
    let a = r.clients.iter().find(|c| c.org_id == "acme").unwrap();
    let s = a.statement.as_ref().unwrap();
    // $100 × 1.3 × 4 = 520.00 PLN net; raw 400.00 PLN; profit 120.00 PLN.
    assert_eq!(s.amounts.net_pln, dec!(520.00));
    assert_eq!(s.profit_pln, dec!(120.00));
    let p = a.profit.as_ref().unwrap();
    // 120 / 520 = 23.0769… %
    assert_eq!(p.margin_before_fees_percent, Some(dec!(23.08)));
    // Fee 5.5 % of $100 = $5.50 = 22.00 PLN; 98.00 / 520 = 18.846… %
    assert_eq!(p.fees.credit_purchase_usd, dec!(5.5));
    assert_eq!(p.fees.byok_usd, dec!(0));
    assert_eq!(p.fees_pln, dec!(22.00));
    assert_eq!(p.profit_after_fees_usd, dec!(24.5)); // 130 − 100 − 5.5
    assert_eq!(p.profit_after_fees_pln, dec!(98.00));
    assert_eq!(p.effective_margin_percent, Some(dec!(18.85)));
    assert!(
        r.fees_basis.contains("top-up sizes unknown"),
        "{}",
        r.fees_basis
    );
    assert!(r.fees_basis.contains("5.5%"), "{}", r.fees_basis);
}

#[test]
fn a_typical_top_up_below_the_minimum_costs_more() {
    // $10 top-ups: 5.5 % = $0.55 < $0.80 minimum, so 8 % of the credits.
    let r = report("[fees]\ntypical_purchase_usd = \"10\"\n", None);
    let p = profit(&r, "acme");
    assert_eq!(p.fees.credit_purchase_usd, dec!(8));
    assert_eq!(p.fees_pln, dec!(32.00));
    assert_eq!(p.profit_after_fees_pln, dec!(88.00));
    assert_eq!(p.effective_margin_percent, Some(dec!(16.92))); // 88 / 520 = 16.923…
    assert!(
        r.fees_basis.contains("typical top-up of $10"),
        "{}",
        r.fees_basis
    );
}

#[test]
fn recorded_purchases_of_the_month_set_the_rate_exactly() {
    // December: $100 charged $105.50 (card statement), $10 with the $0.80 minimum;
    // the November purchase is another month's. Fees 5.50 + 0.80 = 6.30 on $110.
    let r = report(
        r#"[fees]
typical_purchase_usd = "1000"
[[fees.purchases]]
date = "2025-11-28"
credits_usd = "5000"
[[fees.purchases]]
date = "2025-12-03"
credits_usd = "100"
charged_usd = "105.50"
[[fees.purchases]]
date = 2025-12-20
credits_usd = "10"
"#,
        None,
    );
    let p = profit(&r, "acme");
    // $100 × 6.30 / 110 = $5.727272…; × 4 = 22.909… → 22.91 PLN
    assert_eq!(
        mai_core::money::round_half_up(p.fees.credit_purchase_usd, 6),
        dec!(5.727273),
        "{}",
        p.fees.credit_purchase_usd
    );
    assert_eq!(p.fees_pln, dec!(22.91));
    assert_eq!(p.profit_after_fees_pln, dec!(97.09));
    assert_eq!(p.effective_margin_percent, Some(dec!(18.67))); // 97.09 / 520 = 18.671…
    assert!(
        r.fees_basis.contains("2 recorded purchase(s)")
            && r.fees_basis.contains("$6.3 of fees on $110"),
        "{}",
        r.fees_basis
    );
}

#[test]
fn byok_pays_the_byok_fee_beyond_the_free_requests_and_the_purchase_fee_on_it() {
    let fees = "[fees]\nbyok_clients = [\"byokco\"]\nbyok_free_requests_per_month = 10\n";
    let r = report(fees, None);
    let p = profit(&r, "byokco");
    // 40 BYOK requests, 10 free: 30/40 of 5 % of $200 = $7.50; purchase fee 5.5 % of
    // that = $0.4125; total $7.9125 × 4 = 31.65 PLN.
    assert!(p.fees.byok);
    assert_eq!(p.fees.byok_usd, dec!(7.5));
    assert_eq!(p.fees.credit_purchase_usd, dec!(0.4125));
    assert_eq!(p.fees.total_usd, dec!(7.9125));
    assert_eq!(p.fees_pln, dec!(31.65));
    // USD invoice: net $260 = 1040.00 PLN, raw 800.00 PLN, profit 240.00 → 23.08 %;
    // after fees 208.35 → 20.03 %.
    assert_eq!(p.margin_before_fees_percent, Some(dec!(23.08)));
    assert_eq!(p.profit_after_fees_pln, dec!(208.35));
    assert_eq!(p.effective_margin_percent, Some(dec!(20.03)));
    // The allowance is account-wide: a report for one client still counts them all.
    let only = report(fees, Some("byokco"));
    assert_eq!(profit(&only, "byokco"), p);
    // Under the allowance there is no BYOK fee at all.
    let free = report("[fees]\nbyok_clients = [\"byokco\"]\n", None);
    let p = profit(&free, "byokco");
    assert_eq!(p.fees.total_usd, Decimal::ZERO);
    assert_eq!(p.effective_margin_percent, Some(dec!(23.08)));
    // A non-BYOK client still pays the purchase fee on all its usage.
    assert_eq!(profit(&free, "acme").fees.credit_purchase_usd, dec!(5.5));
}

#[test]
fn totals_add_fees_and_give_the_month_s_effective_margin() {
    let r = report(
        "[fees]\nbyok_clients = [\"byokco\"]\nbyok_free_requests_per_month = 10\n",
        None,
    );
    let t = &r.totals;
    // acme 5.5 + byokco 7.9125; 22.00 + 31.65 PLN
    assert_eq!(t.fees_usd, dec!(13.4125));
    assert_eq!(t.fees_pln, dec!(53.65));
    // before fees: 120 + 240 = 360.00 of 520 + 1040 = 1560 → 23.08 %
    assert_eq!(t.profit_pln, dec!(360.00));
    assert_eq!(t.margin_before_fees_percent, Some(dec!(23.08)));
    // after: 98.00 + 208.35 = 306.35 → 19.64 % (306.35 / 1560 = 19.6378…)
    assert_eq!(t.profit_after_fees_pln, dec!(306.35));
    assert_eq!(t.effective_margin_percent, Some(dec!(19.64)));
    assert_eq!(t.profit_after_fees_usd, dec!(24.5) + dec!(52.0875)); // 60 − 7.9125
}

#[test]
fn csv_appends_the_fee_columns_at_the_end() {
    let r = report("", None);
    let n = COLUMNS.len();
    assert_eq!(
        &COLUMNS[n - 6..],
        [
            "missing",
            "fees_usd",
            "fees_pln",
            "profit_after_fees_pln",
            "margin_before_fees_percent",
            "effective_margin_percent"
        ],
        "new columns come after the old ones, whose order stays"
    );
    let csv = render(&r, CsvDialect::Plain);
    let lines: Vec<&str> = csv.lines().collect();
    let acme = lines.iter().find(|l| l.contains(",acme,")).unwrap();
    assert!(acme.ends_with(",5.5,22.00,98.00,23.08,18.85"), "{acme}");
    let total = lines.last().unwrap();
    assert_eq!(total.split(',').count(), n, "{total}");
    let pl = render(&r, CsvDialect::Polish);
    assert!(
        pl.lines()
            .any(|l| l.ends_with(";5,5;22,00;98,00;23,08;18,85")),
        "{pl}"
    );
}

#[test]
fn fee_settings_are_checked_when_the_billing_file_is_loaded() {
    for (fees, says) in [
        ("credit_purchase_percent = \"105\"", "percentage"),
        ("credit_purchase_minimum_usd = \"-1\"", "negative"),
        ("typical_purchase_usd = \"0\"", "above 0"),
        ("byok_clients = [\"nobody\"]", "not a client"),
        (
            "[[fees.purchases]]\ndate = \"2025-12-01\"\ncredits_usd = \"100\"\ncharged_usd = \"99\"",
            "less than credits_usd",
        ),
        ("credit_purchase_percent = 5.5", "string"),
    ] {
        let text = format!("{SELLER}\n[fees]\n{fees}\n{CLIENTS}");
        let e = BillingConfig::parse_with_clients(&text).unwrap_err();
        assert!(e.contains(says), "{fees}: {e}");
    }
    // Defaults: OpenRouter's published card fee and BYOK terms.
    let cfg = BillingConfig::parse(SELLER).unwrap();
    assert_eq!(cfg.fees, FeeConfig::default());
    assert_eq!(cfg.fees.credit_purchase_percent, dec!(5.5));
    assert_eq!(cfg.fees.credit_purchase_minimum_usd, dec!(0.80));
    assert_eq!(cfg.fees.byok_fee_percent, dec!(5));
    assert_eq!(cfg.fees.byok_free_requests_per_month, 1_000_000);
    assert_eq!(
        cfg.fees.month_rate(month()).unwrap().basis,
        FeeBasis::PercentOnly
    );
}

#[test]
fn a_fee_that_does_not_fit_is_an_error_not_a_number() {
    let cfg = FeeConfig {
        byok_clients: vec!["x".into()],
        ..FeeConfig::default()
    };
    let rate = cfg.month_rate(month()).unwrap();
    let e = cfg
        .client_fees("x", Decimal::MAX, &rate, (2, 2))
        .unwrap_err();
    assert!(e.to_string().contains("client `x`"), "{e}");
}
