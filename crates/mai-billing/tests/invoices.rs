//! End to end: ledger + NBP simulator → invoices prepared for KSeF (KSeF's answers played
//! by the test through the store's `record_*`), their sums, FA(3) (runtime validator and
//! xmllint), PDF (pdftotext), CSV, numbering, NBP outages.

mod common;

use std::collections::BTreeMap;

use common::*;
use mai_billing::export::csv::CsvDialect;
use mai_billing::export::format_pl;
use mai_billing::report::ReadyReason;
use mai_billing::{
    Billing, BillingError, BillingStore, ExportFormat, ExportRequest, InvoiceKind, KsefState,
    PrepareOutcome, PrepareRequest, RowStatus,
};
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

fn prep(month: YearMonth) -> PrepareRequest {
    PrepareRequest {
        month,
        client: None,
        issue_date: None,
        allow_unconfirmed: false,
    }
}

/// Plays KSeF: every ready invoice is sent and accepted on `day`.
async fn accept_all(billing: &Billing, out: &PrepareOutcome, day: &str) -> Vec<String> {
    let numbers: Vec<String> = out.ready.iter().map(|r| r.number.clone()).collect();
    let day = d(day);
    let list = numbers.clone();
    billing
        .with_store(move |s| {
            Ok(list
                .iter()
                .map(|n| accept(s, n, day, next_n()))
                .collect::<Vec<_>>())
        })
        .await
        .unwrap()
}

