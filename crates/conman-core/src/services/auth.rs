//! Authentication: bootstrap of the operator, login/logout with opaque
//! session tokens, bearer authentication, password reset, and the caller's
//! own profile. Tokens are stored only as SHA-256 hashes; a failed login
//! answers the same generic error whether or not the email exists.

use serde::Serialize;

use super::{Actor, AuditWhat, Conman};
use crate::domain::audit::RequestContext;
use crate::domain::outbox::OutboxMessage;
use crate::domain::user::{Credential, CredentialKind, PasswordReset, User, UserSummary};
use crate::error::Error;
use crate::ids::{AppId, UserId};
use crate::ports::store::{Mutation, OutboxMutation, UnitOfWork, UserMutation};
use crate::ports::tokens::token_hash;
use crate::rbac::Role;
use crate::validation::{validate_display_name, validate_password, Email, Handle};

/// A successful login or invite acceptance: the session token (shown once).
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// Bearer token for `Authorization: Bearer ...`.
    pub token: String,
    /// The session's expiry.
    pub expires_at: crate::domain::Timestamp,
    /// The user.
    pub user: User,
}

/// One membership of the caller.
#[derive(Debug, Clone, Serialize)]
pub struct MembershipView {
    /// App id.
    pub app_id: AppId,
    /// App name.
    pub app_name: String,
    /// Role there.
    pub role: Role,
}

/// The caller and their memberships.
#[derive(Debug, Clone)]
pub struct MeView {
    /// The user.
    pub user: UserSummary,
    /// Notification toggle.
    pub email_notifications: bool,
    /// Memberships.
    pub memberships: Vec<MembershipView>,
}

impl Conman {
    /// Creates the server operator, or updates the password, name and
    /// operator flag of an existing account with that email.
    pub async fn bootstrap_admin(&self, email: &str, name: &str, password: &str) -> Result<User, Error> {
        let email = Email::parse(email)?;
        validate_display_name(name)?;
        validate_password(password)?;
        let hash = self.ports.passwords.hash(password)?;
        let now = self.now();
        let (user, unit) = match self.store().user_by_email(&email).await? {
            Some(existing) => {
                let user = User {
                    name: name.trim().to_owned(),
                    password_hash: hash,
                    is_operator: true,
                    updated_at: now,
                    version: existing.version + 1,
                    ..existing.clone()
                };
                let audit = self.audit_entry(
                    None,
                    None,
                    AuditWhat::new("user", user.id, "user.bootstrap_updated")
                        .before(UserSummary::from(&existing))
                        .after(UserSummary::from(&user)),
                );
                let unit = UnitOfWork::new().record(UserMutation::UpdateUser(user.clone()), audit);
                (user, unit)
            }
            None => {
                let user = self.new_user(email, name, hash, true).await?;
                let audit = self.audit_entry(
                    None,
                    None,
                    AuditWhat::new("user", user.id, "user.bootstrapped").after(UserSummary::from(&user)),
                );
                (user.clone(), UnitOfWork::new().record(UserMutation::InsertUser(user), audit))
            }
        };
        self.store().commit(unit).await?;
        Ok(user)
    }

    /// Logs in with email and password. Throttled per account and per IP;
    /// every refusal is the same `unauthorized`, whether or not the
    /// account exists.
    pub async fn login(&self, email: &str, password: &str, request: RequestContext) -> Result<LoginOutcome, Error> {
        let now = self.now();
        let account = email.trim().to_lowercase();
        self.throttle.check(&account, request.ip.as_deref(), now)?;
        let user = match Email::parse(email) {
            Ok(e) => self.store().user_by_email(&e).await?,
            Err(_) => None,
        };
        let verified = match &user {
            Some(u) => self.ports.passwords.verify(password, &u.password_hash),
            None => {
                // Same work as a real check, so timing does not reveal the account.
                let _ = self.ports.passwords.hash(password);
                false
            }
        };
        let Some(user) = user.filter(|_| verified) else {
            self.throttle.record_failure(&account, request.ip.as_deref(), now);
            return Err(Error::Unauthorized);
        };
        self.throttle.record_success(&account);
        let actor = Actor { user: user.clone(), credential_id: None, request };
        self.open_session(&actor, UnitOfWork::new(), "auth.login").await
    }

