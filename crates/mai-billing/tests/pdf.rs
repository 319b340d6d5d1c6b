//! The PDF with KSeF's acceptance: KSeF number, KOD I QR code (decoded back from the
//! rendered page), line unit / quantity / unit price, VAT-UE numbers with prefixes; and
//! the mark of a PDF made before acceptance. Needs `pdftotext` and `pdftoppm`
//! (poppler-utils) and the DejaVu font (fonts-dejavu-core).

mod common;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use common::{d, run, Env};
use mai_billing::compute::{price, ModelUsage, PriceInput, SegmentUsage};
use mai_billing::config::{ClientBilling, LineMode, Seller, VatTreatment, DEFAULT_PDF_FONT};
use mai_billing::export::pdf::{
    kod_i_url, load_font, render, KsefEnvironment, KsefReceiptForPdf, NOT_ACCEPTED_MARK,
};
use mai_billing::store::IssuedInvoice;
use mai_core::money::Currency;
use mai_core::nbp::InvoiceRate;
use mai_core::usage::Totals;
use rust_decimal_macros::dec;
use sha2::{Digest, Sha256};

fn seller() -> Seller {
    Seller {
        name: "mAI Odsprzedaż Sp. z o.o.".into(),
        nip: "1234563218".into(),
        address_line1: "ul. Świętokrzyska 12".into(),
        address_line2: Some("00-916 Warszawa".into()),
        country: "PL".into(),
        bank_account: "PL61 1090 1014 0000 0712 1981 2874".into(),
        bank_name: Some("Bank Przykładowy S.A.".into()),
        email: None,
    }
}

fn buyer(org: &str, name: &str, country: &str, vat_id: &str) -> ClientBilling {
    ClientBilling {
        name: Some(name.into()),
        vat_id: Some(vat_id.into()),
        address_line1: Some("Hauptstraße 1".into()),
        address_line2: Some("10115 Berlin".into()),
        country: country.into(),
        currency: Currency::Usd,
        vat: VatTreatment::ReverseCharge,
        lines: LineMode::ByModel,
        ..ClientBilling::unconfigured(org)
    }
}

/// December 2025 of one client: two models at 1.3×, USD, reverse charge.
fn invoice(buyer: ClientBilling) -> IssuedInvoice {
    let usd = InvoiceRate {
        code: "USD".into(),
        mid: dec!(3.6012),
        table_no: "250/A/NBP/2025".into(),
        effective_date: d("2025-12-30"),
        reference_date: d("2025-12-31"),
    };
    let tot = |requests, cost| Totals {
        requests,
        cost_usd: cost,
        ..Totals::default()
    };
    let statement = price(&PriceInput {
        org_id: &buyer.org_id,
        month: "2025-12".parse().unwrap(),
        segments: vec![SegmentUsage {
            from: d("2025-12-01"),
            to: d("2025-12-31"),
            markup: dec!(1.3),
            models: vec![
                ModelUsage {
                    model: "openai/gpt-4o".into(),
                    totals: tot(120, dec!(100)),
                },
                ModelUsage {
                    model: "anthropic/claude-sonnet-4".into(),
                    totals: tot(30, dec!(12.5)),
                },
            ],
        }],
        carry_over: vec![],
        currency: buyer.currency,
        vat: buyer.vat,
        line_mode: buyer.lines,
        usd_rate: &usd,
        hosting: None,
    })
    .unwrap();
    IssuedInvoice {
        number: "FV/2026/01/0007".into(),
        seq: 7,
        year: 2026,
        kind: mai_billing::store::InvoiceKind::Vat,
        issue_date: d("2026-01-02"),
        due_date: d("2026-01-16"),
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap(),
        seller: seller(),
        buyer,
        statement,
        correction: None,
        ksef: None,
    }
}

