//! Offboarding: a client leaves the fleet but stays in its history.
//!
//! The order protects what cannot be had again. First what needs nothing removed: the
//! host answers and the management key is there; a last sync pulls the tracker's events
//! into the console cache; the month's (and last month's) billing state is read (read
//! only). Then the key is disabled, so nothing more can be spent. The containers are
//! stopped (the tracker drains and closes its ledger), the tracker's data volume is
//! downloaded through the Docker API into `<data_dir>/offboarded/<id>-<time>/` as
//! `tracker-data.tar.gz`, and its ledger is turned into a consistent standalone SQLite
//! file (`ledger.sqlite`, SQLite's `VACUUM INTO` over the stopped tracker's files, WAL
//! included), checked (`integrity_check`) and summed. Only then are the containers,
//! network and volumes removed (the data volume only when its archive and export are
//! good), the keychain entries deleted and the fleet entry marked `offboarded`, so past
//! months still bill and report while discovery and the fleet table skip the client.
//! A stop halfway says what was done; running it again goes on from there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use mai_core::openrouter::{
    key_hash, OpenRouterClient, OpenRouterError, SecretKey, UpdateKeyRequest,
};
use mai_core::time::YearMonth;
use rust_decimal::Decimal;
use serde_json::json;

use super::{
    archive_body, step_name, BillingMonthCheck, ClientPair, LifecycleError, LifecycleProgress,
    LifecycleStep as S, OffboardCheck, OffboardResult, Reporter, StepState, TRACKER_DATA_DIR,
    TRACKER_LEDGER_FILE,
};
use crate::audit::{os_user, AuditLog, AuditRecord};
use crate::docker;
use crate::fleet::{Client, Fleet, HostMode};
use crate::fleet_edit::FleetDoc;
use crate::keys::{mask, SecretKind};
use crate::ops::{blocking, Ops, OpsError};
use crate::swarm;
use bollard::Docker;

/// How long the tracker gets to drain and close its ledger when stopped.
pub const TRACKER_STOP_GRACE_S: i32 = 30;

/// What a ledger export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSummary {
    pub events: u64,
    pub raw_cost_usd: Decimal,
}

/// Where offboarding writes a client's archive.
pub fn archive_dir(data_dir: &Path, id: &str, at: chrono::DateTime<Utc>) -> PathBuf {
    data_dir
        .join("offboarded")
        .join(format!("{id}-{}", at.format("%Y%m%dT%H%M%SZ")))
}

/// Turns the tracker's ledger files (`tracker.sqlite` and, if present, its `-wal`) in
/// `dir` into one consistent file `out` with SQLite's own snapshot (`VACUUM INTO`),
/// checks it and sums its events. The WAL is applied by opening the copy; nothing reads
/// a live database here: the tracker was stopped before its volume was read.
pub fn export_ledger(db: &Path, out: &Path) -> Result<LedgerSummary, String> {
    let err = |what: &str, e: rusqlite::Error| format!("{what} {}: {e}", db.display());
    let conn = rusqlite::Connection::open(db).map_err(|e| err("cannot open the ledger copy", e))?;
    if out.exists() {
        std::fs::remove_file(out).map_err(|e| format!("cannot replace {}: {e}", out.display()))?;
    }
    conn.execute("VACUUM INTO ?1", [out.to_string_lossy().as_ref()])
        .map_err(|e| err("cannot export the ledger", e))?;
    drop(conn);
    summarize_ledger(out)
}

/// Checks a ledger file and sums its events (exactly: costs are decimal text).
pub fn summarize_ledger(path: &Path) -> Result<LedgerSummary, String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("cannot check {}: {e}", path.display()))?;
    if check != "ok" {
        return Err(format!(
            "{} fails SQLite's integrity check: {check}",
            path.display()
        ));
    }
    let mut stmt = conn
        .prepare("SELECT cost_usd FROM events")
        .map_err(|e| format!("{} is not a tracker ledger: {e}", path.display()))?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut s = LedgerSummary {
        events: 0,
        raw_cost_usd: Decimal::ZERO,
    };
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let text: String = row.get(0).map_err(|e| e.to_string())?;
        let cost = Decimal::from_str(&text)
            .map_err(|_| format!("event cost {text:?} is not a decimal"))?;
        s.raw_cost_usd = s
            .raw_cost_usd
            .checked_add(cost)
            .ok_or_else(|| "the ledger's total cost overflows".to_string())?;
        s.events += 1;
    }
    s.raw_cost_usd = s.raw_cost_usd.normalize();
    Ok(s)
}

