//! maictl's finance commands: `nbp invoice-rate`, `billing`, `invoices` (its KSeF
//! subcommands `send` and `status` are in `ksef.rs`). They call the same `Ops` methods
//! as the console's Billing view and find billing.toml, the console cache (the usage
//! ledger) and the billing store through the fleet file; the flags here only override
//! those paths.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use mai_billing::export::csv::CsvDialect;
use mai_billing::export::format_pl;
use mai_billing::report::MonthReport;
use mai_billing::ExportFormat;
use mai_core::time::YearMonth;
use mai_ops::ops::{BillingOverrides, InvoiceExportRequest, InvoiceExportResult};
use mai_ops::{Ops, OpsError};

/// Where NBP rates come from, when not the fleet file's `[nbp] base_url` and the console
/// data dir's rate cache.
#[derive(Debug, Clone, clap::Args)]
pub struct NbpArgs {
    /// NBP API base URL, instead of the fleet file's `[nbp] base_url`.
    #[arg(long = "nbp-base-url")]
    pub nbp_base_url: Option<String>,
    /// SQLite cache of NBP rates, instead of <console data_dir>/nbp-cache.sqlite.
    #[arg(long = "nbp-cache", env = "MAI_NBP_CACHE")]
    pub nbp_cache: Option<PathBuf>,
}

impl NbpArgs {
    pub fn overrides(&self) -> BillingOverrides {
        BillingOverrides {
            nbp_base_url: self.nbp_base_url.clone(),
            nbp_cache: self.nbp_cache.clone(),
            ..Default::default()
        }
    }
}

/// Billing's files, each by default where the fleet file says.
#[derive(Debug, Clone, clap::Args)]
pub struct BillingFileArgs {
    /// Billing config (seller, numbering), instead of the fleet file's `[billing] config`.
    #[arg(long = "billing-config", env = "MAI_BILLING_CONFIG")]
    pub billing_config: Option<PathBuf>,
    /// Usage ledger, instead of the console cache (<console data_dir>/console-cache.sqlite).
    #[arg(long, env = "MAI_LEDGER")]
    pub ledger: Option<PathBuf>,
    /// Billing store (issued invoices and numbers), instead of the fleet file's
    /// `[billing] store`.
    #[arg(long = "billing-store", env = "MAI_BILLING_STORE")]
    pub billing_store: Option<PathBuf>,
    #[command(flatten)]
    pub nbp: NbpArgs,
}

