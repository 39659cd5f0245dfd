//! Operator administration: create accounts directly (for agents and
//! scripts, or before an invite exists), list them, read the outbox.

use super::{Actor, AuditWhat, Conman};
use crate::domain::outbox::OutboxMessage;
use crate::domain::user::{User, UserSummary};
use crate::error::Error;
use crate::ports::store::{Page, PageRequest, UnitOfWork, UserMutation};
use crate::validation::{validate_display_name, validate_password, Email};

impl Conman {
    /// Creates a user account. Operators only.
    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        name: &str,
        password: &str,
        is_operator: bool,
    ) -> Result<User, Error> {
        actor.require_operator()?;
        let email = Email::parse(email)?;
        validate_display_name(name)?;
        validate_password(password)?;
        if self.store().user_by_email(&email).await?.is_some() {
            return Err(Error::conflict("a user with this email already exists"));
        }
        let user = self.new_user(email, name, self.ports.passwords.hash(password)?, is_operator).await?;
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("user", user.id, "user.created").after(UserSummary::from(&user)),
        );
        self.store().commit(UnitOfWork::new().record(UserMutation::InsertUser(user.clone()), audit)).await?;
        Ok(user)
    }

    /// Lists every user. Operators only.
    pub async fn list_users(&self, actor: &Actor, page: PageRequest) -> Result<Page<UserSummary>, Error> {
        actor.require_operator()?;
        Ok(self.store().list_users(page).await?.map(|u| UserSummary::from(&u)))
    }

    /// Messages in the outbox, newest first. Operators only: they carry
    /// one-time tokens.
    pub async fn list_outbox(&self, actor: &Actor, page: PageRequest) -> Result<Page<OutboxMessage>, Error> {
        actor.require_operator()?;
        self.store().list_outbox(page).await
    }

    /// Looks up a user by exact email (any authenticated user may, e.g. to
    /// add a member); answers only the public summary.
    pub async fn find_user_by_email(&self, _actor: &Actor, email: &str) -> Result<UserSummary, Error> {
        let email = Email::parse(email)?;
        let user = self.store().user_by_email(&email).await?.ok_or(Error::NotFound(crate::ids::UserId::KIND))?;
        Ok(UserSummary::from(&user))
    }
}
