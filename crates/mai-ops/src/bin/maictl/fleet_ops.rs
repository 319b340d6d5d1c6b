//! maictl's operator actions on clients and the fleet: `clients set` (markup from a day,
//! monthly limit, invoice data), `clients history`, `fleet update` (images, canary first,
//! health-gated, rolled back on failure). Each is one `Ops` call.

use mai_ops::ops::change::{ClientChange, ClientField, FieldValue, MarkupChange};
use mai_ops::ops::update::{ClientOutcome, TargetState, UpdatePlan, UpdateProgress};
use mai_ops::{Ops, OpsError};

use crate::{EXIT_FAIL, EXIT_PARTIAL};

#[derive(clap::Subcommand)]
pub enum ClientsCmd {
    /// Change a client: markup from a day on, monthly limit, invoice data. Validated
    /// field by field; applied without restarting anything (the OpenRouter key's cap,
    /// the fleet file in place, the tracker's terms); audited (`clients history`).
    Set(Box<SetArgs>),
    /// A client's audit history (changes, image updates, privacy actions), newest first.
    History {
        client: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct SetArgs {
    pub client: String,
    /// New markup rate (1.4 = +40%), from the day given with --from.
    #[arg(long, requires = "from")]
    pub markup: Option<String>,
    /// The first day (YYYY-MM-DD, Warsaw) priced at --markup; not in an invoiced month.
    #[arg(long, requires = "markup")]
    pub from: Option<String>,
    /// Monthly limit on the client cost in USD, or `none`. Sets the OpenRouter key's cap.
    #[arg(long)]
    pub monthly_limit: Option<String>,
    #[arg(long)]
    pub legal_name: Option<String>,
    /// Polish NIP (checked); empty removes it (foreign clients).
    #[arg(long)]
    pub nip: Option<String>,
    #[arg(long)]
    pub vat_id: Option<String>,
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub address_line2: Option<String>,
    /// Two-letter country code.
    #[arg(long)]
    pub country: Option<String>,
    /// PLN or USD.
    #[arg(long)]
    pub invoice_currency: Option<String>,
    /// 23, 8, 5 or np (reverse charge).
    #[arg(long)]
    pub vat: Option<String>,
    /// by_model or summary.
    #[arg(long)]
    pub invoice_lines: Option<String>,
    #[arg(long)]
    pub hosting_eur: Option<String>,
    #[arg(long)]
    pub invoice_email: Option<String>,
    /// Only check the change and print what it would change.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

impl SetArgs {
    fn change(&self) -> ClientChange {
        let fields = [
            (ClientField::LegalName, &self.legal_name),
            (ClientField::Nip, &self.nip),
            (ClientField::VatId, &self.vat_id),
            (ClientField::Address, &self.address),
            (ClientField::AddressLine2, &self.address_line2),
            (ClientField::Country, &self.country),
            (ClientField::InvoiceCurrency, &self.invoice_currency),
            (ClientField::Vat, &self.vat),
            (ClientField::InvoiceLines, &self.invoice_lines),
            (ClientField::HostingEur, &self.hosting_eur),
            (ClientField::InvoiceEmail, &self.invoice_email),
        ];
        ClientChange {
            markup: match (&self.markup, &self.from) {
                (Some(rate), Some(from)) => Some(MarkupChange {
                    rate: rate.clone(),
                    from: from.clone(),
                }),
                _ => None,
            },
            monthly_limit_usd: self.monthly_limit.clone(),
            invoice: fields
                .into_iter()
                .filter_map(|(field, v)| {
                    v.as_ref().map(|v| FieldValue {
                        field,
                        value: v.clone(),
                    })
                })
                .collect(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialize"));
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

pub async fn clients(ops: &Ops, cmd: ClientsCmd) -> Result<u8, OpsError> {
    match cmd {
        ClientsCmd::Set(a) => {
            let change = a.change();
            if a.dry_run {
                let check = ops.check_client_change(&a.client, &change).await?;
                if a.json {
                    json(&check);
                } else {
                    for e in &check.errors {
                        eprintln!("{}: {}", e.field, e.message);
                    }
                    for c in &check.changes {
                        println!("{}: {} -> {}", c.field, show(&c.old), show(&c.new));
                    }
                    for w in &check.warnings {
                        eprintln!("note: {w}");
                    }
                    eprintln!("(dry run: nothing changed)");
                }
                return Ok(if check.errors.is_empty() {
                    0
                } else {
                    crate::EXIT_USAGE
                });
            }
            let r = ops
                .change_client(&a.client, &change, &mai_ops::audit::os_user())
                .await?;
            if a.json {
                json(&r);
            } else {
                for c in &r.changes {
                    println!("{}: {} -> {}", c.field, show(&c.old), show(&c.new));
                }
                if let Some(cap) = r.key_limit_usd {
                    println!("OpenRouter key cap: {cap} USD (monthly)");
                }
                println!(
                    "fleet file: {}; OpenRouter key: {}; tracker: {}",
                    crate::wire_name(r.fleet_file),
                    crate::wire_name(r.openrouter_key),
                    crate::wire_name(r.tracker)
                );
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
                eprintln!("audit: {}", r.audit_log);
            }
            Ok(if r.tracker == mai_ops::ops::change::ApplyState::Failed {
                EXIT_PARTIAL
            } else {
                0
            })
        }
        ClientsCmd::History {
            client,
            json: as_json,
        } => {
            let h = ops.client_history(&client)?;
            if as_json {
                json(&h);
            } else {
                for e in &h {
                    let what = e
                        .changes
                        .iter()
                        .map(|c| format!("{} {} -> {}", c.field, show(&c.old), show(&c.new)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    println!(
                        "{}  {:<10} {:<15} {:<11} {}{}",
                        e.at.format("%Y-%m-%d %H:%M:%S"),
                        e.actor,
                        crate::wire_name(e.action),
                        crate::wire_name(e.outcome),
                        what,
                        e.error
                            .as_ref()
                            .map(|x| format!(" ({x})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
    }
}

#[derive(clap::Subcommand)]
pub enum FleetCmd {
    /// Update the clients' images: per client the image running versus the target; the
    /// canary first, alone, health-gated (tracker ready, a metered probe, chat healthy);
    /// then the rest with bounded parallelism. A client whose gate fails is rolled back
    /// to its previous container (same volumes); a failed canary stops the rollout.
    Update(UpdateArgs),
    /// Totals across clients: today and month to date, client cost, OpenRouter cost,
    /// profit (USD exact, PLN at the display rate), the account's remaining credits,
    /// and the month-end projection per client and for the fleet.
    Totals {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// The trackers' new image as the hosts have it (no registry is asked).
    #[arg(long, required_unless_present = "chat_image")]
    pub tracker_image: Option<String>,
    /// The chat apps' new image.
    #[arg(long)]
    pub chat_image: Option<String>,
    /// Clients updated at once after the canary.
    #[arg(long, default_value_t = mai_wire::update::DEFAULT_PARALLELISM)]
    pub parallelism: u32,
    /// Longest health gate per client, in seconds.
    #[arg(long, default_value_t = mai_wire::update::DEFAULT_GATE_TIMEOUT_MS / 1000)]
    pub gate_timeout: u64,
    /// Only this client (repeatable); default: every client of the fleet file.
    #[arg(long = "client")]
    pub clients: Vec<String>,
    /// The client updated first; default: the first one that needs the update.
    #[arg(long)]
    pub canary: Option<String>,
    /// Only show per client the image running versus the target.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn fleet(ops: &Ops, cmd: FleetCmd) -> Result<u8, OpsError> {
    let a = match cmd {
        FleetCmd::Update(a) => a,
        FleetCmd::Totals { json } => return crate::overview::totals(ops, json).await,
    };
    let plan = UpdatePlan {
        tracker_image: a.tracker_image.clone(),
        chat_image: a.chat_image.clone(),
        parallelism: a.parallelism,
        gate_timeout_ms: a.gate_timeout.saturating_mul(1000),
        clients: a.clients.clone(),
        canary: a.canary.clone(),
    };
    if a.dry_run {
        let p = ops.update_preview(&plan).await?;
        if a.json {
            json(&p);
        } else {
            for c in &p.clients {
                for t in &c.targets {
                    println!(
                        "{:<18} {:<8} {:<8} {:<32} -> {:<32} {}{}",
                        c.client_id,
                        c.host,
                        t.role,
                        t.current_image.as_deref().unwrap_or("-"),
                        t.target_image,
                        crate::wire_name(t.state),
                        t.detail
                            .as_ref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    );
                }
            }
            println!(
                "canary: {}; {} to update",
                p.canary.as_deref().unwrap_or("none"),
                p.clients
                    .iter()
                    .filter(|c| c.targets.iter().any(|t| t.state == TargetState::Update))
                    .count()
            );
        }
        return Ok(0);
    }
    let quiet = a.json;
    let progress = move |p: UpdateProgress| {
        if quiet {
            return;
        }
        match p {
            UpdateProgress::Planned { preview } => eprintln!(
                "plan: {} clients, canary {}",
                preview.clients.len(),
                preview.canary.as_deref().unwrap_or("none")
            ),
            UpdateProgress::Phase {
                client_id,
                phase,
                detail,
            } => eprintln!("{client_id}: {} {detail}", crate::wire_name(phase)),
            UpdateProgress::Gate { client_id, result } => eprintln!(
                "{client_id}: gate {} {} ({} ms): {}",
                crate::wire_name(result.check),
                if result.passed { "passed" } else { "FAILED" },
                result.elapsed_ms,
                result.detail
            ),
            UpdateProgress::Finished { result } => eprintln!(
                "{}: {} — {}",
                result.client_id,
                crate::wire_name(result.outcome),
                result.detail
            ),
        }
    };
    let s = ops.update_images(&plan, &progress).await?;
    if a.json {
        json(&s);
    } else {
        println!(
            "updated {}, rolled back {}, skipped {}, failed {} in {:.1} s",
            s.updated,
            s.rolled_back,
            s.skipped,
            s.failed,
            s.elapsed_ms as f64 / 1000.0
        );
        if let Some(w) = &s.stopped {
            eprintln!("stopped: {w}");
        }
    }
    Ok(if s.stopped.is_some() {
        EXIT_FAIL
    } else if s
        .clients
        .iter()
        .any(|c| matches!(c.outcome, ClientOutcome::RolledBack | ClientOutcome::Failed))
    {
        EXIT_PARTIAL
    } else {
        0
    })
}
