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

/// The clients' containers of a plain host, or the clients' services of a swarm host
/// (one row per service, [`crate::swarm::list_client_services`]): what the fleet table
/// and the update preview discover, by the same labels.
pub async fn list_clients(docker: &Docker, host: &Host) -> Result<Vec<ContainerInfo>, DockerError> {
    match host.mode {
        crate::fleet::HostMode::Plain => list_client_containers(docker, &host.name).await,
        crate::fleet::HostMode::Swarm => {
            crate::swarm::list_client_services(docker, &host.name).await
        }
    }
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
    /// Swarm services and secrets (empty on an engine that is no swarm manager).
    pub services: Vec<String>,
    pub secrets: Vec<String>,
}

impl ClientObjects {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.services.is_empty()
            && self.secrets.is_empty()
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
    let (services, secrets) =
        crate::swarm::client_services_and_secrets(docker, host, client).await?;
    let mut o = ClientObjects {
        containers,
        networks,
        volumes,
        services,
        secrets,
    };
    o.containers.sort();
    o.networks.sort();
    o.volumes.sort();
    o.services.sort();
    o.secrets.sort();
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Image updates: a container recreated with another image, everything else kept; the old
// container parked (stopped, renamed) until the new one passed its health gate, so
// putting it back is a rename and a start, with the very same configuration and volumes.

/// An image as a host has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// `sha256:…`.
    pub id: String,
    pub config: Option<bollard::models::ImageConfig>,
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn not_modified(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

/// The image `name` on this host, or `None` when the host does not have it (no
/// registry is ever asked: images are built or loaded on the host).
pub async fn image(
    docker: &Docker,
    host: &str,
    name: &str,
) -> Result<Option<ImageInfo>, DockerError> {
    match docker.inspect_image(name).await {
        Ok(i) => Ok(Some(ImageInfo {
            id: i.id.unwrap_or_default(),
            config: i.config,
        })),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(api(host, &format!("inspect the image {name}"))(e)),
    }
}

/// The client's container of `role`, if it has one.
pub async fn find_container(
    docker: &Docker,
    host: &str,
    client: &str,
    role: ContainerRole,
) -> Result<Option<ContainerInfo>, DockerError> {
    match find(docker, host, client, role).await {
        Ok(c) => Ok(Some(c)),
        Err(DockerError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The name a container is parked under while its replacement is gated.
pub fn parked_name(name: &str) -> String {
    format!("{name}-mai-previous")
}

/// What [`recreate_body`] builds: the new container's name, its creation body, and the
/// networks to connect before it starts (an engine older than API 1.44 takes one
/// network at creation).
#[derive(Debug, Clone)]
pub struct RecreateSpec {
    pub name: String,
    pub body: bollard::models::ContainerCreateBody,
    pub extra_networks: Vec<(String, bollard::models::EndpointSettings)>,
}

/// The creation body of a container like `old` but from `image` (pure). What the old
/// image set by default (environment, command, entry point, labels, health check,
/// user, working directory, ports, volumes) is left to the new image, so the new one's
/// defaults apply; what the container itself set is kept. `mai.*` labels are always
/// kept: the console finds containers by them. Volumes stay: every volume mounted in
/// the old container (named or anonymous) is mounted at the same place, and host ports
/// published as "any free port" keep the port they got, so the tracker's URL holds.
pub fn recreate_body(
    old: &bollard::models::ContainerInspectResponse,
    old_image: Option<&bollard::models::ImageConfig>,
    image: &str,
) -> Result<RecreateSpec, String> {
    use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
    let name = old
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !n.is_empty())
        .ok_or("the container has no name")?;
    let cfg = old.config.clone().unwrap_or_default();
    let img = old_image.cloned().unwrap_or_default();
    let same = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| a.is_some() && a == b;
    let env = cfg.env.clone().map(|env| {
        let defaults = img.env.clone().unwrap_or_default();
        env.into_iter()
            .filter(|e| !defaults.contains(e))
            .collect::<Vec<_>>()
    });
    let labels = cfg.labels.clone().map(|l| {
        let defaults = img.labels.clone().unwrap_or_default();
        l.into_iter()
            .filter(|(k, v)| k.starts_with("mai.") || defaults.get(k) != Some(v))
            .collect::<HashMap<_, _>>()
    });
    let without = |v: &Option<Vec<String>>, d: &Option<Vec<String>>| {
        v.clone().map(|v| {
            let d = d.clone().unwrap_or_default();
            v.into_iter().filter(|x| !d.contains(x)).collect::<Vec<_>>()
        })
    };
    let unless_default = |v: &Option<String>, d: &Option<String>| {
        if v.is_some() && v == d {
            None
        } else {
            v.clone()
        }
    };
    let mut host_config = old.host_config.clone().unwrap_or_default();
    // Keep the host ports the old container got for "any free port" bindings.
    if let (Some(bindings), Some(actual)) = (
        host_config.port_bindings.as_mut(),
        old.network_settings.as_ref().and_then(|n| n.ports.as_ref()),
    ) {
        for (port, list) in bindings.iter_mut() {
            let Some(list) = list.as_mut() else { continue };
            let got = actual.get(port).cloned().flatten().unwrap_or_default();
            for (i, b) in list.iter_mut().enumerate() {
                if b.host_port.as_deref().unwrap_or("").is_empty() {
                    let same_ip = got
                        .iter()
                        .find(|g| {
                            g.host_ip.as_deref().unwrap_or("") == b.host_ip.as_deref().unwrap_or("")
                        })
                        .or_else(|| got.get(i));
                    if let Some(g) = same_ip {
                        b.host_port = g.host_port.clone();
                    }
                }
            }
        }
    }
    // Every volume of the old container at the same place (anonymous ones included:
    // they came from the old image's VOLUME and hold the data all the same).
    let mut covered: Vec<String> = Vec::new();
    for b in host_config.binds.iter().flatten() {
        if let Some(dest) = b.split(':').nth(1) {
            covered.push(dest.to_string());
        }
    }
    for m in host_config.mounts.iter().flatten() {
        if let Some(t) = &m.target {
            covered.push(t.clone());
        }
    }
    let mut binds = host_config.binds.clone().unwrap_or_default();
    for m in old.mounts.iter().flatten() {
        let (Some(dest), Some(name)) = (&m.destination, &m.name) else {
            continue;
        };
        if m.typ.as_deref() != Some("volume") || covered.contains(dest) {
            continue;
        }
        let ro = if m.rw == Some(false) { ":ro" } else { "" };
        binds.push(format!("{name}:{dest}{ro}"));
    }
    host_config.binds = (!binds.is_empty()).then_some(binds);
    // Networks: aliases and static addresses kept; the old container's id alias (Docker
    // adds the short id itself) and everything the engine assigns are left out.
    let short_id: String = old
        .id
        .clone()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    let mut endpoints: Vec<(String, EndpointSettings)> = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(net, e)| {
            let aliases = e.aliases.map(|a| {
                a.into_iter()
                    .filter(|x| *x != short_id && *x != name)
                    .collect::<Vec<_>>()
            });
            (
                net,
                EndpointSettings {
                    aliases: aliases.filter(|a| !a.is_empty()),
                    ipam_config: e.ipam_config,
                    links: e.links,
                    driver_opts: e.driver_opts,
                    ..Default::default()
                },
            )
        })
        .collect();
    endpoints.sort_by(|a, b| a.0.cmp(&b.0));
    let primary = host_config
        .network_mode
        .clone()
        .filter(|m| endpoints.iter().any(|(n, _)| n == m))
        .or_else(|| endpoints.first().map(|(n, _)| n.clone()));
    let (first, extra): (Vec<_>, Vec<_>) = endpoints
        .into_iter()
        .partition(|(n, _)| Some(n) == primary.as_ref());
    let body = ContainerCreateBody {
        hostname: None,
        domainname: cfg.domainname.clone().filter(|d| !d.is_empty()),
        user: unless_default(&cfg.user, &img.user),
        attach_stdin: cfg.attach_stdin,
        attach_stdout: cfg.attach_stdout,
        attach_stderr: cfg.attach_stderr,
        exposed_ports: without(&cfg.exposed_ports, &img.exposed_ports).filter(|p| !p.is_empty()),
        tty: cfg.tty,
        open_stdin: cfg.open_stdin,
        stdin_once: cfg.stdin_once,
        env,
        cmd: if same(&cfg.cmd, &img.cmd) {
            None
        } else {
            cfg.cmd.clone()
        },
        healthcheck: if cfg.healthcheck.is_some() && cfg.healthcheck == img.healthcheck {
            None
        } else {
            cfg.healthcheck.clone()
        },
        args_escaped: None,
        image: Some(image.to_string()),
        volumes: without(&cfg.volumes, &img.volumes).filter(|v| !v.is_empty()),
        working_dir: unless_default(&cfg.working_dir, &img.working_dir).filter(|w| !w.is_empty()),
        entrypoint: if same(&cfg.entrypoint, &img.entrypoint) {
            None
        } else {
            cfg.entrypoint.clone()
        },
        network_disabled: cfg.network_disabled,
        on_build: None,
        labels,
        stop_signal: unless_default(&cfg.stop_signal, &img.stop_signal),
        stop_timeout: cfg.stop_timeout,
        shell: if same(&cfg.shell, &img.shell) {
            None
        } else {
            cfg.shell.clone()
        },
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(first.into_iter().collect()),
        }),
    };
    Ok(RecreateSpec {
        name,
        body,
        extra_networks: extra,
    })
}

/// A container replaced by one of another image; its predecessor is parked (stopped,
/// renamed) until [`finish_recreate`] removes it or [`undo_recreate`] puts it back.
#[derive(Debug, Clone)]
pub struct Recreated {
    pub name: String,
    pub old_id: String,
    /// The old container's image as it was named when created (`name:tag`).
    pub old_image: String,
    pub old_image_id: String,
    pub new_id: String,
    pub new_image: String,
    /// The old container again, from its image, with the ports it had (a stopped
    /// container started again would take a new "any free port").
    restore: RecreateSpec,
}

/// Docker calls that wait for a container to stop or start get longer than listing.
fn slow_for(docker: &Docker, grace_s: i32) -> Docker {
    docker
        .clone()
        .with_timeout(Duration::from_secs(grace_s.max(0) as u64 + 60))
}

/// What a failed [`recreate_with_image`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Nothing was changed (the failure came before the old container was stopped).
    Untouched,
    /// The old container was stopped and is back, running as before.
    Restored,
    /// The old container could not be put back: the error says what to do by hand.
    Broken,
}

