//! A client's life cycle on a plain Docker host: onboarding ([`onboard`]) and
//! offboarding ([`offboard`]), with the request checked field by field first
//! ([`validate`]) and the probe request that proves a new pair meters ([`probe`]).
//!
//! This module is the one place that knows what a deployed client *is*: the
//! [`ClientPair`] (names of its containers, network and volumes) and how its two
//! containers are configured ([`tracker_body`], [`chat_body`], [`secret_files`]). An
//! image update re-creates containers from the same definitions.
//!
//! What a client pair is on its host:
//! - a private bridge network `mai-<id>`; the tracker is `tracker` on it, so the chat
//!   app's OpenAI base URL is `http://tracker:8080/v1` and never leaves the host;
//! - `mai-<id>-tracker` (the tracker image, uid 10001) with its ledger on the volume
//!   `mai-<id>-tracker-data` at `/data`, and its secrets as files on the volume
//!   `mai-<id>-secrets`, mounted read-only at `/run/secrets` (`*_FILE` settings): the
//!   OpenRouter key, the three tokens and the Open WebUI JWT secret never appear in its
//!   environment, `docker inspect` or a log;
//! - `mai-<id>-chat` (Open WebUI, or what the request names) with its data on
//!   `mai-<id>-chat-data`, configured through its environment (it reads no files): the
//!   tracker as OpenAI base URL, the proxy token as its API key, user-info forwarding on
//!   and, in signed mode, the JWT secret;
//! - both published on the host's loopback (or the address given) and labelled
//!   `mai.client=<id>` with `mai.role` (what the fleet table discovers) and
//!   `mai.managed-by=mai-console` (what onboarding's undo and offboarding remove).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use crate::docker::{client_labels, UploadFile, LABEL_ROLE, LABEL_VERSION, LABEL_VOLUME};

pub mod offboard;
pub mod onboard;
pub mod probe;
pub mod validate;

pub use mai_wire::lifecycle::{
    BillingMonthCheck, Deployment, FieldError, LifecycleProgress, LifecycleStep, NewClient,
    OffboardCheck, OffboardResult, OnboardRequest, OnboardResult, StepState,
};

/// Why onboarding or offboarding did not complete; each message says what happened to
/// what was created and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("the new client's data is not valid: {}", field_list(.0))]
    Invalid(Vec<FieldError>),
    /// Nothing was created: the fleet file, the keychain, OpenRouter and the host are as
    /// they were.
    #[error("onboarding {client} stopped at {step} before anything was created: {message}")]
    NotStarted {
        client: String,
        step: String,
        message: String,
    },
    /// A step failed after something was created; `undo` says what was undone (and what
    /// could not be, with the command to finish it).
    #[error("onboarding {client} failed at {step}: {message}. {undo}")]
    Failed {
        client: String,
        step: String,
        message: String,
        undo: String,
    },
    /// Offboarding stopped; `done` lists what was already done. Running it again goes on
    /// from there.
    #[error("offboarding {client} stopped at {step}: {message}. {done}")]
    Offboard {
        client: String,
        step: String,
        message: String,
        done: String,
    },
    /// A front end's own refusal (maictl: a snippet it cannot read, a confirmation it
    /// cannot ask for); nothing was done.
    #[error("{0}")]
    Usage(String),
    /// The fleet file changed (a client added or marked) but cannot be loaded again.
    #[error("the fleet file cannot be loaded again after the change: {0}")]
    Reload(crate::fleet::FleetError),
}

impl LifecycleError {
    /// The per-field problems of an invalid request (the console shows them by field).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            LifecycleError::Invalid(v) => v,
            _ => &[],
        }
    }
}

