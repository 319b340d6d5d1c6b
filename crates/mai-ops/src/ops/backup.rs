//! Backups of the clients' ledgers, their restore onto a new tracker, and a rebuild when
//! a tracker's volume is lost without a backup.
//!
//! A backup is the tracker's own ledger (`GET /api/v1/admin/backup`: SQLite's online
//! backup, consistent while the tracker writes), streamed to `<dir>/<client>/.<file>.partial`,
//! its SHA-256 and size compared with the tracker's headers, checked again here
//! (`integrity_check`, the org, summed exactly by the offboarding export's
//! [`summarize_ledger`]) and only then renamed to `<client>-<UTC time>.db`, with a manifest
//! `<file>.json` beside it (SHA-256, size, events, month totals). Then older backups beyond
//! `keep` are deleted. A restore re-hashes the file against its manifest and sends it with
//! the hash; the tracker verifies it again and takes it only if its own ledger is empty.
//!
//! A rebuild joins the console cache's events of the client with OpenRouter's `/activity`
//! (per UTC day and model, last 30 completed days, no users or request ids) into a new
//! ledger file of kind `rebuilt`, restorable like a backup, and reports per day what it is
//! made of ([`plan_rebuild`], pure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use mai_core::ledger::{inspect_file, sha256_file, Ledger};
use mai_core::openrouter::{key_hash, ActivityRow, OpenRouterClient, SecretKey};
use mai_core::time::YearMonth;
use mai_core::usage::{
    exact_add, exact_sub, ChatContext, EventState, Source, Tokens, UsageEvent, UserRef,
};
use rust_decimal::Decimal;

pub use mai_wire::backup::{
    BackupKind, BackupManifest, BackupOutcome, ClientBackups, DaySource, LedgerCheck, MonthTotals,
    RebuildDay, RebuildReport, RestoreResult,
};
use mai_wire::change::{AuditAction, AuditOutcome};

use super::change::audit_record;
use super::lifecycle::offboard::summarize_ledger;
use crate::audit::os_user;
use crate::keys::SecretKind;
use crate::ops::{blocking, Ops, OpsError};

/// The user of an event rebuilt from `/activity`, which knows no users.
pub const REBUILT_USER: &str = "unknown (rebuilt from OpenRouter /activity)";
/// Before any ledger of this product.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
/// How many completed UTC days `/activity` covers.
pub const ACTIVITY_WINDOW_DAYS: i64 = 30;

fn backup_err(m: impl Into<String>) -> OpsError {
    OpsError::Backup(m.into())
}

/// `<client>-<UTC time>.db` (`-rebuilt` for a rebuild): sorts by time.
pub fn backup_file_name(client: &str, at: DateTime<Utc>, kind: BackupKind) -> String {
    let t = at.format("%Y%m%dT%H%M%S%3fZ");
    match kind {
        BackupKind::Tracker => format!("{client}-{t}.db"),
        BackupKind::Rebuilt => format!("{client}-{t}-rebuilt.db"),
    }
}

fn manifest_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".json");
    PathBuf::from(p)
}

/// Month totals of a ledger file (Warsaw days; the events' exact decimal costs).
pub fn month_totals(path: &Path) -> Result<Vec<MonthTotals>, String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut st = conn
        .prepare("SELECT day, cost_usd FROM events")
        .map_err(|e| format!("{} is not a tracker ledger: {e}", path.display()))?;
    let mut rows = st.query([]).map_err(|e| e.to_string())?;
    let mut months: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let day: String = r.get(0).map_err(|e| e.to_string())?;
        let cost: String = r.get(1).map_err(|e| e.to_string())?;
        let cost = Decimal::from_str(&cost)
            .map_err(|_| format!("event cost {cost:?} is not a decimal"))?;
        let m = months
            .entry(day.get(..7).unwrap_or(&day).to_string())
            .or_default();
        m.0 += 1;
        m.1 = exact_add(m.1, cost).ok_or("a month's total cost overflows")?;
    }
    Ok(months
        .into_iter()
        .map(|(month, (events, cost))| MonthTotals {
            month,
            events,
            cost_usd: cost.normalize(),
        })
        .collect())
}