/// CRC-8 (polynomial 0x07, initial 0) of a KSeF number's first 32 characters
/// (`docs/numer-ksef.md`), so the test uses a number shaped like a real one.
fn ksef_number(nip: &str, day: &str, technical: &str) -> String {
    let data = format!("{nip}-{day}-{technical}");
    let mut crc: u8 = 0;
    for b in data.bytes() {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    format!("{data}-{crc:02X}")
}

#[test]
fn crc8_matches_the_documented_example() {
    assert_eq!(
        ksef_number("5265877635", "20250826", "0100001AF629"),
        "5265877635-20250826-0100001AF629-AF"
    );
}

#[test]
fn kod_i_matches_the_documented_example() {
    // kody-qr.md: NIP 1111111111, P_1 01-02-2026, digest UtQp9Gpc…WzIE.
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode("UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")
        .unwrap();
    let digest: [u8; 32] = digest.try_into().unwrap();
    assert_eq!(
        kod_i_url(KsefEnvironment::Test, "1111111111", d("2026-02-01"), &digest),
        "https://qr-test.ksef.mf.gov.pl/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
    );
    assert!(kod_i_url(
        KsefEnvironment::Production,
        "1111111111",
        d("2026-02-01"),
        &digest
    )
    .starts_with("https://qr.ksef.mf.gov.pl/invoice/"));
    assert!(kod_i_url(
        KsefEnvironment::Demo,
        "1111111111",
        d("2026-02-01"),
        &digest
    )
    .starts_with("https://qr-demo.ksef.mf.gov.pl/invoice/"));
}

/// Decodes every QR code on a PNG page (pdftoppm output: 8-bit grey, RGB or RGBA).
fn decode_qr(png_path: &std::path::Path) -> Vec<String> {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = y * info.line_size + x * channels;
        if channels >= 3 {
            ((u16::from(buf[p]) + u16::from(buf[p + 1]) + u16::from(buf[p + 2])) / 3) as u8
        } else {
            buf[p]
        }
    });
    img.detect_grids()
        .into_iter()
        .map(|g| g.decode().expect("a QR code on the page decodes").1)
        .collect()
}

