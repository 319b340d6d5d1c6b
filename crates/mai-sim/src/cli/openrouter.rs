//! `mai-sim openrouter`: its flags, and the server run until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use mai_sim::openrouter::{
    is_well_formed_key, CreditsAuth, FaultRule, OpenRouterSim, SimConfig, TlsOptions,
    UsageChunkShape, NEVER,
};
use rust_decimal::Decimal;

const AFTER_HELP: &str = "\
KEYS FILE (--keys, TOML; only these keys are accepted):
  management_key = \"sk-or-v1-<64 hex>\"        # optional
  [[key]]
  key = \"sk-or-v1-<64 hex>\"                   # required
  name = \"client-acme\"                        # default: the masked key
  limit = \"100.00\"                            # USD cap as a string (or integer); omit = no cap
  limit_reset = \"monthly\"                     # daily | weekly | monthly; omit = never resets
  include_byok_in_limit = false
  disabled = false                             # disabled keys get 401
  management = false                           # management key: admin endpoints, no completions
  byok = false                                 # requests are BYOK: cost = fee only
  expires_at = \"2027-01-01T00:00:00Z\"         # RFC 3339; expired keys get 401

PRICES FILE (--prices, TOML; replaces the built-in table, served by /models):
  [[model]]
  id = \"openai/gpt-4o-mini\"
  provider = \"OpenAI\"
  prompt = \"0.00000015\"                       # USD per token, as a string
  completion = \"0.0000006\"
  # optional: canonical_slug, name, context_length, request, input_cache_read,
  #           input_cache_write, discount (\"0.01\"), reasoning (true/false)

