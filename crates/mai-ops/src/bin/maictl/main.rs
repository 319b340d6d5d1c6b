//! maictl: the operator library as a CLI for scripts and finance.
//!
//! Every command, finance included, goes through the same `Ops` calls as the console and
//! finds its files through the fleet file; the argument parsing (clap) lives here only.
//!
//! Exit codes: 0 ok; 1 operation failed (`alerts`: some alert needs attention); 2 usage or fleet-file error;
//! 3 partial (some clients failed, e.g. unreachable trackers; some invoices not accepted by
//! KSeF); 4 keychain unavailable or locked.

mod alerts;
mod backup;
mod clients;
mod finance;
mod fleet_ops;
mod ksef;
mod overview;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use mai_ops::docker::ContainerRole;
use mai_ops::fleet::FleetError;
use mai_ops::keys::{KeyError, SecretKind};
use mai_ops::{Fleet, Keychain, Ops, OpsError};

#[derive(Parser)]
#[command(name = "maictl", version, about = "mAI Fleet operator CLI")]
struct Cli {
    /// Fleet file (hosts, clients, billing, NBP); every command reads it.
    #[arg(long, env = "MAI_FLEET", global = true, default_value = "fleet.toml")]
    fleet: PathBuf,
    /// Do not contact Docker (trackers only).
    #[arg(long, global = true)]
    no_docker: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One row per client: containers, tracker, today's usage, month vs limit, key, alerts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Reconcile on the tracker(s) and pull new events into the console cache.
    Sync {
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        client: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Secrets in the OS keychain.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Print (and with --follow, stream) a client's container logs.
    Logs {
        client: String,
        #[arg(long, default_value = "chat")]
        role: ContainerRole,
        #[arg(long, default_value_t = 200)]
        tail: u32,
        #[arg(long, short)]
        follow: bool,
    },
    /// Restart a client's container.
    Restart {
        client: String,
        #[arg(long, default_value = "chat")]
        role: ContainerRole,
    },
    /// Client usage dashboard data (today, month, 30 days, by user, by model);
    /// `usage export`: a client's month as CSV or JSON for spreadsheets.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Usage {
        #[command(subcommand)]
        cmd: Option<overview::UsageCmd>,
        #[arg(required = true)]
        client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// NBP exchange rates (the fleet file's NBP API and the console's rate cache).
    Nbp {
        #[command(subcommand)]
        cmd: NbpCmd,
    },
    /// Monthly billing report per client from the console cache.
    Billing(finance::BillingArgs),
    /// Export invoices (CSV, PDF, KSeF FA(3)) for a month; `invoices send` and
    /// `invoices status`: the month's invoices in KSeF.
    Invoices(finance::InvoicesArgs),
    /// KSeF settings of the seller: its KSeF token in the OS keychain.
    Ksef {
        #[command(subcommand)]
        cmd: ksef::KsefCmd,
    },
    /// One person's data on one client (GDPR): export (art. 15) or erase (art. 17).
    /// Audited in the console's audit.log (data_dir of the fleet file).
    Privacy {
        #[command(subcommand)]
        cmd: PrivacyCmd,
    },
    /// Onboard (add) and offboard (remove) clients: key, containers, fleet file. Audited.
    Clients {
        #[command(subcommand)]
        cmd: clients::ClientsCmd,
    },
    /// The fleet's images: update with a canary, health gates and automatic rollback.
    Fleet {
        #[command(subcommand)]
        cmd: fleet_ops::FleetCmd,
    },
    /// Alerts after one refresh of the fleet (exit 0: none needs attention, 1: some);
    /// `alerts ack ID`, `alerts mute ID --for 2h`.
    Alerts(alerts::AlertsArgs),
    /// Ledger backups: run, list, restore onto a new tracker, rebuild without a backup.
    Backup {
        #[command(subcommand)]
        cmd: backup::BackupCmd,
    },
}

/// Who: the person's e-mail, their Open WebUI user id, or both.
#[derive(clap::Args)]
struct PrivacyWho {
    #[arg(long)]
    client: String,
    /// The person's e-mail (matched in any letter case).
    #[arg(long, required_unless_present = "user_id")]
    email: Option<String>,
    /// The person's Open WebUI user id.
    #[arg(long)]
    user_id: Option<String>,
}

impl PrivacyWho {
    fn subject(&self) -> mai_core::ledger::PrivacySubject {
        mai_core::ledger::PrivacySubject {
            id: self.user_id.clone(),
            email: self.email.clone(),
        }
    }
}

#[derive(Subcommand)]
enum PrivacyCmd {
    /// Replace the person's e-mail, name and user id with a pseudonym on the tracker
    /// and in the console cache; amounts, totals and invoices stay exactly the same.
    Erase {
        #[command(flatten)]
        who: PrivacyWho,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print the person's usage events and totals.
    Export {
        #[command(flatten)]
        who: PrivacyWho,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum NbpCmd {
    /// The USD→PLN rate an invoice must use (NBP table A, art. 31a VAT Act).
    InvoiceRate(finance::InvoiceRateArgs),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Store a client's OpenRouter key, read from stdin.
    Set {
        client: String,
        /// Store the tracker admin token instead of the OpenRouter key.
        #[arg(long, conflicts_with = "tracker_read_token")]
        tracker_token: bool,
        /// Store the tracker read token (routine polling) instead of the OpenRouter key.
        #[arg(long)]
        tracker_read_token: bool,
    },
    /// Store the OpenRouter management (provisioning) key, read from stdin.
    SetManagement,
    /// Delete a client's OpenRouter key (or tracker token) from the keychain.
    Delete {
        client: String,
        #[arg(long, conflicts_with = "tracker_read_token")]
        tracker_token: bool,
        #[arg(long)]
        tracker_read_token: bool,
    },
    /// Masked listing of every client's secrets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rotate a client's OpenRouter key through the management API.
    Rotate {
        client: String,
        #[arg(long)]
        json: bool,
    },
}

const EXIT_FAIL: u8 = 1;
const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_PARTIAL: u8 = 3;
const EXIT_KEYCHAIN: u8 = 4;

fn code_for(e: &OpsError) -> u8 {
    match e {
        OpsError::UnknownClient(_) => EXIT_USAGE,
        OpsError::NoKeychain(_) | OpsError::Key(KeyError::Locked(_) | KeyError::Unavailable(_)) => {
            EXIT_KEYCHAIN
        }
        OpsError::Key(KeyError::Invalid(_)) | OpsError::NoKsef(_) | OpsError::Ksef(_) => EXIT_USAGE,
        OpsError::Lifecycle(l)
            if matches!(
                **l,
                mai_ops::ops::lifecycle::LifecycleError::Invalid(_)
                    | mai_ops::ops::lifecycle::LifecycleError::Usage(_)
            ) =>
        {
            EXIT_USAGE
        }
        OpsError::InvalidChange { .. }
        | OpsError::NothingToChange(_)
        | OpsError::Update(_)
        | OpsError::Alert(_) => EXIT_USAGE,
        OpsError::Backup(m) if m.starts_with("no backup folder") => EXIT_USAGE,
        OpsError::Privacy(m) if m.contains("pass --yes") || m.contains("user id or e-mail") => {
            EXIT_USAGE
        }
        _ => EXIT_FAIL,
    }
}

/// Asks on the terminal; `Ok(false)` when the answer is not yes. Without a terminal
/// it refuses: an irreversible action in a script needs `--yes`. The error is the
/// message for [`OpsError::Privacy`].
fn confirm(question: &str) -> Result<bool, String> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(
            "stdin is not a terminal, so the erasure cannot be confirmed; pass --yes".into(),
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

async fn privacy(ops: &Ops, cmd: PrivacyCmd) -> Result<u8, OpsError> {
    match cmd {
        PrivacyCmd::Erase { who, yes, json } => {
            ops.client(&who.client)?;
            let named = [who.email.as_deref(), who.user_id.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" / ");
            if !yes
                && !confirm(&format!(
                    "Erase the personal data of {named} on {} (tracker and console cache)? This cannot be undone.",
                    who.client
                ))
                .map_err(OpsError::Privacy)?
            {
                eprintln!("maictl: not erased");
                return Ok(EXIT_FAIL);
            }
            let r = ops.privacy_erase(&who.client, &who.subject()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).expect("serialize"));
            } else {
                println!(
                    "erased on {}: {} events on the tracker, {} in the console cache, {} journal lines; now listed as {}",
                    r.client_id, r.tracker_events, r.cache_events, r.journal_lines, r.pseudonym
                );
                println!("audit: {} (subject {})", r.audit_log, r.subject_hash);
                if !r.compacted {
                    eprintln!("warning: a ledger file could not be compacted at once (a reader was busy); old bytes leave it at its next checkpoint");
                }
            }
            Ok(0)
        }
        PrivacyCmd::Export { who, json } => {
            let r = ops.privacy_export(&who.client, &who.subject()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).expect("serialize"));
            } else {
                let x = &r.export;
                println!(
                    "{}: {} requests, {} tokens, {} (raw, USD)",
                    r.client_id,
                    x.requests,
                    x.tokens.total,
                    x.raw_cost_usd.normalize()
                );
                for e in &x.events {
                    println!(
                        "{}  {:<32} {:>8} tokens  {:>12}  {}",
                        e.created_at.format("%Y-%m-%d %H:%M:%S"),
                        e.model,
                        e.tokens.total,
                        e.cost_usd,
                        e.context.chat_id.as_deref().unwrap_or("-")
                    );
                }
                eprintln!("audit: {}", r.audit_log);
            }
            if let Some(w) = &r.warning {
                eprintln!("warning: {w}");
            }
            Ok(if r.from_cache { EXIT_PARTIAL } else { 0 })
        }
    }
}

pub(crate) fn read_stdin_secret() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s.trim().to_string())
}