fn field_list(v: &[FieldError]) -> String {
    v.iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The chat app when the request names none: Open WebUI at the version the end-to-end
/// test runs (scripts/env.sh `OPENWEBUI_VERSION`). It must already be on the host
/// (`docker pull` / `docker load` there); onboarding never pulls.
pub const DEFAULT_CHAT_IMAGE: &str = "ghcr.io/open-webui/open-webui:v0.12.4";
/// The tracker image deploy/build-images.sh builds (its default tag).
pub const DEFAULT_TRACKER_IMAGE: &str = "mai-tracker:dev";
/// Where the client's users reach the chat app inside its container (Open WebUI's port).
pub const CHAT_PORT: u16 = 8080;
/// Open WebUI's data directory (its SQLite database, uploads).
pub const CHAT_DATA_DIR: &str = "/app/backend/data";
/// The tracker's listening port inside its container (Dockerfile.tracker).
pub const TRACKER_PORT: u16 = 8080;
/// The tracker's plain-HTTP listener for the chat app on the client's private network
/// when [`TRACKER_PORT`] serves HTTPS ([`PairConfig::tls`]); never published.
pub const TRACKER_INTERNAL_PORT: u16 = 8081;
/// The tracker's data directory (ledger, journal, handed-over key, TLS files).
pub const TRACKER_DATA_DIR: &str = "/data";
/// The tracker's ledger inside its data directory (Dockerfile.tracker's MAI_TRACKER_DB).
pub const TRACKER_LEDGER_FILE: &str = "tracker.sqlite";
/// Where the tracker's secret files are mounted.
pub const SECRETS_DIR: &str = "/run/secrets";
/// The tracker's user (Dockerfile.tracker): its secret files belong to it, mode 0400.
pub const TRACKER_UID: u64 = 10001;
/// The chat app's name for the tracker on the client's network.
pub const TRACKER_ALIAS: &str = "tracker";
/// The host-gateway name the tracker container resolves (Docker's `host-gateway`): how a
/// tracker reaches an OpenRouter stand-in on its own host (tests, the demo).
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";

/// The names of one client's objects on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPair {
    pub client: String,
    pub network: String,
    pub tracker_container: String,
    pub chat_container: String,
    /// A container that is created (never started) only to write the secret files into
    /// the secrets volume, then removed.
    pub secrets_init_container: String,
    /// On a swarm host: a container created (never started) at offboarding only to read
    /// the tracker's volume, then removed.
    pub archive_container: String,
    pub tracker_volume: String,
    pub chat_volume: String,
    pub secrets_volume: String,
}

impl ClientPair {
    pub fn of(client: &str) -> ClientPair {
        let p = format!("mai-{client}");
        ClientPair {
            client: client.to_string(),
            network: p.clone(),
            tracker_container: format!("{p}-tracker"),
            chat_container: format!("{p}-chat"),
            secrets_init_container: format!("{p}-secrets-init"),
            archive_container: format!("{p}-archive"),
            tracker_volume: format!("{p}-tracker-data"),
            chat_volume: format!("{p}-chat-data"),
            secrets_volume: format!("{p}-secrets"),
        }
    }

    pub fn volumes(&self) -> [&str; 3] {
        [
            &self.tracker_volume,
            &self.chat_volume,
            &self.secrets_volume,
        ]
    }

    /// The labels of volume `kind` (`tracker-data`, `chat-data`, `secrets`).
    pub fn volume_labels(&self, kind: &str) -> HashMap<String, String> {
        client_labels(&self.client, &[(LABEL_VOLUME, kind)])
    }
}

/// The secret file names in [`SECRETS_DIR`] and the tracker settings that read them.
pub const SECRET_OPENROUTER_KEY: &str = "openrouter-key";
pub const SECRET_PROXY_TOKEN: &str = "proxy-token";
pub const SECRET_READ_TOKEN: &str = "read-token";
pub const SECRET_ADMIN_TOKEN: &str = "admin-token";
pub const SECRET_JWT: &str = "openwebui-jwt-secret";
/// The tracker's TLS certificate and key (PEM) when it serves HTTPS ([`TrackerCert`]).
pub const SECRET_TLS_CERT: &str = "tracker-tls-cert.pem";
pub const SECRET_TLS_KEY: &str = "tracker-tls-key.pem";

