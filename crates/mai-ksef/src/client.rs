//! The client the operator side calls: one per seller NIP and KSeF token.

use crate::auth::{KeyCache, Tokens};
use crate::config::KsefConfig;
use crate::crypto::sha256_b64;
use crate::error::{KsefError, PendingInvoice, Rejection, SendError};
use crate::http::{backoff, Http};
use crate::limits::Limiter;
use crate::number::ksef_number_is_valid;
use crate::session::OnlineSession;
use crate::token::KsefToken;
use crate::wire;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

/// A session is not used for a new invoice this close to its expiry.
const SESSION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// How long a missing UPO (not generated yet) is asked for again after the KSeF number.
const UPO_DEADLINE: Duration = Duration::from_secs(60);
/// Session replacements per invoice (expired or full session, 21173/21180/21155).
const MAX_SESSION_REPLACEMENTS: u32 = 2;

/// One invoice to send: our number (to match the results) and the FA(3) XML exactly as it
/// is to be issued (UTF-8, no BOM).
#[derive(Debug, Clone)]
pub struct OutgoingInvoice {
    pub id: String,
    pub xml: Vec<u8>,
}

/// An invoice KSeF accepted: it is issued, under `ksef_number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub ksef_number: String,
    /// When KSeF assigned the number (`acquisitionDate`): an instant; the Warsaw day of
    /// it is the date inside the number.
    pub acquisition_date: DateTime<Utc>,
    pub invoice_reference_number: String,
    pub session_reference_number: String,
    /// The receipt (UPO), signed by the Ministry, as KSeF sent it.
    pub upo_xml: String,
}

/// Progress of [`KsefClient::send_batch`], for a progress bar or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendProgress {
    SessionOpened {
        session_reference_number: String,
    },
    /// KSeF took the invoice for processing.
    Sent {
        id: String,
        invoice_reference_number: String,
    },
    /// The invoice's result is known (`done` of `total` so far).
    Finished {
        id: String,
        outcome: Outcome,
        done: usize,
        total: usize,
    },
    SessionClosed {
        session_reference_number: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected,
    Pending,
    NotAccepted,
}

impl Outcome {
    fn of(r: &Result<Accepted, SendError>) -> Self {
        match r {
            Ok(_) => Outcome::Accepted,
            Err(SendError::Rejected(_)) => Outcome::Rejected,
            Err(SendError::Pending(_)) => Outcome::Pending,
            Err(SendError::NotAccepted(_)) => Outcome::NotAccepted,
        }
    }
}

/// An invoice's status in KSeF (`GET /sessions/{ref}/invoices/{invoiceRef}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceStatus {
    pub session_reference_number: String,
    pub invoice_reference_number: String,
    /// 100 accepted for processing, 150 processing, 200 success, 405–550 refused.
    pub code: i32,
    pub description: String,
    pub details: Vec<String>,
    pub extensions: BTreeMap<String, String>,
    pub ksef_number: Option<String>,
    pub acquisition_date: Option<DateTime<Utc>>,
    /// When KSeF took the invoice for processing.
    pub invoicing_date: Option<DateTime<Utc>>,
    /// The invoice's own number (`P_2`) as KSeF read it.
    pub invoice_number: Option<String>,
    /// SHA-256 of the invoice as KSeF received it, Base64.
    pub invoice_hash: Option<String>,
}

/// What an [`InvoiceStatus`] means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceState {
    Processing,
    Accepted {
        ksef_number: String,
        acquisition_date: DateTime<Utc>,
    },
    Rejected(Rejection),
}

impl InvoiceStatus {
    fn from_wire(session: &str, s: wire::SessionInvoiceStatus) -> Self {
        Self {
            session_reference_number: session.to_owned(),
            invoice_reference_number: s.reference_number,
            code: s.status.code,
            description: s.status.description,
            details: s.status.details.unwrap_or_default(),
            extensions: s
                .status
                .extensions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            ksef_number: s.ksef_number,
            acquisition_date: s.acquisition_date,
            invoicing_date: s.invoicing_date,
            invoice_number: s.invoice_number,
            invoice_hash: s.invoice_hash,
        }
    }