/// Pulls the ledger files out of a `tracker-data.tar.gz` archive into `dir`; returns the
/// database's path.
pub fn unpack_ledger(archive: &Path, dir: &Path) -> Result<PathBuf, String> {
    let f = std::fs::File::open(archive)
        .map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let wal = format!("{TRACKER_LEDGER_FILE}-wal");
    let mut found = None;
    for entry in a
        .entries()
        .map_err(|e| format!("{} is not a tar.gz archive: {e}", archive.display()))?
    {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        // Only the ledger and its write-ahead log, directly under the volume's root.
        if path.components().count() != 2 || !(name == TRACKER_LEDGER_FILE || name == wal) {
            continue;
        }
        let to = dir.join(&name);
        entry
            .unpack(&to)
            .map_err(|e| format!("cannot unpack {name}: {e}"))?;
        if name == TRACKER_LEDGER_FILE {
            found = Some(to);
        }
    }
    found.ok_or_else(|| {
        format!(
            "the archive {} holds no {TRACKER_LEDGER_FILE}",
            archive.display()
        )
    })
}

type StepError = (S, String);

impl Ops {
    /// The month's billing state (and last month's) of a client, read only.
    async fn billing_check(&self, id: &str) -> Vec<BillingMonthCheck> {
        let this = YearMonth::of(self.today());
        let mut out = Vec::new();
        for m in [this.prev(), this] {
            let month = m.to_string();
            let (row, note) = match self.billing_report_for(&month, Some(id)).await {
                Ok(r) => {
                    let rep = mai_wire::console::BillingReport::from(&r);
                    let row = rep.clients.into_iter().find(|c| c.org_id == id);
                    let note = match (&row, rep.rate_error) {
                        (None, _) => Some("no billing row for this client".to_string()),
                        (Some(_), Some(e)) => Some(format!("no PLN figures: {e}")),
                        _ => None,
                    };
                    (row, note)
                }
                Err(e) => (None, Some(e.to_string())),
            };
            out.push(BillingMonthCheck { month, row, note });
        }
        out
    }

    /// The fleet file as it is now, and the client in it.
    fn current_client(&self, id: &str) -> Result<(Fleet, Client), OpsError> {
        let fleet = Fleet::load(&self.fleet.path).unwrap_or_else(|_| self.fleet.clone());
        let c = fleet
            .client(id)
            .cloned()
            .ok_or_else(|| OpsError::UnknownClient(id.to_string()))?;
        Ok((fleet, c))
    }

    /// What offboarding `id` will do, for the operator to confirm: the billing state,
    /// the objects on its host, the key. Changes nothing.
    pub async fn offboard_check(&self, id: &str) -> Result<OffboardCheck, OpsError> {
        let (fleet, c) = self.current_client(id)?;
        let mut warnings = Vec::new();
        let host = fleet.host(&c.host).cloned().expect("validated at parse");
        let objects = match docker::connect(&host).await {
            Ok(d) => match docker::list_client_objects(&d, &host.name, id).await {
                Ok(o) => o,
                Err(e) => {
                    warnings.push(e.to_string());
                    Default::default()
                }
            },
            Err(e) => {
                warnings.push(format!("{e}; offboarding needs the host to remove the containers and archive the ledger"));
                Default::default()
            }
        };
        let key_label = match &self.keychain {
            Some(kc) => {
                let kc = kc.clone();
                let id2 = id.to_string();
                match blocking(move || kc.get(SecretKind::OpenRouter, &id2)).await {
                    Ok(k) => Some(mask(&k)),
                    Err(e) => {
                        warnings.push(format!("no OpenRouter key to disable: {e}"));
                        None
                    }
                }
            }
            None => {
                warnings.push(format!(
                    "the keychain is not available ({}), so the client's key cannot be disabled from here",
                    self.keychain_error().unwrap_or_default()
                ));
                None
            }
        };
        if let Some(day) = c.offboarded {
            warnings.push(format!(
                "{id} was offboarded on {day}; nothing is left to do"
            ));
        }
        Ok(OffboardCheck {
            client_id: id.to_string(),
            legal_name: c.legal_name.clone(),
            host: c.host.clone(),
            offboarded: c.offboarded,
            billing: self.billing_check(id).await,
            containers: objects
                .containers
                .into_iter()
                .chain(objects.services.iter().map(|s| format!("service {s}")))
                .collect(),
            networks: objects.networks,
            volumes: objects.volumes,
            key_label,
            archive_dir: self
                .fleet
                .console
                .data_dir
                .join("offboarded")
                .display()
                .to_string(),
            warnings,
        })
    }