/// The secrets of one new client. Never logged, never serialized.
pub struct PairSecrets {
    pub openrouter_key: String,
    pub proxy_token: String,
    pub read_token: String,
    pub admin_token: String,
    /// Open WebUI's signing secret for user identity (signed mode only).
    pub jwt_secret: Option<String>,
    /// Open WebUI's own session secret (`WEBUI_SECRET_KEY`).
    pub webui_secret: String,
    /// The tracker's certificate when it serves HTTPS ([`PairConfig::tls`]).
    pub tls: Option<TrackerCert>,
}

/// A self-signed certificate the console makes for a tracker that serves HTTPS, handed
/// to it as secret files like its tokens: the console knows the pin before the tracker
/// starts, so nothing is trusted on first use over the network.
pub struct TrackerCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the certificate's DER: the fleet file's `tracker_cert_sha256`.
    pub pin: crate::fleet::CertFingerprint,
}

impl TrackerCert {
    /// ECDSA P-256, named for `address` (where the console reaches the tracker),
    /// [`TRACKER_ALIAS`] and loopback; the console checks the pin, not the names.
    pub fn generate(address: std::net::IpAddr) -> Result<TrackerCert, String> {
        use sha2::{Digest, Sha256};
        let mut names = vec![
            address.to_string(),
            TRACKER_ALIAS.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ];
        names.sort();
        names.dedup();
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("making the tracker's TLS certificate: {e}"))?;
        Ok(TrackerCert {
            cert_pem: ck.cert.pem(),
            key_pem: ck.key_pair.serialize_pem(),
            pin: crate::fleet::CertFingerprint(Sha256::digest(ck.cert.der()).into()),
        })
    }
}

impl std::fmt::Debug for PairSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairSecrets(…)")
    }
}

/// A random token: `prefix` and 32 random bytes in hex (64 characters), far above the
/// tracker's 16-character minimum and its JWT secret's 32 bytes.
pub fn random_token(prefix: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

impl PairSecrets {
    /// Fresh tokens for a client whose OpenRouter key is `openrouter_key`.
    pub fn generate(openrouter_key: String, signed_identity: bool) -> PairSecrets {
        PairSecrets {
            openrouter_key,
            proxy_token: random_token("mai-proxy-"),
            read_token: random_token("mai-read-"),
            admin_token: random_token("mai-admin-"),
            jwt_secret: signed_identity.then(|| random_token("")),
            webui_secret: random_token(""),
            tls: None,
        }
    }
}

/// The tracker's secret files: (file name, content).
pub fn secret_files(s: &PairSecrets) -> Vec<(&'static str, &str)> {
    let mut v = vec![
        (SECRET_OPENROUTER_KEY, s.openrouter_key.as_str()),
        (SECRET_PROXY_TOKEN, s.proxy_token.as_str()),
        (SECRET_READ_TOKEN, s.read_token.as_str()),
        (SECRET_ADMIN_TOKEN, s.admin_token.as_str()),
    ];
    if let Some(j) = &s.jwt_secret {
        v.push((SECRET_JWT, j.as_str()));
    }
    if let Some(t) = &s.tls {
        v.push((SECRET_TLS_CERT, t.cert_pem.as_str()));
        v.push((SECRET_TLS_KEY, t.key_pem.as_str()));
    }
    v
}

/// The files as [`crate::docker::upload_files`] writes them: the tracker's, read-only.
pub fn secret_uploads<'a>(files: &'a [(&'static str, &'a str)]) -> Vec<UploadFile<'a>> {
    files
        .iter()
        .map(|(name, content)| UploadFile {
            name,
            bytes: content.as_bytes(),
            mode: 0o400,
            uid: TRACKER_UID,
            gid: TRACKER_UID,
        })
        .collect()
}

