//! `conman app`, `conman member`, `conman invite`.

use clap::Subcommand;
use conman_api::dto::{AppDto, InviteDto, IssuedInviteDto, MemberDto, MembershipChangeDto, SettingsPatchDto};
use conman_core::ids::{AppId, InviteId, UserId};
use conman_core::ports::store::PageRequest;
use conman_core::rbac::Role;
use conman_core::services::NewApp;

use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::Session;

/// `conman app ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AppCmd {
    /// Create an app (operators): a new repository, or an import.
    Create {
        /// Name (`[a-z0-9-]`).
        name: String,
        /// Integration branch.
        #[arg(long)]
        branch: Option<String>,
        /// Absolute path or URL of a repository to import.
        #[arg(long)]
        import_from: Option<String>,
    },
    /// List your apps.
    Ls,
    /// Show an app with its settings.
    Show {
        /// App id or name.
        app: String,
    },
    /// Change settings with a JSON patch, e.g. '{"required_approvals": 2}'.
    Settings {
        /// App id or name.
        app: String,
        /// JSON object of settings to change.
        patch: String,
    },
    /// App administrators: recovery by a server operator.
    #[command(subcommand)]
    Admin(AdminCmd),
}

/// `conman app admin ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCmd {
    /// Make yourself (a server operator) app_admin of an app, e.g. one left
    /// without admins. Audited as member.operator_granted.
    Add {
        /// App id or name (any app of the installation).
        app: String,
    },
}

impl AppCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        match self {
            AppCmd::Create { name, branch, import_from } => {
                let input = NewApp { name, integration_branch: branch, import_from };
                let app = s.conman.create_app(&s.actor, input).await.core()?;
                out.show(&AppDto::new(&app, Some(Role::AppAdmin)), |a| format!("created app {} ({})", a.name, a.id));
            }
            AppCmd::Ls => {
                let apps = s.conman.list_apps(&s.actor, PageRequest { page: 1, limit: 100 }).await.core()?;
                let dtos: Vec<AppDto> = apps.items.iter().map(|a| AppDto::new(&a.app, Some(a.role))).collect();
                out.show(&dtos, |l| l.iter().map(|a| format!("{}  {}", a.id, a.name)).collect::<Vec<_>>().join("\n"));
            }
            AppCmd::Show { app } => {
                let scope = s.conman.get_app(&s.actor, resolve_app(s, &app).await?).await.core()?;
                let dto = AppDto::new(&scope.app, Some(scope.role));
                out.show(&dto, |a| serde_json::to_string_pretty(a).unwrap_or_default());
            }
            AppCmd::Admin(AdminCmd::Add { app }) => {
                let app_id = match app.parse::<AppId>() {
                    Ok(id) => id,
                    Err(_) => s.conman.operator_app_by_name(&s.actor, &app).await.core()?.id,
                };
                let m = s.conman.grant_operator_admin(&s.actor, app_id).await.core()?;
                let dto = MembershipChangeDto::from(&m);
                out.show(&dto, |d| format!("you are app_admin of {}", d.app_id));
            }
            AppCmd::Settings { app, patch } => {
                let patch: SettingsPatchDto = conman_api::dto::parse_body(patch.as_bytes()).core()?;
                let updated =
                    s.conman.update_settings(&s.actor, resolve_app(s, &app).await?, patch.into()).await.core()?;
                out.show(&AppDto::new(&updated, None), |a| {
                    serde_json::to_string_pretty(&a.settings).unwrap_or_default()
                });
            }
        }
        Ok(())
    }
}

/// `conman member ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MemberCmd {
    /// List members.
    Ls {
        /// App id or name.
        app: String,
    },
    /// Add a member or change their role.
    Add {
        /// App id or name.
        app: String,
        /// User id or email.
        user: String,
        /// user, reviewer, config_manager or app_admin.
        role: String,
    },
    /// Remove a member.
    Rm {
        /// App id or name.
        app: String,
        /// User id or email.
        user: String,
    },
}