impl BillingFileArgs {
    pub fn overrides(&self) -> BillingOverrides {
        BillingOverrides {
            config: self.billing_config.clone(),
            ledger: self.ledger.clone(),
            store: self.billing_store.clone(),
            ..self.nbp.overrides()
        }
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
    pub files: BillingFileArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    Pdf,
    Ksef,
}

impl From<FormatArg> for ExportFormat {
    fn from(f: FormatArg) -> ExportFormat {
        match f {
            FormatArg::Csv => ExportFormat::Csv,
            FormatArg::Pdf => ExportFormat::Pdf,
            FormatArg::Ksef => ExportFormat::Ksef,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DialectArg {
    /// `;` and decimal comma (Polish spreadsheets).
    Polish,
    /// `,` and decimal dot.
    Plain,
}

impl From<DialectArg> for CsvDialect {
    fn from(d: DialectArg) -> CsvDialect {
        match d {
            DialectArg::Polish => CsvDialect::Polish,
            DialectArg::Plain => CsvDialect::Plain,
        }
    }
}

/// `maictl invoices`: without a subcommand, the export (`--month` and `--format`
/// required); `send` and `status` are the month's invoices in KSeF.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InvoicesArgs {
    #[command(subcommand)]
    pub cmd: Option<crate::ksef::InvoicesCmd>,
    #[arg(long, required = true)]
    pub month: Option<YearMonth>,
    #[arg(long, value_enum, required = true)]
    pub format: Option<FormatArg>,
    /// Only this client (org id).
    #[arg(long)]
    pub client: Option<String>,
    /// Output folder (created if missing). Default: ~/mai-invoices/YYYY-MM, as in the console.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CSV dialect.
    #[arg(long, value_enum, default_value = "polish")]
    pub dialect: DialectArg,
    /// Issue date of new invoices (default: today in Warsaw).
    #[arg(long = "issue-date")]
    pub issue_date: Option<NaiveDate>,
    /// Issue even though the month has usage OpenRouter has not confirmed (provisional
    /// events, possibly at $0); the invoice lists them. Without it such an export is
    /// refused with the list: run `maictl sync` first.
    #[arg(long = "allow-unconfirmed")]
    pub allow_unconfirmed: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub files: BillingFileArgs,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("plain data serializes")
}

pub async fn invoice_rate(ops: &Ops, a: &InvoiceRateArgs) -> Result<u8, OpsError> {
    let rate = ops
        .invoice_rate(&a.currency, a.tax_point, a.issue_date)
        .await?;
    if a.json {
        println!("{}", json(&rate));
    } else {
        println!(
            "1 {} = {} PLN  (NBP table {} of {}; the last working day before {})",
            rate.code, rate.mid, rate.table_no, rate.effective_date, rate.reference_date
        );
    }
    Ok(0)
}

pub async fn billing(ops: &Ops, a: &BillingArgs) -> Result<u8, OpsError> {
    let report = ops
        .billing_report_for(&a.month.to_string(), a.client.as_deref())
        .await?;
    if a.json {
        println!("{}", json(&report));
    } else {
        print!("{}", render_report(&report));
    }
    Ok(0)
}

pub async fn invoices(ops: &Ops, a: &InvoicesArgs) -> Result<u8, OpsError> {
    match &a.cmd {
        Some(crate::ksef::InvoicesCmd::Send(s)) => return crate::ksef::send(ops, s).await,
        Some(crate::ksef::InvoicesCmd::Status(s)) => return crate::ksef::status(ops, s).await,
        None => {}
    }
    let (Some(month), Some(format)) = (a.month, a.format) else {
        unreachable!("clap requires --month and --format without a subcommand")
    };
    let req = InvoiceExportRequest {
        month: month.to_string(),
        format: format.into(),
        client: a.client.clone(),
        out_dir: a.out.clone(),
        dialect: a.dialect.into(),
        issue_date: a.issue_date,
        allow_unconfirmed: Some(a.allow_unconfirmed),
    };
    let result = ops.billing_export(&req, &mut |_| {}).await?;
    if a.json {
        println!("{}", json(&result));
    } else {
        print!("{}", render_export(&result, month));
    }
    Ok(0)
}

/// A margin for the terminal: `18.85%`, or `-` without a net to divide by.
fn margin(m: Option<rust_decimal::Decimal>) -> String {
    m.map(|m| format!("{m}%")).unwrap_or_else(|| "-".into())
}

/// The month report as a table for a terminal. Profit is shown before and after
/// OpenRouter's fees, and the margin after fees with the one before in brackets, because
/// the markup is not the margin (1.3x is 23.08 % before fees, not 30 %).
pub fn render_report(report: &MonthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Billing {}{}",
        report.month,
        if report.provisional {
            " (PROVISIONAL: the month is still open)"
        } else {
            ""
        }
    );
    match (&report.rates, &report.rate_error) {
        (Some(r), _) => {
            let _ = writeln!(
                out,
                "USD rate: {} PLN, NBP table {} of {}",
                r.usd.mid, r.usd.table_no, r.usd.effective_date
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "No NBP rate, PLN figures missing: {e}");
        }
        _ => {}
    }
    let _ = writeln!(
        out,
        "Issue deadline: {} (VAT Act art. 106i ust. 1)",
        report.issue_deadline
    );
    if let Some(w) = &report.deadline_warning {
        let _ = writeln!(out, "WARNING: {w}");
    }
    let _ = writeln!(
        out,
        "{:<16} {:<14} {:>9} {:>16} {:>14} {:>14} {:>14} {:>14} {:>12} {:>14} {:>16}  invoice",
        "client",
        "status",
        "requests",
        "raw USD",
        "net",
        "gross",
        "gross PLN",
        "profit PLN",
        "fees PLN",
        "after fees PLN",
        "margin (before)"
    );
    for r in &report.clients {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = match &r.statement {
            Some(s) => {
                let (fees, after, margins) = match &r.profit {
                    Some(p) => (
                        format_pl(p.fees_pln),
                        format_pl(p.profit_after_fees_pln),
                        format!(
                            "{} ({})",
                            margin(p.effective_margin_percent),
                            margin(p.margin_before_fees_percent)
                        ),
                    ),
                    None => ("-".into(), "-".into(), "-".into()),
                };
                writeln!(
                    out,
                    "{:<16} {:<14} {:>9} {:>16} {:>14} {:>14} {:>14} {:>14} {:>12} {:>14} {:>16}  {}",
                    r.org_id,
                    status,
                    s.usage.requests,
                    s.raw_cost_usd.to_string(),
                    format!("{} {}", format_pl(s.amounts.net), s.amounts.currency),
                    format!("{} {}", format_pl(s.amounts.gross), s.amounts.currency),
                    format_pl(s.amounts.gross_pln),
                    format_pl(s.profit_pln),
                    fees,
                    after,
                    margins,
                    r.invoice_number.clone().unwrap_or_default()
                )
            }
            None => writeln!(
                out,
                "{:<16} {:<14} {:>9} {:>16}",
                r.org_id,
                status,
                r.usage.requests,
                r.usage.cost_usd.to_string()
            ),
        };
        if r.zero_amounts {
            let _ = writeln!(out, "{:<16} not invoiced: amounts round to 0.00", "");
        }
        if !r.late_usage_usd.is_zero() {
            let _ = writeln!(
                out,
                "{:<16} late usage after the invoice: {} USD (goes onto the next invoice)",
                "", r.late_usage_usd
            );
        }
        if !r.missing.is_empty() && !report.provisional {
            let _ = writeln!(
                out,
                "{:<16} missing for an invoice: {}",
                "",
                r.missing.join("; ")
            );
        }
    }
    let t = &report.totals;
    let _ = writeln!(
        out,
        "TOTAL: {} clients, {} requests, raw {} USD, client net {} USD, gross {} PLN, profit {} PLN before fees",
        t.clients,
        t.requests,
        t.raw_cost_usd,
        t.client_net_usd,
        format_pl(t.gross_pln),
        format_pl(t.profit_pln)
    );
    let _ = writeln!(
        out,
        "OpenRouter fees {} PLN ({}), profit after fees {} PLN ({}); margin {} after fees, {} before (profit / net PLN)",
        format_pl(t.fees_pln),
        crate::money(Some(t.fees_usd)),
        format_pl(t.profit_after_fees_pln),
        crate::money(Some(t.profit_after_fees_usd)),
        margin(t.effective_margin_percent),
        margin(t.margin_before_fees_percent)
    );
    let _ = writeln!(out, "Fee basis: {}", report.fees_basis);
    out
}

/// What an export did, one line per fact: numbers issued, files written, clients skipped.
pub fn render_export(r: &InvoiceExportResult, month: YearMonth) -> String {
    let mut out = String::new();
    for c in r.clients.iter().filter(|c| c.newly_issued) {
        if let Some(n) = &c.invoice_number {
            let _ = writeln!(out, "issued {n} ({})", c.org_id);
        }
    }
    for f in &r.files {
        let _ = writeln!(out, "wrote {}", f.display());
    }
    for c in &r.clients {
        if let Some(reason) = &c.skipped {
            let _ = writeln!(out, "skipped {}: {reason}", c.org_id);
        }
    }
    if r.files.is_empty() {
        let _ = writeln!(out, "nothing to export for {month}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_ops::ops::ClientExport;

    #[test]
    fn an_export_lists_new_numbers_files_and_skips() {
        let out = PathBuf::from("/inv");
        let r = InvoiceExportResult {
            out_dir: out.clone(),
            format: ExportFormat::Pdf,
            files: vec![
                out.join("FV_2026_11_0001.pdf"),
                out.join("FV_2026_11_0002.pdf"),
            ],
            clients: vec![
                ClientExport {
                    org_id: "acme".into(),
                    invoice_number: Some("FV/2026/11/0001".into()),
                    newly_issued: false,
                    files: vec![out.join("FV_2026_11_0001.pdf")],
                    skipped: None,
                },
                ClientExport {
                    org_id: "baltic".into(),
                    invoice_number: Some("FV/2026/11/0002".into()),
                    newly_issued: true,
                    files: vec![out.join("FV_2026_11_0002.pdf")],
                    skipped: None,
                },
                ClientExport {
                    org_id: "nodata".into(),
                    invoice_number: None,
                    newly_issued: false,
                    files: vec![],
                    skipped: Some("no NIP".into()),
                },
            ],
        };
        assert_eq!(
            render_export(&r, "2026-11".parse().unwrap()),
            "issued FV/2026/11/0002 (baltic)\n\
             wrote /inv/FV_2026_11_0001.pdf\n\
             wrote /inv/FV_2026_11_0002.pdf\n\
             skipped nodata: no NIP\n"
        );
    }

    #[test]
    fn an_empty_export_says_so() {
        let r = InvoiceExportResult {
            out_dir: "/inv".into(),
            format: ExportFormat::Csv,
            files: vec![],
            clients: vec![],
        };
        assert_eq!(
            render_export(&r, "2026-11".parse().unwrap()),
            "nothing to export for 2026-11\n"
        );
    }
}