/// The non-secret settings of one client pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairConfig {
    pub tracker_image: String,
    pub chat_image: String,
    pub publish_address: String,
    pub tracker_port: u16,
    pub chat_port: u16,
    pub org_name: String,
    /// OpenRouter's base as the tracker container reaches it.
    pub openrouter_base_url: String,
    /// The OpenRouter key's name (the tracker reports it and filters Broadcast spans by it).
    pub key_name: String,
    pub signed_identity: bool,
    /// HTTPS on the published port with the certificate in [`PairSecrets::tls`], plain
    /// HTTP for the chat app on [`TRACKER_INTERNAL_PORT`]: whenever the port is reachable
    /// off this machine (a remote host, a non-loopback address, a swarm's every node).
    pub tls: bool,
}

fn volume_mount(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::VOLUME),
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        read_only: Some(read_only),
        ..Default::default()
    }
}

fn published(
    address: &str,
    host_port: u16,
    container_port: u16,
) -> HashMap<String, Option<Vec<PortBinding>>> {
    HashMap::from([(
        format!("{container_port}/tcp"),
        Some(vec![PortBinding {
            host_ip: Some(address.to_string()),
            host_port: Some(host_port.to_string()),
        }]),
    )])
}

/// The tag of an image reference (`mai-tracker:dev` → `dev`), for `mai.version`.
fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t)
}

fn labels(pair: &ClientPair, role: &str, image: &str) -> HashMap<String, String> {
    let mut l = client_labels(&pair.client, &[(LABEL_ROLE, role)]);
    if let Some(t) = image_tag(image) {
        l.insert(LABEL_VERSION.to_string(), t.to_string());
    }
    l
}

fn on_network(pair: &ClientPair, aliases: Vec<String>) -> NetworkingConfig {
    NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            pair.network.clone(),
            EndpointSettings {
                aliases: Some(aliases),
                ..Default::default()
            },
        )])),
    }
}

/// The tracker's environment (plain container and Swarm service alike): every secret a
/// `*_FILE` path in [`SECRETS_DIR`].
pub fn tracker_env(pair: &ClientPair, cfg: &PairConfig) -> Vec<String> {
    let file = |name: &str| format!("{SECRETS_DIR}/{name}");
    let mut env = vec![
        format!("OPENROUTER_API_KEY_FILE={}", file(SECRET_OPENROUTER_KEY)),
        format!("OPENROUTER_API_KEY_NAME={}", cfg.key_name),
        format!("OPENROUTER_BASE_URL={}", cfg.openrouter_base_url),
        format!("MAI_ORG_ID={}", pair.client),
        format!("MAI_ORG_NAME={}", cfg.org_name),
        format!("MAI_TRACKER_PROXY_TOKEN_FILE={}", file(SECRET_PROXY_TOKEN)),
        format!("MAI_TRACKER_READ_TOKEN_FILE={}", file(SECRET_READ_TOKEN)),
        format!("MAI_TRACKER_ADMIN_TOKEN_FILE={}", file(SECRET_ADMIN_TOKEN)),
    ];
    if cfg.tls {
        env.push("MAI_TRACKER_TLS=on".to_string());
        env.push(format!("MAI_TRACKER_TLS_CERT={}", file(SECRET_TLS_CERT)));
        env.push(format!("MAI_TRACKER_TLS_KEY={}", file(SECRET_TLS_KEY)));
        env.push(format!(
            "MAI_TRACKER_INTERNAL_LISTEN=0.0.0.0:{TRACKER_INTERNAL_PORT}"
        ));
    } else {
        env.push("MAI_TRACKER_TLS=off".to_string());
    }
    if cfg.signed_identity {
        env.push(format!(
            "MAI_OPENWEBUI_JWT_SECRET_FILE={}",
            file(SECRET_JWT)
        ));
    }
    env
}

