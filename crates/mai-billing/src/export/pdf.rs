//! PDF invoice (printpdf, one embedded TTF font with Polish glyphs).
//!
//! The font is read at run time (default: Debian's DejaVuSans from fonts-dejavu-core)
//! rather than vendored, to keep the repository small; a missing font is a clear error.
//! printpdf writes a ToUnicode map, so `pdftotext` gets the Polish letters back.
//!
//! Since KSeF, the invoice is the FA(3) XML KSeF accepted; the PDF is its visualisation.
//! So a PDF carries the KSeF number and the verification QR code (KOD I,
//! `shared/schemas/ksef-api/docs/kody-qr.md`) once KSeF has accepted the XML, and
//! without them it says plainly that it is not an invoice yet.

use std::path::Path;

use base64::Engine as _;
use chrono::NaiveDate;
use mai_core::money::Currency;
use printpdf::path::PaintMode;
use printpdf::{
    Color, IndirectFontRef, Line, Mm, PdfDocument, PdfLayerReference, Point, Rect, Rgb,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ksef::correction_reason;
use super::{format_pl, LINE_QUANTITY, LINE_UNIT};
use crate::compute::{month_name_pl, Statement};
use crate::config::VatTreatment;
use crate::correction::{difference, line_changes, Correction, CorrectionEffect};
use crate::nip::normalise_nip;
use crate::store::{InvoiceKind, IssuedInvoice};
use crate::validate::{needs_pl_prefix, vat_ue_id};
use crate::BillingError;

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const LEFT: f32 = 15.0;
const RIGHT: f32 = 195.0;
const BOTTOM: f32 = 20.0;
/// One QR module, mm: 45 modules (version 7, the KOD I URL at level M) make a 31.5 mm
/// code, ~5 px per module when printed at 200 dpi.
const QR_MODULE_MM: f32 = 0.7;
/// The blank margin ISO/IEC 18004 asks for around the code, in modules.
const QR_QUIET_MODULES: f32 = 4.0;

/// The KSeF environment an invoice was sent to: it decides the QR code's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsefEnvironment {
    /// TE, `api-test`: integration tests, invoices without legal force.
    Test,
    /// DEMO, pre-production.
    Demo,
    /// PRD: invoices with legal force.
    Production,
}

impl KsefEnvironment {
    /// The QR host per environment (`docs/kody-qr.md`, "Środowiska").
    pub fn qr_base_url(self) -> &'static str {
        match self {
            KsefEnvironment::Test => "https://qr-test.ksef.mf.gov.pl",
            KsefEnvironment::Demo => "https://qr-demo.ksef.mf.gov.pl",
            KsefEnvironment::Production => "https://qr.ksef.mf.gov.pl",
        }
    }
}

/// What KSeF's acceptance adds to the printed invoice. Made by the KSeF client once the
/// invoice's status is 200 (accepted, numbered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsefReceiptForPdf {
    /// `NIP-RRRRMMDD-XXXXXXXXXXXX-CC`, 35 characters (`docs/numer-ksef.md`).
    pub ksef_number: String,
    /// SHA-256 of the exact XML bytes sent to KSeF (the same digest the send request
    /// declares as `invoiceHash`).
    pub xml_sha256: [u8; 32],
    pub environment: KsefEnvironment,
}

impl KsefReceiptForPdf {
    /// From the XML bytes themselves (hashes them).
    pub fn for_xml(
        ksef_number: impl Into<String>,
        invoice_xml: &[u8],
        environment: KsefEnvironment,
    ) -> Self {
        KsefReceiptForPdf {
            ksef_number: ksef_number.into(),
            xml_sha256: Sha256::digest(invoice_xml).into(),
            environment,
        }
    }
}

