//! Changing a client (markup from a day on, monthly limit, invoice data) and the audit
//! history the console shows for it: the console's IPC.
//!
//! The form's values cross as text, exactly as typed: mai-ops parses and validates
//! them (one place for the rules, shared by maictl and the console) and answers with
//! errors per field, so the dialog can put each message under its own input.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::usage::UnknownVariant;

/// A fact of a client that an operator action changes. Closed: the audit history and
/// the field errors name one of these, never free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientField {
    /// A markup rate (`markup_changes` entry's `rate`).
    Markup,
    /// The day a markup rate applies from (`markup_changes` entry's `from`).
    MarkupFrom,
    MonthlyLimitUsd,
    LegalName,
    Nip,
    VatId,
    Address,
    AddressLine2,
    Country,
    InvoiceCurrency,
    Vat,
    InvoiceLines,
    HostingEur,
    InvoiceEmail,
    /// The image of the client's tracker container (fleet update).
    TrackerImage,
    /// The image of the client's chat container (fleet update).
    ChatImage,
}

impl ClientField {
    /// Every field the change dialog edits as invoice data, in the fleet file's order.
    pub const INVOICE: [ClientField; 11] = [
        ClientField::LegalName,
        ClientField::Nip,
        ClientField::VatId,
        ClientField::Address,
        ClientField::AddressLine2,
        ClientField::Country,
        ClientField::InvoiceCurrency,
        ClientField::Vat,
        ClientField::InvoiceLines,
        ClientField::HostingEur,
        ClientField::InvoiceEmail,
    ];

    /// The field's word on the wire (also maictl's spelling with `_` for `-`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientField::Markup => "markup",
            ClientField::MarkupFrom => "markup_from",
            ClientField::MonthlyLimitUsd => "monthly_limit_usd",
            ClientField::LegalName => "legal_name",
            ClientField::Nip => "nip",
            ClientField::VatId => "vat_id",
            ClientField::Address => "address",
            ClientField::AddressLine2 => "address_line2",
            ClientField::Country => "country",
            ClientField::InvoiceCurrency => "invoice_currency",
            ClientField::Vat => "vat",
            ClientField::InvoiceLines => "invoice_lines",
            ClientField::HostingEur => "hosting_eur",
            ClientField::InvoiceEmail => "invoice_email",
            ClientField::TrackerImage => "tracker_image",
            ClientField::ChatImage => "chat_image",
        }
    }

    /// Whether the field is invoice data (may be removed when optional).
    pub fn is_invoice(self) -> bool {
        ClientField::INVOICE.contains(&self)
    }
}

impl fmt::Display for ClientField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientField {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            ClientField::Markup,
            ClientField::MarkupFrom,
            ClientField::MonthlyLimitUsd,
            ClientField::TrackerImage,
            ClientField::ChatImage,
        ];
        let norm = s.trim().replace('-', "_");
        ClientField::INVOICE
            .into_iter()
            .chain(all)
            .find(|f| f.as_str() == norm)
            .ok_or_else(|| UnknownVariant {
                field: "field",
                value: s.into(),
                expected: "one of legal_name, nip, vat_id, address, address_line2, country, invoice_currency, vat, invoice_lines, hosting_eur, invoice_email",
            })
    }
}

/// A new markup rate from a Warsaw day on (a `markup_changes` entry). Both as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MarkupChange {
    /// Decimal text, e.g. `"1.4"` (+40%).
    pub rate: String,
    /// `YYYY-MM-DD`: the first day priced at `rate`.
    pub from: String,
}

/// One invoice field's new text; empty removes an optional field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FieldValue {
    pub field: ClientField,
    pub value: String,
}

/// `client_change`'s argument: what to change on one client; absent parts stay as they
/// are. Applied whole or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientChange {
    #[serde(default)]
    #[ts(optional = nullable)]
    pub markup: Option<MarkupChange>,
    /// Decimal text in USD of client cost per month; `"none"` removes the limit.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub monthly_limit_usd: Option<String>,
    #[serde(default)]
    pub invoice: Vec<FieldValue>,
}

impl ClientChange {
    pub fn is_empty(&self) -> bool {
        self.markup.is_none() && self.monthly_limit_usd.is_none() && self.invoice.is_empty()
    }
}

/// Why one field's new value was refused: what is wrong and how to write it. (In
/// TypeScript `ChangeFieldError`: onboarding's `lifecycle::FieldError` names its field by
/// path, this one by [`ClientField`].)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(rename = "ChangeFieldError")]
pub struct FieldError {
    pub field: ClientField,
    pub message: String,
}

/// One fact before and after (as the fleet file writes them; `null` = not set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FieldChange {
    pub field: ClientField,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// How far one part of a change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ApplyState {
    Done,
    /// The change did not concern it (e.g. invoice data and the OpenRouter key).
    NotNeeded,
    /// It did not take the change; `warnings` say what to do.
    Failed,
}

