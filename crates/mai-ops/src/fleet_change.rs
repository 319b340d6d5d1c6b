//! In-place edits of one client's entry in the fleet file, for `Ops::change_client`.
//!
//! The fleet file is the operator's own document: its comments, key order and layout are
//! kept (toml_edit), and only the values that change are touched. A value that is
//! replaced keeps its trailing comment; a key that is added goes after its neighbour in
//! the order fleet.example.toml documents. The edited text is written only after it parsed
//! as a fleet file again ([`crate::fleet::Fleet::parse`], the one owner of the rules),
//! atomically (a temporary file renamed over the old one) and only if nobody changed the
//! file since it was read.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum FleetEditError {
    #[error("cannot read the fleet file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet file {} cannot be edited: {message}", path.display())]
    Shape { path: PathBuf, message: String },
    #[error("cannot write the fleet file {}: {source}; it is unchanged (the new text was written to a temporary file next to it and removed)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet file {} changed while this change was being applied (another console or maictl?); it was left as the other writer made it: look at it and apply the change again", path.display())]
    Concurrent { path: PathBuf },
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

/// A fleet file opened for editing: the text it was read as (to detect a concurrent
/// writer) and its document.
#[derive(Debug)]
pub struct FleetDoc {
    pub path: PathBuf,
    original: String,
    pub doc: DocumentMut,
}

impl FleetDoc {
    pub fn open(path: &Path) -> Result<FleetDoc, FleetEditError> {
        let original = std::fs::read_to_string(path).map_err(|source| FleetEditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FleetDoc::from_text(path, original)
    }

    pub fn from_text(path: &Path, original: String) -> Result<FleetDoc, FleetEditError> {
        let doc = original
            .parse::<DocumentMut>()
            .map_err(|e| FleetEditError::Shape {
                path: path.to_path_buf(),
                message: format!("it is not valid TOML ({e})"),
            })?;
        Ok(FleetDoc {
            path: path.to_path_buf(),
            original,
            doc,
        })
    }

    /// The text as it was read.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The text with the edits made so far.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    fn shape(&self, message: String) -> FleetEditError {
        FleetEditError::Shape {
            path: self.path.clone(),
            message,
        }
    }

    /// The `[[clients]]` table whose `id` is `id`.
    pub fn client_mut(&mut self, id: &str) -> Result<&mut Table, FleetEditError> {
        let err = self.shape(format!(
            "it has no [[clients]] entry with id = {id:?} written as a [[clients]] table"
        ));
        self.doc
            .get_mut("clients")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|a| {
                a.iter_mut()
                    .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
            })
            .ok_or(err)
    }

    /// A value of the client's entry as the file writes it (strings unquoted).
    pub fn value_text(&mut self, id: &str, key: &str) -> Result<Option<String>, FleetEditError> {
        Ok(self
            .client_mut(id)?
            .get(key)
            .and_then(Item::as_value)
            .map(plain_text))
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

    /// Writes the edited text over the file atomically, provided the file still holds
    /// the text it was read as. The file keeps its permissions.
    pub fn write(&self) -> Result<(), FleetEditError> {
        let text = self.text();
        write_if_unchanged(&self.path, &self.original, &text)
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

/// Writes `new` over `path` through a temporary file in the same directory (same
/// permissions, fsynced, renamed), if `path` still holds `expected`.
pub fn write_if_unchanged(path: &Path, expected: &str, new: &str) -> Result<(), FleetEditError> {
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
    let perms = std::fs::metadata(path).map_err(werr)?.permissions();
    let result = (|| -> Result<(), FleetEditError> {
        let mut f = std::fs::File::create(&tmp).map_err(werr)?;
        f.write_all(new.as_bytes()).map_err(werr)?;
        f.set_permissions(perms).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        let now = std::fs::read_to_string(path).map_err(werr)?;
        if now != expected {
            return Err(FleetEditError::Concurrent {
                path: path.to_path_buf(),
            });
        }
        std::fs::rename(&tmp, path).map_err(werr)?;
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

    const FILE: &str = r#"# the fleet
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
        FleetDoc::from_text(Path::new("/x/fleet.toml"), FILE.into()).unwrap()
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
        let changed: Vec<_> = FILE
            .lines()
            .zip(text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(FILE.lines().count(), text.lines().count());
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
        std::fs::write(&p, FILE).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let mut d = FleetDoc::open(&p).unwrap();
        d.set_monthly_limit("acme", Some(Decimal::from(100)))
            .unwrap();
        std::fs::write(&p, format!("{FILE}\n# edited by hand\n")).unwrap();
        assert!(matches!(d.write(), Err(FleetEditError::Concurrent { .. })));
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .ends_with("# edited by hand\n"));
        let mut d = FleetDoc::open(&p).unwrap();
        d.set_monthly_limit("acme", Some(Decimal::from(100)))
            .unwrap();
        d.write().unwrap();
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
