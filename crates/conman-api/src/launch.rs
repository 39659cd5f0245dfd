//! Starting the server: open the installation, repair what a crash may
//! have left (workspace heads without audit), bind, serve until SIGINT or
//! SIGTERM. Shared by `conman-server` and `conman serve`.

use crate::compose::{self, MasterKeySource};
use crate::config::Settings;

/// Runs the server with `settings` until a shutdown signal.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
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
    crate::serve(listener, conman, shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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
