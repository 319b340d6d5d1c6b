//! `maictl clients add|check|remove`: onboarding and offboarding, the same `Ops` calls
//! as the console's Clients view. Progress goes to stderr, one line per step; the result
//! to stdout (`--json` for scripts).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mai_ops::ops::lifecycle::{
    step_name, BillingMonthCheck, Deployment, LifecycleError, LifecycleProgress, NewClient,
    OnboardRequest, StepState,
};
use mai_ops::{Ops, OpsError};

#[derive(Subcommand)]
pub enum ClientsCmd {
    /// Onboard a client: check its data, create its OpenRouter key (monthly cap), deploy
    /// its chat app and tracker on a host, wait until both answer, send one metered probe,
    /// and add it to the fleet file. A failure undoes everything.
    Add(Box<AddArgs>),
    /// What offboarding a client would do: this and last month's billing state, its
    /// containers, network and volumes, its key. Changes nothing.
    Check {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Offboard a client: final sync and billing check, key disabled, containers stopped,
    /// the tracker's ledger exported and its volume archived (console data_dir), then
    /// containers, network and volumes removed. The fleet entry stays, marked offboarded.
    Remove {
        id: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Change a client (markup from a day, monthly limit, invoice data), its history.
    #[command(flatten)]
    Change(crate::fleet_ops::ClientsCmd),
}

/// The new client: from flags, or a TOML snippet (`--from`) that flags override.
#[derive(Args, Default)]
pub struct AddArgs {
    /// A TOML file with the client's keys as in a fleet file's [[clients]] entry (id,
    /// legal_name, nip, address, markup, monthly_limit_usd, ...) and a [deploy] table
    /// (host, tracker_port, chat_port, chat_image, tracker_image, publish_address,
    /// signed_identity, tracker_openrouter_url).
    #[arg(long, value_name = "SNIPPET.toml")]
    from: Option<PathBuf>,
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    legal_name: Option<String>,
    #[arg(long)]
    nip: Option<String>,
    #[arg(long)]
    vat_id: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    address_line2: Option<String>,
    #[arg(long)]
    country: Option<String>,
    /// PLN (default) or USD.
    #[arg(long)]
    invoice_currency: Option<String>,
    /// 23 (default), 8, 5 or np (reverse charge).
    #[arg(long)]
    vat: Option<String>,
    #[arg(long)]
    invoice_email: Option<String>,
    /// e.g. 1.3 (the default).
    #[arg(long)]
    markup: Option<String>,
    /// USD per month; the OpenRouter key is capped at limit / markup.
    #[arg(long)]
    monthly_limit_usd: Option<String>,
    /// A [[hosts]] name of the fleet file.
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    tracker_port: Option<u16>,
    #[arg(long)]
    chat_port: Option<u16>,
    /// Host address both ports are published on (default 127.0.0.1).
    #[arg(long)]
    publish_address: Option<String>,
    /// The chat app's image, already on the host (default: the Open WebUI image).
    #[arg(long)]
    chat_image: Option<String>,
    /// The tracker's image, already on the host (default mai-tracker:dev).
    #[arg(long)]
    tracker_image: Option<String>,
    /// Plain identity headers instead of Open WebUI's signed JWT.
    #[arg(long)]
    unsigned_identity: bool,
    /// OpenRouter's API base as the tracker container reaches it (default: the fleet
    /// file's [openrouter] base_url).
    #[arg(long)]
    tracker_openrouter_url: Option<String>,
    /// A Swarm placement constraint of the client's services (a `mode = "swarm"` host
    /// only), e.g. `node.hostname==worker-1`; repeat for more.
    #[arg(long)]
    placement: Vec<String>,
    #[arg(long)]
    json: bool,
}

fn usage(m: String) -> OpsError {
    LifecycleError::Usage(m).into()
}

/// Reads a snippet: the client's keys at the top, the deployment in `[deploy]`. Unknown
/// keys are errors (a typo must not silently drop a field).
pub fn parse_snippet(text: &str) -> Result<OnboardRequest, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let deploy = table.remove("deploy");
    let known = |v: serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let client_keys = known(serde_json::to_value(NewClient::default()).expect("plain struct"));
    let deploy_keys = known(serde_json::to_value(Deployment::default()).expect("plain struct"));
    for k in table.keys() {
        if !client_keys.contains(k) {
            return Err(format!(
                "unknown key `{k}`; a client has: {}, and a [deploy] table",
                client_keys.join(", ")
            ));
        }
    }
    let client: NewClient =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                format!(
                    "{} (decimals such as markup are strings: markup = \"1.3\")",
                    e.message()
                )
            })?;
    let deploy: Deployment = match deploy {
        None => Deployment::default(),
        Some(toml::Value::Table(t)) => {
            for k in t.keys() {
                if !deploy_keys.contains(k) {
                    return Err(format!(
                        "unknown key `deploy.{k}`; [deploy] has: {}",
                        deploy_keys.join(", ")
                    ));
                }
            }
            toml::Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| format!("[deploy]: {}", e.message()))?
        }
        Some(_) => return Err("`deploy` must be a table: [deploy]".into()),
    };
    Ok(OnboardRequest { client, deploy })
}

