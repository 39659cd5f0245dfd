//! Every public service method refuses before any effect — generated from
//! one list, checked complete against the frozen public surface.
//!
//! The world is a [`ReferenceStore`] seeded with one app, a member of each
//! role, a non-member, and an entity of each kind, and a git port that fails
//! the test if reached. Each [`Case`] calls one method as an actor who may
//! not, and must come back with the expected refusal while the store's
//! whole state stays equal to its snapshot and git is never touched.
//!
//! Completeness: every method of `impl Conman` in
//! `docs/contracts/conman-core.surface.rs.txt` is either a case here or in
//! [`EXEMPT`] with the reason it has nothing to refuse; a method added to
//! the core without either fails [`the_list_covers_every_public_method`].

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::tests::conman_on;
use super::*;
use crate::conformance::fixtures;
use crate::domain::app::App;
use crate::domain::changeset::Changeset;
use crate::domain::comment::Comment;
use crate::domain::invite::Invite;
use crate::domain::job::{Job, JobType};
use crate::domain::runtime_profile::{ProfileInput, ProfileKind, RuntimeProfile};
use crate::domain::user::User;
use crate::domain::workspace::Workspace;
use crate::error::{Error, ErrorCode};
use crate::ids::{CredentialId, ReleaseId, WorkspaceId};
use crate::ports::envelope::EnvelopeCipher;
use crate::ports::store::{
    AppMutation, ChangesetMutation, JobMutation, Mutation, PageRequest, ProfileMutation, UserMutation,
    WorkspaceMutation,
};
use crate::rbac::Role;
use crate::reference_store::ReferenceStore;

/// The public surface the completeness check reads.
const SURFACE: &str = include_str!("../../../../docs/contracts/conman-core.surface.rs.txt");

/// Methods with nothing to refuse, and why.
const EXEMPT: &[(&str, &str)] = &[
    ("new", "constructor"),
    ("with_compute", "composition"),
    ("with_job_handler", "composition"),
    ("with_job_runtime", "composition"),
    ("with_secrets", "composition"),
    ("config", "accessor"),
    ("ports", "accessor"),
    ("bootstrap_admin", "first start, from the operator's shell (compose)"),
    ("local_actor", "the local CLI, whose user already holds the data directory"),
    ("ensure_secrets_key", "start-up check of the composition root"),
    ("reconcile_intents", "start-up repair of the composition root"),
    ("settle_intent", "repair of a pending intent by the process (start-up, a job resuming), no actor"),
    ("verify_audit_chain", "operator's shell (`conman audit verify`)"),
    ("forgot_password", "answers the same for every address by design (no account enumeration)"),
    ("create_api_token", "self-service: every signed-in user may"),
    ("list_api_tokens", "self-service: every signed-in user may"),
    ("logout", "self-service: every signed-in user may"),
    ("me", "self-service: every signed-in user may"),
    ("set_notification_preferences", "self-service: every signed-in user may"),
    ("list_apps", "answers the caller's own apps only"),
    ("find_user_by_email", "any signed-in user may look up a user to invite (SPEC §2.2 member add)"),
    ("new_job", "builds a value, no effect"),
    ("enqueue_in", "adds to a caller's unit, no effect"),
    ("system_line", "builds a value, no effect"),
    ("commit_and_wake", "worker side: the process is trusted"),
    ("claim_next_job", "worker side: the process is trusted"),
    ("renew_job_lease", "worker side: the process is trusted"),
    ("complete_job", "worker side: the process is trusted"),
    ("complete_job_with_log", "worker side: the process is trusted"),
    ("release_job", "worker side: the process is trusted"),
    ("append_job_log", "worker side: the process is trusted"),
    ("run_job_handler", "worker side: the process is trusted"),
    ("jobs_to_stop", "worker side: the process is trusted"),
    ("job_counts", "metrics of the process, no actor"),
    ("queue_depths", "metrics of the process, no actor"),
    ("deployment_counts", "metrics of the process, no actor"),
];

