//! Docker Swarm adapter (bollard): a client on a `mode = "swarm"` host is two services
//! (`mai-<id>-tracker`, `mai-<id>-chat`) on an attachable overlay network, its secrets are
//! Docker secrets mounted as files where a plain host uses its secrets volume, its data
//! named volumes. What a client *is* (names, environment, labels) stays in
//! `ops::lifecycle`; this module only speaks the engine's service, task, secret, network
//! and node APIs.
//!
//! - **No registry.** A service runs its image by id (`sha256:…`): the engine resolves
//!   nothing and a worker never pulls (an image id is never pulled), so images built or
//!   loaded on the node run as they are. The human name is the `mai.image` label.
//! - **Secrets are immutable.** A new value is a new secret (`…-v2`, `…-v3`), the service
//!   is updated to mount it under the same file name, and the old one is removed after.
//! - **Swarm's own update and rollback** are configured on every service (one task at a
//!   time, stop-first so one ledger never has two writers, failure action rollback with a
//!   monitor window); an update whose health gate fails is rolled back by Swarm
//!   (`service update --rollback`).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use bollard::models::{
    ServiceSpec, ServiceUpdateStatusStateEnum as UpdState, TaskSpecContainerSpecSecrets, TaskState,
};
use bollard::query_parameters::{
    ListSecretsOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use chrono::Utc;
use futures::{Stream, StreamExt};

use crate::docker::{is_not_found, DockerError, LABEL_CLIENT, LABEL_ROLE, LABEL_VERSION};
pub use mai_wire::console::{ContainerHealth, ContainerInfo, ContainerRole, ContainerState};

/// The image name a service runs by id (`mai-tracker:dev`): what the console shows and
/// an update compares with.
pub const LABEL_IMAGE: &str = "mai.image";
/// Which secret file a Docker secret is (`openrouter-key`, …) and its version.
pub const LABEL_SECRET: &str = "mai.secret";
pub const LABEL_SECRET_VERSION: &str = "mai.secret-version";

/// How long a service may take to converge after a create or an update.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

fn api(host: &str, action: &str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let (host, action) = (host.to_string(), action.to_string());
    move |e| DockerError::Api {
        host,
        action,
        message: e.to_string(),
    }
}

fn err(host: &str, action: &str, message: String) -> DockerError {
    DockerError::Api {
        host: host.to_string(),
        action: action.to_string(),
        message,
    }
}

fn slow(d: &Docker) -> Docker {
    d.clone().with_timeout(Duration::from_secs(90))
}

fn label_filter(client: Option<&str>) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![match client {
            Some(c) => format!("{LABEL_CLIENT}={c}"),
            None => LABEL_CLIENT.to_string(),
        }],
    )])
}

/// Whether the engine answered "this node is not a swarm manager" (503).
fn not_a_manager(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 503,
            ..
        }
    )
}

/// Checks that the host's engine is an active Swarm manager; the error says how to make
/// it one.
pub async fn ensure_manager(d: &Docker, host: &str) -> Result<(), DockerError> {
    let info = d
        .info()
        .await
        .map_err(api(host, "read the engine's info"))?;
    let sw = info.swarm.unwrap_or_default();
    let active = sw.local_node_state == Some(bollard::models::LocalNodeState::ACTIVE);
    if active && sw.control_available == Some(true) {
        return Ok(());
    }
    Err(err(
        host,
        "use Docker Swarm",
        format!(
            "the fleet file says mode = \"swarm\", but this engine is {}: run `docker swarm init` there (or join it to the swarm as a manager), or set mode = \"plain\"",
            if active {
                "a swarm worker, not a manager"
            } else {
                "not in a swarm"
            }
        ),
    ))
}

/// The resolved id (`sha256:…`) of a local image, or `None`.
pub async fn image_id(d: &Docker, host: &str, image: &str) -> Result<Option<String>, DockerError> {
    match d.inspect_image(image).await {
        Ok(i) => Ok(i.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api(host, &format!("inspect the image {image}"))(e)),
    }
}

/// An attachable overlay network (the chat app reaches the tracker on it).
pub async fn create_overlay_network(
    d: &Docker,
    host: &str,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), DockerError> {
    let req = bollard::models::NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("overlay".into()),
        attachable: Some(true),
        labels: Some(labels),
        ..Default::default()
    };
    slow(d)
        .create_network(req)
        .await
        .map_err(api(host, &format!("create the overlay network {name}")))?;
    Ok(())
}

