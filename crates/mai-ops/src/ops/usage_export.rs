//! Usage exports for spreadsheets: one client's month from the console cache, as events
//! (one row per request) or daily rollups (one row per Warsaw day), in CSV or JSON.
//!
//! This module owns the column sets ([`EVENT_COLUMNS`], [`DAILY_COLUMNS`]) and the one
//! writer ([`UsageWriter`]) both `maictl usage export` and the console use. Rows stream:
//! the events are read from the ledger one at a time and written at once, so a month of
//! any size needs no more memory than one row.
//!
//! Format: CSV per RFC 4180 (comma, CRLF line ends, a header row, a field quoted when it
//! holds a comma, a quote, CR or LF, quotes doubled); JSON is one object
//! `{"client", "month", "kind", "columns", "rows": [{column: value}, ...]}`. In both,
//! money is the exact decimal as text (`0.000123`, never a float), counts are integers,
//! `created_at` is Warsaw local time with its offset (RFC 3339) and `day` the Warsaw day
//! the event counts on. An absent value is an empty CSV field / JSON `null`. The client
//! cost is priced by the fleet file's markup of the row's day (`pricing::price`), so the
//! rows sum to the month's client cost exactly.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mai_core::ledger::{LedgerError, StoredEvent};
use mai_core::pricing::{MarkupSchedule, PricingError};
use mai_core::time::YearMonth;
use mai_core::usage::Totals;
use rust_decimal::Decimal;

use super::{Ops, OpsError};

pub use mai_wire::overview::{
    UsageExportFormat, UsageExportKind, UsageExportProgress, UsageExportRequest, UsageExportResult,
};

/// Columns of an events export, in order.
pub const EVENT_COLUMNS: &[&str] = &[
    "created_at",
    "day",
    "generation_id",
    "user_id",
    "user_email",
    "user_name",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "raw_cost_usd",
    "markup",
    "client_cost_usd",
    "state",
    "source",
    "chat_id",
    "task",
    "groups",
];

/// Columns of a daily export, in order.
pub const DAILY_COLUMNS: &[&str] = &[
    "day",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "raw_cost_usd",
    "markup",
    "client_cost_usd",
];

/// How often (in rows) progress is reported.
const PROGRESS_EVERY: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum UsageExportError {
    #[error("usage export: reading the console cache failed: {0}")]
    Ledger(#[from] LedgerError),
    #[error("usage export: writing {target} failed: {source}; check the path and free space")]
    Write {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("usage export: {day} cannot be priced: {source}; fix the markup in the fleet file")]
    Pricing {
        day: chrono::NaiveDate,
        #[source]
        source: PricingError,
    },
    #[error("usage export: the sum of the rows overflows a decimal")]
    Overflow,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Count(u64),
    Money(Decimal),
    Null,
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Cell {
        v.map_or(Cell::Null, Cell::Text)
    }
}

/// The streaming writer of one export: header, rows, end.
pub struct UsageWriter<W: Write> {
    out: W,
    format: UsageExportFormat,
    columns: &'static [&'static str],
    rows: u64,
}

impl<W: Write> UsageWriter<W> {
    /// Writes the header (CSV) or the opening of the object (JSON).
    pub fn begin(
        mut out: W,
        format: UsageExportFormat,
        kind: UsageExportKind,
        client: &str,
        month: YearMonth,
    ) -> io::Result<UsageWriter<W>> {
        let columns = match kind {
            UsageExportKind::Events => EVENT_COLUMNS,
            UsageExportKind::Daily => DAILY_COLUMNS,
        };
        match format {
            UsageExportFormat::Csv => {
                out.write_all(columns.join(",").as_bytes())?;
                out.write_all(b"\r\n")?;
            }
            UsageExportFormat::Json => {
                let kind = match kind {
                    UsageExportKind::Events => "events",
                    UsageExportKind::Daily => "daily",
                };
                write!(
                    out,
                    "{{\"client\":{},\"month\":\"{month}\",\"kind\":\"{kind}\",\"columns\":{},\"rows\":[",
                    serde_json::to_string(client).expect("string"),
                    serde_json::to_string(columns).expect("strings"),
                )?;
            }
        }
        Ok(UsageWriter {
            out,
            format,
            columns,
            rows: 0,
        })
    }