/// An enum's name as the JSON output and the console spell it (`limit_reached`).
fn wire_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub(crate) fn money(d: Option<rust_decimal::Decimal>) -> String {
    use rust_decimal::Decimal;
    // Same rule as the console: under one cent 6 decimals, else 2; half-up.
    d.map(|d| {
        let dp = if d.abs() < Decimal::new(1, 2) && !d.is_zero() {
            6
        } else {
            2
        };
        let r = mai_core::money::round_half_up(d, dp);
        format!("${r:.prec$}", prec = dp as usize)
    })
    .unwrap_or_else(|| "-".into())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let fleet = match Fleet::load(&cli.fleet) {
        Ok(f) => f,
        Err(FleetError::Read { path, source }) if source.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "maictl: fleet file {} not found. Name one with --fleet FILE or MAI_FLEET \
                 (./fleet.toml otherwise); fleet.example.toml documents every key, and the demo \
                 fleet (./demo.sh, or crates/mai-ops/scripts/demo-fleet.sh up) is \
                 /tmp/mai-demo/fleet.toml",
                path.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("maictl: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // What the fleet file allows but weakens (plain HTTP to another machine, polling with
    // the admin token): said on every run, on stderr, so scripts' output stays clean.
    for c in &fleet.clients {
        for w in &c.warnings {
            eprintln!(
                "maictl: warning: {}: client {}: {w}",
                fleet.path.display(),
                c.id
            );
        }
    }
    let keychain = Keychain::secret_service();
    let mut ops = match Ops::new(fleet, keychain) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("maictl: {e}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    ops.docker_enabled = !cli.no_docker;
    ops.billing_overrides = match &cli.cmd {
        Cmd::Nbp {
            cmd: NbpCmd::InvoiceRate(a),
        } => a.nbp.overrides(),
        Cmd::Billing(a) => a.files.overrides(),
        Cmd::Invoices(a) => match &a.cmd {
            Some(sub) => sub.overrides(),
            None => a.files.overrides(),
        },
        Cmd::Ksef { cmd } => cmd.overrides(),
        _ => Default::default(),
    };
    let result = run(&ops, cli.cmd).await;
    // Alert webhook posts a refresh started (status, alerts) finish before the exit.
    ops.flush_alert_webhooks(std::time::Duration::from_secs(20))
        .await;
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("maictl: {e}");
            ExitCode::from(code_for(&e))
        }
    }
}

async fn run(ops: &Ops, cmd: Cmd) -> Result<u8, OpsError> {
    match cmd {
        Cmd::Alerts(a) => alerts::alerts(ops, a).await,
        Cmd::Status { json } => {
            let rows = ops.refresh().await;
            let unreachable = rows.iter().filter(|r| !r.tracker_reachable).count();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("rows serialize")
                );
            } else {
                println!(
                    "{:<18} {:<8} {:<10} {:<8} {:>7} {:>10} {:>12} {:>12} {:>7} {:<13} ALERTS",
                    "CLIENT",
                    "HOST",
                    "CONTAINER",
                    "TRACKER",
                    "REQS",
                    "TOKENS",
                    "TODAY",
                    "MONTH",
                    "LIMIT%",
                    "KEY"
                );
                for r in &rows {
                    let tracker = if r.tracker_reachable {
                        "ok".to_string()
                    } else {
                        match r.data_age_seconds {
                            Some(a) => format!("down({}m)", a / 60),
                            None => "down".into(),
                        }
                    };
                    println!(
                        "{:<18} {:<8} {:<10} {:<8} {:>7} {:>10} {:>12} {:>12} {:>7} {:<13} {}",
                        r.client_id,
                        match r.host_mode {
                            Some(mai_ops::fleet::HostMode::Swarm) => format!("{}[swarm]", r.host),
                            _ => r.host.clone(),
                        },
                        r.container
                            .as_ref()
                            .map(|c| c.state.as_str())
                            .unwrap_or(if r.docker_error.is_some() { "?" } else { "-" }),
                        tracker,
                        r.today_requests
                            .map(|v| v.to_string())
                            .unwrap_or("-".into()),
                        r.today_tokens.map(|v| v.to_string()).unwrap_or("-".into()),
                        money(r.today_client_cost_usd),
                        money(r.month_client_cost_usd),
                        r.limit
                            .as_ref()
                            .map(|l| format!("{}", l.percent_used))
                            .unwrap_or("-".into()),
                        r.key_state.map_or_else(|| "-".to_string(), wire_name),
                        r.alerts
                            .iter()
                            .map(|a| a.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
            }
            Ok(if unreachable > 0 { EXIT_PARTIAL } else { 0 })
        }
        Cmd::Sync { client, all, json } => {
            let ids: Vec<String> = if all {
                ops.fleet.active_clients().map(|c| c.id.clone()).collect()
            } else {
                let id = client.expect("clap enforces --client or --all");
                ops.client(&id)?;
                vec![id]
            };
            let outcomes = ops
                .sync_many(&ids, |p| {
                    if !json {
                        let o = &p.outcome;
                        eprintln!(
                            "[{}/{}] {}: {}{}",
                            p.done,
                            p.total,
                            o.client_id,
                            o.status,
                            o.error
                                .as_ref()
                                .map(|e| format!(" ({e})"))
                                .unwrap_or_default()
                        );
                    }
                })
                .await;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcomes).expect("serialize")
                );
            }
            let failed = outcomes.iter().filter(|o| !o.ok).count();
            Ok(match failed {
                0 => 0,
                n if n == outcomes.len() => EXIT_FAIL,
                _ => EXIT_PARTIAL,
            })
        }
        Cmd::Keys { cmd } => match cmd {
            KeysCmd::Set {
                client,
                tracker_token,
                tracker_read_token,
            } => {
                let secret = read_stdin_secret().map_err(|e| OpsError::Token {
                    client: client.clone(),
                    message: e.to_string(),
                })?;
                let kind = secret_kind(tracker_token, tracker_read_token);
                let masked = ops.key_set(&client, kind, secret).await?;
                println!(
                    "stored {} for {client}: {masked}",
                    match kind {
                        SecretKind::TrackerToken => "tracker admin token",
                        SecretKind::TrackerReadToken => "tracker read token",
                        SecretKind::OpenRouter => "OpenRouter key",
                    }
                );
                Ok(0)
            }
            KeysCmd::SetManagement => {
                let secret = read_stdin_secret().map_err(|e| OpsError::Token {
                    client: "management".into(),
                    message: e.to_string(),
                })?;
                let masked = ops.set_management_key(secret).await?;
                println!("stored the management key: {masked}");
                Ok(0)
            }
            KeysCmd::Delete {
                client,
                tracker_token,
                tracker_read_token,
            } => {
                let kind = secret_kind(tracker_token, tracker_read_token);
                ops.key_delete(&client, kind).await?;
                println!("deleted");
                Ok(0)
            }
            KeysCmd::List { json } => {
                let list = ops.keys_list().await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).expect("serialize")
                    );
                } else {
                    for k in list {
                        println!(
                            "{:<14} {:<14} {}",
                            k.client,
                            wire_name(k.kind),
                            k.masked.or(k.error).unwrap_or_else(|| "(not set)".into())
                        );
                    }
                }
                Ok(0)
            }
            KeysCmd::Rotate { client, json } => {
                let r = ops.rotate(&client).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r).expect("serialize"));
                } else {
                    println!(
                        "rotated {}: new {} (old {} {})",
                        r.client_id,
                        r.new_label,
                        r.old_label.clone().unwrap_or("-".into()),
                        if r.old_disabled {
                            "disabled"
                        } else {
                            "NOT disabled"
                        }
                    );
                    for f in &r.follow_up {
                        eprintln!("still to do: {f}");
                    }
                    if let Some(w) = &r.warning {
                        eprintln!("warning: {w}");
                    }
                }
                Ok(if r.warning.is_some() { EXIT_PARTIAL } else { 0 })
            }
        },
        Cmd::Logs {
            client,
            role,
            tail,
            follow,
        } => {
            let mut s = Box::pin(ops.logs(&client, role, tail, follow).await?);
            while let Some(line) = s.next().await {
                match line {
                    Ok(l) => print!("{l}"),
                    Err(e) => {
                        eprintln!("maictl: {e}");
                        return Ok(EXIT_FAIL);
                    }
                }
            }
            Ok(0)
        }
        Cmd::Restart { client, role } => {
            let c = ops.restart(&client, role).await?;
            println!("{} restarted: {}", c.name, c.state);
            Ok(0)
        }
        Cmd::Nbp {
            cmd: NbpCmd::InvoiceRate(a),
        } => finance::invoice_rate(ops, &a).await,
        Cmd::Billing(a) => finance::billing(ops, &a).await,
        Cmd::Invoices(a) => finance::invoices(ops, &a).await,
        Cmd::Ksef {
            cmd: ksef::KsefCmd::Token { cmd },
        } => ksef::token(ops, &cmd).await,
        Cmd::Privacy { cmd } => privacy(ops, cmd).await,
        Cmd::Clients { cmd } => clients::run(ops, cmd).await,
        Cmd::Fleet { cmd } => fleet_ops::fleet(ops, cmd).await,
        Cmd::Backup { cmd } => backup::run(ops, cmd).await,
        Cmd::Usage { cmd: Some(cmd), .. } => overview::usage(ops, cmd).await,
        Cmd::Usage {
            cmd: None,
            client,
            json,
        } => {
            let client = client.expect("clap requires it without a subcommand");
            let d = ops.dashboard(&client).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d).expect("serialize"));
            } else {
                println!(
                    "{} ({}){}",
                    d.legal_name,
                    d.client_id,
                    if d.live { "" } else { " [cached]" }
                );
                println!(
                    "today: {} requests, {} tokens, {}",
                    d.today.requests,
                    d.today.tokens,
                    money(Some(d.today.client_cost_usd))
                );
                println!(
                    "month: {} requests, {}",
                    d.month_requests,
                    money(Some(d.month_client_cost_usd))
                );
            }
            Ok(if d.live { 0 } else { EXIT_PARTIAL })
        }
    }
}

fn secret_kind(tracker_token: bool, tracker_read_token: bool) -> SecretKind {
    if tracker_token {
        SecretKind::TrackerToken
    } else if tracker_read_token {
        SecretKind::TrackerReadToken
    } else {
        SecretKind::OpenRouter
    }
}