/// The Docker secret name of version `v` of a client's secret file.
pub fn secret_name(client: &str, file: &str, version: u32) -> String {
    format!("mai-{client}-{file}-v{version}")
}

/// The version in a secret's name (`mai-acme-openrouter-key-v3` → 3).
pub fn secret_version(name: &str) -> Option<u32> {
    name.rsplit_once("-v").and_then(|(_, v)| v.parse().ok())
}

/// Creates a secret; returns its id.
pub async fn create_secret(
    d: &Docker,
    host: &str,
    name: &str,
    value: &str,
    labels: HashMap<String, String>,
) -> Result<String, DockerError> {
    let spec = bollard::models::SecretSpec {
        name: Some(name.to_string()),
        labels: Some(labels),
        data: Some(base64::engine::general_purpose::STANDARD.encode(value.as_bytes())),
        ..Default::default()
    };
    let r = slow(d)
        .create_secret(spec)
        .await
        .map_err(api(host, &format!("create the secret {name}")))?;
    Ok(r.id)
}

pub async fn remove_secret(d: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    match slow(d).delete_secret(name).await {
        Err(e) if !is_not_found(&e) => Err(api(host, &format!("remove the secret {name}"))(e)),
        _ => Ok(()),
    }
}

/// Creates a service; returns its id.
pub async fn create_service(
    d: &Docker,
    host: &str,
    spec: ServiceSpec,
) -> Result<String, DockerError> {
    let name = spec.name.clone().unwrap_or_default();
    let r = slow(d)
        .create_service(spec, None)
        .await
        .map_err(api(host, &format!("create the service {name}")))?;
    Ok(r.id.unwrap_or_default())
}

pub async fn remove_service(d: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    match slow(d).delete_service(name).await {
        Err(e) if !is_not_found(&e) => Err(api(host, &format!("remove the service {name}"))(e)),
        _ => Ok(()),
    }
}

/// A service as the engine has it now, or `None`.
pub async fn service(
    d: &Docker,
    host: &str,
    name: &str,
) -> Result<Option<bollard::models::Service>, DockerError> {
    match d.inspect_service(name, None).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api(host, &format!("inspect the service {name}"))(e)),
    }
}

async fn must_service(
    d: &Docker,
    host: &str,
    name: &str,
) -> Result<bollard::models::Service, DockerError> {
    service(d, host, name).await?.ok_or_else(|| {
        err(
            host,
            &format!("find the service {name}"),
            "no such service; is the client deployed on this swarm?".into(),
        )
    })
}

/// Updates a service with `edit` applied to its current spec (versioned: a concurrent
/// change makes this fail instead of being overwritten).
async fn update_with(
    d: &Docker,
    host: &str,
    name: &str,
    action: &str,
    edit: impl FnOnce(&mut ServiceSpec),
    rollback: bool,
) -> Result<(), DockerError> {
    let s = must_service(d, host, name).await?;
    let version = s.version.and_then(|v| v.index).unwrap_or(0);
    let mut spec = s.spec.unwrap_or_default();
    edit(&mut spec);
    let mut opts = UpdateServiceOptionsBuilder::default().version(version as i32);
    if rollback {
        opts = opts.rollback("previous");
    }
    let r = slow(d)
        .update_service(name, spec, opts.build(), None)
        .await
        .map_err(api(host, &format!("{action} of the service {name}")))?;
    for w in r.warnings.unwrap_or_default() {
        tracing::info!(host, service = name, "{w}");
    }
    Ok(())
}

/// The service's image (by id) replaced with `image_name`'s id, labels following; Swarm
/// rolls it out with the service's update configuration.
pub async fn update_image(
    d: &Docker,
    host: &str,
    name: &str,
    image_name: &str,
) -> Result<(), DockerError> {
    let id = image_id(d, host, image_name).await?.ok_or_else(|| {
        err(
            host,
            &format!("update the service {name}"),
            format!("the image {image_name} is not on this node; build or load it there first (no registry is asked)"),
        )
    })?;
    let tag = image_tag(image_name).map(str::to_string);
    let set = |l: &mut HashMap<String, String>| {
        l.insert(LABEL_IMAGE.to_string(), image_name.to_string());
        match &tag {
            Some(t) => l.insert(LABEL_VERSION.to_string(), t.clone()),
            None => l.remove(LABEL_VERSION),
        };
    };
    update_with(
        d,
        host,
        name,
        "update the image",
        |spec| {
            set(spec.labels.get_or_insert_with(Default::default));
            if let Some(cs) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.container_spec.as_mut())
            {
                cs.image = Some(id.clone());
                set(cs.labels.get_or_insert_with(Default::default));
            }
        },
        false,
    )
    .await
}

