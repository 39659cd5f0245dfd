//! `conman-server`: parses configuration, opens the installation, repairs
//! what a crash may have left (workspace heads without audit), and serves
//! the HTTP API. `conman-server openapi` prints the OpenAPI document.

use clap::{Parser, Subcommand};
use conman_api::config::{load_config_files, Settings};

#[derive(Parser)]
#[command(name = "conman-server", version, about = "Conman HTTP server")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the OpenAPI document and exit.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    load_config_files()?;
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        return match out.write_all(conman_api::openapi::document_json().as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }
    init_tracing();
    conman_api::launch::run(cli.settings).await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONMAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}