    /// One row, its cells in the column order.
    pub fn row(&mut self, cells: &[Cell]) -> io::Result<()> {
        debug_assert_eq!(cells.len(), self.columns.len());
        match self.format {
            UsageExportFormat::Csv => {
                for (i, c) in cells.iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    match c {
                        Cell::Text(s) => self
                            .out
                            .write_all(mai_core::csv::text_field(s, ',').as_bytes())?,
                        Cell::Count(n) => write!(self.out, "{n}")?,
                        Cell::Money(d) => write!(self.out, "{d}")?,
                        Cell::Null => {}
                    }
                }
                self.out.write_all(b"\r\n")?;
            }
            UsageExportFormat::Json => {
                self.out
                    .write_all(if self.rows == 0 { b"\n{" } else { b",\n{" })?;
                for (i, (col, c)) in self.columns.iter().zip(cells).enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    write!(self.out, "\"{col}\":")?;
                    match c {
                        Cell::Text(s) => serde_json::to_writer(&mut self.out, s)?,
                        Cell::Count(n) => write!(self.out, "{n}")?,
                        Cell::Money(d) => write!(self.out, "\"{d}\"")?,
                        Cell::Null => self.out.write_all(b"null")?,
                    }
                }
                self.out.write_all(b"}")?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Closes the JSON object, flushes; returns the writer and the rows written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.format == UsageExportFormat::Json {
            self.out
                .write_all(if self.rows == 0 { b"]}\n" } else { b"\n]}\n" })?;
        }
        self.out.flush()?;
        Ok((self.out, self.rows))
    }
}

/// An event as its export row; returns the row and its client cost.
pub fn event_cells(
    e: &StoredEvent,
    schedule: &MarkupSchedule,
) -> Result<(Vec<Cell>, Decimal), UsageExportError> {
    let ev = &e.event;
    let day = mai_core::time::warsaw_day(ev.created_at);
    let client = mai_core::pricing::price(schedule, day, ev.cost_usd)
        .map_err(|source| UsageExportError::Pricing { day, source })?;
    let cells = vec![
        Cell::Text(mai_core::time::warsaw_rfc3339(ev.created_at)),
        Cell::Text(day.to_string()),
        Cell::Text(ev.generation_id.clone()),
        ev.user.id.clone().into(),
        ev.user.email.clone().into(),
        ev.user.name.clone().into(),
        Cell::Text(ev.model.clone()),
        ev.provider.clone().into(),
        Cell::Count(ev.tokens.prompt),
        Cell::Count(ev.tokens.completion),
        Cell::Count(ev.tokens.reasoning),
        Cell::Count(ev.tokens.cached),
        Cell::Money(ev.cost_usd.normalize()),
        Cell::Money(schedule.rate_on(day).normalize()),
        Cell::Money(client.normalize()),
        Cell::Text(ev.state.as_str().to_string()),
        Cell::Text(ev.source.as_str().to_string()),
        ev.context.chat_id.clone().into(),
        ev.context.task.clone().into(),
        ev.context.groups.clone().into(),
    ];
    Ok((cells, client))
}

/// A day's rollup as its export row; returns the row and its client cost.
pub fn daily_cells(
    day: chrono::NaiveDate,
    t: &Totals,
    schedule: &MarkupSchedule,
) -> Result<(Vec<Cell>, Decimal), UsageExportError> {
    let client = mai_core::pricing::price(schedule, day, t.cost_usd)
        .map_err(|source| UsageExportError::Pricing { day, source })?;
    let cells = vec![
        Cell::Text(day.to_string()),
        Cell::Count(t.requests),
        Cell::Count(t.tokens.prompt),
        Cell::Count(t.tokens.completion),
        Cell::Count(t.tokens.reasoning),
        Cell::Count(t.tokens.cached),
        Cell::Money(t.cost_usd.normalize()),
        Cell::Money(schedule.rate_on(day).normalize()),
        Cell::Money(client.normalize()),
    ];
    Ok((cells, client))
}

/// Where an export goes.
pub enum ExportTarget {
    /// A file, written next to itself and renamed into place when complete.
    File(PathBuf),
    /// Any writer (maictl's stdout).
    Writer(Box<dyn Write + Send>),
}

/// What [`export_month`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