/// A failed [`recreate_with_image`]: why, and in which state it left the container.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RecreateFailed {
    pub error: DockerError,
    pub left: Left,
}

/// Recreates container `id` from `image` (which the host must have), keeping its name,
/// configuration, volumes, networks and published ports ([`recreate_body`]). The old
/// container is stopped (`grace_s` to stop cleanly) and parked under
/// [`parked_name`]; if the new one cannot be created or started it is removed and the
/// old one put back and started; the error says what it left ([`Left`]).
pub async fn recreate_with_image(
    docker: &Docker,
    host: &str,
    id: &str,
    image: &str,
    grace_s: i32,
) -> Result<Recreated, RecreateFailed> {
    let untouched = |error| RecreateFailed {
        error,
        left: Left::Untouched,
    };
    let d = slow_for(docker, grace_s);
    let prepared = prepare_recreate(&d, host, id, image)
        .await
        .map_err(untouched)?;
    let (spec, restore, old_id, old_image, old_image_id) = prepared;
    let parked = parked_name(&spec.name);
    swap(&d, host, &spec, &restore, &old_id, &parked, image, grace_s)
        .await
        .map(|new_id| Recreated {
            name: spec.name.clone(),
            old_id,
            old_image,
            old_image_id,
            new_id,
            new_image: image.to_string(),
            restore,
        })
}

