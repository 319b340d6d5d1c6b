//! The simulator's state: tokens, challenges, authentication operations, bearer tokens,
//! sessions and invoices, and how their statuses follow from the clock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::config::{Permission, TokenSpec};
use super::faults::FaultRule;
use super::invoice::InvoiceFacts;
use crate::openrouter::ClockMode;

pub(crate) struct RegisteredToken {
    pub spec: TokenSpec,
    /// `TK` reference number, named in the receipts (`NumerReferencyjnyTokenaKSeF`).
    pub reference: String,
}

pub(crate) struct Challenge {
    pub issued: DateTime<Utc>,
    pub used: bool,
}

/// What an authentication operation comes to once processed.
#[derive(Clone)]
pub(crate) enum AuthOutcome {
    Success {
        token_reference: String,
        permissions: Vec<Permission>,
    },
    Failed {
        code: u16,
        description: &'static str,
        detail: String,
    },
}

pub(crate) struct AuthOp {
    pub nip: String,
    pub started: DateTime<Utc>,
    pub ready_at: DateTime<Utc>,
    pub outcome: AuthOutcome,
    pub redeemed: bool,
    pub refresh_valid_until: Option<DateTime<Utc>>,
    pub last_refresh: Option<DateTime<Utc>>,
}

impl AuthOp {
    /// (code, description, details) of `GET /auth/{ref}` at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> (u16, &'static str, Option<String>) {
        if now < self.ready_at {
            return (100, "Uwierzytelnianie w toku", None);
        }
        match &self.outcome {
            AuthOutcome::Success { .. } => (200, "Uwierzytelnianie zakończone sukcesem", None),
            AuthOutcome::Failed {
                code,
                description,
                detail,
            } => (*code, description, Some(detail.clone())),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Bearer {
    /// The authentication operation's token: status and redeem only.
    Operation {
        reference: String,
        valid_until: DateTime<Utc>,
    },
    Access {
        reference: String,
        valid_until: DateTime<Utc>,
    },
    Refresh {
        reference: String,
        valid_until: DateTime<Utc>,
    },
}

pub(crate) struct Session {
    pub reference: String,
    pub nip: String,
    pub token_reference: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// None when the wrapped key did not decrypt (status 415).
    pub key: Option<[u8; 32]>,
    pub iv: [u8; 16],
    pub closed_at: Option<DateTime<Utc>>,
    pub invoices: Vec<usize>,
    pub upo_reference: String,
}

/// How a sent invoice ends.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Success {
        ksef_number: String,
    },
    Failed {
        code: u16,
        details: Vec<String>,
        extensions: Option<BTreeMap<String, String>>,
    },
}

pub(crate) struct Invoice {
    pub ordinal: usize,
    pub reference: String,
    pub session: String,
    pub hash: String,
    pub received: DateTime<Utc>,
    pub processing_from: DateTime<Utc>,
    pub done_at: DateTime<Utc>,
    pub offline: bool,
    pub outcome: Outcome,
    pub facts: Option<InvoiceFacts>,
    pub xml: Vec<u8>,
}

/// The contract's description of each invoice status code.
pub(crate) fn invoice_status_description(code: u16) -> &'static str {
    match code {
        100 => "Faktura przyjęta do dalszego przetwarzania",
        150 => "Trwa przetwarzanie",
        200 => "Sukces",
        405 => "Przetwarzanie anulowane z powodu błędu sesji",
        410 => "Nieprawidłowy zakres uprawnień",
        415 => "Brak możliwości wysyłania faktury z załącznikiem",
        430 => "Błąd weryfikacji pliku faktury",
        435 => "Błąd odszyfrowania pliku",
        440 => "Duplikat faktury",
        450 => "Błąd weryfikacji semantyki dokumentu faktury",
        550 => "Operacja została anulowana przez system",
        _ => "Nieznany błąd",
    }
}

impl Invoice {
    pub fn is_final(&self, now: DateTime<Utc>) -> bool {
        now >= self.done_at
    }

    pub fn succeeded(&self, now: DateTime<Utc>) -> bool {
        self.is_final(now) && matches!(self.outcome, Outcome::Success { .. })
    }

    pub fn failed(&self, now: DateTime<Utc>) -> bool {
        self.is_final(now) && matches!(self.outcome, Outcome::Failed { .. })
    }

    pub fn status_code(&self, now: DateTime<Utc>) -> u16 {
        if now < self.processing_from {
            100
        } else if now < self.done_at {
            150
        } else {
            match &self.outcome {
                Outcome::Success { .. } => 200,
                Outcome::Failed { code, .. } => *code,
            }
        }
    }

    /// The KSeF number, once the invoice has it.
    pub fn ksef_number(&self, now: DateTime<Utc>) -> Option<&str> {
        match &self.outcome {
            Outcome::Success { ksef_number } if self.is_final(now) => Some(ksef_number),
            _ => None,
        }
    }
}

