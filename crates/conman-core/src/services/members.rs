//! Members and roles of an app. Only `app_admin` changes them — and a
//! server operator may make themself `app_admin` of any app, so an app
//! whose admins are gone can be recovered.
//!
//! Invariant: an app always keeps at least one `app_admin`, under
//! concurrency too. The service refuses early with the members it read, and
//! every unit that demotes or removes an admin carries the
//! `RequireAppAdmin` guard, which the store checks after the change inside
//! the unit's transaction, serialised per app: of two admins demoting each
//! other at once, one unit commits and the other is `last_app_admin`.

use super::{Actor, AuditWhat, Conman};
use crate::domain::app::App;
use crate::domain::membership::Membership;
use crate::error::Error;
use crate::ids::{AppId, UserId};
use crate::ports::store::{AppMutation, ConflictReason, MemberRecord, Page, PageRequest, Unaudited, UnitOfWork};
use crate::rbac::{Capability, Role};

impl Conman {
    /// Members of an app (any member may list them).
    pub async fn list_members(
        &self,
        actor: &Actor,
        app_id: AppId,
        page: PageRequest,
    ) -> Result<Page<MemberRecord>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().list_members(app_id, page).await
    }

    /// Adds a user to the app (with their default workspace) or changes
    /// their role.
    pub async fn put_member(
        &self,
        actor: &Actor,
        app_id: AppId,
        user_id: UserId,
        role: Role,
    ) -> Result<Membership, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let member = self.store().user(user_id).await?.ok_or(Error::NotFound(UserId::KIND))?;
        let before = self.store().membership(app_id, user_id).await?;
        let demotes_an_admin = before.as_ref().is_some_and(|b| b.role == Role::AppAdmin);
        if let Some(b) = &before {
            if b.role == role {
                return Ok(b.clone());
            }
            if demotes_an_admin {
                self.ensure_another_admin(app_id, user_id).await?;
            }
        }
        let membership = Membership {
            app_id,
            user_id,
            role,
            created_at: before.as_ref().map_or_else(|| self.now(), |b| b.created_at),
        };
        let action = if before.is_some() { "member.role_changed" } else { "member.added" };
        let mut what = AuditWhat::new("membership", user_id, action).after(&membership);
        if let Some(b) = &before {
            what = what.before(b);
        }
        let audit = self.audit_entry(Some(actor), Some(app_id), what);
        let mut unit = UnitOfWork::new().record(AppMutation::PutMembership(membership.clone()), audit);
        if demotes_an_admin {
            unit = unit.unaudited(AppMutation::RequireAppAdmin { app_id }, Unaudited::Guard);
        }
        self.store().commit(unit).await?;
        if before.is_none() {
            self.grant_default_workspace(actor, &scope.app, &member).await;
        }
        Ok(membership)
    }

    /// Removes a member; refuses to remove the last `app_admin`.
    pub async fn remove_member(&self, actor: &Actor, app_id: AppId, user_id: UserId) -> Result<(), Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageMembers, None)?;
        let before = self.store().membership(app_id, user_id).await?.ok_or(Error::NotFound("member"))?;
        if before.role == Role::AppAdmin {
            self.ensure_another_admin(app_id, user_id).await?;
        }
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("membership", user_id, "member.removed").before(&before),
        );
        let mut unit = UnitOfWork::new().record(AppMutation::DeleteMembership { app_id, user_id }, audit);
        if before.role == Role::AppAdmin {
            unit = unit.unaudited(AppMutation::RequireAppAdmin { app_id }, Unaudited::Guard);
        }
        self.store().commit(unit).await
    }

    /// The app named `name`, for a server operator (who need not be a
    /// member: how `conman app admin add <name>` finds a locked-out app).
    pub async fn operator_app_by_name(&self, actor: &Actor, name: &str) -> Result<App, Error> {
        actor.require_operator()?;
        self.store().app_by_name(name).await?.ok_or(Error::NotFound(AppId::KIND))
    }

    /// A server operator makes themself `app_admin` of `app_id` (whatever
    /// their role there, or none): the way back into an app whose admins
    /// are gone. Audited as `member.operator_granted`.
    pub async fn grant_operator_admin(&self, actor: &Actor, app_id: AppId) -> Result<Membership, Error> {
        actor.require_operator()?;
        let app = self.store().app(app_id).await?.ok_or(Error::NotFound(AppId::KIND))?;
        let user_id = actor.user.id;
        let before = self.store().membership(app_id, user_id).await?;
        if let Some(b) = before.as_ref().filter(|b| b.role == Role::AppAdmin) {
            return Ok(b.clone());
        }
        let membership = Membership {
            app_id,
            user_id,
            role: Role::AppAdmin,
            created_at: before.as_ref().map_or_else(|| self.now(), |b| b.created_at),
        };
        let mut what = AuditWhat::new("membership", user_id, "member.operator_granted").after(&membership);
        if let Some(b) = &before {
            what = what.before(b);
        }
        let audit = self.audit_entry(Some(actor), Some(app_id), what);
        self.store().commit(UnitOfWork::new().record(AppMutation::PutMembership(membership.clone()), audit)).await?;
        if before.is_none() {
            self.grant_default_workspace(actor, &app, &actor.user).await;
        }
        Ok(membership)
    }

    async fn ensure_another_admin(&self, app_id: AppId, leaving: UserId) -> Result<(), Error> {
        let members = self.store().all_members(app_id).await?;
        if members.iter().any(|m| m.membership.role == Role::AppAdmin && m.user.id != leaving) {
            return Ok(());
        }
        Err(ConflictReason::LastAppAdmin.into())
    }
}