/// What a recreate needs before touching anything: the new container's spec, the old
/// one's (to put it back), the old id and image. Checks the image exists and that no
/// container is parked already.
async fn prepare_recreate(
    d: &Docker,
    host: &str,
    id: &str,
    image: &str,
) -> Result<(RecreateSpec, RecreateSpec, String, String, String), DockerError> {
    let old = d
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(api(host, "inspect the container"))?;
    let old_id = old.id.clone().unwrap_or_else(|| id.to_string());
    let old_image_id = old.image.clone().unwrap_or_default();
    let old_image = old
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_else(|| old_image_id.clone());
    if self::image(d, host, image).await?.is_none() {
        return Err(DockerError::Api {
            host: host.into(),
            action: format!("find the image {image}"),
            message: format!("the host has no image {image}; build it there (deploy/build-images.sh) or `docker load` it, then update again"),
        });
    }
    let old_cfg = match self::image(d, host, &old_image_id).await? {
        Some(i) => i.config,
        None => None,
    };
    let spec = recreate_body(&old, old_cfg.as_ref(), image).map_err(|m| DockerError::Api {
        host: host.into(),
        action: "read the container's configuration".into(),
        message: m,
    })?;
    // The image to put back: its tag if that still names the same image, else its id.
    let back_to = match self::image(d, host, &old_image).await {
        Ok(Some(i)) if i.id == old_image_id => old_image.clone(),
        _ => old_image_id.clone(),
    };
    let restore =
        recreate_body(&old, old_cfg.as_ref(), &back_to).map_err(|m| DockerError::Api {
            host: host.into(),
            action: "read the container's configuration".into(),
            message: m,
        })?;
    let parked = parked_name(&spec.name);
    if d.inspect_container(&parked, None::<InspectContainerOptions>)
        .await
        .is_ok()
    {
        return Err(DockerError::Api {
            host: host.into(),
            action: format!("park {} while it is replaced", spec.name),
            message: format!("a container {parked} is left from an update that did not finish; check which of {parked} and {} holds the right image, remove the other (`docker rm`), and update again", spec.name),
        });
    }
    Ok((spec, restore, old_id, old_image, old_image_id))
}

