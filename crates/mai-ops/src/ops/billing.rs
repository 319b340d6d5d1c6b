//! Billing through mai-billing over the console cache: the month report, the invoice
//! export and the NBP invoice rate, the same calls for the console's Billing view and
//! `maictl`. Both find billing's files through the fleet file ([`resolve_billing_files`]);
//! regrouping mai-billing's flat export summary per client is [`group_export`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Ops, OpsError};
use crate::fleet::BillingSettings;

/// Billing files a caller names instead of the fleet file's (maictl's `--billing-config`,
/// `--ledger`, `--billing-store`, `--nbp-base-url`, `--nbp-cache`), so a script can bill
/// from a copy of the cache or a test store without editing the fleet file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingOverrides {
    pub config: Option<PathBuf>,
    pub ledger: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub nbp_base_url: Option<String>,
    pub nbp_cache: Option<PathBuf>,
}

/// The files one billing run reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillingFiles {
    /// Seller and numbering (`billing.toml`).
    pub config: PathBuf,
    /// Usage: the console's cache ledger.
    pub ledger: PathBuf,
    /// Issued invoices and their numbers.
    pub store: PathBuf,
}

/// Where billing's files are: each override wins, else the fleet file's `[billing]`
/// section, else the console data dir (the cache is the ledger billing reads). Only the
/// billing config has no default: without it there is no seller to invoice as.
pub fn resolve_billing_files(
    fleet_path: &Path,
    data_dir: &Path,
    section: Option<&BillingSettings>,
    overrides: &BillingOverrides,
) -> Result<BillingFiles, OpsError> {
    let config = overrides
        .config
        .clone()
        .or_else(|| section.map(|b| b.config.clone()))
        .ok_or_else(|| OpsError::NoBilling(fleet_path.to_path_buf()))?;
    let store = overrides
        .store
        .clone()
        .or_else(|| section.map(|b| b.store.clone()))
        .unwrap_or_else(|| data_dir.join("billing-store.sqlite"));
    let ledger = overrides
        .ledger
        .clone()
        .unwrap_or_else(|| data_dir.join("console-cache.sqlite"));
    Ok(BillingFiles {
        config,
        ledger,
        store,
    })
}

impl Ops {
    /// mai-billing's month report over the console cache (the ledger billing reads).
    pub async fn billing_report(
        &self,
        month: &str,
    ) -> Result<mai_billing::report::MonthReport, OpsError> {
        self.billing_report_for(month, None).await
    }

    /// The month report of one client (`Some(org id)`) or of all.
    pub async fn billing_report_for(
        &self,
        month: &str,
        client: Option<&str>,
    ) -> Result<mai_billing::report::MonthReport, OpsError> {
        let ym: mai_core::time::YearMonth = month
            .parse()
            .map_err(|_| OpsError::BadMonth(month.to_string()))?;
        Ok(self
            .billing_service()?
            .report(ym, client.map(str::to_string))
            .await?)
    }

    /// The files billing would use now (fleet file, then overrides).
    pub fn billing_files(&self) -> Result<BillingFiles, OpsError> {
        resolve_billing_files(
            &self.fleet.path,
            &self.fleet.console.data_dir,
            self.fleet.billing.as_ref(),
            &self.billing_overrides,
        )
    }

