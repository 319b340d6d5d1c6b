//! KSeF: the seller's token in the keychain (audited), where invoices are sent (the
//! fleet file's `[ksef]`, `KSEF_BASE_URL`), and the month's invoices in KSeF: their state,
//! sending them, their receipts (UPO). The same calls serve the console's Billing view
//! and `maictl invoices send|status`, `maictl ksef token`.
//!
//! [`Ops::ksef_send`] joins mai-billing (which prepares and numbers invoices and keeps
//! their lifecycle) and mai-ksef (which talks to KSeF): it sends exactly the prepared
//! bytes and records every answer in the billing store. [`Ops::ksef_status`] and
//! [`Ops::ksef_upo`] read the store, asking KSeF only about what it has not answered yet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use mai_billing::export::pdf::KsefEnvironment as PdfEnvironment;
use mai_billing::service::Billing;
use mai_billing::{
    ClientProblem, InvoiceKind, InvoiceStatusRow, IssuedInvoice, KsefAcceptance, KsefDuplicate,
    KsefRejection as BillingRejection, KsefState as BillingState, KsefSubmission,
};
use mai_core::time::YearMonth;
use mai_ksef::{Accepted, KsefClient, OutgoingInvoice, SendError, SendProgress};
use mai_wire::ksef::{
    KsefEnvironment, KsefInvoiceKind, KsefInvoiceRow, KsefRejection, KsefSendPhase,
    KsefSendProgress, KsefSendSummary, KsefState as WireState, KsefTokenStatus,
};
use rust_decimal::Decimal;

use super::{blocking, Ops, OpsError};
use crate::audit::{os_user, AuditRecord};
use crate::fleet::{KsefEndpoint, KsefSettings};
use crate::keys::KeyError;
use crate::ksef_token::{KsefToken, KsefTokenKey};

/// Everything the KSeF client needs to send as the seller: where, as whom, with what.
/// `Debug` shows the token masked.
#[derive(Debug, Clone)]
pub struct KsefConnection {
    pub endpoint: KsefEndpoint,
    /// The billing file's seller NIP: the KSeF context.
    pub seller_nip: String,
    pub token: KsefToken,
}

/// Whether `s` is shaped like a KSeF number, `{NIP}-{YYYYMMDD}-{12 hex}-{2 hex}` (35
/// characters, upper-case hex): it becomes part of a file name, so nothing else may.
/// The checksum is the KSeF client's to verify.
pub fn is_ksef_number(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    let hex = |x: &str, n: usize| {
        x.len() == n
            && x.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    p.len() == 4 && digits(p[0], 10) && digits(p[1], 8) && hex(p[2], 12) && hex(p[3], 2)
}

/// Where a receipt is saved: `UPO_<KSeF number>.xml` in `out_dir`, the month's invoice
/// folder unless the caller names one (as the invoice exports do).
pub fn upo_path(out_dir: &Path, ksef_number: &str) -> Result<PathBuf, OpsError> {
    if !is_ksef_number(ksef_number) {
        return Err(OpsError::Ksef(format!(
            "{ksef_number:?} is not a KSeF number (35 characters: NIP-YYYYMMDD-12 hex-2 hex, e.g. 5265877635-20250826-0100001AF629-AF)"
        )));
    }
    Ok(out_dir.join(format!("UPO_{ksef_number}.xml")))
}

/// One audit record of a KSeF token action.
fn token_record(
    action: &str,
    key: &KsefTokenKey,
    outcome: &str,
    masked: Option<&str>,
    error: Option<String>,
) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        actor: os_user(),
        action: action.into(),
        // A seller-level secret: the record names the seller, not a client.
        client: format!("seller {}", key.seller_nip),
        subject_hash: None,
        outcome: outcome.into(),
        detail: serde_json::json!({
            "environment": key.environment_label(),
            "token": masked,
        }),
        error,
    }
}

impl Ops {
    /// The fleet file's `[ksef]` section, or an error saying how to add one.
    pub fn ksef_settings(&self) -> Result<&KsefSettings, OpsError> {
        self.fleet
            .ksef
            .as_ref()
            .ok_or_else(|| OpsError::NoKsef(self.fleet.path.clone()))
    }