/// Stops and parks the old container, creates and starts the new one; on failure puts
/// the old one back.
#[allow(clippy::too_many_arguments)]
async fn swap(
    d: &Docker,
    host: &str,
    spec: &RecreateSpec,
    restore: &RecreateSpec,
    old_id: &str,
    parked: &str,
    image: &str,
    grace_s: i32,
) -> Result<String, RecreateFailed> {
    use bollard::query_parameters::{
        RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
    };
    let fail = |error, left| RecreateFailed { error, left };
    match d
        .stop_container(
            old_id,
            Some(StopContainerOptionsBuilder::default().t(grace_s).build()),
        )
        .await
    {
        Ok(()) => {}
        Err(e) if not_modified(&e) => {}
        Err(e) => {
            // A stop that failed half way: make sure the old container runs.
            let _ = d
                .start_container(old_id, None::<StartContainerOptions>)
                .await;
            return Err(fail(api(host, "stop the container")(e), Left::Untouched));
        }
    }
    if let Err(e) = d
        .rename_container(
            old_id,
            RenameContainerOptionsBuilder::default()
                .name(parked)
                .build(),
        )
        .await
    {
        let e = api(host, "rename the stopped container")(e);
        return Err(
            match d
                .start_container(old_id, None::<StartContainerOptions>)
                .await
            {
                Ok(()) => fail(e, Left::Restored),
                Err(e2) if not_modified(&e2) => fail(e, Left::Restored),
                Err(e2) => fail(
                    DockerError::Api {
                        host: host.into(),
                        action: "start the previous container again".into(),
                        message: format!(
                            "{e}; then starting it again failed too ({e2}): `docker start {}`",
                            spec.name
                        ),
                    },
                    Left::Broken,
                ),
            },
        );
    }
    match create_and_start(d, host, spec, image).await {
        Ok(new_id) => Ok(new_id),
        Err(e) => {
            // Back to how it was: the half-made container gone, the old one running.
            let _ = remove_named_unless(d, &spec.name, old_id).await;
            match put_back(d, host, old_id, restore).await {
                Ok(()) => Err(fail(e, Left::Restored)),
                Err(b) => Err(fail(
                    DockerError::Api {
                        host: host.into(),
                        action: "put the previous container back".into(),
                        message: format!("{e}; then {b}"),
                    },
                    Left::Broken,
                )),
            }
        }
    }
}