    /// The NBP client of billing: the fleet's NBP base URL and the console's rate cache,
    /// unless overridden. Its own client, with a longer timeout than the display rate's.
    fn billing_nbp(&self) -> Result<mai_core::nbp::NbpClient, OpsError> {
        let o = &self.billing_overrides;
        mai_core::nbp::NbpClient::new(mai_core::nbp::NbpConfig {
            base_url: o
                .nbp_base_url
                .clone()
                .or_else(|| self.fleet.nbp_base_url.clone()),
            cache_path: Some(
                o.nbp_cache
                    .clone()
                    .unwrap_or_else(|| self.fleet.console.data_dir.join("nbp-cache.sqlite")),
            ),
            timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .map_err(|e| OpsError::Billing(mai_billing::BillingError::Rate(e)))
    }

    /// The exchange rate an invoice must use (NBP table A mid of the last working day
    /// before the tax point, or before the issue date when that is earlier: art. 31a).
    pub async fn invoice_rate(
        &self,
        currency: &str,
        tax_point: NaiveDate,
        issue_date: Option<NaiveDate>,
    ) -> Result<mai_core::nbp::InvoiceRate, OpsError> {
        let reference =
            mai_core::nbp::invoice_reference_date(tax_point, issue_date.unwrap_or(tax_point));
        self.billing_nbp()?
            .invoice_rate(currency, reference)
            .await
            .map_err(|e| OpsError::Billing(mai_billing::BillingError::Rate(e)))
    }

    pub(crate) fn billing_service(&self) -> Result<mai_billing::service::Billing, OpsError> {
        let files = self.billing_files()?;
        // The billing file has the seller; the clients' invoice data and markup come
        // from the fleet file, their one owner.
        let cfg = mai_billing::config::BillingConfig::load(&files.config)?
            .with_clients(
                self.fleet
                    .clients
                    .iter()
                    .map(|c| c.invoice.clone())
                    .collect(),
            )
            .map_err(|detail| mai_billing::BillingError::Config {
                path: self.fleet.path.clone(),
                detail,
            })?;
        let billing =
            mai_billing::service::Billing::new(cfg, self.billing_nbp()?, files.ledger, files.store)
                .with_today(self.today());
        // The PDF's QR code points at the KSeF the invoices went to.
        Ok(match self.ksef_endpoint() {
            Ok(e) => billing.with_ksef_environment(super::ksef::pdf_environment(e.environment)),
            Err(_) => billing,
        })
    }

    /// Exports a month's invoices (CSV, PDF or KSeF XML) to a folder, `progress` called as
    /// mai-billing works; the result is regrouped per client for the console.
    pub async fn billing_export(
        &self,
        req: &InvoiceExportRequest,
        progress: &mut (dyn FnMut(mai_billing::ExportProgress) + Send),
    ) -> Result<InvoiceExportResult, OpsError> {
        let ym: mai_core::time::YearMonth = req
            .month
            .parse()
            .map_err(|_| OpsError::BadMonth(req.month.clone()))?;
        let billing = self.billing_service()?;
        let out_dir = match &req.out_dir {
            Some(d) => d.clone(),
            None => default_invoice_dir(std::env::var_os("HOME").map(Into::into), ym),
        };
        let export = mai_billing::ExportRequest {
            month: ym,
            format: req.format,
            client: req.client.clone().filter(|c| !c.is_empty()),
            out_dir: out_dir.clone(),
            dialect: req.dialect,
            issue_date: req.issue_date,
            allow_unconfirmed: req.allow_unconfirmed.unwrap_or(false),
        };
        let summary = billing.export(&export, progress).await?;
        // Which file and number belong to which client: the store knows every issued
        // invoice of the month (also those issued by an earlier export).
        let store_path = billing.store_path.clone();
        let invoices = tokio::task::spawn_blocking(move || {
            mai_billing::BillingStore::open(&store_path)?.invoices_for_month(ym)
        })
        .await
        .map_err(|e| {
            mai_billing::BillingError::InvalidData(format!("internal error: a task failed: {e}"))
        })??;
        let issued: Vec<IssuedRef> = invoices.iter().map(IssuedRef::of).collect();
        Ok(group_export(out_dir, req.format, summary, &issued))
    }
}

/// An export's request and result cross the console's IPC as they are.
pub use mai_wire::console::{ClientExport, InvoiceExportRequest, InvoiceExportResult};

/// `~/mai-invoices/YYYY-MM` (relative `mai-invoices/YYYY-MM` without a home directory).
pub fn default_invoice_dir(
    home: Option<std::path::PathBuf>,
    month: mai_core::time::YearMonth,
) -> std::path::PathBuf {
    home.unwrap_or_default()
        .join("mai-invoices")
        .join(month.to_string())
}

/// What [`group_export`] needs of an issued invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRef {
    pub org_id: String,
    pub number: String,
    /// The invoice's file name without extension (derived from the number).
    pub file_stem: String,
}

impl IssuedRef {
    pub fn of(inv: &mai_billing::IssuedInvoice) -> IssuedRef {
        IssuedRef {
            org_id: inv.statement.org_id.clone(),
            number: inv.number.clone(),
            file_stem: inv.file_stem(),
        }
    }
}

/// Regroups mai-billing's flat summary per client: invoice files are matched to the
/// month's issued invoices by file stem (the file name is derived from the number).
pub fn group_export(
    out_dir: std::path::PathBuf,
    format: mai_billing::ExportFormat,
    summary: mai_billing::ExportSummary,
    invoices: &[IssuedRef],
) -> InvoiceExportResult {
    let mut clients: Vec<ClientExport> = Vec::new();
    for inv in invoices {
        let stem = &inv.file_stem;
        let files: Vec<_> = summary
            .files
            .iter()
            .filter(|f| f.file_stem().and_then(|s| s.to_str()) == Some(stem.as_str()))
            .cloned()
            .collect();
        if files.is_empty() && !summary.issued.contains(&inv.number) {
            continue;
        }
        clients.push(ClientExport {
            org_id: inv.org_id.clone(),
            invoice_number: Some(inv.number.clone()),
            newly_issued: summary.issued.contains(&inv.number),
            files,
            skipped: None,
        });
    }
    for s in &summary.skipped {
        clients.push(ClientExport {
            org_id: s.org_id.clone(),
            invoice_number: None,
            newly_issued: false,
            files: vec![],
            skipped: Some(s.reason.clone()),
        });
    }
    clients.sort_by(|a, b| a.org_id.cmp(&b.org_id));
    InvoiceExportResult {
        out_dir,
        format,
        files: summary.files,
        clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_billing::report::Skipped;
    use mai_billing::{ExportFormat, ExportSummary};
    use std::path::PathBuf;

    fn issued(org: &str, number: &str) -> IssuedRef {
        IssuedRef {
            org_id: org.into(),
            number: number.into(),
            file_stem: number.replace('/', "_"),
        }
    }

    #[test]
    fn pdf_files_go_to_their_clients_and_skips_keep_their_reason() {
        let out = PathBuf::from("/tmp/inv");
        let summary = ExportSummary {
            files: vec![
                out.join("FV_2026_11_0001.pdf"),
                out.join("FV_2026_11_0002.pdf"),
            ],
            issued: vec!["FV/2026/11/0002".into()],
            skipped: vec![Skipped {
                org_id: "baltic".into(),
                reason: "no NIP in billing.toml".into(),
            }],
        };
        let r = group_export(
            out.clone(),
            ExportFormat::Pdf,
            summary,
            &[
                issued("zeta", "FV/2026/11/0001"),
                issued("acme", "FV/2026/11/0002"),
            ],
        );
        assert_eq!(r.files.len(), 2);
        let by: Vec<_> = r
            .clients
            .iter()
            .map(|c| {
                (
                    c.org_id.as_str(),
                    c.invoice_number.as_deref(),
                    c.newly_issued,
                    c.files.clone(),
                    c.skipped.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            by,
            [
                (
                    "acme",
                    Some("FV/2026/11/0002"),
                    true,
                    vec![out.join("FV_2026_11_0002.pdf")],
                    None
                ),
                (
                    "baltic",
                    None,
                    false,
                    vec![],
                    Some("no NIP in billing.toml")
                ),
                (
                    "zeta",
                    Some("FV/2026/11/0001"),
                    false,
                    vec![out.join("FV_2026_11_0001.pdf")],
                    None
                ),
            ]
        );
    }

    #[test]
    fn invoices_of_the_month_not_in_this_export_are_left_out() {
        // A one-client export: the store also knows another client's earlier invoice.
        let out = PathBuf::from("/tmp/inv");
        let summary = ExportSummary {
            files: vec![out.join("FV_2026_11_0002.xml")],
            issued: vec![],
            skipped: vec![],
        };
        let r = group_export(
            out,
            ExportFormat::Ksef,
            summary,
            &[
                issued("zeta", "FV/2026/11/0001"),
                issued("acme", "FV/2026/11/0002"),
            ],
        );
        assert_eq!(r.clients.len(), 1);
        assert_eq!(r.clients[0].org_id, "acme");
        assert!(!r.clients[0].newly_issued);
    }

    #[test]
    fn a_csv_export_lists_its_one_file_and_the_newly_issued_numbers() {
        let out = PathBuf::from("/tmp/inv");
        let summary = ExportSummary {
            files: vec![out.join("invoices-2026-11.csv")],
            issued: vec!["FV/2026/11/0001".into()],
            skipped: vec![],
        };
        let r = group_export(
            out.clone(),
            ExportFormat::Csv,
            summary,
            &[issued("acme", "FV/2026/11/0001")],
        );
        assert_eq!(r.files, [out.join("invoices-2026-11.csv")]);
        assert_eq!(r.clients.len(), 1);
        assert!(r.clients[0].newly_issued);
        assert!(r.clients[0].files.is_empty());
    }

    fn section(config: &str, store: &str) -> BillingSettings {
        BillingSettings {
            config: config.into(),
            store: store.into(),
        }
    }

    #[test]
    fn billing_files_come_from_the_fleet_file_and_the_console_data_dir() {
        let f = resolve_billing_files(
            Path::new("/srv/fleet.toml"),
            Path::new("/data"),
            Some(&section("/srv/billing.toml", "/data/billing-store.sqlite")),
            &BillingOverrides::default(),
        )
        .unwrap();
        assert_eq!(
            f,
            BillingFiles {
                config: "/srv/billing.toml".into(),
                ledger: "/data/console-cache.sqlite".into(),
                store: "/data/billing-store.sqlite".into(),
            }
        );
    }

    #[test]
    fn each_override_replaces_only_its_file() {
        let over = BillingOverrides {
            ledger: Some("/backup/cache.sqlite".into()),
            ..Default::default()
        };
        let f = resolve_billing_files(
            Path::new("/srv/fleet.toml"),
            Path::new("/data"),
            Some(&section("/srv/billing.toml", "/srv/store.sqlite")),
            &over,
        )
        .unwrap();
        assert_eq!(f.config, PathBuf::from("/srv/billing.toml"));
        assert_eq!(f.ledger, PathBuf::from("/backup/cache.sqlite"));
        assert_eq!(f.store, PathBuf::from("/srv/store.sqlite"));
    }

    #[test]
    fn without_a_billing_section_the_config_must_be_named_and_the_error_says_where() {
        let e = resolve_billing_files(
            Path::new("/srv/fleet.toml"),
            Path::new("/data"),
            None,
            &BillingOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/srv/fleet.toml") && e.contains("[billing]"),
            "{e}"
        );
        let f = resolve_billing_files(
            Path::new("/srv/fleet.toml"),
            Path::new("/data"),
            None,
            &BillingOverrides {
                config: Some("/tmp/billing.toml".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(f.store, PathBuf::from("/data/billing-store.sqlite"));
        assert_eq!(f.ledger, PathBuf::from("/data/console-cache.sqlite"));
    }

    #[test]
    fn the_default_folder_is_per_month_under_home() {
        let ym = "2026-11".parse().unwrap();
        assert_eq!(
            default_invoice_dir(Some("/home/anna".into()), ym),
            PathBuf::from("/home/anna/mai-invoices/2026-11")
        );
        assert_eq!(
            default_invoice_dir(None, ym),
            PathBuf::from("mai-invoices/2026-11")
        );
    }
}
