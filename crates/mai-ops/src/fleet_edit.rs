//! Edits of the fleet file that keep everything the operator wrote: comments, blank
//! lines, key order and formatting (toml_edit). Onboarding appends a `[[clients]]` entry,
//! offboarding marks one `offboarded`; nothing else of the file changes.
//!
//! Every edit is checked before it is written: the new text must load as a fleet
//! ([`Fleet::parse`], the same validation as every start), and the file on disk must still
//! be the one that was read (a concurrent edit by hand or by another console is not
//! overwritten). The write is atomic (a temporary file in the same directory, fsynced,
//! renamed over the old one, with the old file's permissions), so a crash leaves the old
//! file or the new one, never half of each.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

use crate::fleet::{Fleet, FleetError};

#[derive(Debug, thiserror::Error)]
pub enum FleetEditError {
    #[error("cannot read the fleet file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet file {} is not valid TOML ({message}); fix it by hand first, nothing was changed", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("the fleet file {} already has a client {id:?}; choose another id", path.display())]
    Exists { path: PathBuf, id: String },
    #[error("the fleet file {} has no client {id:?}", path.display())]
    Missing { path: PathBuf, id: String },
    #[error("the edited fleet file would not load ({0}); nothing was written")]
    Invalid(FleetError),
    #[error("the fleet file {} changed on disk since it was read (edited by hand or by another console?); nothing was written: retry", path.display())]
    Changed { path: PathBuf },
    #[error("cannot write the fleet file {}: {source}; check the directory's permissions and free space", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The fleet file as read, and the document being edited.
#[derive(Debug, Clone)]
pub struct FleetDoc {
    path: PathBuf,
    original: String,
    doc: DocumentMut,
}

/// A new `[[clients]]` entry, key by key in the order they are written (the order of
/// fleet.example.toml). Values are TOML values already: strings stay strings, so a
/// decimal such as a markup is never a float.
#[derive(Debug, Clone, Default)]
pub struct ClientEntry {
    /// A comment written on the lines above the entry (without `#`).
    pub comment: Option<String>,
    pub fields: Vec<(&'static str, toml_edit::Value)>,
}

impl FleetDoc {
    pub fn load(path: &Path) -> Result<FleetDoc, FleetEditError> {
        let original = std::fs::read_to_string(path).map_err(|source| FleetEditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FleetDoc::parse(path, original)
    }

    pub fn parse(path: &Path, original: String) -> Result<FleetDoc, FleetEditError> {
        let doc = original
            .parse::<DocumentMut>()
            .map_err(|e| FleetEditError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(FleetDoc {
            path: path.to_path_buf(),
            original,
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text as read.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The edited text.
    pub fn render(&self) -> String {
        self.doc.to_string()
    }

    fn clients(&self) -> Option<&ArrayOfTables> {
        self.doc.get("clients").and_then(Item::as_array_of_tables)
    }

    fn client_mut(&mut self, id: &str) -> Option<&mut Table> {
        self.doc
            .get_mut("clients")
            .and_then(Item::as_array_of_tables_mut)?
            .iter_mut()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
    }

    pub fn has_client(&self, id: &str) -> bool {
        self.clients().is_some_and(|a| {
            a.iter()
                .any(|t| t.get("id").and_then(Item::as_str) == Some(id))
        })
    }

    /// Appends a `[[clients]]` entry after the last one.
    pub fn append_client(&mut self, id: &str, entry: &ClientEntry) -> Result<(), FleetEditError> {
        if self.has_client(id) {
            return Err(FleetEditError::Exists {
                path: self.path.clone(),
                id: id.to_string(),
            });
        }
        let mut t = Table::new();
        t.set_implicit(false);
        for (k, v) in &entry.fields {
            t.insert(k, value(v.clone()));
        }
        let mut prefix = String::from("\n");
        if let Some(c) = &entry.comment {
            for line in c.lines() {
                prefix.push_str("# ");
                prefix.push_str(line);
                prefix.push('\n');
            }
        }
        t.decor_mut().set_prefix(prefix);
        match self.doc.get_mut("clients") {
            Some(Item::ArrayOfTables(a)) => a.push(t),
            Some(_) => {
                return Err(FleetEditError::Syntax {
                    path: self.path.clone(),
                    message: "`clients` is not an array of [[clients]] tables".into(),
                })
            }
            None => {
                let mut a = ArrayOfTables::new();
                a.push(t);
                self.doc.insert("clients", Item::ArrayOfTables(a));
            }
        }
        Ok(())
    }

    /// Marks a client as gone from the fleet on `day`: `offboarded = "YYYY-MM-DD"`.
    pub fn set_offboarded(&mut self, id: &str, day: NaiveDate) -> Result<(), FleetEditError> {
        let path = self.path.clone();
        let t = self.client_mut(id).ok_or(FleetEditError::Missing {
            path,
            id: id.to_string(),
        })?;
        t.insert("offboarded", value(day.format("%Y-%m-%d").to_string()));
        Ok(())
    }

    /// The edited file as a fleet: what the next start would load.
    pub fn check(&self) -> Result<Fleet, FleetEditError> {
        Fleet::parse(&self.render(), &self.path).map_err(FleetEditError::Invalid)
    }

    /// Checks the edit, then replaces the file atomically if it is still what was read.
    pub fn save(&self) -> Result<Fleet, FleetEditError> {
        let fleet = self.check()?;
        let text = self.render();
        write_if_unchanged(&self.path, &self.original, &text)?;
        Ok(fleet)
    }
}

/// Replaces `path` with `text` if it still holds `expected`; atomic, fsynced, keeping
/// the file's permissions.
pub fn write_if_unchanged(path: &Path, expected: &str, text: &str) -> Result<(), FleetEditError> {
    use std::io::Write;
    let werr = |source| FleetEditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let now = std::fs::read(path).map_err(|source| FleetEditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if now != expected.as_bytes() {
        return Err(FleetEditError::Changed {
            path: path.to_path_buf(),
        });
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fleet.toml".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(m) = std::fs::metadata(path) {
            f.set_permissions(m.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The demo fleet. Comments stay.

[console]
data_dir = "cache"   # next to this file

[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"

# ---- clients ----

[[clients]]
# the first client
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1"
host = "local"
markup = "1.3"
tracker_url = "http://127.0.0.1:9001"
tracker_admin_token = "env:A"
tracker_read_token = "env:R"
"#;

    fn entry() -> ClientEntry {
        ClientEntry {
            comment: Some("onboarded 2026-11-24 by tester".into()),
            fields: vec![
                ("id", "kowalski".into()),
                ("legal_name", "Kancelaria Kowalski sp.k.".into()),
                ("nip", "7010002139".into()),
                ("address", "ul. Marszałkowska 10".into()),
                ("host", "local".into()),
                ("markup", "1.25".into()),
                ("monthly_limit_usd", "300".into()),
                ("tracker_url", "http://127.0.0.1:9002".into()),
                ("tracker_read_token", "keychain".into()),
                ("tracker_admin_token", "keychain".into()),
            ],
        }
    }

    #[test]
    fn appending_a_client_keeps_every_byte_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, FILE).unwrap();
        let mut d = FleetDoc::load(&path).unwrap();
        d.append_client("kowalski", &entry()).unwrap();
        let fleet = d.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(FILE), "{text}");
        assert!(
            text.contains("\n# onboarded 2026-11-24 by tester\n[[clients]]\nid = \"kowalski\""),
            "{text}"
        );
        assert!(
            text.contains("markup = \"1.25\""),
            "decimals stay strings: {text}"
        );
        let k = fleet.client("kowalski").unwrap();
        assert_eq!(
            k.monthly_limit_usd(),
            Some(rust_decimal::Decimal::from(300))
        );
        // The same id twice is refused before anything is written.
        let mut again = FleetDoc::load(&path).unwrap();
        assert!(matches!(
            again.append_client("kowalski", &entry()),
            Err(FleetEditError::Exists { .. })
        ));
    }

    #[test]
    fn offboarding_adds_one_key_and_the_client_stays_for_billing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, FILE).unwrap();
        let mut d = FleetDoc::load(&path).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        d.set_offboarded("acme", day).unwrap();
        let fleet = d.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            FILE.replace(
                "tracker_read_token = \"env:R\"\n",
                "tracker_read_token = \"env:R\"\noffboarded = \"2026-11-30\"\n"
            )
        );
        let c = fleet.client("acme").unwrap();
        assert_eq!(c.offboarded, Some(day));
        assert_eq!(fleet.active_clients().count(), 0);
        assert!(matches!(
            FleetDoc::load(&path).unwrap().set_offboarded("nobody", day),
            Err(FleetEditError::Missing { .. })
        ));
    }

    #[test]
    fn a_file_changed_meanwhile_or_an_invalid_edit_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, FILE).unwrap();
        let mut d = FleetDoc::load(&path).unwrap();
        d.append_client("kowalski", &entry()).unwrap();
        let by_hand = format!("{FILE}\n# edited by hand meanwhile\n");
        std::fs::write(&path, &by_hand).unwrap();
        assert!(matches!(d.save(), Err(FleetEditError::Changed { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), by_hand);

        let mut bad = FleetDoc::load(&path).unwrap();
        let mut e = entry();
        e.fields[4] = ("host", "nowhere".into());
        bad.append_client("kowalski", &e).unwrap();
        let err = bad.save().unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), by_hand);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
