//! Operator commands: bootstrap-admin, migrate, login, users, outbox.

use clap::Subcommand;
use conman_api::compose;
use conman_api::config::Settings;
use conman_api::dto::{SessionDto, UserDto};
use conman_core::ports::store::PageRequest;
use serde::Serialize;

use super::read_secret;
use crate::output::{CoreResult, Output};
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
