//! maictl's fleet overview: `fleet totals` (the figures of the console's totals strip)
//! and `usage export` (a client's month as CSV or JSON). Each is one `Ops` call.

use std::io::Write;
use std::path::PathBuf;

use mai_core::time::YearMonth;
use mai_ops::ops::overview::{Projection, UsdPln};
use mai_ops::ops::usage_export::{ExportTarget, UsageExportFormat, UsageExportKind};
use mai_ops::{Ops, OpsError};

use crate::{money, EXIT_PARTIAL, EXIT_USAGE};

#[derive(clap::Subcommand)]
pub enum UsageCmd {
    /// One client's month as CSV (RFC 4180) or JSON: every request (`events`) or one row
    /// per Warsaw day (`daily`); exact decimals as text. To stdout unless --out; progress
    /// on stderr.
    Export {
        #[arg(long)]
        client: String,
        /// YYYY-MM (Warsaw month).
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "events")]
        kind: KindArg,
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
        /// Write this file (complete or not at all) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Events,
    Daily,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    Json,
}

pub async fn usage(ops: &Ops, cmd: UsageCmd) -> Result<u8, OpsError> {
    let UsageCmd::Export {
        client,
        month,
        kind,
        format,
        out,
    } = cmd;
    let Ok(ym) = month.parse::<YearMonth>() else {
        eprintln!("maictl: {}", OpsError::BadMonth(month));
        return Ok(EXIT_USAGE);
    };
    let kind = match kind {
        KindArg::Events => UsageExportKind::Events,
        KindArg::Daily => UsageExportKind::Daily,
    };
    let format = match format {
        FormatArg::Csv => UsageExportFormat::Csv,
        FormatArg::Json => UsageExportFormat::Json,
    };
    let target = match &out {
        Some(p) => ExportTarget::File(p.clone()),
        None => ExportTarget::Writer(Box::new(std::io::stdout())),
    };
    let r = ops
        .usage_export(&client, ym, kind, format, target, |done, total| {
            let mut e = std::io::stderr();
            let _ = write!(e, "\rexporting: {done}/{total} rows");
            let _ = e.flush();
        })
        .await;
    eprintln!();
    let r = r?;
    if let Some(e) = &r.pull_error {
        eprintln!(
            "maictl: warning: new events could not be pulled from {}'s tracker ({e}); exported what the console cache holds",
            r.client
        );
    }
    eprintln!(
        "{} rows of {} {}: raw {} USD, client {} USD{}",
        r.rows,
        r.client,
        r.month,
        r.raw_cost_usd,
        r.client_cost_usd,
        r.path
            .as_ref()
            .map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(if r.pull_error.is_some() {
        EXIT_PARTIAL
    } else {
        0
    })
}

fn pln(a: &UsdPln) -> String {
    a.pln
        .map(|p| format!("{} zł", mai_core::money::round_half_up(p, 2)))
        .unwrap_or_else(|| "-".into())
}

fn projection(p: &Projection) -> String {
    let mut s = format!("projected {}", money(p.projected_usd));
    if let Some(l) = p.monthly_limit_usd {
        s.push_str(&format!(" of limit {}", money(Some(l))));
        if let Some(pc) = p.projected_percent_of_limit {
            s.push_str(&format!(" ({pc}%)"));
        }
        if p.limit_reached {
            s.push_str(", limit reached");
        } else if let Some(d) = p.exceeds_on {
            s.push_str(&format!(", will exceed on {d}"));
        }
    }
    s
}

pub async fn totals(ops: &Ops, json: bool) -> Result<u8, OpsError> {
    let o = ops
        .fleet_overview(mai_ops::ops::overview::OutsideAnswers::Await)
        .await;
    let t = &o.totals;
    if json {
        println!("{}", serde_json::to_string_pretty(&o).expect("serialize"));
    } else {
        let rate = match (&t.pln.rate, &t.pln.effective_date) {
            (Some(r), Some(d)) if t.pln.available => format!(
                "USD/PLN {r} ({}, {d}){}",
                t.pln.table_no.as_deref().unwrap_or("NBP"),
                if t.pln.stale { " STALE" } else { "" }
            ),
            _ => format!(
                "no PLN rate ({})",
                t.pln.error.as_deref().unwrap_or("unknown")
            ),
        };
        println!(
            "fleet totals, {} (month {}), {}/{} clients counted; {rate}",
            t.day, t.month, t.clients_counted, t.clients
        );
        println!(
            "{:<16} {:>14} {:>16} {:>14} {:>16}",
            "", "TODAY USD", "TODAY PLN", "MONTH USD", "MONTH PLN"
        );
        for (name, today, month) in [
            ("client cost", &t.today_client_cost, &t.month_client_cost),
            (
                "OpenRouter cost",
                &t.today_openrouter_cost,
                &t.month_openrouter_cost,
            ),
            ("profit", &t.today_profit, &t.month_profit),
        ] {
            println!(
                "{name:<16} {:>14} {:>16} {:>14} {:>16}",
                money(Some(today.usd)),
                pln(today),
                money(Some(month.usd)),
                pln(month)
            );
        }
        println!("fleet: {}", projection(&t.projection));
        match (&t.credits.remaining_usd, &t.credits.error) {
            (Some(r), _) => println!("OpenRouter credits remaining: {}", money(Some(*r))),
            (None, e) => println!(
                "OpenRouter credits: unknown ({})",
                e.as_deref().unwrap_or("no answer")
            ),
        }
        for r in &o.rows {
            if let Some(p) = &r.projection {
                println!("  {:<18} {}", r.client_id, projection(p));
            }
        }
        if !t.missing.is_empty() {
            eprintln!(
                "maictl: not counted (no current numbers): {}",
                t.missing.join(", ")
            );
        }
    }
    Ok(if t.missing.is_empty() {
        0
    } else {
        EXIT_PARTIAL
    })
}
