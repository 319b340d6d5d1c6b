//! The FA(3) schema check at run time: an invoice's XML is validated, with the number it
//! would get, before the number is reserved (`BillingStore::prepare`), so KSeF's schema
//! verdict (status 430) is known before anything is sent or numbered.
//!
//! The official XSD files (vendored in `schemas/ksef-fa3/`) are compiled into the binary
//! and written to a cache folder on first use (`$XDG_CACHE_HOME` or `~/.cache`,
//! `mai-fleet/ksef-fa3-<hash>/`): libxml2 resolves the schema's relative `xsd:import` and
//! `xsd:include` against files, and a clean install must not depend on a source checkout.
//! The files are compared with the embedded bytes on every start, so a changed copy is
//! replaced, never trusted. Nothing is fetched from the network (`schemaLocation`s are
//! relative, documents are parsed with `NONET`).
//!
//! Besides the schema, the file-level checks KSeF makes before it (UTF-8 without BOM, no
//! forbidden characters, at most 1,000,000 bytes) are done here too.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use serde::{Deserialize, Serialize};

use crate::BillingError;

/// The vendored FA(3) schema, root first (see `schemas/ksef-fa3/README.md`).
const FILES: [(&str, &[u8]); 4] = [
    (
        "schemat.xsd",
        include_bytes!("../schemas/ksef-fa3/schemat.xsd"),
    ),
    (
        "StrukturyDanych_v10-0E.xsd",
        include_bytes!("../schemas/ksef-fa3/StrukturyDanych_v10-0E.xsd"),
    ),
    (
        "ElementarneTypyDanych_v10-0E.xsd",
        include_bytes!("../schemas/ksef-fa3/ElementarneTypyDanych_v10-0E.xsd"),
    ),
    (
        "KodyKrajow_v10-0E.xsd",
        include_bytes!("../schemas/ksef-fa3/KodyKrajow_v10-0E.xsd"),
    ),
];

/// KSeF refuses invoice files larger than this (docs: weryfikacja-faktury).
pub const MAX_INVOICE_BYTES: usize = 1_000_000;

/// One complaint about an invoice's XML, located and explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaIssue {
    /// Line in the XML (our renderer writes one element per line).
    pub line: Option<u32>,
    /// The element the validator names, with its enclosing elements (`Podmiot2/Nazwa`).
    pub element: Option<String>,
    /// The validator's words.
    pub message: String,
    /// Which setting to change, where.
    pub fix: String,
}

impl std::fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.line, &self.element) {
            (Some(l), Some(e)) => write!(f, "line {l}, {e}: ")?,
            (Some(l), None) => write!(f, "line {l}: ")?,
            (None, Some(e)) => write!(f, "{e}: ")?,
            (None, None) => {}
        }
        write!(f, "{} — fix: {}", self.message.trim(), self.fix)
    }
}

/// Where the schema files are written: the user's cache, named by the content's hash so
/// two versions of the program never share a folder.
fn schema_dir() -> PathBuf {
    let mut all = Vec::new();
    for (name, bytes) in FILES {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(bytes);
    }
    let hash = crate::store::sha256_hex(&all);
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("mai-fleet")
        .join(format!("ksef-fa3-{}", &hash[..16]))
}

/// Writes the schema files unless an identical copy is there; returns the root's path.
fn install(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|have| have == bytes) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir.join(FILES[0].0))
}

fn root_schema() -> Result<&'static Path, BillingError> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| install(&schema_dir()))
        .as_deref()
        .map_err(|e| {
            BillingError::InvalidData(format!(
                "the FA(3) schema could not be prepared for validation: {e}; set XDG_CACHE_HOME to a writable folder"
            ))
        })
}

/// libxml2's schema code is documented as untested with threads: one validation at a
/// time in this process (each takes milliseconds).
static LIBXML: Mutex<()> = Mutex::new(());

thread_local! {
    /// The compiled schema, per thread (libxml2's contexts cannot move between threads).
    static VALIDATOR: RefCell<Option<SchemaValidationContext>> = const { RefCell::new(None) };
}