    /// Codes below 200 are in progress, 200 is success (with the KSeF number and its
    /// date, or the answer is malformed), anything above is a final refusal.
    pub fn state(&self) -> Result<InvoiceState, KsefError> {
        const STEP: &str = "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}";
        match self.code {
            c if c < 200 => Ok(InvoiceState::Processing),
            200 => {
                let (Some(n), Some(d)) = (&self.ksef_number, self.acquisition_date) else {
                    return Err(KsefError::protocol(
                        STEP,
                        format!(
                            "status 200 for invoice {} without ksefNumber or acquisitionDate",
                            self.invoice_reference_number
                        ),
                    ));
                };
                Ok(InvoiceState::Accepted {
                    ksef_number: n.clone(),
                    acquisition_date: d,
                })
            }
            code => Ok(InvoiceState::Rejected(Rejection {
                code,
                description: self.description.clone(),
                details: self.details.clone(),
                original_ksef_number: self.extensions.get("originalKsefNumber").cloned(),
                original_session_reference_number: self
                    .extensions
                    .get("originalSessionReferenceNumber")
                    .cloned(),
                invoice_reference_number: self.invoice_reference_number.clone(),
                session_reference_number: self.session_reference_number.clone(),
            })),
        }
    }
}

pub(crate) struct Inner {
    pub config: KsefConfig,
    pub token: KsefToken,
    pub http: Http,
    pub tokens: Mutex<Option<Tokens>>,
    pub keys: Mutex<Option<KeyCache>>,
    pub limits_loaded: OnceCell<()>,
}

/// A KSeF client for one seller (NIP) and its KSeF token. Cheap to clone; clones share the
/// tokens, the key cache and the pacing (KSeF counts limits per NIP and IP, so one client
/// per NIP and process is the right number).
#[derive(Clone)]
pub struct KsefClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KsefClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KsefClient")
            .field("environment", &self.inner.config.environment)
            .field("base_url", &self.inner.config.base_url)
            .field("seller_nip", &self.inner.config.seller_nip)
            .field("token", &self.inner.token)
            .finish()
    }
}

/// Batch-local state: the session invoices go into, and every session opened.
struct Batch {
    current: Mutex<Option<Arc<OnlineSession>>>,
    opened: std::sync::Mutex<Vec<String>>,
    done: AtomicUsize,
    total: usize,
}

