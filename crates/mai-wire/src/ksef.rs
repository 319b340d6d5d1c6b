//! Sending invoices to KSeF, as the console's Billing view and `maictl invoices
//! send|status --json` show it: one row per invoice of a month with its KSeF state, the
//! progress of a send, its summary, and whether the KSeF token is in the keychain.
//!
//! These are the one shape both front ends read; mai-ops maps mai-billing's invoice
//! store and the KSeF client's answers onto them. What KSeF decided is kept as KSeF said
//! it (status code, description, details); what the operator should do about a
//! rejection is written once, here ([`KsefRejection::fix`]), so the console and maictl
//! give the same advice.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::usage::UnknownVariant;

/// Which KSeF the fleet file sends to. `Custom` is any other base URL (a simulator, a
/// proxy): a token stored for it is never sent to the Ministry's systems, and the other
/// way round, because the keychain entry is keyed by the environment. The Ministry's URLs
/// are mai-ksef's (`mai_ksef::Environment`); mai-ops maps between the two and hands the
/// URL to front ends as a string (`KsefTokenStatus::base_url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum KsefEnvironment {
    /// `api-test`: self-signed certificates, shared test data; never real invoices.
    Test,
    /// `api-demo`: production configuration, for a last check before going live.
    Demo,
    /// Production: invoices sent here are legally issued.
    Prd,
    Custom,
}

impl KsefEnvironment {
    pub const NAMED: [KsefEnvironment; 3] = [
        KsefEnvironment::Test,
        KsefEnvironment::Demo,
        KsefEnvironment::Prd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KsefEnvironment::Test => "test",
            KsefEnvironment::Demo => "demo",
            KsefEnvironment::Prd => "prd",
            KsefEnvironment::Custom => "custom",
        }
    }
}

impl fmt::Display for KsefEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the fleet file's `[ksef] environment` (the named ones only: a custom KSeF is
/// given by its `base_url`).
impl std::str::FromStr for KsefEnvironment {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(KsefEnvironment::Test),
            "demo" => Ok(KsefEnvironment::Demo),
            "prd" => Ok(KsefEnvironment::Prd),
            _ => Err(UnknownVariant {
                field: "environment",
                value: s.into(),
                expected: "test, demo or prd (or give base_url instead)",
            }),
        }
    }
}

/// `RodzajFaktury` of the FA(3) invoice: a plain VAT invoice or a correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
pub enum KsefInvoiceKind {
    #[serde(rename = "VAT")]
    Vat,
    /// A correction invoice; it names the invoice it corrects by KSeF number.
    #[serde(rename = "KOR")]
    Kor,
}

impl KsefInvoiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KsefInvoiceKind::Vat => "VAT",
            KsefInvoiceKind::Kor => "KOR",
        }
    }
}

impl fmt::Display for KsefInvoiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an invoice stands with KSeF. An invoice is issued only when KSeF accepts it
/// (VAT Act art. 106na): until then it may be sent again, and a rejected one was never
/// issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KsefState {
    /// No invoice to send for this client and month; `reason` says why (month still
    /// open, invoice data missing, nothing to bill).
    NotIssued { reason: String },
    /// Numbered and its FA(3) XML made, not sent yet (or a send of it failed before KSeF
    /// took it: the row's `error` says so).
    Prepared,
    /// KSeF took it and has not decided yet; its status is asked again on the next
    /// status or send.
    Sent,
    /// KSeF gave it a KSeF number: issued.
    Accepted,
    /// KSeF refused it (`rejection`): not issued; fix and send again.
    Rejected,
}

