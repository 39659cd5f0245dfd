//! Server configuration (SPEC §9), shared by `conman-server` and the
//! `conman` CLI so both open the same installation.
//!
//! Precedence, highest first: command-line flags, `CONMAN_*` environment
//! variables, a `.env` file in the working directory, `conman.toml` in the
//! working directory (or the file named by `CONMAN_CONFIG`), defaults.
//! Defaults let the server start with nothing set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use conman_core::services::{GateCommands, JobConfig};

use crate::runtime::{SandboxMode, WorkerOptions};

/// Every setting, as flags with `CONMAN_*` environment fallbacks.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Repositories, SQLite file and generated key.
    #[arg(long, env = "CONMAN_DATA_DIR", default_value = "./conman-data", global = true)]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` (default: `<data dir>/conman.db`) or `postgres://...`.
    #[arg(long, env = "CONMAN_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// HTTP listen address (`:0` or port 0 picks a free port).
    #[arg(long, env = "CONMAN_LISTEN", default_value = "127.0.0.1:3000", global = true)]
    pub listen: String,
    /// Master key for secrets (64 hex chars); generated into the data dir when absent.
    #[arg(long, env = "CONMAN_SECRETS_MASTER_KEY", hide_env_values = true, global = true)]
    pub secrets_master_key: Option<String>,
    /// Session token lifetime in hours.
    #[arg(long, env = "CONMAN_SESSION_TTL_HOURS", default_value_t = 24, global = true)]
    pub session_ttl_hours: u64,
    /// Invite lifetime in days.
    #[arg(long, env = "CONMAN_INVITE_TTL_DAYS", default_value_t = 7, global = true)]
    pub invite_ttl_days: u64,
    /// Server-wide submit gate command.
    #[arg(long, env = "CONMAN_GATE_SUBMIT_CMD", global = true)]
    pub gate_submit_cmd: Option<String>,
    /// Server-wide release gate command.
    #[arg(long, env = "CONMAN_GATE_RELEASE_CMD", global = true)]
    pub gate_release_cmd: Option<String>,
    /// Server-wide deploy gate command.
    #[arg(long, env = "CONMAN_GATE_DEPLOY_CMD", global = true)]
    pub gate_deploy_cmd: Option<String>,
    /// Server-wide deploy command, run after the deploy gate of every
    /// deployment (an app's per-environment command wins when per-app
    /// commands are allowed).
    #[arg(long, env = "CONMAN_DEPLOY_CMD", global = true)]
    pub deploy_cmd: Option<String>,
    /// Gate timeout in seconds.
    #[arg(long, env = "CONMAN_GATE_TIMEOUT_SECS", default_value_t = 600, global = true)]
    pub gate_timeout_secs: u64,
    /// Job worker slots in this process (`conman worker`, and the server
    /// next to HTTP); 0: the server runs no jobs.
    #[arg(long, env = "CONMAN_WORKERS", default_value_t = 2, global = true)]
    pub workers: usize,
    /// Job lease in seconds: workers renew at a third of it; a dead
    /// worker's job is reclaimed once it expires.
    #[arg(long, env = "CONMAN_JOB_LEASE_SECS", default_value_t = 30, global = true)]
    pub job_lease_secs: u64,
    /// How often idle workers look for jobs enqueued by other processes, in milliseconds.
    #[arg(long, env = "CONMAN_JOB_POLL_MS", default_value_t = 1000, global = true)]
    pub job_poll_ms: u64,
    /// On shutdown, how long running jobs may finish before they are
    /// released back to the queue, in seconds.
    #[arg(long, env = "CONMAN_JOB_SHUTDOWN_GRACE_SECS", default_value_t = 10, global = true)]
    pub job_shutdown_grace_secs: u64,
    /// Let `app_admin` override gate commands per app: an app admin then
    /// runs any shell command on this machine (inside the gate sandbox).
    #[arg(long, env = "CONMAN_ALLOW_APP_GATE_COMMANDS", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub allow_app_gate_commands: bool,
    /// How gate commands are isolated from the installation: `auto`
    /// (bubblewrap when installed, else `CONMAN_GATE_USER` when set, else
    /// gates are refused), `bwrap`, `user` or `none` (unisolated).
    #[arg(long, env = "CONMAN_GATE_SANDBOX", value_enum, default_value_t = SandboxMode::Auto, global = true)]
    pub gate_sandbox: SandboxMode,
    /// Unprivileged user (name or uid) gate commands run as without
    /// bubblewrap; the server must run as root.
    #[arg(long, env = "CONMAN_GATE_USER", global = true)]
    pub gate_user: Option<String>,
    /// Domain of generated temp-env URLs.
    #[arg(long, env = "CONMAN_TEMP_URL_DOMAIN", default_value = "localhost", global = true)]
    pub temp_url_domain: String,
    /// SMTP URL for mail delivery (outbox only when absent).
    #[arg(long, env = "CONMAN_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// Sender address of mails.
    #[arg(long, env = "CONMAN_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// Public base URL used in mails (default: `http://<listen>`).
    #[arg(long, env = "CONMAN_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
}