/// Creates a container from `spec`, connects its other networks, starts it.
async fn create_and_start(
    d: &Docker,
    host: &str,
    spec: &RecreateSpec,
    image: &str,
) -> Result<String, DockerError> {
    use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
    let c = d
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&spec.name)
                    .build(),
            ),
            spec.body.clone(),
        )
        .await
        .map_err(api(host, &format!("create the container from {image}")))?;
    for (net, ep) in &spec.extra_networks {
        d.connect_network(
            net,
            bollard::models::NetworkConnectRequest {
                container: c.id.clone(),
                endpoint_config: Some(ep.clone()),
            },
        )
        .await
        .map_err(api(host, &format!("connect the new container to {net}")))?;
    }
    d.start_container(&c.id, None::<StartContainerOptions>)
        .await
        .map_err(api(host, &format!("start the container from {image}")))?;
    Ok(c.id)
}

/// Removes the container called `name` unless it is `keep_id` (force: it may run).
async fn remove_named_unless(
    d: &Docker,
    name: &str,
    keep_id: &str,
) -> Result<(), bollard::errors::Error> {
    use bollard::query_parameters::RemoveContainerOptionsBuilder;
    match d
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) if c.id.as_deref() != Some(keep_id) => {
            d.remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        }
        _ => Ok(()),
    }
}

/// Puts the previous container back under its name: recreated from its image with its
/// configuration and the very host ports it had, then the parked one removed (its
/// volumes stay: the restored container mounts them). Should that fail, the parked
/// container itself is renamed back and started (its "any free port" bindings may then
/// get other ports). The error says what is left to do.
async fn put_back(
    d: &Docker,
    host: &str,
    parked_id: &str,
    restore: &RecreateSpec,
) -> Result<(), DockerError> {
    use bollard::query_parameters::RemoveContainerOptionsBuilder;
    let name = &restore.name;
    let image = restore.body.image.clone().unwrap_or_default();
    match create_and_start(d, host, restore, &image).await {
        Ok(_) => {
            if let Err(e) = d
                .remove_container(
                    parked_id,
                    Some(RemoveContainerOptionsBuilder::default().build()),
                )
                .await
            {
                if !not_found(&e) {
                    tracing::warn!(host, container = %name, "the parked previous container could not be removed: {e}");
                }
            }
            Ok(())
        }
        Err(e) => {
            let _ = remove_named_unless(d, name, parked_id).await;
            restore_parked(d, host, parked_id, name).await.map_err(|b| DockerError::Api {
                host: host.into(),
                action: "put the previous container back".into(),
                message: format!(
                    "recreating it from {image} failed ({e}) and renaming the parked one back failed too ({b}); by hand: `docker rename {} {name} && docker start {name}`",
                    parked_name(name)
                ),
            })?;
            tracing::warn!(host, container = %name, "the previous container was restarted as it was (recreating it failed: {e}); a published \"any free port\" may have changed");
            Ok(())
        }
    }
}

/// The parked container renamed back and started.
async fn restore_parked(
    d: &Docker,
    host: &str,
    old_id: &str,
    name: &str,
) -> Result<(), DockerError> {
    use bollard::query_parameters::{RenameContainerOptionsBuilder, StartContainerOptions};
    d.rename_container(
        old_id,
        RenameContainerOptionsBuilder::default().name(name).build(),
    )
    .await
    .map_err(api(host, "rename the previous container back"))?;
    match d
        .start_container(old_id, None::<StartContainerOptions>)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if not_modified(&e) => Ok(()),
        Err(e) => Err(api(host, "start the previous container")(e)),
    }
}

