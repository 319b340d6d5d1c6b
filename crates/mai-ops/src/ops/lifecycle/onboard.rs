//! Onboarding: from a validated request to a client that chats, meters and is in the
//! fleet file, or to nothing at all.
//!
//! Order matters. Everything that can be checked without creating anything is checked
//! first (the form, the host answering, both images present, the ports not published by
//! another container, no leftovers of the id on the host, the management key). Then the
//! steps create, in order: the OpenRouter key, the keychain entries, the network, the
//! volumes, the secret files, the tracker, the chat app; wait until both answer; send a
//! metered probe; push the commercial terms; and only last write the fleet file, so a
//! failure anywhere leaves it untouched. A failed step undoes everything created, newest
//! first: containers and network removed, volumes removed, the key disabled through the
//! management API, the keychain entries deleted.

use std::time::Duration;

use chrono::Utc;
use mai_core::openrouter::{
    CreateKeyRequest, OpenRouterClient, OpenRouterError, SecretKey, UpdateKeyRequest,
};
use serde_json::json;

use super::probe::probe;
use super::validate::{validate, ValidRequest};
use super::{
    chat_body, chat_service, secret_files, secret_labels, secret_uploads, secrets_init_body,
    step_name, tracker_body, tracker_service, ClientPair, FieldError, LifecycleError,
    LifecycleProgress, LifecycleStep as S, MountedSecret, OnboardRequest, OnboardResult,
    PairConfig, PairSecrets, Reporter, StepState, TrackerCert, SECRETS_DIR,
};
use crate::audit::{os_user, AuditLog, AuditRecord};
use crate::docker::{self, ContainerHealth, ContainerState};
use crate::fleet::{Fleet, HostMode};
use crate::fleet_edit::{ClientEntry, FleetDoc, FleetEditError};
use crate::keys::{mask, SecretKind};
use crate::ops::{blocking, Ops, OpsError};
use crate::swarm;
use crate::tracker::TrackerClient;
use bollard::Docker;

/// How long the pair may take to answer after it started (Open WebUI needs ~20 s).
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(180);
/// How long the probe's generation may take to reach the tracker's ledger.
pub const PROBE_WITHIN: Duration = Duration::from_secs(30);

/// What onboarding created so far: what its undo removes, by name, so an undo never
/// touches an object this run did not make. A name is recorded before its create call,
/// so an object whose creation timed out is removed too.
#[derive(Debug, Default)]
struct Created {
    /// The OpenRouter key: (hash, name).
    key: Option<(String, String)>,
    keychain: bool,
    network: Option<String>,
    volumes: Vec<String>,
    containers: Vec<String>,
    /// Swarm services and secrets.
    services: Vec<String>,
    secrets: Vec<String>,
}

/// One onboarding per client id at a time (console and maictl share the data dir): a
/// lock file created exclusively, removed when onboarding ends.
struct OnboardLock(std::path::PathBuf);