/// KOD I, the verification link: `{host}/invoice/{seller NIP}/{P_1 as DD-MM-RRRR}/{SHA-256
/// of the XML, Base64URL}`. The digest is Base64URL without `=` padding, as in the
/// documentation's example (`UtQp9Gpc51y-…WzIE`, 43 characters for 32 bytes).
pub fn kod_i_url(
    environment: KsefEnvironment,
    seller_nip: &str,
    issue_date: NaiveDate,
    xml_sha256: &[u8; 32],
) -> String {
    format!(
        "{}/invoice/{}/{}/{}",
        environment.qr_base_url(),
        seller_nip,
        issue_date.format("%d-%m-%Y"),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(xml_sha256)
    )
}

/// Reads the TTF font used for invoices.
pub fn load_font(path: &Path) -> Result<Vec<u8>, BillingError> {
    let bytes = std::fs::read(path).map_err(|e| BillingError::Font {
        path: path.to_path_buf(),
        detail: format!("cannot read it ({e})"),
    })?;
    if bytes.len() < 12 {
        return Err(BillingError::Font {
            path: path.to_path_buf(),
            detail: "the file is too small to be a TTF font".into(),
        });
    }
    Ok(bytes)
}

/// Approximate advance width of DejaVu Sans text, for right-aligning amounts. Widths
/// are the font's advances in units of 1/2048 em: digits share one width, separators
/// are narrower; letters use an average.
fn text_width_mm(s: &str, size_pt: f32) -> f32 {
    let units: u32 = s
        .chars()
        .map(|c| match c {
            '0'..='9' => 1303,
            ' ' | '.' | ',' | ':' => 651,
            '-' => 739,
            '%' => 1946,
            'A'..='Z' => 1434,
            _ => 1229,
        })
        .sum();
    units as f32 / 2048.0 * size_pt * 0.3528
}

fn black() -> Color {
    Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None))
}

fn red() -> Color {
    Color::Rgb(Rgb::new(0.75, 0.0, 0.0, None))
}

struct Writer {
    doc: printpdf::PdfDocumentReference,
    layer: PdfLayerReference,
    font: IndirectFontRef,
    y: f32,
    pages: usize,
}

impl Writer {
    fn text(&self, s: &str, size: f32, x: f32) {
        self.layer.use_text(s, size, Mm(x), Mm(self.y), &self.font);
    }
    fn right(&self, s: &str, size: f32, x_right: f32) {
        let x = x_right - text_width_mm(s, size);
        self.layer.use_text(s, size, Mm(x), Mm(self.y), &self.font);
    }
    fn new_page(&mut self) {
        self.pages += 1;
        let (p, l) = self
            .doc
            .add_page(Mm(PAGE_W), Mm(PAGE_H), format!("Strona {}", self.pages));
        self.layer = self.doc.get_page(p).get_layer(l);
        self.y = PAGE_H - 20.0;
    }
    fn down(&mut self, mm: f32) {
        self.y -= mm;
        if self.y < BOTTOM {
            self.new_page();
        }
    }
    /// Starts a new page unless `mm` fit below the current line.
    fn keep(&mut self, mm: f32) {
        if self.y - mm < BOTTOM {
            self.new_page();
        }
    }
    fn rule(&self) {
        let line = Line {
            points: vec![
                (Point::new(Mm(LEFT), Mm(self.y)), false),
                (Point::new(Mm(RIGHT), Mm(self.y)), false),
            ],
            is_closed: false,
        };
        self.layer.set_outline_thickness(0.5);
        self.layer.add_line(line);
    }
    /// A new document with the title and, under it, the KSeF number or the mark of a
    /// document KSeF has not accepted.
    fn begin(
        title: &str,
        font_ttf: &[u8],
        ksef: Option<&KsefReceiptForPdf>,
    ) -> Result<Writer, BillingError> {
        let doc_title = match ksef {
            Some(r) => format!("{title} (KSeF {})", r.ksef_number),
            None => format!("{title} — {NOT_ACCEPTED_MARK}"),
        };
        let (doc, page, layer) = PdfDocument::new(&doc_title, Mm(PAGE_W), Mm(PAGE_H), "Strona 1");
        let font = doc
            .add_external_font(std::io::Cursor::new(font_ttf))
            .map_err(|e| BillingError::Font {
                path: "(embedded)".into(),
                detail: format!("printpdf cannot use it: {e}"),
            })?;
        let layer = doc.get_page(page).get_layer(layer);
        let mut w = Writer {
            doc,
            layer,
            font,
            y: PAGE_H - 20.0,
            pages: 1,
        };
        w.text(title, 16.0, LEFT);
        w.down(7.0);
        match ksef {
            Some(r) => {
                w.text(&format!("Numer KSeF: {}", r.ksef_number), 10.0, LEFT);
                w.down(7.0);
            }
            None => {
                w.layer.set_fill_color(red());
                w.text(NOT_ACCEPTED_MARK, 12.0, LEFT);
                w.down(5.0);
                w.text(NOT_ACCEPTED_MARK_EN, 10.0, LEFT);
                w.layer.set_fill_color(black());
                w.down(7.0);
            }
        }
        Ok(w)
    }

