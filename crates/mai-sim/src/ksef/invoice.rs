//! What KSeF checks in an invoice file (`docs/weryfikacja-faktury.md`), in the order a
//! user would want to hear about it: size, encoding, characters, processing
//! instructions, well-formedness, the FA(3) schema, then the few fields the later
//! checks (seller, duplicate, dates) need.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;

/// The FA(3) namespace (`schemat.xsd`'s target namespace).
pub const FA3_NAMESPACE: &str = "http://crd.gov.pl/wzor/2025/06/25/13775/";

/// Largest invoice without attachments, in bytes (`weryfikacja-faktury.md`, "Rozmiar pliku").
pub const MAX_INVOICE_BYTES: usize = 1_000_000;

/// The Ministry's FA(3) schema set, as vendored by mai-billing (its one copy in the
/// repository; `crates/mai-billing/schemas/ksef-fa3/README.md` says where it came from).
const FA3_XSD: [(&str, &str); 4] = [
    (
        "schemat.xsd",
        include_str!("../../../mai-billing/schemas/ksef-fa3/schemat.xsd"),
    ),
    (
        "StrukturyDanych_v10-0E.xsd",
        include_str!("../../../mai-billing/schemas/ksef-fa3/StrukturyDanych_v10-0E.xsd"),
    ),
    (
        "ElementarneTypyDanych_v10-0E.xsd",
        include_str!("../../../mai-billing/schemas/ksef-fa3/ElementarneTypyDanych_v10-0E.xsd"),
    ),
    (
        "KodyKrajow_v10-0E.xsd",
        include_str!("../../../mai-billing/schemas/ksef-fa3/KodyKrajow_v10-0E.xsd"),
    ),
];

/// The fields later checks need, read from a file that passed the file checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceFacts {
    /// `Podmiot1/DaneIdentyfikacyjne/NIP`.
    pub seller_nip: String,
    /// `Fa/RodzajFaktury` (VAT, KOR, ZAL, ...).
    pub kind: String,
    /// `Fa/P_2`, the seller's invoice number.
    pub number: String,
    /// `Fa/P_1`, the issue date.
    pub issue_date: NaiveDate,
}

/// Why a file fails the byte-level checks; each reason is one `details` line of status 430.
pub fn file_checks(bytes: &[u8]) -> Result<&str, Vec<String>> {
    if bytes.len() > MAX_INVOICE_BYTES {
        return Err(vec![format!(
            "Faktura ma {} bajtów; dopuszczalny rozmiar faktury bez załączników to {MAX_INVOICE_BYTES} bajtów.",
            bytes.len()
        )]);
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(vec![
            "Plik zaczyna się znakiem BOM (EF BB BF); faktura musi być w UTF-8 bez BOM.".into(),
        ]);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![format!(
            "Plik nie jest poprawnym UTF-8 (bajt {}): faktura musi być kodowana w UTF-8.",
            e.valid_up_to()
        )]
    })?;
    let mut problems = Vec::new();
    if let Some(enc) = declared_encoding(text) {
        if !enc.eq_ignore_ascii_case("utf-8") {
            problems.push(format!(
                "Prolog XML deklaruje kodowanie `{enc}`; dozwolone jest tylko UTF-8."
            ));
        }
    }
    let (mut line, mut col) = (1usize, 0usize);
    for c in text.chars() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            continue;
        }
        if is_forbidden(c) {
            problems.push(format!(
                "Niedozwolony znak U+{:04X} w wierszu {line}, kolumnie {col}.",
                c as u32
            ));
            if problems.len() >= 10 {
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(text)
    } else {
        Err(problems)
    }
}

/// C0 controls other than tab/CR/LF (not XML at all), and the ranges the docs list as
/// discouraged: U+007F-U+0084, U+0086-U+009F, U+FDD0-U+FDEF and the last two code
/// points of every plane.
fn is_forbidden(c: char) -> bool {
    let u = c as u32;
    (u < 0x20 && !matches!(u, 0x09 | 0x0A | 0x0D))
        || (0x7F..=0x84).contains(&u)
        || (0x86..=0x9F).contains(&u)
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
}

fn declared_encoding(text: &str) -> Option<&str> {
    let decl = text.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let rest = &rest[1..];
    Some(&rest[..rest.find(quote)?])
}

/// Well-formedness, no processing instructions, and the facts; errors are `details` lines.
pub fn read_facts(text: &str) -> Result<InvoiceFacts, Vec<String>> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| vec![format!("Dokument nie jest poprawnym XML 1.0: {e}.")])?;
    if let Some(pi) = doc.descendants().find(|n| n.is_pi()) {
        let pos = doc.text_pos_at(pi.range().start);
        return Err(vec![format!(
            "Faktura zawiera instrukcję przetwarzania XML (wiersz {}, kolumna {}); instrukcje przetwarzania są niedozwolone.",
            pos.row, pos.col
        )]);
    }
    let root = doc.root_element();
    if root.tag_name().name() != "Faktura" || root.tag_name().namespace() != Some(FA3_NAMESPACE) {
        return Err(vec![format!(
            "Element główny to `{}` w przestrzeni nazw `{}`; sesja FA (3) przyjmuje `Faktura` w `{FA3_NAMESPACE}`.",
            root.tag_name().name(),
            root.tag_name().namespace().unwrap_or("")
        )]);
    }
    fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }
    let path = |names: &[&str]| {
        let mut n = root;
        for name in names {
            n = child(n, name)?;
        }
        n.text().map(|t| t.trim().to_string())
    };
    let missing = |p: &str| {
        vec![format!(
            "Brak elementu {p} (wymagany do weryfikacji faktury)."
        )]
    };
    let seller_nip = path(&["Podmiot1", "DaneIdentyfikacyjne", "NIP"])
        .ok_or_else(|| missing("Podmiot1/DaneIdentyfikacyjne/NIP"))?;
    let kind = path(&["Fa", "RodzajFaktury"]).ok_or_else(|| missing("Fa/RodzajFaktury"))?;
    let number = path(&["Fa", "P_2"]).ok_or_else(|| missing("Fa/P_2"))?;
    let p1 = path(&["Fa", "P_1"]).ok_or_else(|| missing("Fa/P_1"))?;
    let issue_date = NaiveDate::parse_from_str(&p1, "%Y-%m-%d")
        .map_err(|_| vec![format!("Fa/P_1 `{p1}` nie jest datą RRRR-MM-DD.")])?;
    Ok(InvoiceFacts {
        seller_nip,
        kind,
        number,
        issue_date,
    })
}

