//! Billing service for the console and maictl: NBP rates (async) + ledger/store (sync,
//! on blocking threads) + exports written to a folder with progress reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use mai_core::ledger::Ledger;
use mai_core::nbp::{invoice_reference_date, NbpClient, NbpError};
use mai_core::time::YearMonth;
use serde::{Deserialize, Serialize};

use crate::config::BillingConfig;
use crate::export::csv::CsvDialect;
use crate::report::{build_report, issue_month, InvoiceRates, MonthReport, RowStatus, Skipped};
use crate::store::{BillingStore, IssuedInvoice};
use crate::BillingError;

/// The export formats and progress events are the console's IPC types (defined once in
/// mai-wire): the console emits `ExportProgress` to its web view as it is.
pub use mai_wire::console::{ExportFormat, ExportProgress};

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub month: YearMonth,
    pub format: ExportFormat,
    /// One client (org id), or all.
    pub client: Option<String>,
    pub out_dir: PathBuf,
    pub dialect: CsvDialect,
    /// Defaults to today (Warsaw).
    pub issue_date: Option<NaiveDate>,
    /// Issue even if the month has events OpenRouter has not confirmed (they are listed
    /// on the invoice); otherwise issuing is refused naming them.
    pub allow_unconfirmed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub files: Vec<PathBuf>,
    /// Invoice numbers issued by this export.
    pub issued: Vec<String>,
    /// Clients not exported, with the reason (e.g. missing invoice data).
    pub skipped: Vec<Skipped>,
}

/// Everything billing needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Billing {
    pub config: Arc<BillingConfig>,
    pub nbp: NbpClient,
    pub ledger_path: PathBuf,
    pub store_path: PathBuf,
    today: Option<NaiveDate>,
}

fn join_err(e: tokio::task::JoinError) -> BillingError {
    BillingError::InvalidData(format!("internal error: a billing task failed: {e}"))
}

fn open_ledger(path: &Path) -> Result<Ledger, BillingError> {
    if !path.exists() {
        return Err(BillingError::LedgerMissing(path.to_path_buf()));
    }
    Ok(Ledger::open(path)?)
}

impl Billing {
    pub fn new(
        config: BillingConfig,
        nbp: NbpClient,
        ledger_path: PathBuf,
        store_path: PathBuf,
    ) -> Self {
        Self {
            config: Arc::new(config),
            nbp,
            ledger_path,
            store_path,
            today: None,
        }
    }

