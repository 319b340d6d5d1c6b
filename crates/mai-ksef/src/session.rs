//! The online (interactive) session (`docs/sesja-interaktywna.md`) and the reads of
//! `docs/sesja-sprawdzenie-stanu-i-pobranie-upo.md`: open with a fresh AES key wrapped
//! for the Ministry, send encrypted invoices, read their statuses and receipts, close.

use crate::auth::KeyUsage;
use crate::client::{path_segment, Inner};
use crate::crypto::{b64, rsa_oaep_sha256, sha256_b64, SessionKey};
use crate::error::KsefError;
use crate::http::{Accept, Call, Retry};
use crate::limits::Group;
use crate::wire;
use chrono::{DateTime, Utc};
use reqwest::Method;

/// An open online session: its reference number, expiry, and the AES key its invoices
/// are encrypted with.
#[derive(Debug)]
pub(crate) struct OnlineSession {
    pub reference: String,
    pub valid_until: DateTime<Utc>,
    key: SessionKey,
}

impl Inner {
    /// `POST /sessions/online` for FA(3). A second opening after a lost answer leaves an
    /// empty session behind, which KSeF cancels by itself ("Nie przesłano faktur"), so
    /// this one may be repeated.
    pub(crate) async fn open_session(&self) -> Result<OnlineSession, KsefError> {
        const STEP: &str = "POST /sessions/online";
        let mut force_keys = false;
        loop {
            let ministry = self
                .ministry_key(KeyUsage::SymmetricKeyEncryption, force_keys)
                .await?;
            let key = SessionKey::generate();
            let wrapped = rsa_oaep_sha256(&ministry.key.key, key.key()).map_err(|detail| {
                KsefError::Crypto {
                    step: STEP.into(),
                    detail: format!("cannot encrypt the session key: {detail}"),
                }
            })?;
            let body = wire::OpenOnlineSessionRequest {
                form_code: wire::FORM_CODE,
                encryption: wire::EncryptionInfo {
                    encrypted_symmetric_key: b64(&wrapped),
                    initialization_vector: b64(key.iv()),
                    public_key_id: ministry.public_key_id.as_deref(),
                },
            };
            let r = self
                .authorized(|| {
                    Call::new(
                        Method::POST,
                        STEP,
                        "/sessions/online".into(),
                        Group::OnlineSession,
                    )
                    .retry(Retry::Idempotent)
                    .json(&body)
                })
                .await;
            match r {
                Ok(reply) => {
                    let s: wire::OpenOnlineSessionResponse = reply.json(STEP)?;
                    path_segment(STEP, &s.reference_number)?;
                    tracing::info!(session = %s.reference_number, valid_until = %s.valid_until, "KSeF online session opened");
                    return Ok(OnlineSession {
                        reference: s.reference_number,
                        valid_until: s.valid_until,
                        key,
                    });
                }
                Err(e) if !force_keys && e.has_code(21470) => force_keys = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// `POST /sessions/online/{ref}/invoices`: the invoice's reference number.
    pub(crate) async fn send_invoice(
        &self,
        session: &OnlineSession,
        xml: &[u8],
        invoice_hash: &str,
    ) -> Result<String, KsefError> {
        const STEP: &str = "POST /sessions/online/{referenceNumber}/invoices";
        let encrypted = session.key.encrypt(xml);
        let body = wire::SendInvoiceRequest {
            invoice_hash: invoice_hash.to_owned(),
            invoice_size: xml.len() as u64,
            encrypted_invoice_hash: sha256_b64(&encrypted),
            encrypted_invoice_size: encrypted.len() as u64,
            encrypted_invoice_content: b64(&encrypted),
            offline_mode: false,
        };
        let path = format!("/sessions/online/{}/invoices", session.reference);
        let reply = self
            .authorized(|| {
                Call::new(Method::POST, STEP, path.clone(), Group::InvoiceSend).json(&body)
            })
            .await?;
        let r: wire::SendInvoiceResponse = reply.json(STEP)?;
        path_segment(STEP, &r.reference_number)?;
        Ok(r.reference_number)
    }

    /// `POST /sessions/online/{ref}/close` (204). Closing starts the session's collective
    /// UPO; a session already closed or expired answers 21180, which is fine here.
    pub(crate) async fn close_session(&self, reference: &str) -> Result<(), KsefError> {
        const STEP: &str = "POST /sessions/online/{referenceNumber}/close";
        let path = format!("/sessions/online/{}/close", path_segment(STEP, reference)?);
        match self
            .authorized(|| {
                Ok(
                    Call::new(Method::POST, STEP, path.clone(), Group::OnlineSession)
                        .retry(Retry::Idempotent),
                )
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.has_code(21180) => {
                tracing::debug!(session = reference, "KSeF session already closed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /sessions/{ref}/invoices/{invoiceRef}`.
    pub(crate) async fn invoice_status_raw(
        &self,
        session: &str,
        invoice: &str,
    ) -> Result<wire::SessionInvoiceStatus, KsefError> {
        const STEP: &str = "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}";
        let path = format!(
            "/sessions/{}/invoices/{}",
            path_segment(STEP, session)?,
            path_segment(STEP, invoice)?
        );
        self.authorized(|| {
            Ok(Call::new(
                Method::GET,
                STEP,
                path.clone(),
                Group::InvoiceStatus,
            ))
        })
        .await?
        .json(STEP)
    }

    /// `GET /sessions/{ref}/invoices/{invoiceRef}/upo`: the receipt XML, checked against
    /// the `x-ms-meta-hash` header when KSeF sends one.
    pub(crate) async fn upo_raw(&self, session: &str, invoice: &str) -> Result<String, KsefError> {
        const STEP: &str = "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo";
        let path = format!(
            "/sessions/{}/invoices/{}/upo",
            path_segment(STEP, session)?,
            path_segment(STEP, invoice)?
        );
        let reply = self
            .authorized(|| {
                Ok(
                    Call::new(Method::GET, STEP, path.clone(), Group::SessionMisc)
                        .accept(Accept::Xml),
                )
            })
            .await?;
        if let Some(expected) = reply
            .headers
            .get("x-ms-meta-hash")
            .and_then(|v| v.to_str().ok())
        {
            let got = sha256_b64(&reply.body);
            if got != expected.trim() {
                return Err(KsefError::protocol(
                    STEP,
                    format!("the UPO's SHA-256 is {got}, its x-ms-meta-hash header says {expected}: the download is damaged, fetch it again"),
                ));
            }
        }
        String::from_utf8(reply.body.to_vec())
            .map_err(|e| KsefError::protocol(STEP, format!("the UPO is not UTF-8 ({e})")))
    }
}