    /// KOD I with the KSeF number under it (kody-qr.md, "Oznaczenie pod kodem QR").
    fn kod_i(
        &mut self,
        rc: &KsefReceiptForPdf,
        seller_nip: &str,
        issue_date: NaiveDate,
    ) -> Result<(), BillingError> {
        let url = kod_i_url(rc.environment, seller_nip, issue_date, &rc.xml_sha256);
        let quiet = QR_QUIET_MODULES * QR_MODULE_MM;
        // Version 7 at most (the URL is ~110 bytes): 45 modules.
        let side_max = 45.0 * QR_MODULE_MM;
        self.down(6.0);
        self.keep(side_max + 2.0 * quiet + 8.0);
        let x = LEFT + quiet;
        let top = self.y - quiet;
        let side = self.qr(&url, x, top)?;
        let text_x = x + side + quiet + 2.0;
        self.y = top - 4.0;
        self.text("Weryfikacja faktury w KSeF", 10.0, text_x);
        self.down(5.5);
        self.text(&format!("Numer KSeF: {}", rc.ksef_number), 9.0, text_x);
        self.down(5.0);
        self.text(
            "Zeskanuj kod QR lub otwórz adres, aby sprawdzić fakturę i pobrać jej XML:",
            8.0,
            text_x,
        );
        self.down(4.0);
        self.text(&url, 6.5, text_x);
        self.y = top - side - 3.5;
        // Centred under the code, but never left of the margin (the number is wider).
        let label = &rc.ksef_number;
        let label_size = 6.5;
        let cx = x + side / 2.0;
        self.text(
            label,
            label_size,
            (cx - text_width_mm(label, label_size) / 2.0).max(LEFT),
        );
        Ok(())
    }

    /// Draws `url` as a QR code whose top-left corner (quiet zone excluded) is at
    /// (`x`, `y_top`): one filled rectangle per run of dark modules in a row, so the
    /// code is vector, sharp at any zoom and printer. Returns its side, mm.
    fn qr(&self, url: &str, x: f32, y_top: f32) -> Result<f32, BillingError> {
        let code =
            qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).map_err(|e| {
                BillingError::InvalidData(format!("the KSeF QR code cannot hold {url}: {e}"))
            })?;
        let n = code.width();
        let dark: Vec<bool> = code
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        self.layer.set_fill_color(black());
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if !dark[row * n + col] {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < n && dark[row * n + col] {
                    col += 1;
                }
                let x0 = x + start as f32 * QR_MODULE_MM;
                let x1 = x + col as f32 * QR_MODULE_MM;
                let y1 = y_top - row as f32 * QR_MODULE_MM;
                let y0 = y1 - QR_MODULE_MM;
                self.layer
                    .add_rect(Rect::new(Mm(x0), Mm(y0), Mm(x1), Mm(y1)).with_mode(PaintMode::Fill));
            }
        }
        Ok(n as f32 * QR_MODULE_MM)
    }
}