    /// Fixes "today" (Warsaw) — for tests and for re-running a past close.
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    pub fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(mai_core::time::warsaw_today)
    }

    fn needs_eur(&self) -> bool {
        self.config.default_hosting_eur.is_some()
            || self.config.clients.iter().any(|c| c.hosting_eur.is_some())
    }

    /// Table A rates for `reference` (USD, and EUR when a hosting cost is configured).
    pub async fn rates_for(&self, reference: NaiveDate) -> Result<InvoiceRates, NbpError> {
        let usd = self.nbp.invoice_rate("USD", reference).await?;
        let eur = if self.needs_eur() {
            Some(self.nbp.invoice_rate("EUR", reference).await?)
        } else {
            None
        };
        Ok(InvoiceRates { usd, eur })
    }

    /// The month across clients. NBP trouble does not fail the report: rows that are
    /// not frozen lose their PLN figures and `rate_error` says why.
    pub async fn report(
        &self,
        month: YearMonth,
        client: Option<String>,
    ) -> Result<MonthReport, BillingError> {
        let today = self.today();
        let reference = crate::report::rate_reference_for_report(month, today);
        let rates = self.rates_for(reference).await.map_err(|e| e.to_string());
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let ledger = open_ledger(&this.ledger_path)?;
            let store = BillingStore::open(&this.store_path)?;
            build_report(
                &this.config,
                &ledger,
                &store,
                month,
                today,
                rates.as_ref().map_err(|e| e.clone()),
                client.as_deref(),
            )
        })
        .await
        .map_err(join_err)?
    }

    /// Exports a month. PDF/KSeF first issue the invoices not issued yet (closed months
    /// only, NBP rate required), then render every issued invoice of the month.
    pub async fn export(
        &self,
        req: &ExportRequest,
        progress: &mut (dyn FnMut(ExportProgress) + Send),
    ) -> Result<ExportSummary, BillingError> {
        std::fs::create_dir_all(&req.out_dir).map_err(|e| BillingError::Export {
            path: req.out_dir.clone(),
            detail: format!("cannot create the folder: {e}"),
        })?;
        self.check_client(req.client.as_deref()).await?;
        match req.format {
            ExportFormat::Csv => self.export_csv(req, progress).await,
            ExportFormat::Pdf | ExportFormat::Ksef => self.export_invoices(req, progress).await,
        }
    }

    async fn check_client(&self, client: Option<&str>) -> Result<(), BillingError> {
        let Some(org) = client.map(str::to_string) else {
            return Ok(());
        };
        if self.config.client(&org).is_some() {
            return Ok(());
        }
        let path = self.ledger_path.clone();
        let cfg = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let ledger = open_ledger(&path)?;
            let orgs = ledger.orgs()?;
            if orgs.contains(&org) {
                return Ok(());
            }
            let mut known: Vec<String> = orgs;
            known.extend(cfg.clients.iter().map(|c| c.org_id.clone()));
            known.sort();
            known.dedup();
            Err(BillingError::UnknownClient {
                org_id: org,
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            })
        })
        .await
        .map_err(join_err)?
    }

    async fn export_csv(
        &self,
        req: &ExportRequest,
        progress: &mut (dyn FnMut(ExportProgress) + Send),
    ) -> Result<ExportSummary, BillingError> {
        progress(ExportProgress::Started { total: 1 });
        let report = self.report(req.month, req.client.clone()).await?;
        let body = crate::export::csv::render(&report, req.dialect);
        let suffix = match req.dialect {
            CsvDialect::Polish => "pl",
            CsvDialect::Plain => "plain",
        };
        let name = match &req.client {
            Some(c) => format!("billing-{}-{}-{suffix}.csv", req.month, safe(c)),
            None => format!("billing-{}-{suffix}.csv", req.month),
        };
        let path = req.out_dir.join(name);
        write_file(&path, body.as_bytes())?;
        progress(ExportProgress::Wrote {
            path: path.clone(),
            done: 1,
            total: 1,
        });
        let skipped = report
            .clients
            .iter()
            .filter(|r| r.status == RowStatus::MissingData)
            .map(|r| Skipped {
                org_id: r.org_id.clone(),
                reason: format!("missing invoice data: {}", r.missing.join("; ")),
            })
            .collect();
        Ok(ExportSummary {
            files: vec![path],
            issued: vec![],
            skipped,
        })
    }

    async fn export_invoices(
        &self,
        req: &ExportRequest,
        progress: &mut (dyn FnMut(ExportProgress) + Send),
    ) -> Result<ExportSummary, BillingError> {
        let today = self.today();
        let month = req.month;
        if today <= month.last_day() {
            return Err(BillingError::MonthOpen {
                month,
                last_day: month.last_day(),
                today,
            });
        }
        let issue_date = req.issue_date.unwrap_or(today);
        // Which clients still need an invoice (no NBP call needed to find out).
        let this = self.clone();
        let client = req.client.clone();
        let pending = tokio::task::spawn_blocking(move || {
            let ledger = open_ledger(&this.ledger_path)?;
            let store = BillingStore::open(&this.store_path)?;
            let r = build_report(
                &this.config,
                &ledger,
                &store,
                month,
                today,
                Err("not fetched".into()),
                client.as_deref(),
            )?;
            Ok::<_, BillingError>(
                r.clients
                    .iter()
                    .filter(|c| c.status == RowStatus::ReadyToIssue)
                    .count(),
            )
        })
        .await
        .map_err(join_err)??;

        let mut summary = ExportSummary::default();
        if pending > 0 {
            let reference = invoice_reference_date(month.last_day(), issue_date);
            // NBP down or no rate: nothing is issued, the error names date and table.
            let rates = self.rates_for(reference).await?;
            let this = self.clone();
            let client = req.client.clone();
            let allow_unconfirmed = req.allow_unconfirmed;
            let outcome = tokio::task::spawn_blocking(move || {
                let ledger = open_ledger(&this.ledger_path)?;
                let mut store = BillingStore::open(&this.store_path)?;
                issue_month(
                    &this.config,
                    &ledger,
                    &mut store,
                    month,
                    issue_date,
                    today,
                    &rates,
                    client.as_deref(),
                    allow_unconfirmed,
                )
            })
            .await
            .map_err(join_err)??;
            for inv in &outcome.issued {
                progress(ExportProgress::Issued {
                    number: inv.number.clone(),
                    org_id: inv.statement.org_id.clone(),
                });
                summary.issued.push(inv.number.clone());
            }
            for s in &outcome.skipped {
                progress(ExportProgress::Skipped {
                    org_id: s.org_id.clone(),
                    reason: s.reason.clone(),
                });
            }
            summary.skipped = outcome.skipped;
        } else {
            // Still report clients that cannot be invoiced.
            let report_rows = {
                let this = self.clone();
                let client = req.client.clone();
                tokio::task::spawn_blocking(move || {
                    let ledger = open_ledger(&this.ledger_path)?;
                    let store = BillingStore::open(&this.store_path)?;
                    build_report(
                        &this.config,
                        &ledger,
                        &store,
                        month,
                        today,
                        Err("not fetched".into()),
                        client.as_deref(),
                    )
                })
                .await
                .map_err(join_err)??
            };
            for r in report_rows
                .clients
                .iter()
                .filter(|r| r.status == RowStatus::MissingData)
            {
                let s = Skipped {
                    org_id: r.org_id.clone(),
                    reason: format!("missing invoice data: {}", r.missing.join("; ")),
                };
                progress(ExportProgress::Skipped {
                    org_id: s.org_id.clone(),
                    reason: s.reason.clone(),
                });
                summary.skipped.push(s);
            }
        }

        let store_path = self.store_path.clone();
        let client = req.client.clone();
        let invoices: Vec<IssuedInvoice> = tokio::task::spawn_blocking(move || {
            let store = BillingStore::open(&store_path)?;
            Ok::<_, BillingError>(
                store
                    .invoices_for_month(month)?
                    .into_iter()
                    .filter(|i| client.as_deref().is_none_or(|c| c == i.statement.org_id))
                    .collect(),
            )
        })
        .await
        .map_err(join_err)??;

        let total = invoices.len();
        progress(ExportProgress::Started { total });
        let font = match req.format {
            ExportFormat::Pdf if total > 0 => Some(Arc::new(crate::export::pdf::load_font(
                &self.config.pdf_font_path(),
            )?)),
            _ => None,
        };
        for (i, inv) in invoices.into_iter().enumerate() {
            let format = req.format;
            let font = font.clone();
            let dir = req.out_dir.clone();
            let path = tokio::task::spawn_blocking(move || {
                let (ext, bytes) = match format {
                    ExportFormat::Pdf => (
                        "pdf",
                        crate::export::pdf::render(
                            &inv,
                            font.as_deref().map(Vec::as_slice).unwrap_or_default(),
                            // Hook for the KSeF path: the receipt of the accepted XML.
                            None,
                        )?,
                    ),
                    _ => ("xml", crate::export::ksef::render(&inv)?.into_bytes()),
                };
                let path = dir.join(format!("{}.{ext}", inv.file_stem()));
                write_file(&path, &bytes)?;
                Ok::<_, BillingError>(path)
            })
            .await
            .map_err(join_err)??;
            progress(ExportProgress::Wrote {
                path: path.clone(),
                done: i + 1,
                total,
            });
            summary.files.push(path);
        }
        Ok(summary)
    }
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes via a temporary file and rename, so a crash never leaves half a document.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BillingError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| BillingError::Export {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}
