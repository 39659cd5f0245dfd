//! Invites (SPEC §7): an `app_admin` invites an email with a role; the token
//! is answered once to the admin and sent to the invitee's outbox. Accepting
//! creates the account — or, when the email already has one, requires that
//! account's password: a session is never handed out without proof. A new
//! member gets their default workspace once the membership is committed.

use serde::Serialize;

use super::{Actor, AuditWhat, Conman, LoginOutcome};
use crate::domain::audit::RequestContext;
use crate::domain::invite::{Invite, InviteEvent, InviteState};
use crate::domain::membership::Membership;
use crate::domain::outbox::OutboxMessage;
use crate::domain::user::UserSummary;
use crate::domain::{StateMachine, Timestamp};
use crate::error::Error;
use crate::ids::{AppId, InviteId};
use crate::ports::store::{AppMutation, Mutation, OutboxMutation, Page, PageRequest, UnitOfWork, UserMutation};
use crate::ports::tokens::token_hash;
use crate::rbac::{Capability, Role};
use crate::validation::{validate_display_name, validate_password, Email};

/// An invite with its one-time token (only in create/resend answers).
#[derive(Debug, Clone, Serialize)]
pub struct IssuedInvite {
    /// The invite.
    pub invite: Invite,
    /// The token to accept it.
    pub token: String,
}