/// `client_change`'s reply: what changed and where it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChangeReport {
    pub client_id: String,
    /// Every fact changed, old → new (also in the audit log).
    pub changes: Vec<FieldChange>,
    /// The OpenRouter key's cap (PATCH /keys/{hash}), the limit's enforcer.
    pub openrouter_key: ApplyState,
    /// The key's new cap in USD of OpenRouter cost (limit / today's markup), when set.
    #[ts(type = "string | null")]
    #[serde(with = "rust_decimal::serde::str_option")]
    pub key_limit_usd: Option<rust_decimal::Decimal>,
    /// The fleet file, always written when anything changed.
    pub fleet_file: ApplyState,
    /// The tracker's copy of the terms (markup and limit, `PUT /api/v1/admin/terms`).
    pub tracker: ApplyState,
    /// What went wrong after the change was made, and what to do.
    pub warnings: Vec<String>,
    /// The audit log the change was written to.
    pub audit_log: String,
}

/// `client_change_check`'s reply: the field errors, or (none) what the change would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChangeCheck {
    pub errors: Vec<FieldError>,
    pub changes: Vec<FieldChange>,
    /// What applying it would also do or mean (a repriced open month, a key cap to
    /// follow a future markup).
    pub warnings: Vec<String>,
}

/// `client_facts`: a client's changeable facts as the fleet file has them now, for the
/// change dialog to start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientFacts {
    pub client_id: String,
    pub terms: crate::pricing::CommercialTerms,
    /// Every invoice field, as the file writes it (empty when not set).
    pub invoice: Vec<FieldValue>,
    /// The latest month with an issued invoice (`YYYY-MM`): a markup change must start
    /// after it.
    pub last_invoiced_month: Option<String>,
}

/// What an audit record is about. New actions read as `other` in older consoles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    ClientChange,
    ImageUpdate,
    PrivacyErase,
    PrivacyExport,
    /// A ledger backed up (mai-ops `ops::backup`).
    Backup,
    /// A backup restored onto a tracker.
    BackupRestore,
    /// An action this console does not know (a newer one's); see [`AuditAction::parse`].
    Other,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ClientChange => "client_change",
            AuditAction::ImageUpdate => "image_update",
            AuditAction::PrivacyErase => "privacy_erase",
            AuditAction::PrivacyExport => "privacy_export",
            AuditAction::Backup => "backup",
            AuditAction::BackupRestore => "backup_restore",
            AuditAction::Other => "other",
        }
    }

    /// The audit log's word for an action (anything unknown is `Other`).
    pub fn parse(s: &str) -> AuditAction {
        [
            AuditAction::ClientChange,
            AuditAction::ImageUpdate,
            AuditAction::PrivacyErase,
            AuditAction::PrivacyExport,
            AuditAction::Backup,
            AuditAction::BackupRestore,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .unwrap_or(AuditAction::Other)
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Ok,
    /// Done, with a part that did not take (see `error`).
    Partial,
    Failed,
    /// Begun and never finished (the process stopped in between).
    Started,
    /// A fleet update put the previous image back after a failed health gate.
    RolledBack,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Partial => "partial",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Started => "started",
            AuditOutcome::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<AuditOutcome> {
        [
            AuditOutcome::Ok,
            AuditOutcome::Partial,
            AuditOutcome::Failed,
            AuditOutcome::Started,
            AuditOutcome::RolledBack,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One line of a client's audit history (`client_history`), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// The OS user who did it.
    pub actor: String,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// Facts changed, old → new (empty for actions that change none, e.g. an export).
    pub changes: Vec<FieldChange>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_cross_as_the_fleet_files_keys() {
        assert_eq!(json!(ClientField::AddressLine2), json!("address_line2"));
        assert_eq!(
            json!(ClientField::MonthlyLimitUsd),
            json!("monthly_limit_usd")
        );
        for f in ClientField::INVOICE {
            assert_eq!(json!(f), json!(f.as_str()));
            assert_eq!(f.as_str().parse::<ClientField>(), Ok(f));
            assert!(f.is_invoice());
        }
        assert_eq!("invoice-email".parse(), Ok(ClientField::InvoiceEmail));
        assert!("colour".parse::<ClientField>().is_err());
    }

    #[test]
    fn a_change_needs_no_part_but_says_when_it_is_empty() {
        let c: ClientChange = serde_json::from_value(json!({})).unwrap();
        assert!(c.is_empty());
        let c: ClientChange = serde_json::from_value(
            json!({"markup": {"rate": "1.4", "from": "2026-12-01"}, "invoice": [{"field": "nip", "value": "5261040828"}]}),
        )
        .unwrap();
        assert!(!c.is_empty());
        assert_eq!(c.invoice[0].field, ClientField::Nip);
    }

    #[test]
    fn audit_words_round_trip_and_unknown_actions_read_as_other() {
        assert_eq!(
            AuditAction::parse("client_change"),
            AuditAction::ClientChange
        );
        assert_eq!(AuditAction::parse("client_add"), AuditAction::Other);
        assert_eq!(
            AuditOutcome::parse("rolled_back"),
            Some(AuditOutcome::RolledBack)
        );
        assert_eq!(json!(AuditOutcome::RolledBack), json!("rolled_back"));
    }
}