impl OnboardLock {
    fn take(data_dir: &std::path::Path, id: &str) -> Result<OnboardLock, String> {
        let dir = data_dir.join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("onboard-{id}.lock"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                let _ = writeln!(f, "{} {}", std::process::id(), Utc::now().to_rfc3339());
                Ok(OnboardLock(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(format!(
                "another onboarding of {id} is running, or one was interrupted ({} exists); if no console or maictl is onboarding {id}, delete that file and retry",
                path.display()
            )),
            Err(e) => Err(format!("cannot create {}: {e}", path.display())),
        }
    }
}

impl Drop for OnboardLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A failed step: which, and what happened (with what to do).
type StepError = (S, String);

fn fail(step: S) -> impl FnOnce(String) -> StepError {
    move |m| (step, m)
}

/// What the operator should do about a failed key creation, from OpenRouter's answer.
pub fn key_refusal_advice(e: &OpenRouterError) -> String {
    match e {
        OpenRouterError::Api(a) if a.status == 402 => format!(
            "OpenRouter refused to create the key (HTTP 402: {}): the account has no credits left; add credits at https://openrouter.ai/credits and onboard again",
            a.message
        ),
        OpenRouterError::Api(a) if a.status == 401 || a.status == 403 => format!(
            "OpenRouter refused to create the key (HTTP {}: {}): the management key in the keychain may not create keys (or is disabled); check it at https://openrouter.ai/settings/provisioning-keys and store a working one with `maictl keys set-management`",
            a.status, a.message
        ),
        other => format!("OpenRouter did not create the key: {other}"),
    }
}

/// Docker's refusal to publish a port, in words naming the port and the fix.
pub fn port_advice(message: &str, addr: &str, port: u16, field: &str) -> Option<String> {
    let m = message.to_ascii_lowercase();
    (m.contains("address already in use") || m.contains("port is already allocated")).then(|| {
        format!(
            "port {addr}:{port} is already in use on the host (another program or container holds it); choose another {field} ({message})"
        )
    })
}

impl Ops {
    /// Checks an onboarding request against the fleet file as it is on disk now; empty
    /// when it is valid. Creates nothing.
    pub fn onboard_validate(&self, req: &OnboardRequest) -> Vec<FieldError> {
        let fleet = Fleet::load(&self.fleet.path).unwrap_or_else(|_| self.fleet.clone());
        validate(req, &fleet).err().unwrap_or_default()
    }

    /// Onboards a client (see the module docs); `progress` sees every step.
    pub async fn onboard(
        &self,
        req: &OnboardRequest,
        progress: &(dyn Fn(LifecycleProgress) + Send + Sync),
    ) -> Result<OnboardResult, OpsError> {
        let id = req.client.id.trim().to_string();
        let r = Reporter::new(&id, progress);
        let audit = AuditLog::in_dir(&self.fleet.console.data_dir);
        let not_started = |step: S, message: String| {
            r.report(step, StepState::Failed, Some(message.clone()));
            LifecycleError::NotStarted {
                client: id.clone(),
                step: step_name(step),
                message,
            }
        };

        r.start(S::Validate);
        let doc = FleetDoc::load(&self.fleet.path)
            .map_err(|e| not_started(S::Validate, e.to_string()))?;
        let fleet = doc
            .check()
            .map_err(|e| not_started(S::Validate, e.to_string()))?;
        let v = match validate(req, &fleet) {
            Ok(v) => v,
            Err(errs) => {
                let e = LifecycleError::Invalid(errs);
                r.report(S::Validate, StepState::Failed, Some(e.to_string()));
                return Err(e.into());
            }
        };
        r.done(S::Validate, None);

        r.start(S::Preflight);
        let _lock = OnboardLock::take(&self.fleet.console.data_dir, &v.id)
            .map_err(|m| not_started(S::Preflight, m))?;
        let (docker, or) = match self.preflight(&v).await {
            Ok(x) => x,
            Err(m) => return Err(not_started(S::Preflight, m).into()),
        };
        r.done(
            S::Preflight,
            Some(format!(
                "host {} answers; images {} and {} present",
                v.host.name, v.tracker_image, v.chat_image
            )),
        );

        let mut created = Created::default();
        match self
            .onboard_steps(&v, doc, &docker, &or, &r, &mut created)
            .await
        {
            Ok(result) => {
                audit.append(&AuditRecord {
                    at: Utc::now(),
                    actor: os_user(),
                    action: "onboard".into(),
                    client: v.id.clone(),
                    subject_hash: None,
                    outcome: "ok".into(),
                    detail: json!({
                        "host": v.host.name, "tracker_url": result.tracker_url,
                        "chat_url": result.chat_url, "key_hash": result.key_hash,
                        "key_name": result.key_name, "tracker_image": v.tracker_image,
                        "chat_image": v.chat_image, "signed_identity": v.signed_identity,
                        "probe_generation_id": result.probe_generation_id,
                        "elapsed_ms": result.elapsed_ms,
                    }),
                    error: None,
                })?;
                tracing::info!(client = %v.id, host = %v.host.name, ms = result.elapsed_ms, "client onboarded");
                Ok(result)
            }
            Err((step, message)) => {
                r.report(step, StepState::Failed, Some(message.clone()));
                let undo = self.undo(&v, &docker, &or, &created, &r).await;
                let audited = audit.append(&AuditRecord {
                    at: Utc::now(),
                    actor: os_user(),
                    action: "onboard".into(),
                    client: v.id.clone(),
                    subject_hash: None,
                    outcome: "failed".into(),
                    detail: json!({ "host": v.host.name, "step": step_name(step), "undo": undo }),
                    error: Some(message.clone()),
                });
                if let Err(e) = audited {
                    tracing::error!("{e}");
                }
                tracing::warn!(client = %v.id, step = %step_name(step), "onboarding failed: {message}");
                Err(LifecycleError::Failed {
                    client: v.id.clone(),
                    step: step_name(step),
                    message,
                    undo,
                }
                .into())
            }
        }
    }

    /// Everything checked before anything is created; the error says what to fix.
    async fn preflight(&self, v: &ValidRequest) -> Result<(Docker, OpenRouterClient), String> {
        let kc = self
            .keychain("onboarding a client")
            .map_err(|e| e.to_string())?
            .clone();
        let mgmt = blocking(move || kc.management_key())
            .await
            .map_err(|e| e.to_string())?;
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(|e| format!("the OpenRouter management client cannot be set up: {e}"))?;
        let host = &v.host.name;
        let d = docker::connect(&v.host).await.map_err(|e| {
            format!("Docker host {host} does not answer ({e}); nothing was created")
        })?;
        if v.host.mode == HostMode::Swarm {
            swarm::ensure_manager(&d, host)
                .await
                .map_err(|e| e.to_string())?;
        }
        for (field, image) in [
            ("tracker_image", &v.tracker_image),
            ("chat_image", &v.chat_image),
        ] {
            if !docker::image_present(&d, host, image)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!(
                    "the image {image} is not on host {host} (deploy.{field}); onboarding never pulls from a registry: build or load it there first (deploy/build-images.sh builds mai-tracker; `docker load` or `docker pull` on {host} for the chat app)"
                ));
            }
        }
        let addr = v.publish_address.to_string();
        for p in docker::published_ports(&d, host)
            .await
            .map_err(|e| e.to_string())?
        {
            let same_ip = p.ip == addr || p.ip == "0.0.0.0" || p.ip == "::";
            for (field, port) in [("tracker_port", v.tracker_port), ("chat_port", v.chat_port)] {
                if same_ip && p.port == port {
                    return Err(format!(
                        "port {addr}:{port} on host {host} is already published by the container {} (deploy.{field}); choose another port",
                        p.container
                    ));
                }
            }
        }
        let left = docker::list_client_objects(&d, host, &v.id)
            .await
            .map_err(|e| e.to_string())?;
        if !left.is_empty() {
            return Err(format!(
                "host {host} already has objects labelled mai.client={}: containers {:?}, networks {:?}, volumes {:?}, services {:?}, secrets {:?}; they belong to an earlier deployment of this id: remove them (docker rm -f / docker network rm / docker volume rm / docker service rm / docker secret rm) or choose another id",
                v.id, left.containers, left.networks, left.volumes, left.services, left.secrets
            ));
        }
        Ok((d, or))
    }