/// `docker service update --rollback`: back to the service's previous spec.
pub async fn rollback(d: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    update_with(d, host, name, "roll back", |_| {}, true).await
}

/// `docker service update --force`: the tasks are replaced with the same spec.
pub async fn force_update(d: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    update_with(
        d,
        host,
        name,
        "restart",
        |spec| {
            if let Some(t) = spec.task_template.as_mut() {
                t.force_update = Some(t.force_update.unwrap_or(0) + 1);
            }
        },
        false,
    )
    .await
}

/// Replaces the service's secret mounted as file `target` by the secret `new_name`
/// (same file name, owner and mode); returns the old secret's name.
pub async fn swap_secret(
    d: &Docker,
    host: &str,
    service: &str,
    target: &str,
    new_id: &str,
    new_name: &str,
) -> Result<Option<String>, DockerError> {
    let s = must_service(d, host, service).await?;
    let old = secret_refs(&s)
        .into_iter()
        .find(|r| r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(target))
        .and_then(|r| r.secret_name);
    update_with(
        d,
        host,
        service,
        "mount the new secret",
        |spec| {
            if let Some(refs) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.container_spec.as_mut())
                .and_then(|c| c.secrets.as_mut())
            {
                for r in refs.iter_mut() {
                    if r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(target) {
                        r.secret_id = Some(new_id.to_string());
                        r.secret_name = Some(new_name.to_string());
                    }
                }
            }
        },
        false,
    )
    .await?;
    Ok(old)
}

/// The secrets a service mounts.
pub fn secret_refs(s: &bollard::models::Service) -> Vec<TaskSpecContainerSpecSecrets> {
    s.spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.secrets.clone())
        .unwrap_or_default()
}

/// The image id a service's spec runs.
pub fn spec_image(s: &bollard::models::Service) -> Option<String> {
    s.spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
}

/// The tag of an image reference (`mai-tracker:dev` → `dev`).
pub fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t)
}

/// One task of a service as the waits and the fleet table read it.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    pub image: Option<String>,
    pub state: Option<TaskState>,
    pub desired: Option<TaskState>,
    pub message: String,
    pub error: Option<String>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
    pub at: Option<chrono::DateTime<Utc>>,
}

pub async fn tasks(d: &Docker, host: &str, service: &str) -> Result<Vec<TaskView>, DockerError> {
    let filters = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    let list = d
        .list_tasks(Some(
            ListTasksOptionsBuilder::default().filters(&filters).build(),
        ))
        .await
        .map_err(api(host, &format!("list the tasks of {service}")))?;
    let mut v: Vec<TaskView> = list
        .into_iter()
        .map(|t| {
            let st = t.status.clone().unwrap_or_default();
            TaskView {
                id: t.id.clone().unwrap_or_default(),
                image: t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.image.clone()),
                state: st.state,
                desired: t.desired_state,
                message: st.message.clone().unwrap_or_default(),
                error: st.err.clone().filter(|e| !e.is_empty()),
                container_id: st
                    .container_status
                    .as_ref()
                    .and_then(|c| c.container_id.clone()),
                exit_code: st.container_status.as_ref().and_then(|c| c.exit_code),
                at: st
                    .timestamp
                    .as_ref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t.to_string()).ok())
                    .map(|t| t.with_timezone(&Utc)),
            }
        })
        .collect();
    v.sort_by_key(|t| std::cmp::Reverse(t.at));
    Ok(v)
}

