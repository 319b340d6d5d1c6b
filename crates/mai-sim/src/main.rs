//! `mai-sim openrouter …`, `mai-sim nbp …` and `mai-sim ksef …`: the simulators as standalone servers.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mai-sim",
    version,
    about = "Local simulators of the OpenRouter, NBP and KSeF 2.0 APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a simulated OpenRouter API (chat completions, generation, key, activity, keys).
    Openrouter(cli::openrouter::CliArgs),
    /// Serve a simulated NBP Web API (exchange-rate tables A and C).
    Nbp(cli::nbp::CliArgs),
    /// Serve a simulated KSeF 2.0 API (Poland's e-invoicing: auth, online sessions, UPO).
    Ksef(cli::ksef::CliArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        match cli.command {
            Command::Openrouter(args) => cli::openrouter::run_cli(args).await,
            Command::Nbp(args) => cli::nbp::run_cli(args).await,
            Command::Ksef(args) => cli::ksef::run_cli(args).await,
        }
    })
}
