//! Apps and settings (SPEC §2.1). Creating an app creates (or imports) its
//! repository first and records the app second; if recording fails the
//! repository is removed, so no app exists without its repository.

use futures_util::future::join;

use super::{Actor, AppScope, AuditWhat, Conman};
use crate::domain::app::{App, AppSettings, AppSettingsPatch};
use crate::domain::membership::Membership;
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::git::{RepoSource, Signature};
use crate::ports::store::{AppMutation, Page, PageRequest, UnitOfWork};
use crate::rbac::{Capability, Role};
use crate::validation::validate_app_name;

/// Input of app creation (the wire form is `conman_api::dto::CreateAppRequest`).
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    /// URL-safe unique name.
    pub name: String,
    /// Integration branch (default `main`).
    pub integration_branch: Option<String>,
    /// Local path or URL to import from; a fresh repository when absent.
    pub import_from: Option<String>,
}

/// An app as one of its members sees it in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberApp {
    /// The app.
    pub app: App,
    /// The member's role in it.
    pub role: Role,
}

/// Import sources: an absolute local path or a `file://`, `git://` or
/// `http://` URL. `https://` and `ssh://` are refused with their own
/// reason: the git adapter is built without a TLS or SSH stack (one TLS
/// stack in the installation, rustls; docs/decisions/0006), so such a
/// repository is mirrored to a local path first and imported from there.
fn validate_import_source(src: &str) -> Result<(), Error> {
    let bad = |m: &str| Err(Error::invalid("import_from", "invalid_source", m));
    if src.is_empty() || src.len() > 4096 || src.chars().any(char::is_control) {
        return bad("import_from must be a local path or a URL");
    }
    if ["https://", "ssh://", "git+ssh://", "ssh+git://"].iter().any(|p| src.starts_with(p)) {
        return Err(Error::invalid(
            "import_from",
            "unsupported_transport",
            "this server does not fetch over https or ssh: mirror the repository to a local path \
             (git clone --mirror) and import that path",
        ));
    }
    let is_url = ["http://", "git://", "file://"].iter().any(|p| src.starts_with(p));
    if !is_url && !src.starts_with('/') {
        return bad("import_from must be an absolute local path or a file://, git:// or http:// URL");
    }
    Ok(())
}

impl Conman {
    /// The actor's view of one app: `not_found` unless they are a member.
    pub async fn app_scope(&self, actor: &Actor, app_id: AppId) -> Result<AppScope, Error> {
        // Both reads at once (on Postgres, two round trips in parallel);
        // the outcome is judged in order, membership first, so a
        // non-member learns nothing about the app.
        let (membership, app) = join(self.store().membership(app_id, actor.user.id), self.store().app(app_id)).await;
        let membership = membership?.ok_or(Error::NotFound(AppId::KIND))?;
        let app = app?.ok_or(Error::NotFound(AppId::KIND))?;
        Ok(AppScope { actor: actor.clone(), app, role: membership.role })
    }