/// Splits text into lines of at most `max` characters at spaces.
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn money(d: Decimal, c: Currency) -> String {
    format!("{} {}", format_pl(d), c)
}

/// Unconfirmed events printed one per line; the rest are counted (the stored invoice
/// keeps them all).
const UNCONFIRMED_SHOWN: usize = 20;

/// The mark of a PDF made before KSeF accepted the XML: without a KSeF number it is a
/// preview, and a buyer must not book it as the invoice.
pub const NOT_ACCEPTED_MARK: &str =
    "TO NIE JEST FAKTURA: dokument nie został jeszcze przyjęty przez KSeF";
/// The same in English, for foreign buyers.
pub const NOT_ACCEPTED_MARK_EN: &str = "(not an invoice: not yet accepted by KSeF)";

/// Checks that the receipt belongs to this invoice's seller: a KSeF number starts with
/// the seller's NIP and has 35 characters (`docs/numer-ksef.md`).
fn check_receipt(
    inv: &IssuedInvoice,
    seller_nip: &str,
    r: &KsefReceiptForPdf,
) -> Result<(), BillingError> {
    let n = &r.ksef_number;
    if n.chars().count() != 35 || !n.starts_with(&format!("{seller_nip}-")) {
        return Err(BillingError::InvalidData(format!(
            "invoice {}: KSeF number `{n}` is not this seller's (a KSeF number is 35 characters starting with the seller NIP {seller_nip}-); \
             pass the number KSeF assigned to this invoice",
            inv.number
        )));
    }
    Ok(())
}

/// Renders an issued invoice as PDF bytes: a VAT invoice, or a correction (KOR) with the
/// corrected invoice, the reason, the changed lines before and after and the difference,
/// as its FA(3) XML states them. `ksef` is KSeF's acceptance of that XML: with it the PDF
/// prints the KSeF number and the KOD I QR code; without it the PDF is marked as not an
/// invoice ([`NOT_ACCEPTED_MARK`]).
pub fn render(
    inv: &IssuedInvoice,
    font_ttf: &[u8],
    ksef: Option<&KsefReceiptForPdf>,
) -> Result<Vec<u8>, BillingError> {
    let seller_nip = normalise_nip(&inv.seller.nip)
        .map_err(|e| BillingError::InvalidData(format!("invoice {}: seller {e}", inv.number)))?;
    if let Some(r) = ksef {
        check_receipt(inv, &seller_nip, r)?;
    }
    let correction = match (inv.kind, &inv.correction) {
        (InvoiceKind::Kor, Some(k)) => Some(k),
        (InvoiceKind::Kor, None) => {
            return Err(BillingError::InvalidData(format!(
                "correction {} has no corrected invoice recorded; it cannot be rendered",
                inv.number
            )))
        }
        (InvoiceKind::Vat, _) => None,
    };
    let title = match correction {
        Some(_) => format!("Faktura korygująca nr {}", inv.number),
        None => format!("Faktura VAT nr {}", inv.number),
    };
    let mut w = Writer::begin(&title, font_ttf, ksef)?;
    match correction {
        None => vat_body(&mut w, inv, &seller_nip),
        Some(k) => correction_body(&mut w, inv, k, &seller_nip),
    }
    if let Some(rc) = ksef {
        w.kod_i(rc, &seller_nip, inv.issue_date)?;
    }
    w.doc.save_to_bytes().map_err(|e| BillingError::Export {
        path: format!("{}.pdf", inv.file_stem()).into(),
        detail: format!("PDF rendering failed: {e}"),
    })
}