/// Session status (code, description, details) at `now`.
pub(crate) fn session_status(
    s: &Session,
    invoices: &[Invoice],
    upo_delay: chrono::Duration,
    now: DateTime<Utc>,
) -> (u16, &'static str, Option<&'static str>) {
    if s.key.is_none() {
        return (415, "Błąd odszyfrowania dostarczonego klucza", None);
    }
    let Some(closed) = s.closed_at(now) else {
        return (100, "Sesja interaktywna otwarta", None);
    };
    if s.invoices.is_empty() {
        return (440, "Sesja anulowana", Some("Nie przesłano faktur"));
    }
    let last = s
        .invoices
        .iter()
        .map(|&i| invoices[i].done_at)
        .max()
        .unwrap_or(closed);
    if now < closed.max(last) + upo_delay {
        return (170, "Sesja interaktywna zamknięta", None);
    }
    if s.invoices.iter().any(|&i| invoices[i].succeeded(now)) {
        (200, "Sesja interaktywna przetworzona pomyślnie", None)
    } else {
        (445, "Błąd weryfikacji, brak poprawnych faktur", None)
    }
}

impl Session {
    /// When the session closed: by `close`, or by running out of time.
    pub fn closed_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.closed_at
            .or((now >= self.valid_until).then_some(self.valid_until))
    }
}

/// An invoice KSeF accepted (status 200): the read-back of what a client issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedInvoice {
    /// `Podmiot1` NIP.
    pub seller_nip: String,
    /// `P_2`.
    pub invoice_number: String,
    /// `RodzajFaktury`.
    pub kind: String,
    pub ksef_number: String,
    /// When KSeF gave the number (`acquisitionDate`).
    pub acquisition_date: DateTime<Utc>,
    /// `P_1`.
    pub issue_date: NaiveDate,
    pub session_reference: String,
    pub invoice_reference: String,
    /// Base64 SHA-256 of the XML, as in `invoiceHash`.
    pub invoice_hash: String,
    /// The decrypted XML exactly as received.
    pub xml: String,
}

/// Every invoice sent, whatever became of it (for tests of failure paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentInvoice {
    pub session_reference: String,
    pub invoice_reference: String,
    pub ordinal_number: usize,
    /// The status code now (100, 150, 200, 430, ...).
    pub status: u16,
    pub details: Vec<String>,
    pub ksef_number: Option<String>,
    /// `P_2`, when the file got far enough to be read.
    pub invoice_number: Option<String>,
}

pub(crate) struct State {
    pub clock: ClockMode,
    pub counter: u64,
    pub tokens: Vec<RegisteredToken>,
    pub challenges: HashMap<String, Challenge>,
    pub auth_ops: HashMap<String, AuthOp>,
    pub bearers: HashMap<String, Bearer>,
    pub sessions: HashMap<String, Session>,
    pub invoices: Vec<Invoice>,
    /// (seller NIP, RodzajFaktury, P_2) → invoice index: the duplicate rule.
    pub issued: HashMap<(String, String, String), usize>,
    pub faults: Vec<ActiveRule>,
}

pub(crate) struct ActiveRule {
    pub rule: FaultRule,
    pub fired: u64,
}

impl State {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn token(&self, nip: &str, token: &str) -> Option<&RegisteredToken> {
        self.tokens
            .iter()
            .rev()
            .find(|t| t.spec.nip == nip && t.spec.token == token)
    }

    pub fn accepted(&self, now: DateTime<Utc>) -> Vec<AcceptedInvoice> {
        self.invoices
            .iter()
            .filter_map(|inv| {
                let ksef = inv.ksef_number(now)?;
                let f = inv.facts.as_ref()?;
                Some(AcceptedInvoice {
                    seller_nip: f.seller_nip.clone(),
                    invoice_number: f.number.clone(),
                    kind: f.kind.clone(),
                    ksef_number: ksef.to_string(),
                    acquisition_date: inv.done_at,
                    issue_date: f.issue_date,
                    session_reference: inv.session.clone(),
                    invoice_reference: inv.reference.clone(),
                    invoice_hash: inv.hash.clone(),
                    xml: String::from_utf8_lossy(&inv.xml).into_owned(),
                })
            })
            .collect()
    }

    pub fn sent(&self, now: DateTime<Utc>) -> Vec<SentInvoice> {
        self.invoices
            .iter()
            .map(|inv| SentInvoice {
                session_reference: inv.session.clone(),
                invoice_reference: inv.reference.clone(),
                ordinal_number: inv.ordinal,
                status: inv.status_code(now),
                details: match &inv.outcome {
                    Outcome::Failed { details, .. } if inv.is_final(now) => details.clone(),
                    _ => Vec::new(),
                },
                ksef_number: inv.ksef_number(now).map(str::to_string),
                invoice_number: inv.facts.as_ref().map(|f| f.number.clone()),
            })
            .collect()
    }
}
