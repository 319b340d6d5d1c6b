//! KSeF: the seller's token in the keychain (audited), where invoices are sent (the
//! fleet file's `[ksef]`, `KSEF_BASE_URL`), and the month's invoices in KSeF: their state,
//! sending them, their receipts (UPO). The same calls serve the console's Billing view
//! and `maictl invoices send|status`, `maictl ksef token`.
//!
//! [`Ops::ksef_status`], [`Ops::ksef_send`] and [`Ops::ksef_upo`] have their final
//! signatures and check their inputs, but the KSeF client and the invoice lifecycle they
//! need are not part of this build yet: past the checks they return
//! [`OpsError::NotWired`]. [`Ops::ksef_connection`] gathers what the client needs.

use std::path::{Path, PathBuf};

use chrono::Utc;
use mai_wire::ksef::{KsefInvoiceRow, KsefSendProgress, KsefSendSummary, KsefTokenStatus};

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

    /// The month's invoices in KSeF, one row per client (a client with nothing to send
    /// is a `not_issued` row), corrections included.
    pub async fn ksef_status(&self, month: &str) -> Result<Vec<KsefInvoiceRow>, OpsError> {
        self.ksef_month(month)?;
        Err(OpsError::NotWired("the invoices' KSeF status"))
    }

    /// Sends the month's invoices that KSeF has not accepted yet (one client's, or all),
    /// waits for KSeF's verdicts and fetches the receipts; `progress` is called as it
    /// goes. The summary lists every invoice handled; a failure of one does not stop the
    /// others.
    pub async fn ksef_send(
        &self,
        month: &str,
        client: Option<&str>,
        progress: &mut (dyn FnMut(KsefSendProgress) + Send),
    ) -> Result<KsefSendSummary, OpsError> {
        self.ksef_month(month)?;
        if let Some(c) = client.filter(|c| !c.is_empty()) {
            self.client(c)?;
        }
        let _ = progress;
        Err(OpsError::NotWired("sending invoices to KSeF"))
    }

    /// Saves KSeF's receipt (UPO) of the invoice `ksef_number` of `month` to `out_dir`
    /// (default: the month's invoice folder, `~/mai-invoices/YYYY-MM`) and returns the
    /// file's path.
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
        let _path = upo_path(&dir, ksef_number)?;
        Err(OpsError::NotWired("downloading KSeF receipts (UPO)"))
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
