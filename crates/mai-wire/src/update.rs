//! Updating the fleet's container images (canary, health gate, automatic rollback): the
//! console's IPC, and maictl's `--json` output.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::console::ContainerRole;

/// How many clients are updated at once after the canary, unless told otherwise.
pub const DEFAULT_PARALLELISM: u32 = 4;
/// How long one client's health gate may take, unless told otherwise (ms).
pub const DEFAULT_GATE_TIMEOUT_MS: u64 = 60_000;

/// `fleet_update`'s argument: the images to run and how carefully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UpdatePlan {
    /// The trackers' new image (`name:tag` or an image id) as the hosts have it; no
    /// registry is asked. Absent: trackers are left as they are.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub tracker_image: Option<String>,
    /// The chat apps' new image. Absent: chat containers are left as they are.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub chat_image: Option<String>,
    /// Clients updated at once after the canary (1 to 32).
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Longest wait for one client's health gate, in ms.
    #[serde(default = "default_gate_timeout_ms")]
    pub gate_timeout_ms: u64,
    /// Only these clients (ids); empty = every client of the fleet file.
    #[serde(default)]
    pub clients: Vec<String>,
    /// The client updated first, alone; default: the first one that needs the update.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub canary: Option<String>,
}

fn default_parallelism() -> u32 {
    DEFAULT_PARALLELISM
}

fn default_gate_timeout_ms() -> u64 {
    DEFAULT_GATE_TIMEOUT_MS
}

impl Default for UpdatePlan {
    fn default() -> Self {
        UpdatePlan {
            tracker_image: None,
            chat_image: None,
            parallelism: DEFAULT_PARALLELISM,
            gate_timeout_ms: DEFAULT_GATE_TIMEOUT_MS,
            clients: Vec::new(),
            canary: None,
        }
    }
}

/// What the preview decided for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Runs another image than the target: will be updated.
    Update,
    /// Already runs the target image (same image id).
    UpToDate,
    /// The client has no container of this role on its host.
    NoContainer,
    /// The host does not have the target image (build or `docker load` it there).
    ImageMissing,
    /// The host could not be asked (see `detail`).
    HostError,
}

/// One container of one client: the image running versus the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ImageTarget {
    pub role: ContainerRole,
    pub container: Option<String>,
    /// The image the container was created from, as named then (`name:tag`).
    pub current_image: Option<String>,
    /// Its image id (`sha256:…`).
    pub current_id: Option<String>,
    pub target_image: String,
    pub target_id: Option<String>,
    pub state: TargetState,
    pub detail: Option<String>,
}

/// One client's part of an update plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientUpdatePreview {
    pub client_id: String,
    pub host: String,
    pub targets: Vec<ImageTarget>,
}

impl ClientUpdatePreview {
    /// Some container of the client will be recreated.
    pub fn needs_update(&self) -> bool {
        self.targets.iter().any(|t| t.state == TargetState::Update)
    }

    /// Something stops this client from being updated (missing image, host error).
    pub fn blocker(&self) -> Option<&ImageTarget> {
        self.targets
            .iter()
            .find(|t| matches!(t.state, TargetState::ImageMissing | TargetState::HostError))
    }
}

/// `fleet_update_preview`'s reply: per client the image running versus the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UpdatePreview {
    pub clients: Vec<ClientUpdatePreview>,
    /// The client that will be updated first.
    pub canary: Option<String>,
}

/// One check of a client's health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum GateCheck {
    /// The tracker's `/readyz` answers 200.
    TrackerReady,
    /// A probe request went through the tracker to OpenRouter and is in its ledger.
    ProbeMetered,
    /// The chat app answers its health check.
    ChatHealthy,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct GateResult {
    pub check: GateCheck,
    pub passed: bool,
    pub detail: String,
    pub elapsed_ms: u64,
}

/// Where one client's update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePhase {
    Waiting,
    /// Its containers are being recreated with the new image.
    Recreating,
    Gating,
    RollingBack,
    /// Finished: see the outcome.
    Done,
}

/// How one client's update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientOutcome {
    /// Runs the new image and passed its gate.
    Updated,
    /// Failed its gate; runs the previous image again, volumes as they were.
    RolledBack,
    /// Not touched: already up to date, not selected, or the rollout stopped first.
    Skipped,
    /// Could not be updated or not be put back (see `detail` for its state and what to do).
    Failed,
}

/// One client's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientUpdateResult {
    pub client_id: String,
    pub outcome: ClientOutcome,
    pub canary: bool,
    /// The images before and after, per recreated container.
    pub changes: Vec<crate::change::FieldChange>,
    pub gate: Vec<GateResult>,
    pub detail: String,
    pub elapsed_ms: u64,
}

/// `fleet_update`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UpdateSummary {
    pub updated: u32,
    pub rolled_back: u32,
    pub skipped: u32,
    pub failed: u32,
    pub canary: Option<String>,
    /// Why the rollout stopped before every client (a failed canary).
    pub stopped: Option<String>,
    pub clients: Vec<ClientUpdateResult>,
    pub elapsed_ms: u64,
}

/// Progress of a fleet update: the payload of the `fleet-update-progress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UpdateProgress {
    /// The plan: every client's images, before anything is touched.
    Planned { preview: UpdatePreview },
    /// A client moved to another phase.
    Phase {
        client_id: String,
        phase: UpdatePhase,
        detail: String,
    },
    /// One gate check ended.
    Gate {
        client_id: String,
        result: GateResult,
    },
    /// A client is finished.
    Finished { result: ClientUpdateResult },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plan_needs_only_an_image() {
        let p: UpdatePlan =
            serde_json::from_value(json!({"tracker_image": "mai-tracker:0.2.0"})).unwrap();
        assert_eq!(p.parallelism, DEFAULT_PARALLELISM);
        assert_eq!(p.gate_timeout_ms, DEFAULT_GATE_TIMEOUT_MS);
        assert!(p.clients.is_empty() && p.canary.is_none() && p.chat_image.is_none());
    }

    #[test]
    fn progress_events_are_tagged() {
        let e = UpdateProgress::Phase {
            client_id: "acme".into(),
            phase: UpdatePhase::RollingBack,
            detail: String::new(),
        };
        assert_eq!(
            json!(e),
            json!({"event": "phase", "client_id": "acme", "phase": "rolling_back", "detail": ""})
        );
        assert_eq!(json!(ClientOutcome::RolledBack), json!("rolled_back"));
        assert_eq!(json!(GateCheck::ProbeMetered), json!("probe_metered"));
    }
}