    async fn onboard_steps(
        &self,
        v: &ValidRequest,
        doc: FleetDoc,
        d: &Docker,
        or: &OpenRouterClient,
        r: &Reporter<'_>,
        created: &mut Created,
    ) -> Result<OnboardResult, StepError> {
        let host = v.host.name.as_str();
        let pair = ClientPair::of(&v.id);
        let today = self.today();

        r.start(S::CreateKey);
        let key_name = format!("mai-{}-{}", v.id, Utc::now().format("%Y%m%d%H%M%S"));
        let key_limit = mai_core::pricing::key_limit_usd(&v.terms, today);
        let new = or
            .keys_create(&CreateKeyRequest {
                name: key_name.clone(),
                limit: key_limit,
                limit_reset: key_limit.map(|_| "monthly".to_string()),
                ..Default::default()
            })
            .await
            .map_err(|e| (S::CreateKey, key_refusal_advice(&e)))?;
        let key = new.key.expose().to_string();
        let key_hash = new.info.hash.clone();
        created.key = Some((key_hash.clone(), key_name.clone()));
        r.done(
            S::CreateKey,
            Some(format!(
                "{key_name} ({}), limit {}",
                mask(&key),
                key_limit.map_or("none".to_string(), |l| format!("${l} per month"))
            )),
        );

        r.start(S::StoreSecrets);
        let mut secrets = PairSecrets::generate(key, v.signed_identity);
        if v.tracker_tls {
            secrets.tls =
                Some(TrackerCert::generate(v.publish_address).map_err(fail(S::StoreSecrets))?);
        }
        let kc = self
            .keychain("storing the new key")
            .map_err(|e| (S::StoreSecrets, e.to_string()))?
            .clone();
        let (cid, k, admin, read) = (
            v.id.clone(),
            secrets.openrouter_key.clone(),
            secrets.admin_token.clone(),
            secrets.read_token.clone(),
        );
        created.keychain = true;
        blocking(move || {
            kc.set(SecretKind::OpenRouter, &cid, &k)?;
            kc.set(SecretKind::TrackerToken, &cid, &admin)?;
            kc.set(SecretKind::TrackerReadToken, &cid, &read)
        })
        .await
        .map_err(|e| (S::StoreSecrets, e.to_string()))?;
        r.done(
            S::StoreSecrets,
            Some("OpenRouter key and tracker tokens in the keychain".into()),
        );

        let cfg = PairConfig {
            tracker_image: v.tracker_image.clone(),
            chat_image: v.chat_image.clone(),
            publish_address: v.publish_address.to_string(),
            tracker_port: v.tracker_port,
            chat_port: v.chat_port,
            org_name: v.legal_name.clone(),
            openrouter_base_url: v
                .tracker_openrouter_url
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            key_name: key_name.clone(),
            signed_identity: v.signed_identity,
            tls: v.tracker_tls,
        };
        match v.host.mode {
            HostMode::Plain => {
                self.deploy_plain(v, d, &pair, &secrets, &cfg, r, created)
                    .await?
            }
            HostMode::Swarm => {
                self.deploy_swarm(v, d, &pair, &secrets, &cfg, r, created)
                    .await?
            }
        }

        r.start(S::WaitHealthy);
        let tracker_url = v.tracker_url.as_str().trim_end_matches('/').to_string();
        // An https:// tracker is reached only with the certificate made above pinned.
        let tracker_http = match &secrets.tls {
            Some(t) => crate::tracker::pinned_http_client(t.pin, crate::ops::http_builder())
                .map_err(|e| {
                    (
                        S::WaitHealthy,
                        format!("setting up HTTPS to {tracker_url}: {e}"),
                    )
                })?,
            None => self.http.clone(),
        };
        let tracker = TrackerClient::new(
            tracker_http.clone(),
            v.tracker_url.clone(),
            secrets.read_token.clone(),
            Duration::from_secs(5),
        )
        .with_admin_token(Ok(secrets.admin_token.clone()));
        match v.host.mode {
            HostMode::Plain => {
                self.wait_healthy(
                    d,
                    &pair,
                    host,
                    (&tracker_http, &tracker_url),
                    v.chat_url.as_str(),
                    r,
                )
                .await
            }
            HostMode::Swarm => {
                self.wait_healthy_swarm(
                    d,
                    &pair,
                    host,
                    (&tracker_http, &tracker_url),
                    v.chat_url.as_str(),
                    r,
                )
                .await
            }
        }
        .map_err(fail(S::WaitHealthy))?;
        r.done(
            S::WaitHealthy,
            Some("tracker ready, chat app answering".into()),
        );

        r.start(S::Probe);
        let probe_id = match probe(
            &tracker_http,
            &tracker,
            &secrets.proxy_token,
            secrets.jwt_secret.as_deref(),
            PROBE_WITHIN,
        )
        .await
        {
            Ok(id) => id,
            Err(e) => {
                let logs = match v.host.mode {
                    HostMode::Plain => docker::log_tail(d, &pair.tracker_container, 15).await,
                    HostMode::Swarm => swarm::log_tail(d, host, &pair.tracker_container, 15).await,
                };
                return Err((
                    S::Probe,
                    format!("{e}; the tracker's last log lines:\n{logs}"),
                ));
            }
        };
        r.done(S::Probe, Some(format!("generation {probe_id} metered")));

        r.start(S::PushTerms);
        tracker
            .put_terms(&v.terms)
            .await
            .map_err(|e| (S::PushTerms, e.to_string()))?;
        r.done(S::PushTerms, None);

        r.start(S::WriteFleet);
        let pin = secrets.tls.as_ref().map(|t| t.pin);
        let entry = fleet_entry(v, (&tracker_url, pin), &pair, today);
        let mut doc = doc;
        let mut saved = None;
        for _ in 0..2 {
            doc.append_client(&v.id, &entry)
                .map_err(|e| (S::WriteFleet, e.to_string()))?;
            match doc.save() {
                Ok(f) => {
                    saved = Some(f);
                    break;
                }
                // Edited meanwhile: read it again and append to that (once).
                Err(FleetEditError::Changed { .. }) => {
                    doc = FleetDoc::load(&self.fleet.path)
                        .map_err(|e| (S::WriteFleet, e.to_string()))?;
                }
                Err(e) => return Err((S::WriteFleet, e.to_string())),
            }
        }
        saved.ok_or_else(|| {
            (
                S::WriteFleet,
                format!(
                    "{} kept changing while it was written",
                    self.fleet.path.display()
                ),
            )
        })?;
        r.done(S::WriteFleet, Some(self.fleet.path.display().to_string()));

        Ok(OnboardResult {
            client_id: v.id.clone(),
            host: host.to_string(),
            tracker_url,
            chat_url: v.chat_url.as_str().trim_end_matches('/').to_string(),
            tracker_container: pair.tracker_container.clone(),
            chat_container: pair.chat_container.clone(),
            network: pair.network.clone(),
            volumes: created.volumes.clone(),
            key_label: mask(&secrets.openrouter_key),
            key_hash,
            key_name,
            key_limit_usd: key_limit,
            signed_identity: v.signed_identity,
            probe_generation_id: probe_id,
            fleet_path: self.fleet.path.display().to_string(),
            audit_log: AuditLog::in_dir(&self.fleet.console.data_dir)
                .path()
                .display()
                .to_string(),
            elapsed_ms: r.elapsed_ms(),
        })
    }