/// Puts the previous container back: the new one stopped and removed (its volumes are
/// the old one's, so they stay), the previous one recreated from its own image with its
/// configuration, volumes and host ports ([`put_back`]).
pub async fn undo_recreate(docker: &Docker, host: &str, r: &Recreated) -> Result<(), DockerError> {
    use bollard::query_parameters::RemoveContainerOptionsBuilder;
    let d = slow_for(docker, 10);
    match d
        .remove_container(
            &r.new_id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
    {
        Ok(()) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => return Err(api(host, "remove the new container")(e)),
    }
    put_back(&d, host, &r.old_id, &r.restore).await
}

/// Keeps the new container: the parked one is removed (not its volumes).
pub async fn finish_recreate(
    docker: &Docker,
    host: &str,
    r: &Recreated,
) -> Result<(), DockerError> {
    use bollard::query_parameters::RemoveContainerOptionsBuilder;
    match slow_for(docker, 10)
        .remove_container(
            &r.old_id,
            Some(RemoveContainerOptionsBuilder::default().build()),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(api(host, "remove the previous container")(e)),
    }
}

/// How a container is doing, as its health gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Running; healthy if it has a health check.
    Healthy { has_healthcheck: bool },
    /// Running, its health check has not passed yet.
    Starting,
    /// Running, and its health check failed (`retries` times in a row).
    Unhealthy(String),
    /// Not running: its exit code and the end of its log.
    Down(String),
}

/// One look at a container for a health gate.
pub async fn liveness(docker: &Docker, host: &str, id: &str) -> Result<Liveness, DockerError> {
    use bollard::models::HealthStatusEnum;
    let c = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(api(host, "inspect the container"))?;
    let st = c.state.unwrap_or_default();
    if st.running != Some(true) || st.restarting == Some(true) {
        let tail = log_tail_joined(docker, id, 5).await;
        return Ok(Liveness::Down(format!(
            "not running (exit code {}{}){}",
            st.exit_code.unwrap_or_default(),
            st.error
                .filter(|e| !e.is_empty())
                .map(|e| format!(", {e}"))
                .unwrap_or_default(),
            if tail.is_empty() {
                String::new()
            } else {
                format!("; last log lines: {tail}")
            }
        )));
    }
    let health = st.health.unwrap_or_default();
    Ok(match health.status {
        None | Some(HealthStatusEnum::EMPTY) | Some(HealthStatusEnum::NONE) => Liveness::Healthy {
            has_healthcheck: false,
        },
        Some(HealthStatusEnum::HEALTHY) => Liveness::Healthy {
            has_healthcheck: true,
        },
        Some(HealthStatusEnum::STARTING) => Liveness::Starting,
        Some(HealthStatusEnum::UNHEALTHY) => Liveness::Unhealthy(
            health
                .log
                .and_then(|l| l.last().and_then(|r| r.output.clone()))
                .map(|o| o.trim().chars().take(200).collect())
                .unwrap_or_else(|| "its health check failed".into()),
        ),
    })
}

