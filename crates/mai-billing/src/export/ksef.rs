//! KSeF FA(3) XML of an invoice (spec §4; schema in `schemas/ksef-fa3/`), VAT or
//! correction (KOR).
//!
//! Element order follows the XSD sequences. Amounts in the invoice currency go in
//! `P_13_x`/`P_14_x`/`P_15`; for a non-PLN invoice the VAT in PLN goes in `P_14_xW` and
//! the NBP mid in each line's `KursWaluty`. The NBP table number and date are recorded in
//! `DodatkowyOpis` for the audit trail. A correction carries the differences in those
//! fields, the changed lines before (`StanPrzed` = 1) and after under one line number, the
//! original's period (`OkresFa`) and rate, and `DaneFaKorygowanej` naming the original by
//! its number, issue date and KSeF number (`NrKSeFN` for one issued before KSeF).
//!
//! The text rendered here is what the store keeps and sends: render once, at preparation.

use std::fmt::Write as _;

use mai_core::money::Currency;

use super::fixed2;
use crate::compute::{Amounts, InvoiceLine};
use crate::config::{bank_account_digits, VatTreatment};
use crate::correction::{difference, line_changes, Correction};
use crate::nip::normalise_nip;
use crate::store::{InvoiceKind, IssuedInvoice};
use crate::BillingError;

pub const NAMESPACE: &str = "http://crd.gov.pl/wzor/2025/06/25/13775/";
pub const ETD_NAMESPACE: &str =
    "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/";

/// Escapes text for XML element content.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0, and KSeF refuses a few more.
            c if crate::schema::is_forbidden(c) => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Buckets: (net element, VAT element, VAT-in-PLN element, P_12 value).
fn bucket(
    inv: &IssuedInvoice,
) -> (
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static str,
) {
    match inv.statement.vat {
        VatTreatment::Rate(23) => ("P_13_1", Some(("P_14_1", "P_14_1W")), "23"),
        VatTreatment::Rate(8) => ("P_13_2", Some(("P_14_2", "P_14_2W")), "8"),
        VatTreatment::Rate(5) => ("P_13_3", Some(("P_14_3", "P_14_3W")), "5"),
        VatTreatment::Rate(_) => ("P_13_1", Some(("P_14_1", "P_14_1W")), "23"),
        VatTreatment::ReverseCharge if inv.buyer.is_eu() => ("P_13_9", None, "np II"),
        VatTreatment::ReverseCharge => ("P_13_8", None, "np I"),
    }
}

