//! A client's life cycle in the console's IPC: onboarding (the form's request, per-field
//! errors, progress events, the result) and offboarding (the final check shown before the
//! operator confirms, progress, the result).
//!
//! The form's numbers arrive as the text the operator typed (`markup`,
//! `monthly_limit_usd`): they are validated field by field on the Rust side, so a typo is
//! an error next to its field instead of a failed IPC call.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::console::BillingRow;

/// The new client's commercial and invoice data: what its `[[clients]]` entry in the
/// fleet file will hold (fleet.example.toml documents each key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct NewClient {
    /// Letters, digits, `-`, `_`; names the containers, keychain entries and invoices.
    pub id: String,
    pub legal_name: String,
    /// Polish NIP (check digit verified); required when `country` is PL.
    pub nip: Option<String>,
    /// A foreign client's VAT id (e.g. `DE123456789`).
    pub vat_id: Option<String>,
    /// Street and number.
    pub address: String,
    /// Postal code and city.
    pub address_line2: Option<String>,
    /// Two letters; PL when empty.
    pub country: Option<String>,
    /// `PLN` (default) or `USD`.
    pub invoice_currency: Option<String>,
    /// `23` (default), `8`, `5` or `np` (reverse charge).
    pub vat: Option<String>,
    pub invoice_email: Option<String>,
    /// Decimal text, e.g. `1.3` (the default).
    pub markup: Option<String>,
    /// Decimal text in USD; none = no limit.
    pub monthly_limit_usd: Option<String>,
}

/// Where and how the client's pair (chat app + tracker) is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Deployment {
    /// A `[[hosts]]` name of the fleet file.
    pub host: String,
    /// Host port the tracker is published on (the console's way in).
    pub tracker_port: u16,
    /// Host port the chat app is published on (the users' way in, usually behind a
    /// TLS reverse proxy).
    pub chat_port: u16,
    /// Host address both ports are published on; `127.0.0.1` when empty (required for
    /// a host that is not the local engine). Off loopback the tracker serves HTTPS with
    /// a pinned certificate.
    pub publish_address: Option<String>,
    /// The chat app's image, already on the host; the Open WebUI image when empty.
    pub chat_image: Option<String>,
    /// The tracker's image, already on the host (deploy/build-images.sh).
    pub tracker_image: Option<String>,
    /// Open WebUI signs who asked (HS256 JWT) and the tracker refuses unsigned spending.
    pub signed_identity: bool,
    /// OpenRouter's API base as the tracker container reaches it; the fleet file's
    /// `[openrouter] base_url` when empty.
    pub tracker_openrouter_url: Option<String>,
    /// Swarm placement constraints of the client's services (`node.hostname==x`,
    /// `node.labels.zone==a`); only on a `mode = "swarm"` host, empty: anywhere.
    pub placement: Vec<String>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            host: String::new(),
            tracker_port: 0,
            chat_port: 0,
            publish_address: None,
            chat_image: None,
            tracker_image: None,
            signed_identity: true,
            tracker_openrouter_url: None,
            placement: Vec::new(),
        }
    }
}

/// `onboard_validate` and `onboard_client`: everything the console needs to add a client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct OnboardRequest {
    pub client: NewClient,
    pub deploy: Deployment,
}

/// One invalid field of an [`OnboardRequest`]: `field` is its path (`client.nip`,
/// `deploy.tracker_port`), `message` says what is wrong and what to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The steps of onboarding and offboarding, in the order they run. The `undo_*` steps run
/// only when onboarding fails, in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStep {
    // onboarding
    Validate,
    Preflight,
    CreateKey,
    StoreSecrets,
    CreateNetwork,
    CreateVolumes,
    StartTracker,
    StartChat,
    WaitHealthy,
    Probe,
    PushTerms,
    WriteFleet,
    UndoContainers,
    UndoNetwork,
    UndoVolumes,
    UndoKey,
    UndoSecrets,
    // offboarding
    FinalSync,
    BillingCheck,
    DisableKey,
    StopContainers,
    ExportLedger,
    ArchiveVolume,
    RemoveContainers,
    RemoveNetwork,
    RemoveVolumes,
    ForgetSecrets,
    MarkOffboarded,
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Started,
    Done,
    /// Done, with something the operator should know (`detail`).
    Warning,
    Failed,
    /// Not needed (nothing to do).
    Skipped,
}

/// Event payload of `onboard-progress` and `offboard-progress` (the console), and what
/// maictl prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LifecycleProgress {
    pub client_id: String,
    pub step: LifecycleStep,
    pub state: StepState,
    pub detail: Option<String>,
    /// Milliseconds since the action started.
    pub elapsed_ms: u64,
}

/// `onboard_client`: what was created, where to reach it, and the probe that proved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct OnboardResult {
    pub client_id: String,
    pub host: String,
    pub tracker_url: String,
    /// The chat app's published address (users reach it here or behind a proxy).
    pub chat_url: String,
    pub tracker_container: String,
    pub chat_container: String,
    pub network: String,
    pub volumes: Vec<String>,
    /// The new OpenRouter key, masked (`sk-or-v1-…abcd`), and its hash.
    pub key_label: String,
    pub key_hash: String,
    pub key_name: String,
    /// The key's monthly cap in USD (the limit divided by today's markup), if any.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub key_limit_usd: Option<Decimal>,
    pub signed_identity: bool,
    /// The probe request's generation, as the tracker metered it.
    pub probe_generation_id: String,
    pub fleet_path: String,
    pub audit_log: String,
    pub elapsed_ms: u64,
}

/// One month of the final billing check: mai-billing's row for the client, or why
/// there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BillingMonthCheck {
    /// `YYYY-MM`.
    pub month: String,
    pub row: Option<BillingRow>,
    pub note: Option<String>,
}

/// `offboard_check`: what offboarding will do, shown before the operator confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct OffboardCheck {
    pub client_id: String,
    pub legal_name: String,
    pub host: String,
    /// Set when the client is already offboarded (nothing left to do).
    pub offboarded: Option<NaiveDate>,
    /// This month and the previous one.
    pub billing: Vec<BillingMonthCheck>,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// The OpenRouter key that will be disabled (masked), if the keychain holds one.
    pub key_label: Option<String>,
    /// Where the ledger export and the volume archive will be written.
    pub archive_dir: String,
    pub warnings: Vec<String>,
}

/// `offboard_client`: what was done. The fleet entry stays, marked `offboarded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct OffboardResult {
    pub client_id: String,
    pub offboarded_on: NaiveDate,
    pub billing: Vec<BillingMonthCheck>,
    pub key_disabled: bool,
    pub removed_containers: Vec<String>,
    pub removed_networks: Vec<String>,
    pub removed_volumes: Vec<String>,
    /// The tracker's ledger, a consistent SQLite copy (`VACUUM INTO`).
    pub ledger_export: Option<String>,
    pub ledger_events: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub ledger_raw_cost_usd: Decimal,
    /// The tracker's whole data volume, tar.gz.
    pub archive: Option<String>,
    pub archive_bytes: u64,
    pub warnings: Vec<String>,
    pub audit_log: String,
    pub elapsed_ms: u64,
}