    /// Creates an app (operators only); the creator becomes its `app_admin`
    /// and gets their default workspace.
    pub async fn create_app(&self, actor: &Actor, input: NewApp) -> Result<App, Error> {
        actor.require_operator()?;
        validate_app_name(&input.name)?;
        let settings = AppSettings {
            integration_branch: input.integration_branch.clone().unwrap_or_else(|| "main".into()),
            ..AppSettings::default()
        };
        settings.validate()?;
        if let Some(src) = &input.import_from {
            validate_import_source(src)?;
        }
        if self.store().app_by_name(&input.name).await?.is_some() {
            return Err(Error::conflict(format!("an app named {} already exists", input.name)));
        }
        let now = self.now();
        let app = App {
            id: self.new_id(),
            name: input.name.clone(),
            settings,
            created_by: actor.user.id,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let source = input.import_from.clone().map_or(RepoSource::Init, RepoSource::Import);
        let head =
            self.git().create_repo(app.id, source, &app.settings.integration_branch, &signature_of(actor)).await?;
        let membership = Membership { app_id: app.id, user_id: actor.user.id, role: Role::AppAdmin, created_at: now };
        let unit = UnitOfWork::new()
            .record(
                AppMutation::InsertApp(app.clone()),
                self.audit_entry(
                    Some(actor),
                    Some(app.id),
                    AuditWhat::new("app", app.id, "app.created")
                        .after(serde_json::json!({ "app": &app, "import_from": input.import_from }))
                        .sha(&head),
                ),
            )
            .record(
                AppMutation::PutMembership(membership.clone()),
                self.audit_entry(
                    Some(actor),
                    Some(app.id),
                    AuditWhat::new("membership", actor.user.id, "member.added").after(&membership),
                ),
            );
        if let Err(e) = self.store().commit(unit).await {
            if let Err(cleanup) = self.git().remove_repo(app.id).await {
                tracing::warn!(app = %app.id, error = %cleanup, "could not remove repository of failed app creation");
            }
            return Err(e);
        }
        self.grant_default_workspace(actor, &app, &actor.user).await;
        Ok(app)
    }

    /// Apps the caller is a member of, each with the caller's role there.
    /// The page and its membership list are read together; an app whose
    /// membership ended between the two reads is left out.
    pub async fn list_apps(&self, actor: &Actor, page: PageRequest) -> Result<Page<MemberApp>, Error> {
        let (apps, memberships) =
            join(self.store().list_apps_for_user(actor.user.id, page), self.store().memberships_of(actor.user.id))
                .await;
        let (apps, memberships) = (apps?, memberships?);
        let items = apps
            .items
            .into_iter()
            .filter_map(|app| {
                let role = memberships.iter().find(|m| m.app_id == app.id)?.role;
                Some(MemberApp { app, role })
            })
            .collect();
        Ok(Page { items, total: apps.total })
    }

    /// One app, for members.
    pub async fn get_app(&self, actor: &Actor, app_id: AppId) -> Result<AppScope, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        Ok(scope)
    }

    /// Changes settings (`app_admin`); the whole result is validated first.
    pub async fn update_settings(&self, actor: &Actor, app_id: AppId, patch: AppSettingsPatch) -> Result<App, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        if patch.gates.is_some() && !self.config.allow_app_gate_commands {
            return Err(Error::Forbidden("the operator has disabled per-app gate commands".into()));
        }
        let app = scope.app;
        let settings = app.settings.patched(patch)?;
        if settings.integration_branch != app.settings.integration_branch {
            let branch_ref = format!("refs/heads/{}", settings.integration_branch);
            if self.git().resolve_ref(app.id, &branch_ref).await?.is_none() {
                return Err(Error::invalid(
                    "integration_branch",
                    "branch_not_found",
                    "the new integration branch does not exist in the repository",
                ));
            }
        }
        if settings == app.settings {
            return Ok(app);
        }
        let updated = App { settings, updated_at: self.now(), version: app.version + 1, ..app.clone() };
        let audit = self.audit_entry(
            Some(actor),
            Some(app.id),
            AuditWhat::new("app", app.id, "app.settings_changed").before(&app.settings).after(&updated.settings),
        );
        self.store().commit(UnitOfWork::new().record(AppMutation::UpdateApp(updated.clone()), audit)).await?;
        Ok(updated)
    }
}

/// The git signature of an actor.
pub(super) fn signature_of(actor: &Actor) -> Signature {
    Signature { name: actor.user.name.clone(), email: actor.user.email.to_string() }
}

#[cfg(test)]
mod tests {
    use super::validate_import_source;

    #[test]
    fn import_sources_are_absolute_paths_or_urls() {
        for ok in ["/srv/repos/x.git", "http://git.example.com/x.git", "git://example.com/x", "file:///tmp/x"] {
            assert!(validate_import_source(ok).is_ok(), "{ok}");
        }
        let reason = |src: &str| validate_import_source(src).unwrap_err().details().unwrap()["reason"].clone();
        for bad in ["", "relative/path", "ftp://x", "/a\nb"] {
            assert_eq!(reason(bad), "invalid_source", "{bad}");
        }
        for unsupported in ["https://github.com/x/y.git", "ssh://git@example.com/x.git", "git+ssh://h/x"] {
            assert_eq!(reason(unsupported), "unsupported_transport", "{unsupported}");
        }
    }
}
