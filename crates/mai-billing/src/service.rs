//! Billing service for the console and maictl: NBP rates (async) + ledger/store (sync,
//! on blocking threads) + exports written to a folder with progress reports, and the
//! preparation of invoices for KSeF ([`Billing::prepare_for_ksef`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use mai_core::ledger::Ledger;
use mai_core::nbp::{invoice_reference_date, NbpClient, NbpError};
use mai_core::time::YearMonth;
use serde::{Deserialize, Serialize};

use crate::config::BillingConfig;
use crate::export::csv::CsvDialect;
use crate::report::{
    build_report, prepare_month, InvoiceRates, MonthReport, PrepareOutcome, RowStatus, Skipped,
};
use crate::store::{BillingStore, InvoiceKind, InvoiceStatusRow, IssuedInvoice, KsefState};
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

/// What to prepare for KSeF ([`Billing::prepare_for_ksef`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareRequest {
    pub month: YearMonth,
    /// One client (org id), or all.
    pub client: Option<String>,
    /// The issue date (`P_1`) of invoices numbered now; defaults to today (Warsaw).
    pub issue_date: Option<NaiveDate>,
    /// Prepare even if the month has events OpenRouter has not confirmed (they are
    /// listed on the invoice); otherwise refused naming them.
    pub allow_unconfirmed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub files: Vec<PathBuf>,
    /// Always empty since KSeF: an export issues nothing (an invoice is issued when KSeF
    /// accepts it); kept for the callers that read it.
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
    /// The KSeF accepted invoices were sent to: the PDF's QR code points at its
    /// verification host. `None` (no `[ksef]`): the test environment's.
    ksef_environment: Option<crate::export::pdf::KsefEnvironment>,
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
            ksef_environment: None,
        }
    }

    /// Which KSeF the invoices go to (the fleet's `[ksef]`): the host of the QR code on PDFs.
    pub fn with_ksef_environment(mut self, env: crate::export::pdf::KsefEnvironment) -> Self {
        self.ksef_environment = Some(env);
        self
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

    /// Exports a month: CSV of the report (open months too), or one PDF / FA(3) XML file
    /// per issued invoice of the month (KSeF accepted it, or it is from before KSeF). An
    /// invoice KSeF has not accepted is not an invoice: it is skipped with the reason.
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

    /// Prepares what `req.month` needs from KSeF (see [`prepare_month`]): numbers are
    /// reserved only for invoices that passed every check, the XML is stored, and `ready`
    /// holds the exact bytes to send. The KSeF client then reports back through the store
    /// ([`BillingStore::record_sent`] and the other `record_*`; [`Billing::with_store`]).
    /// NBP is asked only when a VAT invoice is rendered.
    pub async fn prepare_for_ksef(
        &self,
        req: &PrepareRequest,
    ) -> Result<PrepareOutcome, BillingError> {
        let today = self.today();
        let month = req.month;
        if today <= month.last_day() {
            return Err(BillingError::MonthOpen {
                month,
                last_day: month.last_day(),
                today,
            });
        }
        self.check_client(req.client.as_deref()).await?;
        let issue_date = req.issue_date.unwrap_or(today);
        // Does any VAT invoice have to be rendered (no NBP call needed to find out)?
        let this = self.clone();
        let client = req.client.clone();
        let to_render = tokio::task::spawn_blocking(move || {
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
            Ok::<_, BillingError>(r.clients.iter().any(|c| {
                (c.ksef_state.is_none() && c.status == RowStatus::ReadyToIssue)
                    || c.ksef_state == Some(KsefState::Rejected)
            }))
        })
        .await
        .map_err(join_err)??;
        let rates = if to_render {
            // NBP down or no rate: nothing is numbered; the error names date and table.
            Some(
                self.rates_for(invoice_reference_date(month.last_day(), issue_date))
                    .await?,
            )
        } else {
            None
        };
        let this = self.clone();
        let client = req.client.clone();
        let allow_unconfirmed = req.allow_unconfirmed;
        tokio::task::spawn_blocking(move || {
            let ledger = open_ledger(&this.ledger_path)?;
            let mut store = BillingStore::open(&this.store_path)?;
            prepare_month(
                &this.config,
                &ledger,
                &mut store,
                month,
                issue_date,
                today,
                rates.as_ref(),
                client.as_deref(),
                allow_unconfirmed,
            )
        })
        .await
        .map_err(join_err)?
    }

    /// Runs `f` on the billing store on a blocking thread: how the KSeF side records what
    /// KSeF answered (`record_sent`, `record_accepted`, `record_duplicate`,
    /// `record_rejected`, `record_upo`) and reads `history`, `xml`, `awaiting_ksef`.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut BillingStore) -> Result<T, BillingError> + Send + 'static,
    ) -> Result<T, BillingError> {
        let path = self.store_path.clone();
        tokio::task::spawn_blocking(move || f(&mut BillingStore::open(&path)?))
            .await
            .map_err(join_err)?
    }

    /// The KSeF status of the month's invoices and corrections.
    pub async fn ksef_status(
        &self,
        month: YearMonth,
    ) -> Result<Vec<InvoiceStatusRow>, BillingError> {
        self.with_store(move |s| s.ksef_status(month)).await
    }

    /// KSeF's receipt (UPO XML) of an accepted invoice.
    pub async fn upo(&self, number: &str) -> Result<Option<String>, BillingError> {
        let number = number.to_string();
        self.with_store(move |s| s.upo(&number)).await
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
        let this = self.clone();
        let client = req.client.clone();
        let (rows, invoices) = tokio::task::spawn_blocking(move || {
            let ledger = open_ledger(&this.ledger_path)?;
            let store = BillingStore::open(&this.store_path)?;
            let report = build_report(
                &this.config,
                &ledger,
                &store,
                month,
                today,
                Err("not fetched".into()),
                client.as_deref(),
            )?;
            let invoices: Vec<IssuedInvoice> = store
                .invoices_for_month(month)?
                .into_iter()
                .filter(|i| client.as_deref().is_none_or(|c| c == i.statement.org_id))
                .collect();
            Ok::<_, BillingError>((report.clients, invoices))
        })
        .await
        .map_err(join_err)??;

        let mut summary = ExportSummary::default();
        let mut skip = |summary: &mut ExportSummary, org_id: &str, reason: String| {
            progress(ExportProgress::Skipped {
                org_id: org_id.to_string(),
                reason: reason.clone(),
            });
            summary.skipped.push(Skipped {
                org_id: org_id.to_string(),
                reason,
            });
        };
        for r in &rows {
            let reason = match r.status {
                RowStatus::MissingData => format!("missing invoice data: {}", r.missing.join("; ")),
                RowStatus::ReadyToIssue if r.invoice_number.is_none() => format!(
                    "no invoice for {month} yet: prepare it for KSeF and send it; an invoice exists once KSeF accepts it"
                ),
                _ => continue,
            };
            skip(&mut summary, &r.org_id, reason);
        }
        let mut to_write = Vec::new();
        for inv in invoices {
            let state = inv.state().unwrap_or(KsefState::Prepared);
            if !state.is_issued() {
                let reason = format!(
                    "{} {} is {state} in KSeF, not issued yet: send it to KSeF first{}; exports cover invoices KSeF accepted",
                    if inv.kind == InvoiceKind::Kor { "correction" } else { "invoice" },
                    inv.number,
                    if state == KsefState::Rejected { " (it was rejected: fix the data and prepare it again)" } else { "" }
                );
                skip(&mut summary, &inv.statement.org_id, reason);
                continue;
            }
            to_write.push(inv);
        }

        let total = to_write.len();
        progress(ExportProgress::Started { total });
        let font = match req.format {
            ExportFormat::Pdf if total > 0 => Some(Arc::new(crate::export::pdf::load_font(
                &self.config.pdf_font_path(),
            )?)),
            _ => None,
        };
        let environment = self
            .ksef_environment
            .unwrap_or(crate::export::pdf::KsefEnvironment::Test);
        for (i, inv) in to_write.into_iter().enumerate() {
            let format = req.format;
            let font = font.clone();
            let dir = req.out_dir.clone();
            let store_path = self.store_path.clone();
            let path = tokio::task::spawn_blocking(move || {
                let (ext, bytes) = match format {
                    ExportFormat::Pdf => {
                        // An accepted invoice or correction prints its KSeF number and the
                        // QR code over the exact bytes KSeF holds; a legacy one (never
                        // sent) neither.
                        let sent = BillingStore::open(&store_path)?.xml(&inv.number)?;
                        let receipt = match (
                            inv.ksef.as_ref().and_then(|k| k.ksef_number.as_ref()),
                            &sent,
                        ) {
                            (Some(n), Some(xml)) => {
                                Some(crate::export::pdf::KsefReceiptForPdf::for_xml(
                                    n.clone(),
                                    xml,
                                    environment,
                                ))
                            }
                            _ => None,
                        };
                        (
                            "pdf",
                            crate::export::pdf::render(
                                &inv,
                                font.as_deref().map(Vec::as_slice).unwrap_or_default(),
                                receipt.as_ref(),
                            )?,
                        )
                    }
                    // What KSeF holds is what was sent: the stored bytes, never a new
                    // rendering (its SHA-256 is in the QR code). Legacy invoices were never
                    // sent and are rendered as before.
                    _ => (
                        "xml",
                        match BillingStore::open(&store_path)?.xml(&inv.number)? {
                            Some(sent) => sent,
                            None => crate::export::ksef::render(&inv)?.into_bytes(),
                        },
                    ),
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