/// Independent half-up rounding to 0.01 for the expectations.
fn half_up(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

#[tokio::test]
async fn december_invoices_match_the_ledger_validate_and_render_once_ksef_accepted_them() {
    let env = Env::new().await;
    // Issued 5 January 2026: tax point 31 December 2025 → table A of 30 December 2025.
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();

    // Three complete clients prepared, numbered gap-free in org order; the others named.
    let numbers: Vec<&str> = out.ready.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(
        numbers,
        ["FV/2026/01/0001", "FV/2026/01/0002", "FV/2026/01/0003"]
    );
    assert!(out
        .ready
        .iter()
        .all(|r| r.kind == InvoiceKind::Vat && r.why == ReadyReason::New));
    let problems: BTreeMap<_, _> = out
        .problems
        .iter()
        .map(|p| (p.org_id.as_str(), p.messages.join(" | ")))
        .collect();
    assert!(problems["nodata"].contains("NIP"), "{problems:?}");
    assert!(problems["nodata"].contains("address"), "{problems:?}");
    assert!(
        problems["stray"].contains("an entry in the fleet file"),
        "{problems:?}"
    );
    assert!(out.problems.iter().all(|p| p.number.is_none()));

    // Before KSeF accepted them they are not invoices: no file, and the reason says so.
    let s = billing
        .export(&req(&env, ExportFormat::Ksef, "early"), &mut |_| {})
        .await
        .unwrap();
    assert!(s.files.is_empty());
    assert!(
        s.skipped.iter().any(|k| k.reason.contains(
            "FV/2026/01/0001 is prepared in KSeF, not issued yet: send it to KSeF first"
        )),
        "{:?}",
        s.skipped
    );
    let report = billing
        .report(dec_month(), Some("acme".into()))
        .await
        .unwrap();
    assert_eq!(report.clients[0].status, RowStatus::ReadyToIssue);
    assert_eq!(report.clients[0].ksef_state, Some(KsefState::Prepared));

    let ksef_numbers = accept_all(&billing, &out, "2026-01-05").await;
    let mut events = Vec::new();
    let summary = billing
        .export(&req(&env, ExportFormat::Ksef, "ksef"), &mut |p| {
            events.push(p)
        })
        .await
        .unwrap();
    assert!(summary.issued.is_empty(), "an export issues nothing");
    assert_eq!(summary.files.len(), 3);
    assert!(!events.is_empty());

    let store = BillingStore::open(&env.store_path).unwrap();
    let invoices = store.invoices_for_month(dec_month()).unwrap();
    let mid = env.sim.rate_a("USD", d("2025-12-30")).unwrap();
    let eur_mid = env.sim.rate_a("EUR", d("2025-12-30")).unwrap();
    let ledger = env.ledger();
    let all = december_events();

    for (inv, ready) in invoices.iter().zip(&out.ready) {
        assert_eq!(inv.number, ready.number);
        assert!(inv.is_issued());
        assert!(ksef_numbers.contains(inv.ksef.as_ref().unwrap().ksef_number.as_ref().unwrap()));
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

        // The file is byte for byte what was prepared (and sent); it validates (xmllint,
        // independently of the runtime validator that passed it before numbering).
        let xml_path = env.out("ksef").join(format!("{}.xml", inv.file_stem()));
        let bytes = std::fs::read(&xml_path).unwrap();
        assert_eq!(bytes, ready.xml, "{}", inv.number);
        assert_eq!(
            mai_billing::store::sha256_hex(&bytes),
            inv.ksef.as_ref().unwrap().xml_sha256.clone().unwrap()
        );
        xmllint(&xml_path);
        let xml = read(&xml_path);
        assert!(xml.contains(&format!("<P_15>{}</P_15>", s.amounts.gross)));
        assert!(xml.contains(&format!("<P_2>{}</P_2>", inv.number)));
        assert!(xml.contains("<RodzajFaktury>VAT</RodzajFaktury>"));
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
                assert!(xml.contains("<KodUE>DE</KodUE>"));
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

    // Preparing again hands out nothing new: everything is issued.
    let again = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert!(again.ready.is_empty(), "{:?}", again.ready);
    assert_eq!(again.issued.len(), 3);
    env.sim.shutdown().await.unwrap();
}

/// Late usage after KSeF accepted the month: a correction invoice (KOR) of the original,
/// increase and decrease, at the original's rate, valid FA(3); the original stays frozen.
#[tokio::test]
async fn late_usage_after_acceptance_becomes_correction_invoices() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    accept_all(&billing, &out, "2026-01-05").await;
    billing
        .export(&req(&env, ExportFormat::Ksef, "a"), &mut |_| {})
        .await
        .unwrap();
    let store = BillingStore::open(&env.store_path).unwrap();
    let originals: BTreeMap<String, mai_billing::IssuedInvoice> = store
        .invoices_for_month(dec_month())
        .unwrap()
        .into_iter()
        .map(|i| (i.statement.org_id.clone(), i))
        .collect();
    drop(store);
    let acme_fv = originals["acme"].clone();
    let beta_fv = originals["beta"].clone();
    let xml_before = read(&env.out("a").join("FV_2026_01_0001.xml"));

    // Late usage for 20 December reaches the ledger (acme, PLN), and OpenRouter lowers
    // the cost of one of beta's (USD) generations.
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
    let lowered = december_events()
        .into_iter()
        .filter(|e| e.org_id == "beta")
        .max_by_key(|e| e.cost_usd)
        .unwrap();
    let mut fixed = lowered.clone();
    fixed.cost_usd = Decimal::ZERO;
    fixed.source = mai_core::usage::Source::Reconciliation;
    ledger.record(&fixed).unwrap();
    drop(ledger);

    let report = billing.report(dec_month(), None).await.unwrap();
    let acme_row = report.clients.iter().find(|c| c.org_id == "acme").unwrap();
    assert_eq!(acme_row.status, RowStatus::Issued);
    assert_eq!(acme_row.statement.as_ref(), Some(&acme_fv.statement));
    assert_eq!(acme_row.late_usage_usd, late);
    let beta_row = report.clients.iter().find(|c| c.org_id == "beta").unwrap();
    assert_eq!(beta_row.late_usage_usd, -lowered.cost_usd);

    // A month later: January has nothing new for these, December needs two corrections.
    let feb = env.billing("2026-02-03");
    let out = feb.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert_eq!(out.issued.len(), 3);
    let kor: BTreeMap<&str, &mai_billing::ReadyInvoice> =
        out.ready.iter().map(|r| (r.org_id.as_str(), r)).collect();
    assert_eq!(
        kor.len(),
        2,
        "{:?}",
        out.ready.iter().map(|r| &r.number).collect::<Vec<_>>()
    );
    let up = kor["acme"];
    let down = kor["beta"];
    assert_eq!(up.kind, InvoiceKind::Kor);
    assert_eq!(up.number, "KOR/2026/02/0001");
    assert_eq!(down.number, "KOR/2026/02/0002");
    assert_eq!(up.month, dec_month());
    let acme_ksef = acme_fv.ksef.as_ref().unwrap().ksef_number.clone().unwrap();
    let beta_ksef = beta_fv.ksef.as_ref().unwrap().ksef_number.clone().unwrap();
    assert_eq!(
        up.corrects.as_ref().unwrap().ksef_number.as_ref(),
        Some(&acme_ksef)
    );
    assert_eq!(down.corrects.as_ref().unwrap().number, beta_fv.number);

    // Both valid FA(3) (runtime validator passed them; xmllint independently).
    for r in [up, down] {
        let path = env.out(&format!("{}.xml", r.number.replace('/', "_")));
        std::fs::write(&path, &r.xml).unwrap();
        xmllint(&path);
        assert_eq!(mai_billing::schema::validate(&r.xml).unwrap(), vec![]);
    }
    let up_xml = String::from_utf8(up.xml.clone()).unwrap();
    let down_xml = String::from_utf8(down.xml.clone()).unwrap();
    let store = BillingStore::open(&env.store_path).unwrap();
    let up_inv = store.get(&up.number).unwrap().unwrap();
    let down_inv = store.get(&down.number).unwrap().unwrap();
    drop(store);

    // Increase (acme, PLN): the late cost × December's markup (1.5 from the 15th) × the
    // original's rate, as a difference; the month's period and the original by KSeF number.
    let mid = acme_fv.statement.usd_rate.mid;
    let k = up_inv.correction.as_ref().unwrap();
    assert_eq!(k.before, acme_fv.statement);
    assert_eq!(up_inv.statement.usd_rate, acme_fv.statement.usd_rate);
    let diff = up_inv.statement.amounts.net - acme_fv.statement.amounts.net;
    assert!(diff > Decimal::ZERO);
    assert_eq!(
        up_inv.statement.month_raw_cost_usd,
        acme_fv.statement.month_raw_cost_usd + late
    );
    let model_line_before = acme_fv
        .statement
        .lines
        .iter()
        .find(|l| l.model.as_deref() == Some("openai/gpt-4o") && l.markup == Decimal::new(15, 1))
        .unwrap();
    assert_eq!(
        diff,
        half_up((model_line_before.raw_cost_usd + late) * Decimal::new(15, 1) * mid)
            - model_line_before.net
    );
    for part in [
        "<RodzajFaktury>KOR</RodzajFaktury>",
        "<TypKorekty>1</TypKorekty>",
        "<NrKSeF>1</NrKSeF>",
        &format!("<NrKSeFFaKorygowanej>{acme_ksef}</NrKSeFFaKorygowanej>"),
        &format!("<NrFaKorygowanej>{}</NrFaKorygowanej>", acme_fv.number),
        &format!(
            "<DataWystFaKorygowanej>{}</DataWystFaKorygowanej>",
            acme_fv.issue_date
        ),
        "<P_6_Od>2025-12-01</P_6_Od><P_6_Do>2025-12-31</P_6_Do>",
        "<P_1>2026-02-03</P_1>",
        "<StanPrzed>1</StanPrzed>",
        &format!("<P_13_1>{}</P_13_1>", diff),
        "PrzyczynaKorekty>Zużycie usług AI za grudzień 2025",
        &acme_fv.statement.usd_rate.table_no,
    ] {
        assert!(up_xml.contains(part), "{part} missing:\n{up_xml}");
    }

    // Decrease (beta, USD): negative differences, the original's rate per line, VAT in PLN.
    let k = down_inv.correction.as_ref().unwrap();
    assert_eq!(k.before, beta_fv.statement);
    let d_amounts =
        mai_billing::correction::difference(&k.before.amounts, &down_inv.statement.amounts);
    assert!(d_amounts.net < Decimal::ZERO && d_amounts.gross < Decimal::ZERO);
    let beta_mid = beta_fv.statement.usd_rate.mid;
    for part in [
        "<TypKorekty>2</TypKorekty>".to_string(),
        format!("<NrKSeFFaKorygowanej>{beta_ksef}</NrKSeFFaKorygowanej>"),
        "<KodWaluty>USD</KodWaluty>".to_string(),
        format!("<P_13_1>{}</P_13_1>", d_amounts.net),
        format!("<P_14_1W>{}</P_14_1W>", d_amounts.vat_pln),
        format!("<P_15>{}</P_15>", d_amounts.gross),
        format!("<KursWaluty>{beta_mid}</KursWaluty>"),
        "PrzyczynaKorekty>Obniżenie".to_string(),
    ] {
        assert!(down_xml.contains(&part), "{part} missing:\n{down_xml}");
    }
    assert!(
        !down_xml.contains("<Platnosc>"),
        "a decrease asks for no payment"
    );

    // Nothing is issued until KSeF accepts the corrections; then the month stands corrected.
    accept_all(&feb, &out, "2026-02-03").await;
    let report = feb.report(dec_month(), None).await.unwrap();
    for org in ["acme", "beta"] {
        let row = report.clients.iter().find(|c| c.org_id == org).unwrap();
        assert_eq!(row.late_usage_usd, Decimal::ZERO, "{org}");
        assert_eq!(row.corrections.len(), 1);
        assert_eq!(
            row.invoice_number.as_deref(),
            Some(originals[org].number.as_str())
        );
    }

    // Another late event: a correction of the corrected state (still naming the original).
    let mut ledger = env.ledger();
    ledger
        .record(&event(
            "acme",
            "gen-late-2",
            "openai/gpt-4o",
            d("2025-12-21"),
            Decimal::ONE,
        ))
        .unwrap();
    drop(ledger);
    let mar = env.billing("2026-03-02");
    let out2 = mar.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert_eq!(out2.ready.len(), 1);
    let second = &out2.ready[0];
    assert_eq!(second.number, "KOR/2026/03/0003");
    let second_xml = String::from_utf8(second.xml.clone()).unwrap();
    assert!(second_xml.contains(&format!(
        "<NrKSeFFaKorygowanej>{acme_ksef}</NrKSeFFaKorygowanej>"
    )));
    assert!(
        second_xml.contains("faktura FV/2026/01/0001 po korektach KOR/2026/02/0001"),
        "{second_xml}"
    );
    let store = BillingStore::open(&env.store_path).unwrap();
    let second_inv = store.get(&second.number).unwrap().unwrap();
    assert_eq!(
        second_inv.correction.as_ref().unwrap().before,
        up_inv.statement
    );
    drop(store);
    let path = env.out("second.xml");
    std::fs::write(&path, &second.xml).unwrap();
    xmllint(&path);

    // The originals never changed; the VAT series is untouched, corrections have their own.
    let s2 = mar
        .export(&req(&env, ExportFormat::Ksef, "b"), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(read(&env.out("b").join("FV_2026_01_0001.xml")), xml_before);
    assert!(env.out("b").join("KOR_2026_02_0001.xml").exists());
    assert!(
        s2.skipped
            .iter()
            .any(|k| k.reason.contains("correction KOR/2026/03/0003 is prepared")),
        "{:?}",
        s2.skipped
    );
    let store = BillingStore::open(&env.store_path).unwrap();
    assert_eq!(store.sequence("1234563218", 2026).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        store
            .issued_sequence("1234563218", InvoiceKind::Kor, 2026)
            .unwrap(),
        vec![1, 2]
    );
    env.sim.shutdown().await.unwrap();
}

/// With `late_usage = "carry"` the late usage goes onto the next invoice, as before KSeF.
#[tokio::test]
async fn with_late_usage_carry_the_next_invoice_bills_it() {
    let mut env = Env::new().await;
    env.cfg.late_usage = mai_billing::LateUsage::Carry;
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    accept_all(&billing, &out, "2026-01-05").await;

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
    // December: no correction in this mode.
    let dec = feb.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert!(dec.ready.is_empty(), "{:?}", dec.ready);
    let jan: YearMonth = "2026-01".parse().unwrap();
    let mut r = prep(jan);
    r.client = Some("acme".into());
    let out = feb.prepare_for_ksef(&r).await.unwrap();
    // Numbering continues in the seller's 2026 sequence.
    assert_eq!(out.ready.len(), 1);
    assert_eq!(out.ready[0].number, "FV/2026/02/0004");
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
    drop(store);
    accept_all(&feb, &out, "2026-02-03").await;

    // December now reports nothing left over; the carried usage is not billed twice.
    let dec = feb.report(dec_month(), Some("acme".into())).await.unwrap();
    assert_eq!(dec.clients[0].late_usage_usd, Decimal::ZERO);
    let jan_report = feb.report(jan, Some("acme".into())).await.unwrap();
    assert_eq!(jan_report.clients[0].status, RowStatus::Issued);
    env.sim.shutdown().await.unwrap();
}

/// A month whose amounts round to 0.00 gets no number and nothing is sent; its usage is
/// carried onto the next invoice (default) or waived.
#[tokio::test]
async fn a_zero_month_is_not_numbered_and_its_usage_is_carried_or_waived() {
    for waive in [false, true] {
        let mut env = Env::new().await;
        if waive {
            env.cfg.zero_month = mai_billing::ZeroMonth::Waive;
        }
        let billing = env.billing("2026-01-05");
        let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
        accept_all(&billing, &out, "2026-01-05").await;
        // January: acme used one nano-dollar; February: a real month.
        let tiny = Decimal::new(1, 9);
        let mut ledger = env.ledger();
        ledger
            .record(&event(
                "acme",
                "gen-jan-tiny",
                "openai/gpt-4o",
                d("2026-01-12"),
                tiny,
            ))
            .unwrap();
        ledger
            .record(&event(
                "acme",
                "gen-feb-1",
                "openai/gpt-4o",
                d("2026-02-10"),
                Decimal::ONE,
            ))
            .unwrap();
        drop(ledger);
        let jan: YearMonth = "2026-01".parse().unwrap();
        let feb_b = env.billing("2026-02-02");
        let report = feb_b.report(jan, Some("acme".into())).await.unwrap();
        assert_eq!(report.clients[0].status, RowStatus::NoUsage);
        assert!(report.clients[0].zero_amounts);
        let out = feb_b.prepare_for_ksef(&prep(jan)).await.unwrap();
        assert!(out.ready.is_empty(), "{:?}", out.ready);
        let z = out.not_issued.iter().find(|n| n.org_id == "acme").unwrap();
        assert!(z.reason.contains("round to 0.00"), "{}", z.reason);
        assert!(
            z.reason
                .contains(if waive { "waived" } else { "next invoice" }),
            "{}",
            z.reason
        );
        assert_eq!(z.zero_month.as_ref().unwrap().raw_cost_usd, tiny);
        let store = BillingStore::open(&env.store_path).unwrap();
        assert_eq!(store.sequence("1234563218", 2026).unwrap(), vec![1, 2, 3]);
        assert!(store.invoices_for_month(jan).unwrap().is_empty());
        drop(store);

        let mar = env.billing("2026-03-02");
        let feb: YearMonth = "2026-02".parse().unwrap();
        let out = mar.prepare_for_ksef(&prep(feb)).await.unwrap();
        assert_eq!(out.ready.len(), 1);
        assert_eq!(out.ready[0].number, "FV/2026/03/0004");
        let store = BillingStore::open(&env.store_path).unwrap();
        let inv = store.get("FV/2026/03/0004").unwrap().unwrap();
        let carried: Vec<_> = inv
            .statement
            .lines
            .iter()
            .filter(|l| l.usage_month == jan)
            .collect();
        if waive {
            assert!(carried.is_empty());
            assert_eq!(inv.statement.raw_cost_usd, Decimal::ONE);
        } else {
            assert_eq!(carried.len(), 1);
            assert_eq!(carried[0].raw_cost_usd, tiny);
            assert!(
                carried[0].description.contains("styczeń 2026"),
                "{}",
                carried[0].description
            );
            assert_eq!(inv.statement.raw_cost_usd, Decimal::ONE + tiny);
        }
        env.sim.shutdown().await.unwrap();
    }
}

/// An invoice the FA(3) schema would refuse takes no number: the message names the
/// client, the element and line, and the fix; the sequence is untouched.
#[tokio::test]
async fn an_xsd_invalid_invoice_is_refused_before_a_number_is_taken() {
    let mut env = Env::new().await;
    let acme = env
        .cfg
        .clients
        .iter_mut()
        .find(|c| c.org_id == "acme")
        .unwrap();
    acme.name = Some(format!("Zakład {}", "Bardzo Długiej Nazwy ".repeat(30)));
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    let p = out.problems.iter().find(|p| p.org_id == "acme").unwrap();
    assert_eq!(
        p.number.as_deref(),
        Some("FV/2026/01/0001"),
        "the number it would have had"
    );
    let issue = &p.issues[0];
    assert_eq!(
        issue.element.as_deref(),
        Some("Podmiot2/DaneIdentyfikacyjne/Nazwa")
    );
    assert!(issue.line.is_some());
    assert!(issue.fix.contains("legal_name"), "{issue}");
    let msg = p.messages.join(" ");
    assert!(
        msg.contains("client `acme`") && msg.contains("legal_name"),
        "{msg}"
    );
    // The others are numbered from 1: the refused invoice used nothing.
    let numbers: Vec<&str> = out.ready.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers, ["FV/2026/01/0001", "FV/2026/01/0002"]);
    let store = BillingStore::open(&env.store_path).unwrap();
    assert_eq!(store.sequence("1234563218", 2026).unwrap(), vec![1, 2]);
    assert!(store.invoices_for_org("acme").unwrap().is_empty());
    drop(store);

    // Fixed in the fleet file: numbered next.
    let acme = env
        .cfg
        .clients
        .iter_mut()
        .find(|c| c.org_id == "acme")
        .unwrap();
    acme.name = Some("Zakład Usług Łączności Gęś Sp. z o.o.".into());
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    let new: Vec<(&str, ReadyReason)> = out
        .ready
        .iter()
        .map(|r| (r.number.as_str(), r.why))
        .collect();
    assert!(
        new.contains(&("FV/2026/01/0003", ReadyReason::New)),
        "{new:?}"
    );
    env.sim.shutdown().await.unwrap();
}

/// KSeF rejects one invoice: it keeps its number, is rendered again from the fixed data
/// and sent again; a lost answer is resent as the same bytes and KSeF's 440 makes it
/// accepted. The issued sequence ends up without a gap.
#[tokio::test]
async fn numbers_stay_gap_free_across_a_rejection_a_resend_and_a_lost_answer() {
    let mut env = Env::new().await;
    let billing = env.billing("2026-01-05");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    let by: BTreeMap<String, mai_billing::ReadyInvoice> = out
        .ready
        .iter()
        .map(|r| (r.org_id.clone(), r.clone()))
        .collect();
    let (acme, beta, gmbh) = (by["acme"].clone(), by["beta"].clone(), by["gmbh"].clone());
    let (b, g) = (beta.number.clone(), gmbh.number.clone());
    let a = acme.number.clone();
    billing
        .with_store(move |s| {
            accept(s, &a, d("2026-01-05"), next_n());
            s.record_sent(
                &b,
                &mai_billing::KsefSubmission {
                    session_ref: ksef_ref("SO", 900),
                    invoice_ref: ksef_ref("EE", 900),
                    xml_sha256: sent_hash(s, &b),
                },
            )?;
            s.record_rejected(
                &b,
                &mai_billing::KsefRejection {
                    code: 450,
                    description: "Błąd weryfikacji semantyki dokumentu faktury".into(),
                    details: vec!["Nieprawidłowa nazwa nabywcy".into()],
                    session_ref: Some(ksef_ref("SO", 900)),
                    invoice_ref: Some(ksef_ref("EE", 900)),
                },
            )?;
            // gmbh: sent, but the answer never came back (nothing recorded).
            let _ = g;
            Ok(())
        })
        .await
        .unwrap();
    let status = billing.ksef_status(dec_month()).await.unwrap();
    let st: BTreeMap<&str, KsefState> = status
        .iter()
        .map(|r| (r.org_id.as_str(), r.state))
        .collect();
    assert_eq!(st["acme"], KsefState::Accepted);
    assert_eq!(st["beta"], KsefState::Rejected);
    assert_eq!(st["gmbh"], KsefState::Prepared);

    // The operator fixes beta's data and prepares again.
    let beta_cfg = env
        .cfg
        .clients
        .iter_mut()
        .find(|c| c.org_id == "beta")
        .unwrap();
    beta_cfg.name = Some("Beta Analytics Spółka Akcyjna".into());
    let billing = env.billing("2026-01-07");
    let out = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    let by2: BTreeMap<&str, &mai_billing::ReadyInvoice> =
        out.ready.iter().map(|r| (r.org_id.as_str(), r)).collect();
    assert_eq!(by2.len(), 2);
    assert_eq!(
        by2["beta"].number, beta.number,
        "same number after the rejection"
    );
    assert_eq!(by2["beta"].why, ReadyReason::AfterRejection);
    let beta_xml = String::from_utf8(by2["beta"].xml.clone()).unwrap();
    assert!(beta_xml.contains("Beta Analytics Spółka Akcyjna"));
    assert!(
        beta_xml.contains("<P_1>2026-01-05</P_1>"),
        "the issue date stays"
    );
    assert_eq!(by2["gmbh"].why, ReadyReason::Unsent);
    assert_eq!(
        by2["gmbh"].xml, gmbh.xml,
        "the very bytes of the first send"
    );
    assert_eq!(out.issued, vec![acme.number.clone()]);

    // beta accepted now; gmbh's resend gets 440: KSeF had accepted the first send.
    let b = beta.number.clone();
    let g = gmbh.number.clone();
    let lost = ksef_number("1234563218", d("2026-01-05"), 777);
    let lost2 = lost.clone();
    billing
        .with_store(move |s| {
            accept(s, &b, d("2026-01-07"), next_n());
            s.record_sent(
                &g,
                &mai_billing::KsefSubmission {
                    session_ref: ksef_ref("SO", 901),
                    invoice_ref: ksef_ref("EE", 901),
                    xml_sha256: sent_hash(s, &g),
                },
            )?;
            s.record_duplicate(
                &g,
                &mai_billing::KsefDuplicate {
                    original_ksef_number: lost2,
                    original_session_ref: Some(ksef_ref("SO", 899)),
                    session_ref: Some(ksef_ref("SO", 901)),
                    invoice_ref: Some(ksef_ref("EE", 901)),
                    description: "Duplikat faktury".into(),
                },
            )
        })
        .await
        .unwrap();
    let store = BillingStore::open(&env.store_path).unwrap();
    assert_eq!(
        store
            .issued_sequence("1234563218", InvoiceKind::Vat, 2026)
            .unwrap(),
        vec![1, 2, 3]
    );
    let g = store.get(&gmbh.number).unwrap().unwrap();
    assert_eq!(g.ksef.unwrap().ksef_number, Some(lost));
    let events: Vec<String> = store
        .history(&beta.number)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        ["prepared", "sent", "rejected", "prepared", "sent", "accepted"]
    );
    drop(store);
    let again = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert!(again.ready.is_empty());
    assert_eq!(again.issued.len(), 3);
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn nbp_down_means_nothing_prepared_and_no_number_used() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    env.sim.set_fault(Fault::status(503));
    let err = billing
        .prepare_for_ksef(&prep(dec_month()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BillingError::Nbp(_)), "{err:?}");
    assert!(msg.contains("table A"), "{msg}");
    assert!(msg.contains("2025-12-31"), "{msg}");
    assert!(msg.contains("no invoice was produced"), "{msg}");
    let store = BillingStore::open(&env.store_path).unwrap();
    assert!(store.invoices_for_month(dec_month()).unwrap().is_empty());

    // The report still works, without PLN figures, and says why.
    let report = billing.report(dec_month(), None).await.unwrap();
    assert!(report.rates.is_none());
    assert!(report.rate_error.as_deref().unwrap().contains("table A"));
    assert!(report.clients.iter().all(|c| c.statement.is_none()));

    // NBP back: numbering starts at 0001, no gap from the failed attempt.
    env.sim.clear_faults();
    let ok = billing.prepare_for_ksef(&prep(dec_month())).await.unwrap();
    assert_eq!(ok.ready[0].number, "FV/2026/01/0001");
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
        .prepare_for_ksef(&prep(dec_month()))
        .await
        .unwrap_err();
    assert!(matches!(err, BillingError::MonthOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("2025-12-31"));
    let err = billing
        .export(&req(&env, ExportFormat::Ksef, "o"), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, BillingError::MonthOpen { .. }), "{err:?}");
    let csv = billing
        .export(&req(&env, ExportFormat::Csv, "o"), &mut |_| {})
        .await
        .unwrap();
    let text = read(&csv.files[0]);
    assert!(text.contains("provisional"));
    env.sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_client_and_unknown_client() {
    let env = Env::new().await;
    let billing = env.billing("2026-01-05");
    let mut r = prep(dec_month());
    r.client = Some("beta".into());
    let out = billing.prepare_for_ksef(&r).await.unwrap();
    assert_eq!(out.ready.len(), 1);
    assert_eq!(out.ready[0].number, "FV/2026/01/0001");
    accept_all(&billing, &out, "2026-01-05").await;
    let mut e = req(&env, ExportFormat::Ksef, "one");
    e.client = Some("beta".into());
    let s = billing.export(&e, &mut |_| {}).await.unwrap();
    assert_eq!(s.files.len(), 1);
    r.client = Some("nosuch".into());
    let err = billing.prepare_for_ksef(&r).await.unwrap_err();
    assert!(matches!(err, BillingError::UnknownClient { .. }));
    assert!(err.to_string().contains("acme"));
    e.client = Some("nosuch".into());
    assert!(matches!(
        billing.export(&e, &mut |_| {}).await.unwrap_err(),
        BillingError::UnknownClient { .. }
    ));
    env.sim.shutdown().await.unwrap();
}

/// Unconfirmed (provisional) usage is never invoiced silently: preparing is refused
/// naming it, or, when told to, the invoice lists the events.
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
        .prepare_for_ksef(&prep(dec_month()))
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
        "nothing prepared, no number used"
    );
    drop(store);
    let mut r = prep(dec_month());
    r.allow_unconfirmed = true;
    let ok = billing.prepare_for_ksef(&r).await.unwrap();
    assert_eq!(ok.ready[0].number, "FV/2026/01/0001");
    accept_all(&billing, &ok, "2026-01-05").await;
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
    billing
        .export(&req(&env, ExportFormat::Pdf, "r"), &mut |_| {})
        .await
        .unwrap();
    let pdf = env.out("r").join(format!("{}.pdf", acme.file_stem()));
    let (code, text, err) = run("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("gen-lost-1"), "{text}");
    assert!(text.contains("niepotwierdzone"), "{text}");
    env.sim.shutdown().await.unwrap();
}
