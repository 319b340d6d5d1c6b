//! Edits of the fleet file that keep everything the operator wrote: comments, blank
//! lines, key order and formatting (toml_edit). Onboarding appends a `[[clients]]` entry,
//! offboarding marks one `offboarded`, `Ops::change_client` edits values of one client's
//! entry; nothing else of the file changes. A value that is replaced keeps its comments;
//! a key that is added goes after its neighbour in the order fleet.example.toml documents.
//!
//! Every edit is checked before it is written: the new text must load as a fleet
//! ([`Fleet::parse`], the one owner of the rules, the same validation as every start),
//! and the file on disk must still be the one that was read (a concurrent edit by hand,
//! by another console or by maictl is not overwritten). The write is atomic (a temporary
//! file in the same directory with the old file's permissions, fsynced, renamed over the
//! old one), so a crash leaves the old file or the new one, never half of each.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

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
    /// Valid TOML, but not in a shape these edits can change in place.
    #[error("the fleet file {} cannot be edited: {message}; fix it by hand first, nothing was changed", path.display())]
    Shape { path: PathBuf, message: String },
    #[error("the fleet file {} already has a client {id:?}; choose another id", path.display())]
    Exists { path: PathBuf, id: String },
    #[error("the fleet file {} has no [[clients]] entry with id = {id:?} (clients written as an inline array cannot be edited); check the id, nothing was changed", path.display())]
    Missing { path: PathBuf, id: String },
    #[error("the edited fleet file would not load ({0}); nothing was written")]
    Invalid(FleetError),
    #[error("the fleet file {} changed on disk since it was read (edited by hand, by another console or by maictl?); nothing was written and it is left as the other writer made it: look at it and retry", path.display())]
    Changed { path: PathBuf },
    #[error("cannot write the fleet file {}: {source}; it is unchanged (the temporary file next to it was removed): check the directory's permissions and free space, then retry", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The keys of a `[[clients]]` entry in the order fleet.example.toml documents them: a
/// key that is added goes right after the nearest one before it that the entry has.
const CLIENT_KEY_ORDER: &[&str] = &[
    "id",
    "legal_name",
    "nip",
    "vat_id",
    "address",
    "address_line2",
    "country",
    "host",
    "placement",
    "markup",
    "markup_changes",
    "monthly_limit_usd",
    "invoice_currency",
    "vat",
    "invoice_lines",
    "hosting_eur",
    "invoice_email",
    "tracker_url",
];

/// The fleet file as read (to detect a concurrent writer), and the document being edited.
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
        FleetDoc::from_text(path, original)
    }

    pub fn from_text(path: &Path, original: String) -> Result<FleetDoc, FleetEditError> {
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

    /// The text as it was read.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The text with the edits made so far.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    fn clients(&self) -> Option<&ArrayOfTables> {
        self.doc.get("clients").and_then(Item::as_array_of_tables)
    }

    /// The `[[clients]]` table whose `id` is `id`.
    fn client_mut(&mut self, id: &str) -> Result<&mut Table, FleetEditError> {
        let err = FleetEditError::Missing {
            path: self.path.clone(),
            id: id.to_string(),
        };
        self.doc
            .get_mut("clients")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|a| {
                a.iter_mut()
                    .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
            })
            .ok_or(err)
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
                return Err(FleetEditError::Shape {
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
        let day = day.format("%Y-%m-%d").to_string();
        self.set_string(id, "offboarded", Some(&day))
    }

    /// A value of the client's entry as the file writes it (strings unquoted).
    pub fn value_text(&mut self, id: &str, key: &str) -> Result<Option<String>, FleetEditError> {
        Ok(self
            .client_mut(id)?
            .get(key)
            .and_then(Item::as_value)
            .map(plain_text))
    }

    /// Sets the client's Swarm placement constraints (`placement = [...]`; empty removes
    /// the key). [`placement_value`] is the one way they are written.
    pub fn set_placement(&mut self, id: &str, placement: &[String]) -> Result<(), FleetEditError> {
        let t = self.client_mut(id)?;
        if placement.is_empty() {
            t.remove("placement");
        } else {
            set_value(t, "placement", placement_value(placement));
        }
        Ok(())
    }

    /// Sets (or with `None` removes) a string value of the client's entry.
    pub fn set_string(
        &mut self,
        id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), FleetEditError> {
        let t = self.client_mut(id)?;
        match value {
            Some(v) => set_value(t, key, Value::from(v)),
            None => {
                t.remove(key);
            }
        }
        Ok(())
    }

    /// Adds a dated markup rate to `markup_changes` (created after `markup` when absent),
    /// in day order. An entry of the same day gets the new rate; its old rate is returned.
    pub fn add_markup_change(
        &mut self,
        id: &str,
        from: NaiveDate,
        rate: Decimal,
    ) -> Result<Option<String>, FleetEditError> {
        let path = self.path.clone();
        let t = self.client_mut(id)?;
        let mut entry = InlineTable::new();
        entry.insert("from", Value::from(toml_date(from)));
        entry.insert("rate", Value::from(rate.normalize().to_string()));
        if !t.contains_key("markup_changes") {
            let mut arr = Array::new();
            arr.push(entry);
            set_value(t, "markup_changes", Value::Array(arr));
            return Ok(None);
        }
        let arr = t
            .get_mut("markup_changes")
            .and_then(Item::as_array_mut)
            .ok_or_else(|| FleetEditError::Shape {
                path: path.clone(),
                message: format!(
                    "markup_changes of client {id:?} is not an inline array such as [{{ from = 2026-11-16, rate = \"1.35\" }}]"
                ),
            })?;
        let len = arr.len();
        let mut at = len;
        for (i, v) in arr.iter_mut().enumerate() {
            let Some(e) = v.as_inline_table_mut() else {
                continue;
            };
            let Some(day) = e.get("from").and_then(value_day) else {
                continue;
            };
            if day == from {
                let old = e.get("rate").map(plain_text);
                let decor = e.get("rate").map(|v| v.decor().clone());
                let mut nv = Value::from(rate.normalize().to_string());
                if let Some(d) = decor {
                    *nv.decor_mut() = d;
                }
                e.insert("rate", nv);
                return Ok(old);
            }
            if day > from && at == len {
                at = i;
            }
        }
        arr.insert(at, entry);
        // The first element has no space before it; others one, like the example.
        for (i, v) in arr.iter_mut().enumerate() {
            let d = v.decor_mut();
            if d.prefix().is_none() {
                d.set_prefix(if i == 0 { "" } else { " " });
            }
        }
        Ok(None)
    }

    /// Sets the monthly limit (a decimal string, like the file's other amounts) or, with
    /// `None`, removes it.
    pub fn set_monthly_limit(
        &mut self,
        id: &str,
        limit: Option<Decimal>,
    ) -> Result<(), FleetEditError> {
        let v = limit.map(|l| l.normalize().to_string());
        self.set_string(id, "monthly_limit_usd", v.as_deref())
    }

    /// The edited file as a fleet: what the next start would load.
    pub fn check(&self) -> Result<Fleet, FleetEditError> {
        Fleet::parse(&self.text(), &self.path).map_err(FleetEditError::Invalid)
    }

    /// Checks the edit, then replaces the file atomically if it is still what was read.
    pub fn save(&self) -> Result<Fleet, FleetEditError> {
        let fleet = self.check()?;
        write_if_unchanged(&self.path, &self.original, &self.text())?;
        Ok(fleet)
    }
}