impl KsefState {
    /// The word the UI's badge and maictl's lines show.
    pub fn as_str(&self) -> &'static str {
        match self {
            KsefState::NotIssued { .. } => "not_issued",
            KsefState::Prepared => "prepared",
            KsefState::Sent => "sent",
            KsefState::Accepted => "accepted",
            KsefState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for KsefState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why KSeF refused an invoice, as KSeF said it, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KsefRejection {
    /// KSeF's invoice status code (430 schema, 440 duplicate, 450 semantic error, ...)
    /// or, for a refusal at send time, its `exceptionCode` (21405, ...).
    pub code: u16,
    /// KSeF's own description, in Polish as it sent it.
    pub description: String,
    /// KSeF's details (which field, which original KSeF number of a duplicate, ...).
    pub details: Vec<String>,
    /// What the operator should do, in English ([`KsefRejection::fix_for`]).
    pub fix: String,
}

impl KsefRejection {
    /// A rejection as KSeF reported it, with the advice for its code.
    pub fn new(code: u16, description: impl Into<String>, details: Vec<String>) -> Self {
        KsefRejection {
            code,
            description: description.into(),
            details,
            fix: Self::fix_for(code).to_string(),
        }
    }

    /// The advice for a KSeF status or exception code (`../shared/specs/ksef-api.md`,
    /// sections 4 and 5). Written for the person at the console: what went wrong in our
    /// terms, and the next step.
    pub fn fix_for(code: u16) -> &'static str {
        match code {
            440 => "KSeF already has an invoice with this seller NIP, kind and number (numbers must not repeat for 10 years). If the details name this invoice's own earlier send, it was issued then: nothing to do. Otherwise the numbering repeats numbers: make invoice_number_format in the billing file contain the year ({yyyy}) and issue the invoice again.",
            430 => "The invoice XML did not pass KSeF's FA(3) schema check; the details name the element. Check that client's invoice data in the fleet file (a field missing or too long); if the data is right this is a defect of the invoice export: report it with the details. Then send again.",
            450 => "KSeF found the invoice's content inconsistent (the details name the field, e.g. an issue date after the day it reached KSeF, or an invalid NIP). Correct that data in the fleet or billing file, then send again; a rejected invoice was never issued.",
            410 => "The KSeF token has no permission to issue invoices for this seller NIP. Create a token with the InvoiceWrite permission in KSeF for the seller's NIP and store it (Billing → KSeF token, or `maictl ksef token set`), then send again.",
            415 => "KSeF refused an invoice with attachments, which this seller may not send. Our invoices carry none: report this with the details.",
            435 => "KSeF could not decrypt the invoice (the session key or the encryption did not match). Send again; if it repeats, report it with the details.",
            405 => "The KSeF session was cancelled before the invoice was processed. Send again.",
            500 | 550 => "KSeF failed while processing the invoice (an error on KSeF's side). Send again later; the invoice stays unissued until KSeF accepts it.",
            21402 | 21403 => "KSeF received an invoice whose size or hash did not match what was announced: a defect of the sending client. Send again; if it repeats, report it with the details.",
            21155 | 21173 | 21180 => "The KSeF session was full, closed or expired while sending. Send again: a new session is opened.",
            21405 => "KSeF refused the request as invalid (the details name the field). Report it with the details; the invoice was not sent.",
            _ => "Read KSeF's description and details above, correct what they name, and send again; a rejected invoice was never issued.",
        }
    }
}

/// One invoice of a month in KSeF (`ksef_status`, the rows of a send, and
/// `maictl invoices status --json`). A client with nothing to send has one row in state
/// `not_issued`, so every client of the month is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KsefInvoiceRow {
    pub org_id: String,
    /// The buyer's name, as on the invoice.
    pub client_name: String,
    /// The invoice number (`P_2`); `None` while none is issued.
    pub number: Option<String>,
    pub kind: KsefInvoiceKind,
    /// What a correction (`KOR`) corrects: the KSeF number of the corrected invoice.
    pub corrects_ksef_number: Option<String>,
    /// The corrected invoice's own number, for people (`FV/2026/10/0001`).
    pub corrects_number: Option<String>,
    pub state: KsefState,
    /// Given by KSeF on acceptance (35 characters, `{NIP}-{YYYYMMDD}-{12 hex}-{2 hex}`).
    pub ksef_number: Option<String>,
    /// When KSeF took the invoice: the legal moment of issue.
    pub acquisition_date: Option<DateTime<Utc>>,
    /// Why KSeF refused it (state `rejected`).
    pub rejection: Option<KsefRejection>,
    /// The last send failed before KSeF decided (network, authentication, KSeF down):
    /// what failed and what to do. Sending again is safe.
    pub error: Option<String>,
    /// The invoice's gross amount in its currency, exact.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub gross: Decimal,
    /// ISO 4217 code of the invoice currency (`PLN`, `USD`).
    pub currency: String,
    /// KSeF's receipt (UPO) for this invoice can be downloaded (`ksef_upo`).
    pub upo_available: bool,
}

impl KsefInvoiceRow {
    /// A send of it failed before KSeF decided: not accepted nor rejected, with an
    /// `error`. The console's badge and maictl say `failed` for these.
    pub fn failed(&self) -> bool {
        self.error.is_some() && matches!(self.state, KsefState::Prepared | KsefState::Sent)
    }
}

/// What a send is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KsefSendPhase {
    /// Authenticating with the KSeF token and opening the session.
    Connecting,
    /// Sending invoices (`current` is the one in flight).
    Sending,
    /// Waiting for KSeF's verdict on the invoices sent.
    Processing,
    /// Downloading the receipts (UPO) of accepted invoices.
    Receipts,
    /// Finished; the summary follows.
    Done,
}

/// Payload of the `ksef-send-progress` event (and maictl's progress lines on stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KsefSendProgress {
    /// Invoices whose outcome is known (accepted, rejected or failed).
    pub done: usize,
    /// Invoices this send handles.
    pub total: usize,
    /// The invoice number being handled, if one is.
    pub current: Option<String>,
    pub phase: KsefSendPhase,
}

/// `ksef_send`'s reply: the invoices this send handled and how each ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KsefSendSummary {
    /// `YYYY-MM`.
    pub month: String,
    pub accepted: usize,
    pub rejected: usize,
    /// The send did not reach KSeF's verdict (row `error` says why); sending again is safe.
    pub failed: usize,
    /// Sent, KSeF still processing when the send stopped waiting (or not sent at all);
    /// `invoices status` later.
    pub pending: usize,
    /// Clients with no invoice to send (row state `not_issued`).
    pub skipped: usize,
    pub rows: Vec<KsefInvoiceRow>,
}

