//! `mai-sim ksef`: its flags, and the server run until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use mai_sim::ksef::{FaultRule, KsefConfig, KsefSim, Timing, TokenSpec};

const AFTER_HELP: &str = "\
TOKENS (--token, repeatable; POST /__sim/tokens at run time):
  NIP=TOKEN                          InvoiceWrite + InvoiceRead for that NIP context
  NIP=TOKEN=InvoiceRead,Introspection  chosen permissions (no InvoiceWrite: 403 on sessions)
  POST /__sim/tokens {\"nip\":\"5265877635\",\"token\":\"...\",\"permissions\":[\"InvoiceWrite\"],\"revoked\":false}

FAULTS (header X-Sim-Fault on any request, --fault, or POST /__sim/faults):
  ';'-separated items:
    latency=MS             wait before answering (\"100 ms per call\": --fault latency=100)
    status=429|5xx         answer it; 429 with Retry-After and the contract's status body
    retry_after=S          with status: Retry-After seconds (429 defaults to 1)
    slow=MS                invoice send: the invoice stays at 150 MS longer
    reject=430|435|440|450 invoice send: the invoice ends in that status
    expire_session         a request naming a session: the session expires now
  POST /__sim/faults {\"fault\":\"status=429;retry_after=3\",\"endpoint\":\"send_invoice\",\"count\":2}
    endpoint: any | public_keys | challenge | auth | open_session | send_invoice |
              close_session | status | upo; count omitted = every time. DELETE clears.

OTHER CONTROLS (not part of KSeF):
  GET  /__sim/accepted      invoices accepted (seller NIP, P_2, RodzajFaktury, KSeF number, XML)
  GET  /__sim/invoices      every invoice sent, with its status now
  POST /__sim/clock         {\"now\":\"2026-03-01T10:00:00Z\",\"frozen\":false} | {\"advance_ms\":60000} | {}
  POST /__sim/sessions/REF/expire
";

/// Command-line flags of `mai-sim ksef`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct CliArgs {
    /// Address to listen on (port 0 = any free port); the base URL, ending in /v2, is
    /// printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// A KSeF token to accept, `NIP=TOKEN` (repeatable; format below).
    #[arg(long = "token", value_name = "NIP=TOKEN")]
    pub tokens: Vec<String>,
    /// Seed of the RSA keys, reference numbers and KSeF numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Serve HTTPS with a certificate made up at start, and write the CA that signed it
    /// to this file (PEM) for clients to trust.
    #[arg(long, value_name = "CA_PEM_OUT")]
    pub tls_ca_out: Option<PathBuf>,
    /// Skip the FA(3) XSD check (which needs `xmllint`, Debian libxml2-utils).
    #[arg(long)]
    pub no_schema_validation: bool,
    /// No processing delays: auth, invoices and session receipts are final at once.
    #[arg(long)]
    pub instant: bool,
    /// How long a sent invoice shows 100, then 150, in ms (default 100 and 200).
    #[arg(long, num_args = 2, value_names = ["ACCEPTED_MS", "PROCESSING_MS"])]
    pub invoice_ms: Option<Vec<u64>>,
    /// Access-token lifetime in seconds (default 900).
    #[arg(long)]
    pub access_token_secs: Option<u64>,
    /// A standing fault for every request (grammar below); repeatable.
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<String>,
}

impl CliArgs {
    /// The configuration these flags describe.
    pub fn to_config(&self) -> anyhow::Result<KsefConfig> {
        let mut timing = if self.instant {
            Timing::instant()
        } else {
            Timing::default()
        };
        if let Some(v) = &self.invoice_ms {
            timing.invoice_accepted = Duration::from_millis(v[0]);
            timing.invoice_processing = Duration::from_millis(v[1]);
        }
        if let Some(s) = self.access_token_secs {
            timing.access_token_ttl = Duration::from_secs(s);
        }
        let tokens = self
            .tokens
            .iter()
            .map(|t| t.parse::<TokenSpec>().map_err(anyhow::Error::new))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("--token")?;
        let faults = self
            .fault
            .iter()
            .map(|f| FaultRule::parse(f).map_err(anyhow::Error::new))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("--fault")?;
        Ok(KsefConfig {
            seed: self.seed,
            tokens,
            timing,
            validate_schema: !self.no_schema_validation,
            faults,
            ..KsefConfig::default()
        })
    }
}

/// Ctrl-C, or SIGTERM (`docker stop`).
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let tokens = config.tokens.len();
    let sim = KsefSim::start(args.listen, config, args.tls_ca_out.is_some()).await?;
    if let (Some(path), Some(pem)) = (&args.tls_ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).with_context(|| {
            format!(
                "cannot write the test CA to {} (--tls-ca-out); pick a writable path",
                path.display()
            )
        })?;
    }
    println!("{}", sim.base_url());
    tracing::info!(base_url = %sim.base_url(), tokens, "KSeF simulator ready");
    wait_for_stop_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: CliArgs,
    }

    #[test]
    fn flags_become_a_config() {
        let w = Wrap::parse_from([
            "x",
            "--token",
            "5265877635=abc",
            "--token",
            "1111111111=def=InvoiceRead",
            "--fault",
            "latency=100",
            "--invoice-ms",
            "5",
            "7",
        ]);
        let c = w.args.to_config().unwrap();
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.faults.len(), 1);
        assert_eq!(c.timing.invoice_processing, Duration::from_millis(7));
        let bad = Wrap::parse_from(["x", "--token", "123=abc"])
            .args
            .to_config();
        assert!(format!("{:#}", bad.unwrap_err()).contains("10 digits"));
    }
}
