//! The receipts (UPO, `upo-v4-3.xsd`), shaped like the Ministry's examples
//! (`upo-faktura-kontekst-id-nip.xml`, `upo-sesja-kontekst-id-nip.xml`).
//!
//! Deviations, on purpose: no XAdES signature (the real receipt is signed by the
//! Ministry; the XSD has no place for one, and a simulator's signature would prove
//! nothing), and `NazwaPodmiotuPrzyjmujacego` is the schema's fixed value
//! "Ministerstwo Finansów" (the TE examples append " - środowisko testowe (TE)",
//! which their own XSD rejects), so a receipt validates against `upo-v4-3.xsd`.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::ids::warsaw_millis;

pub const UPO_NAMESPACE: &str = "http://upo.schematy.mf.gov.pl/KSeF/v4-3";

/// One `Dokument` of a receipt.
pub(crate) struct UpoDocument<'a> {
    pub seller_nip: &'a str,
    pub ksef_number: &'a str,
    pub invoice_number: &'a str,
    pub issue_date: NaiveDate,
    pub sent: DateTime<Utc>,
    pub acquired: DateTime<Utc>,
    /// Base64 SHA-256 of the invoice as sent.
    pub hash: &'a str,
    pub offline: bool,
}

/// The receipt's header: which session, which context, which token authenticated.
pub(crate) struct UpoHeader<'a> {
    pub session_reference: &'a str,
    pub context_nip: &'a str,
    /// Reference number of the KSeF token used (`NumerReferencyjnyTokenaKSeF`, the
    /// XSD's choice for token authentication).
    pub token_reference: &'a str,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn head(out: &mut String, h: &UpoHeader<'_>) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Potwierdzenie xmlns=\"{UPO_NAMESPACE}\">\n\
         \t<NazwaPodmiotuPrzyjmujacego>Ministerstwo Finansów</NazwaPodmiotuPrzyjmujacego>\n\
         \t<NumerReferencyjnySesji>{}</NumerReferencyjnySesji>\n\
         \t<Uwierzytelnienie>\n\t\t<IdKontekstu>\n\t\t\t<Nip>{}</Nip>\n\t\t</IdKontekstu>\n\
         \t\t<NumerReferencyjnyTokenaKSeF>{}</NumerReferencyjnyTokenaKSeF>\n\t</Uwierzytelnienie>\n",
        esc(h.session_reference),
        esc(h.context_nip),
        esc(h.token_reference),
    );
}

fn form(out: &mut String) {
    out.push_str(
        "\t<NazwaStrukturyLogicznej>Schemat_FA(3)_v1-0E.xsd</NazwaStrukturyLogicznej>\n\
         \t<KodFormularza>FA (3)</KodFormularza>\n",
    );
}

fn document(out: &mut String, d: &UpoDocument<'_>) {
    let _ = write!(
        out,
        "\t<Dokument>\n\t\t<NipSprzedawcy>{}</NipSprzedawcy>\n\
         \t\t<NumerKSeFDokumentu>{}</NumerKSeFDokumentu>\n\
         \t\t<NumerFaktury>{}</NumerFaktury>\n\
         \t\t<DataWystawieniaFaktury>{}</DataWystawieniaFaktury>\n\
         \t\t<DataPrzeslaniaDokumentu>{}</DataPrzeslaniaDokumentu>\n\
         \t\t<DataNadaniaNumeruKSeF>{}</DataNadaniaNumeruKSeF>\n\
         \t\t<SkrotDokumentu>{}</SkrotDokumentu>\n\
         \t\t<TrybWysylki>{}</TrybWysylki>\n\t</Dokument>\n",
        esc(d.seller_nip),
        esc(d.ksef_number),
        esc(d.invoice_number),
        d.issue_date.format("%Y-%m-%d"),
        warsaw_millis(d.sent),
        warsaw_millis(d.acquired),
        esc(d.hash),
        if d.offline { "Offline" } else { "Online" },
    );
}

/// The receipt of one invoice.
pub(crate) fn invoice_upo(h: &UpoHeader<'_>, d: &UpoDocument<'_>) -> String {
    let mut out = String::new();
    head(&mut out, h);
    form(&mut out);
    document(&mut out, d);
    out.push_str("</Potwierdzenie>\n");
    out
}

/// The session's receipt: every invoice it accepted, on one page (the schema allows
/// 10 000 documents per page, the session limit).
pub(crate) fn session_upo(h: &UpoHeader<'_>, docs: &[UpoDocument<'_>]) -> String {
    let mut out = String::new();
    head(&mut out, h);
    let _ = write!(
        out,
        "\t<OpisPotwierdzenia>\n\t\t<Strona>1</Strona>\n\t\t<LiczbaStron>1</LiczbaStron>\n\
         \t\t<ZakresDokumentowOd>1</ZakresDokumentowOd>\n\t\t<ZakresDokumentowDo>{n}</ZakresDokumentowDo>\n\
         \t\t<CalkowitaLiczbaDokumentow>{n}</CalkowitaLiczbaDokumentow>\n\t</OpisPotwierdzenia>\n",
        n = docs.len().max(1)
    );
    form(&mut out);
    for d in docs {
        document(&mut out, d);
    }
    out.push_str("</Potwierdzenie>\n");
    out
}