fn vat_body(w: &mut Writer, inv: &IssuedInvoice, seller_nip: &str) {
    let s = &inv.statement;
    let a = &s.amounts;
    let ccy = a.currency;
    w.text(
        &format!(
            "Data wystawienia: {}    Okres rozliczeniowy: {}",
            inv.issue_date,
            period(s)
        ),
        9.0,
        LEFT,
    );
    w.down(5.0);
    w.text(
        &format!(
            "Data wykonania usługi: {}    Termin płatności: {}",
            s.month.last_day(),
            inv.due_date
        ),
        9.0,
        LEFT,
    );
    w.down(10.0);
    parties(w, inv, seller_nip);

    let rows: Vec<TableRow> = s
        .lines
        .iter()
        .map(|l| TableRow {
            no: l.no,
            state: None,
            description: &l.description,
            net: l.net,
        })
        .collect();
    line_table(w, s, &rows);

    let mut totals: Vec<(String, String)> = vec![("Łącznie netto".into(), money(a.net, ccy))];
    totals.push((vat_label(s.vat), money(a.vat, ccy)));
    totals.push(("Wartość brutto ogółem".into(), money(a.gross, ccy)));
    if ccy != Currency::Pln {
        totals.push((
            "Wartość netto w PLN".into(),
            money(a.net_pln, Currency::Pln),
        ));
        totals.push((
            "Kwota VAT w PLN (art. 106e ust. 11)".into(),
            money(a.vat_pln, Currency::Pln),
        ));
    }
    for (label, value) in &totals {
        w.right(label, 10.0, 150.0);
        w.right(value, 10.0, RIGHT);
        w.down(5.5);
    }
    w.down(2.0);
    w.text(
        &format!("Należność do zapłaty: {}", money(a.gross, ccy)),
        12.0,
        LEFT,
    );
    w.down(9.0);
    rate_notes(w, s);
    unconfirmed(w, s);
    w.down(3.0);
    payment(w, inv);
}