impl AddArgs {
    /// The request; the error is a message for [`usage`] (an `OpsError` is too large to
    /// return here).
    pub fn request(&self) -> Result<OnboardRequest, String> {
        let mut r = match &self.from {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                parse_snippet(&text).map_err(|m| format!("{}: {m}", p.display()))?
            }
            None => OnboardRequest::default(),
        };
        let c = &mut r.client;
        let set = |dst: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                *dst = v.clone();
            }
        };
        set(&mut c.id, &self.id);
        set(&mut c.legal_name, &self.legal_name);
        set(&mut c.address, &self.address);
        for (dst, v) in [
            (&mut c.nip, &self.nip),
            (&mut c.vat_id, &self.vat_id),
            (&mut c.address_line2, &self.address_line2),
            (&mut c.country, &self.country),
            (&mut c.invoice_currency, &self.invoice_currency),
            (&mut c.vat, &self.vat),
            (&mut c.invoice_email, &self.invoice_email),
            (&mut c.markup, &self.markup),
            (&mut c.monthly_limit_usd, &self.monthly_limit_usd),
        ] {
            if v.is_some() {
                *dst = v.clone();
            }
        }
        let d = &mut r.deploy;
        set(&mut d.host, &self.host);
        if let Some(p) = self.tracker_port {
            d.tracker_port = p;
        }
        if let Some(p) = self.chat_port {
            d.chat_port = p;
        }
        for (dst, v) in [
            (&mut d.publish_address, &self.publish_address),
            (&mut d.chat_image, &self.chat_image),
            (&mut d.tracker_image, &self.tracker_image),
            (&mut d.tracker_openrouter_url, &self.tracker_openrouter_url),
        ] {
            if v.is_some() {
                *dst = v.clone();
            }
        }
        if self.unsigned_identity {
            d.signed_identity = false;
        }
        if !self.placement.is_empty() {
            d.placement = self.placement.clone();
        }
        Ok(r)
    }
}

/// One progress line on stderr: `[  2.4 s] start_tracker  done  mai-acme-tracker (...)`.
fn print_progress(p: LifecycleProgress) {
    let state = match p.state {
        StepState::Started => "…",
        StepState::Done => "done",
        StepState::Warning => "WARNING",
        StepState::Failed => "FAILED",
        StepState::Skipped => "skipped",
    };
    if p.state == StepState::Started && p.detail.is_none() {
        return;
    }
    eprintln!(
        "[{:>5.1} s] {:<16} {:<7} {}",
        p.elapsed_ms as f64 / 1000.0,
        step_name(p.step),
        state,
        p.detail.unwrap_or_default().replace('\n', "\n            ")
    );
}