/// Resolves a user given by id or by email.
pub(crate) async fn resolve_user(s: &Session, user: &str) -> anyhow::Result<UserId> {
    if let Ok(id) = user.parse::<UserId>() {
        return Ok(id);
    }
    Ok(s.conman.find_user_by_email(&s.actor, user).await.core()?.id)
}

impl MemberCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        match self {
            MemberCmd::Ls { app } => {
                let app_id = resolve_app(s, &app).await?;
                let members =
                    s.conman.list_members(&s.actor, app_id, PageRequest { page: 1, limit: 100 }).await.core()?;
                let dtos: Vec<MemberDto> = members.items.into_iter().map(MemberDto::from).collect();
                out.show(&dtos, |l| {
                    l.iter()
                        .map(|m| format!("{}  {}  {}", m.user.id, m.user.email, m.role))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            MemberCmd::Add { app, user, role } => {
                let (app_id, user_id, role) =
                    (resolve_app(s, &app).await?, resolve_user(s, &user).await?, role.parse::<Role>().core()?);
                let m = s.conman.put_member(&s.actor, app_id, user_id, role).await.core()?;
                out.show(&serde_json::json!({ "app_id": m.app_id, "user_id": m.user_id, "role": m.role }), |_| {
                    format!("{user} is {} of {app}", m.role)
                });
            }
            MemberCmd::Rm { app, user } => {
                let (app_id, user_id) = (resolve_app(s, &app).await?, resolve_user(s, &user).await?);
                s.conman.remove_member(&s.actor, app_id, user_id).await.core()?;
                out.show(&serde_json::json!({ "removed": true }), |_| format!("removed {user} from {app}"));
            }
        }
        Ok(())
    }
}

/// `conman invite ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum InviteCmd {
    /// Invite an email with a role; prints the one-time token.
    Create {
        /// App id or name.
        app: String,
        /// Invitee's email.
        email: String,
        /// user, reviewer, config_manager or app_admin.
        role: String,
    },
    /// List invites.
    Ls {
        /// App id or name.
        app: String,
    },
    /// Re-send with a fresh token.
    Resend {
        /// App id or name.
        app: String,
        /// Invite id.
        invite: String,
    },
    /// Revoke.
    Revoke {
        /// App id or name.
        app: String,
        /// Invite id.
        invite: String,
    },
}

impl InviteCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let human = |i: &IssuedInviteDto| {
            format!(
                "invite {} for {} as {} (expires {})\ntoken: {}",
                i.id, i.invite.email, i.invite.role, i.expires_at, i.token
            )
        };
        match self {
            InviteCmd::Create { app, email, role } => {
                let app_id = resolve_app(s, &app).await?;
                let issued =
                    s.conman.create_invite(&s.actor, app_id, &email, role.parse::<Role>().core()?).await.core()?;
                out.show(&IssuedInviteDto::from(issued), human);
            }
            InviteCmd::Ls { app } => {
                let app_id = resolve_app(s, &app).await?;
                let invites =
                    s.conman.list_invites(&s.actor, app_id, PageRequest { page: 1, limit: 100 }).await.core()?;
                let dtos: Vec<InviteDto> = invites.items.iter().map(InviteDto::from).collect();
                out.show(&dtos, |l| {
                    l.iter()
                        .map(|i| format!("{}  {}  {}  {}", i.id, i.email, i.role, i.state))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            InviteCmd::Resend { app, invite } => {
                let (app_id, invite_id) = (resolve_app(s, &app).await?, invite.parse::<InviteId>().core()?);
                let issued = s.conman.resend_invite(&s.actor, app_id, invite_id).await.core()?;
                out.show(&IssuedInviteDto::from(issued), human);
            }
            InviteCmd::Revoke { app, invite } => {
                let (app_id, invite_id) = (resolve_app(s, &app).await?, invite.parse::<InviteId>().core()?);
                let revoked = s.conman.revoke_invite(&s.actor, app_id, invite_id).await.core()?;
                out.show(&InviteDto::from(&revoked), |i| format!("invite {} is {}", i.id, i.state));
            }
        }
        Ok(())
    }
}