/// One app and its people and things; see the module doc.
struct World {
    c: Conman,
    store: Arc<ReferenceStore>,
    app: App,
    admin: Actor,
    carl: Actor,
    rita: Actor,
    uma: Actor,
    nina: Actor,
    ws: Workspace,
    cs: Changeset,
    comment: Comment,
    job: Job,
    profile: RuntimeProfile,
    invite: Invite,
}

fn actor(user: &User) -> Actor {
    Actor { user: user.clone(), credential_id: None, request: Default::default() }
}

fn new_changeset(ws: WorkspaceId) -> NewChangeset {
    NewChangeset { workspace_id: ws, title: "t".into(), description: None, depends_on: Vec::new() }
}

fn approve() -> ReviewInput {
    ReviewInput { action: "approve".into(), comment: None, revision: None }
}

fn hi() -> NewComment {
    NewComment { body: "hi".into(), anchor: None }
}

fn qa_profile() -> ProfileInput {
    ProfileInput {
        name: "qa".into(),
        kind: ProfileKind::PersistentEnv,
        base_url: None,
        env_vars: Default::default(),
        secrets: Default::default(),
        database: Default::default(),
        migrations: Default::default(),
        data_strategy: Default::default(),
        lifecycle: Default::default(),
    }
}

async fn world() -> World {
    let store = Arc::new(ReferenceStore::new());
    let [admin, carl, rita, uma, nina] = ["adam", "carl", "rita", "uma", "nina"].map(fixtures::user);
    let app = fixtures::app("billing", &admin);
    let ws = fixtures::workspace(&app, &uma, "default");
    let cs = fixtures::changeset(&ws, &uma, "Raise limits");
    let comment = fixtures::comment(&cs, &uma, "why?");
    let mut job = fixtures::job(&app, JobType::GateSubmit);
    job.created_by = Some(admin.id);
    let profile = fixtures::runtime_profile(&app, "prod");
    let invite = fixtures::invite(&app, "ivy", &admin);
    let mut mutations: Vec<Mutation> =
        [&admin, &carl, &rita, &uma, &nina].iter().map(|u| UserMutation::InsertUser((*u).clone()).into()).collect();
    mutations.push(AppMutation::InsertApp(app.clone()).into());
    for (user, role) in
        [(&admin, Role::AppAdmin), (&carl, Role::ConfigManager), (&rita, Role::Reviewer), (&uma, Role::User)]
    {
        mutations.push(AppMutation::PutMembership(fixtures::membership(&app, user, role)).into());
    }
    mutations.push(AppMutation::InsertInvite(invite.clone()).into());
    mutations.push(WorkspaceMutation::InsertWorkspace(ws.clone()).into());
    mutations.push(ChangesetMutation::InsertChangeset(cs.clone()).into());
    mutations.push(ChangesetMutation::InsertComment(comment.clone()).into());
    mutations.push(JobMutation::InsertJob(job.clone()).into());
    mutations.push(ProfileMutation::InsertRuntimeProfile(profile.clone()).into());
    fixtures::setup(store.as_ref(), mutations).await;
    let c = conman_on(store.clone()).with_secrets(Arc::new(EnvelopeCipher::new([3; 32])));
    let [admin, carl, rita, uma, nina] = [&admin, &carl, &rita, &uma, &nina].map(actor);
    World { c, store, app, admin, carl, rita, uma, nina, ws, cs, comment, job, profile, invite }
}

/// Who calls.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// A signed-in user who is no member of the app (and no operator).
    NonMember,
    /// The app's `user` (author of the workspace, changeset and comment).
    User,
    /// The app's `reviewer`.
    Reviewer,
    /// The app's `config_manager`.
    ConfigManager,
    /// The app's `app_admin` (no operator).
    AppAdmin,
    /// Nobody: a call without an actor (tokens, passwords).
    Anonymous,
}

type Call = for<'a> fn(&'a World, &'a Actor) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// One refusal: `method` called by `who` answers `code`.
struct Case {
    method: &'static str,
    who: Who,
    code: ErrorCode,
    call: Call,
}