fn print_billing(b: &[BillingMonthCheck]) {
    // The same reason for every month (billing not configured): said once.
    if b.len() > 1
        && b.iter()
            .all(|m| m.row.is_none() && m.note.is_some() && m.note == b[0].note)
    {
        println!("  billing: {}", b[0].note.as_deref().unwrap_or("-"));
        return;
    }
    for m in b {
        match &m.row {
            Some(r) => println!(
                "  billing {}: {} — {} requests, ${} raw{}{}",
                m.month,
                serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                r.requests,
                r.raw_cost_usd.normalize(),
                r.invoice_number
                    .as_deref()
                    .map(|n| format!(", invoice {n}"))
                    .unwrap_or_default(),
                if r.missing.is_empty() {
                    String::new()
                } else {
                    format!(", missing: {}", r.missing.join(", "))
                }
            ),
            None => println!(
                "  billing {}: {}",
                m.month,
                m.note.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// Asks on the terminal; the error is a message for [`usage`].
fn confirm(question: &str) -> Result<bool, String> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(
            "stdin is not a terminal, so offboarding cannot be confirmed; pass --yes".into(),
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

pub async fn run(ops: &Ops, cmd: ClientsCmd) -> Result<u8, OpsError> {
    match cmd {
        ClientsCmd::Change(c) => crate::fleet_ops::clients(ops, c).await,
        ClientsCmd::Add(a) => {
            let req = a.request().map_err(usage)?;
            let r = ops.onboard(&req, &print_progress).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r).expect("serialize"));
            } else {
                println!(
                    "onboarded {} on host {} in {:.1} s",
                    r.client_id,
                    r.host,
                    r.elapsed_ms as f64 / 1000.0
                );
                println!("  chat app:  {} ({})", r.chat_url, r.chat_container);
                println!("  tracker:   {} ({})", r.tracker_url, r.tracker_container);
                println!(
                    "  key:       {} {}{}",
                    r.key_name,
                    r.key_label,
                    r.key_limit_usd
                        .map(|l| format!(", capped at ${l} per month"))
                        .unwrap_or_default()
                );
                println!("  probe:     {} metered", r.probe_generation_id);
                println!("  fleet:     {} (audit: {})", r.fleet_path, r.audit_log);
            }
            Ok(0)
        }
        ClientsCmd::Check { id, json } => {
            let c = ops.offboard_check(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c).expect("serialize"));
            } else {
                print_check(&c);
            }
            Ok(0)
        }
        ClientsCmd::Remove { id, yes, json } => {
            let c = ops.offboard_check(&id).await?;
            if !json {
                print_check(&c);
            }
            if !yes && !confirm(&format!("Offboard {id} ({}): disable its key, remove its containers and volumes (the ledger is archived first)?", c.legal_name)).map_err(usage)? {
                eprintln!("maictl: not offboarded");
                return Ok(1);
            }
            let r = ops.offboard(&id, &print_progress).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).expect("serialize"));
            } else {
                println!(
                    "offboarded {} on {} in {:.1} s",
                    r.client_id,
                    r.offboarded_on,
                    r.elapsed_ms as f64 / 1000.0
                );
                println!(
                    "  key disabled: {}",
                    if r.key_disabled { "yes" } else { "NO" }
                );
                if let Some(e) = &r.ledger_export {
                    println!(
                        "  ledger:   {e} ({} events, ${} raw)",
                        r.ledger_events, r.ledger_raw_cost_usd
                    );
                }
                if let Some(a) = &r.archive {
                    println!("  archive:  {a} ({} bytes)", r.archive_bytes);
                }
                println!(
                    "  removed:  {}",
                    [
                        r.removed_containers.clone(),
                        r.removed_networks.clone(),
                        r.removed_volumes.clone()
                    ]
                    .concat()
                    .join(", ")
                );
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
            }
            Ok(if r.warnings.is_empty() { 0 } else { 3 })
        }
    }
}

fn print_check(c: &mai_ops::ops::lifecycle::OffboardCheck) {
    println!("{} ({}) on host {}", c.client_id, c.legal_name, c.host);
    print_billing(&c.billing);
    println!(
        "  containers: {}",
        if c.containers.is_empty() {
            "-".into()
        } else {
            c.containers.join(", ")
        }
    );
    println!(
        "  networks:   {}",
        if c.networks.is_empty() {
            "-".into()
        } else {
            c.networks.join(", ")
        }
    );
    println!(
        "  volumes:    {}",
        if c.volumes.is_empty() {
            "-".into()
        } else {
            c.volumes.join(", ")
        }
    );
    println!("  key:        {}", c.key_label.as_deref().unwrap_or("-"));
    println!("  archive in: {}", c.archive_dir);
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_reads_like_a_fleet_entry_and_typos_are_refused() {
        let r = parse_snippet(
            r#"
id = "kowalski"
legal_name = "Kancelaria Kowalski sp.k."
nip = "701-000-21-39"
address = "ul. Marszałkowska 10"
markup = "1.25"

[deploy]
host = "local"
tracker_port = 18100
chat_port = 18101
signed_identity = false
"#,
        )
        .unwrap();
        assert_eq!(r.client.id, "kowalski");
        assert_eq!(r.client.markup.as_deref(), Some("1.25"));
        assert_eq!(r.deploy.tracker_port, 18100);
        assert!(!r.deploy.signed_identity);
        let e = parse_snippet("id = \"a\"\nnipp = \"1\"\n").unwrap_err();
        assert!(e.contains("unknown key `nipp`"), "{e}");
        let e = parse_snippet("markup = 1.3\n").unwrap_err();
        assert!(e.contains("strings"), "{e}");
        // Flags override the snippet.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "id = \"a\"\n[deploy]\nhost = \"local\"\n").unwrap();
        let a = AddArgs {
            from: Some(p),
            id: Some("b".into()),
            tracker_port: Some(9),
            ..Default::default()
        };
        let r = a.request().unwrap();
        assert_eq!(
            (
                r.client.id.as_str(),
                r.deploy.host.as_str(),
                r.deploy.tracker_port
            ),
            ("b", "local", 9)
        );
        assert!(r.deploy.signed_identity, "signed identity is the default");
    }
}