/// Writes one client's month from `ledger` to `out`, calling `progress(done, total)`
/// every [`PROGRESS_EVERY`] rows and at the end.
#[allow(clippy::too_many_arguments)]
pub fn export_month<W: Write>(
    ledger: &mai_core::ledger::Ledger,
    client: &str,
    month: YearMonth,
    schedule: &MarkupSchedule,
    kind: UsageExportKind,
    format: UsageExportFormat,
    out: W,
    target: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(W, Written), UsageExportError> {
    let werr = |source: io::Error| UsageExportError::Write {
        target: target.to_string(),
        source,
    };
    let (from, to) = (month.first_day(), month.last_day());
    let mut w = UsageWriter::begin(out, format, kind, client, month).map_err(werr)?;
    let mut raw = Decimal::ZERO;
    let mut priced = Decimal::ZERO;
    let mut add = |r: Decimal, c: Decimal| -> Result<(), UsageExportError> {
        raw = raw.checked_add(r).ok_or(UsageExportError::Overflow)?;
        priced = priced.checked_add(c).ok_or(UsageExportError::Overflow)?;
        Ok(())
    };
    match kind {
        UsageExportKind::Events => {
            let total = ledger.count_events(client, from, to)?;
            progress(0, total);
            let mut done = 0u64;
            ledger.for_each_event(client, from, to, |e| {
                let (cells, c) = event_cells(&e, schedule)?;
                add(e.event.cost_usd, c)?;
                w.row(&cells).map_err(werr)?;
                done += 1;
                if done.is_multiple_of(PROGRESS_EVERY) {
                    progress(done, total);
                }
                Ok::<_, UsageExportError>(())
            })?;
            progress(done, total.max(done));
        }
        UsageExportKind::Daily => {
            let days = ledger.daily(client, from, to)?;
            let total = days.len() as u64;
            progress(0, total);
            for (day, t) in &days {
                let (cells, c) = daily_cells(*day, t, schedule)?;
                add(t.cost_usd, c)?;
                w.row(&cells).map_err(werr)?;
            }
            progress(total, total);
        }
    }
    let (out, rows) = w.finish().map_err(werr)?;
    Ok((
        out,
        Written {
            rows,
            raw_cost_usd: raw.normalize(),
            client_cost_usd: priced.normalize(),
        },
    ))
}

/// The part file an export to `path` is written to before it is renamed.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// `~/mai-usage/<client>-<YYYY-MM>-<kind>.<csv|json>` (relative `mai-usage/...` without
/// a home directory); a leading `~/` of a path the user typed is the home directory.
pub fn export_path(
    home: Option<PathBuf>,
    typed: Option<&Path>,
    client: &str,
    month: YearMonth,
    kind: UsageExportKind,
    format: UsageExportFormat,
) -> PathBuf {
    let home_join = |rest: &Path| {
        home.clone()
            .map_or_else(|| rest.to_path_buf(), |h| h.join(rest))
    };
    match typed.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => match p.strip_prefix("~") {
            Ok(rest) => home_join(rest),
            Err(_) => p.to_path_buf(),
        },
        None => {
            let kind = match kind {
                UsageExportKind::Events => "events",
                UsageExportKind::Daily => "daily",
            };
            let ext = match format {
                UsageExportFormat::Csv => "csv",
                UsageExportFormat::Json => "json",
            };
            home_join(&Path::new("mai-usage").join(format!("{client}-{month}-{kind}.{ext}")))
        }
    }
}

impl Ops {
    /// The console's export: the request's path (or the default), its folder created.
    pub async fn usage_export_request(
        &self,
        r: &UsageExportRequest,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<UsageExportResult, OpsError> {
        let ym: YearMonth = r
            .month
            .parse()
            .map_err(|_| OpsError::BadMonth(r.month.clone()))?;
        self.client(&r.client)?;
        let path = export_path(
            std::env::var_os("HOME").map(Into::into),
            r.path.as_deref(),
            &r.client,
            ym,
            r.kind,
            r.format,
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| UsageExportError::Write {
                target: dir.display().to_string(),
                source,
            })?;
        }
        self.usage_export(
            &r.client,
            ym,
            r.kind,
            r.format,
            ExportTarget::File(path),
            progress,
        )
        .await
    }

