//! TypeScript declarations of the wire types, for the console's UI.
//!
//! `ui/src/lib/wire.ts` is this function's output, checked in; the test
//! `crates/mai-wire/tests/typescript.rs` fails when it is stale and rewrites it when run
//! with `MAI_UPDATE_WIRE_TS=1`.

use ts_rs::{Config, TS};

use crate::{
    alerts, backup, change, console, ksef, lifecycle, overview, pricing, tracker, update, usage,
};

/// Appends `export type X = ...;` for each listed type.
macro_rules! decls {
    ($out:ident, $cfg:ident; $($t:ty),* $(,)?) => {
        $( $out.push_str("export "); $out.push_str(&<$t as TS>::decl(&$cfg)); $out.push('\n'); )*
    };
}

/// The whole generated file.
pub fn typescript() -> String {
    // u64 and i64 counts arrive as JSON numbers, which JavaScript reads as `number`;
    // counts in this contract stay far below 2^53.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from crates/mai-wire by `MAI_UPDATE_WIRE_TS=1 cargo test -p mai-wire --test typescript`.\n\
         // Do not edit: change the Rust types instead. Money is a decimal string; never parse it as a float.\n\n",
    );
    decls!(out, cfg;
        usage::TokenCounts, usage::UserRef, usage::ChatContext, usage::Source, usage::EventState,
        pricing::MarkupSchedule, pricing::MarkupEntry, pricing::MarkupSegment,
        pricing::CommercialTerms, pricing::LimitLevel, pricing::LimitState,
        tracker::ErrorBody, tracker::ErrorDetail, tracker::KeyState, tracker::KeyStatus,
        tracker::Drift, tracker::ActivityDrift, tracker::SyncState, tracker::ProxyState, tracker::WebhookState,
        tracker::Status, tracker::Today, tracker::DayUsage, tracker::Daily,
        tracker::UserUsage, tracker::ByUser, tracker::ModelUsage, tracker::ByModel,
        tracker::KeyedUsage, tracker::ByTask, tracker::ByGroup, tracker::ByChat,
        tracker::Month, tracker::Event, tracker::EventPage, tracker::SyncRequest,
        tracker::SyncStatus, tracker::SyncReport, tracker::KeyLabel,
        tracker::PrivacySubject, tracker::EraseRequest, tracker::ErasureReport,
        tracker::PrivacyExport, tracker::ProbeRequest, tracker::ProbeReport, tracker::RestoreReport,
        // The console's IPC: command replies, struct arguments and event payloads.
        console::ClientRef, console::AppInfo, console::UpdateCheck,
        console::ContainerRole, console::ContainerState, console::ContainerHealth,
        console::ContainerInfo, console::AlertLevel, console::Alert, console::SyncView,
        console::HostMode, console::FleetRow, console::LogLine,
        console::SyncOutcomeStatus, console::SyncOutcome, console::SyncProgress,
        console::SecretKind, console::MaskedKey, console::Rotation,
        console::PrivacyErasure, console::PrivacyExportResult,
        console::DayPoint, console::Breakdown, console::PlnRate, console::Dashboard,
        console::BillingStatus, console::TableARate, console::BillingRow, console::BillingProfit,
        console::BillingTotals, console::BillingReport, console::ExportFormat,
        console::CsvDialect, console::InvoiceExportRequest, console::ClientExport,
        console::InvoiceExportResult, console::ExportProgress,
        // KSeF: the invoices of a month in KSeF, a send's progress and summary, the token.
        ksef::KsefEnvironment, ksef::KsefInvoiceKind, ksef::KsefState, ksef::KsefRejection,
        ksef::KsefInvoiceRow, ksef::KsefSendPhase, ksef::KsefSendProgress, ksef::KsefSendSummary,
        ksef::KsefTokenStatus,
    );
    // A client's life cycle (onboarding, offboarding).
    decls!(out, cfg;
        lifecycle::NewClient, lifecycle::Deployment, lifecycle::OnboardRequest,
        lifecycle::FieldError, lifecycle::LifecycleStep, lifecycle::StepState,
        lifecycle::LifecycleProgress, lifecycle::OnboardResult, lifecycle::BillingMonthCheck,
        lifecycle::OffboardCheck, lifecycle::OffboardResult,
        // Changing a client and its audit history; fleet image updates.
        change::ClientField, change::MarkupChange, change::FieldValue, change::ClientChange,
        change::FieldError, change::FieldChange, change::ApplyState, change::ChangeReport,
        change::ChangeCheck, change::ClientFacts,
        change::AuditAction, change::AuditOutcome, change::HistoryEntry,
        update::UpdatePlan, update::TargetState, update::ImageTarget,
        update::ClientUpdatePreview, update::UpdatePreview, update::GateCheck,
        update::GateResult, update::UpdatePhase, update::ClientOutcome,
        update::ClientUpdateResult, update::UpdateSummary, update::UpdateProgress,
        // Ledger backups, restores and rebuilds.
        backup::BackupKind, backup::MonthTotals, backup::BackupManifest, backup::ClientBackups, backup::LedgerCheck,
        backup::BackupOutcome, backup::RestoreResult, backup::DaySource, backup::RebuildDay,
        backup::RebuildReport,
    );
    // Alerts (issue 14).
    decls!(out, cfg; alerts::AlertKind, alerts::ActiveAlert, alerts::AlertsView, alerts::MuteRequest);
    // The fleet overview: totals, projections, usage exports.
    decls!(out, cfg;
        overview::Projection, overview::UsdPln, overview::AccountCredits, overview::FleetTotals,
        overview::FleetOverview, overview::UsageExportKind, overview::UsageExportFormat,
        overview::UsageExportRequest, overview::UsageExportResult, overview::UsageExportProgress,
    );
    out
}