impl KsefSendSummary {
    /// The counts of `rows`, so they cannot disagree with the rows.
    pub fn of(month: impl Into<String>, rows: Vec<KsefInvoiceRow>) -> KsefSendSummary {
        let mut s = KsefSendSummary {
            month: month.into(),
            accepted: 0,
            rejected: 0,
            failed: 0,
            pending: 0,
            skipped: 0,
            rows: Vec::new(),
        };
        for r in &rows {
            match &r.state {
                _ if r.failed() => s.failed += 1,
                KsefState::Accepted => s.accepted += 1,
                KsefState::Rejected => s.rejected += 1,
                KsefState::NotIssued { .. } => s.skipped += 1,
                // Prepared without an error was not sent by this send at all: nothing
                // decided, like a send still waiting.
                KsefState::Prepared | KsefState::Sent => s.pending += 1,
            }
        }
        s.rows = rows;
        s
    }

    /// Every invoice sent was accepted (nothing rejected, failed or still pending).
    pub fn all_accepted(&self) -> bool {
        self.rejected == 0 && self.failed == 0 && self.pending == 0
    }
}

/// Whether the KSeF token of the fleet's seller is in the OS keychain (`ksef_token_*`,
/// `maictl ksef token status`). Never the token: at most its last four characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KsefTokenStatus {
    /// The seller's NIP (the billing file's), the KSeF context the token is for.
    pub seller_nip: String,
    pub environment: KsefEnvironment,
    /// Where invoices are sent (after `KSEF_BASE_URL`).
    pub base_url: String,
    pub present: bool,
    /// `…abcd` when present.
    pub masked: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(state: KsefState, error: Option<&str>) -> KsefInvoiceRow {
        KsefInvoiceRow {
            org_id: "acme".into(),
            client_name: "ACME Sp. z o.o.".into(),
            number: Some("FV/2026/11/0001".into()),
            kind: KsefInvoiceKind::Vat,
            corrects_ksef_number: None,
            corrects_number: None,
            state,
            ksef_number: None,
            acquisition_date: None,
            rejection: None,
            error: error.map(String::from),
            gross: "1230.00".parse().unwrap(),
            currency: "PLN".into(),
            upo_available: false,
        }
    }

    #[test]
    fn states_and_kinds_cross_as_the_words_the_ui_matches_on() {
        assert_eq!(json!(KsefState::Accepted), json!({"kind": "accepted"}));
        assert_eq!(
            json!(KsefState::NotIssued {
                reason: "month open".into()
            }),
            json!({"kind": "not_issued", "reason": "month open"})
        );
        assert_eq!(json!(KsefInvoiceKind::Kor), json!("KOR"));
        assert_eq!(json!(KsefEnvironment::Prd), json!("prd"));
        assert_eq!(json!(KsefSendPhase::Receipts), json!("receipts"));
        let v = json!(row(KsefState::Prepared, None));
        assert_eq!(v["gross"], "1230.00");
        assert_eq!(v["kind"], "VAT");
        assert_eq!(
            serde_json::from_value::<KsefInvoiceRow>(v).unwrap(),
            row(KsefState::Prepared, None)
        );
    }

    #[test]
    fn environments_by_name() {
        assert_eq!("test".parse(), Ok(KsefEnvironment::Test));
        let e = "prod".parse::<KsefEnvironment>().unwrap_err().to_string();
        assert!(
            e.contains("`prod`") && e.contains("test, demo or prd"),
            "{e}"
        );
        assert!("custom".parse::<KsefEnvironment>().is_err());
        for env in KsefEnvironment::NAMED {
            assert_eq!(env.as_str().parse(), Ok(env));
        }
    }

    #[test]
    fn a_summary_counts_its_rows() {
        let s = KsefSendSummary::of(
            "2026-11",
            vec![
                row(KsefState::Accepted, None),
                row(KsefState::Rejected, None),
                row(KsefState::Prepared, Some("KSeF unreachable")),
                row(KsefState::Sent, Some("status not read")),
                row(KsefState::Sent, None),
                row(
                    KsefState::NotIssued {
                        reason: "no usage".into(),
                    },
                    None,
                ),
            ],
        );
        assert_eq!(
            (s.accepted, s.rejected, s.failed, s.pending, s.skipped),
            (1, 1, 2, 1, 1)
        );
        assert!(!s.all_accepted());
        let ok = KsefSendSummary::of("2026-11", vec![row(KsefState::Accepted, None)]);
        assert!(ok.all_accepted());
    }

    #[test]
    fn every_rejection_says_what_to_do() {
        let r = KsefRejection::new(440, "Duplikat faktury", vec!["x".into()]);
        assert!(r.fix.contains("invoice_number_format"), "{}", r.fix);
        assert!(KsefRejection::fix_for(410).contains("InvoiceWrite"));
        assert!(KsefRejection::fix_for(999).contains("send again"));
    }
}