/// Renders the FA(3) document. Fails only on data the schema cannot carry.
pub fn render(inv: &IssuedInvoice) -> Result<String, BillingError> {
    if let VatTreatment::Rate(r) = inv.statement.vat {
        if ![23, 8, 5].contains(&r) {
            return Err(BillingError::InvalidData(format!(
                "invoice {}: VAT rate {r}% has no FA(3) bucket here; use 23, 8 or 5",
                inv.number
            )));
        }
    }
    let s = &inv.statement;
    let correction = match (inv.kind, &inv.correction) {
        (InvoiceKind::Kor, Some(k)) => Some(k),
        (InvoiceKind::Kor, None) => {
            return Err(BillingError::InvalidData(format!(
                "correction {} has no corrected invoice recorded",
                inv.number
            )))
        }
        (InvoiceKind::Vat, _) => None,
    };
    // A correction states differences.
    let diff: Amounts;
    let a = match correction {
        Some(k) => {
            diff = difference(&k.before.amounts, &s.amounts);
            &diff
        }
        None => &s.amounts,
    };
    let seller_nip = normalise_nip(&inv.seller.nip)
        .map_err(|e| BillingError::InvalidData(format!("invoice {}: seller {e}", inv.number)))?;
    let mut x = String::new();
    let w = &mut x;
    // Writing to a String cannot fail.
    let _ = writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        w,
        r#"<Faktura xmlns="{NAMESPACE}" xmlns:etd="{ETD_NAMESPACE}">"#
    );
    let _ = writeln!(w, "  <Naglowek>");
    let _ = writeln!(
        w,
        r#"    <KodFormularza kodSystemowy="FA (3)" wersjaSchemy="1-0E">FA</KodFormularza>"#
    );
    let _ = writeln!(w, "    <WariantFormularza>3</WariantFormularza>");
    let _ = writeln!(
        w,
        "    <DataWytworzeniaFa>{}</DataWytworzeniaFa>",
        inv.created_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let _ = writeln!(
        w,
        "    <SystemInfo>mAI Fleet {}</SystemInfo>",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(w, "  </Naglowek>");

    // Seller
    let _ = writeln!(w, "  <Podmiot1>");
    if crate::validate::needs_pl_prefix(&inv.buyer) {
        let _ = writeln!(w, "    <PrefiksPodatnika>PL</PrefiksPodatnika>");
    }
    let _ = writeln!(w, "    <DaneIdentyfikacyjne>");
    let _ = writeln!(w, "      <NIP>{seller_nip}</NIP>");
    let _ = writeln!(w, "      <Nazwa>{}</Nazwa>", esc(&inv.seller.name));
    let _ = writeln!(w, "    </DaneIdentyfikacyjne>");
    write_address(
        w,
        &inv.seller.country,
        &inv.seller.address_line1,
        inv.seller.address_line2.as_deref(),
    );
    if let Some(email) = inv.seller.email.as_deref().filter(|e| e.contains('@')) {
        let _ = writeln!(
            w,
            "    <DaneKontaktowe><Email>{}</Email></DaneKontaktowe>",
            esc(email)
        );
    }
    let _ = writeln!(w, "  </Podmiot1>");

    // Buyer
    let b = &inv.buyer;
    let _ = writeln!(w, "  <Podmiot2>");
    let _ = writeln!(w, "    <DaneIdentyfikacyjne>");
    if b.is_domestic() {
        let nip = normalise_nip(b.nip.as_deref().unwrap_or_default())
            .map_err(|e| BillingError::InvalidData(format!("invoice {}: buyer {e}", inv.number)))?;
        let _ = writeln!(w, "      <NIP>{nip}</NIP>");
    } else {
        let country = b.country.to_ascii_uppercase();
        let id = b.vat_id.clone().unwrap_or_default();
        let id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
        if b.is_eu() {
            // KodUE is the VAT prefix (EL for Greece, whose country code is GR).
            let (prefix, id) = match crate::validate::vat_ue_id(b) {
                Ok(Some(v)) => (v.prefix.to_string(), v.number),
                _ => (
                    country.clone(),
                    id.strip_prefix(&country).unwrap_or(&id).to_string(),
                ),
            };
            let _ = writeln!(w, "      <KodUE>{}</KodUE>", esc(&prefix));
            let _ = writeln!(w, "      <NrVatUE>{}</NrVatUE>", esc(&id));
        } else {
            let _ = writeln!(w, "      <KodKraju>{}</KodKraju>", esc(&country));
            let _ = writeln!(w, "      <NrID>{}</NrID>", esc(&id));
        }
    }
    let _ = writeln!(
        w,
        "      <Nazwa>{}</Nazwa>",
        esc(b.name.as_deref().unwrap_or_default())
    );
    let _ = writeln!(w, "    </DaneIdentyfikacyjne>");
    write_address(
        w,
        &b.country,
        b.address_line1.as_deref().unwrap_or_default(),
        b.address_line2.as_deref(),
    );
    if let Some(email) = b.email.as_deref().filter(|e| e.contains('@')) {
        let _ = writeln!(
            w,
            "    <DaneKontaktowe><Email>{}</Email></DaneKontaktowe>",
            esc(email)
        );
    }
    let _ = writeln!(w, "    <NrKlienta>{}</NrKlienta>", esc(&b.org_id));
    let _ = writeln!(w, "    <JST>2</JST>");
    let _ = writeln!(w, "    <GV>2</GV>");
    let _ = writeln!(w, "  </Podmiot2>");

    // Invoice body
    let foreign = a.currency != Currency::Pln;
    let (net_el, vat_els, p12) = bucket(inv);
    let _ = writeln!(w, "  <Fa>");
    let _ = writeln!(w, "    <KodWaluty>{}</KodWaluty>", a.currency);
    let _ = writeln!(w, "    <P_1>{}</P_1>", inv.issue_date);
    let _ = writeln!(w, "    <P_2>{}</P_2>", esc(&inv.number));
    let _ = writeln!(
        w,
        "    <OkresFa><P_6_Od>{}</P_6_Od><P_6_Do>{}</P_6_Do></OkresFa>",
        s.month.first_day(),
        s.month.last_day()
    );
    let _ = writeln!(w, "    <{net_el}>{}</{net_el}>", fixed2(a.net));
    if let Some((vat_el, vat_w_el)) = vat_els {
        let _ = writeln!(w, "    <{vat_el}>{}</{vat_el}>", fixed2(a.vat));
        if foreign {
            let _ = writeln!(w, "    <{vat_w_el}>{}</{vat_w_el}>", fixed2(a.vat_pln));
        }
    }
    let _ = writeln!(w, "    <P_15>{}</P_15>", fixed2(a.gross));
    let reverse = matches!(s.vat, VatTreatment::ReverseCharge);
    let _ = writeln!(w, "    <Adnotacje>");
    let _ = writeln!(w, "      <P_16>2</P_16>");
    let _ = writeln!(w, "      <P_17>2</P_17>");
    let _ = writeln!(w, "      <P_18>{}</P_18>", if reverse { 1 } else { 2 });
    let _ = writeln!(w, "      <P_18A>2</P_18A>");
    let _ = writeln!(w, "      <Zwolnienie><P_19N>1</P_19N></Zwolnienie>");
    let _ = writeln!(
        w,
        "      <NoweSrodkiTransportu><P_22N>1</P_22N></NoweSrodkiTransportu>"
    );
    let _ = writeln!(w, "      <P_23>2</P_23>");
    let _ = writeln!(w, "      <PMarzy><P_PMarzyN>1</P_PMarzyN></PMarzy>");
    let _ = writeln!(w, "    </Adnotacje>");
    let _ = writeln!(w, "    <RodzajFaktury>{}</RodzajFaktury>", inv.kind);
    if let Some(k) = correction {
        let _ = writeln!(
            w,
            "    <PrzyczynaKorekty>{}</PrzyczynaKorekty>",
            esc(&correction_reason(k))
        );
        let _ = writeln!(w, "    <TypKorekty>{}</TypKorekty>", k.effect.code());
        let _ = writeln!(w, "    <DaneFaKorygowanej>");
        let _ = writeln!(
            w,
            "      <DataWystFaKorygowanej>{}</DataWystFaKorygowanej>",
            k.corrected.issue_date
        );
        let _ = writeln!(
            w,
            "      <NrFaKorygowanej>{}</NrFaKorygowanej>",
            esc(&k.corrected.number)
        );
        match &k.corrected.ksef_number {
            Some(n) => {
                let _ = writeln!(w, "      <NrKSeF>1</NrKSeF>");
                let _ = writeln!(
                    w,
                    "      <NrKSeFFaKorygowanej>{}</NrKSeFFaKorygowanej>",
                    esc(n)
                );
            }
            None => {
                let _ = writeln!(w, "      <NrKSeFN>1</NrKSeFN>");
            }
        }
        let _ = writeln!(w, "    </DaneFaKorygowanej>");
    }
    let r = &s.usd_rate;
    let _ = writeln!(
        w,
        "    <DodatkowyOpis><Klucz>Kurs NBP</Klucz><Wartosc>{}</Wartosc></DodatkowyOpis>",
        esc(&format!(
            "1 {} = {} PLN, tabela A nr {} z dnia {} (ostatni dzień roboczy przed {})",
            r.code, r.mid, r.table_no, r.effective_date, r.reference_date
        ))
    );
    if !foreign {
        let _ = writeln!(
            w,
            "    <DodatkowyOpis><Klucz>Przeliczenie</Klucz><Wartosc>{}</Wartosc></DodatkowyOpis>",
            esc(&format!(
                "Ceny przeliczone z USD po kursie średnim NBP {} z dnia {}",
                r.table_no, r.effective_date
            ))
        );
    }
    if let Some(k) = correction {
        if !k.earlier_corrections.is_empty() {
            let _ = writeln!(
                w,
                "    <DodatkowyOpis><Klucz>Stan przed korektą</Klucz><Wartosc>{}</Wartosc></DodatkowyOpis>",
                esc(&truncate(
                    &format!(
                        "faktura {} po korektach {}",
                        k.corrected.number,
                        k.earlier_corrections.join(", ")
                    ),
                    256
                ))
            );
        }
    }
    let line =
        |w: &mut String, no: u32, l: &InvoiceLine, net: rust_decimal::Decimal, before: bool| {
            let _ = writeln!(w, "    <FaWiersz>");
            let _ = writeln!(w, "      <NrWierszaFa>{no}</NrWierszaFa>");
            let _ = writeln!(
                w,
                "      <P_7>{}</P_7>",
                esc(&truncate(&l.description, 512))
            );
            let _ = writeln!(w, "      <P_8A>{}</P_8A>", super::LINE_UNIT);
            let _ = writeln!(w, "      <P_8B>{}</P_8B>", super::LINE_QUANTITY);
            let _ = writeln!(w, "      <P_9A>{}</P_9A>", fixed2(net));
            let _ = writeln!(w, "      <P_11>{}</P_11>", fixed2(net));
            let _ = writeln!(w, "      <P_12>{p12}</P_12>");
            if foreign {
                let _ = writeln!(w, "      <KursWaluty>{}</KursWaluty>", r.mid);
            }
            if before {
                let _ = writeln!(w, "      <StanPrzed>1</StanPrzed>");
            }
            let _ = writeln!(w, "    </FaWiersz>");
        };
    match correction {
        None => {
            for l in &s.lines {
                line(w, l.no, l, l.net, false);
            }
        }
        Some(k) => {
            for c in line_changes(&k.before, s) {
                if let Some(b) = c.before {
                    line(w, c.no, b, b.net, true);
                }
                match (c.after, c.before) {
                    (Some(a), _) => line(w, c.no, a, a.net, false),
                    // A line that is gone: after the correction it bills nothing.
                    (None, Some(b)) => line(w, c.no, b, rust_decimal::Decimal::ZERO, false),
                    (None, None) => {}
                }
            }
        }
    }
    // A decrease is paid back, not asked for.
    if correction.is_some() && a.gross <= rust_decimal::Decimal::ZERO {
        let _ = writeln!(w, "  </Fa>");
        let _ = writeln!(w, "</Faktura>");
        return Ok(x);
    }
    let _ = writeln!(w, "    <Platnosc>");
    let _ = writeln!(
        w,
        "      <TerminPlatnosci><Termin>{}</Termin></TerminPlatnosci>",
        inv.due_date
    );
    let _ = writeln!(w, "      <FormaPlatnosci>6</FormaPlatnosci>");
    let _ = writeln!(w, "      <RachunekBankowy>");
    let _ = writeln!(
        w,
        "        <NrRB>{}</NrRB>",
        esc(&bank_account_digits(&inv.seller.bank_account))
    );
    if let Some(bank) = inv
        .seller
        .bank_name
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let _ = writeln!(w, "        <NazwaBanku>{}</NazwaBanku>", esc(bank));
    }
    let _ = writeln!(w, "      </RachunekBankowy>");
    let _ = writeln!(w, "    </Platnosc>");
    let _ = writeln!(w, "  </Fa>");
    let _ = writeln!(w, "</Faktura>");
    Ok(x)
}

fn write_address(w: &mut String, country: &str, line1: &str, line2: Option<&str>) {
    let _ = writeln!(w, "    <Adres>");
    let _ = writeln!(
        w,
        "      <KodKraju>{}</KodKraju>",
        esc(&country.to_ascii_uppercase())
    );
    let _ = writeln!(w, "      <AdresL1>{}</AdresL1>", esc(line1));
    if let Some(l2) = line2.filter(|s| !s.trim().is_empty()) {
        let _ = writeln!(w, "      <AdresL2>{}</AdresL2>", esc(l2));
    }
    let _ = writeln!(w, "    </Adres>");
}

/// `PrzyczynaKorekty` as the XML carries it (the schema allows 256 characters), so the
/// PDF prints the same text KSeF holds.
pub(crate) fn correction_reason(k: &Correction) -> String {
    truncate(&k.reason, 256)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
