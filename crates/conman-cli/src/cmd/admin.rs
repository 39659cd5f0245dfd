//! Operator commands: bootstrap-admin, migrate (and copying an installation
//! between stores), login, users, outbox.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Subcommand;
use conman_api::compose;
use conman_api::config::Settings;
use conman_api::dto::{SessionDto, UserDto};
use conman_core::ports::store::PageRequest;
use conman_core::ports::Store;
use conman_core::services::copy_store;
use conman_core::Error;
use conman_store_pg::PgStore;
use conman_store_sqlite::SqliteStore;
use serde::Serialize;

use super::read_secret;
use crate::output::{CoreError, CoreResult, Output};
use crate::session::{request_context, Session};

/// `conman bootstrap-admin`.
pub(crate) async fn bootstrap(settings: &Settings, out: &Output, email: &str, name: &str) -> anyhow::Result<()> {
    let password = read_secret("CONMAN_BOOTSTRAP_PASSWORD", "Password for the operator")?;
    let conman = compose::open(settings)?.conman;
    let user = conman.bootstrap_admin(email, name, &password).await.core()?;
    out.show(&UserDto::from(&user), |u| {
        format!(
            "operator {} ({}) is ready; log in with `conman login {}` or POST /api/auth/login",
            u.email, u.id, u.email
        )
    });
    Ok(())
}

/// `conman migrate`.
pub(crate) fn migrate(settings: &Settings, out: &Output) -> anyhow::Result<()> {
    compose::open(settings)?;
    let db = settings.database()?;
    out.show(&serde_json::json!({ "migrated": true, "database": format!("{db:?}") }), |_| {
        format!("store is migrated ({db:?})")
    });
    Ok(())
}

/// `conman migrate --from URL --to URL`: copies every row and the audit
/// chain of one store into another, empty one, and verifies the copy.
pub(crate) async fn copy_installation(out: &Output, from: &str, to: &str) -> anyhow::Result<()> {
    let source = open_store(from, true).await.with_context(|| format!("opening --from {}", redact(from)))?;
    let target = open_store(to, false).await.with_context(|| format!("opening --to {}", redact(to)))?;
    let mut progress = Progress::on_terminal();
    let copied = copy_store(source.as_ref(), target.as_ref(), &mut |stage, n| progress.show(stage, n)).await;
    progress.finish();
    let report = copied.map_err(|e| match e {
        // The operator runs this on their own machine: show the cause.
        Error::Internal(cause) => anyhow::anyhow!("internal: {cause}"),
        e => anyhow::Error::new(CoreError(e)),
    })?;
    let (from, to) = (redact(from), redact(to));
    out.show(&report, |r| {
        let mut text = format!(
            "copied {from} into {to}\n  \
             users {}, credentials {}, apps {}, memberships {}, invites {}, workspaces {}, outbox messages {}\n  \
             jobs {} ({} running: their leases expire and workers reclaim them), job log lines {}\n  \
             audit chain: {} records, verified on the target, head {}",
            r.users,
            r.credentials,
            r.apps,
            r.memberships,
            r.invites,
            r.workspaces,
            r.outbox,
            r.jobs,
            r.running_jobs,
            r.job_log_lines,
            r.audit_records,
            r.audit_head,
        );
        for skipped in &r.not_copied {
            text.push_str(&format!("\n  not copied: {skipped}"));
        }
        text.push_str(&format!(
            "\nnext: set CONMAN_DATABASE_URL to {to} and keep the same data directory \
             (repositories and master key live there, not in the store)"
        ));
        text
    });
    Ok(())
}

/// Opens the store a `sqlite://PATH` or `postgres://` URL names (and
/// migrates it). A source SQLite file must exist: opening creates one.
async fn open_store(url: &str, must_exist: bool) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path);
        if must_exist && !path.is_file() {
            anyhow::bail!("no SQLite database at {}", path.display());
        }
        return Ok(Arc::new(SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{e:?}"))?));
    }
    if conman_store_pg::URL_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(Arc::new(PgStore::connect(url).await.map_err(|e| anyhow::anyhow!("{e:?}"))?));
    }
    anyhow::bail!("a store URL starts with sqlite:// or postgres://")
}

