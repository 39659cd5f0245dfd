//! `conman`: the command-line interface for operators, scripts and agents.
//! It opens the same installation as the server (`--data-dir`,
//! `--database-url`) and calls the same core services, so every rule is
//! enforced exactly as over HTTP. Every command takes `--json`.

mod cmd;
mod output;
mod session;

use clap::{Parser, Subcommand};
use conman_api::config::{load_config_files, Settings};

/// Conman: Git-backed configuration management.
#[derive(Parser)]
#[command(name = "conman", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    session: session::SessionArgs,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the server operator (password from stdin or CONMAN_BOOTSTRAP_PASSWORD).
    BootstrapAdmin {
        /// Operator email.
        email: String,
        /// Display name.
        name: String,
    },
    /// Run the HTTP server (same as conman-server).
    Serve,
    /// Run only the job workers (`--workers N` slots) until SIGINT or SIGTERM.
    Worker,
    /// Apply store migrations and exit; with `--from URL --to URL`, copy a
    /// whole installation's metadata (audit chain verified) into an empty store.
    Migrate {
        /// Store to copy from (`sqlite://PATH` or `postgres://...`); stop every server and worker on it first.
        #[arg(long, requires = "to", value_name = "URL")]
        from: Option<String>,
        /// Empty store to copy into (`postgres://...` or `sqlite://PATH`).
        #[arg(long, requires = "from", value_name = "URL")]
        to: Option<String>,
    },
    /// Log in and print a session token (password from stdin or CONMAN_PASSWORD).
    Login {
        /// Email.
        email: String,
    },
    /// User administration (operators).
    #[command(subcommand)]
    User(cmd::admin::UserCmd),
    /// Apps and settings.
    #[command(subcommand)]
    App(cmd::apps::AppCmd),
    /// Members of an app.
    #[command(subcommand)]
    Member(cmd::apps::MemberCmd),
    /// Invites to an app.
    #[command(subcommand)]
    Invite(cmd::apps::InviteCmd),
    /// Workspaces and their files.
    #[command(subcommand)]
    Ws(cmd::ws::WsCmd),
    /// Changesets: create, list, show, edit, submit, review, queue, diff, comment.
    #[command(subcommand)]
    Cs(cmd::cs::CsCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCmd),
    /// Jobs: list, show, follow logs, cancel, start gate runs.
    #[command(subcommand)]
    Jobs(cmd::jobs::JobsCmd),
    /// Releases: new, add (select), reorder, assemble, publish, ls, show.
    #[command(subcommand)]
    Release(cmd::releases::ReleaseCmd),
    /// The release queue: queued changesets.
    Queue {
        /// App id or name.
        #[arg(long)]
        app: String,
    },
    /// Deploy a published release to an environment (or several at once).
    Deploy(cmd::deployments::DeployArgs),
    /// Promote the release on the stage before an environment to it.
    Promote(cmd::deployments::PromoteArgs),
    /// Roll an environment back to an earlier published release.
    Rollback(cmd::deployments::RollbackArgs),
    /// Approve a pending deployment exception (skip-stage, concurrent batch).
    Approve(cmd::deployments::ApproveArgs),
    /// Deployments: ls, show (--follow), reject, cancel.
    #[command(subcommand)]
    Deployments(cmd::deployments::DeploymentsCmd),
    /// Runtime profiles: create, list, show, edit, secrets, revisions, revert, reveal.
    #[command(subcommand)]
    Profile(cmd::profiles::ProfileCmd),
    /// Environments: list, status, drift check, freeze windows, replace the ordered list.
    #[command(subcommand)]
    Env(cmd::envs::EnvCmd),
    /// The secrets master key: rotation (operators).
    #[command(subcommand)]
    Keys(cmd::keys::KeysCmd),
    /// Messages waiting in the outbox (operators).
    Outbox {
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = load_config_files() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(()) => 0,
        Err(e) => output::report_error(&e),
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = output::Output { json: cli.json };
    match cli.command {
        Command::Serve => {
            init_tracing("info");
            conman_api::launch::run(cli.settings).await
        }
        Command::Worker => {
            init_tracing("info");
            conman_api::launch::run_worker(cli.settings).await
        }
        Command::Migrate { from: Some(from), to: Some(to) } => cmd::admin::copy_installation(&out, &from, &to).await,
        Command::Migrate { .. } => cmd::admin::migrate(&cli.settings, &out),
        Command::BootstrapAdmin { email, name } => cmd::admin::bootstrap(&cli.settings, &out, &email, &name).await,
        Command::Login { email } => cmd::admin::login(&cli.settings, &out, &email).await,
        Command::User(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::App(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Member(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Invite(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Ws(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Cs(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Audit(c) => c.run(&cli.settings, &cli.session, &out).await,
        Command::Jobs(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Release(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Queue { app } => {
            cmd::releases::queue(&session::open(&cli.settings, &cli.session).await?, &out, &app).await
        }
        Command::Deploy(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Promote(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Rollback(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Approve(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Deployments(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Profile(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Env(c) => c.run(&session::open(&cli.settings, &cli.session).await?, &out).await,
        Command::Keys(c) => c.run(&cli.settings, &cli.session, &out).await,
        Command::Outbox { limit } => {
            cmd::admin::outbox(&session::open(&cli.settings, &cli.session).await?, &out, limit).await
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONMAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}
