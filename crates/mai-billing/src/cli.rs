//! `maictl` subcommands of billing: clap argument structs and their run functions.
//! maictl (mai-ops) mounts them; output goes to the writer it passes (stdout).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use mai_core::nbp::{invoice_reference_date, NbpClient, NbpConfig};
use mai_core::time::YearMonth;

use crate::config::BillingConfig;
use crate::export::csv::CsvDialect;
use crate::export::format_pl;
use crate::service::{Billing, ExportFormat, ExportProgress, ExportRequest};
use crate::BillingError;

/// Where the NBP client points and caches.
#[derive(Debug, Clone, clap::Args)]
pub struct NbpArgs {
    /// NBP API base URL (default https://api.nbp.pl/api).
    #[arg(long = "nbp-base-url", env = "NBP_BASE_URL")]
    pub nbp_base_url: Option<String>,
    /// SQLite cache of NBP rates (past rates are kept forever).
    #[arg(long = "nbp-cache", env = "MAI_NBP_CACHE")]
    pub nbp_cache: Option<PathBuf>,
}

impl NbpArgs {
    pub fn client(&self) -> Result<NbpClient, BillingError> {
        NbpClient::new(NbpConfig {
            base_url: self.nbp_base_url.clone(),
            cache_path: self.nbp_cache.clone(),
            timeout: Duration::from_secs(10),
            ..NbpConfig::default()
        })
        .map_err(BillingError::Rate)
    }
}

/// Files billing works on.
#[derive(Debug, Clone, clap::Args)]
pub struct BillingFiles {
    /// Billing config (TOML: seller, numbering, clients).
    #[arg(long = "billing-config", env = "MAI_BILLING_CONFIG")]
    pub billing_config: PathBuf,
    /// The console's cache ledger (all clients' usage).
    #[arg(long, env = "MAI_LEDGER")]
    pub ledger: PathBuf,
    /// Billing store (issued invoices and their numbers).
    #[arg(long = "billing-store", env = "MAI_BILLING_STORE")]
    pub billing_store: PathBuf,
    #[command(flatten)]
    pub nbp: NbpArgs,
}

impl BillingFiles {
    pub fn billing(&self) -> Result<Billing, BillingError> {
        let cfg = BillingConfig::load(&self.billing_config)?;
        Ok(Billing::new(
            cfg,
            self.nbp.client()?,
            self.ledger.clone(),
            self.billing_store.clone(),
        ))
    }
}

/// `maictl nbp invoice-rate`
#[derive(Debug, Clone, clap::Args)]
pub struct InvoiceRateArgs {
    /// Tax point (for monthly usage: the month's last day), YYYY-MM-DD.
    #[arg(long = "tax-point")]
    pub tax_point: NaiveDate,
    /// Invoice issue date, if earlier than the tax point (art. 31a ust. 2).
    #[arg(long = "issue-date")]
    pub issue_date: Option<NaiveDate>,
    #[arg(long, default_value = "USD")]
    pub currency: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nbp: NbpArgs,
}

/// `maictl billing`
#[derive(Debug, Clone, clap::Args)]
pub struct BillingArgs {
    /// Month, YYYY-MM.
    #[arg(long)]
    pub month: YearMonth,
    /// Only this client (org id).
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub files: BillingFiles,
}

/// `maictl invoices`
#[derive(Debug, Clone, clap::Args)]
pub struct InvoicesArgs {
    #[arg(long)]
    pub month: YearMonth,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only this client (org id).
    #[arg(long)]
    pub client: Option<String>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// CSV dialect.
    #[arg(long, value_enum, default_value = "polish")]
    pub dialect: CsvDialect,
    /// Issue date of new invoices (default: today in Warsaw).
    #[arg(long = "issue-date")]
    pub issue_date: Option<NaiveDate>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub files: BillingFiles,
}

fn io(e: std::io::Error) -> BillingError {
    BillingError::Export {
        path: "<stdout>".into(),
        detail: e.to_string(),
    }
}

pub async fn run_invoice_rate(
    args: &InvoiceRateArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), BillingError> {
    let client = args.nbp.client()?;
    let reference =
        invoice_reference_date(args.tax_point, args.issue_date.unwrap_or(args.tax_point));
    let rate = client
        .invoice_rate(&args.currency, reference)
        .await
        .map_err(BillingError::Rate)?;
    if args.json {
        let v = serde_json::to_string_pretty(&rate)
            .map_err(|e| BillingError::InvalidData(e.to_string()))?;
        writeln!(out, "{v}").map_err(io)?;
    } else {
        writeln!(
            out,
            "1 {} = {} PLN  (NBP table {} of {}; the last working day before {})",
            rate.code, rate.mid, rate.table_no, rate.effective_date, rate.reference_date
        )
        .map_err(io)?;
    }
    Ok(())
}

