//! maictl's KSeF commands: `invoices send`, `invoices status` (the month's invoices in
//! KSeF) and `ksef token set|delete|status` (the seller's KSeF token in the OS keychain).
//! Everything comes from the fleet file (`[ksef]`, and `[billing]` for the seller); the
//! `--json` output is the console's IPC types (`mai_wire::ksef`).

use std::fmt::Write as _;

use clap::Subcommand;
use mai_billing::export::format_pl;
use mai_core::time::YearMonth;
use mai_ops::ops::BillingOverrides;
use mai_ops::{Ops, OpsError};
use mai_wire::ksef::{
    KsefInvoiceKind, KsefInvoiceRow, KsefSendPhase, KsefSendProgress, KsefSendSummary, KsefState,
    KsefTokenStatus,
};

use crate::finance::BillingFileArgs;

#[derive(Debug, Clone, Subcommand)]
pub enum InvoicesCmd {
    /// Send the month's invoices that KSeF has not accepted yet. Progress on stderr, one
    /// result per invoice on stdout; exit 3 when any was rejected, failed or is still
    /// being processed by KSeF.
    Send(SendArgs),
    /// The month's invoices in KSeF: state, KSeF number, why KSeF rejected one and what
    /// to do about it.
    Status(StatusArgs),
}

/// `maictl invoices send`
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
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

/// `maictl invoices status`
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
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

#[derive(Debug, Clone, Subcommand)]
pub enum KsefCmd {
    /// The seller's KSeF token in the OS keychain (one per seller NIP and environment).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
}

/// The seller is the billing file's; its path may be overridden like billing's.
#[derive(Debug, Clone, clap::Args)]
pub struct SellerArgs {
    /// Billing config (its [seller] nip is the token's), instead of the fleet file's
    /// `[billing] config`.
    #[arg(long = "billing-config", env = "MAI_BILLING_CONFIG")]
    pub billing_config: Option<std::path::PathBuf>,
}