/// Checks an invoice's XML as KSeF would before its business rules: file rules, then the
/// FA(3) schema. `Ok(vec![])` means valid; `Err` only when the check itself cannot run.
pub fn validate(xml: &[u8]) -> Result<Vec<SchemaIssue>, BillingError> {
    let mut issues = file_issues(xml);
    if !issues.is_empty() {
        return Ok(issues);
    }
    let root = root_schema()?;
    let _guard = LIBXML.lock().unwrap_or_else(|p| p.into_inner());
    let parsed = Parser::default().parse_string_with_diagnostics(
        xml,
        ParserOptions {
            recover: false,
            no_net: true,
            ..ParserOptions::default()
        },
    );
    let doc = match parsed {
        Ok((doc, _)) => doc,
        Err(e) => {
            issues.push(SchemaIssue {
                line: None,
                element: None,
                message: format!("not well-formed XML: {e:?}"),
                fix: RENDER_DEFECT.into(),
            });
            return Ok(issues);
        }
    };
    VALIDATOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let root_s = root.to_str().ok_or_else(|| {
                BillingError::InvalidData(format!(
                    "the FA(3) schema path {} is not UTF-8; set XDG_CACHE_HOME to a plain folder",
                    root.display()
                ))
            })?;
            let mut parser = SchemaParserContext::from_file(root_s);
            let ctx = SchemaValidationContext::from_parser(&mut parser).map_err(|errs| {
                BillingError::InvalidData(format!(
                    "the FA(3) schema in {} does not compile: {}",
                    root.display(),
                    errs.iter()
                        .filter_map(|e| e.message.as_deref())
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
            *slot = Some(ctx);
        }
        let ctx = slot.as_mut().expect("set above");
        if let Err(errs) = ctx.validate_document(&doc) {
            let text = String::from_utf8_lossy(xml);
            for e in errs {
                let line = e.line.and_then(|l| u32::try_from(l).ok());
                let (element, path) = line
                    .map(|l| element_at(&text, l))
                    .unwrap_or((None, Vec::new()));
                let fix = fix_for(&path, element.as_deref().unwrap_or_default());
                let mut shown = path.clone();
                if let Some(el) = &element {
                    shown.push(el.clone());
                }
                issues.push(SchemaIssue {
                    line,
                    element: (!shown.is_empty()).then(|| shown.join("/")),
                    message: e
                        .message
                        .unwrap_or_else(|| "rejected by the FA(3) schema".into())
                        .replace(crate::export::ksef::NAMESPACE, "")
                        .replace("{}", ""),
                    fix,
                });
            }
        }
        Ok(issues)
    })
}

const RENDER_DEFECT: &str =
    "this is a defect of mAI Fleet's FA(3) rendering, not of your data: report it with this message";

/// The element starting on `line` and the elements enclosing it (outermost first,
/// without the root), from a plain scan of the tags before it.
fn element_at(text: &str, line: u32) -> (Option<String>, Vec<String>) {
    let mut stack: Vec<String> = Vec::new();
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let el = l
                .trim_start()
                .strip_prefix('<')
                .filter(|r| !r.starts_with('/'))
                .map(|r| {
                    r.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|s| !s.is_empty());
            let path = stack.iter().skip(1).cloned().collect();
            return (el, path);
        }
        scan_tags(l, &mut stack);
    }
    (None, Vec::new())
}

fn scan_tags(s: &str, stack: &mut Vec<String>) {
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        if tag.starts_with('?') || tag.starts_with('!') {
        } else if let Some(name) = tag.strip_prefix('/') {
            if stack.last().map(String::as_str) == Some(name.trim()) {
                stack.pop();
            }
        } else if !tag.ends_with('/') {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            stack.push(name);
        }
        rest = &rest[end.min(rest.len())..];
    }
}

/// Where the data of an FA(3) element comes from, i.e. what to change.
fn fix_for(path: &[String], element: &str) -> String {
    let within = |s: &str| path.iter().any(|p| p == s);
    if within("Podmiot1") {
        let field = match element {
            "NIP" => "nip",
            "Nazwa" => "name",
            "KodKraju" => "country",
            "AdresL1" => "address_line1",
            "AdresL2" => "address_line2",
            "Email" => "email",
            _ => return RENDER_DEFECT.into(),
        };
        return format!("`{field}` in the [seller] section of the billing file");
    }
    if within("Podmiot2") {
        let field = match element {
            "NIP" => "nip",
            "KodUE" | "KodKraju" => "country",
            "NrVatUE" | "NrID" => "vat_id",
            "Nazwa" => "legal_name",
            "AdresL1" => "address",
            "AdresL2" => "address_line2",
            "Email" => "invoice_email",
            "NrKlienta" => "id",
            _ => return RENDER_DEFECT.into(),
        };
        return format!("`{field}` in the client's [[clients]] entry of the fleet file");
    }
    match element {
        "NrRB" => "`bank_account` in the [seller] section of the billing file".into(),
        "NazwaBanku" => "`bank_name` in the [seller] section of the billing file".into(),
        "KodWaluty" => "`invoice_currency` in the client's [[clients]] entry of the fleet file".into(),
        "P_7" => "line descriptions carry the model names of the usage ledger: set `invoice_lines = \"summary\"` \
                  in the client's [[clients]] entry of the fleet file"
            .into(),
        "P_2" | "NrFaKorygowanej" => {
            "`invoice_number_format` / `correction_number_format` in the billing file (at most 256 characters)".into()
        }
        _ => RENDER_DEFECT.into(),
    }
}