/// `url` without the password of its `user:password@` part.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        _ => url.to_owned(),
    }
}

/// Progress of a long copy on stderr: one line rewritten at most every
/// 100 ms (and at each new stage), only on a terminal.
struct Progress {
    terminal: bool,
    stage: String,
    shown: Option<Instant>,
}

impl Progress {
    fn on_terminal() -> Self {
        use std::io::IsTerminal as _;
        Progress { terminal: std::io::stderr().is_terminal(), stage: String::new(), shown: None }
    }

    fn show(&mut self, stage: &str, count: u64) {
        if !self.terminal {
            return;
        }
        let due = self.shown.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if stage != self.stage || due {
            eprint!("\r  {stage}: {count}\x1b[K");
            self.stage = stage.to_owned();
            self.shown = Some(Instant::now());
        }
    }

    fn finish(&self) {
        if self.terminal && !self.stage.is_empty() {
            eprintln!();
        }
    }
}

/// `conman login`.
pub(crate) async fn login(settings: &Settings, out: &Output, email: &str) -> anyhow::Result<()> {
    let password = read_secret("CONMAN_PASSWORD", "Password")?;
    let conman = compose::open(settings)?.conman;
    let session = SessionDto::from(conman.login(email, &password, request_context()).await.core()?);
    out.show(&session, |s| s.token.clone());
    Ok(())
}

/// `conman outbox`.
pub(crate) async fn outbox(s: &Session, out: &Output, limit: u32) -> anyhow::Result<()> {
    let page = PageRequest::new(Some(1), Some(limit)).core()?;
    let messages = s.conman.list_outbox(&s.actor, page).await.core()?;
    out.show(&messages.items, |items| {
        items
            .iter()
            .map(|m| {
                format!(
                    "── {} to {} [{}] {}\n{}\n",
                    conman_core::domain::format_timestamp(&m.created_at),
                    m.recipient,
                    m.kind,
                    m.subject,
                    m.body
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `conman user ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCmd {
    /// Create a user (password from stdin or CONMAN_USER_PASSWORD).
    Create {
        /// Email.
        email: String,
        /// Display name.
        name: String,
        /// Make them a server operator.
        #[arg(long)]
        operator: bool,
    },
    /// List users.
    Ls {
        /// Page.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Serialize)]
struct UserList {
    users: Vec<UserDto>,
    total: u64,
}

impl UserCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        match self {
            UserCmd::Create { email, name, operator } => {
                let password = read_secret("CONMAN_USER_PASSWORD", "Password for the new user")?;
                let user = s.conman.create_user(&s.actor, &email, &name, &password, operator).await.core()?;
                out.show(&UserDto::from(&user), |u| format!("created user {} ({})", u.email, u.id));
            }
            UserCmd::Ls { page, limit } => {
                let page = PageRequest::new(Some(page), Some(limit)).core()?;
                let users = s.conman.list_users(&s.actor, page).await.core()?;
                let list = UserList { users: users.items.iter().map(UserDto::from).collect(), total: users.total };
                out.show(&list, |l| {
                    l.users
                        .iter()
                        .map(|u| {
                            format!(
                                "{}  {}  {}{}",
                                u.id,
                                u.email,
                                u.name,
                                if u.is_operator { "  (operator)" } else { "" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn store_urls_are_shown_without_their_password() {
        let cases = [
            ("postgres://conman:s3cret@db:5432/conman", "postgres://conman:***@db:5432/conman"),
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/test"),
            ("postgresql://db/conman?sslmode=require", "postgresql://db/conman?sslmode=require"),
            ("sqlite:///var/lib/conman/conman.db", "sqlite:///var/lib/conman/conman.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }
}