macro_rules! case {
    ($method:ident, $who:ident, $code:ident, |$w:ident, $a:ident| $call:expr) => {
        Case {
            method: stringify!($method),
            who: Who::$who,
            code: ErrorCode::$code,
            call: |$w, $a| Box::pin(async move { $call.await.map(|_| ()) }),
        }
    };
}

fn one_off_freeze() -> crate::domain::freeze::FreezeSchedule {
    let starts_at = chrono::Utc::now();
    crate::domain::freeze::FreezeSchedule::OneOff { starts_at, ends_at: starts_at + chrono::TimeDelta::hours(1) }
}

fn delete_op() -> Vec<ChangeOp> {
    vec![ChangeOp::Delete { path: "a.yaml".into() }]
}

fn page() -> PageRequest {
    PageRequest::default()
}

/// Every refusal, one per (method, caller).
fn cases() -> Vec<Case> {
    vec![
        // Anonymous entry points refuse a bad secret (an unknown invite is
        // not found; a bad reset token is a field error of the form).
        case!(accept_invite, Anonymous, NotFound, |w, _a| w.c.accept_invite(
            "ci_bogus",
            "Ivy",
            "long enough pw 1",
            Default::default()
        )),
        case!(authenticate, Anonymous, Unauthorized, |w, _a| w.c.authenticate("cm_bogus", Default::default())),
        case!(login, Anonymous, Unauthorized, |w, _a| w.c.login(
            "nobody@example.com",
            "wrong password",
            Default::default()
        )),
        case!(reset_password, Anonymous, Validation, |w, _a| w.c.reset_password(
            "pr_bogus",
            "long enough pw 1",
            Default::default()
        )),
        // Operator-only.
        case!(create_app, AppAdmin, Forbidden, |w, a| w
            .c
            .create_app(a, NewApp { name: "other".into(), ..Default::default() })),
        case!(create_user, AppAdmin, Forbidden, |w, a| w.c.create_user(
            a,
            "new@example.com",
            "New",
            "long enough pw 1",
            false
        )),
        case!(list_users, AppAdmin, Forbidden, |w, a| w.c.list_users(a, page())),
        case!(list_outbox, AppAdmin, Forbidden, |w, a| w.c.list_outbox(a, page())),
        case!(operator_app_by_name, AppAdmin, Forbidden, |w, a| w.c.operator_app_by_name(a, "billing")),
        case!(grant_operator_admin, AppAdmin, Forbidden, |w, a| w.c.grant_operator_admin(a, w.app.id)),
        case!(rotate_master_key, AppAdmin, Forbidden, |w, a| w
            .c
            .rotate_master_key(a, Arc::new(EnvelopeCipher::new([4; 32])))),
        // Someone else's credential.
        case!(revoke_api_token, User, NotFound, |w, a| w.c.revoke_api_token(a, CredentialId(uuid::Uuid::now_v7()))),
        // A non-member is told the app does not exist, whatever they ask.
        case!(app_scope, NonMember, NotFound, |w, a| w.c.app_scope(a, w.app.id)),
        case!(get_app, NonMember, NotFound, |w, a| w.c.get_app(a, w.app.id)),
        case!(update_settings, NonMember, NotFound, |w, a| w.c.update_settings(a, w.app.id, Default::default())),
        case!(list_members, NonMember, NotFound, |w, a| w.c.list_members(a, w.app.id, page())),
        case!(put_member, NonMember, NotFound, |w, a| w.c.put_member(a, w.app.id, w.uma.user.id, Role::AppAdmin)),
        case!(remove_member, NonMember, NotFound, |w, a| w.c.remove_member(a, w.app.id, w.uma.user.id)),
        case!(create_invite, NonMember, NotFound, |w, a| w.c.create_invite(a, w.app.id, "x@example.com", Role::User)),
        case!(list_invites, NonMember, NotFound, |w, a| w.c.list_invites(a, w.app.id, page())),
        case!(resend_invite, NonMember, NotFound, |w, a| w.c.resend_invite(a, w.app.id, w.invite.id)),
        case!(revoke_invite, NonMember, NotFound, |w, a| w.c.revoke_invite(a, w.app.id, w.invite.id)),
        case!(list_workspaces, NonMember, NotFound, |w, a| w.c.list_workspaces(a, w.app.id, page())),
        case!(my_default_workspace, NonMember, NotFound, |w, a| w.c.my_default_workspace(a, w.app.id)),
        case!(create_workspace, NonMember, NotFound, |w, a| w.c.create_workspace(a, w.app.id, None)),
        case!(get_workspace, NonMember, NotFound, |w, a| w.c.get_workspace(a, w.app.id, w.ws.id)),
        case!(update_workspace, NonMember, NotFound, |w, a| w.c.update_workspace(
            a,
            w.app.id,
            w.ws.id,
            Some("t".into()),
            None
        )),
        case!(read_workspace_path, NonMember, NotFound, |w, a| w.c.read_workspace_path(a, w.app.id, w.ws.id, None)),
        case!(write_file, NonMember, NotFound, |w, a| w.c.write_file(
            a,
            w.app.id,
            w.ws.id,
            "a.yaml",
            b"a: 1\n".to_vec(),
            None
        )),
        case!(delete_file, NonMember, NotFound, |w, a| w.c.delete_file(a, w.app.id, w.ws.id, "a.yaml", None)),
        case!(apply_changes, NonMember, NotFound, |w, a| w.c.apply_changes(a, w.app.id, w.ws.id, delete_op(), None)),
        case!(checkpoint, NonMember, NotFound, |w, a| w.c.checkpoint(a, w.app.id, w.ws.id, "cp")),
        case!(reset_workspace, NonMember, NotFound, |w, a| w.c.reset_workspace(a, w.app.id, w.ws.id)),
        case!(sync_integration, NonMember, NotFound, |w, a| w.c.sync_integration(a, w.app.id, w.ws.id, None)),
        case!(create_changeset, NonMember, NotFound, |w, a| w.c.create_changeset(a, w.app.id, new_changeset(w.ws.id))),
        case!(list_changesets, NonMember, NotFound, |w, a| w.c.list_changesets(
            a,
            w.app.id,
            Default::default(),
            page()
        )),
        case!(get_changeset, NonMember, NotFound, |w, a| w.c.get_changeset(a, w.app.id, w.cs.id)),
        case!(update_changeset, NonMember, NotFound, |w, a| w.c.update_changeset(
            a,
            w.app.id,
            w.cs.id,
            Default::default()
        )),
        case!(submit_changeset, NonMember, NotFound, |w, a| w.c.submit_changeset(a, w.app.id, w.cs.id)),
        case!(submit_changeset_with_overrides, NonMember, NotFound, |w, a| w.c.submit_changeset_with_overrides(
            a,
            w.app.id,
            w.cs.id,
            Vec::new()
        )),
        case!(resubmit_changeset, NonMember, NotFound, |w, a| w.c.resubmit_changeset(a, w.app.id, w.cs.id)),
        case!(review_changeset, NonMember, NotFound, |w, a| w.c.review_changeset(a, w.app.id, w.cs.id, approve())),
        case!(queue_changeset, NonMember, NotFound, |w, a| w.c.queue_changeset(a, w.app.id, w.cs.id)),
        case!(create_release, NonMember, NotFound, |w, a| w.c.create_release(a, w.app.id, None)),
        case!(list_releases, NonMember, NotFound, |w, a| w.c.list_releases(a, w.app.id, Default::default(), page())),
        case!(get_release, NonMember, NotFound, |w, a| w.c.get_release(a, w.app.id, ReleaseId(uuid::Uuid::now_v7()))),
        case!(set_release_changesets, NonMember, NotFound, |w, a| w.c.set_release_changesets(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7()),
            &[w.cs.id]
        )),
        case!(reorder_release, NonMember, NotFound, |w, a| w.c.reorder_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7()),
            &[w.cs.id]
        )),
        case!(assemble_release, NonMember, NotFound, |w, a| w.c.assemble_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7())
        )),
        case!(publish_release, NonMember, NotFound, |w, a| w.c.publish_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7())
        )),
        case!(deploy_release, NonMember, NotFound, |w, a| w.c.deploy_release(
            a,
            w.app.id,
            super::DeployRequest {
                release_id: ReleaseId(uuid::Uuid::now_v7()),
                environment_ids: vec![crate::ids::EnvironmentId(uuid::Uuid::now_v7())],
                is_skip_stage: false,
                is_concurrent_batch: false,
                freeze_override: None
            }
        )),
        case!(promote_release, NonMember, NotFound, |w, a| w.c.promote_release(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(list_freeze_windows, NonMember, NotFound, |w, a| w.c.list_freeze_windows(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(create_freeze_window, NonMember, NotFound, |w, a| w.c.create_freeze_window(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            one_off_freeze(),
            "release train"
        )),
        case!(delete_freeze_window, NonMember, NotFound, |w, a| w.c.delete_freeze_window(
            a,
            w.app.id,
            crate::ids::FreezeWindowId(uuid::Uuid::now_v7())
        )),
        case!(start_drift_check, NonMember, NotFound, |w, a| w.c.start_drift_check(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(redeploy_prior, NonMember, NotFound, |w, a| w.c.redeploy_prior(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(list_migration_executions, NonMember, NotFound, |w, a| w.c.list_migration_executions(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            PageRequest::default()
        )),
        case!(create_drift_fix_changeset, NonMember, NotFound, |w, a| w.c.create_drift_fix_changeset(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(revert_and_release, NonMember, NotFound, |w, a| w.c.revert_and_release(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(approve_deployment, NonMember, NotFound, |w, a| w.c.approve_deployment(
            a,
            w.app.id,
            crate::ids::DeploymentId(uuid::Uuid::now_v7())
        )),
        case!(reject_deployment, NonMember, NotFound, |w, a| w.c.reject_deployment(
            a,
            w.app.id,
            crate::ids::DeploymentId(uuid::Uuid::now_v7()),
            None
        )),
        case!(cancel_deployment, NonMember, NotFound, |w, a| w.c.cancel_deployment(
            a,
            w.app.id,
            crate::ids::DeploymentId(uuid::Uuid::now_v7())
        )),
        case!(list_deployments, NonMember, NotFound, |w, a| w.c.list_deployments(
            a,
            w.app.id,
            Default::default(),
            Default::default()
        )),
        case!(get_deployment, NonMember, NotFound, |w, a| w.c.get_deployment(
            a,
            w.app.id,
            crate::ids::DeploymentId(uuid::Uuid::now_v7())
        )),
        case!(environment_status, NonMember, NotFound, |w, a| w.c.environment_status(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(move_changeset_to_draft, NonMember, NotFound, |w, a| w.c.move_changeset_to_draft(a, w.app.id, w.cs.id)),
        case!(changeset_diff, NonMember, NotFound, |w, a| w.c.changeset_diff(
            a,
            w.app.id,
            w.cs.id,
            DiffMode::Raw,
            None
        )),
        case!(changeset_profile_overrides, NonMember, NotFound, |w, a| w
            .c
            .changeset_profile_overrides(a, w.app.id, w.cs.id)),
        case!(put_changeset_profile_overrides, NonMember, NotFound, |w, a| w.c.put_changeset_profile_overrides(
            a,
            w.app.id,
            w.cs.id,
            Vec::new()
        )),
        case!(add_comment, NonMember, NotFound, |w, a| w.c.add_comment(a, w.app.id, w.cs.id, hi())),
        case!(list_comments, NonMember, NotFound, |w, a| w.c.list_comments(a, w.app.id, w.cs.id, page())),
        case!(edit_comment, NonMember, NotFound, |w, a| w.c.edit_comment(a, w.app.id, w.cs.id, w.comment.id, "edited")),
        case!(create_runtime_profile, NonMember, NotFound, |w, a| w.c.create_runtime_profile(
            a,
            w.app.id,
            qa_profile()
        )),
        case!(list_runtime_profiles, NonMember, NotFound, |w, a| w.c.list_runtime_profiles(a, w.app.id, page())),
        case!(get_runtime_profile, NonMember, NotFound, |w, a| w.c.get_runtime_profile(a, w.app.id, w.profile.id)),
        case!(patch_runtime_profile, NonMember, NotFound, |w, a| w.c.patch_runtime_profile(
            a,
            w.app.id,
            w.profile.id,
            Default::default()
        )),
        case!(runtime_profile_revisions, NonMember, NotFound, |w, a| w.c.runtime_profile_revisions(
            a,
            w.app.id,
            w.profile.id,
            page()
        )),
        case!(revert_runtime_profile, NonMember, NotFound, |w, a| w.c.revert_runtime_profile(
            a,
            w.app.id,
            w.profile.id,
            1
        )),
        case!(reveal_secret, NonMember, NotFound, |w, a| w.c.reveal_secret(a, w.app.id, w.profile.id, "TOKEN")),
        case!(list_environments, NonMember, NotFound, |w, a| w.c.list_environments(a, w.app.id)),
        case!(replace_environments, NonMember, NotFound, |w, a| w.c.replace_environments(a, w.app.id, Vec::new())),
        case!(query_audit, NonMember, NotFound, |w, a| w.c.query_audit(a, w.app.id, Default::default(), page())),
        case!(list_jobs, NonMember, NotFound, |w, a| w.c.list_jobs(a, w.app.id, Default::default(), page())),
        case!(get_job, NonMember, NotFound, |w, a| w.c.get_job(a, w.app.id, w.job.id)),
        case!(job_log, NonMember, NotFound, |w, a| w.c.job_log(a, w.app.id, w.job.id, 0, 10)),
        case!(read_job_log, NonMember, NotFound, |w, a| w.c.read_job_log(a, w.app.id, w.job.id, 0, 10)),
        case!(cancel_job, NonMember, NotFound, |w, a| w.c.cancel_job(a, w.app.id, w.job.id)),
        case!(start_gate_run, NonMember, NotFound, |w, a| w.c.start_gate_run(a, w.app.id, GateKind::Submit, None)),
        // Members without the role (SPEC §3).
        case!(update_settings, ConfigManager, Forbidden, |w, a| w.c.update_settings(a, w.app.id, Default::default())),
        case!(put_member, ConfigManager, Forbidden, |w, a| w.c.put_member(a, w.app.id, w.uma.user.id, Role::AppAdmin)),
        case!(remove_member, ConfigManager, Forbidden, |w, a| w.c.remove_member(a, w.app.id, w.uma.user.id)),
        case!(create_invite, ConfigManager, Forbidden, |w, a| w.c.create_invite(
            a,
            w.app.id,
            "x@example.com",
            Role::User
        )),
        case!(list_invites, ConfigManager, Forbidden, |w, a| w.c.list_invites(a, w.app.id, page())),
        case!(resend_invite, ConfigManager, Forbidden, |w, a| w.c.resend_invite(a, w.app.id, w.invite.id)),
        case!(revoke_invite, ConfigManager, Forbidden, |w, a| w.c.revoke_invite(a, w.app.id, w.invite.id)),
        case!(create_runtime_profile, ConfigManager, Forbidden, |w, a| w.c.create_runtime_profile(
            a,
            w.app.id,
            qa_profile()
        )),
        case!(patch_runtime_profile, ConfigManager, Forbidden, |w, a| w.c.patch_runtime_profile(
            a,
            w.app.id,
            w.profile.id,
            Default::default()
        )),
        case!(revert_runtime_profile, ConfigManager, Forbidden, |w, a| w.c.revert_runtime_profile(
            a,
            w.app.id,
            w.profile.id,
            1
        )),
        case!(reveal_secret, ConfigManager, Forbidden, |w, a| w.c.reveal_secret(a, w.app.id, w.profile.id, "TOKEN")),
        case!(replace_environments, ConfigManager, Forbidden, |w, a| w.c.replace_environments(a, w.app.id, Vec::new())),
        case!(queue_changeset, Reviewer, Forbidden, |w, a| w.c.queue_changeset(a, w.app.id, w.cs.id)),
        case!(create_release, Reviewer, Forbidden, |w, a| w.c.create_release(a, w.app.id, Some("r"))),
        case!(set_release_changesets, Reviewer, Forbidden, |w, a| w.c.set_release_changesets(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7()),
            &[w.cs.id]
        )),
        case!(reorder_release, Reviewer, Forbidden, |w, a| w.c.reorder_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7()),
            &[w.cs.id]
        )),
        case!(assemble_release, Reviewer, Forbidden, |w, a| w.c.assemble_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7())
        )),
        case!(publish_release, User, Forbidden, |w, a| w.c.publish_release(
            a,
            w.app.id,
            ReleaseId(uuid::Uuid::now_v7())
        )),
        case!(deploy_release, Reviewer, Forbidden, |w, a| w.c.deploy_release(
            a,
            w.app.id,
            super::DeployRequest {
                release_id: ReleaseId(uuid::Uuid::now_v7()),
                environment_ids: vec![crate::ids::EnvironmentId(uuid::Uuid::now_v7())],
                is_skip_stage: false,
                is_concurrent_batch: false,
                freeze_override: None
            }
        )),
        case!(promote_release, Reviewer, Forbidden, |w, a| w.c.promote_release(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(create_freeze_window, ConfigManager, Forbidden, |w, a| w.c.create_freeze_window(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            one_off_freeze(),
            "release train"
        )),
        case!(delete_freeze_window, ConfigManager, Forbidden, |w, a| w.c.delete_freeze_window(
            a,
            w.app.id,
            crate::ids::FreezeWindowId(uuid::Uuid::now_v7())
        )),
        case!(start_drift_check, Reviewer, Forbidden, |w, a| w.c.start_drift_check(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(redeploy_prior, User, Forbidden, |w, a| w.c.redeploy_prior(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(create_drift_fix_changeset, Reviewer, Forbidden, |w, a| w.c.create_drift_fix_changeset(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7())
        )),
        case!(revert_and_release, Reviewer, Forbidden, |w, a| w.c.revert_and_release(
            a,
            w.app.id,
            crate::ids::EnvironmentId(uuid::Uuid::now_v7()),
            None,
            None
        )),
        case!(review_changeset, User, Forbidden, |w, a| w.c.review_changeset(a, w.app.id, w.cs.id, approve())),
        case!(start_gate_run, User, Forbidden, |w, a| w.c.start_gate_run(a, w.app.id, GateKind::Submit, None)),
        case!(cancel_job, User, Forbidden, |w, a| w.c.cancel_job(a, w.app.id, w.job.id)),
        // Another member's workspace, changeset and comment.
        case!(write_file, Reviewer, Forbidden, |w, a| w.c.write_file(
            a,
            w.app.id,
            w.ws.id,
            "a.yaml",
            b"a: 1\n".to_vec(),
            None
        )),
        case!(delete_file, Reviewer, Forbidden, |w, a| w.c.delete_file(a, w.app.id, w.ws.id, "a.yaml", None)),
        case!(apply_changes, Reviewer, Forbidden, |w, a| w.c.apply_changes(a, w.app.id, w.ws.id, delete_op(), None)),
        case!(checkpoint, Reviewer, Forbidden, |w, a| w.c.checkpoint(a, w.app.id, w.ws.id, "cp")),
        case!(reset_workspace, Reviewer, Forbidden, |w, a| w.c.reset_workspace(a, w.app.id, w.ws.id)),
        case!(sync_integration, Reviewer, Forbidden, |w, a| w.c.sync_integration(a, w.app.id, w.ws.id, None)),
        case!(update_workspace, Reviewer, Forbidden, |w, a| w.c.update_workspace(
            a,
            w.app.id,
            w.ws.id,
            Some("t".into()),
            None
        )),
        case!(create_changeset, Reviewer, Forbidden, |w, a| w.c.create_changeset(a, w.app.id, new_changeset(w.ws.id))),
        case!(update_changeset, Reviewer, Forbidden, |w, a| w.c.update_changeset(
            a,
            w.app.id,
            w.cs.id,
            Default::default()
        )),
        case!(submit_changeset, Reviewer, Forbidden, |w, a| w.c.submit_changeset(a, w.app.id, w.cs.id)),
        case!(submit_changeset_with_overrides, Reviewer, Forbidden, |w, a| w.c.submit_changeset_with_overrides(
            a,
            w.app.id,
            w.cs.id,
            Vec::new()
        )),
        case!(resubmit_changeset, Reviewer, Forbidden, |w, a| w.c.resubmit_changeset(a, w.app.id, w.cs.id)),
        case!(move_changeset_to_draft, Reviewer, Forbidden, |w, a| w.c.move_changeset_to_draft(a, w.app.id, w.cs.id)),
        case!(put_changeset_profile_overrides, Reviewer, Forbidden, |w, a| w.c.put_changeset_profile_overrides(
            a,
            w.app.id,
            w.cs.id,
            Vec::new()
        )),
        case!(edit_comment, Reviewer, Forbidden, |w, a| w.c.edit_comment(a, w.app.id, w.cs.id, w.comment.id, "edited")),
    ]
}

impl World {
    fn who(&self, who: Who) -> &Actor {
        match who {
            Who::NonMember | Who::Anonymous => &self.nina,
            Who::User => &self.uma,
            Who::Reviewer => &self.rita,
            Who::ConfigManager => &self.carl,
            Who::AppAdmin => &self.admin,
        }
    }
}

#[tokio::test]
async fn every_refusal_comes_before_any_effect() {
    let w = world().await;
    let before = w.store.snapshot();
    let mut wrong = Vec::new();
    for case in cases() {
        let caller = w.who(case.who);
        match (case.call)(&w, caller).await {
            Err(e) if e.code() == case.code => {}
            other => wrong.push(format!("{} as {:?}: wanted {:?}, got {other:?}", case.method, case.who, case.code)),
        }
        if w.store.snapshot() != before {
            panic!("{} as {:?} changed the store although it was refused", case.method, case.who);
        }
    }
    assert!(wrong.is_empty(), "{} refusals differ:\n{}", wrong.len(), wrong.join("\n"));
}

/// The methods of `impl Conman` in the frozen surface.
fn surface_methods() -> BTreeSet<String> {
    let section = SURFACE.split("// ---- impl Conman\n").nth(1).expect("the surface lists impl Conman");
    let section = section.split("\n// ---- ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix("pub async fn ").or_else(|| l.strip_prefix("pub fn ")))
        .map(|l| l.split(['(', '<']).next().unwrap_or(l).to_owned())
        .collect()
}

#[test]
fn the_list_covers_every_public_method() {
    let surface = surface_methods();
    assert!(surface.len() > 50, "the surface parse found only {surface:?}");
    let cased: BTreeSet<String> = cases().iter().map(|c| c.method.to_owned()).collect();
    let exempt: BTreeSet<String> = EXEMPT.iter().map(|(m, _)| (*m).to_owned()).collect();
    let both: Vec<_> = cased.intersection(&exempt).collect();
    assert!(both.is_empty(), "both a case and exempt: {both:?}");
    let listed: BTreeSet<String> = cased.union(&exempt).cloned().collect();
    let missing: Vec<_> = surface.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&surface).collect();
    assert!(missing.is_empty(), "public methods with no refusal case and no exemption: {missing:?}");
    assert!(stale.is_empty(), "listed but not public methods of Conman: {stale:?}");
}
