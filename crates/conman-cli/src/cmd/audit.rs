//! `conman audit`: query an app's events; verify the whole hash chain.

use clap::Subcommand;
use conman_api::compose;
use conman_api::config::Settings;
use conman_api::dto::AuditEventDto;
use conman_core::ids::UserId;
use conman_core::ports::store::{AuditFilter, PageRequest};

use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::{self, SessionArgs};

/// `conman audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCmd {
    /// Events of an app, newest first.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Entity type.
        #[arg(long)]
        entity_type: Option<String>,
        /// Entity id.
        #[arg(long)]
        entity_id: Option<String>,
        /// Actor user id.
        #[arg(long)]
        actor: Option<String>,
        /// Page.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Walk the whole hash chain; exits non-zero if it is broken.
    Verify,
}

impl AuditCmd {
    pub(crate) async fn run(self, settings: &Settings, args: &SessionArgs, out: &Output) -> anyhow::Result<()> {
        match self {
            AuditCmd::Verify => {
                // Reads the store directly: verifying needs no identity.
                let conman = compose::open(settings)?.conman;
                let v = conman.verify_audit_chain().await.core()?;
                out.show(&v, |v| match &v.first_break {
                    None => format!("audit chain intact: {} events, head {}", v.records, v.head_hash),
                    Some(b) => format!("audit chain BROKEN at event {}: {}", b.seq, b.reason),
                });
                if !v.is_intact() {
                    std::process::exit(6);
                }
            }
            AuditCmd::Ls { app, entity_type, entity_id, actor, page, limit } => {
                let s = session::open(settings, args).await?;
                let app_id = resolve_app(&s, &app).await?;
                let filter = AuditFilter {
                    entity_type,
                    entity_id,
                    actor_id: actor.map(|a| a.parse::<UserId>()).transpose().core()?,
                    ..Default::default()
                };
                let page = PageRequest::new(Some(page), Some(limit)).core()?;
                let events = s.conman.query_audit(&s.actor, app_id, filter, page).await.core()?;
                let dtos: Vec<AuditEventDto> = events.items.into_iter().map(AuditEventDto::from).collect();
                out.show(&dtos, |l| {
                    l.iter()
                        .map(|e| format!("#{} {} {} {} {}", e.seq, e.occurred_at, e.action, e.entity_type, e.entity_id))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
        }
        Ok(())
    }
}
