//! Docker adapter (bollard): connect to a host, discover client containers by label,
//! restart, stream logs. Containers carry `mai.client=<id>` and `mai.role=<chat|tracker>`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RestartContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use crate::fleet::{DockerEndpoint, Host};

/// What the fleet table shows about a container: the console's IPC types.
pub use mai_wire::console::{ContainerHealth, ContainerInfo, ContainerRole, ContainerState};

pub const LABEL_CLIENT: &str = "mai.client";
pub const LABEL_ROLE: &str = "mai.role";
pub const LABEL_VERSION: &str = "mai.version";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot connect to Docker on host {host} ({endpoint}): {message}; check the endpoint in the fleet file, that the engine runs, and (ssh) that `ssh` logs in without a prompt")]
    Connect {
        host: String,
        endpoint: String,
        message: String,
    },
    #[error("Docker on host {host} did not answer within {timeout_ms} ms; the host may be down or overloaded")]
    Timeout { host: String, timeout_ms: u64 },
    #[error("Docker on host {host} failed to {action}: {message}")]
    Api {
        host: String,
        action: String,
        message: String,
    },
    #[error("no container with label mai.client={client} (role {role}) on host {host}; is it deployed with the mai.* labels?")]
    NotFound {
        host: String,
        client: String,
        role: ContainerRole,
    },
}

/// Connects and negotiates the API version (Debian's engine speaks 1.41, bollard defaults to 1.53).
pub async fn connect(host: &Host) -> Result<Docker, DockerError> {
    let timeout_s = host.timeout_ms.div_ceil(1000).max(1);
    let conn_err = |e: bollard::errors::Error| DockerError::Connect {
        host: host.name.clone(),
        endpoint: host.docker.to_string(),
        message: e.to_string(),
    };
    let docker = match &host.docker {
        DockerEndpoint::Unix { path } => {
            Docker::connect_with_unix(path, timeout_s, API_DEFAULT_VERSION)
        }
        DockerEndpoint::Ssh { url } => {
            Docker::connect_with_ssh(url, timeout_s, API_DEFAULT_VERSION, None)
        }
        DockerEndpoint::Tcp { url, tls: Some(t) } => {
            Docker::connect_with_ssl(url, &t.key, &t.cert, &t.ca, timeout_s, API_DEFAULT_VERSION)
        }
        DockerEndpoint::Tcp { url, tls: None } => {
            Docker::connect_with_http(url, timeout_s, API_DEFAULT_VERSION)
        }
    }
    .map_err(conn_err)?;
    let fut = docker.negotiate_version();
    match tokio::time::timeout(Duration::from_millis(host.timeout_ms), fut).await {
        Ok(r) => r.map_err(conn_err),
        Err(_) => Err(DockerError::Timeout {
            host: host.name.clone(),
            timeout_ms: host.timeout_ms,
        }),
    }
}

fn api<'a>(host: &'a str, action: &str) -> impl Fn(bollard::errors::Error) -> DockerError + 'a {
    let action = action.to_string();
    move |e| DockerError::Api {
        host: host.to_string(),
        action: action.clone(),
        message: e.to_string(),
    }
}

/// Every container on the host that carries a `mai.client` label and a role the console
/// knows (`mai.role` chat or tracker; none means chat), inspected for restart count and
/// start time. Containers of other roles (a client's database, say) are left out: the
/// console neither shows nor restarts them.
pub async fn list_client_containers(
    docker: &Docker,
    host: &str,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![LABEL_CLIENT.to_string()]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(api(host, "list containers"))?;
    let ours = list.into_iter().filter_map(|c| {
        let role = match c.labels.as_ref().and_then(|l| l.get(LABEL_ROLE)) {
            None => ContainerRole::Chat,
            Some(r) => match r.parse() {
                Ok(role) => role,
                Err(e) => {
                    tracing::debug!(host, container = ?c.names, "not a console container: {e}");
                    return None;
                }
            },
        };
        Some((c, role))
    });
    let inspects = futures::stream::iter(ours.map(|(c, role)| async move {
        let id = c.id.clone().unwrap_or_default();
        let labels = c.labels.clone().unwrap_or_default();
        let inspect = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok();
        let state = inspect.as_ref().and_then(|i| i.state.as_ref());
        ContainerInfo {
            name: c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.chars().take(12).collect()),
            id,
            client: labels.get(LABEL_CLIENT).cloned().unwrap_or_default(),
            role,
            image: c.image.clone().unwrap_or_default(),
            version: labels.get(LABEL_VERSION).cloned().or_else(|| {
                c.image
                    .as_ref()
                    .and_then(|i| i.rsplit_once(':').map(|(_, t)| t.to_string()))
            }),
            state: state
                .and_then(|s| s.status.map(|st| st.to_string()))
                .or_else(|| c.state.map(|s| s.to_string()))
                .map_or(ContainerState::Unknown, |s| ContainerState::from_docker(&s)),
            health: state
                .and_then(|s| s.health.as_ref())
                .and_then(|h| h.status)
                .and_then(|h| ContainerHealth::from_docker(h.as_ref())),
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| d.timestamp() > 0),
            restart_count: inspect.as_ref().and_then(|i| i.restart_count),
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    Ok(inspects)
}

async fn find(
    docker: &Docker,
    host: &str,
    client: &str,
    role: ContainerRole,
) -> Result<ContainerInfo, DockerError> {
    list_client_containers(docker, host)
        .await?
        .into_iter()
        .find(|c| c.client == client && c.role == role)
        .ok_or_else(|| DockerError::NotFound {
            host: host.into(),
            client: client.into(),
            role,
        })
}

/// Restarts the client's container of `role`, giving it `grace_s` to stop cleanly.
pub async fn restart(
    docker: &Docker,
    host: &str,
    client: &str,
    role: ContainerRole,
    grace_s: i32,
) -> Result<ContainerInfo, DockerError> {
    let c = find(docker, host, client, role).await?;
    let opts = RestartContainerOptionsBuilder::default().t(grace_s).build();
    // The engine answers only after the container stopped (up to `grace_s`) and started
    // again, far beyond the per-host timeout used for listing.
    let slow = docker
        .clone()
        .with_timeout(Duration::from_secs(grace_s.max(0) as u64 + 60));
    slow.restart_container(&c.id, Some(opts))
        .await
        .map_err(api(host, "restart the container"))?;
    find(docker, host, client, role).await
}

/// Log lines of the client's container; with `follow` the stream stays open.
pub async fn logs(
    docker: &Docker,
    host: &str,
    client: &str,
    role: ContainerRole,
    tail: u32,
    follow: bool,
) -> Result<impl Stream<Item = Result<String, DockerError>> + use<>, DockerError> {
    let c = find(docker, host, client, role).await?;
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail.to_string())
        .build();
    let host = host.to_string();
    // A followed log stream stays open for as long as the operator watches.
    let docker = if follow {
        docker
            .clone()
            .with_timeout(Duration::from_secs(7 * 24 * 3600))
    } else {
        docker.clone()
    };
    Ok(docker.logs(&c.id, Some(opts)).map(move |r| {
        r.map(|l| l.to_string()).map_err(|e| DockerError::Api {
            host: host.clone(),
            action: "read logs".into(),
            message: e.to_string(),
        })
    }))
}
