//! Updating the fleet's images: per client the image running versus the target; one
//! client first (the canary), health-gated; then the rest, a few at a time. A client
//! whose gate fails is put back on its previous container (same configuration, same
//! volumes: [`crate::docker::recreate_with_image`] parks the old container instead of
//! removing it), and a canary that fails stops the rollout.
//!
//! The health gate of a client, within `gate_timeout_ms`:
//! - the tracker's `/readyz` answers 200 (its container still running);
//! - a probe request goes through the tracker to OpenRouter and is in its ledger
//!   (`POST /api/v1/admin/probe`, then the event read back by its `seq`);
//! - the chat app answers its health check (Docker's health status of its image's
//!   HEALTHCHECK, Open WebUI's calls `/health`; without one: still running).
//!
//! Ledgers are never touched: the tracker's data volume moves to the new container and
//! back as it is. Every client's update is in the audit log (`image_update`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use futures::StreamExt;

use super::change::{audit_record, op_id};
use super::{Ops, OpsError};
use crate::audit::os_user;
use crate::docker::{self, ContainerRole, Liveness, Recreated};
use crate::fleet::Client;
use crate::swarm;

pub use mai_wire::change::{AuditOutcome, ClientField, FieldChange};
pub use mai_wire::update::{
    ClientOutcome, ClientUpdatePreview, ClientUpdateResult, GateCheck, GateResult, ImageTarget,
    TargetState, UpdatePhase, UpdatePlan, UpdatePreview, UpdateProgress, UpdateSummary,
};

/// The audit log's name of one client's image update.
pub const ACTION: &str = "image_update";

/// How long a container gets to stop cleanly when it is replaced.
const STOP_GRACE_S: i32 = 10;

/// How often a gate looks again.
const GATE_POLL: Duration = Duration::from_millis(200);

/// Where progress goes (the console's event, maictl's stderr); called from the
/// concurrent updates.
pub type Progress<'a> = &'a (dyn Fn(UpdateProgress) + Send + Sync);

/// The gate check that stands for a container of `role` failing to run.
fn gate_check_of(role: ContainerRole) -> GateCheck {
    match role {
        ContainerRole::Tracker => GateCheck::TrackerReady,
        ContainerRole::Chat => GateCheck::ChatHealthy,
    }
}

fn field_of(role: ContainerRole) -> ClientField {
    match role {
        ContainerRole::Tracker => ClientField::TrackerImage,
        ContainerRole::Chat => ClientField::ChatImage,
    }
}

/// Checks the plan's numbers and names (what the preview cannot decide for itself).
pub fn check_plan(plan: &UpdatePlan, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&plan.tracker_image) && blank(&plan.chat_image) {
        return Err("name the new image: a tracker image, a chat image, or both".into());
    }
    if !(1..=32).contains(&plan.parallelism) {
        return Err(format!(
            "parallelism {} is out of range; update 1 to 32 clients at once",
            plan.parallelism
        ));
    }
    if !(1_000..=3_600_000).contains(&plan.gate_timeout_ms) {
        return Err(format!(
            "a health gate of {} ms is out of range; give 1 s to 1 h",
            plan.gate_timeout_ms
        ));
    }
    for id in plan.clients.iter().chain(plan.canary.iter()) {
        if !known(id) {
            return Err(format!(
                "unknown client {id:?}; it is not in the fleet file"
            ));
        }
    }
    if let Some(c) = &plan.canary {
        if !plan.clients.is_empty() && !plan.clients.contains(c) {
            return Err(format!(
                "the canary {c:?} is not one of the clients to update"
            ));
        }
    }
    Ok(())
}

/// The canary: the one named, else the first client that will be updated.
pub fn pick_canary(plan: &UpdatePlan, clients: &[ClientUpdatePreview]) -> Option<String> {
    let ready = |c: &&ClientUpdatePreview| c.needs_update() && c.blocker().is_none();
    match &plan.canary {
        Some(id) => clients
            .iter()
            .find(|c| &c.client_id == id)
            .filter(ready)
            .map(|c| c.client_id.clone()),
        None => clients.iter().find(ready).map(|c| c.client_id.clone()),
    }
}

/// Counts of a summary from its results.
pub fn summarize(
    clients: Vec<ClientUpdateResult>,
    canary: Option<String>,
    stopped: Option<String>,
    elapsed: Duration,
) -> UpdateSummary {
    let n = |o: ClientOutcome| clients.iter().filter(|c| c.outcome == o).count() as u32;
    UpdateSummary {
        updated: n(ClientOutcome::Updated),
        rolled_back: n(ClientOutcome::RolledBack),
        skipped: n(ClientOutcome::Skipped),
        failed: n(ClientOutcome::Failed),
        canary,
        stopped,
        clients,
        elapsed_ms: elapsed.as_millis() as u64,
    }
}