/// Checks a ledger file and describes it: integrity and schema, every event of `org`
/// (when given), events, exact cost and month totals, SHA-256 and size.
pub fn describe(
    path: &Path,
    client: &str,
    org: Option<&str>,
    kind: BackupKind,
    taken_at: DateTime<Utc>,
) -> Result<BackupManifest, String> {
    let facts = inspect_file(path).map_err(|e| e.to_string())?;
    let org_id = match (org, facts.orgs.as_slice()) {
        (Some(o), orgs) => {
            if let Some(other) = orgs.iter().find(|x| *x != o) {
                return Err(format!(
                    "{} holds events of org `{other}`, not `{o}`",
                    path.display()
                ));
            }
            o.to_string()
        }
        (None, [one]) => one.clone(),
        (None, []) => client.to_string(),
        (None, many) => {
            return Err(format!(
                "{} holds events of several orgs ({}); a tracker's ledger holds one",
                path.display(),
                many.join(", ")
            ))
        }
    };
    let summary = summarize_ledger(path)?;
    let months = month_totals(path)?;
    let (sha256, size_bytes) =
        sha256_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(BackupManifest {
        client_id: client.to_string(),
        org_id,
        kind,
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.display().to_string(),
        taken_at,
        sha256,
        size_bytes,
        events: summary.events,
        cost_usd: summary.raw_cost_usd,
        months,
    })
}

/// Writes `text` to `path` through a temporary file, synced, renamed.
fn write_atomic(path: &Path, text: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Moves a checked file into place as `<dir>/<name>` with its manifest.
fn keep_file(tmp: &Path, dir: &Path, mut m: BackupManifest) -> Result<BackupManifest, String> {
    let dest = dir.join(&m.file);
    std::fs::rename(tmp, &dest)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), dest.display()))?;
    m.path = dest.display().to_string();
    let json = serde_json::to_vec_pretty(&m).expect("manifest serializes");
    write_atomic(&manifest_path(&dest), &json)?;
    sync_dir(dir);
    Ok(m)
}

/// A client's backups in `dir` (its own folder), newest first, and the files that are
/// not usable backups.
pub fn list_backups(dir: &Path) -> (Vec<BackupManifest>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (out, problems);
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".db") {
            continue;
        }
        match std::fs::read(manifest_path(&p))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<BackupManifest>(&b).map_err(|e| e.to_string()))
        {
            Ok(mut m) => {
                m.path = p.display().to_string();
                out.push(m)
            }
            Err(e) => problems.push(format!("{name}: no usable manifest ({e})")),
        }
    }
    out.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.file.cmp(&a.file)));
    problems.sort();
    (out, problems)
}

/// Deletes the backups of `dir` beyond the newest `keep` (file and manifest); returns the
/// file names deleted.
pub fn prune(dir: &Path, keep: u32) -> Vec<String> {
    let (list, _) = list_backups(dir);
    let mut gone = Vec::new();
    for m in list.iter().skip(keep as usize) {
        let p = dir.join(&m.file);
        match std::fs::remove_file(&p) {
            Ok(()) => {
                let _ = std::fs::remove_file(manifest_path(&p));
                gone.push(m.file.clone());
            }
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "an old backup could not be deleted")
            }
        }
    }
    gone
}

/// The file is the one its manifest describes (SHA-256 and size).
pub fn verify(m: &BackupManifest, file: &Path) -> Result<(), String> {
    let (sha, size) =
        sha256_file(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if sha != m.sha256 || size != m.size_bytes {
        return Err(format!(
            "{} is {size} bytes with SHA-256 {sha}, its manifest says {} bytes with SHA-256 {}: \
             the file changed or was damaged since it was backed up; use another backup",
            file.display(),
            m.size_bytes,
            m.sha256
        ));
    }
    Ok(())
}

/// Writes to `out` (replaced) the ledger `backup` plus the events of `cached` it
/// lacks or holds with less authority (as the ledger's own upsert decides), every one
/// given `org`; returns how many were added. A standalone file like a backup's, so the
/// tracker takes it as one.
pub fn with_cache_events(
    backup: &Path,
    org: &str,
    cached: &[UsageEvent],
    out: &Path,
) -> Result<u64, String> {
    let mut work = out.as_os_str().to_owned();
    work.push(".work");
    let work = PathBuf::from(work);
    let cleanup = |p: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut f = p.as_os_str().to_owned();
            f.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(f));
        }
    };
    cleanup(&work);
    let _ = std::fs::remove_file(out);
    let r = (|| {
        std::fs::copy(backup, &work).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                backup.display(),
                work.display()
            )
        })?;
        let mut l = Ledger::open(&work).map_err(|e| e.to_string())?;
        let mut added = 0u64;
        let events: Vec<UsageEvent> = cached
            .iter()
            .map(|e| UsageEvent {
                org_id: org.to_string(),
                ..e.clone()
            })
            .collect();
        for chunk in events.chunks(500) {
            added += l
                .record_batch(chunk)
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|o| matches!(o, mai_core::ledger::RecordOutcome::Inserted))
                .count() as u64;
        }
        l.backup_to(out).map_err(|e| e.to_string())?;
        Ok(added)
    })();
    cleanup(&work);
    if r.is_err() {
        let _ = std::fs::remove_file(out);
    }
    r
}

