//! `conman-server`: parses configuration, opens the installation, repairs
//! what a crash may have left (workspace heads without audit), and serves
//! the HTTP API. `conman-server openapi` prints the OpenAPI document.

use clap::{Parser, Subcommand};
use conman_api::compose::{self, MasterKeySource};
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
    serve(cli.settings).await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONMAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let installation = compose::open(&settings)?;
    match &installation.master_key_source {
        MasterKeySource::Generated(path) => tracing::warn!(
            "generated a new secrets master key at {} — back it up, or set CONMAN_SECRETS_MASTER_KEY",
            path.display()
        ),
        MasterKeySource::File(path) => tracing::info!("secrets master key read from {}", path.display()),
        MasterKeySource::Environment => tracing::info!("secrets master key read from CONMAN_SECRETS_MASTER_KEY"),
    }
    let conman = installation.conman;
    let report = conman.reconcile_workspaces().await.map_err(|e| anyhow::anyhow!("reconcile: {e:?}"))?;
    if report.recovered > 0 {
        tracing::warn!(recovered = report.recovered, "audited workspace heads left unaudited by a crash");
    }
    let listener = tokio::net::TcpListener::bind(settings.listen_addr()).await?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %settings.data_dir.display(), "Conman listening on http://{addr}");
    let users = conman.ports().store.list_users(Default::default()).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if users.total == 0 {
        tracing::info!(
            "no users yet: create the first admin with\n  \
             cargo run --release --bin conman -- --data-dir {} bootstrap-admin you@example.com \"Your Name\"\n\
             (the password is read from stdin or CONMAN_BOOTSTRAP_PASSWORD)",
            settings.data_dir.display()
        );
    }
    conman_api::serve(listener, conman, shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