    /// The KSeF this run talks to: the fleet file's, unless `KSEF_BASE_URL` is set.
    pub fn ksef_endpoint(&self) -> Result<KsefEndpoint, OpsError> {
        let over = std::env::var("KSEF_BASE_URL").ok();
        self.ksef_settings()?
            .endpoint(over.as_deref())
            .map_err(OpsError::Ksef)
    }

    /// The seller's NIP, normalised: the billing file's `[seller] nip`, its one owner.
    pub fn ksef_seller_nip(&self) -> Result<String, OpsError> {
        let files = self.billing_files()?;
        let cfg = mai_billing::config::BillingConfig::load(&files.config)?;
        mai_billing::nip::normalise_nip(&cfg.seller.nip).map_err(|e| {
            OpsError::Billing(mai_billing::BillingError::Config {
                path: files.config.clone(),
                detail: format!("seller.nip: {e}"),
            })
        })
    }

    fn ksef_token_key(&self) -> Result<KsefTokenKey, OpsError> {
        self.ksef_token_key_for(&self.ksef_endpoint()?)
    }

    fn ksef_token_key_for(&self, endpoint: &KsefEndpoint) -> Result<KsefTokenKey, OpsError> {
        Ok(KsefTokenKey {
            seller_nip: self.ksef_seller_nip()?,
            environment: endpoint.environment,
            base_url: endpoint.base_url.clone(),
        })
    }

    /// Whether the seller's KSeF token for this KSeF is in the keychain (masked).
    pub async fn ksef_token_status(&self) -> Result<KsefTokenStatus, OpsError> {
        let key = self.ksef_token_key()?;
        let k = self.keychain("reading the KSeF token")?.clone();
        let k2 = key.clone();
        let masked = blocking(move || match k.ksef_token(&k2) {
            Ok(t) => Ok(Some(t.masked())),
            Err(KeyError::MissingKsefToken { .. }) => Ok(None),
            Err(e) => Err(e),
        })
        .await?;
        Ok(KsefTokenStatus {
            seller_nip: key.seller_nip,
            environment: key.environment,
            base_url: key.base_url.to_string(),
            present: masked.is_some(),
            masked,
        })
    }

    /// Stores (or replaces) the seller's KSeF token for this KSeF, audited. The token
    /// goes to the keychain only; the reply and the audit log have it masked.
    pub async fn ksef_token_set(&self, token: String) -> Result<KsefTokenStatus, OpsError> {
        const ACTION: &str = "ksef_token_set";
        let key = self.ksef_token_key()?;
        let token = token.trim().to_string();
        crate::ksef_token::validate_ksef_token(&token, &key.seller_nip)?;
        let k = self.keychain("storing the KSeF token")?.clone();
        let masked = crate::keys::mask(&token);
        let log = self.audit_log();
        log.append(&token_record(ACTION, &key, "started", Some(&masked), None))?;
        let k2 = key.clone();
        let stored = blocking(move || k.set_ksef_token(&k2, &token)).await;
        match stored {
            Ok(_) => log.append(&token_record(ACTION, &key, "ok", Some(&masked), None))?,
            Err(e) => {
                log.append(&token_record(
                    ACTION,
                    &key,
                    "failed",
                    Some(&masked),
                    Some(e.to_string()),
                ))?;
                return Err(e);
            }
        }
        self.ksef_token_status().await
    }

    /// Deletes the seller's KSeF token for this KSeF from the keychain, audited.
    pub async fn ksef_token_delete(&self) -> Result<KsefTokenStatus, OpsError> {
        const ACTION: &str = "ksef_token_delete";
        let key = self.ksef_token_key()?;
        let k = self.keychain("deleting the KSeF token")?.clone();
        let log = self.audit_log();
        log.append(&token_record(ACTION, &key, "started", None, None))?;
        let k2 = key.clone();
        match blocking(move || k.delete_ksef_token(&k2)).await {
            Ok(()) => log.append(&token_record(ACTION, &key, "ok", None, None))?,
            Err(e) => {
                log.append(&token_record(
                    ACTION,
                    &key,
                    "failed",
                    None,
                    Some(e.to_string()),
                ))?;
                return Err(e);
            }
        }
        self.ksef_token_status().await
    }