    /// Offboards `id` (see the module docs); `progress` sees every step.
    pub async fn offboard(
        &self,
        id: &str,
        progress: &(dyn Fn(LifecycleProgress) + Send + Sync),
    ) -> Result<OffboardResult, OpsError> {
        let (fleet, c) = self.current_client(id)?;
        let r = Reporter::new(id, progress);
        let mut done: Vec<String> = Vec::new();
        let result = self.offboard_steps(&fleet, &c, &r, &mut done).await;
        let audit = AuditLog::in_dir(&self.fleet.console.data_dir);
        match result {
            Ok(res) => {
                audit.append(&AuditRecord {
                    at: Utc::now(),
                    actor: os_user(),
                    action: "offboard".into(),
                    client: id.to_string(),
                    subject_hash: None,
                    outcome: if res.warnings.is_empty() {
                        "ok"
                    } else {
                        "partial"
                    }
                    .into(),
                    detail: json!({
                        "host": c.host, "key_disabled": res.key_disabled,
                        "ledger_export": res.ledger_export, "ledger_events": res.ledger_events,
                        "ledger_raw_cost_usd": res.ledger_raw_cost_usd.to_string(),
                        "archive": res.archive, "removed_containers": res.removed_containers,
                        "removed_volumes": res.removed_volumes, "warnings": res.warnings,
                    }),
                    error: None,
                })?;
                tracing::info!(client = %id, "client offboarded");
                Ok(res)
            }
            Err((step, message)) => {
                r.report(step, StepState::Failed, Some(message.clone()));
                let done = if done.is_empty() {
                    "Nothing was changed yet".to_string()
                } else {
                    format!(
                        "Already done: {}; run the offboarding again to go on",
                        done.join("; ")
                    )
                };
                let _ = audit.append(&AuditRecord {
                    at: Utc::now(),
                    actor: os_user(),
                    action: "offboard".into(),
                    client: id.to_string(),
                    subject_hash: None,
                    outcome: "failed".into(),
                    detail: json!({ "step": step_name(step), "done": done }),
                    error: Some(message.clone()),
                });
                Err(LifecycleError::Offboard {
                    client: id.to_string(),
                    step: step_name(step),
                    message,
                    done,
                }
                .into())
            }
        }
    }