    /// The pair as containers on a plain host: network, volumes, secret files, the two
    /// containers.
    #[allow(clippy::too_many_arguments)]
    async fn deploy_plain(
        &self,
        v: &ValidRequest,
        d: &Docker,
        pair: &ClientPair,
        secrets: &PairSecrets,
        cfg: &PairConfig,
        r: &Reporter<'_>,
        created: &mut Created,
    ) -> Result<(), StepError> {
        let host = v.host.name.as_str();
        r.start(S::CreateNetwork);
        created.network = Some(pair.network.clone());
        docker::create_network(d, host, &pair.network, docker::client_labels(&v.id, &[]))
            .await
            .map_err(|e| (S::CreateNetwork, e.to_string()))?;
        r.done(S::CreateNetwork, Some(pair.network.clone()));

        r.start(S::CreateVolumes);
        for (name, kind) in [
            (&pair.tracker_volume, "tracker-data"),
            (&pair.chat_volume, "chat-data"),
            (&pair.secrets_volume, "secrets"),
        ] {
            created.volumes.push(name.clone());
            docker::create_volume(d, host, name, pair.volume_labels(kind))
                .await
                .map_err(|e| (S::CreateVolumes, e.to_string()))?;
        }
        // The secret files: written into the secrets volume through a container that is
        // created (never started) only for that, then removed; the tracker mounts the
        // volume read-only.
        created.containers.push(pair.secrets_init_container.clone());
        docker::create_container(
            d,
            host,
            &pair.secrets_init_container,
            secrets_init_body(pair, &v.tracker_image),
        )
        .await
        .map_err(|e| (S::CreateVolumes, e.to_string()))?;
        let files = secret_files(secrets);
        docker::upload_files(
            d,
            host,
            &pair.secrets_init_container,
            SECRETS_DIR,
            &secret_uploads(&files),
        )
        .await
        .map_err(|e| (S::CreateVolumes, e.to_string()))?;
        docker::remove_container(d, host, &pair.secrets_init_container)
            .await
            .map_err(|e| (S::CreateVolumes, e.to_string()))?;
        created
            .containers
            .retain(|c| c != &pair.secrets_init_container);
        r.done(S::CreateVolumes, Some(pair.volumes().join(", ")));

        let addr = v.publish_address.to_string();
        let mut start = |step: S, name: String, body, port: u16, field: &'static str| {
            let addr = addr.clone();
            created.containers.push(name.clone());
            async move {
                docker::create_container(d, host, &name, body)
                    .await
                    .map_err(|e| (step, e.to_string()))?;
                docker::start_container(d, host, &name).await.map_err(|e| {
                    let m = e.to_string();
                    (step, port_advice(&m, &addr, port, field).unwrap_or(m))
                })
            }
        };
        r.start(S::StartTracker);
        start(
            S::StartTracker,
            pair.tracker_container.clone(),
            tracker_body(pair, cfg),
            v.tracker_port,
            "tracker port",
        )
        .await?;
        r.done(
            S::StartTracker,
            Some(format!("{} ({})", pair.tracker_container, v.tracker_image)),
        );
        r.start(S::StartChat);
        start(
            S::StartChat,
            pair.chat_container.clone(),
            chat_body(pair, cfg, secrets),
            v.chat_port,
            "chat port",
        )
        .await?;
        r.done(
            S::StartChat,
            Some(format!("{} ({})", pair.chat_container, v.chat_image)),
        );