/// The first page of a PDF at 200 dpi (`pdftoppm`), written beside it.
fn first_page_png(pdf: &std::path::Path) -> std::path::PathBuf {
    let stem = pdf.with_extension("");
    let (code, _, err) = run(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "200",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            pdf.to_str().unwrap(),
            stem.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let png = stem.with_extension("png");
    assert!(png.exists(), "pdftoppm wrote no {}", png.display());
    png
}

#[test]
fn accepted_invoice_shows_ksef_number_qr_units_and_vat_ue_ids() {
    let font = load_font(std::path::Path::new(DEFAULT_PDF_FONT)).unwrap();
    let inv = invoice(buyer("gmbh", "Muster GmbH", "DE", "de 123-456-789"));
    let xml = mai_billing::export::ksef::render(&inv).unwrap();
    let number = ksef_number("1234563218", "20260102", "0100001AF629");
    let receipt = KsefReceiptForPdf::for_xml(number.clone(), xml.as_bytes(), KsefEnvironment::Test);
    let pdf = render(&inv, &font, Some(&receipt)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, &pdf).unwrap();

    let (code, text, err) = run("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("Numer KSeF: {number}")), "{text}");
    assert!(!text.contains("TO NIE JEST FAKTURA"), "{text}");
    // Each line: unit, quantity 1, net unit price = the line's net (FA(3) P_8A/P_8B/P_9A).
    // 100 × 1.3 = 130.00 USD; 12.5 × 1.3 = 16.25 USD.
    for price in ["130,00", "16,25"] {
        let line = text
            .lines()
            .find(|l| l.contains("usł.") && l.contains(price))
            .unwrap_or_else(|| panic!("no line with usł. and {price}:\n{text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        let at = cells.iter().position(|c| *c == "usł.").unwrap();
        assert_eq!(cells[at + 1], "1", "quantity after the unit: {line}");
        assert_eq!(
            cells[at + 2],
            price,
            "unit price after the quantity: {line}"
        );
        assert_eq!(cells.last().copied(), Some(price), "line net: {line}");
    }
    assert!(
        text.contains("J.m.") && text.contains("Ilość") && text.contains("Cena jedn."),
        "{text}"
    );
    // EU reverse charge: both VAT-UE numbers, each with its prefix.
    assert!(text.contains("NIP VAT-UE: PL1234563218"), "{text}");
    assert!(text.contains("NIP VAT-UE: DE123456789"), "{text}");

    // The QR code, read back from the rendered page.
    let png_path = first_page_png(&path);
    let digest =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(xml.as_bytes()));
    let expected = format!("https://qr-test.ksef.mf.gov.pl/invoice/1234563218/02-01-2026/{digest}");
    assert_eq!(decode_qr(&png_path), vec![expected.clone()]);
    // The link is printed too, and the KSeF number under the code.
    assert!(text.contains(&expected), "{text}");
    assert!(
        text.matches(number.as_str()).count() >= 3,
        "number at the top, beside and under the code:\n{text}"
    );
    // To look at the page: MAI_KEEP_PDF_PNG=/tmp/page.png cargo test --test pdf
    if let Ok(keep) = std::env::var("MAI_KEEP_PDF_PNG") {
        std::fs::copy(&png_path, keep).unwrap();
    }
}

#[test]
fn greek_buyer_is_shown_with_el_and_its_xml_validates() {
    let font = load_font(std::path::Path::new(DEFAULT_PDF_FONT)).unwrap();
    let inv = invoice(buyer("hellas", "Hellas AE", "GR", "123456789"));
    let xml = mai_billing::export::ksef::render(&inv).unwrap();
    assert!(
        xml.contains("<PrefiksPodatnika>PL</PrefiksPodatnika>"),
        "{xml}"
    );
    assert!(xml.contains("<KodUE>EL</KodUE>"), "{xml}");
    assert!(xml.contains("<NrVatUE>123456789</NrVatUE>"), "{xml}");
    assert!(xml.contains("<KodKraju>GR</KodKraju>"), "{xml}");
    let dir = tempfile::tempdir().unwrap();
    let xml_path = dir.path().join("fa3.xml");
    std::fs::write(&xml_path, &xml).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ksef-fa3/schemat.xsd");
    let (code, _, err) = run(
        "xmllint",
        &[
            "--noout",
            "--nonet",
            "--schema",
            schema,
            xml_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        code, 0,
        "FA(3) with PrefiksPodatnika and KodUE EL must validate: {err}"
    );

    let receipt = KsefReceiptForPdf::for_xml(
        ksef_number("1234563218", "20260102", "0100001AF62A"),
        xml.as_bytes(),
        KsefEnvironment::Production,
    );
    let path = dir.path().join("gr.pdf");
    std::fs::write(&path, render(&inv, &font, Some(&receipt)).unwrap()).unwrap();
    let (_, text, _) = run("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    assert!(text.contains("NIP VAT-UE: EL123456789"), "{text}");
    assert!(text.contains("NIP VAT-UE: PL1234563218"), "{text}");
    assert!(
        text.contains("https://qr.ksef.mf.gov.pl/invoice/1234563218/02-01-2026/"),
        "{text}"
    );
}

#[test]
fn without_ksef_acceptance_the_pdf_says_it_is_not_an_invoice() {
    let font = load_font(std::path::Path::new(DEFAULT_PDF_FONT)).unwrap();
    let inv = invoice(buyer("gmbh", "Muster GmbH", "DE", "DE123456789"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("draft.pdf");
    std::fs::write(&path, render(&inv, &font, None).unwrap()).unwrap();
    let (code, text, err) = run("pdftotext", &[path.to_str().unwrap(), "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(NOT_ACCEPTED_MARK), "{text}");
    assert!(
        text.contains("not an invoice: not yet accepted by KSeF"),
        "{text}"
    );
    assert!(!text.contains("Numer KSeF"), "{text}");
    assert!(
        !text.contains("ksef.mf.gov.pl"),
        "no QR link without acceptance: {text}"
    );
    if let Ok(keep) = std::env::var("MAI_KEEP_DRAFT_PDF") {
        std::fs::copy(&path, keep).unwrap();
    }
}

#[test]
fn a_ksef_number_of_another_seller_is_refused() {
    let font = load_font(std::path::Path::new(DEFAULT_PDF_FONT)).unwrap();
    let inv = invoice(buyer("gmbh", "Muster GmbH", "DE", "DE123456789"));
    let receipt = KsefReceiptForPdf::for_xml(
        ksef_number("5265877635", "20260102", "0100001AF629"),
        b"<Faktura/>",
        KsefEnvironment::Test,
    );
    let e = render(&inv, &font, Some(&receipt)).unwrap_err().to_string();
    assert!(e.contains("5265877635") && e.contains("1234563218"), "{e}");
}

/// A correction (KOR) prepared as `tests/invoices.rs` does (accepted December, late usage
/// for acme, a lowered cost for beta, both corrections accepted by KSeF), exported as PDF:
/// title, both numbers, the corrected invoice's KSeF number, lines before and after, the
/// difference with "Do zapłaty" / "Do zwrotu", and KOD I over the KOR's own XML.
#[tokio::test]
async fn an_accepted_correction_is_exported_as_pdf_with_its_ksef_number_and_qr() {
    use mai_billing::export::csv::CsvDialect;
    use mai_billing::export::format_pl;
    use mai_billing::{BillingStore, ExportFormat, ExportRequest, PrepareRequest};
    use rust_decimal::Decimal;

    let env = Env::new().await;
    let month: mai_core::time::YearMonth = "2025-12".parse().unwrap();
    let prep = PrepareRequest {
        month,
        client: None,
        issue_date: None,
        allow_unconfirmed: false,
    };
    let accept_ready = |billing: &mai_billing::Billing, numbers: Vec<String>, day: &str| {
        let day = d(day);
        let billing = billing.clone();
        async move {
            billing
                .with_store(move |s| {
                    Ok(numbers
                        .iter()
                        .map(|n| common::accept(s, n, day, common::next_n()))
                        .collect::<Vec<_>>())
                })
                .await
                .unwrap()
        }
    };
    let jan = env.billing("2026-01-05");
    let out = jan.prepare_for_ksef(&prep).await.unwrap();
    accept_ready(
        &jan,
        out.ready.iter().map(|r| r.number.clone()).collect(),
        "2026-01-05",
    )
    .await;

    // Late usage for acme (PLN, an increase); OpenRouter lowers one of beta's (USD).
    let mut ledger = env.ledger();
    ledger
        .record(&common::event(
            "acme",
            "gen-late-1",
            "openai/gpt-4o",
            d("2025-12-20"),
            Decimal::new(123_456_789, 9),
        ))
        .unwrap();
    let mut lowered = common::december_events()
        .into_iter()
        .filter(|e| e.org_id == "beta")
        .max_by_key(|e| e.cost_usd)
        .unwrap();
    lowered.cost_usd = Decimal::ZERO;
    lowered.source = mai_core::usage::Source::Reconciliation;
    ledger.record(&lowered).unwrap();
    drop(ledger);

    let feb = env.billing("2026-02-03");
    let out = feb.prepare_for_ksef(&prep).await.unwrap();
    let kor: Vec<String> = out.ready.iter().map(|r| r.number.clone()).collect();
    assert_eq!(kor, vec!["KOR/2026/02/0001", "KOR/2026/02/0002"]);

    // Before KSeF accepted them, the export skips them and writes nothing for them.
    let dir = env.out("pdf-before");
    let req = |out_dir| ExportRequest {
        month,
        format: ExportFormat::Pdf,
        client: None,
        out_dir,
        dialect: CsvDialect::Polish,
        issue_date: None,
        allow_unconfirmed: false,
    };
    let early = feb.export(&req(dir.clone()), &mut |_| {}).await.unwrap();
    assert!(!dir.join("KOR_2026_02_0001.pdf").exists());
    assert!(
        early
            .skipped
            .iter()
            .any(|s| s.reason.contains("KOR/2026/02/0001")
                && s.reason.contains("send it to KSeF first")),
        "{:?}",
        early.skipped
    );

    let kor_ksef = accept_ready(&feb, kor.clone(), "2026-02-03").await;
    let dir = env.out("pdf");
    let summary = feb.export(&req(dir.clone()), &mut |_| {}).await.unwrap();
    assert!(
        summary.skipped.iter().all(|s| !s.reason.contains("KOR/")),
        "{:?}",
        summary.skipped
    );

    let store = BillingStore::open(&env.store_path).unwrap();
    let up = store.get(&kor[0]).unwrap().unwrap();
    let down = store.get(&kor[1]).unwrap().unwrap();
    let up_xml = store.xml(&kor[0]).unwrap().unwrap();
    drop(store);

    // The increase (acme, PLN).
    let k = up.correction.as_ref().unwrap();
    let diff = mai_billing::correction::difference(&k.before.amounts, &up.statement.amounts);
    assert!(diff.gross > Decimal::ZERO);
    let path = dir.join("KOR_2026_02_0001.pdf");
    assert!(summary.files.contains(&path), "{:?}", summary.files);
    let (code, text, err) = run("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    assert_eq!(code, 0, "{err}");
    let original_ksef = k.corrected.ksef_number.clone().unwrap();
    for part in [
        "Faktura korygująca nr KOR/2026/02/0001".to_string(),
        format!("Numer KSeF: {}", kor_ksef[0]),
        format!(
            "Faktura korygowana: nr {} z dnia {}",
            k.corrected.number, k.corrected.issue_date
        ),
        format!("Numer KSeF faktury korygowanej: {original_ksef}"),
        "Przyczyna korekty: Zużycie usług AI za grudzień 2025".to_string(),
        "Typ korekty: 1".to_string(),
        "Okres rozliczeniowy faktury korygowanej: 2025-12-01 – 2025-12-31".to_string(),
        "Przed korektą:".to_string(),
        "Po korekcie:".to_string(),
        format!("{} PLN", format_pl(diff.net)),
        format!("Do zapłaty: {} PLN", format_pl(diff.gross)),
        up.statement.usd_rate.table_no.clone(),
        "Forma płatności: przelew".to_string(),
    ] {
        assert!(text.contains(&part), "{part} missing:\n{text}");
    }
    assert_eq!(k.corrected.number, "FV/2026/01/0001");
    assert!(!text.contains("TO NIE JEST FAKTURA"), "{text}");
    assert!(!text.contains("Do zwrotu"), "{text}");
    // The rows before and after carry the XML's unit price: each P_9A of the KOR's lines.
    let xml = String::from_utf8(up_xml.clone()).unwrap();
    for p9a in xml.split("<P_9A>").skip(1) {
        let net: Decimal = p9a.split('<').next().unwrap().parse().unwrap();
        let price = format_pl(net);
        assert!(
            text.lines()
                .any(|l| l.contains("usł.") && l.contains(&price)),
            "no line with usł. and {price}:\n{text}"
        );
    }

    // KOD I over the KOR's own XML bytes, read back from the page.
    let png = first_page_png(&path);
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&up_xml));
    let expected = format!("https://qr-test.ksef.mf.gov.pl/invoice/1234563218/03-02-2026/{digest}");
    assert_eq!(decode_qr(&png), vec![expected.clone()]);
    assert!(text.contains(&expected), "{text}");
    if let Ok(keep) = std::env::var("MAI_KEEP_KOR_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }

    // The decrease (beta, USD): negative differences, "Do zwrotu", no payment terms.
    let k = down.correction.as_ref().unwrap();
    let diff = mai_billing::correction::difference(&k.before.amounts, &down.statement.amounts);
    assert!(diff.gross < Decimal::ZERO);
    let path = dir.join("KOR_2026_02_0002.pdf");
    let (_, text, _) = run("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    for part in [
        "Faktura korygująca nr KOR/2026/02/0002".to_string(),
        format!("Numer KSeF: {}", kor_ksef[1]),
        format!(
            "Numer KSeF faktury korygowanej: {}",
            k.corrected.ksef_number.clone().unwrap()
        ),
        "Przyczyna korekty: Obniżenie".to_string(),
        format!("{} USD", format_pl(diff.net)),
        format!("{} PLN", format_pl(diff.vat_pln)),
        format!("Do zwrotu: {} USD", format_pl(-diff.gross)),
    ] {
        assert!(text.contains(&part), "{part} missing:\n{text}");
    }
    assert!(format_pl(diff.net).starts_with('-'));
    assert!(
        !text.contains("Do zapłaty") && !text.contains("Forma płatności"),
        "{text}"
    );
    if let Ok(keep) = std::env::var("MAI_KEEP_KOR_DOWN_PNG") {
        std::fs::copy(first_page_png(&path), keep).unwrap();
    }

    // Without KSeF's receipt a correction is marked as not an invoice, like a VAT one.
    let font = load_font(std::path::Path::new(DEFAULT_PDF_FONT)).unwrap();
    let draft = dir.join("draft.pdf");
    std::fs::write(&draft, render(&up, &font, None).unwrap()).unwrap();
    let (_, text, _) = run("pdftotext", &[draft.to_str().unwrap(), "-"]);
    assert!(
        text.contains("Faktura korygująca nr KOR/2026/02/0001"),
        "{text}"
    );
    assert!(text.contains(NOT_ACCEPTED_MARK), "{text}");
    assert!(!text.contains("ksef.mf.gov.pl"), "{text}");
    env.sim.shutdown().await.unwrap();
}
