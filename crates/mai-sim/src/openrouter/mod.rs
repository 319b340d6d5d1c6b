//! Placeholder: filled by the simulator work (issue 3).

/// Command-line flags of `mai-sim openrouter`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// Runs the simulator until Ctrl-C.
pub async fn run_cli(_args: CliArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