FAULTS (header X-Sim-Fault on any request, --fault, or POST /__sim/faults):
  ';'-separated items:
    latency=MS            wait before answering
    status=CODE           error body of spec section 7 before any byte (402, 408, 429, 500, 502, 503, 524, 529...)
    retry_after=S         with status: Retry-After header (and metadata on 429)
    free_tier             with status=429: free-model limiter variant, X-RateLimit-* headers, reset in epoch ms
    message=TEXT          replace the error message
    cut | cut_after=N     stream: abrupt disconnect after N content chunks, no usage chunk, no [DONE]
    mid_error=CODE        stream: error chunk with finish_reason \"error\" after after=N content chunks
    with_usage            with mid_error: the error chunk carries usage, then [DONE]
    string_code           with mid_error: code \"server_error\" instead of an integer
    malformed             unparsable JSON body, or one broken data: line in a stream
    drip=MS               stream one token per chunk, MS apart
    no_cost               usage without cost (as OpenAI's and Anthropic's own shapes)
    no_id                 no X-Generation-Id header (and no id in an /embeddings body)
  Inference endpoints: /chat/completions, /completions, /responses, /messages, /embeddings
  (rules with endpoint \"chat\" apply to all of them; malformed and mid_error: chat only).
  e.g. 'status=503;retry_after=2', 'mid_error=502;after=3;with_usage', 'status=429;free_tier'
  POST /__sim/faults body: {\"fault\":\"status=500\",\"endpoint\":\"chat|generation|key|any\",
    \"key\":\"sk-or-v1-...\" or \"key_hash\":\"...\",\"rate\":0.1,\"count\":5}; DELETE /__sim/faults clears.

OTHER TEST HOOKS:
  X-Sim-Usage: prompt=1200;completion=250;reasoning=0;cached=0;cache_write=0   exact token counts
  GET /__sim/truth      every generation served and per-key totals (money as decimal strings)
  POST /__sim/clock     {\"now\":\"2026-01-05T10:00:00Z\",\"frozen\":false} or {\"now\":null}
";

/// Command-line flags of `mai-sim openrouter`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct CliArgs {
    /// Address to listen on (port 0 = any free port; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed of ids, token counts and generated keys (same seed + same requests = same output).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// TOML file of the only keys accepted (format below). Without it any well-formed key
    /// (`sk-or-v1-` + 64 lowercase hex) is accepted and registered on first use.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// No delays, no keep-alive comments, generation stats ready at once (load tests).
    /// Explicit delay flags still override.
    #[arg(long)]
    pub fast: bool,
    /// Serve HTTPS (ALPN h2 and http/1.1, as openrouter.ai) with a certificate made up at
    /// start, and write the CA that signed it to this file (PEM) for clients to trust.
    #[arg(long, value_name = "CA_PEM_OUT")]
    pub tls_ca_out: Option<PathBuf>,
    /// With --tls-ca-out: SETTINGS_MAX_CONCURRENT_STREAMS per HTTP/2 connection.
    #[arg(long, default_value_t = mai_sim::tls::DEFAULT_H2_MAX_STREAMS, requires = "tls_ca_out")]
    pub h2_max_streams: u32,
    #[command(flatten)]
    pub tuning: Box<TuningArgs>,
}

/// The rarer flags of `mai-sim openrouter` (boxed to keep the CLI enum small).
#[derive(Debug, clap::Args)]
pub struct TuningArgs {
    /// TOML price table replacing the built-in one (format below).
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// A management key (admin endpoints: /keys, /activity, ...).
    #[arg(long, env = "MAI_SIM_MANAGEMENT_KEY")]
    pub management_key: Option<String>,
    /// How long GET /generation answers 404 after a generation completes: milliseconds,
    /// or `never`. Default 300.
    #[arg(long, value_name = "MS|never")]
    pub generation_ready_delay: Option<String>,
    /// `: OPENROUTER PROCESSING` comment lines before the first data event. Default 2.
    #[arg(long)]
    pub keepalive_leading: Option<u32>,
    /// Pause after each leading comment, in ms. Default 5.
    #[arg(long)]
    pub keepalive_interval_ms: Option<u64>,
    /// Also one comment after every N data events (0 = never). Default 0.
    #[arg(long)]
    pub keepalive_every: Option<u32>,
    /// Delay before the first token / the non-streamed reply, in ms. Default 5.
    #[arg(long)]
    pub first_token_delay_ms: Option<u64>,
    /// Delay between stream chunks, in ms. Default 1.
    #[arg(long)]
    pub chunk_interval_ms: Option<u64>,
    /// Shape of the stream's usage chunk: `captured` (one choice, empty delta) or
    /// `empty-choices` (`choices: []`, as the docs say).
    #[arg(long, value_enum, default_value = "captured")]
    pub usage_chunk: UsageChunkArg,
    /// Write money below this value in exponent form (e.g. `4.25e-6`); default: never.
    #[arg(long, value_name = "USD")]
    pub exponent_below: Option<String>,
    /// Credits bought by the account, USD (balance = credits - usage; 402 below zero).
    #[arg(long, default_value = "1000")]
    pub credits: String,
    /// Who may call GET /credits.
    #[arg(long, value_enum, default_value = "any")]
    pub credits_auth: CreditsAuthArg,
    /// OpenRouter's BYOK fee as a fraction of the upstream cost.
    #[arg(long, default_value = "0.05")]
    pub byok_fee: String,
    /// Smallest completion (tokens) when the request sets no max_tokens.
    #[arg(long, default_value_t = 16)]
    pub completion_min: u32,
    /// Largest completion (tokens) when the request sets no max_tokens.
    #[arg(long, default_value_t = 96)]
    pub completion_max: u32,
    /// Bill the whole completion when a client aborts a stream (providers without cancellation).
    #[arg(long)]
    pub cancel_bills_full: bool,
    /// Free-model limiter: requests per minute per account.
    #[arg(long, default_value_t = 20)]
    pub free_per_minute: u32,
    /// Free-model limiter: requests per UTC day (default 50 below 10 USD of credits, else 1000).
    #[arg(long)]
    pub free_per_day: Option<u32>,
    /// A standing fault for chat requests (grammar below); repeatable.
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<String>,
    /// Probability with which each --fault fires per request (0..1).
    #[arg(long, default_value_t = 1.0)]
    pub fault_rate: f64,
}

fn decimal_arg(s: &str, flag: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .with_context(|| format!("--{flag} `{s}` is not a decimal number, e.g. 0.05"))
}

impl CliArgs {
    /// The configuration these flags describe.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let mut c = if self.fast {
            SimConfig::fast()
        } else {
            SimConfig::default()
        };
        c.seed = self.seed;
        let t = &self.tuning;
        if let Some(p) = &self.keys {
            c.load_keys_file(p)?;
        }
        if let Some(p) = &t.prices {
            c.load_prices_file(p)?;
        }
        if let Some(m) = &t.management_key {
            anyhow::ensure!(
                is_well_formed_key(m),
                "--management-key must be sk-or-v1- followed by 64 lowercase hex"
            );
            c.management_key = Some(m.clone());
        }
        if let Some(d) = &t.generation_ready_delay {
            c.generation_ready_delay = if d == "never" {
                NEVER
            } else {
                Duration::from_millis(d.parse().with_context(|| {
                    format!("--generation-ready-delay `{d}`: give milliseconds or `never`")
                })?)
            };
        }
        if let Some(n) = t.keepalive_leading {
            c.keepalive.leading = n;
        }
        if let Some(n) = t.keepalive_interval_ms {
            c.keepalive.interval = Duration::from_millis(n);
        }
        if let Some(n) = t.keepalive_every {
            c.keepalive.every_events = n;
        }
        if let Some(n) = t.first_token_delay_ms {
            c.first_token_delay = Duration::from_millis(n);
        }
        if let Some(n) = t.chunk_interval_ms {
            c.chunk_interval = Duration::from_millis(n);
        }
        c.usage_chunk = t.usage_chunk.into();
        c.exponent_below = t
            .exponent_below
            .as_deref()
            .map(|s| decimal_arg(s, "exponent-below"))
            .transpose()?;
        c.total_credits = decimal_arg(&t.credits, "credits")?;
        c.credits_auth = t.credits_auth.into();
        c.byok_fee_rate = decimal_arg(&t.byok_fee, "byok-fee")?;
        c.completion_tokens = (t.completion_min, t.completion_max);
        c.cancel_bills_full = t.cancel_bills_full;
        c.free_requests_per_minute = t.free_per_minute;
        c.free_requests_per_day = t.free_per_day;
        anyhow::ensure!(
            (0.0..=1.0).contains(&t.fault_rate),
            "--fault-rate must be between 0 and 1"
        );
        for f in &t.fault {
            let mut rule = FaultRule::parse(f)?;
            rule.rate = t.fault_rate;
            c.faults.push(rule);
        }
        Ok(c)
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
    let tls = args.tls_ca_out.as_ref().map(|_| TlsOptions {
        h2_max_streams: args.h2_max_streams,
    });
    let sim = OpenRouterSim::start(args.listen, config, tls).await?;
    if let (Some(path), Some(pem)) = (&args.tls_ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).with_context(|| {
            format!(
                "cannot write the test CA to {} (--tls-ca-out); pick a writable path",
                path.display()
            )
        })?;
    }
    println!("{}", sim.base_url());
    tracing::info!(base_url = %sim.base_url(), "OpenRouter simulator ready");
    wait_for_stop_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

/// Shape of the final usage chunk of a stream (spec 1.4).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UsageChunkArg {
    /// As captured live: one choice with an empty delta and `finish_reason: null`.
    Captured,
    /// As the docs say: `choices: []`.
    EmptyChoices,
}

impl From<UsageChunkArg> for UsageChunkShape {
    fn from(a: UsageChunkArg) -> UsageChunkShape {
        match a {
            UsageChunkArg::Captured => UsageChunkShape::Captured,
            UsageChunkArg::EmptyChoices => UsageChunkShape::EmptyChoices,
        }
    }
}

/// Who may call `GET /credits` (spec 4: the docs and live behaviour disagree).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CreditsAuthArg {
    /// Inference and management keys.
    Any,
    /// Management keys only; others get 403.
    ManagementOnly,
}

impl From<CreditsAuthArg> for CreditsAuth {
    fn from(a: CreditsAuthArg) -> CreditsAuth {
        match a {
            CreditsAuthArg::Any => CreditsAuth::Any,
            CreditsAuthArg::ManagementOnly => CreditsAuth::ManagementOnly,
        }
    }
}