/// The tracker container. Every secret is a `*_FILE` path; plain HTTP is served when the
/// port is published on the local engine's loopback, HTTPS with the console's pinned
/// certificate otherwise ([`PairConfig::tls`]); the chat app talks plain HTTP to it on the
/// client's private network (crates/mai-tracker/README.md, TLS).
pub fn tracker_body(pair: &ClientPair, cfg: &PairConfig) -> ContainerCreateBody {
    let env = tracker_env(pair, cfg);
    ContainerCreateBody {
        image: Some(cfg.tracker_image.clone()),
        env: Some(env),
        labels: Some(labels(pair, "tracker", &cfg.tracker_image)),
        exposed_ports: Some(vec![format!("{TRACKER_PORT}/tcp")]),
        host_config: Some(HostConfig {
            mounts: Some(vec![
                volume_mount(&pair.tracker_volume, TRACKER_DATA_DIR, false),
                volume_mount(&pair.secrets_volume, SECRETS_DIR, true),
            ]),
            port_bindings: Some(published(
                &cfg.publish_address,
                cfg.tracker_port,
                TRACKER_PORT,
            )),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            network_mode: Some(pair.network.clone()),
            extra_hosts: Some(vec![format!("{HOST_GATEWAY_NAME}:host-gateway")]),
            ..Default::default()
        }),
        networking_config: Some(on_network(pair, vec![TRACKER_ALIAS.to_string()])),
        ..Default::default()
    }
}

/// The container that only carries the secrets volume, writable, for the upload.
pub fn secrets_init_body(pair: &ClientPair, tracker_image: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(tracker_image.to_string()),
        labels: Some(labels(pair, "secrets-init", tracker_image)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![volume_mount(&pair.secrets_volume, SECRETS_DIR, false)]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The chat app's environment (container and service alike).
pub fn chat_env(cfg: &PairConfig, s: &PairSecrets) -> Vec<String> {
    let mut env = vec![
        format!(
            "OPENAI_API_BASE_URL=http://{TRACKER_ALIAS}:{}/v1",
            if cfg.tls {
                TRACKER_INTERNAL_PORT
            } else {
                TRACKER_PORT
            }
        ),
        format!("OPENAI_API_KEY={}", s.proxy_token),
        "ENABLE_OLLAMA_API=false".to_string(),
        "ENABLE_FORWARD_USER_INFO_HEADERS=true".to_string(),
        format!("WEBUI_SECRET_KEY={}", s.webui_secret),
        format!("WEBUI_NAME={} (mAI)", cfg.org_name),
    ];
    if let Some(j) = &s.jwt_secret {
        env.push(format!("FORWARD_USER_INFO_HEADER_JWT_SECRET={j}"));
    }
    env
}

/// The chat app container (Open WebUI's settings; docs: ../shared/specs/openwebui.md).
/// Open WebUI reads its settings only from the environment, so the proxy token and, in
/// signed mode, the JWT secret are there: both allow only what the chat app itself does.
pub fn chat_body(pair: &ClientPair, cfg: &PairConfig, s: &PairSecrets) -> ContainerCreateBody {
    let env = chat_env(cfg, s);
    ContainerCreateBody {
        image: Some(cfg.chat_image.clone()),
        env: Some(env),
        labels: Some(labels(pair, "chat", &cfg.chat_image)),
        exposed_ports: Some(vec![format!("{CHAT_PORT}/tcp")]),
        host_config: Some(HostConfig {
            mounts: Some(vec![volume_mount(&pair.chat_volume, CHAT_DATA_DIR, false)]),
            port_bindings: Some(published(&cfg.publish_address, cfg.chat_port, CHAT_PORT)),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            network_mode: Some(pair.network.clone()),
            ..Default::default()
        }),
        networking_config: Some(on_network(pair, vec!["chat".to_string()])),
        ..Default::default()
    }
}

// ---- The same pair as Swarm services (a `mode = "swarm"` host; crate::swarm).

/// A Docker secret a tracker service mounts: the file name in [`SECRETS_DIR`] and the
/// secret (name and id) holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedSecret {
    pub file: String,
    pub name: String,
    pub id: String,
}

/// The labels of the client's Docker secret for `file` at `version`.
pub fn secret_labels(pair: &ClientPair, file: &str, version: u32) -> HashMap<String, String> {
    client_labels(
        &pair.client,
        &[
            (crate::swarm::LABEL_SECRET, file),
            (crate::swarm::LABEL_SECRET_VERSION, &version.to_string()),
        ],
    )
}

/// How long Swarm watches a new task before it calls an update done (and a failure
/// within it rolls the update back by Swarm's own failure action).
pub const SWARM_MONITOR: std::time::Duration = std::time::Duration::from_secs(5);

/// One task at a time, stop-first (the tracker's SQLite ledger must never have two
/// writers; host-mode ports cannot be held twice), rolled back by Swarm when a new task
/// fails within [`SWARM_MONITOR`]; its rollback likewise, pausing if that fails too.
fn update_configs() -> (
    bollard::models::ServiceSpecUpdateConfig,
    bollard::models::ServiceSpecRollbackConfig,
) {
    use bollard::models::{
        ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum as RbFail,
        ServiceSpecRollbackConfigOrderEnum as RbOrder, ServiceSpecUpdateConfig,
        ServiceSpecUpdateConfigFailureActionEnum as UpFail,
        ServiceSpecUpdateConfigOrderEnum as UpOrder,
    };
    let monitor = SWARM_MONITOR.as_nanos() as i64;
    (
        ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(UpFail::ROLLBACK),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(UpOrder::STOP_FIRST),
        },
        ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(RbFail::PAUSE),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(RbOrder::STOP_FIRST),
        },
    )
}