/// What KSeF checks on the file itself: UTF-8 without BOM, no characters it forbids (C0
/// controls other than tab/CR/LF, U+007F–U+0084, U+0086–U+009F, non-characters), size.
pub fn file_issues(xml: &[u8]) -> Vec<SchemaIssue> {
    let mut out = Vec::new();
    if xml.len() > MAX_INVOICE_BYTES {
        out.push(SchemaIssue {
            line: None,
            element: None,
            message: format!(
                "the invoice is {} bytes; KSeF accepts at most {MAX_INVOICE_BYTES}",
                xml.len()
            ),
            fix: "set `invoice_lines = \"summary\"` in the client's [[clients]] entry of the fleet file (one line per markup period)"
                .into(),
        });
    }
    if xml.starts_with(&[0xEF, 0xBB, 0xBF]) {
        out.push(SchemaIssue {
            line: Some(1),
            element: None,
            message: "the file starts with a UTF-8 byte order mark, which KSeF refuses".into(),
            fix: RENDER_DEFECT.into(),
        });
    }
    let text = match std::str::from_utf8(xml) {
        Ok(t) => t,
        Err(e) => {
            out.push(SchemaIssue {
                line: None,
                element: None,
                message: format!("not UTF-8: {e}"),
                fix: RENDER_DEFECT.into(),
            });
            return out;
        }
    };
    for (i, l) in text.lines().enumerate() {
        if let Some(c) = l.chars().find(|c| is_forbidden(*c)) {
            let (element, path) = element_at(text, i as u32 + 1);
            let mut shown = path.clone();
            shown.extend(element.clone());
            out.push(SchemaIssue {
                line: Some(i as u32 + 1),
                element: (!shown.is_empty()).then(|| shown.join("/")),
                message: format!("character U+{:04X} is forbidden in KSeF invoices", c as u32),
                fix: match fix_for(&path, element.as_deref().unwrap_or_default()) {
                    f if f == RENDER_DEFECT => {
                        "remove the character from the data this line is made of".into()
                    }
                    f => format!("remove it from {f}"),
                },
            });
        }
    }
    out
}

/// Characters KSeF refuses in an invoice file (see [`file_issues`]).
pub fn is_forbidden(c: char) -> bool {
    let u = c as u32;
    (u < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        || (0x7F..=0x84).contains(&u)
        || (0x86..=0x9F).contains(&u)
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_examples_validate_and_a_broken_one_names_its_element() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/ksef-fa3/examples");
        for f in [
            "FA_3_Przyklad_1.xml",
            "FA_3_Przyklad_20.xml",
            "FA_3_Przyklad_21.xml",
        ] {
            let xml = std::fs::read(dir.join(f)).unwrap();
            assert_eq!(validate(&xml).unwrap(), vec![], "{f}");
        }
        let xml = std::fs::read_to_string(dir.join("FA_3_Przyklad_1.xml")).unwrap();
        let bad = xml.replacen(
            "<KodWaluty>PLN</KodWaluty>",
            "<KodWaluty>ZZZ</KodWaluty>",
            1,
        );
        assert_ne!(bad, xml);
        let issues = validate(bad.as_bytes()).unwrap();
        assert!(!issues.is_empty());
        let i = &issues[0];
        assert_eq!(i.element.as_deref(), Some("Fa/KodWaluty"), "{issues:?}");
        assert!(i.line.is_some());
        assert!(i.message.contains("ZZZ"), "{i}");
        assert!(i.fix.contains("invoice_currency"), "{i}");
    }

    #[test]
    fn file_rules_before_the_schema() {
        assert!(is_forbidden('\u{1}') && is_forbidden('\u{80}') && is_forbidden('\u{FFFE}'));
        assert!(!is_forbidden('\u{85}') && !is_forbidden('ż') && !is_forbidden('\n'));
        let issues = file_issues("<a>\n<b>x\u{7f}</b>\n</a>".as_bytes());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].line, Some(2));
        let big = vec![b' '; MAX_INVOICE_BYTES + 1];
        assert!(file_issues(&big)[0].fix.contains("summary"));
    }
}
