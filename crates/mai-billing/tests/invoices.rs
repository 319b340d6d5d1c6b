//! End to end: ledger + NBP simulator → issued invoices, their sums, FA(3) (xmllint),
//! PDF (pdftotext), CSV, numbering, freezing, NBP outages.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use mai_billing::export::csv::CsvDialect;
use mai_billing::export::format_pl;
use mai_billing::{BillingError, BillingStore, ExportFormat, ExportRequest, RowStatus};
use mai_core::money::Currency;
use mai_core::time::YearMonth;
use mai_sim::nbp::Fault;
use rust_decimal::{Decimal, RoundingStrategy};

fn dec_month() -> YearMonth {
    "2025-12".parse().unwrap()
}

fn req(env: &Env, format: ExportFormat, dir: &str) -> ExportRequest {
    ExportRequest {
        month: dec_month(),
        format,
        client: None,
        out_dir: env.out(dir),
        dialect: CsvDialect::Polish,
        issue_date: None,
        allow_unconfirmed: false,
    }
}

/// Independent half-up rounding to 0.01 for the expectations.
fn half_up(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/ksef-fa3/schemat.xsd")
}

#[tokio::test]
async fn december_invoices_match_the_ledger_validate_and_render() {
    let env = Env::new().await;
    // Issued 5 January 2026: tax point 31 December 2025 → table A of 30 December 2025.
    let billing = env.billing("2026-01-05");
    let mut events = Vec::new();
    let summary = billing
        .export(&req(&env, ExportFormat::Ksef, "ksef"), &mut |p| {
            events.push(p)
        })
        .await
        .unwrap();

    // Three complete clients issued, gap-free, in config order; the others reported.
    assert_eq!(
        summary.issued,
        vec!["FV/2026/01/0001", "FV/2026/01/0002", "FV/2026/01/0003"]
    );
    let skipped: BTreeMap<_, _> = summary
        .skipped
        .iter()
        .map(|s| (s.org_id.as_str(), s.reason.as_str()))
        .collect();
    assert!(skipped["nodata"].contains("NIP"), "{skipped:?}");
    assert!(skipped["nodata"].contains("address"), "{skipped:?}");
    assert!(
        skipped["stray"].contains("an entry in the fleet file"),
        "{skipped:?}"
    );
    assert_eq!(summary.files.len(), 3);
    assert!(!events.is_empty());

    let store = BillingStore::open(&env.store_path).unwrap();
    let invoices = store.invoices_for_month(dec_month()).unwrap();
    let mid = env.sim.rate_a("USD", d("2025-12-30")).unwrap();
    let eur_mid = env.sim.rate_a("EUR", d("2025-12-30")).unwrap();
    let ledger = env.ledger();
    let all = december_events();

    for inv in &invoices {
        let s = &inv.statement;
        // The rate is the legal one, with its table number and date.
        assert_eq!(s.usd_rate.effective_date, d("2025-12-30"));
        assert_eq!(s.usd_rate.reference_date, d("2025-12-31"));
        assert_eq!(s.usd_rate.mid, mid);
        assert!(s.usd_rate.table_no.ends_with("/A/NBP/2025"));

        // Sums equal the ledger exactly, and the raw events.
        let from_events: Decimal = all
            .iter()
            .filter(|e| e.org_id == s.org_id)
            .map(|e| e.cost_usd)
            .sum();
        let ledger_total = ledger
            .range(&s.org_id, d("2025-12-01"), d("2025-12-31"))
            .unwrap();
        assert_eq!(s.raw_cost_usd, from_events, "{}", s.org_id);
        assert_eq!(s.raw_cost_usd, ledger_total.cost_usd, "{}", s.org_id);
        assert_eq!(
            s.lines.iter().map(|l| l.raw_cost_usd).sum::<Decimal>(),
            from_events
        );
        assert_eq!(s.usage.requests, ledger_total.requests);

        // Amounts recomputed independently from the events.
        let markup = |day: chrono::NaiveDate| {
            if s.org_id == "acme" && day >= d("2025-12-15") {
                Decimal::new(15, 1)
            } else {
                Decimal::new(13, 1)
            }
        };
        let mut groups: BTreeMap<(bool, String), Decimal> = BTreeMap::new();
        for e in all.iter().filter(|e| e.org_id == s.org_id) {
            let day = mai_core::time::warsaw_day(e.created_at);
            let late_segment = markup(day) != Decimal::new(13, 1);
            let key = match inv.buyer.lines {
                mai_billing::LineMode::ByModel => (late_segment, e.model.clone()),
                mai_billing::LineMode::Summary => (late_segment, String::new()),
            };
            *groups.entry(key).or_default() += e.cost_usd * markup(day);
        }
        let expected_net: Decimal = groups
            .values()
            .map(|exact| match s.amounts.currency {
                Currency::Pln => half_up(exact * mid),
                _ => half_up(*exact),
            })
            .sum();
        assert_eq!(s.lines.len(), groups.len(), "{}", s.org_id);
        assert_eq!(s.amounts.net, expected_net, "{}", s.org_id);
        let rate = match s.vat {
            mai_billing::VatTreatment::Rate(r) => Decimal::from(r) / Decimal::from(100),
            mai_billing::VatTreatment::ReverseCharge => Decimal::ZERO,
        };
        assert_eq!(s.amounts.vat, half_up(expected_net * rate));
        assert_eq!(s.amounts.gross, s.amounts.net + s.amounts.vat);
        if s.amounts.currency == Currency::Usd {
            assert_eq!(s.amounts.vat_pln, half_up(s.amounts.vat * mid));
        }
        if s.org_id == "acme" {
            assert_eq!(s.hosting_pln, half_up(Decimal::new(2500, 2) * eur_mid));
            assert_eq!(
                s.profit_pln,
                s.amounts.net_pln - half_up(from_events * mid) - s.hosting_pln
            );
        }

        // FA(3) validates against the vendored official XSD.
        let xml_path = env.out("ksef").join(format!("{}.xml", inv.file_stem()));
        let xml = read(&xml_path);
        let (code, out, err) = run(
            "xmllint",
            &[
                "--noout",
                "--nonet",
                "--schema",
                schema().to_str().unwrap(),
                xml_path.to_str().unwrap(),
            ],
        );
        assert_eq!(
            code, 0,
            "xmllint rejected {}:\n{out}\n{err}\n{xml}",
            inv.number
        );
        assert!(xml.contains(&format!("<P_15>{}</P_15>", s.amounts.gross)));
        assert!(xml.contains(&format!("<P_2>{}</P_2>", inv.number)));
        match (s.amounts.currency, s.vat) {
            (Currency::Usd, mai_billing::VatTreatment::Rate(23)) => {
                assert!(xml.contains(&format!("<P_14_1W>{}</P_14_1W>", s.amounts.vat_pln)));
                assert!(xml.contains(&format!("<KursWaluty>{mid}</KursWaluty>")));
            }
            (Currency::Pln, _) => {
                assert!(!xml.contains("P_14_1W"));
                assert!(!xml.contains("KursWaluty"));
            }
            (_, mai_billing::VatTreatment::ReverseCharge) => {
                assert!(xml.contains("<P_12>np II</P_12>"));
                assert!(xml.contains("<P_13_9>"));
                assert!(xml.contains("<P_18>1</P_18>"));
                assert!(xml.contains("<KodUE>DE</KodUE><") || xml.contains("<KodUE>DE</KodUE>"));
            }
            _ => {}
        }
        assert!(xml.contains(&s.usd_rate.table_no));
    }

    // PDF: same invoices, text extracted by pdftotext.
    let summary = billing
        .export(&req(&env, ExportFormat::Pdf, "pdf"), &mut |_| {})
        .await
        .unwrap();
    assert!(summary.issued.is_empty(), "re-export issues nothing new");
    assert_eq!(summary.files.len(), 3);
    for inv in &invoices {
        let pdf = env.out("pdf").join(format!("{}.pdf", inv.file_stem()));
        let (code, text, err) = run("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]);
        assert_eq!(code, 0, "{err}");
        let s = &inv.statement;
        assert!(
            text.contains(&format!("Faktura VAT nr {}", inv.number)),
            "{text}"
        );
        let ccy = s.amounts.currency;
        for amount in [s.amounts.net, s.amounts.vat, s.amounts.gross] {
            let shown = format!("{} {ccy}", format_pl(amount));
            assert!(
                text.contains(&shown),
                "{} lacks {shown}:\n{text}",
                inv.number
            );
        }
        if ccy == Currency::Usd && s.amounts.vat > Decimal::ZERO {
            assert!(text.contains(&format!("{} PLN", format_pl(s.amounts.vat_pln))));
        }
        assert!(text.contains(&s.usd_rate.table_no), "{text}");
        assert!(text.contains(&mid.to_string().replace('.', ",")), "{text}");
        for c in ['ą', 'ę', 'ł', 'ż', 'ś', 'ć', 'ń', 'ó', 'Ł', 'Ś'] {
            assert!(text.contains(c), "{} lacks `{c}`:\n{text}", inv.number);
        }
        assert!(text.contains(inv.seller.name.as_str()));
        assert!(text.contains(inv.buyer.name.as_deref().unwrap()), "{text}");
    }
    let acme_pdf = invoices
        .iter()
        .find(|i| i.statement.org_id == "acme")
        .unwrap();
    let (_, text, _) = run(
        "pdftotext",
        &[
            env.out("pdf")
                .join(format!("{}.pdf", acme_pdf.file_stem()))
                .to_str()
                .unwrap(),
            "-",
        ],
    );
    assert!(
        text.contains("Żółkiewskiego") && text.contains("Kraków"),
        "{text}"
    );

    // CSV, both dialects.
    let mut r = req(&env, ExportFormat::Csv, "csv");
    let pl = billing.export(&r, &mut |_| {}).await.unwrap();
    r.dialect = CsvDialect::Plain;
    let plain = billing.export(&r, &mut |_| {}).await.unwrap();
    let pl_text = read(&pl.files[0]);
    let plain_text = read(&plain.files[0]);
    assert!(pl_text.starts_with('\u{feff}'));
    let header_pl = pl_text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap();
    assert!(header_pl.starts_with("month;org_id;client;"));
    assert!(plain_text
        .lines()
        .next()
        .unwrap()
        .starts_with("month,org_id,client,"));
    let acme = &acme_pdf.statement;
    let row_pl = pl_text.lines().find(|l| l.contains(";acme;")).unwrap();
    let row_plain = plain_text.lines().find(|l| l.contains(",acme,")).unwrap();
    assert!(
        row_pl.contains(&format!(
            ";{};",
            acme.amounts.gross.to_string().replace('.', ",")
        )),
        "{row_pl}"
    );
    assert!(
        row_plain.contains(&format!(",{},", acme.amounts.gross)),
        "{row_plain}"
    );
    assert!(row_plain.contains(&acme.raw_cost_usd.to_string()));
    let cols = mai_billing::export::csv::COLUMNS.len();
    for l in plain_text.lines() {
        // Client names have no commas here, so a plain split counts the fields.
        assert_eq!(l.split(',').count(), cols, "{l}");
    }
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_closed_month_stays_frozen_when_late_usage_arrives() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    billing
        .export(&req(&env, ExportFormat::Ksef, "a"), &mut |_| {})
        .await
        .unwrap();
    let before = billing.report(dec_month(), None).await.unwrap();
    let acme_before = before
        .clients
        .iter()
        .find(|c| c.org_id == "acme")
        .unwrap()
        .clone();
    assert_eq!(acme_before.status, RowStatus::Issued);
    let xml_before = read(&env.out("a").join("FV_2026_01_0001.xml"));

    // Late usage for 20 December reaches the ledger after the invoices were issued.
    let late = Decimal::new(123_456_789, 9);
    let mut ledger = env.ledger();
    ledger
        .record(&event(
            "acme",
            "gen-late-1",
            "openai/gpt-4o",
            d("2025-12-20"),
            late,
        ))
        .unwrap();
    drop(ledger);

    let after = billing.report(dec_month(), None).await.unwrap();
    let acme_after = after.clients.iter().find(|c| c.org_id == "acme").unwrap();
    assert_eq!(
        acme_after.statement, acme_before.statement,
        "issued invoice unchanged"
    );
    assert_eq!(
        acme_after.invoice_number.as_deref(),
        Some("FV/2026/01/0001")
    );
    assert_eq!(acme_after.late_usage_usd, late);
    assert_eq!(acme_after.usage.cost_usd, acme_before.usage.cost_usd + late);

    // Re-exporting December gives the very same document and issues nothing.
    let again = billing
        .export(&req(&env, ExportFormat::Ksef, "b"), &mut |_| {})
        .await
        .unwrap();
    assert!(again.issued.is_empty());
    assert_eq!(read(&env.out("b").join("FV_2026_01_0001.xml")), xml_before);

    // The late usage goes onto January's invoice, at December's markup (1.5 from the 15th).
    let mut ledger = env.ledger();
    ledger
        .record(&event(
            "acme",
            "gen-jan-1",
            "openai/gpt-4o",
            d("2026-01-10"),
            Decimal::new(2, 0),
        ))
        .unwrap();
    drop(ledger);
    let feb = env.billing("2026-02-03");
    let jan: YearMonth = "2026-01".parse().unwrap();
    let s = feb
        .export(
            &ExportRequest {
                month: jan,
                format: ExportFormat::Ksef,
                client: Some("acme".into()),
                out_dir: env.out("jan"),
                dialect: CsvDialect::Plain,
                issue_date: None,
                allow_unconfirmed: false,
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    // Numbering continues in the seller's 2026 sequence.
    assert_eq!(s.issued, vec!["FV/2026/02/0004"]);
    let store = BillingStore::open(&env.store_path).unwrap();
    let inv = store.get("FV/2026/02/0004").unwrap().unwrap();
    let carry: Vec<_> = inv
        .statement
        .lines
        .iter()
        .filter(|l| l.usage_month == dec_month())
        .collect();
    assert_eq!(carry.len(), 1);
    assert_eq!(carry[0].raw_cost_usd, late);
    assert_eq!(carry[0].markup, Decimal::new(15, 1));
    assert!(carry[0].description.contains("FV/2026/01/0001"));
    assert_eq!(inv.statement.raw_cost_usd, late + Decimal::new(2, 0));
    assert_eq!(
        store.sequence("1234563218", 2026).unwrap(),
        vec![1, 2, 3, 4]
    );

    // December now reports nothing left over; the carried usage is not billed twice.
    let dec = feb.report(dec_month(), Some("acme".into())).await.unwrap();
    assert_eq!(dec.clients[0].late_usage_usd, Decimal::ZERO);
    let jan_report = feb.report(jan, Some("acme".into())).await.unwrap();
    assert_eq!(jan_report.clients[0].status, RowStatus::Issued);
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn nbp_down_means_no_invoice_and_no_number_used() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    env.sim.set_fault(Fault::status(503));
    let err = billing
        .export(&req(&env, ExportFormat::Pdf, "x"), &mut |_| {})
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BillingError::Nbp(_)), "{err:?}");
    assert!(msg.contains("table A"), "{msg}");
    assert!(msg.contains("2025-12-31"), "{msg}");
    assert!(msg.contains("no invoice was produced"), "{msg}");
    let store = BillingStore::open(&env.store_path).unwrap();
    assert!(store.invoices_for_month(dec_month()).unwrap().is_empty());
    assert!(std::fs::read_dir(env.out("x")).unwrap().next().is_none());

    // The report still works, without PLN figures, and says why.
    let report = billing.report(dec_month(), None).await.unwrap();
    assert!(report.rates.is_none());
    assert!(report.rate_error.as_deref().unwrap().contains("table A"));
    assert!(report.clients.iter().all(|c| c.statement.is_none()));

    // NBP back: numbering starts at 0001, no gap from the failed attempt.
    env.sim.clear_faults();
    let ok = billing
        .export(&req(&env, ExportFormat::Pdf, "x"), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(ok.issued[0], "FV/2026/01/0001");
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_open_month_is_provisional_and_cannot_be_invoiced() {
    let env = Env::new().await;
    let billing = env.billing("2025-12-20");
    let report = billing.report(dec_month(), None).await.unwrap();
    assert!(report.provisional);
    assert!(report
        .clients
        .iter()
        .all(|c| c.status == RowStatus::Provisional));
    // Provisional PLN uses the rate before today, not a future one.
    assert_eq!(
        report.rates.as_ref().unwrap().usd.effective_date,
        d("2025-12-19")
    );
    let err = billing
        .export(&req(&env, ExportFormat::Ksef, "o"), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, BillingError::MonthOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("2025-12-31"));
    let csv = billing
        .export(&req(&env, ExportFormat::Csv, "o"), &mut |_| {})
        .await
        .unwrap();
    let text = read(&csv.files[0]);
    assert!(text.contains("provisional"));
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_client_export_and_unknown_client() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    let mut r = req(&env, ExportFormat::Ksef, "one");
    r.client = Some("beta".into());
    let s = billing.export(&r, &mut |_| {}).await.unwrap();
    assert_eq!(s.issued, vec!["FV/2026/01/0001"]);
    assert_eq!(s.files.len(), 1);
    r.client = Some("nosuch".into());
    let err = billing.export(&r, &mut |_| {}).await.unwrap_err();
    assert!(matches!(err, BillingError::UnknownClient { .. }));
    assert!(err.to_string().contains("acme"));
    env.sim.shutdown().await.unwrap();
}

/// Unconfirmed (provisional) usage is never invoiced silently: the export is refused
/// naming it, or, when told to, issued with the events listed on the invoice.
#[tokio::test]
async fn unconfirmed_usage_refuses_the_invoice_unless_overridden_then_lists_it() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    let mut ledger = env.ledger();
    for (id, day) in [("gen-lost-1", "2025-12-30"), ("gen-lost-2", "2025-12-31")] {
        let mut e = event("acme", id, "openai/gpt-4o", d(day), Decimal::ZERO);
        e.state = mai_core::usage::EventState::Provisional;
        ledger.record(&e).unwrap();
    }
    drop(ledger);
    let err = billing
        .export(&req(&env, ExportFormat::Pdf, "r"), &mut |_| {})
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, BillingError::Unconfirmed { count: 2, .. }),
        "{err:?}"
    );
    for part in [
        "client acme: 2 event(s)",
        "gen-lost-1",
        "gen-lost-2",
        "sync",
        "--allow-unconfirmed",
    ] {
        assert!(msg.contains(part), "{part} missing: {msg}");
    }
    let store = BillingStore::open(&env.store_path).unwrap();
    assert!(
        store.invoices_for_month(dec_month()).unwrap().is_empty(),
        "nothing issued, no number used"
    );
    drop(store);
    let ok = billing
        .export(
            &ExportRequest {
                allow_unconfirmed: true,
                ..req(&env, ExportFormat::Pdf, "r")
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(ok.issued[0], "FV/2026/01/0001");
    let store = BillingStore::open(&env.store_path).unwrap();
    let invs = store.invoices_for_month(dec_month()).unwrap();
    let acme = invs.iter().find(|i| i.statement.org_id == "acme").unwrap();
    let ids: Vec<&str> = acme
        .statement
        .unconfirmed
        .iter()
        .map(|e| e.generation_id.as_str())
        .collect();
    assert_eq!(ids, ["gen-lost-1", "gen-lost-2"]);
    assert!(
        invs.iter()
            .filter(|i| i.statement.org_id != "acme")
            .all(|i| i.statement.unconfirmed.is_empty()),
        "only the client that has them lists them"
    );
    let pdf = env.out("r").join(format!("{}.pdf", acme.file_stem()));
    let (code, text, _) = run("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    if code == 0 {
        assert!(text.contains("gen-lost-1"), "{text}");
        assert!(text.contains("niepotwierdzone"), "{text}");
    }
    env.sim.shutdown().await.unwrap();
}