fn service_labels(pair: &ClientPair, role: &str, image: &str) -> HashMap<String, String> {
    let mut l = labels(pair, role, image);
    l.insert(crate::swarm::LABEL_IMAGE.to_string(), image.to_string());
    l
}

/// The parts both services share: one replica, Swarm's update and rollback settings,
/// the client's overlay network with `aliases`, the published port in host mode (Swarm
/// publishes on every address of the node: `publish_address` does not apply), the
/// placement constraints, a restart policy.
fn service_spec(
    pair: &ClientPair,
    name: &str,
    container: bollard::models::TaskSpecContainerSpec,
    aliases: &[&str],
    published: u16,
    target: u16,
    placement: &[String],
) -> bollard::models::ServiceSpec {
    use bollard::models::{
        EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
        EndpointSpec, EndpointSpecModeEnum, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
        ServiceSpecModeReplicated, TaskSpec, TaskSpecPlacement, TaskSpecRestartPolicy,
        TaskSpecRestartPolicyConditionEnum,
    };
    let (update, rollback) = update_configs();
    ServiceSpec {
        name: Some(name.to_string()),
        labels: container.labels.clone(),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(2_000_000_000),
                max_attempts: None,
                window: None,
            }),
            placement: (!placement.is_empty()).then(|| TaskSpecPlacement {
                constraints: Some(placement.to_vec()),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(pair.network.clone()),
                aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: Some(update),
        rollback_config: Some(rollback),
        // DNS round robin: `tracker` resolves to the task's own address on the overlay
        // network (no virtual IP through IPVS, which not every kernel offers; ports are
        // published in host mode, which needs no routing mesh).
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(vec![EndpointPortConfig {
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                target_port: Some(target as i64),
                published_port: Some(published as i64),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    }
}

fn volume_mount_labelled(source: &str, target: &str, labels: HashMap<String, String>) -> Mount {
    Mount {
        volume_options: Some(bollard::models::MountVolumeOptions {
            labels: Some(labels),
            ..Default::default()
        }),
        ..volume_mount(source, target, false)
    }
}

/// The tracker as a Swarm service running `image_id` (`sha256:…`: never pulled): the
/// same environment as [`tracker_body`], its secrets mounted from Docker secrets as the
/// same files (owner the tracker's user, mode 0400), its ledger on the named volume.
/// `gateway`: the node's address for [`HOST_GATEWAY_NAME`] (services have no
/// `host-gateway`).
pub fn tracker_service(
    pair: &ClientPair,
    cfg: &PairConfig,
    image_id: &str,
    secrets: &[MountedSecret],
    placement: &[String],
    gateway: Option<&str>,
) -> bollard::models::ServiceSpec {
    use bollard::models::{
        TaskSpecContainerSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    };
    let l = service_labels(pair, "tracker", &cfg.tracker_image);
    let container = TaskSpecContainerSpec {
        image: Some(image_id.to_string()),
        labels: Some(l),
        env: Some(tracker_env(pair, cfg)),
        mounts: Some(vec![volume_mount_labelled(
            &pair.tracker_volume,
            TRACKER_DATA_DIR,
            pair.volume_labels("tracker-data"),
        )]),
        secrets: Some(
            secrets
                .iter()
                .map(|s| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(s.file.clone()),
                        uid: Some(TRACKER_UID.to_string()),
                        gid: Some(TRACKER_UID.to_string()),
                        mode: Some(0o400),
                    }),
                    secret_id: Some(s.id.clone()),
                    secret_name: Some(s.name.clone()),
                })
                .collect(),
        ),
        hosts: gateway.map(|g| vec![format!("{g} {HOST_GATEWAY_NAME}")]),
        stop_grace_period: Some(30_000_000_000),
        ..Default::default()
    };
    service_spec(
        pair,
        &pair.tracker_container,
        container,
        &[TRACKER_ALIAS],
        cfg.tracker_port,
        TRACKER_PORT,
        placement,
    )
}