fn not_touched(
    p: &ClientUpdatePreview,
    outcome: ClientOutcome,
    detail: String,
) -> ClientUpdateResult {
    ClientUpdateResult {
        client_id: p.client_id.clone(),
        outcome,
        canary: false,
        changes: Vec::new(),
        gate: Vec::new(),
        detail,
        elapsed_ms: 0,
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Ops {
    fn update_selection(&self, plan: &UpdatePlan) -> Result<Vec<Client>, OpsError> {
        check_plan(plan, &|id| self.fleet.client(id).is_some()).map_err(OpsError::Update)?;
        if !self.docker_enabled {
            return Err(OpsError::Update(
                "Docker is switched off for this console (maictl --no-docker, MAI_NO_DOCKER), and images are updated through it; run without it".into(),
            ));
        }
        Ok(self
            .fleet
            .clients
            .iter()
            .filter(|c| plan.clients.is_empty() || plan.clients.contains(&c.id))
            .cloned()
            .collect())
    }

    /// Per client the image running versus the target; nothing is changed.
    pub async fn update_preview(&self, plan: &UpdatePlan) -> Result<UpdatePreview, OpsError> {
        Ok(self.preview_with_hosts(plan).await?.0)
    }

    async fn preview_with_hosts(
        &self,
        plan: &UpdatePlan,
    ) -> Result<(UpdatePreview, HashMap<String, Docker>), OpsError> {
        let clients = self.update_selection(plan)?;
        let targets: Vec<(ContainerRole, String)> = [
            (ContainerRole::Tracker, &plan.tracker_image),
            (ContainerRole::Chat, &plan.chat_image),
        ]
        .into_iter()
        .filter_map(|(r, i)| {
            i.as_deref()
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| (r, i.to_string()))
        })
        .collect();
        let mut hosts: HashMap<String, Docker> = HashMap::new();
        let mut host_view: HashMap<String, Result<HostView, String>> = HashMap::new();
        for c in &clients {
            if host_view.contains_key(&c.host) {
                continue;
            }
            let host = self.fleet.host(&c.host).expect("validated at parse");
            let view = async {
                let d = docker::connect(host).await?;
                let containers = docker::list_clients(&d, host).await?;
                let mut images = HashMap::new();
                for (_, img) in &targets {
                    images.insert(img.clone(), docker::image(&d, &host.name, img).await?);
                }
                let mut image_ids = HashMap::new();
                for ct in &containers {
                    if host.mode == crate::fleet::HostMode::Swarm {
                        // A service's row: the image id its spec runs.
                        if let Ok(Some(svc)) = swarm::service(&d, &host.name, &ct.name).await {
                            if let Some(img) = swarm::spec_image(&svc) {
                                image_ids.insert(ct.id.clone(), img);
                            }
                        }
                        continue;
                    }
                    if let Ok(i) = d
                        .inspect_container(
                            &ct.id,
                            None::<bollard::query_parameters::InspectContainerOptions>,
                        )
                        .await
                    {
                        image_ids.insert(ct.id.clone(), i.image.unwrap_or_default());
                    }
                }
                Ok::<_, docker::DockerError>((
                    d,
                    HostView {
                        containers,
                        images,
                        image_ids,
                    },
                ))
            }
            .await;
            match view {
                Ok((d, v)) => {
                    hosts.insert(c.host.clone(), d);
                    host_view.insert(c.host.clone(), Ok(v));
                }
                Err(e) => {
                    host_view.insert(c.host.clone(), Err(e.to_string()));
                }
            }
        }
        let mut out = Vec::new();
        for c in &clients {
            let view = &host_view[&c.host];
            let targets = targets
                .iter()
                .map(|(role, img)| image_target(c, *role, img, view))
                .collect();
            out.push(ClientUpdatePreview {
                client_id: c.id.clone(),
                host: c.host.clone(),
                targets,
            });
        }
        let canary = pick_canary(plan, &out);
        Ok((
            UpdatePreview {
                clients: out,
                canary,
            },
            hosts,
        ))
    }

    /// Updates the images of the plan's clients (module documentation): the canary
    /// alone, then the rest `parallelism` at a time, each health-gated and rolled back
    /// when its gate fails. `progress` gets the plan, each phase, each gate check and
    /// each client's result.
    pub async fn update_images(
        &self,
        plan: &UpdatePlan,
        progress: Progress<'_>,
    ) -> Result<UpdateSummary, OpsError> {
        let started = Instant::now();
        let (preview, hosts) = self.preview_with_hosts(plan).await?;
        progress(UpdateProgress::Planned {
            preview: preview.clone(),
        });
        if let (Some(want), None) = (&plan.canary, &preview.canary) {
            let why = preview
                .clients
                .iter()
                .find(|c| &c.client_id == want)
                .and_then(|c| c.blocker().map(|b| b.detail.clone().unwrap_or_default()))
                .unwrap_or_else(|| "it already runs the target images".into());
            return Err(OpsError::Update(format!(
                "the canary {want} cannot be updated: {why}; nothing was changed"
            )));
        }
        let gate_timeout = Duration::from_millis(plan.gate_timeout_ms);
        let mut results: Vec<ClientUpdateResult> = Vec::new();
        let mut todo: Vec<&ClientUpdatePreview> = Vec::new();
        for p in &preview.clients {
            let r = if let Some(b) = p.blocker() {
                Some(not_touched(
                    p,
                    ClientOutcome::Failed,
                    format!(
                        "not updated: {}",
                        b.detail.clone().unwrap_or_else(|| format!("{:?}", b.state))
                    ),
                ))
            } else if !p.needs_update() {
                let why = if p
                    .targets
                    .iter()
                    .all(|t| t.state == TargetState::NoContainer)
                {
                    "no container to update on its host"
                } else {
                    "already runs the target image"
                };
                Some(not_touched(p, ClientOutcome::Skipped, why.into()))
            } else {
                None
            };
            match r {
                Some(r) => {
                    progress(UpdateProgress::Finished { result: r.clone() });
                    results.push(r);
                }
                None => todo.push(p),
            }
        }
        let mut stopped = None;
        if let Some(canary) = &preview.canary {
            let p = todo
                .iter()
                .position(|p| &p.client_id == canary)
                .map(|i| todo.remove(i))
                .expect("the canary needs the update");
            let r = self
                .update_client(&hosts, p, true, gate_timeout, progress)
                .await;
            let ok = r.outcome == ClientOutcome::Updated;
            if !ok {
                stopped = Some(format!(
                    "the canary {canary} was not updated ({}: {}); the other clients were left as they are",
                    match r.outcome {
                        ClientOutcome::RolledBack => "rolled back",
                        _ => "failed",
                    },
                    r.detail
                ));
            }
            results.push(r);
            if !ok {
                for p in todo.drain(..) {
                    let r = not_touched(
                        p,
                        ClientOutcome::Skipped,
                        format!("not updated: the canary {canary} failed its update"),
                    );
                    progress(UpdateProgress::Finished { result: r.clone() });
                    results.push(r);
                }
            }
        }
        // The futures are made first and then run a few at a time (a stream mapped by a
        // closure over borrowed previews would not be `Send` for the console's command).
        let jobs: Vec<_> = todo
            .into_iter()
            .map(|p| self.update_client(&hosts, p, false, gate_timeout, progress))
            .collect();
        let rest: Vec<ClientUpdateResult> = futures::stream::iter(jobs)
            .buffer_unordered(plan.parallelism.max(1) as usize)
            .collect()
            .await;
        results.extend(rest);
        let order: HashMap<&str, usize> = preview
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.client_id.as_str(), i))
            .collect();
        results.sort_by_key(|r| order.get(r.client_id.as_str()).copied());
        let s = summarize(results, preview.canary.clone(), stopped, started.elapsed());
        tracing::info!(
            updated = s.updated,
            rolled_back = s.rolled_back,
            skipped = s.skipped,
            failed = s.failed,
            ms = s.elapsed_ms,
            "fleet image update finished"
        );
        Ok(s)
    }

    /// One client: recreate, gate, keep or roll back; audited.
    async fn update_client(
        &self,
        hosts: &HashMap<String, Docker>,
        p: &ClientUpdatePreview,
        canary: bool,
        gate_timeout: Duration,
        progress: Progress<'_>,
    ) -> ClientUpdateResult {
        let started = Instant::now();
        let id = p.client_id.as_str();
        let phase = |phase: UpdatePhase, detail: String| {
            progress(UpdateProgress::Phase {
                client_id: id.to_string(),
                phase,
                detail,
            })
        };
        let d = hosts
            .get(&p.host)
            .expect("a host with an update has a connection");
        let todo: Vec<&ImageTarget> = p
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Update)
            .collect();
        let changes: Vec<FieldChange> = todo
            .iter()
            .map(|t| FieldChange {
                field: field_of(t.role),
                old: t.current_image.clone(),
                new: Some(t.target_image.clone()),
            })
            .collect();
        let who = os_user();
        let op = op_id();
        let detail = |extra: serde_json::Value| {
            let mut d = serde_json::json!({ "op": op, "changes": changes, "canary": canary });
            if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(e.clone());
            }
            d
        };
        let log = self.audit_log();
        let finish =
            |outcome: ClientOutcome, audit: AuditOutcome, gate: Vec<GateResult>, text: String| {
                let _ = log.append(&audit_record(
                    &who,
                    ACTION,
                    id,
                    audit,
                    detail(serde_json::json!({ "gate": gate })),
                    (audit != AuditOutcome::Ok).then(|| text.clone()),
                ));
                let r = ClientUpdateResult {
                    client_id: id.to_string(),
                    outcome,
                    canary,
                    changes: changes.clone(),
                    gate,
                    detail: text,
                    elapsed_ms: ms(started.elapsed()),
                };
                phase(
                    UpdatePhase::Done,
                    serde_json::to_value(outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
                progress(UpdateProgress::Finished { result: r.clone() });
                r
            };
        if let Err(e) = log.append(&audit_record(
            &who,
            ACTION,
            id,
            AuditOutcome::Started,
            detail(serde_json::Value::Null),
            None,
        )) {
            return finish(
                ClientOutcome::Failed,
                AuditOutcome::Failed,
                Vec::new(),
                format!("not updated: {e}"),
            );
        }
        if self
            .fleet
            .host(&p.host)
            .is_some_and(|h| h.mode == crate::fleet::HostMode::Swarm)
        {
            // Swarm: each service updated by Swarm (its update config), gated by us, and
            // on a failed gate rolled back by Swarm (`service update --rollback`).
            let mut updated: Vec<(ContainerRole, String, Option<String>)> = Vec::new();
            let mut failed: Option<GateResult> = None;
            for t in &todo {
                let svc = t.container.clone().unwrap_or_default();
                phase(
                    UpdatePhase::Recreating,
                    format!(
                        "{} service {svc}: {} → {}",
                        t.role,
                        t.current_image.as_deref().unwrap_or("?"),
                        t.target_image
                    ),
                );
                let before = match swarm::service(d, &p.host, &svc).await {
                    Ok(s) => s.as_ref().and_then(swarm::spec_image),
                    Err(e) => {
                        return finish(
                            ClientOutcome::Failed,
                            AuditOutcome::Failed,
                            Vec::new(),
                            format!("not updated: {e}; nothing was changed"),
                        )
                    }
                };
                let t0 = Instant::now();
                if let Err(e) = swarm::update_image(d, &p.host, &svc, &t.target_image).await {
                    if updated.is_empty() {
                        return finish(
                            ClientOutcome::Failed,
                            AuditOutcome::Failed,
                            Vec::new(),
                            format!("not updated: {e}; nothing was changed"),
                        );
                    }
                    failed = Some(GateResult {
                        check: gate_check_of(t.role),
                        passed: false,
                        detail: e.to_string(),
                        elapsed_ms: ms(t0.elapsed()),
                    });
                    break;
                }
                updated.push((t.role, svc.clone(), before));
                match swarm::wait_converged(d, &p.host, &svc, gate_timeout).await {
                    Ok(swarm::Converged::Running { .. }) => {}
                    Ok(swarm::Converged::RolledBack(m)) => {
                        failed = Some(GateResult {
                            check: gate_check_of(t.role),
                            passed: false,
                            detail: format!(
                                "the new task failed and Swarm rolled the service back itself ({m})"
                            ),
                            elapsed_ms: ms(t0.elapsed()),
                        });
                        break;
                    }
                    Err(e) => {
                        failed = Some(GateResult {
                            check: gate_check_of(t.role),
                            passed: false,
                            detail: e.to_string(),
                            elapsed_ms: ms(t0.elapsed()),
                        });
                        break;
                    }
                }
            }
            let gate = match failed {
                Some(g) => {
                    progress(UpdateProgress::Gate {
                        client_id: id.to_string(),
                        result: g.clone(),
                    });
                    vec![g]
                }
                None => {
                    phase(
                        UpdatePhase::Gating,
                        format!("health gate, up to {} s", gate_timeout.as_secs()),
                    );
                    let chat_svc = crate::ops::lifecycle::ClientPair::of(id).chat_container;
                    let chat_c = swarm::running_container(d, &p.host, &chat_svc)
                        .await
                        .ok()
                        .flatten();
                    let (passed, gate) = self
                        .gate(
                            id,
                            d,
                            &p.host,
                            None,
                            chat_c.as_deref(),
                            gate_timeout,
                            progress,
                        )
                        .await;
                    if passed {
                        return finish(
                            ClientOutcome::Updated,
                            AuditOutcome::Ok,
                            gate,
                            "updated by Swarm; health gate passed".into(),
                        );
                    }
                    gate
                }
            };
            let why = gate
                .iter()
                .find(|g| !g.passed)
                .map(|g| g.detail.clone())
                .unwrap_or_default();
            phase(UpdatePhase::RollingBack, why.clone());
            let mut errors = Vec::new();
            for (role, svc, before) in updated.iter().rev() {
                let res = async {
                    if !swarm::rolling_back(d, &p.host, svc).await? {
                        swarm::rollback(d, &p.host, svc).await?;
                    }
                    swarm::wait_rolled_back(d, &p.host, svc, swarm::CONVERGE_WITHIN).await?;
                    let now = swarm::service(d, &p.host, svc)
                        .await?
                        .as_ref()
                        .and_then(swarm::spec_image);
                    if &now != before {
                        return Err(docker::DockerError::Api {
                            host: p.host.clone(),
                            action: format!("roll back the service {svc}"),
                            message: format!(
                                "it runs {} after the rollback, not the previous {}",
                                now.as_deref().unwrap_or("?"),
                                before.as_deref().unwrap_or("?")
                            ),
                        });
                    }
                    Ok(())
                }
                .await;
                if let Err(e) = res {
                    errors.push(format!(
                        "rolling the {role} service back failed ({e}): `docker service update --rollback {svc}`"
                    ));
                }
            }
            if !errors.is_empty() {
                return finish(
                    ClientOutcome::Failed,
                    AuditOutcome::Failed,
                    gate,
                    format!("health gate failed ({why}); {}", errors.join("; ")),
                );
            }
            let ready = match self.tracker(id).await {
                Ok(t) => {
                    let deadline = Instant::now() + gate_timeout;
                    loop {
                        match t.ready().await {
                            Ok(()) => break Ok(()),
                            Err(e) if Instant::now() >= deadline => break Err(e.to_string()),
                            Err(_) => tokio::time::sleep(GATE_POLL).await,
                        }
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            return match ready {
                Ok(()) => finish(
                    ClientOutcome::RolledBack,
                    AuditOutcome::RolledBack,
                    gate,
                    format!("health gate failed ({why}); Swarm rolled the service back to the previous image, the tracker is ready again"),
                ),
                Err(e) => finish(
                    ClientOutcome::Failed,
                    AuditOutcome::Failed,
                    gate,
                    format!("health gate failed ({why}); Swarm rolled back but the tracker is not ready ({e}): look at its logs (`maictl logs {id} --role tracker`)"),
                ),
            };
        }
        // Recreate each container (tracker first: the chat app talks to it).
        let mut done: Vec<(ContainerRole, Recreated)> = Vec::new();
        for t in &todo {
            let container = t.container.clone().unwrap_or_default();
            phase(
                UpdatePhase::Recreating,
                format!(
                    "{} {}: {} → {}",
                    t.role,
                    container,
                    t.current_image.as_deref().unwrap_or("?"),
                    t.target_image
                ),
            );
            match docker::recreate_with_image(d, &p.host, &container, &t.target_image, STOP_GRACE_S)
                .await
            {
                Ok(r) => done.push((t.role, r)),
                Err(f) => {
                    let first = done.is_empty();
                    let back = self.roll_back(d, &p.host, &mut done).await;
                    let (outcome, audit, text) = recreate_failure(t.role, &f, first, back);
                    return finish(outcome, audit, Vec::new(), text);
                }
            }
        }
        phase(
            UpdatePhase::Gating,
            format!("health gate, up to {} s", gate_timeout.as_secs()),
        );
        let tracker_c = done
            .iter()
            .find(|(r, _)| *r == ContainerRole::Tracker)
            .map(|(_, r)| r.new_id.clone())
            .or_else(|| container_of(p, ContainerRole::Tracker));
        let mut chat_c = done
            .iter()
            .find(|(r, _)| *r == ContainerRole::Chat)
            .map(|(_, r)| r.new_id.clone())
            .or_else(|| container_of(p, ContainerRole::Chat));
        // A tracker-only update still gates on the chat app: it talks to the tracker.
        if chat_c.is_none() {
            chat_c = docker::find_container(d, &p.host, id, ContainerRole::Chat)
                .await
                .ok()
                .flatten()
                .map(|c| c.id);
        }
        let (passed, gate) = self
            .gate(
                id,
                d,
                &p.host,
                tracker_c.as_deref(),
                chat_c.as_deref(),
                gate_timeout,
                progress,
            )
            .await;
        if passed {
            let mut left = Vec::new();
            for (_, r) in &done {
                if let Err(e) = docker::finish_recreate(d, &p.host, r).await {
                    left.push(format!(
                        "the previous container {} could not be removed ({e}); remove it by hand",
                        docker::parked_name(&r.name)
                    ));
                }
            }
            let text = if left.is_empty() {
                "updated; health gate passed".to_string()
            } else {
                format!("updated; health gate passed; {}", left.join("; "))
            };
            return finish(ClientOutcome::Updated, AuditOutcome::Ok, gate, text);
        }
        let why = gate
            .iter()
            .find(|g| !g.passed)
            .map(|g| {
                let check = serde_json::to_value(g.check)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("{check}: {}", g.detail)
            })
            .unwrap_or_default();
        phase(UpdatePhase::RollingBack, why.clone());
        match self.roll_back(d, &p.host, &mut done).await {
            Ok(()) => {
                // The previous containers run again; the tracker must answer again too.
                let t = self.tracker(id).await;
                let deadline = Instant::now() + gate_timeout;
                let ready = match &t {
                    Ok(t) => loop {
                        match t.ready().await {
                            Ok(()) => break Ok(()),
                            Err(e) if Instant::now() >= deadline => break Err(e.to_string()),
                            Err(_) => tokio::time::sleep(GATE_POLL).await,
                        }
                    },
                    Err(e) => Err(e.to_string()),
                };
                match ready {
                    Ok(()) => finish(
                        ClientOutcome::RolledBack,
                        AuditOutcome::RolledBack,
                        gate,
                        format!("health gate failed ({why}); rolled back to the previous image, the tracker is ready again"),
                    ),
                    Err(e) => finish(
                        ClientOutcome::Failed,
                        AuditOutcome::Failed,
                        gate,
                        format!("health gate failed ({why}); the previous containers were put back but the tracker is not ready ({e}): look at its logs (`maictl logs {id} --role tracker`)"),
                    ),
                }
            }
            Err(e) => finish(
                ClientOutcome::Failed,
                AuditOutcome::Failed,
                gate,
                format!("health gate failed ({why}); {e}"),
            ),
        }
    }

    /// Puts back every recreated container, last first; the error says what is left.
    async fn roll_back(
        &self,
        d: &Docker,
        host: &str,
        done: &mut Vec<(ContainerRole, Recreated)>,
    ) -> Result<(), String> {
        let mut errors = Vec::new();
        while let Some((role, r)) = done.pop() {
            if let Err(e) = docker::undo_recreate(d, host, &r).await {
                errors.push(format!(
                    "putting the previous {role} container back failed ({e}): `docker rm -f {}` if it exists, then `docker rename {} {}` and `docker start {}`",
                    r.new_id.chars().take(12).collect::<String>(),
                    docker::parked_name(&r.name),
                    r.name,
                    r.name
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The health gate of one client (module documentation).
    #[allow(clippy::too_many_arguments)]
    async fn gate(
        &self,
        id: &str,
        d: &Docker,
        host: &str,
        tracker_c: Option<&str>,
        chat_c: Option<&str>,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> (bool, Vec<GateResult>) {
        let deadline = Instant::now() + timeout;
        let mut results = Vec::new();
        let mut record = |check: GateCheck, passed: bool, detail: String, since: Instant| {
            let r = GateResult {
                check,
                passed,
                detail,
                elapsed_ms: ms(since.elapsed()),
            };
            progress(UpdateProgress::Gate {
                client_id: id.to_string(),
                result: r.clone(),
            });
            results.push(r);
            passed
        };
        // The tracker is ready.
        let t0 = Instant::now();
        let t = match self.tracker(id).await {
            Ok(t) => t,
            Err(e) => {
                record(GateCheck::TrackerReady, false, e.to_string(), t0);
                return (false, results);
            }
        };
        let ready = loop {
            if let Some(c) = tracker_c {
                if let Ok(Liveness::Down(why)) = docker::liveness(d, host, c).await {
                    break Err(format!("the tracker container is {why}"));
                }
            }
            match t.ready().await {
                Ok(()) => break Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    break Err(format!("not ready within {} s: {e}", timeout.as_secs()))
                }
                Err(_) => tokio::time::sleep(GATE_POLL).await,
            }
        };
        let ok = match ready {
            Ok(()) => record(
                GateCheck::TrackerReady,
                true,
                "/readyz answers 200".into(),
                t0,
            ),
            Err(e) => record(GateCheck::TrackerReady, false, e, t0),
        };
        if !ok {
            return (false, results);
        }
        // A probe through the tracker, found in its ledger.
        let t1 = Instant::now();
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let probed = match tokio::time::timeout(left, t.probe(None)).await {
            Err(_) => Err(format!(
                "no answer within the gate's {} s",
                timeout.as_secs()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(rep)) => match t.events(rep.event.seq - 1, 1).await {
                Ok(page)
                    if page.events.first().map(|e| &e.generation_id)
                        == Some(&rep.generation_id) =>
                {
                    Ok(format!(
                        "generation {} metered ({} USD, OpenRouter {} ms)",
                        rep.generation_id, rep.event.cost_usd, rep.upstream_ms
                    ))
                }
                Ok(_) => Err(format!(
                    "generation {} is not in the tracker's events",
                    rep.generation_id
                )),
                Err(e) => Err(format!("the tracker's events could not be read: {e}")),
            },
        };
        let ok = match probed {
            Ok(m) => record(GateCheck::ProbeMetered, true, m, t1),
            Err(e) => record(GateCheck::ProbeMetered, false, e, t1),
        };
        if !ok {
            return (false, results);
        }
        // The chat app is healthy.
        let Some(chat) = chat_c else {
            return (true, results);
        };
        let t2 = Instant::now();
        let healthy = loop {
            match docker::liveness(d, host, chat).await {
                Ok(Liveness::Healthy { has_healthcheck }) => {
                    break Ok(if has_healthcheck {
                        "its health check passes".to_string()
                    } else {
                        "running (its image has no health check)".to_string()
                    })
                }
                Ok(Liveness::Down(why)) => break Err(format!("the chat container is {why}")),
                Ok(Liveness::Unhealthy(why)) => {
                    break Err(format!("its health check fails: {why}"))
                }
                Ok(Liveness::Starting) | Err(_) if Instant::now() >= deadline => {
                    break Err(format!("not healthy within {} s", timeout.as_secs()))
                }
                Ok(Liveness::Starting) | Err(_) => tokio::time::sleep(GATE_POLL).await,
            }
        };
        let ok = match healthy {
            Ok(m) => record(GateCheck::ChatHealthy, true, m, t2),
            Err(e) => record(GateCheck::ChatHealthy, false, e, t2),
        };
        (ok, results)
    }
}

/// The outcome of a client whose container `role` could not be recreated (`f`), after
/// the containers recreated before it were put back (`back`); `first`: it was the first.
fn recreate_failure(
    role: ContainerRole,
    f: &docker::RecreateFailed,
    first: bool,
    back: Result<(), String>,
) -> (ClientOutcome, AuditOutcome, String) {
    use docker::Left;
    match (f.left, back) {
        (Left::Untouched, Ok(())) if first => (
            ClientOutcome::Failed,
            AuditOutcome::Failed,
            format!("not updated: {f}; nothing was changed"),
        ),
        (Left::Untouched | Left::Restored, Ok(())) => (
            ClientOutcome::RolledBack,
            AuditOutcome::RolledBack,
            format!(
                "the new {role} container did not start: {f}; the previous containers run again"
            ),
        ),
        (Left::Broken, Ok(())) => (
            ClientOutcome::Failed,
            AuditOutcome::Failed,
            format!("the new {role} container did not start and the previous one is not back: {f}"),
        ),
        (_, Err(b)) => (
            ClientOutcome::Failed,
            AuditOutcome::Failed,
            format!("the new {role} container did not start: {f}; and {b}"),
        ),
    }
}

fn container_of(p: &ClientUpdatePreview, role: ContainerRole) -> Option<String> {
    p.targets
        .iter()
        .find(|t| t.role == role)
        .and_then(|t| t.container.clone())
}

/// One host as the preview saw it.
struct HostView {
    containers: Vec<docker::ContainerInfo>,
    images: HashMap<String, Option<docker::ImageInfo>>,
    /// Image id of each container (by container id).
    image_ids: HashMap<String, String>,
}

/// One container of a client versus the target (pure over what the host said).
fn image_target(
    c: &Client,
    role: ContainerRole,
    target: &str,
    view: &Result<HostView, String>,
) -> ImageTarget {
    let mut t = ImageTarget {
        role,
        container: None,
        current_image: None,
        current_id: None,
        target_image: target.to_string(),
        target_id: None,
        state: TargetState::HostError,
        detail: None,
    };
    let v = match view {
        Ok(v) => v,
        Err(e) => {
            t.detail = Some(format!("host {}: {e}", c.host));
            return t;
        }
    };
    let Some(ct) = v
        .containers
        .iter()
        .find(|x| x.client == c.id && x.role == role)
    else {
        t.state = TargetState::NoContainer;
        t.detail = Some(format!(
            "no {role} container labelled mai.client={} on host {}",
            c.id, c.host
        ));
        return t;
    };
    t.container = Some(ct.name.clone());
    t.current_image = Some(ct.image.clone());
    t.current_id = v.image_ids.get(&ct.id).cloned();
    match v.images.get(target).cloned().flatten() {
        None => {
            t.state = TargetState::ImageMissing;
            t.detail = Some(format!(
                "host {} has no image {target}; build it there (deploy/build-images.sh) or `docker load` it",
                c.host
            ));
        }
        Some(img) => {
            t.state = if t.current_id.as_deref() == Some(img.id.as_str()) {
                TargetState::UpToDate
            } else {
                TargetState::Update
            };
            t.target_id = Some(img.id);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(id: &str, state: TargetState) -> ClientUpdatePreview {
        ClientUpdatePreview {
            client_id: id.into(),
            host: "h".into(),
            targets: vec![ImageTarget {
                role: ContainerRole::Tracker,
                container: Some(format!("{id}-tracker")),
                current_image: Some("mai-tracker:1".into()),
                current_id: Some("sha256:1".into()),
                target_image: "mai-tracker:2".into(),
                target_id: Some("sha256:2".into()),
                state,
                detail: None,
            }],
        }
    }

    #[test]
    fn plans_are_checked_before_anything_is_asked() {
        let known = |id: &str| id == "acme" || id == "beta";
        let plan = UpdatePlan {
            tracker_image: Some("mai-tracker:2".into()),
            ..Default::default()
        };
        assert!(check_plan(&plan, &known).is_ok());
        assert!(check_plan(&UpdatePlan::default(), &known)
            .unwrap_err()
            .contains("name the new image"));
        let bad = |f: fn(&mut UpdatePlan)| {
            let mut p = plan.clone();
            f(&mut p);
            check_plan(&p, &known).unwrap_err()
        };
        assert!(bad(|p| p.parallelism = 0).contains("1 to 32"));
        assert!(bad(|p| p.gate_timeout_ms = 10).contains("1 s to 1 h"));
        assert!(bad(|p| p.clients = vec!["nope".into()]).contains("nope"));
        assert!(bad(|p| {
            p.clients = vec!["acme".into()];
            p.canary = Some("beta".into());
        })
        .contains("not one of"));
    }

    #[test]
    fn a_failed_recreate_is_rolled_back_only_when_something_was_put_back() {
        let f = |left| docker::RecreateFailed {
            error: docker::DockerError::Timeout {
                host: "h".into(),
                timeout_ms: 1,
            },
            left,
        };
        let t = ContainerRole::Tracker;
        let (o, a, m) = recreate_failure(t, &f(docker::Left::Untouched), true, Ok(()));
        assert_eq!((o, a), (ClientOutcome::Failed, AuditOutcome::Failed));
        assert!(m.contains("nothing was changed"), "{m}");
        let (o, _, m) = recreate_failure(t, &f(docker::Left::Restored), true, Ok(()));
        assert_eq!(o, ClientOutcome::RolledBack);
        assert!(m.contains("run again"), "{m}");
        // The chat container failed untouched after the tracker was recreated and put back.
        let (o, _, _) = recreate_failure(
            ContainerRole::Chat,
            &f(docker::Left::Untouched),
            false,
            Ok(()),
        );
        assert_eq!(o, ClientOutcome::RolledBack);
        let (o, _, m) = recreate_failure(t, &f(docker::Left::Broken), true, Ok(()));
        assert_eq!(o, ClientOutcome::Failed);
        assert!(m.contains("not back"), "{m}");
        let (o, _, m) = recreate_failure(
            t,
            &f(docker::Left::Restored),
            false,
            Err("docker rename …".into()),
        );
        assert_eq!(o, ClientOutcome::Failed);
        assert!(m.contains("docker rename"), "{m}");
    }

    #[test]
    fn the_canary_is_the_first_client_that_can_be_updated() {
        let list = vec![
            preview("a", TargetState::UpToDate),
            preview("b", TargetState::ImageMissing),
            preview("c", TargetState::Update),
            preview("d", TargetState::Update),
        ];
        assert_eq!(
            pick_canary(&UpdatePlan::default(), &list).as_deref(),
            Some("c")
        );
        let named = UpdatePlan {
            canary: Some("d".into()),
            ..Default::default()
        };
        assert_eq!(pick_canary(&named, &list).as_deref(), Some("d"));
        let blocked = UpdatePlan {
            canary: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(pick_canary(&blocked, &list), None);
        let s = summarize(
            vec![
                not_touched(&list[0], ClientOutcome::Skipped, "".into()),
                not_touched(&list[1], ClientOutcome::Failed, "".into()),
            ],
            None,
            None,
            Duration::from_millis(5),
        );
        assert_eq!(
            (s.updated, s.rolled_back, s.skipped, s.failed),
            (0, 0, 1, 1)
        );
    }
}
