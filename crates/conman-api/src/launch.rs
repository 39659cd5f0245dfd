//! Starting the server: open the installation, refuse a secrets master key
//! other than the one the stored secrets are wrapped with, repair what a
//! crash may have left (pending ref intents, decision 0008), bind, serve until SIGINT or
//! SIGTERM, with the job workers (`--workers`) running beside the HTTP
//! server on the same shutdown signal. Shared by `conman-server` and
//! `conman serve`; [`run_worker`] is `conman worker` (workers only). Both
//! refuse to start with a gate sandbox that cannot be honoured, log an
//! error when gates are refused for want of a sandbox while gate commands
//! are configured, and warn when gates run unsandboxed.

use anyhow::bail;
use tokio::sync::watch;

use crate::compose::{self, MasterKeySource};
use crate::config::Settings;
use crate::runtime::{run_workers, GateSandbox};

/// Runs the server with `settings` until a shutdown signal.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let installation = compose::open(&settings)?;
    check_gate_sandbox(&settings, &installation)?;
    match &installation.master_key_source {
        MasterKeySource::Generated(path) => tracing::warn!(
            "generated a new secrets master key at {} — back it up, or set CONMAN_SECRETS_MASTER_KEY",
            path.display()
        ),
        MasterKeySource::File(path) => tracing::info!("secrets master key read from {}", path.display()),
        MasterKeySource::Environment => tracing::info!("secrets master key read from CONMAN_SECRETS_MASTER_KEY"),
    }
    let conman = installation.conman;
    let wakeup = installation.wakeup;
    // Wakes `wakeup` for jobs enqueued by other processes until we return.
    let _job_listener = installation.job_listener;
    check_secrets_key(&conman).await?;
    let report = conman.reconcile_intents().await.map_err(|e| anyhow::anyhow!("reconcile: {e:?}"))?;
    if report.repaired() > 0 {
        tracing::warn!(
            rolled_forward = report.rolled_forward,
            completed = report.completed,
            abandoned = report.abandoned,
            "settled ref intents left pending by a crash"
        );
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
    // One signal, two listeners: the HTTP server and the workers.
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let workers = (settings.workers > 0).then(|| {
        tokio::spawn(run_workers(conman.clone(), wakeup, settings.worker_options(), stop_requested(stopped.clone())))
    });
    crate::serve(listener, conman, stop_requested(stopped)).await?;
    if let Some(workers) = workers {
        workers.await?;
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Runs only the job workers of the installation until SIGINT or SIGTERM
/// (`conman worker`).
pub async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    if settings.workers == 0 {
        bail!("conman worker needs at least one slot: --workers N (or CONMAN_WORKERS) with N >= 1");
    }
    let installation = compose::open(&settings)?;
    check_gate_sandbox(&settings, &installation)?;
    check_secrets_key(&installation.conman).await?;
    tracing::info!(data_dir = %settings.data_dir.display(), slots = settings.workers, "Conman worker starting");
    let _job_listener = installation.job_listener;
    run_workers(installation.conman, installation.wakeup, settings.worker_options(), shutdown_signal()).await;
    Ok(())
}

/// Refuses to start with a gate sandbox that cannot be honoured; says how
/// gates will run.
fn check_gate_sandbox(settings: &Settings, installation: &compose::Installation) -> anyhow::Result<()> {
    if let Some(why) = &installation.gate_sandbox_error {
        bail!("refusing to start: {why}");
    }
    let sandbox = &installation.gate_sandbox;
    match sandbox {
        GateSandbox::Refused(_) if settings.gate_commands_possible() => tracing::error!("{}", sandbox.describe()),
        GateSandbox::Refused(_) => tracing::info!("{}", sandbox.describe()),
        GateSandbox::Unsandboxed => tracing::warn!("{}", sandbox.describe()),
        GateSandbox::Bubblewrap(_) | GateSandbox::User(_) => tracing::info!("{}", sandbox.describe()),
    }
    Ok(())
}

/// Refuses to start with a master key that cannot open the stored secrets
/// (and records the key on a fresh installation).
async fn check_secrets_key(conman: &conman_core::services::Conman) -> anyhow::Result<()> {
    conman.ensure_secrets_key().await.map_err(|e| match e {
        conman_core::Error::Conflict { message, .. } => anyhow::anyhow!("refusing to start: {message}"),
        other => anyhow::anyhow!("checking the secrets master key: {other:?}"),
    })
}

async fn stop_requested(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
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