/// Which store a database URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A Postgres server.
    Postgres(String),
}

impl Settings {
    /// The store the settings select.
    pub fn database(&self) -> anyhow::Result<DatabaseTarget> {
        match self.database_url.as_deref() {
            None | Some("") => Ok(DatabaseTarget::Sqlite(self.data_dir.join("conman.db"))),
            Some(url) if url.starts_with("sqlite://") => {
                Ok(DatabaseTarget::Sqlite(PathBuf::from(url.trim_start_matches("sqlite://"))))
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DatabaseTarget::Postgres(url.to_owned()))
            }
            Some(_) => bail!("CONMAN_DATABASE_URL must start with sqlite:// or postgres://"),
        }
    }

    /// The service configuration of the core.
    pub fn core_config(&self) -> conman_core::services::Config {
        conman_core::services::Config {
            session_ttl: Duration::from_secs(self.session_ttl_hours.max(1) * 3600),
            invite_ttl: Duration::from_secs(self.invite_ttl_days.max(1) * 24 * 3600),
            allow_app_gate_commands: self.allow_app_gate_commands,
            public_url: self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)),
            gates: GateCommands {
                submit: command(&self.gate_submit_cmd),
                release: command(&self.gate_release_cmd),
                deploy: command(&self.gate_deploy_cmd),
                deploy_command: command(&self.deploy_cmd),
                timeout: Duration::from_secs(self.gate_timeout_secs.max(1)),
            },
            jobs: JobConfig { lease_ttl: Duration::from_secs(self.job_lease_secs.max(1)), ..JobConfig::default() },
            ..Default::default()
        }
    }

    /// Whether any gate command can run: a server-wide one is configured,
    /// or app admins may set their own.
    pub fn gate_commands_possible(&self) -> bool {
        self.allow_app_gate_commands
            || [&self.gate_submit_cmd, &self.gate_release_cmd, &self.gate_deploy_cmd, &self.deploy_cmd]
                .into_iter()
                .any(|c| command(c).is_some())
    }

    /// How this process runs jobs (`--workers`, `CONMAN_JOB_POLL_MS`,
    /// `CONMAN_JOB_SHUTDOWN_GRACE_SECS`).
    pub fn worker_options(&self) -> WorkerOptions {
        WorkerOptions {
            concurrency: self.workers,
            poll_interval: Duration::from_millis(self.job_poll_ms.max(10)),
            shutdown_grace: Duration::from_secs(self.job_shutdown_grace_secs),
            ..WorkerOptions::default()
        }
    }

    /// The listen address, accepting `:PORT` as shorthand for `127.0.0.1:PORT`.
    pub fn listen_addr(&self) -> String {
        if self.listen.starts_with(':') {
            format!("127.0.0.1{}", self.listen)
        } else {
            self.listen.clone()
        }
    }
}

/// A configured command; blank means none.
fn command(value: &Option<String>) -> Option<String> {
    value.clone().filter(|c| !c.trim().is_empty())
}

/// Loads `.env` and `conman.toml` into the process environment, without
/// overriding variables that are already set. Call before parsing flags.
pub fn load_config_files() -> anyhow::Result<()> {
    let mut vars = BTreeMap::new();
    let toml_path = std::env::var("CONMAN_CONFIG").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("conman.toml"));
    if toml_path.exists() {
        vars.extend(read_toml(&toml_path)?);
    }
    if Path::new(".env").exists() {
        // .env wins over conman.toml.
        vars.extend(read_dotenv(Path::new(".env"))?);
    }
    for (key, value) in vars {
        if std::env::var_os(&key).is_none() {
            // Called first thing in `main`, before any other thread exists.
            std::env::set_var(&key, &value);
        }
    }
    Ok(())
}

fn read_toml(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("{}: {key} must be a string, integer or boolean, not {}", path.display(), other.type_str()),
        };
        out.insert(format!("CONMAN_{}", key.to_uppercase()), value);
    }
    Ok(out)
}

fn read_dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", path.display(), n + 1);
        };
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_and_toml_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(&env, "# c\nexport CONMAN_LISTEN=\"127.0.0.1:4000\"\nCONMAN_X=1\n").unwrap();
        let vars = read_dotenv(&env).unwrap();
        assert_eq!(vars["CONMAN_LISTEN"], "127.0.0.1:4000");
        let toml_file = dir.path().join("conman.toml");
        std::fs::write(&toml_file, "data_dir = \"/srv/conman\"\nsession_ttl_hours = 12\n").unwrap();
        let vars = read_toml(&toml_file).unwrap();
        assert_eq!(vars["CONMAN_DATA_DIR"], "/srv/conman");
        assert_eq!(vars["CONMAN_SESSION_TTL_HOURS"], "12");
        std::fs::write(&toml_file, "x = [1]\n").unwrap();
        assert!(read_toml(&toml_file).is_err());
    }
}