/// A correction as its FA(3) states it: `DaneFaKorygowanej`, `PrzyczynaKorekty`,
/// `TypKorekty`, the changed lines before (`StanPrzed`) and after under one number, the
/// differences in the amounts (negative for a decrease, which is paid back), the
/// original's period and rate.
fn correction_body(w: &mut Writer, inv: &IssuedInvoice, k: &Correction, seller_nip: &str) {
    let s = &inv.statement;
    let before = &k.before.amounts;
    let after = &s.amounts;
    let diff = difference(before, after);
    let ccy = after.currency;
    w.text(&format!("Data wystawienia: {}", inv.issue_date), 9.0, LEFT);
    w.down(5.0);
    w.text(
        &format!("Okres rozliczeniowy faktury korygowanej: {}", period(s)),
        9.0,
        LEFT,
    );
    w.down(7.0);
    let c = &k.corrected;
    w.text(
        &format!(
            "Faktura korygowana: nr {} z dnia {}",
            c.number, c.issue_date
        ),
        10.0,
        LEFT,
    );
    w.down(5.0);
    match &c.ksef_number {
        Some(n) => w.text(&format!("Numer KSeF faktury korygowanej: {n}"), 9.0, LEFT),
        None => w.text(
            "Faktura korygowana wystawiona poza KSeF (przed obowiązkiem KSeF)",
            9.0,
            LEFT,
        ),
    }
    w.down(5.0);
    if !k.earlier_corrections.is_empty() {
        w.text(
            &format!(
                "Stan przed korektą: faktura {} po korektach {}",
                c.number,
                k.earlier_corrections.join(", ")
            ),
            9.0,
            LEFT,
        );
        w.down(5.0);
    }
    let reason = wrap(&format!("Przyczyna korekty: {}", correction_reason(k)), 100);
    for line in &reason {
        w.text(line, 9.0, LEFT);
        w.down(4.5);
    }
    w.text(
        &format!(
            "Typ korekty: {} — {}",
            k.effect.code(),
            effect_text(k.effect)
        ),
        9.0,
        LEFT,
    );
    w.down(10.0);
    parties(w, inv, seller_nip);

    // The rows the XML has: before (StanPrzed) and after of each changed line; a line
    // that is gone bills 0 after the correction.
    let mut rows = Vec::new();
    for ch in line_changes(&k.before, s) {
        if let Some(b) = ch.before {
            rows.push(TableRow {
                no: ch.no,
                state: Some(STATE_BEFORE),
                description: &b.description,
                net: b.net,
            });
        }
        match (ch.after, ch.before) {
            (Some(a), _) => rows.push(TableRow {
                no: ch.no,
                state: Some(STATE_AFTER),
                description: &a.description,
                net: a.net,
            }),
            (None, Some(b)) => rows.push(TableRow {
                no: ch.no,
                state: Some(STATE_AFTER),
                description: &b.description,
                net: Decimal::ZERO,
            }),
            (None, None) => {}
        }
    }
    line_table(w, s, &rows);

    // Before, after and the difference; the difference is what the XML's P_13/P_14/P_15
    // carry.
    const R_BEFORE: f32 = 125.0;
    const R_AFTER: f32 = 160.0;
    w.right("Przed korektą", 8.5, R_BEFORE);
    w.right("Po korekcie", 8.5, R_AFTER);
    w.right("Różnica", 8.5, RIGHT);
    w.down(5.0);
    let mut totals = vec![
        (
            "Wartość netto".to_string(),
            before.net,
            after.net,
            diff.net,
            ccy,
        ),
        (vat_label(s.vat), before.vat, after.vat, diff.vat, ccy),
        (
            "Wartość brutto".to_string(),
            before.gross,
            after.gross,
            diff.gross,
            ccy,
        ),
    ];
    if ccy != Currency::Pln {
        totals.push((
            "Kwota VAT w PLN".to_string(),
            before.vat_pln,
            after.vat_pln,
            diff.vat_pln,
            Currency::Pln,
        ));
    }
    for (label, b, a, d, c) in &totals {
        w.text(label, 9.5, LEFT);
        w.right(&money(*b, *c), 9.5, R_BEFORE);
        w.right(&money(*a, *c), 9.5, R_AFTER);
        w.right(&money(*d, *c), 9.5, RIGHT);
        w.down(5.5);
    }
    w.down(2.0);
    let pays = diff.gross > Decimal::ZERO;
    let settle = if pays {
        format!("Do zapłaty: {}", money(diff.gross, ccy))
    } else if diff.gross < Decimal::ZERO {
        format!("Do zwrotu: {}", money(-diff.gross, ccy))
    } else {
        format!("Kwota należności bez zmian: {}", money(diff.gross, ccy))
    };
    w.text(&settle, 12.0, LEFT);
    w.down(9.0);
    rate_notes(w, s);
    unconfirmed(w, s);
    // A decrease carries no payment terms (the XML has no `Platnosc` then).
    if pays {
        w.down(3.0);
        payment(w, inv);
    }
}

/// Row marks of a correction's table (FA(3) `StanPrzed` = 1, and the row after).
const STATE_BEFORE: &str = "Przed korektą";
const STATE_AFTER: &str = "Po korekcie";

/// `TypKorekty` in words (the FA(3) schema's wording).
fn effect_text(e: CorrectionEffect) -> &'static str {
    match e {
        CorrectionEffect::OriginalPeriod => "skutek w dacie ujęcia faktury pierwotnej",
        CorrectionEffect::CorrectionDate => "skutek w dacie wystawienia faktury korygującej",
        CorrectionEffect::Other => "skutek w innej dacie (pozycje w różne strony)",
    }
}

fn period(s: &Statement) -> String {
    format!(
        "{} – {} ({})",
        s.month.first_day(),
        s.month.last_day(),
        month_name_pl(s.month)
    )
}

