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
    #[error("the SSH host key of {target} (Docker host {host}) is not known, and host keys are checked strictly: verify its fingerprint out of band (on that machine: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then trust it with `ssh-keyscan -p {port} {hostname} >> ~/.ssh/known_hosts` and compare `ssh-keygen -lF {hostname}` with what you verified")]
    HostKeyUnknown {
        host: String,
        target: String,
        hostname: String,
        port: String,
    },
    #[error("the SSH host key of {target} (Docker host {host}) has CHANGED since it was trusted: someone may be intercepting the connection, or the machine was reinstalled. Nothing was sent. Verify the new key's fingerprint out of band (on that machine: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); only then remove the old one with `ssh-keygen -R {known_hosts_name}` and trust the new one with `ssh-keyscan -p {port} {hostname} >> ~/.ssh/known_hosts`")]
    HostKeyChanged {
        host: String,
        target: String,
        hostname: String,
        port: String,
        known_hosts_name: String,
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
            verify_ssh_host_key(&host.name, url, timeout_s).await?;
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

/// How long a strict host-key check holds for a destination before it is made again.
const HOST_KEY_CHECK_TTL: Duration = Duration::from_secs(600);

/// Checks the SSH host key of `url` strictly before bollard connects.
///
/// bollard's SSH transport (the `openssh` crate, which runs `ssh` for `docker system
/// dial-stdio`) hard-codes `StrictHostKeyChecking=accept-new`: it silently trusts a host
/// it has never seen (trust on first use, where the first use may be the attack).
/// OpenSSH's own safe setting is `yes`: an unknown or changed key is an error and the
/// operator adds the key after checking its fingerprint out of band (what `ssh` itself
/// asks an interactive user to do). So a non-interactive `ssh -o
/// StrictHostKeyChecking=yes -o BatchMode=yes DEST true` runs first; once it passed, the
/// key is in known_hosts, and bollard's accept-new then accepts only that key (a changed
/// key fails there too). A passed check is remembered for [`HOST_KEY_CHECK_TTL`] so a
/// refresh does not pay one more SSH handshake per host.
async fn verify_ssh_host_key(host: &str, url: &str, timeout_s: u64) -> Result<(), DockerError> {
    use std::collections::HashMap as Map;
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;
    static CHECKED: OnceLock<Mutex<Map<String, Instant>>> = OnceLock::new();
    let checked = CHECKED.get_or_init(Default::default);
    let fresh =
        |m: &Map<String, Instant>| m.get(url).is_some_and(|t| t.elapsed() < HOST_KEY_CHECK_TTL);
    if fresh(&checked.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(());
    }
    check_host_key_with(std::ffi::OsStr::new("ssh"), host, url, timeout_s).await?;
    checked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(url.to_string(), Instant::now());
    Ok(())
}

/// [`verify_ssh_host_key`] with the `ssh` program to run (tests pass a fake).
pub(crate) async fn check_host_key_with(
    ssh: &std::ffi::OsStr,
    host: &str,
    url: &str,
    timeout_s: u64,
) -> Result<(), DockerError> {
    let dest = url.trim_start_matches("ssh://");
    let connect = |message: String| DockerError::Connect {
        host: host.to_string(),
        endpoint: url.to_string(),
        message,
    };
    let out = tokio::time::timeout(
        Duration::from_secs(timeout_s + 2),
        tokio::process::Command::new(ssh)
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("ConnectTimeout={timeout_s}"))
            .args(["--", dest, "true"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| DockerError::Timeout {
        host: host.to_string(),
        timeout_ms: (timeout_s + 2) * 1000,
    })?
    .map_err(|e| connect(format!("cannot run ssh ({e}); install the OpenSSH client")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let changed = stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED");
    let unknown =
        stderr.contains("Host key verification failed") || stderr.contains("host key is known for");
    if !changed && !unknown {
        return Err(connect(format!(
            "ssh failed: {}",
            stderr.trim().lines().last().unwrap_or("no message")
        )));
    }
    // Where ssh really connects (a ~/.ssh/config alias resolved), for the commands.
    let (hostname, port) = resolve_ssh_dest(ssh, dest).await;
    let target = dest.to_string();
    let host = host.to_string();
    if changed {
        let known_hosts_name = if port == "22" {
            hostname.clone()
        } else {
            format!("[{hostname}]:{port}")
        };
        Err(DockerError::HostKeyChanged {
            host,
            target,
            hostname,
            port,
            known_hosts_name,
        })
    } else {
        Err(DockerError::HostKeyUnknown {
            host,
            target,
            hostname,
            port,
        })
    }
}

/// `ssh -G DEST`: the host name and port ssh would use; the destination itself and 22
/// when that fails.
async fn resolve_ssh_dest(ssh: &std::ffi::OsStr, dest: &str) -> (String, String) {
    let bare = dest.rsplit('@').next().unwrap_or(dest).to_string();
    let out = tokio::process::Command::new(ssh)
        .args(["-G", "--", dest])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return (bare, "22".into());
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    (
        field("hostname ").unwrap_or(bare),
        field("port ").unwrap_or_else(|| "22".into()),
    )
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

// ---------------------------------------------------------------------------------------
// A client pair's objects: what onboarding creates and offboarding removes. Every object
// carries `mai.client=<id>` (and `mai.managed-by=mai-console`), so a client's containers,
// network and volumes are found, and cleaned up, by label alone.

/// Marks the objects the console created (networks, volumes, containers).
pub const LABEL_MANAGED: &str = "mai.managed-by";
pub const MANAGED_BY: &str = "mai-console";
/// What a volume holds (`tracker-data`, `chat-data`, `secrets`).
pub const LABEL_VOLUME: &str = "mai.volume";

/// Long enough for a container to start or stop on a loaded host; the per-host timeout
/// of the fleet file is for quick reads.
const ACTION_TIMEOUT: Duration = Duration::from_secs(90);

fn slow(docker: &Docker) -> Docker {
    docker.clone().with_timeout(ACTION_TIMEOUT)
}

/// Whether a bollard error is the engine's 404 (no such object).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether the image is on the host (no registry is ever asked).
pub async fn image_present(docker: &Docker, host: &str, image: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(host, &format!("inspect the image {image}"))(e)),
    }
}

/// A host port some container publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// `0.0.0.0`, `127.0.0.1`, `::` ...
    pub ip: String,
    pub port: u16,
    pub container: String,
}

/// Every host port the host's containers publish (running or not: a stopped container
/// takes its ports back when it starts).
pub async fn published_ports(
    docker: &Docker,
    host: &str,
) -> Result<Vec<PublishedPort>, DockerError> {
    let opts = ListContainersOptionsBuilder::default().all(true).build();
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(api(host, "list containers"))?;
    let mut out = Vec::new();
    for c in list {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        for p in c.ports.iter().flatten() {
            if let Some(port) = p.public_port {
                out.push(PublishedPort {
                    ip: p.ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    port,
                    container: name.clone(),
                });
            }
        }
        // A created container has no port list yet: its host config says what it wants.
        if c.ports.as_ref().is_none_or(|p| p.is_empty()) {
            if let Some(id) = &c.id {
                if let Ok(i) = docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await
                {
                    let bindings = i
                        .host_config
                        .and_then(|h| h.port_bindings)
                        .unwrap_or_default();
                    for b in bindings.values().flatten().flatten() {
                        if let Some(port) = b.host_port.as_deref().and_then(|p| p.parse().ok()) {
                            out.push(PublishedPort {
                                ip: b
                                    .host_ip
                                    .clone()
                                    .filter(|i| !i.is_empty())
                                    .unwrap_or_else(|| "0.0.0.0".into()),
                                port,
                                container: name.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The labels of an object of `client`.
pub fn client_labels(client: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_CLIENT.to_string(), client.to_string()),
        (LABEL_MANAGED.to_string(), MANAGED_BY.to_string()),
    ]);
    for (k, v) in extra {
        l.insert(k.to_string(), v.to_string());
    }
    l
}

pub async fn create_network(
    docker: &Docker,
    host: &str,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), DockerError> {
    let req = bollard::models::NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(labels),
        ..Default::default()
    };
    slow(docker)
        .create_network(req)
        .await
        .map_err(api(host, &format!("create the network {name}")))?;
    Ok(())
}

pub async fn create_volume(
    docker: &Docker,
    host: &str,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), DockerError> {
    let req = bollard::models::VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    slow(docker)
        .create_volume(req)
        .await
        .map_err(api(host, &format!("create the volume {name}")))?;
    Ok(())
}

/// Creates (does not start) a container; returns its id.
pub async fn create_container(
    docker: &Docker,
    host: &str,
    name: &str,
    body: bollard::models::ContainerCreateBody,
) -> Result<String, DockerError> {
    let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(name)
        .build();
    let r = slow(docker)
        .create_container(Some(opts), body)
        .await
        .map_err(api(host, &format!("create the container {name}")))?;
    Ok(r.id)
}

pub async fn start_container(docker: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    slow(docker)
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(api(host, &format!("start the container {name}")))
}

/// Stops a container, giving it `grace_s` to finish cleanly (the tracker drains and
/// closes its ledger on SIGTERM). Stopping what is stopped or gone is not an error.
pub async fn stop_container(
    docker: &Docker,
    host: &str,
    name: &str,
    grace_s: i32,
) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::StopContainerOptionsBuilder::default()
        .t(grace_s)
        .build();
    match docker
        .clone()
        .with_timeout(ACTION_TIMEOUT + Duration::from_secs(grace_s.max(0) as u64))
        .stop_container(name, Some(opts))
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => Ok(()),
        Err(e) => Err(api(host, &format!("stop the container {name}"))(e)),
    }
}

/// Removes a container (forced: stopped first if it runs); gone already is fine.
pub async fn remove_container(docker: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    match slow(docker).remove_container(name, Some(opts)).await {
        Err(e) if !is_not_found(&e) => Err(api(host, &format!("remove the container {name}"))(e)),
        _ => Ok(()),
    }
}

pub async fn remove_network(docker: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    match slow(docker).remove_network(name).await {
        Err(e) if !is_not_found(&e) => Err(api(host, &format!("remove the network {name}"))(e)),
        _ => Ok(()),
    }
}

pub async fn remove_volume(docker: &Docker, host: &str, name: &str) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::RemoveVolumeOptionsBuilder::default().build();
    match slow(docker).remove_volume(name, Some(opts)).await {
        Err(e) if !is_not_found(&e) => Err(api(host, &format!("remove the volume {name}"))(e)),
        _ => Ok(()),
    }
}

/// One file to put into a container.
pub struct UploadFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// Writes files into directory `dir` of a (created or running) container, through the
/// engine's archive API: nothing is written on the console's machine or on the host's
/// file system outside the container's own layers and volumes.
pub async fn upload_files(
    docker: &Docker,
    host: &str,
    container: &str,
    dir: &str,
    files: &[UploadFile<'_>],
) -> Result<(), DockerError> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(f.bytes.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_mtime(Utc::now().timestamp().max(0) as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, f.name, f.bytes)
            .map_err(|e| DockerError::Api {
                host: host.to_string(),
                action: "pack files for the container".into(),
                message: e.to_string(),
            })?;
    }
    let tar = b.into_inner().map_err(|e| DockerError::Api {
        host: host.to_string(),
        action: "pack files for the container".into(),
        message: e.to_string(),
    })?;
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path(dir)
        .build();
    slow(docker)
        .upload_to_container(container, Some(opts), bollard::body_full(tar.into()))
        .await
        .map_err(api(host, &format!("write files into {container}:{dir}")))
}

/// Streams a tar archive of `path` in a container (running or stopped) into `out`;
/// returns the bytes read.
pub async fn download_tar(
    docker: &Docker,
    host: &str,
    container: &str,
    path: &str,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, DockerError> {
    let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let long = docker.clone().with_timeout(Duration::from_secs(3600));
    let mut s = Box::pin(long.download_from_container(container, Some(opts)));
    let mut n = 0u64;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(api(host, &format!("read {container}:{path}")))?;
        out.write_all(&chunk).map_err(|e| DockerError::Api {
            host: host.to_string(),
            action: format!("save {container}:{path}"),
            message: e.to_string(),
        })?;
        n += chunk.len() as u64;
    }
    Ok(n)
}

/// A container's state as onboarding waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub state: ContainerState,
    pub health: Option<ContainerHealth>,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
}

pub async fn container_status(
    docker: &Docker,
    host: &str,
    name: &str,
) -> Result<ContainerStatus, DockerError> {
    let i = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .map_err(api(host, &format!("inspect the container {name}")))?;
    let st = i.state.as_ref();
    Ok(ContainerStatus {
        state: st
            .and_then(|s| s.status.map(|x| x.to_string()))
            .map_or(ContainerState::Unknown, |s| ContainerState::from_docker(&s)),
        health: st
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .and_then(|h| ContainerHealth::from_docker(h.as_ref())),
        exit_code: st.and_then(|s| s.exit_code),
        restart_count: i.restart_count.unwrap_or(0),
    })
}

/// The last `n` log lines of a container, for an error message.
pub async fn log_tail(docker: &Docker, name: &str, n: u32) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let lines: Vec<String> = docker
        .logs(name, Some(opts))
        .take(n as usize * 4)
        .filter_map(|l| async move { l.ok().map(|l| l.to_string()) })
        .collect()
        .await;
    lines.concat().trim().to_string()
}

/// Everything on a host that carries `mai.client=<client>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientObjects {
    /// Container names (any role, running or not).
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl ClientObjects {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

pub async fn list_client_objects(
    docker: &Docker,
    host: &str,
    client: &str,
) -> Result<ClientObjects, DockerError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_CLIENT}={client}")],
    )]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(api(host, "list containers"))?
        .into_iter()
        .filter_map(|c| {
            c.names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .collect();
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(api(host, "list networks"))?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(api(host, "list volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    let mut o = ClientObjects {
        containers,
        networks,
        volumes,
    };
    o.containers.sort();
    o.networks.sort();
    o.volumes.sort();
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake `ssh`: answers `-G` like OpenSSH and fails the login with `stderr`.
    fn fake_ssh(dir: &std::path::Path, stderr: &str) -> std::path::PathBuf {
        let p = dir.join("ssh");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"$@\" >> {log}\nif [ \"$1\" = -G ]; then printf 'user deploy\\nhostname 10.0.0.5\\nport 2222\\n'; exit 0; fi\nprintf '%s\\n' \"{stderr}\" >&2\nexit 255\n",
                log = dir.join("args").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn unknown_host_key_is_an_error_naming_the_host_and_how_to_trust_it() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = fake_ssh(
            dir.path(),
            "No ED25519 host key is known for fsn1 and you have requested strict checking.\nHost key verification failed.",
        );
        let e = check_host_key_with(ssh.as_os_str(), "fsn1", "ssh://deploy@fsn1", 3)
            .await
            .unwrap_err();
        assert!(matches!(e, DockerError::HostKeyUnknown { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("deploy@fsn1")
                && msg.contains("ssh-keyscan -p 2222 10.0.0.5 >> ~/.ssh/known_hosts")
                && msg.contains("out of band"),
            "{msg}"
        );
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(
            args.contains("StrictHostKeyChecking=yes") && args.contains("BatchMode=yes"),
            "{args}"
        );
    }

    #[tokio::test]
    async fn changed_host_key_is_refused_with_the_removal_command() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = fake_ssh(
            dir.path(),
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.",
        );
        let e = check_host_key_with(ssh.as_os_str(), "fsn1", "ssh://deploy@fsn1", 3)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DockerError::HostKeyChanged { .. }), "{msg}");
        assert!(
            msg.contains("CHANGED") && msg.contains("ssh-keygen -R [10.0.0.5]:2222"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_known_host_passes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ssh");
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_host_key_with(p.as_os_str(), "h", "ssh://u@h", 3)
            .await
            .unwrap();
    }
}