impl SellerArgs {
    pub fn overrides(&self) -> BillingOverrides {
        BillingOverrides {
            config: self.billing_config.clone(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCmd {
    /// Store (or replace) the KSeF token, read from stdin (never from an argument, which
    /// would stay in the shell history and the process list).
    Set {
        #[command(flatten)]
        seller: SellerArgs,
    },
    /// Delete the KSeF token from the keychain.
    Delete {
        #[command(flatten)]
        seller: SellerArgs,
    },
    /// Whether the token is stored (masked: the last four characters at most).
    Status {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        seller: SellerArgs,
    },
}

impl KsefCmd {
    pub fn overrides(&self) -> BillingOverrides {
        match self {
            KsefCmd::Token {
                cmd:
                    TokenCmd::Set { seller }
                    | TokenCmd::Delete { seller }
                    | TokenCmd::Status { seller, .. },
            } => seller.overrides(),
        }
    }
}

impl InvoicesCmd {
    pub fn overrides(&self) -> BillingOverrides {
        match self {
            InvoicesCmd::Send(a) => a.files.overrides(),
            InvoicesCmd::Status(a) => a.files.overrides(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("plain data serializes")
}

pub async fn send(ops: &Ops, a: &SendArgs) -> Result<u8, OpsError> {
    let quiet = a.json;
    let summary = ops
        .ksef_send(&a.month.to_string(), a.client.as_deref(), &mut |p| {
            if !quiet {
                eprintln!("{}", render_progress(&p));
            }
        })
        .await?;
    if a.json {
        println!("{}", json(&summary));
    } else {
        for r in &summary.rows {
            print!("{}", render_row(r));
        }
        println!("{}", render_summary(&summary));
    }
    Ok(if summary.all_accepted() {
        0
    } else {
        crate::EXIT_PARTIAL
    })
}

pub async fn status(ops: &Ops, a: &StatusArgs) -> Result<u8, OpsError> {
    if let Some(c) = &a.client {
        ops.client(c)?;
    }
    let rows: Vec<KsefInvoiceRow> = ops
        .ksef_status(&a.month.to_string())
        .await?
        .into_iter()
        .filter(|r| a.client.as_ref().is_none_or(|c| &r.org_id == c))
        .collect();
    if a.json {
        println!("{}", json(&rows));
    } else if rows.is_empty() {
        println!("no invoices for {}", a.month);
    } else {
        for r in &rows {
            print!("{}", render_row(r));
        }
    }
    Ok(0)
}

pub async fn token(ops: &Ops, cmd: &TokenCmd) -> Result<u8, OpsError> {
    match cmd {
        TokenCmd::Set { .. } => {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                eprintln!("Paste the KSeF token, then press Enter and Ctrl-D:");
            }
            let token = crate::read_stdin_secret().map_err(|e| {
                OpsError::Ksef(format!("cannot read the KSeF token from stdin: {e}"))
            })?;
            let st = ops.ksef_token_set(token).await?;
            println!("stored: {}", render_token_status(&st));
            eprintln!("audit: {}", ops.audit_log().path().display());
            Ok(0)
        }
        TokenCmd::Delete { .. } => {
            let st = ops.ksef_token_delete().await?;
            println!("deleted: {}", render_token_status(&st));
            eprintln!("audit: {}", ops.audit_log().path().display());
            Ok(0)
        }
        TokenCmd::Status { json: as_json, .. } => {
            let st = ops.ksef_token_status().await?;
            if *as_json {
                println!("{}", json(&st));
            } else {
                println!("{}", render_token_status(&st));
            }
            Ok(0)
        }
    }
}

/// One line: which KSeF, which seller, and whether the token is there.
pub fn render_token_status(s: &KsefTokenStatus) -> String {
    let token = match (&s.masked, s.present) {
        (Some(m), true) => format!("token stored ({m})"),
        _ => "no token stored (maictl ksef token set reads one from stdin)".into(),
    };
    format!(
        "KSeF {} ({}), seller NIP {}: {token}",
        s.environment, s.base_url, s.seller_nip
    )
}

/// A progress line for stderr: `[1/3] sending FV/2026/11/0002`.
pub fn render_progress(p: &KsefSendProgress) -> String {
    let what = match p.phase {
        KsefSendPhase::Connecting => "connecting to KSeF (token, session)",
        KsefSendPhase::Sending => "sending",
        KsefSendPhase::Processing => "waiting for KSeF's verdict",
        KsefSendPhase::Receipts => "downloading the receipt (UPO)",
        KsefSendPhase::Done => "done",
    };
    match &p.current {
        Some(c) => format!("[{}/{}] {what} {c}", p.done, p.total),
        None => format!("[{}/{}] {what}", p.done, p.total),
    }
}

/// An invoice's result: one line, then indented lines for what needs reading (the
/// rejection and its fix, an error, what a correction corrects).
pub fn render_row(r: &KsefInvoiceRow) -> String {
    let mut out = String::new();
    let state = if r.failed() {
        "failed"
    } else {
        r.state.as_str()
    };
    let tail = match &r.state {
        _ if r.failed() => "not sent to the end; sending again is safe".to_string(),
        KsefState::Accepted => match (&r.ksef_number, r.acquisition_date) {
            (Some(n), Some(at)) => format!("KSeF {n} ({})", at.format("%Y-%m-%d %H:%M UTC")),
            (Some(n), None) => format!("KSeF {n}"),
            _ => "accepted".into(),
        },
        KsefState::Rejected => match &r.rejection {
            Some(j) => format!("rejected: {} {}", j.code, j.description),
            None => "rejected".into(),
        },
        KsefState::Sent => "sent, KSeF is still processing it".into(),
        KsefState::Prepared => "ready to send".into(),
        KsefState::NotIssued { reason } => format!("not issued: {reason}"),
    };
    let amount = if matches!(r.state, KsefState::NotIssued { .. }) {
        String::new()
    } else {
        format!("{} {}", format_pl(r.gross), r.currency)
    };
    let _ = writeln!(
        out,
        "{state:<10} {:<16} {:<3} {:<20} {amount:>16}  {tail}",
        r.org_id,
        r.kind.as_str(),
        r.number.as_deref().unwrap_or("-"),
    );
    if r.kind == KsefInvoiceKind::Kor {
        let _ = writeln!(
            out,
            "{:11}corrects {} (KSeF {})",
            "",
            r.corrects_number.as_deref().unwrap_or("?"),
            r.corrects_ksef_number.as_deref().unwrap_or("?")
        );
    }
    if let Some(j) = r
        .rejection
        .as_ref()
        .filter(|_| r.state == KsefState::Rejected)
    {
        if !j.details.is_empty() {
            let _ = writeln!(out, "{:11}details: {}", "", j.details.join("; "));
        }
        let _ = writeln!(out, "{:11}fix: {}", "", j.fix);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "{:11}error: {e}", "");
    }
    out
}

/// The last line of a send.
pub fn render_summary(s: &KsefSendSummary) -> String {
    let mut line = format!(
        "KSeF {}: {} accepted, {} rejected, {} failed",
        s.month, s.accepted, s.rejected, s.failed
    );
    if s.pending > 0 {
        let _ = write!(
            line,
            ", {} still processing (see `maictl invoices status --month {}`)",
            s.pending, s.month
        );
    }
    if s.skipped > 0 {
        let _ = write!(line, ", {} clients without an invoice", s.skipped);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_wire::ksef::{KsefEnvironment, KsefRejection};

    fn row(org: &str, number: Option<&str>, state: KsefState) -> KsefInvoiceRow {
        KsefInvoiceRow {
            org_id: org.into(),
            client_name: format!("{org} Sp. z o.o."),
            number: number.map(String::from),
            kind: KsefInvoiceKind::Vat,
            corrects_ksef_number: None,
            corrects_number: None,
            state,
            ksef_number: None,
            acquisition_date: None,
            rejection: None,
            error: None,
            gross: "1230.00".parse().unwrap(),
            currency: "PLN".into(),
            upo_available: false,
        }
    }

    #[test]
    fn accepted_rejected_correction_failed_and_not_issued_lines() {
        let mut ok = row("acme", Some("FV/2026/11/0001"), KsefState::Accepted);
        ok.ksef_number = Some("1234563218-20261202-0100001AF629-AF".into());
        ok.acquisition_date = Some("2026-12-02T09:15:00Z".parse().unwrap());
        assert_eq!(
            render_row(&ok),
            "accepted   acme             VAT FV/2026/11/0001          1 230,00 PLN  KSeF 1234563218-20261202-0100001AF629-AF (2026-12-02 09:15 UTC)\n"
        );
        let mut rej = row("baltic", Some("FV/2026/11/0002"), KsefState::Rejected);
        rej.rejection = Some(KsefRejection::new(
            440,
            "Duplikat faktury",
            vec!["originalKsefNumber 1234563218-20261101-0100001AF629-1C".into()],
        ));
        let text = render_row(&rej);
        assert!(text.starts_with("rejected   baltic"), "{text}");
        assert!(text.contains("rejected: 440 Duplikat faktury\n"), "{text}");
        assert!(
            text.contains("\n           details: originalKsefNumber 1234563218-20261101"),
            "{text}"
        );
        assert!(
            text.contains("fix: KSeF already has") && text.contains("invoice_number_format"),
            "{text}"
        );
        let mut kor = row("acme", Some("FK/2026/11/0001"), KsefState::Sent);
        kor.kind = KsefInvoiceKind::Kor;
        kor.corrects_number = Some("FV/2026/10/0001".into());
        kor.corrects_ksef_number = Some("1234563218-20261103-0100001AF629-1C".into());
        let text = render_row(&kor);
        assert!(
            text.contains(" KOR FK/2026/11/0001 ") && text.contains("still processing"),
            "{text}"
        );
        assert!(
            text.contains("corrects FV/2026/10/0001 (KSeF 1234563218-20261103-0100001AF629-1C)"),
            "{text}"
        );
        let mut failed = row("acme", Some("FV/2026/11/0003"), KsefState::Prepared);
        failed.error = Some("KSeF did not answer within 30 s; send again".into());
        let text = render_row(&failed);
        assert!(
            text.starts_with("failed ") && text.contains("error: KSeF did not answer"),
            "{text}"
        );
        let none = row(
            "tiny",
            None,
            KsefState::NotIssued {
                reason: "missing invoice data: NIP".into(),
            },
        );
        let text = render_row(&none);
        assert!(
            text.starts_with("not_issued tiny")
                && text.contains("  not issued: missing invoice data: NIP"),
            "{text}"
        );
        assert!(!text.contains("PLN"), "{text}");

        let s = KsefSendSummary::of("2026-11", vec![ok, rej, kor, failed, none]);
        assert_eq!(
            render_summary(&s),
            "KSeF 2026-11: 1 accepted, 1 rejected, 1 failed, 1 still processing (see `maictl invoices status --month 2026-11`), 1 clients without an invoice"
        );
    }

    #[test]
    fn progress_and_token_lines() {
        let p = KsefSendProgress {
            done: 1,
            total: 3,
            current: Some("FV/2026/11/0002".into()),
            phase: KsefSendPhase::Sending,
        };
        assert_eq!(render_progress(&p), "[1/3] sending FV/2026/11/0002");
        let st = KsefTokenStatus {
            seller_nip: "1234563218".into(),
            environment: KsefEnvironment::Test,
            base_url: "https://api-test.ksef.mf.gov.pl/v2".into(),
            present: true,
            masked: Some("…6d5e".into()),
        };
        assert_eq!(
            render_token_status(&st),
            "KSeF test (https://api-test.ksef.mf.gov.pl/v2), seller NIP 1234563218: token stored (…6d5e)"
        );
    }
}