fn vat_label(vat: VatTreatment) -> String {
    match vat {
        VatTreatment::Rate(r) => format!("VAT {r}%"),
        VatTreatment::ReverseCharge => "VAT (np)".into(),
    }
}

/// Seller and buyer side by side. An EU reverse-charge invoice shows both VAT-UE
/// numbers: the seller's is its NIP with PL in front (the same case FA(3) marks with
/// PrefiksPodatnika), the buyer's with its own prefix (EL for Greece).
fn parties(w: &mut Writer, inv: &IssuedInvoice, seller_nip: &str) {
    let seller = &inv.seller;
    let buyer = &inv.buyer;
    let mut left = vec![seller.name.clone(), seller.address_line1.clone()];
    left.extend(seller.address_line2.clone());
    if needs_pl_prefix(buyer) {
        left.push(format!("NIP VAT-UE: PL{seller_nip}"));
    } else {
        left.push(format!("NIP: {seller_nip}"));
    }
    left.push(format!("Konto: {}", seller.bank_account));
    if let Some(b) = &seller.bank_name {
        left.push(b.clone());
    }
    let mut right = vec![buyer.name.clone().unwrap_or_default()];
    right.extend(buyer.address_line1.clone());
    right.extend(buyer.address_line2.clone());
    if buyer.is_domestic() {
        right.push(format!("NIP: {}", buyer.nip.clone().unwrap_or_default()));
    } else {
        right.push(format!("Kraj: {}", buyer.country.to_ascii_uppercase()));
        match vat_ue_id(buyer) {
            Ok(Some(id)) if buyer.is_eu() => right.push(format!("NIP VAT-UE: {id}")),
            _ => right.push(format!(
                "Nr identyfikacji podatkowej: {}",
                buyer.vat_id.clone().unwrap_or_default()
            )),
        }
    }
    w.text("Sprzedawca", 10.0, LEFT);
    w.text("Nabywca", 10.0, 110.0);
    w.down(5.5);
    for i in 0..left.len().max(right.len()) {
        if let Some(l) = left.get(i) {
            w.text(l, 9.0, LEFT);
        }
        if let Some(r) = right.get(i) {
            w.text(r, 9.0, 110.0);
        }
        w.down(4.5);
    }
    w.down(6.0);
}

/// One row of the lines table; `state` marks a correction's row before or after.
struct TableRow<'a> {
    no: u32,
    state: Option<&'static str>,
    description: &'a str,
    net: Decimal,
}

/// The lines, with the same unit, quantity and unit price as FA(3)'s P_8A / P_8B / P_9A.
fn line_table(w: &mut Writer, s: &Statement, rows: &[TableRow]) {
    const X_NAME: f32 = LEFT + 8.0;
    const X_UNIT: f32 = 110.0;
    const R_QTY: f32 = 130.0;
    const R_PRICE: f32 = 156.0;
    const R_RATE: f32 = 171.0;
    let ccy = s.amounts.currency;
    w.text("Lp.", 8.0, LEFT);
    w.text("Nazwa usługi", 8.0, X_NAME);
    w.text("J.m.", 8.0, X_UNIT);
    w.right("Ilość", 8.0, R_QTY);
    w.right("Cena jedn.", 8.0, R_PRICE);
    w.right("Stawka", 8.0, R_RATE);
    w.right("Wartość", 8.0, RIGHT);
    w.down(3.5);
    w.right("netto", 8.0, R_PRICE);
    w.right("VAT", 8.0, R_RATE);
    w.right(&format!("netto ({ccy})"), 8.0, RIGHT);
    w.down(2.0);
    w.rule();
    w.down(5.0);
    let rate_txt = match s.vat {
        VatTreatment::Rate(r) => format!("{r}%"),
        VatTreatment::ReverseCharge => "np".to_string(),
    };
    for l in rows {
        let mut parts = Vec::new();
        parts.extend(l.state.map(|st| format!("{st}:")));
        parts.extend(wrap(l.description, 44));
        w.keep(4.5 * parts.len() as f32);
        w.text(&format!("{}.", l.no), 9.0, LEFT);
        w.text(LINE_UNIT, 9.0, X_UNIT);
        w.right(&LINE_QUANTITY.to_string(), 9.0, R_QTY);
        w.right(&format_pl(l.net), 9.0, R_PRICE);
        w.right(&rate_txt, 9.0, R_RATE);
        w.right(&format_pl(l.net), 9.0, RIGHT);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                w.down(4.5);
            }
            w.text(p, 9.0, X_NAME);
        }
        w.down(5.5);
    }
    w.rule();
    w.down(7.0);
}