/// The chat app as a Swarm service running `image_id`: the environment of
/// [`chat_body`], its data on the named volume.
pub fn chat_service(
    pair: &ClientPair,
    cfg: &PairConfig,
    s: &PairSecrets,
    image_id: &str,
    placement: &[String],
) -> bollard::models::ServiceSpec {
    let container = bollard::models::TaskSpecContainerSpec {
        image: Some(image_id.to_string()),
        labels: Some(service_labels(pair, "chat", &cfg.chat_image)),
        env: Some(chat_env(cfg, s)),
        mounts: Some(vec![volume_mount_labelled(
            &pair.chat_volume,
            CHAT_DATA_DIR,
            pair.volume_labels("chat-data"),
        )]),
        stop_grace_period: Some(10_000_000_000),
        ..Default::default()
    };
    service_spec(
        pair,
        &pair.chat_container,
        container,
        &["chat"],
        cfg.chat_port,
        CHAT_PORT,
        placement,
    )
}

/// A container that is created (never started) on the manager only to read the
/// tracker's data volume when offboarding a Swarm client (its service is gone by then).
pub fn archive_body(pair: &ClientPair, tracker_image: &str) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(tracker_image.to_string()),
        labels: Some(labels(pair, "archive", tracker_image)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![volume_mount(
                &pair.tracker_volume,
                TRACKER_DATA_DIR,
                true,
            )]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reports the steps of one action, with the time since it started.
pub(crate) struct Reporter<'a> {
    client: String,
    started: std::time::Instant,
    sink: &'a (dyn Fn(LifecycleProgress) + Send + Sync),
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(client: &str, sink: &'a (dyn Fn(LifecycleProgress) + Send + Sync)) -> Self {
        Reporter {
            client: client.to_string(),
            started: std::time::Instant::now(),
            sink,
        }
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn report(&self, step: LifecycleStep, state: StepState, detail: Option<String>) {
        (self.sink)(LifecycleProgress {
            client_id: self.client.clone(),
            step,
            state,
            detail,
            elapsed_ms: self.elapsed_ms(),
        });
    }

    pub(crate) fn start(&self, step: LifecycleStep) {
        self.report(step, StepState::Started, None);
    }

    pub(crate) fn done(&self, step: LifecycleStep, detail: impl Into<Option<String>>) {
        self.report(step, StepState::Done, detail.into());
    }
}

/// A step's name as maictl prints it and error messages say it (`create_key`).
pub fn step_name(step: LifecycleStep) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PairConfig {
        PairConfig {
            tracker_image: "mai-tracker:dev".into(),
            chat_image: DEFAULT_CHAT_IMAGE.into(),
            publish_address: "127.0.0.1".into(),
            tracker_port: 18100,
            chat_port: 18101,
            org_name: "ACME Sp. z o.o.".into(),
            openrouter_base_url: "https://openrouter.ai/api/v1".into(),
            key_name: "mai-acme-20261124120000".into(),
            signed_identity: true,
            tls: false,
        }
    }

    #[test]
    fn no_secret_reaches_the_trackers_environment_or_labels() {
        let pair = ClientPair::of("acme");
        let s = PairSecrets::generate(
            "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            true,
        );
        let t = tracker_body(&pair, &cfg());
        let text = serde_json::to_string(&t).unwrap();
        for secret in [
            &s.openrouter_key,
            &s.proxy_token,
            &s.read_token,
            &s.admin_token,
        ] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
        let env = t.env.unwrap();
        assert!(env.contains(&"OPENROUTER_API_KEY_FILE=/run/secrets/openrouter-key".to_string()));
        assert!(env.contains(
            &"MAI_OPENWEBUI_JWT_SECRET_FILE=/run/secrets/openwebui-jwt-secret".to_string()
        ));
        assert!(!env.iter().any(|e| e.starts_with("OPENROUTER_API_KEY=")));
        let l = t.labels.unwrap();
        assert_eq!(l["mai.client"], "acme");
        assert_eq!(l["mai.role"], "tracker");
        assert_eq!(l["mai.version"], "dev");
        let hc = t.host_config.unwrap();
        let secrets = hc
            .mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.target.as_deref() == Some("/run/secrets"))
            .unwrap();
        assert_eq!(secrets.read_only, Some(true));
        let b = &hc.port_bindings.unwrap()["8080/tcp"];
        assert_eq!(b.as_ref().unwrap()[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b.as_ref().unwrap()[0].host_port.as_deref(), Some("18100"));
        // The tracker's files: read-only for its user.
        let files = secret_files(&s);
        assert_eq!(files.len(), 5);
        for u in secret_uploads(&files) {
            assert_eq!((u.mode, u.uid), (0o400, 10001));
        }
    }

    #[test]
    fn the_chat_app_uses_the_tracker_with_forwarded_and_signed_identity() {
        let pair = ClientPair::of("acme");
        let s = PairSecrets::generate("sk-or-v1-x".into(), true);
        let env = chat_body(&pair, &cfg(), &s).env.unwrap();
        assert!(env.contains(&"OPENAI_API_BASE_URL=http://tracker:8080/v1".to_string()));
        assert!(env.contains(&format!("OPENAI_API_KEY={}", s.proxy_token)));
        assert!(env.contains(&"ENABLE_FORWARD_USER_INFO_HEADERS=true".to_string()));
        assert!(env.contains(&format!(
            "FORWARD_USER_INFO_HEADER_JWT_SECRET={}",
            s.jwt_secret.as_deref().unwrap()
        )));
        assert!(!env.iter().any(|e| e.contains(&s.openrouter_key)));
        let plain = PairSecrets::generate("sk-or-v1-x".into(), false);
        let env = chat_body(
            &pair,
            &PairConfig {
                signed_identity: false,
                ..cfg()
            },
            &plain,
        )
        .env
        .unwrap();
        assert!(!env
            .iter()
            .any(|e| e.starts_with("FORWARD_USER_INFO_HEADER_JWT_SECRET")));
        assert_ne!(s.proxy_token, s.read_token);
        assert!(s.proxy_token.len() >= 16 && s.jwt_secret.unwrap().len() >= 32);
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("mai-tracker:dev"), Some("dev"));
        assert_eq!(
            image_tag("ghcr.io/open-webui/open-webui:v0.12.4"),
            Some("v0.12.4")
        );
        assert_eq!(image_tag("localhost:5000/x"), None);
        assert_eq!(step_name(LifecycleStep::CreateKey), "create_key");
    }
}
