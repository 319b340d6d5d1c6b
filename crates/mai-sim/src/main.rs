//! `mai-sim openrouter …` and `mai-sim nbp …`: the simulators as standalone servers.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mai-sim",
    version,
    about = "Local simulators of the OpenRouter and NBP APIs"
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
        }
    })
}