/// Validates against the FA(3) XSD with `xmllint` (libxml2-utils): the schema files are
/// written once per content to a temporary folder, each invoice is piped on stdin.
#[derive(Debug, Clone)]
pub struct SchemaValidator {
    schema: PathBuf,
}

/// The validator could not be set up; the message names the missing piece.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error("the KSeF simulator validates invoices with `xmllint`, which is not installed or not runnable ({0}); install it (Debian: apt-get install libxml2-utils) or start the simulator without schema validation (`--no-schema-validation`, KsefConfig::validate_schema = false)")]
    NoXmllint(std::io::Error),
    #[error("cannot write the FA(3) schema files to {path}: {source}; make the temporary directory writable (TMPDIR)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SchemaValidator {
    pub fn new() -> Result<Self, ValidatorError> {
        std::process::Command::new("xmllint")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(ValidatorError::NoXmllint)?;
        let mut h = Sha256::new();
        for (name, body) in FA3_XSD {
            h.update(name.as_bytes());
            h.update(body.as_bytes());
        }
        let dir = std::env::temp_dir().join(format!(
            "mai-sim-ksef-fa3-{}",
            &hex::encode(h.finalize())[..16]
        ));
        for (name, body) in FA3_XSD {
            write_once(&dir.join(name), body.as_bytes())?;
        }
        Ok(SchemaValidator {
            schema: dir.join("schemat.xsd"),
        })
    }

    /// `Ok` when valid; otherwise xmllint's own messages, one per line, with `line N:`
    /// in front (its `-:N:` prefix names standard input).
    pub async fn validate(&self, xml: &[u8]) -> Result<(), Vec<String>> {
        let run = async {
            let mut child = tokio::process::Command::new("xmllint")
                .args(["--noout", "--nonet", "--schema"])
                .arg(&self.schema)
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let body = xml.to_vec();
            let writer = tokio::spawn(async move {
                let _ = stdin.write_all(&body).await;
            });
            let out = child.wait_with_output().await?;
            let _ = writer.await;
            Ok::<_, std::io::Error>(out)
        };
        let out = run
            .await
            .map_err(|e| vec![format!("Symulator nie mógł uruchomić xmllint: {e}.")])?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && *l != "- fails to validate")
            .map(|l| match l.strip_prefix("-:") {
                Some(rest) => format!("line {rest}"),
                None => l.to_string(),
            })
            .take(20)
            .collect();
        if lines.is_empty() {
            lines.push(format!(
                "Faktura niezgodna ze schematem FA (3) (xmllint exit {:?}).",
                out.status.code()
            ));
        }
        Err(lines)
    }
}

/// Writes `body` to `path` unless an identical file is there; atomic by rename, so
/// simulators starting in parallel never read a half-written schema.
fn write_once(path: &Path, body: &[u8]) -> Result<(), ValidatorError> {
    let err = |source| ValidatorError::Write {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read(path).is_ok_and(|b| b == body) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("xsd"),
        std::process::id()
    ));
    std::fs::write(&tmp, body).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str =
        include_str!("../../../mai-billing/schemas/ksef-fa3/examples/FA_3_Przyklad_1.xml");

    #[test]
    fn the_ministry_example_passes_and_yields_its_facts() {
        let text = file_checks(EXAMPLE.as_bytes()).unwrap();
        let f = read_facts(text).unwrap();
        assert_eq!(f.seller_nip, "9999999999");
        assert_eq!(f.kind, "VAT");
        assert_eq!(f.number, "FV2026/02/150");
        assert_eq!(f.issue_date, NaiveDate::from_ymd_opt(2026, 2, 15).unwrap());
    }

    #[test]
    fn bom_forbidden_characters_encoding_and_processing_instructions_are_named() {
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(EXAMPLE.as_bytes());
        assert!(file_checks(&bom).unwrap_err()[0].contains("BOM"));
        let bad = EXAMPLE.replace("ABC AGD", "ABC\u{85}\u{86}AGD");
        let e = file_checks(bad.as_bytes()).unwrap_err();
        assert_eq!(e.len(), 1, "U+0085 is allowed, U+0086 is not: {e:?}");
        assert!(
            e[0].contains("U+0086") && e[0].contains("wierszu 13"),
            "{e:?}"
        );
        let latin = EXAMPLE.replacen("UTF-8", "ISO-8859-2", 1);
        assert!(file_checks(latin.as_bytes()).unwrap_err()[0].contains("ISO-8859-2"));
        let pi = EXAMPLE.replacen("<Naglowek>", "<?sim x?><Naglowek>", 1);
        assert!(read_facts(&pi).unwrap_err()[0].contains("instrukcję przetwarzania"));
        let big = "x".repeat(MAX_INVOICE_BYTES + 1);
        assert!(file_checks(big.as_bytes()).unwrap_err()[0].contains("1000000"));
    }
}