    /// Where to send, as which seller, with the token from the keychain: what the KSeF
    /// client is built from.
    pub async fn ksef_connection(&self) -> Result<KsefConnection, OpsError> {
        let endpoint = self.ksef_endpoint()?;
        let key = self.ksef_token_key_for(&endpoint)?;
        let k = self.keychain("reading the KSeF token")?.clone();
        let k2 = key.clone();
        let token = blocking(move || k.ksef_token(&k2)).await?;
        Ok(KsefConnection {
            endpoint,
            seller_nip: key.seller_nip,
            token,
        })
    }

    /// Checks what every KSeF action of a month needs from its arguments and the fleet.
    fn ksef_month(&self, month: &str) -> Result<mai_core::time::YearMonth, OpsError> {
        self.ksef_settings()?;
        month
            .parse()
            .map_err(|_| OpsError::BadMonth(month.to_string()))
    }

    /// The KSeF client for this run: the endpoint's URL, the fleet's CA and concurrency,
    /// the seller's token. Named environments keep their published limits; a custom URL
    /// (a simulator, a proxy of the test system) is paced like TEST.
    pub fn ksef_client(&self, conn: &KsefConnection) -> Result<KsefClient, OpsError> {
        let env = client_environment(conn.endpoint.environment);
        let mut cfg = mai_ksef::KsefConfig::new(env, &conn.seller_nip)?
            .with_base_url(conn.endpoint.base_url.as_str())?;
        if let Some(ca) = &conn.endpoint.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| {
                OpsError::Ksef(format!(
                    "[ksef] ca_cert {}: cannot read it ({e}); point it at the simulator's CA certificate (PEM)",
                    ca.display()
                ))
            })?;
            cfg = cfg.with_extra_root_ca_pem(pem)?;
        }
        if let Some(n) = conn.endpoint.concurrency {
            cfg.max_in_flight = n;
        }
        Ok(KsefClient::new(
            cfg,
            mai_ksef::KsefToken::new(conn.token.expose().to_string()),
        )?)
    }

    /// The month's invoices in KSeF, one row per client (a client with nothing to send
    /// is a `not_issued` row), corrections included. Invoices KSeF was still processing
    /// are asked about once (without waiting); if KSeF cannot be reached, their rows say
    /// so and the rest comes from the billing store.
    pub async fn ksef_status(&self, month: &str) -> Result<Vec<KsefInvoiceRow>, OpsError> {
        let ym = self.ksef_month(month)?;
        let billing = self.billing_service()?;
        let mut notes = Notes::default();
        let awaiting: Vec<InvoiceStatusRow> = billing
            .with_store(|s| s.awaiting_ksef())
            .await?
            .into_iter()
            .filter(|r| r.month == ym)
            .collect();
        if !awaiting.is_empty() {
            match self.ksef_connect().await {
                Ok(client) => {
                    for a in &awaiting {
                        follow_up(&client, &billing, a, false, &mut notes).await;
                    }
                }
                Err(e) => {
                    for a in &awaiting {
                        notes.error(
                            &a.number,
                            format!("its KSeF status could not be asked: {e}"),
                        );
                    }
                }
            }
        }
        let report = billing.report(ym, None).await?;
        let not_issued: Vec<(String, String)> = report
            .clients
            .iter()
            .filter(|c| c.invoice_number.is_none())
            .map(|c| (c.org_id.clone(), not_issued_reason(c, ym)))
            .collect();
        let mut rows = month_rows(&billing, ym, &[], &notes).await?;
        add_not_issued(&mut rows, &billing, not_issued, &[]);
        Ok(rows)
    }

    /// Authenticates with the keychain's token: a bad token or an unreachable KSeF fails
    /// here, before anything is numbered or sent.
    async fn ksef_connect(&self) -> Result<KsefClient, OpsError> {
        let conn = self.ksef_connection().await?;
        let client = self.ksef_client(&conn)?;
        client.authenticate().await?;
        Ok(client)
    }

    /// Sends the month's invoices that KSeF has not accepted yet (one client's, or all),
    /// waits for KSeF's verdicts and fetches the receipts; `progress` is called as it
    /// goes. The summary lists every invoice handled; a failure of one does not stop the
    /// others.
    ///
    /// Order: invoices sent earlier without a verdict are followed up first (never sent
    /// again), then mai-billing prepares what is due (new invoices, corrections, re-sends
    /// after a rejection, and unsent ones) and exactly the prepared bytes are sent. Each
    /// invoice is recorded as sent as soon as KSeF names its reference, so a crash after
    /// that is followed up; a crash before it leaves the invoice `prepared`, and sending it
    /// again gets KSeF's 440 with the original KSeF number, recorded as accepted.
    pub async fn ksef_send(
        &self,
        month: &str,
        client: Option<&str>,
        progress: &mut (dyn FnMut(KsefSendProgress) + Send),
    ) -> Result<KsefSendSummary, OpsError> {
        let ym = self.ksef_month(month)?;
        let client = client.filter(|c| !c.is_empty());
        if let Some(c) = client {
            self.client(c)?;
        }
        let billing = self.billing_service()?;
        progress(KsefSendProgress {
            done: 0,
            total: 0,
            current: None,
            phase: KsefSendPhase::Connecting,
        });
        let ksef = self.ksef_connect().await?;
        let mut notes = Notes::default();
        let mut handled: Vec<String> = Vec::new();

        let awaiting: Vec<InvoiceStatusRow> = billing
            .with_store(|s| s.awaiting_ksef())
            .await?
            .into_iter()
            .filter(|r| client.is_none_or(|c| c == r.org_id))
            .collect();
        for (i, a) in awaiting.iter().enumerate() {
            progress(KsefSendProgress {
                done: i,
                total: awaiting.len(),
                current: Some(a.number.clone()),
                phase: KsefSendPhase::Processing,
            });
            follow_up(&ksef, &billing, a, true, &mut notes).await;
            handled.push(a.number.clone());
        }

        let outcome = billing
            .prepare_for_ksef(&mai_billing::PrepareRequest {
                month: ym,
                client: client.map(str::to_string),
                issue_date: None,
                allow_unconfirmed: false,
            })
            .await?;
        let total = outcome.ready.len();
        let sha: HashMap<String, String> = outcome
            .ready
            .iter()
            .map(|r| (r.number.clone(), r.xml_sha256.clone()))
            .collect();
        let outgoing: Vec<OutgoingInvoice> = outcome
            .ready
            .iter()
            .map(|r| OutgoingInvoice {
                id: r.number.clone(),
                xml: r.xml.clone(),
            })
            .collect();
        handled.extend(outcome.ready.iter().map(|r| r.number.clone()));

        // The client reports from its own tasks; the events come here through a channel
        // so that recording `sent` (a store write) and the caller's progress run on this
        // task, while the batch goes on.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SendProgress>();
        let send = ksef.send_batch(outgoing, move |p| {
            let _ = tx.send(p);
        });
        let record = async {
            let mut sessions: Vec<String> = Vec::new();
            let mut done = 0;
            while let Some(p) = rx.recv().await {
                match p {
                    SendProgress::SessionOpened {
                        session_reference_number,
                    } => sessions.push(session_reference_number),
                    SendProgress::Sent {
                        id,
                        invoice_reference_number,
                    } => {
                        // The event does not name the session: with one session open so
                        // far it is that one; otherwise the final result records it.
                        if let ([session], Some(h)) = (sessions.as_slice(), sha.get(&id)) {
                            let sub = KsefSubmission {
                                session_ref: session.clone(),
                                invoice_ref: invoice_reference_number,
                                xml_sha256: h.clone(),
                            };
                            let n = id.clone();
                            if let Err(e) =
                                billing.with_store(move |s| s.record_sent(&n, &sub)).await
                            {
                                tracing::warn!(number = %id, error = %e, "could not record the invoice as sent");
                            }
                        }
                        progress(KsefSendProgress {
                            done,
                            total,
                            current: Some(id),
                            phase: KsefSendPhase::Sending,
                        });
                    }
                    SendProgress::Finished { id, done: d, .. } => {
                        done = d;
                        progress(KsefSendProgress {
                            done,
                            total,
                            current: Some(id),
                            phase: KsefSendPhase::Processing,
                        });
                    }
                    SendProgress::SessionClosed { .. } => {}
                }
            }
        };
        let (results, ()) = tokio::join!(send, record);
        match results {
            Ok(results) => {
                for (number, r) in results {
                    let h = sha.get(&number).cloned().unwrap_or_default();
                    record_result(&billing, &number, &h, r, &mut notes).await;
                }
            }
            // Nothing was sent (the first session could not be opened): every invoice
            // stays as it was and may be sent again.
            Err(e) => {
                for n in sha.keys() {
                    notes.error(n, format!("not sent: {e}; sending again is safe"));
                }
            }
        }

        let not_issued: Vec<(String, String)> = outcome
            .not_issued
            .iter()
            .map(|n| (n.org_id.clone(), n.reason.clone()))
            .collect();
        for p in &outcome.problems {
            if let Some(n) = &p.number {
                notes.error(n, problem_text(p));
            }
        }
        let mut rows = month_rows(&billing, ym, &handled, &notes).await?;
        add_not_issued(&mut rows, &billing, not_issued, &outcome.problems);
        rows.retain(|r| client.is_none_or(|c| c == r.org_id));
        progress(KsefSendProgress {
            done: total,
            total,
            current: None,
            phase: KsefSendPhase::Done,
        });
        Ok(KsefSendSummary::of(ym.to_string(), rows))
    }

    /// Saves KSeF's receipt (UPO) of the invoice `ksef_number` of `month` to `out_dir`
    /// (default: the month's invoice folder, `~/mai-invoices/YYYY-MM`) and returns the
    /// file's path. A receipt not stored yet is downloaded from KSeF and stored first.
    pub async fn ksef_upo(
        &self,
        month: &str,
        ksef_number: &str,
        out_dir: Option<PathBuf>,
    ) -> Result<PathBuf, OpsError> {
        let ym = self.ksef_month(month)?;
        let dir = out_dir.unwrap_or_else(|| {
            super::default_invoice_dir(std::env::var_os("HOME").map(Into::into), ym)
        });
        let path = upo_path(&dir, ksef_number)?;
        let billing = self.billing_service()?;
        let rows = billing.ksef_status(ym).await?;
        let Some(row) = rows
            .iter()
            .find(|r| r.ksef_number.as_deref() == Some(ksef_number))
        else {
            return Err(OpsError::Ksef(format!(
                "no invoice of {ym} has KSeF number {ksef_number}; `maictl invoices status --month {ym}` lists them"
            )));
        };
        let number = row.number.clone();
        let upo = match billing.upo(&number).await? {
            Some(u) => u,
            None => {
                let (Some(session), Some(invoice), Some(_)) =
                    (&row.session_ref, &row.invoice_ref, row.acquired_at)
                else {
                    return Err(OpsError::Ksef(format!(
                        "invoice {number} (KSeF {ksef_number}) has no receipt stored and no KSeF reference to download it with \
                         (KSeF recognised it as sent earlier, answer 440, so its receipt belongs to that earlier send): download its UPO in KSeF's web application"
                    )));
                };
                let client = self.ksef_connect().await?;
                let upo = client.upo(session, invoice).await?;
                let (n, u) = (number.clone(), upo.clone());
                billing.with_store(move |s| s.record_upo(&n, &u)).await?;
                upo
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            OpsError::Ksef(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
        std::fs::write(&path, upo.as_bytes()).map_err(|e| {
            OpsError::Ksef(format!(
                "cannot write the receipt to {}: {e}",
                path.display()
            ))
        })?;
        Ok(path)
    }
}

/// The KSeF client's environment for the fleet's: a custom URL is the simulator or a
/// proxy of the test system, so it is paced with TEST's published limits.
pub fn client_environment(env: KsefEnvironment) -> mai_ksef::Environment {
    crate::fleet::ministry_ksef(env).unwrap_or(mai_ksef::Environment::Test)
}

/// The QR host a PDF prints for invoices sent to `env`.
pub fn pdf_environment(env: KsefEnvironment) -> PdfEnvironment {
    match env {
        KsefEnvironment::Test | KsefEnvironment::Custom => PdfEnvironment::Test,
        KsefEnvironment::Demo => PdfEnvironment::Demo,
        KsefEnvironment::Prd => PdfEnvironment::Production,
    }
}

/// What this run learnt about invoices beyond the store: errors (the row's `error`) and
/// a 440 that cannot be this invoice (shown as its rejection).
#[derive(Debug, Default)]
struct Notes {
    errors: HashMap<String, String>,
    rejections: HashMap<String, KsefRejection>,
}

impl Notes {
    fn error(&mut self, number: &str, e: String) {
        self.errors
            .entry(number.to_string())
            .and_modify(|old| {
                old.push_str("; ");
                old.push_str(&e);
            })
            .or_insert(e);
    }
}

/// Asks KSeF about an invoice sent earlier. `wait`: until its verdict (`await_invoice`,
/// up to the client's status timeout); else one status read, and the verdict only if it
/// is final.
async fn follow_up(
    ksef: &KsefClient,
    billing: &Billing,
    row: &InvoiceStatusRow,
    wait: bool,
    notes: &mut Notes,
) {
    let (Some(session), Some(invoice)) = (&row.session_ref, &row.invoice_ref) else {
        return;
    };
    if !wait {
        match ksef.invoice_status(session, invoice).await {
            Ok(st) if st.code < 200 => return,
            Ok(_) => {}
            Err(e) => {
                notes.error(
                    &row.number,
                    format!("its KSeF status could not be read: {e}"),
                );
                return;
            }
        }
    }
    let r = ksef.await_invoice(session, invoice).await;
    let sha = row.xml_sha256.clone().unwrap_or_default();
    record_result(billing, &row.number, &sha, r, notes).await;
}

/// Records KSeF's answer for one invoice in the billing store.
async fn record_result(
    billing: &Billing,
    number: &str,
    xml_sha256: &str,
    r: Result<Accepted, SendError>,
    notes: &mut Notes,
) {
    let sent = |session: &str, invoice: &str| KsefSubmission {
        session_ref: session.to_string(),
        invoice_ref: invoice.to_string(),
        xml_sha256: xml_sha256.to_string(),
    };
    let n = number.to_string();
    let recorded: Result<(), OpsError> = match r {
        Ok(acc) => {
            if !mai_ksef::ksef_number_is_valid(&acc.ksef_number) {
                tracing::warn!(number, ksef_number = %acc.ksef_number, "KSeF number fails its checksum");
            }
            let sub = sent(&acc.session_reference_number, &acc.invoice_reference_number);
            let a = KsefAcceptance {
                ksef_number: acc.ksef_number,
                acquisition_date: acc.acquisition_date,
                session_ref: acc.session_reference_number,
                invoice_ref: acc.invoice_reference_number,
                upo_xml: Some(acc.upo_xml),
            };
            billing
                .with_store(move |s| {
                    s.record_sent(&n, &sub)?;
                    s.record_accepted(&n, &a)
                })
                .await
                .map_err(Into::into)
        }
        Err(SendError::Rejected(rej)) => {
            let sub = sent(&rej.session_reference_number, &rej.invoice_reference_number);
            if rej.code == 440 {
                record_duplicate(billing, number, sub, rej, notes).await
            } else {
                let j = BillingRejection {
                    code: rej.code,
                    description: rej.description,
                    details: rej.details,
                    session_ref: Some(rej.session_reference_number),
                    invoice_ref: Some(rej.invoice_reference_number),
                };
                billing
                    .with_store(move |s| {
                        s.record_sent(&n, &sub)?;
                        s.record_rejected(&n, &j)
                    })
                    .await
                    .map_err(Into::into)
            }
        }
        Err(SendError::Pending(p)) => {
            let sub = sent(&p.session_reference_number, &p.invoice_reference_number);
            billing
                .with_store(move |s| s.record_sent(&n, &sub))
                .await
                .map_err(Into::into)
        }
        Err(SendError::NotAccepted(e)) => {
            notes.error(
                number,
                format!(
                    "KSeF did not take it: {e}; sending again is safe{}",
                    if e.is_temporary() {
                        " (later: this looks temporary)"
                    } else {
                        ""
                    }
                ),
            );
            Ok(())
        }
    };
    if let Err(e) = recorded {
        notes.error(number, format!("KSeF's answer could not be recorded: {e}"));
    }
}

/// A 440: KSeF holds an invoice with this seller, kind and number. It is this invoice
/// (an earlier send whose answer was lost) unless KSeF accepted the original before this
/// invoice was even prepared (the KSeF number carries the day): then the numbers collide
/// with invoices issued elsewhere, and nothing is recorded.
async fn record_duplicate(
    billing: &Billing,
    number: &str,
    sub: KsefSubmission,
    rej: mai_ksef::Rejection,
    notes: &mut Notes,
) -> Result<(), OpsError> {
    let Some(original) = rej.original_ksef_number.clone() else {
        notes.error(
            number,
            format!(
                "KSeF answered 440 (duplicate) without naming the original KSeF number: {}; \
                 find the invoice {number} in KSeF's web application",
                rej.description
            ),
        );
        return Ok(());
    };
    let n = number.to_string();
    let history = billing.with_store(move |s| s.history(&n)).await?;
    let prepared_day = history
        .iter()
        .find(|e| e.event == "prepared")
        .map(|e| mai_core::time::warsaw_day(e.at));
    let original_day = original
        .split('-')
        .nth(1)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok());
    if let (Some(p), Some(o)) = (prepared_day, original_day) {
        if o < p {
            notes.rejections.insert(
                number.to_string(),
                KsefRejection::new(440, rej.description.clone(), {
                    let mut d = rej.details.clone();
                    d.push(format!(
                        "original KSeF number {original}, accepted {o}, before this invoice was prepared ({p}): another invoice with the same number"
                    ));
                    d
                }),
            );
            notes.error(
                number,
                format!(
                    "KSeF already holds another invoice numbered {number} ({original}, from {o}): the numbering collides with invoices issued elsewhere"
                ),
            );
            let n = number.to_string();
            return billing
                .with_store(move |s| s.record_sent(&n, &sub))
                .await
                .map_err(Into::into);
        }
    }
    let dup = KsefDuplicate {
        original_ksef_number: original,
        original_session_ref: rej.original_session_reference_number,
        session_ref: Some(rej.session_reference_number),
        invoice_ref: Some(rej.invoice_reference_number),
        description: rej.description,
    };
    let n = number.to_string();
    billing
        .with_store(move |s| {
            s.record_sent(&n, &sub)?;
            s.record_duplicate(&n, &dup)
        })
        .await
        .map_err(Into::into)
}

fn problem_text(p: &ClientProblem) -> String {
    let mut parts: Vec<String> = p.messages.clone();
    parts.extend(p.issues.iter().map(|i| i.to_string()));
    parts.join("; ")
}

/// Why a client of the month has no invoice yet, from the month report.
fn not_issued_reason(c: &mai_billing::ClientRow, ym: YearMonth) -> String {
    use mai_billing::RowStatus;
    match c.status {
        RowStatus::Provisional => format!("{ym} is still open"),
        RowStatus::NoUsage => "no usage to bill this month".into(),
        RowStatus::MissingData => format!("missing invoice data: {}", c.missing.join("; ")),
        _ => format!(
            "no invoice prepared for {ym} yet: send the month (`maictl invoices send --month {ym}`, console: Send to KSeF)"
        ),
    }
}

/// The rows of the month's invoices (and of the other invoices this run `handled`, e.g.
/// corrections of other months), from the billing store with this run's notes.
async fn month_rows(
    billing: &Billing,
    ym: YearMonth,
    handled: &[String],
    notes: &Notes,
) -> Result<Vec<KsefInvoiceRow>, OpsError> {
    let handled = handled.to_vec();
    let pairs = billing
        .with_store(move |s| {
            let mut rows = s.ksef_status(ym)?;
            let mut others: Vec<String> = handled
                .iter()
                .filter(|n| !rows.iter().any(|r| &&r.number == n))
                .cloned()
                .collect();
            others.sort();
            others.dedup();
            let mut months: Vec<YearMonth> = Vec::new();
            for n in &others {
                if let Some(inv) = s.get(n)? {
                    if !months.contains(&inv.statement.month) {
                        months.push(inv.statement.month);
                    }
                }
            }
            for m in months {
                rows.extend(
                    s.ksef_status(m)?
                        .into_iter()
                        .filter(|r| others.contains(&r.number)),
                );
            }
            let mut out = Vec::new();
            for r in rows {
                if let Some(inv) = s.get(&r.number)? {
                    out.push((r, inv));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(pairs
        .into_iter()
        .map(|(st, inv)| {
            let mut row = invoice_row(&st, &inv);
            if let Some(e) = notes.errors.get(&st.number) {
                row.error = Some(e.clone());
            }
            if let Some(r) = notes.rejections.get(&st.number) {
                row.rejection = Some(r.clone());
            }
            row
        })
        .collect())
}

/// Adds a `not_issued` row for each client with no invoice row: why nothing was sent, or
/// what must be fixed first (with the schema's complaints and their fixes).
fn add_not_issued(
    rows: &mut Vec<KsefInvoiceRow>,
    billing: &Billing,
    not_issued: Vec<(String, String)>,
    problems: &[ClientProblem],
) {
    let name = |org: &str| {
        billing
            .config
            .client(org)
            .and_then(|c| c.name.clone())
            .unwrap_or_else(|| org.to_string())
    };
    let currency = |org: &str| {
        billing
            .config
            .client(org)
            .map(|c| c.currency.code().to_string())
            .unwrap_or_else(|| "PLN".into())
    };
    let mut extra = Vec::new();
    let list = not_issued.into_iter().chain(
        problems
            .iter()
            .filter(|p| {
                p.number
                    .as_ref()
                    .is_none_or(|n| !rows.iter().any(|r| r.number.as_ref() == Some(n)))
            })
            .map(|p| {
                (
                    p.org_id.clone(),
                    format!("cannot be prepared until fixed: {}", problem_text(p)),
                )
            }),
    );
    for (org, reason) in list {
        if rows
            .iter()
            .any(|r| r.org_id == org && r.kind == KsefInvoiceKind::Vat)
        {
            continue;
        }
        extra.push(KsefInvoiceRow {
            client_name: name(&org),
            currency: currency(&org),
            org_id: org,
            number: None,
            kind: KsefInvoiceKind::Vat,
            corrects_ksef_number: None,
            corrects_number: None,
            state: WireState::NotIssued { reason },
            ksef_number: None,
            acquisition_date: None,
            rejection: None,
            error: None,
            gross: Decimal::ZERO,
            upo_available: false,
        });
    }
    rows.extend(extra);
    rows.sort_by(|a, b| {
        (a.org_id.as_str(), a.kind.as_str(), a.number.as_deref()).cmp(&(
            b.org_id.as_str(),
            b.kind.as_str(),
            b.number.as_deref(),
        ))
    });
}

/// One stored invoice as the console and maictl show it.
fn invoice_row(st: &InvoiceStatusRow, inv: &IssuedInvoice) -> KsefInvoiceRow {
    let amounts = match &inv.correction {
        Some(c) => mai_billing::correction::difference(&c.before.amounts, &inv.statement.amounts),
        None => inv.statement.amounts.clone(),
    };
    KsefInvoiceRow {
        org_id: st.org_id.clone(),
        client_name: inv.buyer.name.clone().unwrap_or_else(|| st.org_id.clone()),
        number: Some(st.number.clone()),
        kind: match st.kind {
            InvoiceKind::Vat => KsefInvoiceKind::Vat,
            InvoiceKind::Kor => KsefInvoiceKind::Kor,
        },
        corrects_ksef_number: inv
            .correction
            .as_ref()
            .and_then(|c| c.corrected.ksef_number.clone()),
        corrects_number: st.corrects.clone(),
        state: match st.state {
            // Issued before KSeF: an invoice in law, with no KSeF number.
            BillingState::Accepted | BillingState::Legacy => WireState::Accepted,
            BillingState::Prepared => WireState::Prepared,
            BillingState::Sent => WireState::Sent,
            BillingState::Rejected => WireState::Rejected,
        },
        ksef_number: st.ksef_number.clone(),
        acquisition_date: st.acquired_at,
        rejection: st.rejection.as_ref().map(|r| {
            KsefRejection::new(
                u16::try_from(r.code).unwrap_or(u16::MAX),
                r.description.clone(),
                r.details.clone(),
            )
        }),
        error: None,
        gross: amounts.gross,
        currency: amounts.currency.code().to_string(),
        upo_available: st.has_upo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksef_numbers_are_checked_before_they_name_a_file() {
        assert!(is_ksef_number("5265877635-20250826-0100001AF629-AF"));
        for bad in [
            "5265877635-20250826-0100001af629-AF",
            "5265877635-20250826-0100001AF629",
            "../../etc/passwd-20250826-0100001AF629-AF",
            "5265877635-20250826-0100001AF629-AF/x",
            "",
        ] {
            assert!(!is_ksef_number(bad), "{bad}");
        }
        assert_eq!(
            upo_path(
                Path::new("/inv/2026-11"),
                "5265877635-20250826-0100001AF629-AF"
            )
            .unwrap(),
            PathBuf::from("/inv/2026-11/UPO_5265877635-20250826-0100001AF629-AF.xml")
        );
        let e = upo_path(Path::new("/inv"), "../x").unwrap_err().to_string();
        assert!(
            e.contains("not a KSeF number") && e.contains("NIP-YYYYMMDD"),
            "{e}"
        );
    }
}
