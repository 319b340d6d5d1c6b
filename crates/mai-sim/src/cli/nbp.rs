//! `mai-sim nbp`: its flags, and the server run until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{NaiveDateTime, NaiveTime};
use mai_sim::nbp::{Cutoffs, Fixture, NbpConfig, NbpSim, DEFAULT_SEED};

fn parse_now(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| format!("`{s}` is not a Warsaw wall-clock time like 2026-11-23T10:00:00"))
}

fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| format!("`{s}` is not a time like 11:45 (HH:MM, Warsaw)"))
}

/// Command-line flags of `mai-sim nbp`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Address to listen on, e.g. 127.0.0.1:8090 (port 0 picks a free one; the
    /// chosen base URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// TOML fixture with known rates (`[[rate]]` table/code/date/mid or bid+ask) and
    /// optional `[levels]` for the random walk; see the mai_sim::nbp::rates docs.
    #[arg(long, value_name = "FILE")]
    pub rates: Option<PathBuf>,
    /// Pin the simulated Europe/Warsaw wall clock, e.g. 2026-11-23T10:00:00
    /// (default: the real clock). A pinned clock does not advance.
    #[arg(long, value_parser = parse_now, value_name = "YYYY-MM-DDTHH:MM:SS")]
    pub now: Option<NaiveDateTime>,
    /// Warsaw time at which the day's table A appears (before it: today → 404,
    /// current → previous table).
    #[arg(long, value_parser = parse_hhmm, default_value = "11:45", value_name = "HH:MM")]
    pub a_cutoff: NaiveTime,
    /// Warsaw time at which the day's table C appears.
    #[arg(long, value_parser = parse_hhmm, default_value = "07:45", value_name = "HH:MM")]
    pub c_cutoff: NaiveTime,
    /// Seed of the deterministic random walk that fills every day the fixture does
    /// not cover.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

/// Runs the simulator until Ctrl-C.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    let fixture = match &args.rates {
        Some(path) => Fixture::load(path)?,
        None => Fixture::default(),
    };
    if !args.listen.ip().is_loopback() {
        tracing::warn!(addr = %args.listen, "NBP simulator listening on a non-loopback address");
    }
    let config = NbpConfig {
        seed: args.seed,
        fixture,
        now: args.now,
        cutoffs: Cutoffs {
            a: args.a_cutoff,
            c: args.c_cutoff,
        },
    };
    let sim = NbpSim::spawn_on(args.listen, config).await?;
    println!("NBP simulator listening on {}", sim.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("NBP simulator: waiting for Ctrl-C")?;
    sim.shutdown().await
}