    async fn offboard_steps(
        &self,
        fleet: &Fleet,
        c: &Client,
        r: &Reporter<'_>,
        done: &mut Vec<String>,
    ) -> Result<OffboardResult, StepError> {
        let id = c.id.as_str();
        if let Some(day) = c.offboarded {
            return Err((
                S::FinalSync,
                format!("{id} was already offboarded on {day}"),
            ));
        }
        let host = fleet.host(&c.host).cloned().expect("validated at parse");
        let pair = ClientPair::of(id);
        let mut warnings = Vec::new();

        // Nothing is changed until the host answers and the key can be disabled.
        let d: Docker = docker::connect(&host).await.map_err(|e| {
            (S::FinalSync, format!("{e}; nothing was changed: offboarding needs the host to archive the ledger and remove the containers"))
        })?;
        let kc = self
            .keychain("offboarding a client")
            .map_err(|e| (S::FinalSync, e.to_string()))?
            .clone();
        let kc2 = kc.clone();
        let mgmt = blocking(move || kc2.management_key())
            .await
            .map_err(|e| (S::FinalSync, e.to_string()))?;
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(|e| (S::FinalSync, e.to_string()))?;

        r.start(S::FinalSync);
        if self.fleet.client(id).is_some() {
            let o = self.sync_one(id).await;
            if o.ok {
                r.done(
                    S::FinalSync,
                    Some(format!("{} events pulled", o.pulled.unwrap_or(0))),
                );
            } else {
                let w = format!(
                    "the last sync did not complete ({}): the console cache may miss the last events; the exported ledger has them",
                    o.error.unwrap_or_default()
                );
                r.report(S::FinalSync, StepState::Warning, Some(w.clone()));
                warnings.push(w);
            }
        } else {
            r.report(
                S::FinalSync,
                StepState::Skipped,
                Some("the console loaded the fleet before this client; restart it to sync".into()),
            );
        }

        r.start(S::BillingCheck);
        let billing = self.billing_check(id).await;
        r.done(
            S::BillingCheck,
            Some(
                billing
                    .iter()
                    .map(|b| match &b.row {
                        Some(row) => format!(
                            "{}: {:?}{}",
                            b.month,
                            row.status,
                            row.invoice_number
                                .as_deref()
                                .map(|n| format!(" ({n})"))
                                .unwrap_or_default()
                        ),
                        None => format!("{}: {}", b.month, b.note.as_deref().unwrap_or("-")),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        );

        r.start(S::DisableKey);
        let id2 = id.to_string();
        let kc3 = kc.clone();
        let key = blocking(move || Ok(kc3.get(SecretKind::OpenRouter, &id2).ok()))
            .await
            .unwrap_or(None);
        let mut key_disabled = false;
        match &key {
            Some(k) => {
                let disable = UpdateKeyRequest {
                    disabled: Some(true),
                    ..Default::default()
                };
                match or.keys_update(&key_hash(k), &disable).await {
                    Ok(_) => {
                        key_disabled = true;
                        done.push(format!("OpenRouter key {} disabled", mask(k)));
                        r.done(S::DisableKey, Some(mask(k)));
                    }
                    Err(OpenRouterError::Api(a)) if a.is_not_found() => {
                        let w = format!(
                            "the key {} is not on the OpenRouter account (already deleted?)",
                            mask(k)
                        );
                        r.report(S::DisableKey, StepState::Warning, Some(w.clone()));
                        warnings.push(w);
                    }
                    Err(e) => {
                        return Err((S::DisableKey, format!("{e}; the key {} stays enabled and nothing was removed: retry when OpenRouter answers", mask(k))));
                    }
                }
            }
            None => {
                let w = format!("the keychain holds no OpenRouter key for {id}: disable its key on openrouter.ai by hand");
                r.report(S::DisableKey, StepState::Warning, Some(w.clone()));
                warnings.push(w);
            }
        }

        let mut objects = docker::list_client_objects(&d, &host.name, id)
            .await
            .map_err(|e| (S::StopContainers, e.to_string()))?;
        r.start(S::StopContainers);
        // Where the tracker's volume is read from: the stopped tracker container, or on a
        // swarm a container created (never started) for that once its service is gone.
        let mut ledger_source = pair.tracker_container.clone();
        if host.mode == HostMode::Swarm {
            let tracker_image = match swarm::service(&d, &host.name, &pair.tracker_container)
                .await
                .map_err(|e| (S::StopContainers, e.to_string()))?
            {
                Some(svc) => swarm::spec_image(&svc),
                None => None,
            };
            for name in [&pair.chat_container, &pair.tracker_container] {
                if objects.services.contains(name) {
                    swarm::remove_service(&d, &host.name, name)
                        .await
                        .map_err(|e| (S::StopContainers, e.to_string()))?;
                }
            }
            // The tracker drains and closes its ledger within its stop grace period.
            swarm::wait_containers_gone(
                &d,
                &host.name,
                id,
                &[],
                Duration::from_secs(TRACKER_STOP_GRACE_S as u64 + 60),
            )
            .await
            .map_err(|e| (S::StopContainers, e.to_string()))?;
            done.push(format!("services removed: {}", objects.services.join(", ")));
            if let (Some(image), true) = (
                tracker_image,
                objects.volumes.contains(&pair.tracker_volume),
            ) {
                docker::create_container(
                    &d,
                    &host.name,
                    &pair.archive_container,
                    archive_body(&pair, &image),
                )
                .await
                .map_err(|e| (S::StopContainers, e.to_string()))?;
                ledger_source = pair.archive_container.clone();
            }
            objects = docker::list_client_objects(&d, &host.name, id)
                .await
                .map_err(|e| (S::StopContainers, e.to_string()))?;
            r.done(
                S::StopContainers,
                Some(format!("services removed; {ledger_source}")),
            );
        } else {
            for name in [&pair.chat_container, &pair.tracker_container] {
                if objects.containers.contains(name) {
                    let grace = if name == &pair.tracker_container {
                        TRACKER_STOP_GRACE_S
                    } else {
                        10
                    };
                    docker::stop_container(&d, &host.name, name, grace)
                        .await
                        .map_err(|e| (S::StopContainers, e.to_string()))?;
                }
            }
            done.push("containers stopped".into());
            r.done(S::StopContainers, Some(objects.containers.join(", ")));
        }

        // The archive and the export, from the stopped tracker's volume.
        let now = Utc::now();
        let dir = archive_dir(&self.fleet.console.data_dir, id, now);
        let mut ledger_export = None;
        let mut summary = LedgerSummary {
            events: 0,
            raw_cost_usd: Decimal::ZERO,
        };
        let mut archive = None;
        let mut archive_bytes = 0;
        if objects.containers.contains(&ledger_source) {
            r.start(S::ArchiveVolume);
            std::fs::create_dir_all(&dir).map_err(|e| {
                (
                    S::ArchiveVolume,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
            let path = dir.join("tracker-data.tar.gz");
            let file = std::fs::File::create(&path).map_err(|e| {
                (
                    S::ArchiveVolume,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            docker::download_tar(&d, &host.name, &ledger_source, TRACKER_DATA_DIR, &mut gz)
                .await
                .map_err(|e| (S::ArchiveVolume, e.to_string()))?;
            let file = gz
                .finish()
                .and_then(|mut f| f.flush().and(f.sync_all()).map(|_| f))
                .map_err(|e| {
                    (
                        S::ArchiveVolume,
                        format!("cannot finish {}: {e}", path.display()),
                    )
                })?;
            archive_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            done.push(format!("volume archived to {}", path.display()));
            r.done(
                S::ArchiveVolume,
                Some(format!("{} ({archive_bytes} bytes)", path.display())),
            );
            archive = Some(path.display().to_string());

            r.start(S::ExportLedger);
            let tmp = dir.join(".ledger-files");
            let exported = dir.join("ledger.sqlite");
            let res = unpack_ledger(&path, &tmp).and_then(|db| export_ledger(&db, &exported));
            let _ = std::fs::remove_dir_all(&tmp);
            summary = res.map_err(|e| {
                (
                    S::ExportLedger,
                    format!(
                        "{e}; the containers are stopped, the volume {} is kept",
                        pair.tracker_volume
                    ),
                )
            })?;
            done.push(format!("ledger exported to {}", exported.display()));
            r.done(
                S::ExportLedger,
                Some(format!(
                    "{}: {} events, ${} raw",
                    exported.display(),
                    summary.events,
                    summary.raw_cost_usd
                )),
            );
            ledger_export = Some(exported.display().to_string());
        } else {
            let w = format!(
                "no tracker container {} on {}: the ledger was not exported in this run and its volume {} is kept; archive it by hand",
                pair.tracker_container, host.name, pair.tracker_volume
            );
            r.report(S::ExportLedger, StepState::Warning, Some(w.clone()));
            warnings.push(w);
        }

        r.start(S::RemoveContainers);
        for name in &objects.containers {
            docker::remove_container(&d, &host.name, name)
                .await
                .map_err(|e| (S::RemoveContainers, e.to_string()))?;
        }
        done.push("containers removed".into());
        r.done(S::RemoveContainers, Some(objects.containers.join(", ")));
        r.start(S::RemoveNetwork);
        for n in &objects.networks {
            swarm::remove_network_when_free(&d, &host.name, n, Duration::from_secs(30))
                .await
                .map_err(|e| (S::RemoveNetwork, e.to_string()))?;
        }
        r.done(S::RemoveNetwork, Some(objects.networks.join(", ")));
        r.start(S::RemoveVolumes);
        let mut removed_volumes = Vec::new();
        for v in &objects.volumes {
            if v == &pair.tracker_volume && ledger_export.is_none() {
                continue;
            }
            docker::remove_volume(&d, &host.name, v)
                .await
                .map_err(|e| (S::RemoveVolumes, e.to_string()))?;
            removed_volumes.push(v.clone());
        }
        for sec in &objects.secrets {
            swarm::remove_secret(&d, &host.name, sec)
                .await
                .map_err(|e| (S::RemoveVolumes, e.to_string()))?;
            removed_volumes.push(format!("secret {sec}"));
        }
        done.push("network and volumes removed".into());
        r.done(S::RemoveVolumes, Some(removed_volumes.join(", ")));

        r.start(S::ForgetSecrets);
        let id2 = id.to_string();
        blocking(move || {
            kc.delete(SecretKind::OpenRouter, &id2)?;
            kc.delete(SecretKind::TrackerToken, &id2)?;
            kc.delete(SecretKind::TrackerReadToken, &id2)
        })
        .await
        .map_err(|e| (S::ForgetSecrets, e.to_string()))?;
        done.push("keychain entries deleted".into());
        r.done(S::ForgetSecrets, None);

        r.start(S::MarkOffboarded);
        let today = self.today();
        let mut doc =
            FleetDoc::load(&self.fleet.path).map_err(|e| (S::MarkOffboarded, e.to_string()))?;
        doc.set_offboarded(id, today)
            .map_err(|e| (S::MarkOffboarded, e.to_string()))?;
        doc.save().map_err(|e| (S::MarkOffboarded, e.to_string()))?;
        r.done(
            S::MarkOffboarded,
            Some(format!(
                "offboarded = \"{today}\" in {}",
                self.fleet.path.display()
            )),
        );

        Ok(OffboardResult {
            client_id: id.to_string(),
            offboarded_on: today,
            billing,
            key_disabled,
            removed_containers: objects.containers.clone(),
            removed_networks: objects.networks.clone(),
            removed_volumes,
            ledger_export,
            ledger_events: summary.events,
            ledger_raw_cost_usd: summary.raw_cost_usd,
            archive,
            archive_bytes,
            warnings,
            audit_log: AuditLog::in_dir(&self.fleet.console.data_dir)
                .path()
                .display()
                .to_string(),
            elapsed_ms: r.elapsed_ms(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_ledger_with_its_wal_exports_as_one_consistent_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tracker.sqlite");
        let mut l = mai_core::ledger::Ledger::open(&db).unwrap();
        let at: chrono::DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
        for (i, cost) in ["0.000123", "0.5", "1.25"].iter().enumerate() {
            let ev = mai_core::usage::UsageEvent {
                generation_id: format!("gen-{i}"),
                org_id: "acme".into(),
                user: Default::default(),
                model: "openai/gpt-4o-mini".into(),
                provider: None,
                tokens: Default::default(),
                cost_usd: Decimal::from_str(cost).unwrap(),
                source: mai_core::usage::Source::Proxy,
                state: mai_core::usage::EventState::Confirmed,
                created_at: at,
                context: Default::default(),
            };
            l.record(&ev).unwrap();
        }
        // Still open (as a stopped tracker's files are: WAL not checkpointed): the
        // export reads the WAL too.
        let out = dir.path().join("export").join("ledger.sqlite");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let s = export_ledger(&db, &out).unwrap();
        assert_eq!(s.events, 3);
        assert_eq!(s.raw_cost_usd, Decimal::from_str("1.750123").unwrap());
        drop(l);
        assert_eq!(summarize_ledger(&out).unwrap(), s);
        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, b"not a database at all, just text").unwrap();
        assert!(summarize_ledger(&garbage).is_err());
    }
}
