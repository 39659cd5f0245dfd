//! Apps, memberships and invites (mirrors the SQL stores' `apps`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::app::App;
use crate::domain::invite::Invite;
use crate::domain::membership::Membership;
use crate::error::Error;
use crate::ids::{AppId, InviteId, UserId};
use crate::ports::store::{AppMutation, AppStore, ConflictReason, MemberRecord, Page, PageRequest, Record};
use crate::rbac::Role;

/// The apps slice's collections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Apps {
    pub(crate) apps: Vec<App>,
    pub(crate) memberships: Vec<Membership>,
    pub(crate) invites: Vec<Invite>,
}

impl Apps {
    pub(crate) fn exists(&self, id: AppId) -> bool {
        self.apps.iter().any(|a| a.id == id)
    }
}

fn by_name(apps: &mut [App]) {
    apps.sort_by(|a, b| a.name.cmp(&b.name));
}

#[async_trait]
impl AppStore for ReferenceStore {
    async fn app(&self, id: AppId) -> Result<Option<App>, Error> {
        Ok(self.lock().apps.apps.iter().find(|a| a.id == id).cloned())
    }

    async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error> {
        Ok(self.lock().apps.apps.iter().find(|a| a.name == name).cloned())
    }

    async fn list_apps_for_user(&self, user_id: UserId, request: PageRequest) -> Result<Page<App>, Error> {
        let state = self.lock();
        let mine = |a: &&App| state.apps.memberships.iter().any(|m| m.app_id == a.id && m.user_id == user_id);
        let mut apps: Vec<App> = state.apps.apps.iter().filter(mine).cloned().collect();
        by_name(&mut apps);
        Ok(page(apps, request))
    }

    async fn list_all_apps(&self, request: PageRequest) -> Result<Page<App>, Error> {
        let mut apps = self.lock().apps.apps.clone();
        by_name(&mut apps);
        Ok(page(apps, request))
    }

    async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error> {
        Ok(self.lock().apps.memberships.iter().find(|m| m.app_id == app_id && m.user_id == user_id).cloned())
    }

    async fn list_members(&self, app_id: AppId, request: PageRequest) -> Result<Page<MemberRecord>, Error> {
        let state = self.lock();
        let mut members: Vec<MemberRecord> = state
            .apps
            .memberships
            .iter()
            .filter(|m| m.app_id == app_id)
            .filter_map(|m| {
                let user = state.users.users.iter().find(|u| u.id == m.user_id)?;
                Some(MemberRecord { membership: m.clone(), user: user.clone() })
            })
            .collect();
        members.sort_by(|a, b| a.user.email.as_str().cmp(b.user.email.as_str()));
        Ok(page(members, request))
    }

    async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error> {
        let mut found: Vec<Membership> =
            self.lock().apps.memberships.iter().filter(|m| m.user_id == user_id).cloned().collect();
        found.sort_by_key(|m| m.app_id);
        Ok(found)
    }

    async fn invite(&self, app_id: AppId, id: InviteId) -> Result<Option<Invite>, Error> {
        Ok(self.lock().apps.invites.iter().find(|i| i.id == id && i.app_id == app_id).cloned())
    }

    async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error> {
        Ok(self.lock().apps.invites.iter().find(|i| i.token_hash == token_hash).cloned())
    }

    async fn list_invites(&self, app_id: AppId, request: PageRequest) -> Result<Page<Invite>, Error> {
        let mut found: Vec<Invite> = self.lock().apps.invites.iter().filter(|i| i.app_id == app_id).cloned().collect();
        found.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(page(found, request))
    }
}

fn insert_app(state: &mut State, a: &App) -> Result<(), Error> {
    let apps = &state.apps.apps;
    unique(apps.iter().any(|x| x.id == a.id), Record::App, "id")?;
    unique(apps.iter().any(|x| x.name == a.name), Record::App, "name")?;
    reference(state.users.exists(a.created_by))?;
    state.apps.apps.push(a.clone());
    Ok(())
}

fn update_app(state: &mut State, a: &App) -> Result<(), Error> {
    let apps = &mut state.apps.apps;
    cas(apps.iter_mut().find(|x| x.id == a.id), |x| x.version, a.version, AppId::KIND)?;
    unique(apps.iter().any(|x| x.id != a.id && x.name == a.name), Record::App, "name")?;
    reference(state.users.exists(a.created_by))?;
    if let Some(row) = state.apps.apps.iter_mut().find(|x| x.id == a.id) {
        *row = a.clone();
    }
    Ok(())
}

fn put_membership(state: &mut State, m: &Membership) -> Result<(), Error> {
    reference(state.apps.exists(m.app_id) && state.users.exists(m.user_id))?;
    let memberships = &mut state.apps.memberships;
    match memberships.iter_mut().find(|x| x.app_id == m.app_id && x.user_id == m.user_id) {
        Some(row) => *row = m.clone(),
        None => memberships.push(m.clone()),
    }
    Ok(())
}

fn insert_invite(state: &mut State, i: &Invite) -> Result<(), Error> {
    let invites = &state.apps.invites;
    unique(invites.iter().any(|x| x.id == i.id), Record::Invite, "id")?;
    unique(invites.iter().any(|x| x.token_hash == i.token_hash), Record::Invite, "token_hash")?;
    reference(
        state.apps.exists(i.app_id)
            && state.users.exists(i.invited_by)
            && i.accepted_by.is_none_or(|u| state.users.exists(u)),
    )?;
    state.apps.invites.push(i.clone());
    Ok(())
}

fn update_invite(state: &mut State, i: &Invite) -> Result<(), Error> {
    let invites = &mut state.apps.invites;
    let found = invites.iter_mut().find(|x| x.id == i.id && x.app_id == i.app_id);
    cas(found, |x| x.version, i.version, InviteId::KIND)?;
    unique(invites.iter().any(|x| x.id != i.id && x.token_hash == i.token_hash), Record::Invite, "token_hash")?;
    reference(state.users.exists(i.invited_by) && i.accepted_by.is_none_or(|u| state.users.exists(u)))?;
    if let Some(row) = state.apps.invites.iter_mut().find(|x| x.id == i.id) {
        *row = i.clone();
    }
    Ok(())
}

/// Applies one app mutation.
pub(crate) fn apply(state: &mut State, mutation: &AppMutation) -> Result<(), Error> {
    match mutation {
        AppMutation::RequireAppAdmin { app_id } => {
            let admins = state.apps.memberships.iter().filter(|m| m.app_id == *app_id && m.role == Role::AppAdmin);
            if admins.count() == 0 {
                return Err(ConflictReason::LastAppAdmin.into());
            }
            Ok(())
        }
        AppMutation::InsertApp(a) => insert_app(state, a),
        AppMutation::UpdateApp(a) => update_app(state, a),
        AppMutation::PutMembership(m) => put_membership(state, m),
        AppMutation::DeleteMembership { app_id, user_id } => {
            let memberships = &mut state.apps.memberships;
            let before = memberships.len();
            memberships.retain(|m| !(m.app_id == *app_id && m.user_id == *user_id));
            if memberships.len() == before {
                return Err(Error::NotFound("membership"));
            }
            Ok(())
        }
        AppMutation::InsertInvite(i) => insert_invite(state, i),
        AppMutation::UpdateInvite(i) => update_invite(state, i),
    }
}