/// What a rebuild is made of: the cache's events plus, per UTC day and model, what
/// `/activity` counts beyond them, as one aggregate event (no user).
pub struct RebuildPlan {
    pub events: Vec<UsageEvent>,
    pub days: Vec<RebuildDay>,
}

fn utc_day(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// Pure: joins `cached` (the client's events in the cache, any days) with `activity`
/// (rows of the client's key(s); `None` when `/activity` could not be asked) over the UTC
/// days `from..=to`, `today` being the current UTC day (not in `/activity`). Events get
/// `org`. Money stays exact: an aggregate is `/activity`'s usage minus the cache's.
pub fn plan_rebuild(
    org: &str,
    cached: &[UsageEvent],
    activity: Option<&[ActivityRow]>,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<RebuildPlan, String> {
    let window_from = today - Days::days(ACTIVITY_WINDOW_DAYS);
    let mut by_day: BTreeMap<NaiveDate, Vec<&UsageEvent>> = BTreeMap::new();
    for e in cached {
        by_day.entry(e.created_at.date_naive()).or_default().push(e);
    }
    let mut act: BTreeMap<(NaiveDate, String), (u64, Decimal, Tokens)> = BTreeMap::new();
    for r in activity.unwrap_or_default() {
        let a = act.entry((r.date, r.model.clone())).or_default();
        a.0 += r.requests;
        a.1 = exact_add(a.1, r.usage).ok_or("an /activity total overflows")?;
        a.2.prompt = a.2.prompt.saturating_add(r.prompt_tokens);
        a.2.completion = a.2.completion.saturating_add(r.completion_tokens);
        a.2.reasoning = a.2.reasoning.saturating_add(r.reasoning_tokens);
    }
    let mut events = Vec::new();
    let mut days = Vec::new();
    let mut d = from;
    while d <= to {
        let evs = by_day.get(&d).map(Vec::as_slice).unwrap_or_default();
        let mut cached_usd = Decimal::ZERO;
        let mut per_model: BTreeMap<&str, (u64, Decimal, Tokens)> = BTreeMap::new();
        for e in evs {
            cached_usd = exact_add(cached_usd, e.cost_usd).ok_or("a day's cost overflows")?;
            let m = per_model.entry(e.model.as_str()).or_default();
            m.0 += 1;
            m.1 = exact_add(m.1, e.cost_usd).ok_or("a day's cost overflows")?;
            m.2.prompt = m.2.prompt.saturating_add(e.tokens.prompt);
            m.2.completion = m.2.completion.saturating_add(e.tokens.completion);
            m.2.reasoning = m.2.reasoning.saturating_add(e.tokens.reasoning);
            let mut ev = (*e).clone();
            ev.org_id = org.to_string();
            events.push(ev);
        }
        let in_window = activity.is_some() && d >= window_from && d < today;
        let (mut activity_requests, mut activity_usd) = (0u64, Decimal::ZERO);
        if in_window {
            let rows: Vec<_> = act
                .iter()
                .filter(|((day, _), _)| *day == d)
                .map(|((_, m), v)| (m.clone(), *v))
                .collect();
            for (model, (req, usd, tok)) in rows {
                let have = per_model.get(model.as_str()).copied().unwrap_or_default();
                let missing_usd =
                    exact_sub(usd, have.1).ok_or("an /activity difference overflows")?;
                let missing_req = req.saturating_sub(have.0);
                if missing_usd <= Decimal::ZERO && missing_req == 0 {
                    continue;
                }
                let missing_usd = missing_usd.max(Decimal::ZERO);
                activity_requests += missing_req;
                activity_usd =
                    exact_add(activity_usd, missing_usd).ok_or("a day's cost overflows")?;
                events.push(UsageEvent {
                    generation_id: format!("rebuilt:{d}:{model}"),
                    org_id: org.to_string(),
                    user: UserRef {
                        id: Some(REBUILT_USER.to_string()),
                        email: None,
                        name: None,
                    },
                    model: model.clone(),
                    provider: None,
                    tokens: Tokens {
                        prompt: tok.prompt.saturating_sub(have.2.prompt),
                        completion: tok.completion.saturating_sub(have.2.completion),
                        reasoning: tok.reasoning.saturating_sub(have.2.reasoning),
                        cached: 0,
                    },
                    cost_usd: missing_usd.normalize(),
                    source: Source::Reconciliation,
                    state: EventState::Confirmed,
                    // Noon UTC: the same calendar day in Warsaw.
                    created_at: utc_day(d) + Days::hours(12),
                    context: ChatContext::default(),
                });
            }
        }
        let source = if in_window {
            if activity_usd > Decimal::ZERO || activity_requests > 0 {
                DaySource::Activity
            } else {
                DaySource::Cache
            }
        } else if evs.is_empty() {
            DaySource::Unrecoverable
        } else {
            DaySource::CacheUnverified
        };
        days.push(RebuildDay {
            date: d,
            source,
            cached_events: evs.len() as u64,
            cached_usd: cached_usd.normalize(),
            activity_requests,
            activity_usd: activity_usd.normalize(),
        });
        d += Days::days(1);
    }
    Ok(RebuildPlan { events, days })
}

impl Ops {
    /// The backup folder (`--dir`, else `[backup] dir`) and `keep`.
    fn backup_root(&self, dir: Option<&Path>) -> Result<(PathBuf, u32), OpsError> {
        let keep = self
            .fleet
            .backup
            .as_ref()
            .map_or(crate::fleet::DEFAULT_BACKUP_KEEP, |b| b.keep);
        match (dir, &self.fleet.backup) {
            (Some(d), _) => Ok((d.to_path_buf(), keep)),
            (None, Some(b)) => Ok((b.dir.clone(), keep)),
            (None, None) => Err(backup_err(format!(
                "no backup folder: add a [backup] section with dir = \"...\" to the fleet file {} \
                 (see fleet.example.toml), or give one (maictl backup ... --dir DIR)",
                self.fleet.path.display()
            ))),
        }
    }

    /// One client's backups.
    pub fn backups(&self, id: &str, dir: Option<&Path>) -> Result<ClientBackups, OpsError> {
        self.client(id)?;
        let every_seconds = self
            .fleet
            .backup
            .as_ref()
            .and_then(|b| b.every)
            .map(|d| d.as_secs());
        let (root, keep) = match self.backup_root(dir) {
            Ok(v) => v,
            Err(_) => {
                return Ok(ClientBackups {
                    client_id: id.to_string(),
                    dir: None,
                    backups: Vec::new(),
                    every_seconds,
                    keep: crate::fleet::DEFAULT_BACKUP_KEEP,
                    problems: Vec::new(),
                    ledger: None,
                })
            }
        };
        let d = root.join(id);
        let (backups, problems) = list_backups(&d);
        Ok(ClientBackups {
            client_id: id.to_string(),
            dir: Some(d.display().to_string()),
            backups,
            every_seconds,
            keep,
            problems,
            ledger: None,
        })
    }

    /// [`Ops::backups`] with this month on the tracker against the cache
    /// ([`Ops::ledger_check`]): what the console's Backups panel shows.
    pub async fn backups_with_ledger(&self, id: &str) -> Result<ClientBackups, OpsError> {
        let mut b = self.backups(id, None)?;
        b.ledger = Some(self.ledger_check(id).await?);
        Ok(b)
    }

    /// This (Warsaw) month of a client on its tracker and in the console cache. A
    /// tracker that does not answer is reported, not an error.
    pub async fn ledger_check(&self, id: &str) -> Result<LedgerCheck, OpsError> {
        let c = self.client(id)?;
        let today = self.today();
        let ym = YearMonth::of(today);
        let (first, month) = (ym.first_day(), ym.to_string());
        let org = c.id.clone();
        let cached = self
            .cache
            .with(move |l| l.range(&org, first, today))
            .await?;
        let tracker = match self.tracker(id).await {
            Ok(t) => t.month(&month).await.map_err(OpsError::from),
            Err(e) => Err(e),
        };
        let (tracker_events, tracker_cost_usd, tracker_error) = match tracker {
            Ok(m) => (Some(m.requests), Some(m.raw_cost_usd.normalize()), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        Ok(LedgerCheck {
            month,
            tracker_events,
            tracker_cost_usd,
            tracker_error,
            cache_events: cached.requests,
            cache_cost_usd: cached.cost_usd.normalize(),
        })
    }

    /// Backs one client's ledger up; `progress` gets (bytes, total). Audited
    /// (`backup`), made or failed.
    pub async fn backup_client(
        &self,
        id: &str,
        dir: Option<&Path>,
        progress: impl FnMut(u64, u64),
    ) -> Result<(BackupManifest, Vec<String>), OpsError> {
        let r = self.backup_client_unaudited(id, dir, progress).await;
        let (outcome, detail, error) = match &r {
            Ok((m, pruned)) => (
                AuditOutcome::Ok,
                serde_json::json!({"file": m.path, "sha256": m.sha256, "size_bytes": m.size_bytes,
                    "events": m.events, "pruned": pruned}),
                None,
            ),
            Err(e) => (
                AuditOutcome::Failed,
                serde_json::json!({}),
                Some(e.to_string()),
            ),
        };
        // A backup is not held back by its record: a failed append is logged instead.
        if let Err(e) = self.audit_log().append(&audit_record(
            &os_user(),
            AuditAction::Backup.as_str(),
            id,
            outcome,
            detail,
            error,
        )) {
            tracing::warn!(client = id, error = %e, "the backup is not in the audit log");
        }
        r
    }

    async fn backup_client_unaudited(
        &self,
        id: &str,
        dir: Option<&Path>,
        progress: impl FnMut(u64, u64),
    ) -> Result<(BackupManifest, Vec<String>), OpsError> {
        let (root, keep) = self.backup_root(dir)?;
        let t = self.tracker(id).await?;
        let cdir = root.join(id);
        std::fs::create_dir_all(&cdir)
            .map_err(|e| backup_err(format!("cannot create {}: {e}", cdir.display())))?;
        let at = Utc::now();
        let name = backup_file_name(id, at, BackupKind::Tracker);
        let tmp = cdir.join(format!(".{name}.partial"));
        let _ = std::fs::remove_file(&tmp);
        let got = t.backup_to(&tmp, progress).await?;
        let id2 = id.to_string();
        let tmp2 = tmp.clone();
        let described = tokio::task::spawn_blocking(move || {
            let org = (!got.org_id.is_empty()).then_some(got.org_id.clone());
            let m = describe(&tmp2, &id2, org.as_deref(), BackupKind::Tracker, at)?;
            if m.sha256 != got.sha256 || m.events != got.events {
                return Err(format!(
                    "the file on disk (SHA-256 {}, {} events) is not what the tracker sent (SHA-256 {}, {} events)",
                    m.sha256, m.events, got.sha256, got.events
                ));
            }
            Ok(m)
        })
        .await
        .map_err(|e| backup_err(e.to_string()))?;
        let m = match described {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(backup_err(format!(
                    "the backup of {id} is not usable and was not kept: {e}"
                )));
            }
        };
        let mut m = m;
        m.file = name;
        let m = keep_file(&tmp, &cdir, m).map_err(backup_err)?;
        let pruned = prune(&cdir, keep);
        tracing::info!(client = id, file = %m.path, events = m.events, sha256 = %m.sha256, pruned = pruned.len(), "ledger backed up");
        Ok((m, pruned))
    }

    /// Backs up one client or every active one; one outcome per client (an error does
    /// not stop the others). `progress` gets (client, bytes, total).
    pub async fn backup_run(
        &self,
        client: Option<&str>,
        dir: Option<&Path>,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<Vec<BackupOutcome>, OpsError> {
        self.backup_root(dir)?;
        let ids: Vec<String> = match client {
            Some(c) => vec![self.client(c)?.id.clone()],
            None => self.fleet.active_clients().map(|c| c.id.clone()).collect(),
        };
        let mut out = Vec::new();
        for id in ids {
            let r = self
                .backup_client(&id, dir, |b, t| progress(&id, b, t))
                .await;
            out.push(match r {
                Ok((m, pruned)) => BackupOutcome {
                    client_id: id,
                    manifest: Some(m),
                    error: None,
                    pruned,
                },
                Err(e) => BackupOutcome {
                    client_id: id,
                    manifest: None,
                    error: Some(e.to_string()),
                    pruned: Vec::new(),
                },
            });
        }
        Ok(out)
    }

    /// The clients whose newest backup is older than `[backup] every` (none without a
    /// schedule): what the console's background loop backs up.
    pub fn backups_due(&self, now: DateTime<Utc>) -> Vec<String> {
        let Some(b) = &self.fleet.backup else {
            return Vec::new();
        };
        let Some(every) = b.every else {
            return Vec::new();
        };
        let every = Days::from_std(every).unwrap_or(Days::days(1));
        self.fleet
            .active_clients()
            .filter(|c| {
                let (list, _) = list_backups(&b.dir.join(&c.id));
                list.iter()
                    .find(|m| m.kind == BackupKind::Tracker)
                    .is_none_or(|m| now - m.taken_at >= every)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// [`Ops::backups_due`] at the clock's time.
    pub fn backups_due_now(&self) -> Vec<String> {
        self.backups_due(Utc::now())
    }

    /// Restores a backup (`file`, else the client's newest) onto the client's tracker,
    /// which must be new (its ledger empty; else the tracker refuses with 409). With
    /// `with_cache`, the console cache's events of the client that the backup lacks (the
    /// usage after it was taken, pulled before the ledger was lost) are added to a copy
    /// of it ([`with_cache_events`]) and that copy is sent: the tracker then holds
    /// everything the console saw, not only what the backup did. Audited
    /// (`backup_restore`): a `started` record first (an unwritable log stops the
    /// restore), then the outcome.
    pub async fn backup_restore(
        &self,
        id: &str,
        file: Option<&Path>,
        dir: Option<&Path>,
        with_cache: bool,
    ) -> Result<RestoreResult, OpsError> {
        self.client(id)?;
        let log = self.audit_log();
        let op = super::change::op_id();
        let record = |outcome, mut detail: serde_json::Value, error| {
            detail["op"] = serde_json::json!(op);
            audit_record(
                &os_user(),
                AuditAction::BackupRestore.as_str(),
                id,
                outcome,
                detail,
                error,
            )
        };
        log.append(&record(
            AuditOutcome::Started,
            serde_json::json!({"file": file.map(|f| f.display().to_string()), "with_cache": with_cache}),
            None,
        ))?;
        let r = self
            .backup_restore_unaudited(id, file, dir, with_cache)
            .await;
        let (outcome, detail, error) = match &r {
            Ok(r) => (
                AuditOutcome::Ok,
                serde_json::json!({"file": r.file, "sha256": r.sha256, "events": r.events,
                    "from_cache": r.from_cache, "with_cache": with_cache}),
                None,
            ),
            Err(e) => (
                AuditOutcome::Failed,
                serde_json::json!({"with_cache": with_cache}),
                Some(e.to_string()),
            ),
        };
        if let Err(e) = log.append(&record(outcome, detail, error)) {
            tracing::warn!(client = id, error = %e, "the restore's outcome is not in the audit log");
        }
        r
    }

    async fn backup_restore_unaudited(
        &self,
        id: &str,
        file: Option<&Path>,
        dir: Option<&Path>,
        with_cache: bool,
    ) -> Result<RestoreResult, OpsError> {
        let (path, manifest) = match file {
            Some(f) => {
                let m = std::fs::read(manifest_path(f))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<BackupManifest>(&b).ok());
                (f.to_path_buf(), m)
            }
            None => {
                let (root, _) = self.backup_root(dir)?;
                let cdir = root.join(id);
                let (list, _) = list_backups(&cdir);
                let m = list.into_iter().next().ok_or_else(|| {
                    backup_err(format!(
                        "no backup of {id} in {}; run `maictl backup run --client {id}` while its tracker runs, or `maictl backup rebuild --client {id}` if it is lost",
                        cdir.display()
                    ))
                })?;
                (PathBuf::from(&m.path), Some(m))
            }
        };
        if let Some(m) = &manifest {
            if m.client_id != id {
                return Err(backup_err(format!(
                    "{} is a backup of {}, not of {id}",
                    path.display(),
                    m.client_id
                )));
            }
        }
        let p2 = path.clone();
        let m2 = manifest.clone();
        let org = tokio::task::spawn_blocking(move || -> Result<String, String> {
            match &m2 {
                Some(m) => verify(m, &p2).map(|()| m.org_id.clone()),
                None => {
                    // A file without a manifest: checked here, then sent with its hash.
                    let facts = inspect_file(&p2).map_err(|e| e.to_string())?;
                    Ok(facts.orgs.into_iter().next().unwrap_or_default())
                }
            }
        })
        .await
        .map_err(|e| backup_err(e.to_string()))?
        .map_err(backup_err)?;
        let org = if org.is_empty() { id.to_string() } else { org };
        // What is sent: the backup itself, or a copy with the cache's later events.
        let (send, from_cache) = if with_cache {
            let cid = id.to_string();
            let cached = self
                .cache
                .with(move |l| {
                    l.events_between(&cid, utc_day(EARLIEST), Utc::now() + Days::days(2))
                })
                .await?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "backup.db".into());
            let staged = path.with_file_name(format!(".restore-{name}.partial"));
            let (p2, s2) = (path.clone(), staged.clone());
            let added =
                tokio::task::spawn_blocking(move || with_cache_events(&p2, &org, &cached, &s2))
                    .await
                    .map_err(|e| backup_err(e.to_string()))?
                    .map_err(|e| {
                        backup_err(format!(
                            "the backup {} with the cache's events of {id} could not be made: {e}",
                            path.display()
                        ))
                    })?;
            (Some(staged), added)
        } else {
            (None, 0)
        };
        let sent = send.clone().unwrap_or_else(|| path.clone());
        let r = async {
            let s2 = sent.clone();
            let sha = tokio::task::spawn_blocking(move || sha256_file(&s2).map(|(s, _)| s))
                .await
                .map_err(|e| backup_err(e.to_string()))?
                .map_err(|e| backup_err(format!("cannot read {}: {e}", sent.display())))?;
            let t = self.tracker(id).await?;
            Ok::<_, OpsError>(t.restore_from(&sent, &sha).await?)
        }
        .await;
        if let Some(s) = &send {
            let _ = std::fs::remove_file(s);
        }
        let r = r?;
        tracing::info!(client = id, file = %path.display(), events = r.events, from_cache, "ledger restored onto the tracker");
        Ok(RestoreResult {
            client_id: id.to_string(),
            file: path.display().to_string(),
            sha256: r.sha256,
            events: r.events,
            restored_at: r.restored_at,
            from_cache,
        })
    }

    /// Rebuilds a client's ledger without a backup from the console cache and
    /// `/activity` (management key and the client's key from the keychain), for `month`
    /// or from the cache's first event to today; written as a backup of kind `rebuilt`.
    pub async fn backup_rebuild(
        &self,
        id: &str,
        month: Option<YearMonth>,
        dir: Option<&Path>,
    ) -> Result<RebuildReport, OpsError> {
        self.backup_rebuild_on(id, month, dir, Utc::now().date_naive())
            .await
    }

    /// [`Ops::backup_rebuild`] as if the current UTC day were `today` (the last day
    /// `/activity` does not cover yet); tests pair it with the simulator's clock.
    pub async fn backup_rebuild_on(
        &self,
        id: &str,
        month: Option<YearMonth>,
        dir: Option<&Path>,
        today: NaiveDate,
    ) -> Result<RebuildReport, OpsError> {
        let (root, _) = self.backup_root(dir)?;
        let c = self.client(id)?.clone();
        let cache_from = {
            let cid = c.id.clone();
            self.cache
                .with(move |l| {
                    l.events_between(&cid, utc_day(EARLIEST), utc_day(today + Days::days(1)))
                        .map(|v| v.first().map(|e| e.created_at.date_naive()))
                })
                .await?
        };
        let (from, to) = match month {
            Some(m) => (m.first_day(), m.last_day().min(today)),
            None => (
                cache_from
                    .unwrap_or(today)
                    .min(today - Days::days(ACTIVITY_WINDOW_DAYS)),
                today,
            ),
        };
        if from > to {
            return Err(backup_err(format!(
                "{from} is after today ({today}); nothing to rebuild"
            )));
        }
        let cached = {
            let cid = c.id.clone();
            self.cache
                .with(move |l| l.events_between(&cid, utc_day(from), utc_day(to + Days::days(1))))
                .await?
        };
        let (activity, activity_error) = match self.client_activity(id).await {
            Ok(rows) => (Some(rows), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let plan =
            plan_rebuild(id, &cached, activity.as_deref(), from, to, today).map_err(backup_err)?;
        let cdir = root.join(id);
        std::fs::create_dir_all(&cdir)
            .map_err(|e| backup_err(format!("cannot create {}: {e}", cdir.display())))?;
        let at = Utc::now();
        let name = backup_file_name(id, at, BackupKind::Rebuilt);
        let tmp = cdir.join(format!(".{name}.partial"));
        let idc = id.to_string();
        let events = plan.events;
        let tmp2 = tmp.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<BackupManifest, String> {
            let _ = std::fs::remove_file(&tmp2);
            {
                let mut l = Ledger::open(&tmp2).map_err(|e| e.to_string())?;
                for chunk in events.chunks(500) {
                    l.record_batch(chunk).map_err(|e| e.to_string())?;
                }
                l.checkpoint().map_err(|e| e.to_string())?;
            }
            let mut m = describe(&tmp2, &idc, Some(&idc), BackupKind::Rebuilt, at)?;
            m.file = name;
            keep_file(&tmp2, &cdir, m)
        })
        .await
        .map_err(|e| backup_err(e.to_string()))?;
        let manifest = match written {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(backup_err(format!(
                    "the rebuilt ledger of {id} could not be written: {e}"
                )));
            }
        };
        let unrecoverable = plan
            .days
            .iter()
            .filter(|d| d.source == DaySource::Unrecoverable)
            .map(|d| d.date)
            .collect();
        Ok(RebuildReport {
            client_id: id.to_string(),
            from,
            to,
            days: plan.days,
            unrecoverable,
            activity_error,
            manifest,
        })
    }

    /// `/activity` rows of the client's key (its hash; the key from the keychain).
    async fn client_activity(&self, id: &str) -> Result<Vec<ActivityRow>, OpsError> {
        let kc = self.keychain("asking OpenRouter's /activity")?.clone();
        let kc2 = kc.clone();
        let mgmt = blocking(move || kc2.management_key()).await?;
        let cid = id.to_string();
        let key = blocking(move || kc.get(SecretKind::OpenRouter, &cid)).await?;
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(|e| OpsError::OpenRouter {
            client: id.to_string(),
            step: "client setup",
            message: e.to_string(),
        })?;
        or.activity(None, Some(&key_hash(&key)))
            .await
            .map_err(|e| OpsError::OpenRouter {
                client: id.to_string(),
                step: "/activity",
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn ev(id: &str, at: &str, model: &str, cost: Decimal) -> UsageEvent {
        UsageEvent {
            generation_id: id.into(),
            org_id: "acme".into(),
            user: UserRef {
                id: Some("u1".into()),
                email: None,
                name: None,
            },
            model: model.into(),
            provider: None,
            tokens: Tokens {
                prompt: 10,
                completion: 5,
                reasoning: 0,
                cached: 0,
            },
            cost_usd: cost,
            source: Source::Proxy,
            state: EventState::Confirmed,
            created_at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            context: ChatContext::default(),
        }
    }

    fn row(date: &str, model: &str, usage: Decimal, requests: u64) -> ActivityRow {
        ActivityRow {
            date: NaiveDate::from_str(date).unwrap(),
            model: model.into(),
            model_permaslug: None,
            endpoint_id: None,
            provider_name: None,
            usage,
            byok_usage_inference: None,
            requests,
            prompt_tokens: 100,
            completion_tokens: 50,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn a_rebuild_takes_the_cache_and_adds_what_activity_counts_beyond_it() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
        let cached = vec![
            ev("g1", "2026-12-08T10:00:00Z", "m/a", dec!(0.10)),
            ev("g2", "2026-12-09T10:00:00Z", "m/a", dec!(0.20)),
            ev("g3", "2026-10-01T10:00:00Z", "m/a", dec!(0.30)),
            ev("g4", "2026-12-10T09:00:00Z", "m/a", dec!(0.01)),
        ];
        let act = vec![
            row("2026-12-08", "m/a", dec!(0.10), 1),
            row("2026-12-09", "m/a", dec!(0.50), 3),
            row("2026-12-09", "m/b", dec!(0.07), 1),
        ];
        let from = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let p = plan_rebuild("acme", &cached, Some(&act), from, today, today).unwrap();
        let day = |s: &str| {
            p.days
                .iter()
                .find(|d| d.date == NaiveDate::from_str(s).unwrap())
                .unwrap()
                .clone()
        };
        assert_eq!(day("2026-12-08").source, DaySource::Cache);
        let d9 = day("2026-12-09");
        assert_eq!(d9.source, DaySource::Activity);
        assert_eq!(d9.activity_usd, dec!(0.37));
        assert_eq!(d9.activity_requests, 3);
        // Older than the window: cached = unverified, nothing cached = unrecoverable.
        assert_eq!(day("2026-10-01").source, DaySource::CacheUnverified);
        assert_eq!(day("2026-10-02").source, DaySource::Unrecoverable);
        // Today is never in /activity.
        assert_eq!(day("2026-12-10").source, DaySource::CacheUnverified);
        // Money is exact: cache + aggregates = cache total + activity's excess.
        let total = p
            .events
            .iter()
            .fold(Decimal::ZERO, |a, e| exact_add(a, e.cost_usd).unwrap());
        assert_eq!(total, dec!(0.98));
        let agg: Vec<_> = p
            .events
            .iter()
            .filter(|e| e.generation_id.starts_with("rebuilt:"))
            .collect();
        assert_eq!(agg.len(), 2);
        assert!(agg
            .iter()
            .all(|e| e.user.id.as_deref() == Some(REBUILT_USER)));
        assert!(agg.iter().all(|e| e.validate().is_ok()));
    }

    #[test]
    fn without_activity_every_day_is_cache_only() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
        let cached = vec![ev("g1", "2026-12-08T10:00:00Z", "m/a", dec!(0.10))];
        let p = plan_rebuild("acme", &cached, None, today - Days::days(3), today, today).unwrap();
        assert_eq!(p.days.len(), 4);
        assert_eq!(p.days[1].source, DaySource::CacheUnverified);
        assert_eq!(p.days[0].source, DaySource::Unrecoverable);
    }

    #[test]
    fn retention_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for (i, t) in [
            "2026-12-01T00:00:00Z",
            "2026-12-02T00:00:00Z",
            "2026-12-03T00:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            let at = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            let f = dir
                .path()
                .join(backup_file_name("acme", at, BackupKind::Tracker));
            {
                let mut l = Ledger::open(&f).unwrap();
                l.record(&ev(&format!("g{i}"), t, "m/a", dec!(0.5)))
                    .unwrap();
            }
            let m = describe(&f, "acme", Some("acme"), BackupKind::Tracker, at).unwrap();
            assert_eq!(m.events, 1);
            assert_eq!(m.months[0].cost_usd, dec!(0.5));
            std::fs::write(manifest_path(&f), serde_json::to_vec(&m).unwrap()).unwrap();
        }
        let gone = prune(dir.path(), 2);
        assert_eq!(gone, vec!["acme-20261201T000000000Z.db".to_string()]);
        let (left, problems) = list_backups(dir.path());
        assert_eq!(left.len(), 2);
        assert!(problems.is_empty());
        assert_eq!(left[0].file, "acme-20261203T000000000Z.db");
        verify(&left[0], Path::new(&left[0].path)).unwrap();
        // A changed file no longer matches its manifest.
        std::fs::write(&left[0].path, b"not a ledger").unwrap();
        assert!(verify(&left[0], Path::new(&left[0].path)).is_err());
    }
}
