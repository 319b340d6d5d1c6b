//! PDF invoice (printpdf, one embedded TTF font with Polish glyphs).
//!
//! The font is read at run time (default: Debian's DejaVuSans from fonts-dejavu-core)
//! rather than vendored, to keep the repository small; a missing font is a clear error.
//! printpdf writes a ToUnicode map, so `pdftotext` gets the Polish letters back.

use std::path::Path;

use mai_core::money::Currency;
use printpdf::{IndirectFontRef, Line, Mm, PdfDocument, PdfLayerReference, Point};
use rust_decimal::Decimal;

use super::format_pl;
use crate::compute::month_name_pl;
use crate::config::VatTreatment;
use crate::store::IssuedInvoice;
use crate::BillingError;

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const LEFT: f32 = 15.0;
const RIGHT: f32 = 195.0;
const BOTTOM: f32 = 20.0;

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
    fn down(&mut self, mm: f32) {
        self.y -= mm;
        if self.y < BOTTOM {
            self.pages += 1;
            let (p, l) =
                self.doc
                    .add_page(Mm(PAGE_W), Mm(PAGE_H), format!("Strona {}", self.pages));
            self.layer = self.doc.get_page(p).get_layer(l);
            self.y = PAGE_H - 20.0;
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

/// Renders an issued invoice as PDF bytes.
/// Unconfirmed events printed one per line; the rest are counted (the stored invoice
/// keeps them all).
const UNCONFIRMED_SHOWN: usize = 20;

pub fn render(inv: &IssuedInvoice, font_ttf: &[u8]) -> Result<Vec<u8>, BillingError> {
    let s = &inv.statement;
    let a = &s.amounts;
    let ccy = a.currency;
    let title = format!("Faktura VAT nr {}", inv.number);
    let (doc, page, layer) = PdfDocument::new(&title, Mm(PAGE_W), Mm(PAGE_H), "Strona 1");
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

    w.text(&title, 16.0, LEFT);
    w.down(8.0);
    w.text(
        &format!(
            "Data wystawienia: {}    Okres rozliczeniowy: {} – {} ({})",
            inv.issue_date,
            s.month.first_day(),
            s.month.last_day(),
            month_name_pl(s.month)
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

    // Parties, side by side.
    let seller = &inv.seller;
    let buyer = &inv.buyer;
    let mut left = vec![seller.name.clone(), seller.address_line1.clone()];
    left.extend(seller.address_line2.clone());
    left.push(format!("NIP: {}", seller.nip));
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
        right.push(format!(
            "Kraj: {}    VAT ID: {}",
            buyer.country,
            buyer.vat_id.clone().unwrap_or_default()
        ));
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

    // Lines.
    w.text("Lp.", 9.0, LEFT);
    w.text("Nazwa usługi", 9.0, LEFT + 10.0);
    w.right("Stawka", 9.0, 150.0);
    w.right(&format!("Wartość netto ({ccy})"), 9.0, RIGHT);
    w.down(2.0);
    w.rule();
    w.down(5.0);
    let rate_txt = match s.vat {
        VatTreatment::Rate(r) => format!("{r}%"),
        VatTreatment::ReverseCharge => "np".to_string(),
    };
    for l in &s.lines {
        w.text(&format!("{}.", l.no), 9.0, LEFT);
        let parts = wrap(&l.description, 58);
        w.right(&rate_txt, 9.0, 150.0);
        w.right(&format_pl(l.net), 9.0, RIGHT);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                w.down(4.5);
            }
            w.text(p, 9.0, LEFT + 10.0);
        }
        w.down(5.5);
    }
    w.rule();
    w.down(7.0);

    // Totals.
    let mut totals: Vec<(String, String)> = vec![("Łącznie netto".into(), money(a.net, ccy))];
    match s.vat {
        VatTreatment::Rate(r) => totals.push((format!("VAT {r}%"), money(a.vat, ccy))),
        VatTreatment::ReverseCharge => totals.push(("VAT (np)".into(), money(a.vat, ccy))),
    }
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
    if ccy == Currency::Pln {
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
    if !s.unconfirmed.is_empty() {
        // Issued over the refusal: the invoice says which usage OpenRouter had not
        // confirmed and at what it is counted, never a silent $0.
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
    w.down(3.0);
    w.text(
        &format!(
            "Forma płatności: przelew na rachunek {} do dnia {}.",
            seller.bank_account, inv.due_date
        ),
        8.5,
        LEFT,
    );

    w.doc.save_to_bytes().map_err(|e| BillingError::Export {
        path: format!("{}.pdf", inv.file_stem()).into(),
        detail: format!("PDF rendering failed: {e}"),
    })
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