/// The last `n` log lines of a container, joined with ` | ` (empty when unreadable).
async fn log_tail_joined(docker: &Docker, id: &str, n: u32) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let lines: Vec<String> = docker
        .logs(id, Some(opts))
        .filter_map(|l| async move { l.ok().map(|l| l.to_string().trim().to_string()) })
        .collect()
        .await;
    lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join(" | ")
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

    /// `docker inspect` of a tracker started like deploy/gen-compose.sh starts one.
    fn inspected() -> (
        bollard::models::ContainerInspectResponse,
        bollard::models::ImageConfig,
    ) {
        let c = serde_json::json!({
            "Id": "0123456789abcdef0123", "Name": "/acme-tracker", "Image": "sha256:old",
            "Config": {
                "Image": "mai-tracker:0.1.0",
                "Env": ["MAI_ORG_ID=acme", "MAI_TRACKER_LISTEN=0.0.0.0:8080", "TMPDIR=/data"],
                "Entrypoint": ["/mai-tracker"],
                "Labels": {"mai.client": "acme", "mai.role": "tracker", "org.opencontainers.image.title": "mai-tracker", "mai.version": "0.1.0"},
                "ExposedPorts": {"8080/tcp": {}},
                "Volumes": {"/data": {}},
                "User": "10001:10001"
            },
            "HostConfig": {
                "Binds": ["/srv/secrets/acme.key:/run/secrets/key:ro"],
                "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                "NetworkMode": "mai-acme",
                "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}
            },
            "Mounts": [
                {"Type": "volume", "Name": "3f2a9c", "Source": "/var/lib/docker/volumes/3f2a9c/_data", "Destination": "/data", "RW": true},
                {"Type": "bind", "Source": "/srv/secrets/acme.key", "Destination": "/run/secrets/key", "RW": false}
            ],
            "NetworkSettings": {
                "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]},
                "Networks": {
                    "mai-acme": {"Aliases": ["tracker", "0123456789ab", "acme-tracker"], "NetworkID": "n1", "IPAddress": "172.20.0.2"},
                    "mai-shared": {"Aliases": ["acme-tracker"], "NetworkID": "n2"}
                }
            }
        });
        let img = serde_json::json!({
            "Env": ["MAI_TRACKER_LISTEN=0.0.0.0:8080", "TMPDIR=/data"],
            "Entrypoint": ["/mai-tracker"],
            "Labels": {"mai.role": "tracker", "org.opencontainers.image.title": "mai-tracker", "mai.version": "0.1.0"},
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/data": {}},
            "User": "10001:10001"
        });
        (
            serde_json::from_value(c).unwrap(),
            serde_json::from_value(img).unwrap(),
        )
    }

    #[test]
    fn a_recreated_container_keeps_its_own_settings_and_takes_the_new_images_defaults() {
        let (c, img) = inspected();
        let s = recreate_body(&c, Some(&img), "mai-tracker:0.2.0").unwrap();
        assert_eq!(s.name, "acme-tracker");
        let b = &s.body;
        assert_eq!(b.image.as_deref(), Some("mai-tracker:0.2.0"));
        // The container's own setting stays; the old image's defaults go.
        assert_eq!(b.env.as_deref(), Some(&["MAI_ORG_ID=acme".to_string()][..]));
        assert_eq!(b.entrypoint, None);
        assert_eq!(b.user, None);
        assert_eq!(b.exposed_ports, None);
        let labels = b.labels.clone().unwrap();
        assert_eq!(labels.get("mai.client").map(String::as_str), Some("acme"));
        // mai.* labels are ours to find containers by: kept even when the image set them.
        assert_eq!(labels.get("mai.role").map(String::as_str), Some("tracker"));
        assert!(!labels.contains_key("org.opencontainers.image.title"));
        let hc = b.host_config.clone().unwrap();
        // The anonymous /data volume and the key file, both at the same place.
        assert_eq!(
            hc.binds.unwrap(),
            ["/srv/secrets/acme.key:/run/secrets/key:ro", "3f2a9c:/data"]
        );
        // "Any free port" keeps the port it got, so the tracker's URL holds.
        let pb = hc.port_bindings.unwrap();
        assert_eq!(
            pb["8080/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("49153")
        );
        assert_eq!(
            hc.restart_policy
                .unwrap()
                .name
                .map(|n| n.to_string())
                .as_deref(),
            Some("unless-stopped")
        );
        // The primary network at creation, with its alias (not the id or the name); the
        // other connected before the start.
        let eps = b
            .networking_config
            .clone()
            .unwrap()
            .endpoints_config
            .unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            eps["mai-acme"].aliases.as_deref(),
            Some(&["tracker".to_string()][..])
        );
        assert_eq!(eps["mai-acme"].ip_address, None);
        assert_eq!(s.extra_networks.len(), 1);
        assert_eq!(s.extra_networks[0].0, "mai-shared");
        assert_eq!(s.extra_networks[0].1.aliases, None);
        // Without the old image (deleted since), everything the container has is kept.
        let s = recreate_body(&c, None, "mai-tracker:0.2.0").unwrap();
        assert_eq!(s.body.env.unwrap().len(), 3);
        assert_eq!(
            s.body.entrypoint.as_deref(),
            Some(&["/mai-tracker".to_string()][..])
        );
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