        Ok(())
    }

    /// The pair as Swarm services: an attachable overlay network, the named volumes, the
    /// tracker's secrets as Docker secrets (version 1), the two services running the
    /// images by id (never pulled), placed by the request's constraints.
    #[allow(clippy::too_many_arguments)]
    async fn deploy_swarm(
        &self,
        v: &ValidRequest,
        d: &Docker,
        pair: &ClientPair,
        secrets: &PairSecrets,
        cfg: &PairConfig,
        r: &Reporter<'_>,
        created: &mut Created,
    ) -> Result<(), StepError> {
        let host = v.host.name.as_str();
        r.start(S::CreateNetwork);
        created.network = Some(pair.network.clone());
        swarm::create_overlay_network(d, host, &pair.network, docker::client_labels(&v.id, &[]))
            .await
            .map_err(|e| (S::CreateNetwork, e.to_string()))?;
        r.done(
            S::CreateNetwork,
            Some(format!("{} (overlay, attachable)", pair.network)),
        );

        r.start(S::CreateVolumes);
        for (name, kind) in [
            (&pair.tracker_volume, "tracker-data"),
            (&pair.chat_volume, "chat-data"),
        ] {
            created.volumes.push(name.clone());
            docker::create_volume(d, host, name, pair.volume_labels(kind))
                .await
                .map_err(|e| (S::CreateVolumes, e.to_string()))?;
        }
        let mut mounted = Vec::new();
        for (file, value) in secret_files(secrets) {
            let name = swarm::secret_name(&v.id, file, 1);
            created.secrets.push(name.clone());
            let id = swarm::create_secret(d, host, &name, value, secret_labels(pair, file, 1))
                .await
                .map_err(|e| (S::CreateVolumes, e.to_string()))?;
            mounted.push(MountedSecret {
                file: file.to_string(),
                name,
                id,
            });
        }
        r.done(
            S::CreateVolumes,
            Some(format!(
                "{}, {}; secrets {}",
                pair.tracker_volume,
                pair.chat_volume,
                mounted
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );

        let id_of = |image: &str, field: &str| {
            let image = image.to_string();
            let field = field.to_string();
            async move {
                swarm::image_id(d, host, &image)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!("the image {image} is not on host {host} (deploy.{field})")
                    })
            }
        };
        let gateway = swarm::node_gateway(d, host)
            .await
            .map_err(|e| (S::StartTracker, e.to_string()))?;
        r.start(S::StartTracker);
        let tracker_id = id_of(&v.tracker_image, "tracker_image")
            .await
            .map_err(fail(S::StartTracker))?;
        created.services.push(pair.tracker_container.clone());
        swarm::create_service(
            d,
            host,
            tracker_service(
                pair,
                cfg,
                &tracker_id,
                &mounted,
                &v.placement,
                gateway.as_deref(),
            ),
        )
        .await
        .map_err(|e| (S::StartTracker, e.to_string()))?;
        r.done(
            S::StartTracker,
            Some(format!(
                "service {} ({})",
                pair.tracker_container, v.tracker_image
            )),
        );
        r.start(S::StartChat);
        let chat_id = id_of(&v.chat_image, "chat_image")
            .await
            .map_err(fail(S::StartChat))?;
        created.services.push(pair.chat_container.clone());
        swarm::create_service(
            d,
            host,
            chat_service(pair, cfg, secrets, &chat_id, &v.placement),
        )
        .await
        .map_err(|e| (S::StartChat, e.to_string()))?;
        r.done(
            S::StartChat,
            Some(format!(
                "service {} ({})",
                pair.chat_container, v.chat_image
            )),
        );
        Ok(())
    }

    /// [`Self::wait_healthy`] for Swarm services: each runs a task of its image (a task
    /// Swarm cannot place fails at once), then the tracker is ready and the chat app
    /// answers on their published ports.
    async fn wait_healthy_swarm(
        &self,
        d: &Docker,
        pair: &ClientPair,
        host: &str,
        (tracker_http, tracker_url): (&reqwest::Client, &str),
        chat_url: &str,
        r: &Reporter<'_>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + HEALTHY_WITHIN;
        for name in [&pair.tracker_container, &pair.chat_container] {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match swarm::wait_converged(d, host, name, left).await {
                Ok(_) => r.report(
                    S::WaitHealthy,
                    StepState::Started,
                    Some(format!("service {name} runs")),
                ),
                Err(e) => {
                    let logs = swarm::log_tail(d, host, name, 15).await;
                    return Err(if logs.is_empty() {
                        e.to_string()
                    } else {
                        format!("{e}; its last log lines:\n{logs}")
                    });
                }
            }
        }
        for (name, http, url) in [
            (
                &pair.tracker_container,
                tracker_http,
                format!("{tracker_url}/readyz"),
            ),
            (
                &pair.chat_container,
                &self.http,
                format!("{}/health", chat_url.trim_end_matches('/')),
            ),
        ] {
            loop {
                let ok = http
                    .get(&url)
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    let logs = swarm::log_tail(d, host, name, 15).await;
                    return Err(format!(
                        "the service {name} did not answer {url} within {} s; its last log lines:\n{logs}",
                        HEALTHY_WITHIN.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
        Ok(())
    }

    /// Until the tracker is ready (`/readyz`) and the chat app answers (`/health`, or
    /// its image's healthcheck says healthy); fails at once when a container exits or
    /// restarts, with its last log lines.
    async fn wait_healthy(
        &self,
        d: &Docker,
        pair: &ClientPair,
        host: &str,
        (tracker_http, tracker_url): (&reqwest::Client, &str),
        chat_url: &str,
        r: &Reporter<'_>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + HEALTHY_WITHIN;
        let ok = |http: &reqwest::Client, url: String| {
            let http = http.clone();
            async move {
                http.get(url)
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        };
        let (mut tracker_ok, mut chat_ok) = (false, false);
        loop {
            for (name, ok_now) in [
                (&pair.tracker_container, &mut tracker_ok),
                (&pair.chat_container, &mut chat_ok),
            ] {
                if *ok_now {
                    continue;
                }
                let st = docker::container_status(d, host, name)
                    .await
                    .map_err(|e| e.to_string())?;
                if matches!(st.state, ContainerState::Exited | ContainerState::Dead)
                    || st.restart_count > 0
                    || st.health == Some(ContainerHealth::Unhealthy)
                {
                    let logs = docker::log_tail(d, name, 15).await;
                    return Err(format!(
                        "the container {name} {} (exit code {}); its last log lines:\n{logs}",
                        if st.health == Some(ContainerHealth::Unhealthy) {
                            "is unhealthy".to_string()
                        } else {
                            format!("stopped ({})", st.state)
                        },
                        st.exit_code.map_or("-".into(), |c| c.to_string())
                    ));
                }
                if name == &pair.chat_container && st.health == Some(ContainerHealth::Healthy) {
                    *ok_now = true;
                }
            }
            if !tracker_ok && ok(tracker_http, format!("{tracker_url}/readyz")).await {
                tracker_ok = true;
                r.report(
                    S::WaitHealthy,
                    StepState::Started,
                    Some("tracker ready".into()),
                );
            }
            if !chat_ok
                && ok(
                    &self.http,
                    format!("{}/health", chat_url.trim_end_matches('/')),
                )
                .await
            {
                chat_ok = true;
                r.report(
                    S::WaitHealthy,
                    StepState::Started,
                    Some("chat app answering".into()),
                );
            }
            if tracker_ok && chat_ok {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let who = if tracker_ok {
                    &pair.chat_container
                } else {
                    &pair.tracker_container
                };
                let logs = docker::log_tail(d, who, 15).await;
                return Err(format!(
                    "{who} did not become ready within {} s; its last log lines:\n{logs}",
                    HEALTHY_WITHIN.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Undoes what a failed onboarding created, newest first; returns what it did, for
    /// the error message and the audit log.
    async fn undo(
        &self,
        v: &ValidRequest,
        d: &Docker,
        or: &OpenRouterClient,
        created: &Created,
        r: &Reporter<'_>,
    ) -> String {
        let host = v.host.name.as_str();
        let mut done = Vec::new();
        let mut left = Vec::new();
        if !created.services.is_empty() {
            r.start(S::UndoContainers);
            for svc in created.services.iter().rev() {
                match swarm::remove_service(d, host, svc).await {
                    Ok(()) => done.push(format!("service {svc} removed")),
                    Err(e) => left.push(format!("service {svc} ({e}): `docker service rm {svc}`")),
                }
            }
            // The tasks' containers go asynchronously; volumes and the network after them.
            if let Err(e) =
                swarm::wait_containers_gone(d, host, &v.id, &[], Duration::from_secs(60)).await
            {
                left.push(format!("containers of the services: {e}"));
            }
            r.done(S::UndoContainers, Some(created.services.join(", ")));
        }
        for sec in created.secrets.iter().rev() {
            match swarm::remove_secret(d, host, sec).await {
                Ok(()) => done.push(format!("secret {sec} removed")),
                Err(e) => left.push(format!("secret {sec} ({e}): `docker secret rm {sec}`")),
            }
        }
        if !created.containers.is_empty() {
            r.start(S::UndoContainers);
            for c in created.containers.iter().rev() {
                match docker::remove_container(d, host, c).await {
                    Ok(()) => done.push(format!("container {c} removed")),
                    Err(e) => left.push(format!("container {c} ({e}): `docker rm -f {c}`")),
                }
            }
            r.done(S::UndoContainers, Some(created.containers.join(", ")));
        }
        if let Some(n) = &created.network {
            r.start(S::UndoNetwork);
            match swarm::remove_network_when_free(d, host, n, Duration::from_secs(30)).await {
                Ok(()) => done.push(format!("network {n} removed")),
                Err(e) => left.push(format!("network {n} ({e}): `docker network rm {n}`")),
            }
            r.done(S::UndoNetwork, Some(n.clone()));
        }
        if !created.volumes.is_empty() {
            r.start(S::UndoVolumes);
            for vol in created.volumes.iter().rev() {
                match docker::remove_volume(d, host, vol).await {
                    Ok(()) => done.push(format!("volume {vol} removed")),
                    Err(e) => left.push(format!("volume {vol} ({e}): `docker volume rm {vol}`")),
                }
            }
            r.done(S::UndoVolumes, Some(created.volumes.join(", ")));
        }
        if let Some((hash, name)) = &created.key {
            r.start(S::UndoKey);
            let disable = UpdateKeyRequest {
                disabled: Some(true),
                ..Default::default()
            };
            match or.keys_update(hash, &disable).await {
                Ok(_) => {
                    done.push(format!("OpenRouter key {name} disabled"));
                    r.done(S::UndoKey, Some(name.clone()));
                }
                Err(e) => {
                    left.push(format!("the OpenRouter key {name} (hash {hash}) is still enabled ({e}): disable or delete it on openrouter.ai"));
                    r.report(S::UndoKey, StepState::Failed, Some(e.to_string()));
                }
            }
        }
        if created.keychain {
            r.start(S::UndoSecrets);
            let kc = self.keychain.clone();
            let id = v.id.clone();
            let res = blocking(move || {
                let Some(kc) = kc else { return Ok(()) };
                kc.delete(SecretKind::OpenRouter, &id)?;
                kc.delete(SecretKind::TrackerToken, &id)?;
                kc.delete(SecretKind::TrackerReadToken, &id)
            })
            .await;
            match res {
                Ok(()) => {
                    done.push("keychain entries deleted".into());
                    r.done(S::UndoSecrets, None);
                }
                Err(e) => {
                    left.push(format!(
                        "the keychain entries of {} ({e}): delete them with `maictl keys delete`",
                        v.id
                    ));
                    r.report(S::UndoSecrets, StepState::Failed, Some(e.to_string()));
                }
            }
        }
        let mut out = if done.is_empty() {
            "Nothing had been created".to_string()
        } else {
            format!("Undone: {}", done.join("; "))
        };
        out.push_str("; the fleet file was not changed");
        if !left.is_empty() {
            out.push_str(&format!(". NOT undone, do it by hand: {}", left.join("; ")));
        }
        out
    }
}

/// The new `[[clients]]` entry, keys in fleet.example.toml's order.
fn fleet_entry(
    v: &ValidRequest,
    (tracker_url, pin): (&str, Option<crate::fleet::CertFingerprint>),
    pair: &ClientPair,
    today: chrono::NaiveDate,
) -> ClientEntry {
    let s = |x: &str| toml_edit::Value::from(x);
    let mut fields: Vec<(&'static str, toml_edit::Value)> =
        vec![("id", s(&v.id)), ("legal_name", s(&v.legal_name))];
    let invoice = |k: &str| {
        v.invoice_fields
            .iter()
            .find(|(f, _)| *f == k)
            .map(|(_, x)| s(x))
    };
    for k in ["nip", "vat_id", "address", "address_line2", "country"] {
        if let Some(x) = invoice(k) {
            fields.push((k, x));
        }
    }
    fields.push(("host", s(&v.host.name)));
    if !v.placement.is_empty() {
        fields.push((
            "placement",
            crate::fleet_edit::placement_value(&v.placement),
        ));
    }
    fields.push((
        "markup",
        s(&v.terms.markup.rate_on(today).normalize().to_string()),
    ));
    if let Some(l) = v.terms.monthly_limit_usd {
        fields.push(("monthly_limit_usd", s(&l.normalize().to_string())));
    }
    for k in ["invoice_currency", "vat", "invoice_email"] {
        if let Some(x) = invoice(k) {
            fields.push((k, x));
        }
    }
    fields.push(("tracker_url", s(tracker_url)));
    if let Some(p) = pin {
        fields.push(("tracker_cert_sha256", s(&p.to_string())));
    }
    fields.push(("tracker_read_token", s("keychain")));
    fields.push(("tracker_admin_token", s("keychain")));
    ClientEntry {
        comment: Some(format!(
            "Onboarded {today} by {} ({} and {} on host {}).",
            os_user(),
            pair.tracker_container,
            pair.chat_container,
            v.host.name
        )),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_onboarding_per_client_id_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = OnboardLock::take(dir.path(), "acme").unwrap();
        let e = OnboardLock::take(dir.path(), "acme").err().unwrap();
        assert!(e.contains("another onboarding of acme is running"), "{e}");
        OnboardLock::take(dir.path(), "other").unwrap();
        drop(first);
        OnboardLock::take(dir.path(), "acme").unwrap();
    }

    #[test]
    fn refusals_say_what_to_do() {
        let api = |status: u16, msg: &str| {
            OpenRouterError::Api(mai_core::openrouter::ApiError::from_response(
                "POST /keys",
                status,
                &Default::default(),
                format!(r#"{{"error":{{"code":{status},"message":"{msg}"}}}}"#).as_bytes(),
            ))
        };
        let m = key_refusal_advice(&api(402, "Insufficient credits"));
        assert!(
            m.contains("402") && m.contains("openrouter.ai/credits"),
            "{m}"
        );
        let m = key_refusal_advice(&api(403, "Only management keys can perform this operation"));
        assert!(
            m.contains("403") && m.contains("maictl keys set-management"),
            "{m}"
        );
        let m = port_advice(
            "Docker on host local failed to start the container mai-a-tracker: ... listen tcp4 127.0.0.1:18100: bind: address already in use",
            "127.0.0.1",
            18100,
            "tracker port",
        )
        .unwrap();
        assert!(
            m.starts_with("port 127.0.0.1:18100 is already in use"),
            "{m}"
        );
        assert!(port_advice("no such image", "127.0.0.1", 1, "x").is_none());
    }
}