pub async fn run_billing(
    args: &BillingArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), BillingError> {
    let billing = args.files.billing()?;
    let report = billing.report(args.month, args.client.clone()).await?;
    if args.json {
        let v = serde_json::to_string_pretty(&report)
            .map_err(|e| BillingError::InvalidData(e.to_string()))?;
        writeln!(out, "{v}").map_err(io)?;
        return Ok(());
    }
    writeln!(
        out,
        "Billing {}{}",
        report.month,
        if report.provisional {
            " (PROVISIONAL: the month is still open)"
        } else {
            ""
        }
    )
    .map_err(io)?;
    match (&report.rates, &report.rate_error) {
        (Some(r), _) => writeln!(
            out,
            "USD rate: {} PLN, NBP table {} of {}",
            r.usd.mid, r.usd.table_no, r.usd.effective_date
        )
        .map_err(io)?,
        (None, Some(e)) => writeln!(out, "No NBP rate, PLN figures missing: {e}").map_err(io)?,
        _ => {}
    }
    writeln!(
        out,
        "{:<16} {:<14} {:>9} {:>16} {:>14} {:>14} {:>14} {:>14}  invoice",
        "client", "status", "requests", "raw USD", "net", "gross", "gross PLN", "profit PLN"
    )
    .map_err(io)?;
    for r in &report.clients {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &r.statement {
            Some(s) => writeln!(
                out,
                "{:<16} {:<14} {:>9} {:>16} {:>14} {:>14} {:>14} {:>14}  {}",
                r.org_id,
                status,
                s.usage.requests,
                s.raw_cost_usd.to_string(),
                format!("{} {}", format_pl(s.amounts.net), s.amounts.currency),
                format!("{} {}", format_pl(s.amounts.gross), s.amounts.currency),
                format_pl(s.amounts.gross_pln),
                format_pl(s.profit_pln),
                r.invoice_number.clone().unwrap_or_default()
            )
            .map_err(io)?,
            None => writeln!(
                out,
                "{:<16} {:<14} {:>9} {:>16}",
                r.org_id,
                status,
                r.usage.requests,
                r.usage.cost_usd.to_string()
            )
            .map_err(io)?,
        }
        if !r.late_usage_usd.is_zero() {
            writeln!(
                out,
                "{:<16} late usage after the invoice: {} USD (goes onto the next invoice)",
                "", r.late_usage_usd
            )
            .map_err(io)?;
        }
        if !r.missing.is_empty() && !report.provisional {
            writeln!(
                out,
                "{:<16} missing for an invoice: {}",
                "",
                r.missing.join("; ")
            )
            .map_err(io)?;
        }
    }
    let t = &report.totals;
    writeln!(
        out,
        "TOTAL: {} clients, {} requests, raw {} USD, client net {} USD, gross {} PLN, profit {} PLN",
        t.clients,
        t.requests,
        t.raw_cost_usd,
        t.client_net_usd,
        format_pl(t.gross_pln),
        format_pl(t.profit_pln)
    )
    .map_err(io)?;
    Ok(())
}

pub async fn run_invoices(
    args: &InvoicesArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), BillingError> {
    let billing = args.files.billing()?;
    let req = ExportRequest {
        month: args.month,
        format: args.format,
        client: args.client.clone(),
        out_dir: args.out.clone(),
        dialect: args.dialect,
        issue_date: args.issue_date,
    };
    let mut events: Vec<ExportProgress> = Vec::new();
    let summary = billing.export(&req, &mut |p| events.push(p)).await?;
    if args.json {
        let v = serde_json::to_string_pretty(&summary)
            .map_err(|e| BillingError::InvalidData(e.to_string()))?;
        writeln!(out, "{v}").map_err(io)?;
    } else {
        for n in &summary.issued {
            writeln!(out, "issued {n}").map_err(io)?;
        }
        for f in &summary.files {
            writeln!(out, "wrote {}", f.display()).map_err(io)?;
        }
        for s in &summary.skipped {
            writeln!(out, "skipped {}: {}", s.org_id, s.reason).map_err(io)?;
        }
        if summary.files.is_empty() {
            writeln!(out, "nothing to export for {}", args.month).map_err(io)?;
        }
    }
    Ok(())
}
