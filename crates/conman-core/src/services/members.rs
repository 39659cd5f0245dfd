//! Members and roles of an app. Only `app_admin` changes them, and an app
//! always keeps at least one `app_admin`.

use super::{Actor, AuditWhat, Conman};
use crate::domain::membership::Membership;
use crate::error::Error;
use crate::ids::{AppId, UserId};
use crate::ports::store::{AppMutation, MemberRecord, Page, PageRequest, UnitOfWork};
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
        if let Some(b) = &before {
            if b.role == role {
                return Ok(b.clone());
            }
            if b.role == Role::AppAdmin {
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
        self.store().commit(UnitOfWork::new().record(AppMutation::PutMembership(membership.clone()), audit)).await?;
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
        self.store().commit(UnitOfWork::new().record(AppMutation::DeleteMembership { app_id, user_id }, audit)).await
    }

    async fn ensure_another_admin(&self, app_id: AppId, leaving: UserId) -> Result<(), Error> {
        let members = self.store().all_members(app_id).await?;
        if members.iter().any(|m| m.membership.role == Role::AppAdmin && m.user.id != leaving) {
            return Ok(());
        }
        Err(Error::conflict("an app must keep at least one app_admin"))
    }
}