    /// Issues a session for `actor.user`, committing it with `unit`.
    pub(super) async fn open_session(
        &self,
        actor: &Actor,
        unit: UnitOfWork,
        action: &str,
    ) -> Result<LoginOutcome, Error> {
        let now = self.now();
        let token = self.ports.tokens.new_token();
        let ttl = chrono::Duration::from_std(self.config.session_ttl).map_err(Error::internal)?;
        let credential = Credential {
            id: self.new_id(),
            user_id: actor.user.id,
            kind: CredentialKind::Session,
            name: "session".into(),
            token_hash: token_hash(&token),
            created_at: now,
            expires_at: Some(now + ttl),
            revoked_at: None,
        };
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("session", credential.id, action)
                .after(serde_json::json!({ "user_id": actor.user.id, "expires_at": credential.expires_at })),
        );
        let expires_at = now + ttl;
        self.store().commit(unit.record(UserMutation::InsertCredential(credential), audit)).await?;
        Ok(LoginOutcome { token, expires_at, user: actor.user.clone() })
    }

    /// Resolves a bearer token to an actor: `unauthorized` when the token
    /// is unknown, expired or revoked.
    pub async fn authenticate(&self, token: &str, request: RequestContext) -> Result<Actor, Error> {
        if token.is_empty() || token.len() > 512 {
            return Err(Error::Unauthorized);
        }
        let credential = self.store().credential_by_hash(&token_hash(token)).await?.ok_or(Error::Unauthorized)?;
        if !credential.is_usable(self.now()) {
            return Err(Error::Unauthorized);
        }
        let user = self.store().user(credential.user_id).await?.ok_or(Error::Unauthorized)?;
        Ok(Actor { user, credential_id: Some(credential.id), request })
    }

    /// Acts as a user without a token: for local operator tooling that
    /// already holds the data directory (the CLI's `--as`).
    pub async fn local_actor(&self, email: &str, request: RequestContext) -> Result<Actor, Error> {
        let email = Email::parse(email)?;
        let user = self.store().user_by_email(&email).await?.ok_or(Error::NotFound(UserId::KIND))?;
        Ok(Actor { user, credential_id: None, request })
    }

    /// Revokes the credential the actor presented.
    pub async fn logout(&self, actor: &Actor) -> Result<(), Error> {
        let Some(id) = actor.credential_id else {
            return Err(Error::invalid("token", "no_token", "no token was presented"));
        };
        let at = self.now();
        let audit = self.audit_entry(Some(actor), None, AuditWhat::new("session", id, "auth.logout"));
        self.store().commit(UnitOfWork::new().record(UserMutation::RevokeCredential { id, at }, audit)).await
    }

    /// Starts a password reset. Always succeeds from the caller's view; a
    /// token goes to the account's outbox only when the account exists.
    pub async fn forgot_password(&self, email: &str, request: RequestContext) -> Result<(), Error> {
        let now = self.now();
        let account = email.trim().to_lowercase();
        self.reset_throttle.check(&account, request.ip.as_deref(), now)?;
        // Every request counts toward the limit, so the endpoint cannot be
        // used to flood an inbox; it is counted apart from login failures.
        self.reset_throttle.record_failure(&account, request.ip.as_deref(), now);
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let Some(user) = self.store().user_by_email(&email).await? else { return Ok(()) };
        let token = self.ports.tokens.new_token();
        let ttl = chrono::Duration::from_std(self.config.password_reset_ttl).map_err(Error::internal)?;
        let reset = PasswordReset {
            id: self.new_id(),
            user_id: user.id,
            token_hash: token_hash(&token),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
        };
        let message = OutboxMessage {
            id: self.new_id(),
            recipient: user.email.clone(),
            app_id: None,
            kind: "password_reset".into(),
            subject: "Reset your Conman password".into(),
            body: format!(
                "Someone asked to reset the password of {}.\n\nReset token (valid for {} minutes):\n{token}\n\n\
                 POST {}/api/auth/reset-password with {{\"token\", \"new_password\"}}.\n\
                 If this was not you, ignore this message.",
                user.email,
                ttl.num_minutes(),
                self.config.public_url
            ),
            created_at: now,
            delivered_at: None,
        };
        let actor = Actor { user: user.clone(), credential_id: None, request };
        let audit = self.audit_entry(
            Some(&actor),
            None,
            AuditWhat::new("password_reset", reset.id, "auth.password_reset_requested")
                .after(serde_json::json!({ "user_id": user.id, "expires_at": reset.expires_at })),
        );
        let unit = UnitOfWork::new().record_all(
            [
                Mutation::from(UserMutation::InsertPasswordReset(reset)),
                Mutation::from(OutboxMutation::InsertOutbox(message)),
            ],
            audit,
        );
        self.store().commit(unit).await
    }

    /// Completes a password reset: sets the password, spends the token and
    /// revokes every session and API token of the account.
    pub async fn reset_password(&self, token: &str, new_password: &str, request: RequestContext) -> Result<(), Error> {
        validate_password(new_password)?;
        let invalid = || Error::invalid("token", "invalid_token", "reset token is invalid or expired");
        let now = self.now();
        let reset = self.store().password_reset_by_hash(&token_hash(token)).await?.ok_or_else(invalid)?;
        if reset.used_at.is_some() || now >= reset.expires_at {
            return Err(invalid());
        }
        let user = self.store().user(reset.user_id).await?.ok_or_else(invalid)?;
        let updated = User {
            password_hash: self.ports.passwords.hash(new_password)?,
            updated_at: now,
            version: user.version + 1,
            ..user.clone()
        };
        let actor = Actor { user: user.clone(), credential_id: None, request };
        let audit = self.audit_entry(Some(&actor), None, AuditWhat::new("user", user.id, "auth.password_reset"));
        let unit = UnitOfWork::new().record_all(
            [
                UserMutation::UsePasswordReset { id: reset.id, at: now },
                UserMutation::UpdateUser(updated),
                UserMutation::RevokeUserCredentials { user_id: user.id, at: now },
            ],
            audit,
        );
        self.store().commit(unit).await
    }

    /// The caller with their memberships.
    pub async fn me(&self, actor: &Actor) -> Result<MeView, Error> {
        let mut memberships = Vec::new();
        for m in self.store().memberships_of(actor.user.id).await? {
            if let Some(app) = self.store().app(m.app_id).await? {
                memberships.push(MembershipView { app_id: app.id, app_name: app.name, role: m.role });
            }
        }
        memberships.sort_by(|a, b| a.app_name.cmp(&b.app_name));
        Ok(MeView {
            user: UserSummary::from(&actor.user),
            email_notifications: actor.user.email_notifications,
            memberships,
        })
    }

    /// Sets the caller's email-notification toggle.
    pub async fn set_notification_preferences(&self, actor: &Actor, email_enabled: bool) -> Result<bool, Error> {
        let user = self.store().user(actor.user.id).await?.ok_or(Error::Unauthorized)?;
        if user.email_notifications == email_enabled {
            return Ok(email_enabled);
        }
        let updated =
            User { email_notifications: email_enabled, updated_at: self.now(), version: user.version + 1, ..user };
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("user", actor.user.id, "user.notification_preferences_changed")
                .before(serde_json::json!({ "email_enabled": !email_enabled }))
                .after(serde_json::json!({ "email_enabled": email_enabled })),
        );
        self.store().commit(UnitOfWork::new().record(UserMutation::UpdateUser(updated), audit)).await?;
        Ok(email_enabled)
    }

    /// A new user record with a unique handle derived from the email.
    pub(super) async fn new_user(
        &self,
        email: Email,
        name: &str,
        password_hash: String,
        is_operator: bool,
    ) -> Result<User, Error> {
        let base = Handle::derive_from(email.local_part());
        let mut handle = base.clone();
        let mut n = 1;
        while self.store().user_by_handle(handle.as_str()).await?.is_some() {
            n += 1;
            handle = base.with_suffix(n);
        }
        let now = self.now();
        Ok(User {
            id: self.new_id(),
            email,
            name: name.trim().to_owned(),
            handle,
            password_hash,
            is_operator,
            email_notifications: true,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}
