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