/// A string value's text, or any other value as TOML writes it.
fn plain_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.value().clone(),
        other => other.clone().decorated("", "").to_string(),
    }
}

/// A `from` value: a TOML date or a string holding one.
fn value_day(v: &Value) -> Option<NaiveDate> {
    let text = match v {
        Value::Datetime(d) => d.value().to_string(),
        Value::String(s) => s.value().clone(),
        _ => return None,
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// `placement` as the fleet file writes it: an inline array of constraint strings.
pub fn placement_value(placement: &[String]) -> Value {
    Value::Array(placement.iter().map(|p| p.trim()).collect())
}

fn toml_date(d: NaiveDate) -> toml_edit::Datetime {
    d.format("%Y-%m-%d")
        .to_string()
        .parse()
        .expect("a NaiveDate is a TOML local date")
}

/// Replaces the value of `key` keeping its comments, or adds the key after its
/// neighbour in [`CLIENT_KEY_ORDER`].
fn set_value(t: &mut Table, key: &str, mut v: Value) {
    if let Some(old) = t.get_mut(key).and_then(Item::as_value_mut) {
        *v.decor_mut() = old.decor().clone();
        *old = v;
        return;
    }
    let pos = CLIENT_KEY_ORDER.iter().position(|k| *k == key);
    let anchor = pos.and_then(|p| {
        CLIENT_KEY_ORDER[..p]
            .iter()
            .rev()
            .find(|k| t.contains_key(k))
            .copied()
    });
    let Some(anchor) = anchor else {
        t.insert(key, Item::Value(v));
        return;
    };
    // Everything after the anchor is taken out and put back after the new key, each key
    // with its own decor (the comment lines above it).
    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
    let after = keys
        .iter()
        .position(|k| k == anchor)
        .map(|i| keys[i + 1..].to_vec())
        .unwrap_or_default();
    let moved: Vec<_> = after.iter().filter_map(|k| t.remove_entry(k)).collect();
    t.insert(key, Item::Value(v));
    for (k, item) in moved {
        t.insert_formatted(&k, item);
    }
}

/// Replaces `path` with `new` if it still holds `expected`: through a temporary file in
/// the same directory (same permissions, fsynced, renamed). The comparison is made after
/// the temporary file is written, to leave another writer the shortest window.
fn write_if_unchanged(path: &Path, expected: &str, new: &str) -> Result<(), FleetEditError> {
    use std::io::Write;
    let werr = |source| FleetEditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fleet.toml".into());
    let tmp = dir.join(format!(".{name}.mai-edit-{}", std::process::id()));
    let perms = std::fs::metadata(path)
        .map_err(|source| FleetEditError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .permissions();
    let result = (|| -> Result<(), FleetEditError> {
        let mut f = std::fs::File::create(&tmp).map_err(werr)?;
        f.write_all(new.as_bytes()).map_err(werr)?;
        f.set_permissions(perms).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        let now = std::fs::read(path).map_err(|source| FleetEditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if now != expected.as_bytes() {
            return Err(FleetEditError::Changed {
                path: path.to_path_buf(),
            });
        }
        std::fs::rename(&tmp, path).map_err(werr)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

    const CLIENTS_FILE: &str = r#"# the fleet
[console]
data_dir = "cache"

[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"

[[clients]]
id = "other"
legal_name = "Other"
nip = "7010002139"
address = "ul. Inna 2"
host = "local"
tracker_url = "http://127.0.0.1:9002"
tracker_admin_token = "env:X"

[[clients]]
# ACME, our first client
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"   # checked
address = "ul. Prosta 1"
host = "local"
# Price = cost × markup.
markup = "1.3"
markup_changes = [{ from = 2026-11-16, rate = "1.35" }, { from = 2027-02-01, rate = "1.5" }]
# Limit on client cost.
monthly_limit_usd = "500"  # USD
tracker_url = "http://127.0.0.1:9001"
tracker_admin_token = "env:Y"
"#;

    fn doc() -> FleetDoc {
        FleetDoc::from_text(Path::new("/x/fleet.toml"), CLIENTS_FILE.into()).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_markup_change_goes_in_day_order_and_everything_else_stays() {
        let mut d = doc();
        assert_eq!(
            d.add_markup_change("acme", day("2026-12-01"), "1.40".parse().unwrap())
                .unwrap(),
            None
        );
        let text = d.text();
        assert!(
            text.contains(r#"markup_changes = [{ from = 2026-11-16, rate = "1.35" }, { from = 2026-12-01, rate = "1.4" }, { from = 2027-02-01, rate = "1.5" }]"#),
            "{text}"
        );
        // Only that line differs.
        let changed: Vec<_> = CLIENTS_FILE
            .lines()
            .zip(text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(CLIENTS_FILE.lines().count(), text.lines().count());
        let f = crate::fleet::Fleet::parse(&text, Path::new("/x/fleet.toml")).unwrap();
        assert_eq!(
            f.client("acme").unwrap().markup_on(day("2026-12-24")),
            "1.4".parse().unwrap()
        );
        // The same day again replaces its rate and says what it was.
        assert_eq!(
            d.add_markup_change("acme", day("2026-12-01"), "1.45".parse().unwrap())
                .unwrap()
                .as_deref(),
            Some("1.4")
        );
    }

    #[test]
    fn values_keep_their_comments_and_new_keys_go_after_their_neighbour() {
        let mut d = doc();
        d.set_monthly_limit("acme", Some("200.50".parse().unwrap()))
            .unwrap();
        d.set_string("acme", "nip", Some("5261040828")).unwrap();
        d.set_string("acme", "address_line2", Some("00-001 Warszawa"))
            .unwrap();
        d.add_markup_change("other", day("2026-12-01"), "1.4".parse().unwrap())
            .unwrap();
        let text = d.text();
        assert!(
            text.contains("monthly_limit_usd = \"200.5\"  # USD\n"),
            "{text}"
        );
        assert!(
            text.contains("# Limit on client cost.\nmonthly_limit_usd"),
            "{text}"
        );
        assert!(
            text.contains("nip = \"5261040828\"   # checked\n"),
            "{text}"
        );
        assert!(
            text.contains("address = \"ul. Prosta 1\"\naddress_line2 = \"00-001 Warszawa\"\nhost = \"local\"\n# Price = cost × markup.\n"),
            "{text}"
        );
        assert!(
            text.contains("host = \"local\"\nmarkup_changes = [{ from = 2026-12-01, rate = \"1.4\" }]\ntracker_url = \"http://127.0.0.1:9002\""),
            "{text}"
        );
        assert!(text.starts_with("# the fleet\n"));
        assert_eq!(
            d.value_text("acme", "monthly_limit_usd")
                .unwrap()
                .as_deref(),
            Some("200.5")
        );
        d.set_monthly_limit("acme", None).unwrap();
        assert!(!d.text().contains("monthly_limit_usd"));
        crate::fleet::Fleet::parse(&d.text(), Path::new("/x/fleet.toml")).unwrap();
        assert!(d.client_mut("nobody").is_err());
    }

    #[test]
    fn the_file_is_replaced_only_if_nobody_changed_it_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        std::fs::write(&p, CLIENTS_FILE).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let mut d = FleetDoc::load(&p).unwrap();
        d.set_monthly_limit("acme", Some(Decimal::from(100)))
            .unwrap();
        std::fs::write(&p, format!("{CLIENTS_FILE}\n# edited by hand\n")).unwrap();
        assert!(matches!(d.save(), Err(FleetEditError::Changed { .. })));
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .ends_with("# edited by hand\n"));
        let mut d = FleetDoc::load(&p).unwrap();
        d.set_monthly_limit("acme", Some(Decimal::from(100)))
            .unwrap();
        d.save().unwrap();
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains("monthly_limit_usd = \"100\"  # USD"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }
}
