//! Apps, memberships and invites: reads and mutations.

use async_trait::async_trait;

use super::{collect_pages, Page, PageRequest};
use crate::domain::app::App;
use crate::domain::invite::Invite;
use crate::domain::membership::Membership;
use crate::domain::user::User;
use crate::error::Error;
use crate::ids::{AppId, InviteId, UserId};

/// A member with their user record, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    /// The membership.
    pub membership: Membership,
    /// The user.
    pub user: User,
}

/// A change to apps, memberships or invites.
#[derive(Debug, Clone, PartialEq)]
pub enum AppMutation {
    /// Insert an app (name unique).
    InsertApp(App),
    /// Update an app (CAS on version).
    UpdateApp(App),
    /// Insert or replace a membership.
    PutMembership(Membership),
    /// Remove a membership (`not_found` if absent).
    DeleteMembership {
        /// App.
        app_id: AppId,
        /// Member.
        user_id: UserId,
    },
    /// Insert an invite.
    InsertInvite(Invite),
    /// Update an invite (CAS on version).
    UpdateInvite(Invite),
    /// A guard, not a change: refuses the unit with
    /// [`ConflictReason::LastAppAdmin`](super::ConflictReason::LastAppAdmin)
    /// unless the app still has an `app_admin` after the unit's earlier
    /// mutations. Stores serialise the guards of one app (Postgres locks the
    /// app's row before counting), so two units that each demote or remove
    /// one of two admins cannot both commit. Added with
    /// [`Unaudited::Guard`](super::Unaudited::Guard).
    RequireAppAdmin {
        /// App.
        app_id: AppId,
    },
}

/// Apps, memberships and invites.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// An app by id.
    async fn app(&self, id: AppId) -> Result<Option<App>, Error>;
    /// An app by name.
    async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error>;
    /// Apps `user_id` is a member of, by name.
    async fn list_apps_for_user(&self, user_id: UserId, page: PageRequest) -> Result<Page<App>, Error>;
    /// Every app, by name (for operators).
    async fn list_all_apps(&self, page: PageRequest) -> Result<Page<App>, Error>;
    /// A membership.
    async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error>;
    /// Members of an app, by email.
    async fn list_members(&self, app_id: AppId, page: PageRequest) -> Result<Page<MemberRecord>, Error>;
    /// Every membership of a user.
    async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error>;
    /// An invite of an app.
    async fn invite(&self, app_id: AppId, id: InviteId) -> Result<Option<Invite>, Error>;
    /// An invite by token hash.
    async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error>;
    /// Invites of an app, newest first.
    async fn list_invites(&self, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error>;

    /// Every member of an app, by email (pages through [`AppStore::list_members`]).
    async fn all_members(&self, app_id: AppId) -> Result<Vec<MemberRecord>, Error> {
        collect_pages(|page| self.list_members(app_id, page)).await
    }
}