/// The NBP rate (the XML's `DodatkowyOpis` "Kurs NBP") and the notes on conversion and
/// reverse charge.
fn rate_notes(w: &mut Writer, s: &Statement) {
    let r = &s.usd_rate;
    let rate_lines = [
        format!(
            "Kurs średni NBP (tabela A): 1 {} = {} PLN, tabela nr {} z dnia {}",
            r.code,
            r.mid.to_string().replace('.', ","),
            r.table_no,
            r.effective_date
        ),
        format!(
            "Kurs z ostatniego dnia roboczego poprzedzającego dzień {} (art. 31a ustawy o VAT).",
            r.reference_date
        ),
    ];
    for l in &rate_lines {
        w.text(l, 8.5, LEFT);
        w.down(4.5);
    }
    if s.amounts.currency == Currency::Pln {
        w.text(
            "Ceny usług ustalone w USD i przeliczone na PLN po powyższym kursie.",
            8.5,
            LEFT,
        );
        w.down(4.5);
    }
    if s.vat == VatTreatment::ReverseCharge {
        w.text(
            "Odwrotne obciążenie — usługa poza terytorium kraju; podatek rozlicza nabywca.",
            8.5,
            LEFT,
        );
        w.down(4.5);
    }
}

/// Issued over the refusal: the invoice says which usage OpenRouter had not confirmed
/// and at what it is counted, never a silent $0.
fn unconfirmed(w: &mut Writer, s: &Statement) {
    if s.unconfirmed.is_empty() {
        return;
    }
    w.down(2.0);
    w.text(
        &format!(
            "Zużycie niepotwierdzone przez OpenRouter w dniu wystawienia ({} zdarzeń), ujęte według zapisu licznika:",
            s.unconfirmed.len()
        ),
        8.5,
        LEFT,
    );
    w.down(4.5);
    for e in s.unconfirmed.iter().take(UNCONFIRMED_SHOWN) {
        w.text(
            &format!(
                "{}  {}  {}  {} USD",
                e.day,
                e.generation_id,
                e.model,
                e.cost_usd.to_string().replace('.', ",")
            ),
            8.0,
            LEFT + 4.0,
        );
        w.down(4.0);
    }
    if s.unconfirmed.len() > UNCONFIRMED_SHOWN {
        w.text(
            &format!(
                "… oraz {} kolejnych (pełna lista w rejestrze faktur).",
                s.unconfirmed.len() - UNCONFIRMED_SHOWN
            ),
            8.0,
            LEFT + 4.0,
        );
        w.down(4.0);
    }
}

fn payment(w: &mut Writer, inv: &IssuedInvoice) {
    w.text(
        &format!(
            "Forma płatności: przelew na rachunek {} do dnia {}.",
            inv.seller.bank_account, inv.due_date
        ),
        8.5,
        LEFT,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_is_a_clear_error() {
        let err = load_font(Path::new("/nonexistent/font.ttf")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/font.ttf"), "{msg}");
        assert!(msg.contains("fonts-dejavu-core"), "{msg}");
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(
            wrap("aaa bbb ccc", 7),
            vec!["aaa bbb".to_string(), "ccc".to_string()]
        );
        assert_eq!(wrap("", 5), Vec::<String>::new());
    }
}