    /// Exports one client's month: a best-effort pull from its tracker first, then the
    /// console cache, streamed to `target`. `progress(done, total)` runs on a blocking
    /// thread.
    pub async fn usage_export(
        &self,
        client: &str,
        month: YearMonth,
        kind: UsageExportKind,
        format: UsageExportFormat,
        target: ExportTarget,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<UsageExportResult, OpsError> {
        let c = self.client(client)?.clone();
        let pull_error = self.pull(&c.id).await.err().map(|e| e.to_string());
        let schedule = c.terms.markup.clone();
        let org = c.id.clone();
        let (path, written) = self
            .cache
            .with(move |l| {
                Ok(match target {
                    ExportTarget::File(path) => {
                        let shown = path.display().to_string();
                        let part = part_path(&path);
                        let r = std::fs::File::create(&part)
                            .map_err(|source| UsageExportError::Write {
                                target: shown.clone(),
                                source,
                            })
                            .and_then(|f| {
                                export_month(
                                    l,
                                    &org,
                                    month,
                                    &schedule,
                                    kind,
                                    format,
                                    io::BufWriter::new(f),
                                    &shown,
                                    &mut progress,
                                )
                            })
                            .and_then(|(w, written)| {
                                let finish = || -> io::Result<()> {
                                    let f = w.into_inner().map_err(|e| e.into_error())?;
                                    f.sync_all()?;
                                    std::fs::rename(&part, &path)
                                };
                                finish().map_err(|source| UsageExportError::Write {
                                    target: shown.clone(),
                                    source,
                                })?;
                                Ok(written)
                            });
                        if r.is_err() {
                            let _ = std::fs::remove_file(&part);
                        }
                        r.map(|w| (Some(path), w))
                    }
                    ExportTarget::Writer(w) => export_month(
                        l,
                        &org,
                        month,
                        &schedule,
                        kind,
                        format,
                        io::BufWriter::new(w),
                        "the output",
                        &mut progress,
                    )
                    .map(|(_, w)| (None, w)),
                })
            })
            .await??;
        Ok(UsageExportResult {
            client: c.id,
            month: month.to_string(),
            kind,
            format,
            path,
            rows: written.rows,
            raw_cost_usd: written.raw_cost_usd,
            client_cost_usd: written.client_cost_usd,
            pull_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths() {
        let ym: YearMonth = "2026-11".parse().unwrap();
        let home = Some(PathBuf::from("/home/anna"));
        let (k, f) = (UsageExportKind::Daily, UsageExportFormat::Json);
        assert_eq!(
            export_path(home.clone(), None, "acme", ym, k, f),
            PathBuf::from("/home/anna/mai-usage/acme-2026-11-daily.json")
        );
        assert_eq!(
            export_path(
                None,
                None,
                "acme",
                ym,
                UsageExportKind::Events,
                UsageExportFormat::Csv
            ),
            PathBuf::from("mai-usage/acme-2026-11-events.csv")
        );
        assert_eq!(
            export_path(home.clone(), Some(Path::new("~/x/a.csv")), "acme", ym, k, f),
            PathBuf::from("/home/anna/x/a.csv")
        );
        assert_eq!(
            export_path(
                home.clone(),
                Some(Path::new("/tmp/a.csv")),
                "acme",
                ym,
                k,
                f
            ),
            PathBuf::from("/tmp/a.csv")
        );
        assert_eq!(
            export_path(home, Some(Path::new("")), "acme", ym, k, f),
            PathBuf::from("/home/anna/mai-usage/acme-2026-11-daily.json")
        );
    }

    #[test]
    fn csv_text_is_defused_numbers_are_not() {
        // A chat user's name is text from outside the operator's hands: a spreadsheet
        // must not run it; a negative amount stays a number.
        let mut row = day_row("=HYPERLINK(\"http://x\")", "-0.5");
        row[8] = Cell::Text("-1 refund".into());
        let s = write(UsageExportFormat::Csv, &[row]);
        let line = s.lines().nth(1).unwrap();
        assert!(
            line.starts_with("\"'=HYPERLINK(\"\"http://x\"\")\","),
            "{line}"
        );
        assert!(line.contains(",-0.5,"), "{line}");
        assert!(line.ends_with(",'-1 refund"), "{line}");
    }

    fn write(format: UsageExportFormat, rows: &[Vec<Cell>]) -> String {
        let ym: YearMonth = "2026-11".parse().unwrap();
        let mut w =
            UsageWriter::begin(Vec::new(), format, UsageExportKind::Daily, "acme \"x\"", ym)
                .unwrap();
        for r in rows {
            w.row(r).unwrap();
        }
        String::from_utf8(w.finish().unwrap().0).unwrap()
    }

    fn day_row(day: &str, cost: &str) -> Vec<Cell> {
        vec![
            Cell::Text(day.into()),
            Cell::Count(2),
            Cell::Count(10),
            Cell::Count(5),
            Cell::Count(0),
            Cell::Count(0),
            Cell::Money(cost.parse().unwrap()),
            Cell::Money("1.3".parse().unwrap()),
            Cell::Null,
        ]
    }

    #[test]
    fn csv_has_a_header_crlf_and_exact_text() {
        let s = write(
            UsageExportFormat::Csv,
            &[
                day_row("2026-11-01", "0.000000007"),
                day_row("2026-11-02", "12.5"),
            ],
        );
        assert_eq!(
            s,
            "day,requests,prompt_tokens,completion_tokens,reasoning_tokens,cached_tokens,raw_cost_usd,markup,client_cost_usd\r\n\
             2026-11-01,2,10,5,0,0,0.000000007,1.3,\r\n\
             2026-11-02,2,10,5,0,0,12.5,1.3,\r\n"
        );
    }

    #[test]
    fn json_is_one_object_with_string_money() {
        let s = write(
            UsageExportFormat::Json,
            &[day_row("2026-11-01", "0.000000007")],
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["client"], "acme \"x\"");
        assert_eq!(v["month"], "2026-11");
        assert_eq!(v["kind"], "daily");
        assert_eq!(v["columns"].as_array().unwrap().len(), DAILY_COLUMNS.len());
        assert_eq!(v["rows"][0]["raw_cost_usd"], "0.000000007");
        assert_eq!(v["rows"][0]["requests"], 2);
        assert_eq!(v["rows"][0]["client_cost_usd"], serde_json::Value::Null);
        let empty = write(UsageExportFormat::Json, &[]);
        let v: serde_json::Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(v["rows"], serde_json::json!([]));
    }
}