impl Conman {
    /// Invites `email` to the app with `role`.
    pub async fn create_invite(
        &self,
        actor: &Actor,
        app_id: AppId,
        email: &str,
        role: Role,
    ) -> Result<IssuedInvite, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let email = Email::parse(email)?;
        if let Some(user) = self.store().user_by_email(&email).await? {
            if self.store().membership(app_id, user.id).await?.is_some() {
                return Err(Error::conflict("this user is already a member of the app"));
            }
        }
        let now = self.now();
        let token = self.ports.tokens.new_token();
        let invite = Invite {
            id: self.new_id(),
            app_id,
            email,
            role,
            token_hash: token_hash(&token),
            state: InviteState::Pending,
            invited_by: actor.user.id,
            created_at: now,
            expires_at: self.invite_expiry(now)?,
            accepted_by: None,
            version: 1,
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("invite", invite.id, "invite.created").after(&invite),
        );
        let unit = UnitOfWork::new().record_all(
            [
                Mutation::from(AppMutation::InsertInvite(invite.clone())),
                Mutation::from(OutboxMutation::InsertOutbox(self.invite_message(&scope.app.name, &invite, &token))),
            ],
            audit,
        );
        self.store().commit(unit).await?;
        Ok(IssuedInvite { invite, token })
    }

    /// Invites of an app (`app_admin`).
    pub async fn list_invites(&self, actor: &Actor, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let now = self.now();
        Ok(self.store().list_invites(app_id, page).await?.map(|mut i| {
            i.state = i.effective_state(now);
            i
        }))
    }

    /// Re-sends an invite with a fresh token and expiry (the old token dies).
    pub async fn resend_invite(
        &self,
        actor: &Actor,
        app_id: AppId,
        invite_id: InviteId,
    ) -> Result<IssuedInvite, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let invite = self.store().invite(app_id, invite_id).await?.ok_or(Error::NotFound(InviteId::KIND))?;
        let now = self.now();
        let state = invite.effective_state(now).apply(InviteEvent::Resend)?;
        let token = self.ports.tokens.new_token();
        let updated = Invite {
            state,
            token_hash: token_hash(&token),
            expires_at: self.invite_expiry(now)?,
            version: invite.version + 1,
            ..invite.clone()
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("invite", invite.id, "invite.resent").before(&invite).after(&updated),
        );
        let unit = UnitOfWork::new().record_all(
            [
                Mutation::from(AppMutation::UpdateInvite(updated.clone())),
                Mutation::from(OutboxMutation::InsertOutbox(self.invite_message(&scope.app.name, &updated, &token))),
            ],
            audit,
        );
        self.store().commit(unit).await?;
        Ok(IssuedInvite { invite: updated, token })
    }

    /// Revokes an invite.
    pub async fn revoke_invite(&self, actor: &Actor, app_id: AppId, invite_id: InviteId) -> Result<Invite, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let invite = self.store().invite(app_id, invite_id).await?.ok_or(Error::NotFound(InviteId::KIND))?;
        let state = invite.effective_state(self.now()).apply(InviteEvent::Revoke)?;
        let updated = Invite { state, version: invite.version + 1, ..invite.clone() };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("invite", invite.id, "invite.revoked").before(&invite).after(&updated),
        );
        self.store().commit(UnitOfWork::new().record(AppMutation::UpdateInvite(updated.clone()), audit)).await?;
        Ok(updated)
    }

    /// Accepts an invite with its token. A new email gets an account with
    /// `name` and `password`; an existing account must prove its password.
    pub async fn accept_invite(
        &self,
        token: &str,
        name: &str,
        password: &str,
        request: RequestContext,
    ) -> Result<LoginOutcome, Error> {
        let invite = self.store().invite_by_hash(&token_hash(token)).await?.ok_or(Error::NotFound(InviteId::KIND))?;
        let now = self.now();
        let state = invite.effective_state(now).apply(InviteEvent::Accept)?;
        let account_key = invite.email.to_string();
        self.throttle.check(&account_key, request.ip.as_deref(), now)?;
        let mut new_user = None;
        let user = match self.store().user_by_email(&invite.email).await? {
            Some(existing) => {
                if !self.ports.passwords.verify(password, &existing.password_hash) {
                    self.throttle.record_failure(&account_key, request.ip.as_deref(), now);
                    return Err(Error::Unauthorized);
                }
                existing
            }
            None => {
                validate_display_name(name)?;
                validate_password(password)?;
                let user =
                    self.new_user(invite.email.clone(), name, self.ports.passwords.hash(password)?, false).await?;
                new_user = Some(user.clone());
                user
            }
        };
        let actor = Actor { user: user.clone(), credential_id: None, request };
        let existing_role = self.store().membership(invite.app_id, user.id).await?.map(|m| m.role);
        let role = existing_role.map_or(invite.role, |r| r.max(invite.role));
        let membership = Membership { app_id: invite.app_id, user_id: user.id, role, created_at: now };
        let accepted = Invite { state, accepted_by: Some(user.id), version: invite.version + 1, ..invite.clone() };
        let mut unit = UnitOfWork::new();
        if let Some(created) = new_user {
            let audit = self.audit_entry(
                Some(&actor),
                None,
                AuditWhat::new("user", user.id, "user.created").after(UserSummary::from(&user)),
            );
            unit = unit.record(UserMutation::InsertUser(created), audit);
        }
        let unit = unit
            .record(
                AppMutation::UpdateInvite(accepted.clone()),
                self.audit_entry(
                    Some(&actor),
                    Some(invite.app_id),
                    AuditWhat::new("invite", invite.id, "invite.accepted").before(&invite).after(&accepted),
                ),
            )
            .record(
                AppMutation::PutMembership(membership.clone()),
                self.audit_entry(
                    Some(&actor),
                    Some(invite.app_id),
                    AuditWhat::new("membership", user.id, "member.added").after(&membership),
                ),
            );
        let session = self.open_session(&actor, unit, "auth.login").await?;
        if existing_role.is_none() {
            // The session is committed: nothing after it may fail the call.
            match self.store().app(invite.app_id).await {
                Ok(Some(app)) => self.grant_default_workspace(&actor, &app, &user).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(app = %invite.app_id, error = %e, "could not read the app of an accepted invite")
                }
            }
        }
        Ok(session)
    }

    fn invite_expiry(&self, now: Timestamp) -> Result<Timestamp, Error> {
        Ok(now + chrono::Duration::from_std(self.config.invite_ttl).map_err(Error::internal)?)
    }

    fn invite_message(&self, app_name: &str, invite: &Invite, token: &str) -> OutboxMessage {
        OutboxMessage {
            id: self.new_id(),
            recipient: invite.email.clone(),
            app_id: Some(invite.app_id),
            kind: "invite".into(),
            subject: format!("You are invited to {app_name} on Conman"),
            body: format!(
                "You are invited to the app {app_name} as {}.\n\nInvite token (valid until {}):\n{token}\n\n\
                 Accept with POST {}/api/auth/accept-invite {{\"token\", \"name\", \"password\"}}.",
                invite.role,
                crate::domain::format_timestamp(&invite.expires_at),
                self.config.public_url
            ),
            created_at: self.now(),
            delivered_at: None,
        }
    }
}