impl KsefClient {
    pub fn new(config: KsefConfig, token: KsefToken) -> Result<Self, KsefError> {
        let limiter = Limiter::new(config.initial_limits());
        let http = Http::new(
            &config.base_url,
            &config.seller_nip,
            config.extra_root_ca_pem.as_deref(),
            config.request_timeout,
            limiter,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                token,
                http,
                tokens: Mutex::new(None),
                keys: Mutex::new(None),
                limits_loaded: OnceCell::new(),
            }),
        })
    }

    pub fn config(&self) -> &KsefConfig {
        &self.inner.config
    }

    /// Authenticates now (or checks the current tokens): a connection test for the
    /// operator, and a way to fail early with the token's problem.
    pub async fn authenticate(&self) -> Result<(), KsefError> {
        self.inner.access_token().await.map(drop)
    }

    /// Sends invoices through one online session and waits for each one's result and UPO.
    ///
    /// `Err` only when nothing was sent (authentication or the session opening failed).
    /// Otherwise one result per invoice, in the order given, each `Ok` (issued, with
    /// its KSeF number and UPO) or a [`SendError`] saying whether KSeF refused it, still
    /// processes it, or never took it. `progress` is called from this task as things
    /// happen. Requests are paced inside KSeF's limits for this context; at most
    /// `config.max_in_flight` invoices are in the works at once.
    pub async fn send_batch<F>(
        &self,
        invoices: Vec<OutgoingInvoice>,
        progress: F,
    ) -> Result<Vec<(String, Result<Accepted, SendError>)>, KsefError>
    where
        F: Fn(SendProgress) + Sync,
    {
        if invoices.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &*self.inner;
        inner.access_token().await?;
        inner.load_rate_limits().await;
        let first = inner.open_session().await?;
        progress(SendProgress::SessionOpened {
            session_reference_number: first.reference.clone(),
        });
        let batch = Batch {
            opened: std::sync::Mutex::new(vec![first.reference.clone()]),
            current: Mutex::new(Some(Arc::new(first))),
            done: AtomicUsize::new(0),
            total: invoices.len(),
        };
        let started = Instant::now();
        let mut results: Vec<(usize, String, Result<Accepted, SendError>)> =
            futures::stream::iter(invoices.into_iter().enumerate())
                .map(|(i, inv)| {
                    let batch = &batch;
                    let progress = &progress;
                    async move {
                        let r = self.process(batch, &inv, progress).await;
                        let done = batch.done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(SendProgress::Finished {
                            id: inv.id.clone(),
                            outcome: Outcome::of(&r),
                            done,
                            total: batch.total,
                        });
                        (i, inv.id, r)
                    }
                })
                .buffer_unordered(inner.config.max_in_flight.max(1))
                .collect()
                .await;
        results.sort_by_key(|(i, _, _)| *i);

        let opened = std::mem::take(&mut *batch.opened.lock().unwrap_or_else(|p| p.into_inner()));
        for session in opened {
            match inner.close_session(&session).await {
                Ok(()) => progress(SendProgress::SessionClosed {
                    session_reference_number: session,
                }),
                // The invoices' results are known already; an open session expires by
                // itself after 12 hours.
                Err(e) => tracing::warn!(session, error = %e, "could not close the KSeF session"),
            }
        }
        let count = |o: Outcome| {
            results
                .iter()
                .filter(|(_, _, r)| Outcome::of(r) == o)
                .count()
        };
        tracing::info!(
            invoices = results.len(),
            accepted = count(Outcome::Accepted),
            rejected = count(Outcome::Rejected),
            pending = count(Outcome::Pending),
            not_accepted = count(Outcome::NotAccepted),
            seconds = started.elapsed().as_secs_f64(),
            "KSeF batch done"
        );
        Ok(results.into_iter().map(|(_, id, r)| (id, r)).collect())
    }

    async fn process(
        &self,
        batch: &Batch,
        inv: &OutgoingInvoice,
        progress: &(impl Fn(SendProgress) + Sync),
    ) -> Result<Accepted, SendError> {
        if inv.xml.is_empty() {
            return Err(SendError::NotAccepted(KsefError::config(format!(
                "invoice {:?} has no XML",
                inv.id
            ))));
        }
        let hash = sha256_b64(&inv.xml);
        let mut replaced = 0;
        let (session, invoice_ref) = loop {
            let session = self
                .session_for(batch, progress)
                .await
                .map_err(SendError::NotAccepted)?;
            match self.inner.send_invoice(&session, &inv.xml, &hash).await {
                Ok(r) => break (session, r),
                Err(e)
                    if replaced < MAX_SESSION_REPLACEMENTS
                        && [21173, 21180, 21155].iter().any(|&c| e.has_code(c)) =>
                {
                    tracing::info!(session = %session.reference, error = %e, "KSeF session unusable; opening another");
                    let mut current = batch.current.lock().await;
                    if current
                        .as_ref()
                        .is_some_and(|c| c.reference == session.reference)
                    {
                        *current = None;
                    }
                    replaced += 1;
                }
                Err(e) => return Err(SendError::NotAccepted(e)),
            }
        };
        tracing::debug!(id = %inv.id, invoice = %invoice_ref, session = %session.reference, "invoice sent to KSeF");
        progress(SendProgress::Sent {
            id: inv.id.clone(),
            invoice_reference_number: invoice_ref.clone(),
        });
        self.follow(
            &session.reference,
            &invoice_ref,
            Some(&hash),
            self.inner.config.status_poll_initial,
        )
        .await
    }

    /// The batch's current session, or a new one when there is none or it is about to
    /// expire.
    async fn session_for(
        &self,
        batch: &Batch,
        progress: &(impl Fn(SendProgress) + Sync),
    ) -> Result<Arc<OnlineSession>, KsefError> {
        let mut current = batch.current.lock().await;
        if let Some(s) = current.as_ref() {
            if s.valid_until - SESSION_MARGIN > Utc::now() {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(self.inner.open_session().await?);
        batch
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s.reference.clone());
        progress(SendProgress::SessionOpened {
            session_reference_number: s.reference.clone(),
        });
        *current = Some(s.clone());
        Ok(s)
    }

    /// An invoice's current status.
    pub async fn invoice_status(
        &self,
        session_reference_number: &str,
        invoice_reference_number: &str,
    ) -> Result<InvoiceStatus, KsefError> {
        let raw = self
            .inner
            .invoice_status_raw(session_reference_number, invoice_reference_number)
            .await?;
        Ok(InvoiceStatus::from_wire(session_reference_number, raw))
    }

    /// An accepted invoice's UPO (receipt) XML.
    pub async fn upo(
        &self,
        session_reference_number: &str,
        invoice_reference_number: &str,
    ) -> Result<String, KsefError> {
        self.inner
            .upo_raw(session_reference_number, invoice_reference_number)
            .await
    }

    /// Follows up an invoice sent earlier (a [`SendError::Pending`]): waits up to
    /// `config.status_timeout` for its result and fetches its UPO, as `send_batch` does.
    pub async fn await_invoice(
        &self,
        session_reference_number: &str,
        invoice_reference_number: &str,
    ) -> Result<Accepted, SendError> {
        self.follow(
            session_reference_number,
            invoice_reference_number,
            None,
            Duration::ZERO,
        )
        .await
    }

    /// Polls the status until it is final, then fetches the UPO.
    async fn follow(
        &self,
        session: &str,
        invoice: &str,
        sent_hash: Option<&str>,
        first_delay: Duration,
    ) -> Result<Accepted, SendError> {
        let cfg = &self.inner.config;
        let pending = |ksef_number: Option<String>, last_status: Option<i32>, reason: String| {
            SendError::Pending(PendingInvoice {
                session_reference_number: session.to_owned(),
                invoice_reference_number: invoice.to_owned(),
                ksef_number,
                last_status,
                reason,
            })
        };
        let started = Instant::now();
        let deadline = started + cfg.status_timeout;
        let mut delay = first_delay;
        let mut last: Option<i32> = None;
        let (status, ksef_number, acquisition_date) = loop {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match self.invoice_status(session, invoice).await {
                Ok(s) => {
                    last = Some(s.code);
                    match s.state() {
                        Ok(InvoiceState::Processing) => {}
                        Ok(InvoiceState::Accepted {
                            ksef_number,
                            acquisition_date,
                        }) => break (s, ksef_number, acquisition_date),
                        Ok(InvoiceState::Rejected(r)) => {
                            tracing::info!(invoice, code = r.code, description = %r.description, "KSeF rejected the invoice");
                            return Err(SendError::Rejected(r));
                        }
                        Err(e) => return Err(pending(None, last, e.to_string())),
                    }
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(invoice, error = %e, "KSeF status not available; asking again");
                }
                Err(e) => return Err(pending(None, last, e.to_string())),
            }
            delay = if delay.is_zero() {
                cfg.status_poll_initial
            } else {
                (delay * 3 / 2).min(cfg.status_poll_max)
            };
            if Instant::now() + delay >= deadline {
                return Err(pending(
                    None,
                    last,
                    format!(
                        "its status was still {} after {} s",
                        last.map_or("unknown".into(), |c| c.to_string()),
                        started.elapsed().as_secs()
                    ),
                ));
            }
        };

        if !ksef_number_is_valid(&ksef_number) || !ksef_number.starts_with(&cfg.seller_nip) {
            tracing::warn!(ksef_number, nip = %cfg.seller_nip, "KSeF returned a KSeF number that does not check out (format, CRC-8 or seller NIP); keeping it as KSeF's word");
        }
        if let (Some(ours), Some(theirs)) = (sent_hash, status.invoice_hash.as_deref()) {
            if ours != theirs {
                return Err(pending(
                    Some(ksef_number),
                    last,
                    format!("KSeF's hash of the invoice ({theirs}) is not the hash of what we sent ({ours}); check the invoice in KSeF before relying on it"),
                ));
            }
        }

        let upo_started = Instant::now();
        let mut attempt = 0;
        let upo = loop {
            match self.upo(session, invoice).await {
                Ok(x) => break x,
                Err(e) => {
                    let not_yet = e.has_code(21178) || e.status() == Some(404) || e.is_temporary();
                    let wait = backoff(attempt.min(3));
                    if !not_yet || upo_started.elapsed() + wait > UPO_DEADLINE {
                        return Err(pending(
                            Some(ksef_number),
                            last,
                            format!("its UPO could not be fetched: {e}"),
                        ));
                    }
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        };
        if !upo.contains(&ksef_number) {
            return Err(pending(
                Some(ksef_number),
                last,
                "the UPO KSeF returned does not name its KSeF number; fetch it again later".into(),
            ));
        }
        // `SkrotDokumentu` is "the hash of the submitted document" (upo-v4-3.xsd), which
        // should be `invoiceHash`; neither the docs nor the C# client say so outright, so a
        // difference is reported, not held against the receipt.
        if let Some(h) = status.invoice_hash.as_deref().or(sent_hash) {
            if !upo.contains(h) {
                tracing::warn!(
                    ksef_number,
                    invoice_hash = h,
                    "the UPO does not contain the invoice's SHA-256"
                );
            }
        }
        Ok(Accepted {
            ksef_number,
            acquisition_date,
            invoice_reference_number: invoice.to_owned(),
            session_reference_number: session.to_owned(),
            upo_xml: upo,
        })
    }
}

/// A reference number as a path segment: KSeF's are letters, digits and dashes; anything
/// else would change the path.
pub(crate) fn path_segment<'a>(step: &str, reference: &'a str) -> Result<&'a str, KsefError> {
    if !reference.is_empty()
        && reference.len() <= 64
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(reference)
    } else {
        Err(KsefError::protocol(
            step,
            format!("{reference:?} is not a KSeF reference number (letters, digits and dashes)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> InvoiceStatus {
        InvoiceStatus::from_wire(
            "20250626-SO-2F14610000-242991F8C9-B4",
            serde_json::from_str(json).unwrap(),
        )
    }

    #[test]
    fn a_duplicate_is_a_rejection_naming_the_original() {
        let s = status(include_str!(
            "../tests/fixtures/contract/invoice-status.440.json"
        ));
        let InvoiceState::Rejected(r) = s.state().unwrap() else {
            panic!("{s:?}")
        };
        assert_eq!(r.code, 440);
        assert_eq!(r.description, "Duplikat faktury");
        assert_eq!(
            r.original_ksef_number.as_deref(),
            Some("5265877635-20250626-010080DD2B5E-26")
        );
        assert_eq!(
            r.original_session_reference_number.as_deref(),
            Some("20250626-SO-2F14610000-242991F8C9-B4")
        );
        assert_eq!(
            r.invoice_reference_number,
            "20250626-EE-2F20AD2000-242386DF86-52"
        );
        assert_eq!(r.kind(), crate::RejectionKind::Duplicate);
        assert!(r.details[0].contains("została już prawidłowo przesłana"));
    }

    #[test]
    fn success_needs_the_number_and_its_date() {
        let list: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/contract/session-invoices.200.json"
        ))
        .unwrap();
        let ok = status(&list["invoices"][0].to_string());
        assert_eq!(
            ok.state().unwrap(),
            InvoiceState::Accepted {
                ksef_number: "5265877635-20250626-010080DD2B5E-26".into(),
                acquisition_date: "2025-09-18T12:24:16.0154302Z".parse().unwrap(),
            }
        );
        assert_eq!(
            ok.invoice_number.as_deref(),
            Some("FA/XPWIC-7900685789/06/2025")
        );

        let mut broken = list["invoices"][0].clone();
        broken.as_object_mut().unwrap().remove("acquisitionDate");
        let e = status(&broken.to_string()).state().unwrap_err().to_string();
        assert!(e.contains("acquisitionDate"), "{e}");

        for code in [100, 150] {
            let s = status(&format!(
                r#"{{"ordinalNumber":1,"referenceNumber":"20250918-EE-2F15D39000-242207E5C4-1B","invoiceHash":"mkht+3m5trnfxlTYhq3QFn74LkEO69MFNlsMAkCDSPA=","invoicingDate":"2025-09-18T12:23:56+00:00","status":{{"code":{code},"description":"Trwa przetwarzanie"}}}}"#
            ));
            assert_eq!(s.state().unwrap(), InvoiceState::Processing);
        }
        let s = status(
            r#"{"ordinalNumber":1,"referenceNumber":"20250918-EE-2F15D39000-242207E5C4-1B","invoicingDate":"2025-09-18T12:23:56+00:00","status":{"code":450,"description":"Błąd weryfikacji semantyki dokumentu faktury","details":["P_1 późniejsza niż data przyjęcia"]}}"#,
        );
        let InvoiceState::Rejected(r) = s.state().unwrap() else {
            panic!()
        };
        assert_eq!(r.kind(), crate::RejectionKind::InvalidInvoice);
        assert_eq!(r.original_ksef_number, None);
    }

    /// The lead runs batches from Tauri commands and tokio tasks: the futures must be Send.
    #[allow(dead_code)]
    fn futures_are_send(c: &KsefClient) {
        fn send<T: Send>(_: T) {}
        send(c.send_batch(Vec::new(), |_| {}));
        send(c.await_invoice("s", "i"));
        send(c.invoice_status("s", "i"));
        send(c.upo("s", "i"));
        send(c.authenticate());
    }

    #[test]
    fn reference_numbers_cannot_change_the_path() {
        assert!(path_segment("s", "20250625-SO-2C3E6C8000-B675CF5D68-07").is_ok());
        for bad in ["", "../auth", "a/b", "x?y=1", "ref%2F", "ąę"] {
            assert!(path_segment("s", bad).is_err(), "{bad}");
        }
    }
}