/// The container of the service's running task of its spec's image (on this node).
pub async fn running_container(
    d: &Docker,
    host: &str,
    name: &str,
) -> Result<Option<String>, DockerError> {
    let want = service(d, host, name).await?.as_ref().and_then(spec_image);
    Ok(tasks(d, host, name)
        .await?
        .into_iter()
        .find(|t| {
            t.state == Some(TaskState::RUNNING)
                && t.desired == Some(TaskState::RUNNING)
                && t.image == want
        })
        .and_then(|t| t.container_id))
}

/// What a wait on a service found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// A task of the spec's image runs and the last update (if any) completed.
    Running { container_id: Option<String> },
    /// Swarm rolls (or rolled) the update back by itself (its failure action): the
    /// message. [`wait_rolled_back`] waits for the end of it.
    RolledBack(String),
}

/// Until the service runs one task of its spec's image and its update finished; fails at
/// once on a task Swarm cannot place because no node matches its placement constraints,
/// and after `within` with the tasks' last words. (A task pending for a host-mode port
/// its predecessor still holds while it stops is waited for.)
pub async fn wait_converged(
    d: &Docker,
    host: &str,
    name: &str,
    within: Duration,
) -> Result<Converged, DockerError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = must_service(d, host, name).await?;
        let upd = s.update_status.as_ref().and_then(|u| u.state);
        let upd_msg = s
            .update_status
            .as_ref()
            .and_then(|u| u.message.clone())
            .unwrap_or_default();
        let want = spec_image(&s);
        let ts = tasks(d, host, name).await?;
        if let Some(t) = ts.iter().find(|t| {
            t.desired == Some(TaskState::RUNNING)
                && t.state == Some(TaskState::PENDING)
                && t.error
                    .as_deref()
                    .is_some_and(|e| e.contains("scheduling constraints not satisfied"))
        }) {
            return Err(err(
                host,
                &format!("place the service {name}"),
                format!(
                    "Swarm cannot place its task: {} (the client's placement constraints match no node that is ready; check `docker node ls` and the node labels, or change placement)",
                    t.error.clone().unwrap_or_default()
                ),
            ));
        }
        match upd {
            Some(UpdState::ROLLBACK_STARTED) | Some(UpdState::ROLLBACK_COMPLETED) => {
                return Ok(Converged::RolledBack(upd_msg))
            }
            Some(UpdState::PAUSED) | Some(UpdState::ROLLBACK_PAUSED) => {
                return Err(err(
                    host,
                    &format!("update the service {name}"),
                    format!("Swarm paused the update: {upd_msg}"),
                ))
            }
            _ => {}
        }
        let settled = matches!(
            upd,
            None | Some(UpdState::COMPLETED) | Some(UpdState::EMPTY)
        );
        if settled {
            if let Some(t) = ts.iter().find(|t| {
                t.state == Some(TaskState::RUNNING)
                    && t.desired == Some(TaskState::RUNNING)
                    && t.image == want
            }) {
                return Ok(Converged::Running {
                    container_id: t.container_id.clone(),
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let last = ts
                .iter()
                .take(3)
                .map(|t| {
                    format!(
                        "{:?} {}{}",
                        t.state,
                        t.message,
                        t.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(err(
                host,
                &format!("run the service {name}"),
                format!(
                    "no task of its image ran within {} s (update state {upd:?} {upd_msg}); its last tasks: {last}",
                    within.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Until Swarm reports a rollback of the service finished and a task of the spec's
/// (previous) image runs.
pub async fn wait_rolled_back(
    d: &Docker,
    host: &str,
    name: &str,
    within: Duration,
) -> Result<Option<String>, DockerError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = must_service(d, host, name).await?;
        let upd = s.update_status.as_ref().and_then(|u| u.state);
        let want = spec_image(&s);
        if upd == Some(UpdState::ROLLBACK_COMPLETED) {
            let ts = tasks(d, host, name).await?;
            if let Some(t) = ts.iter().find(|t| {
                t.state == Some(TaskState::RUNNING)
                    && t.desired == Some(TaskState::RUNNING)
                    && t.image == want
            }) {
                return Ok(t.container_id.clone());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(err(
                host,
                &format!("roll back the service {name}"),
                format!(
                    "the rollback did not finish within {} s (update state {upd:?}); look at `docker service ps {name}`",
                    within.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether Swarm is rolling (or rolled) the service's last update back by itself.
pub async fn rolling_back(d: &Docker, host: &str, name: &str) -> Result<bool, DockerError> {
    let s = must_service(d, host, name).await?;
    Ok(matches!(
        s.update_status.and_then(|u| u.state),
        Some(UpdState::ROLLBACK_STARTED) | Some(UpdState::ROLLBACK_COMPLETED)
    ))
}

/// The services and secrets carrying `mai.client=<client>` (empty on an engine that is
/// not a swarm manager).
pub async fn client_services_and_secrets(
    d: &Docker,
    host: &str,
    client: &str,
) -> Result<(Vec<String>, Vec<String>), DockerError> {
    let f = label_filter(Some(client));
    let services = match d
        .list_services(Some(
            ListServicesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
    {
        Ok(v) => v
            .into_iter()
            .filter_map(|s| s.spec.and_then(|s| s.name))
            .collect(),
        Err(e) if not_a_manager(&e) => Vec::new(),
        Err(e) => return Err(api(host, "list services")(e)),
    };
    let secrets = match d
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default().filters(&f).build(),
        ))
        .await
    {
        Ok(v) => v
            .into_iter()
            .filter_map(|s| s.spec.and_then(|s| s.name))
            .collect(),
        Err(e) if not_a_manager(&e) => Vec::new(),
        Err(e) => return Err(api(host, "list secrets")(e)),
    };
    Ok((services, secrets))
}

/// Every client service of the swarm as the fleet table shows it: one row per service,
/// its state from its newest task that should run.
pub async fn list_client_services(
    d: &Docker,
    host: &str,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let list = d
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&label_filter(None))
                .build(),
        ))
        .await
        .map_err(api(host, "list services"))?;
    let rows = futures::stream::iter(list.into_iter().filter_map(|s| {
        let spec = s.spec.clone()?;
        let labels = spec.labels.clone().unwrap_or_default();
        let role: ContainerRole = labels.get(LABEL_ROLE)?.parse().ok()?;
        Some((s, spec, labels, role))
    }))
    .map(|(s, spec, labels, role)| async move {
        let name = spec.name.clone().unwrap_or_default();
        let ts = tasks(d, host, &name).await.unwrap_or_default();
        let want = spec_image(&s);
        let current = ts
            .iter()
            .find(|t| t.desired == Some(TaskState::RUNNING) && t.image == want)
            .or_else(|| ts.iter().find(|t| t.desired == Some(TaskState::RUNNING)))
            .or_else(|| ts.first());
        let state = match current.and_then(|t| t.state) {
            Some(TaskState::RUNNING) => ContainerState::Running,
            Some(TaskState::FAILED)
            | Some(TaskState::REJECTED)
            | Some(TaskState::COMPLETE)
            | Some(TaskState::SHUTDOWN) => ContainerState::Exited,
            Some(_) => ContainerState::Created,
            None => ContainerState::Unknown,
        };
        let health = match current.and_then(|t| t.container_id.clone()) {
            Some(cid) => d
                .inspect_container(
                    &cid,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.health)
                .and_then(|h| h.status)
                .and_then(|h| ContainerHealth::from_docker(h.as_ref())),
            None => None,
        };
        // Restarts: the tasks of the current image that ended.
        let restarts = ts
            .iter()
            .filter(|t| t.image == want && t.desired != Some(TaskState::RUNNING))
            .count() as i64;
        ContainerInfo {
            id: s.id.clone().unwrap_or_default(),
            name,
            client: labels.get(LABEL_CLIENT).cloned().unwrap_or_default(),
            role,
            image: labels
                .get(LABEL_IMAGE)
                .cloned()
                .or(want)
                .unwrap_or_default(),
            version: labels.get(LABEL_VERSION).cloned(),
            state,
            health,
            started_at: current
                .filter(|t| t.state == Some(TaskState::RUNNING))
                .and_then(|t| t.at),
            restart_count: Some(restarts),
        }
    })
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    Ok(rows)
}

/// Log lines of a service (all its tasks); with `follow` the stream stays open.
pub fn logs(
    d: &Docker,
    host: &str,
    service: &str,
    tail: u32,
    follow: bool,
) -> impl Stream<Item = Result<String, DockerError>> + use<> {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail.to_string())
        .build();
    let d = if follow {
        d.clone().with_timeout(Duration::from_secs(7 * 24 * 3600))
    } else {
        d.clone()
    };
    let host = host.to_string();
    d.service_logs(service, Some(opts)).map(move |r| {
        r.map(|l| l.to_string()).map_err(|e| DockerError::Api {
            host: host.clone(),
            action: "read service logs".into(),
            message: e.to_string(),
        })
    })
}

/// The last `n` log lines of a service, for an error message.
pub async fn log_tail(d: &Docker, host: &str, service: &str, n: u32) -> String {
    let lines: Vec<String> = logs(d, host, service, n, false)
        .take(n as usize * 4)
        .filter_map(|l| async move { l.ok() })
        .collect()
        .await;
    lines.concat().trim().to_string()
}

/// Until no container of the client is left on this node (service tasks are removed
/// asynchronously; their volumes can only go after them).
pub async fn wait_containers_gone(
    d: &Docker,
    host: &str,
    client: &str,
    except: &[&str],
    within: Duration,
) -> Result<(), DockerError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left: Vec<String> = crate::docker::list_client_objects(d, host, client)
            .await?
            .containers
            .into_iter()
            .filter(|c| !except.contains(&c.as_str()))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(err(
                host,
                "wait for the service tasks to stop",
                format!(
                    "containers still there after {} s: {left:?}",
                    within.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Removes a network, retrying while the engine still detaches removed tasks from it.
pub async fn remove_network_when_free(
    d: &Docker,
    host: &str,
    name: &str,
    within: Duration,
) -> Result<(), DockerError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match crate::docker::remove_network(d, host, name).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The node's own address as its containers reach it: the gateway of `docker_gwbridge`
/// (a service task's way out), else of the default `bridge` (how a task reaches, say, an
/// OpenRouter stand-in on its own node): Swarm services have no `host-gateway`.
///
/// On a swarm that has never run a task, `docker_gwbridge` does not exist yet (the first
/// task makes it), and the default bridge's IPAM config may list only its subnet (seen on
/// Debian's docker.io 20.10): the gateway is then the subnet's first address, as Docker
/// assigns it. Without this the first service on a new swarm had no address for
/// `host.docker.internal`.
pub async fn node_gateway(d: &Docker, host: &str) -> Result<Option<String>, DockerError> {
    for net in ["docker_gwbridge", "bridge"] {
        match d
            .inspect_network(
                net,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(n) => {
                let gw = n.ipam.and_then(|i| i.config).and_then(|c| {
                    c.into_iter().find_map(|c| {
                        c.gateway
                            .filter(|g| !g.is_empty())
                            .or_else(|| c.subnet.as_deref().and_then(first_host_v4))
                    })
                });
                if gw.is_some() {
                    return Ok(gw);
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(host, &format!("inspect the network {net}"))(e)),
        }
    }
    Ok(None)
}

/// The first host address of an IPv4 subnet (`172.17.0.0/16` → `172.17.0.1`): Docker's
/// gateway when a network's IPAM config names none. `None` for IPv6 or a subnet with no
/// room for hosts.
fn first_host_v4(subnet: &str) -> Option<String> {
    let (addr, len) = subnet.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 30)?;
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Some(std::net::Ipv4Addr::from((u32::from(addr) & mask) + 1).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_from_a_subnet_alone() {
        assert_eq!(
            first_host_v4("172.17.0.0/16").as_deref(),
            Some("172.17.0.1")
        );
        assert_eq!(
            first_host_v4("10.1.2.128/25").as_deref(),
            Some("10.1.2.129")
        );
        assert_eq!(first_host_v4("10.1.2.3/8").as_deref(), Some("10.0.0.1"));
        assert_eq!(first_host_v4("0.0.0.0/0").as_deref(), Some("0.0.0.1"));
        assert_eq!(first_host_v4("10.0.0.0/31"), None);
        assert_eq!(first_host_v4("fd00::/64"), None);
        assert_eq!(first_host_v4("nonsense"), None);
    }

    #[test]
    fn secret_versions_are_in_their_names() {
        let n = secret_name("acme", "openrouter-key", 1);
        assert_eq!(n, "mai-acme-openrouter-key-v1");
        assert_eq!(secret_version(&n), Some(1));
        assert_eq!(
            secret_version(&secret_name("a-v2", "openrouter-key", 12)),
            Some(12)
        );
        assert_eq!(secret_version("mai-acme-openrouter-key"), None);
    }
}
