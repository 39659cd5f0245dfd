//! Builders of valid entities and small helpers shared by the conformance
//! cases (and by store crates' own tests).
//!
//! Invariant: every builder returns a value the core could have produced —
//! fresh UUIDv7 ids, microsecond timestamps, validated emails and handles —
//! so a store is never tested on input the core would refuse.

use chrono::{SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use crate::domain::app::{App, AppSettings};
use crate::domain::audit::{AuditEntry, AuditRecord, RequestContext, GENESIS_HASH};
use crate::domain::changeset::{Changeset, ChangesetRevision, ChangesetState};
use crate::domain::comment::Comment;
use crate::domain::deployment::{Deployment, DeploymentKind, DeploymentState};
use crate::domain::drift::{EnvironmentValidation, MigrationExecution, ValidationSource};
use crate::domain::environment::Environment;
use crate::domain::freeze::{FreezeSchedule, FreezeWindow};
use crate::domain::invite::{Invite, InviteState};
use crate::domain::job::{Job, JobState, JobType};
use crate::domain::membership::Membership;
use crate::domain::outbox::OutboxMessage;
use crate::domain::release::{Release, ReleaseItem, ReleaseState};
use crate::domain::review::{Review, ReviewAction};
use crate::domain::runtime_profile::{
    DataStrategy, DatabaseSettings, Lifecycle, MigrationSettings, ProfileKind, ProfileRevision, RevisionReason,
    RuntimeProfile,
};
use crate::domain::user::{Credential, CredentialKind, PasswordReset, User};
use crate::domain::workspace::Workspace;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{
    AppId, AuditEventId, ChangesetId, CommentId, CredentialId, DeploymentId, EnvironmentId, EnvironmentValidationId,
    FreezeWindowId, InviteId, JobId, MigrationExecutionId, OutboxMessageId, PasswordResetId, ReleaseId, ReviewId,
    RuntimeProfileId, UserId, WorkspaceId,
};
use crate::ports::crypto::{SealedSecret, SEALED_FORMAT_VERSION};
use crate::ports::store::{Mutation, SecretOwner, Store, StoredSecret, UnitOfWork, UserMutation};
use crate::rbac::Role;
use crate::validation::{Email, Handle};

/// Now, truncated to microseconds like the system clock.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// `base` moved by `secs` seconds.
pub fn later(base: Timestamp, secs: i64) -> Timestamp {
    base + TimeDelta::seconds(secs)
}

/// A valid email `<local>@example.com`.
pub fn email(local: &str) -> Email {
    Email::parse(&format!("{local}@example.com")).expect("fixture email is valid")
}

/// A user whose handle is `handle` and email `<handle>@example.com`.
pub fn user(handle: &str) -> User {
    let at = now();
    User {
        id: UserId(Uuid::now_v7()),
        email: email(handle),
        name: format!("User {handle}"),
        handle: Handle::parse(handle).expect("fixture handle is valid"),
        password_hash: format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$hash-of-{handle}"),
        is_operator: false,
        email_notifications: true,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// An app named `name` created by `creator`, with default settings.
pub fn app(name: &str, creator: &User) -> App {
    let at = now();
    App {
        id: AppId(Uuid::now_v7()),
        name: name.into(),
        settings: AppSettings::default(),
        created_by: creator.id,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// `user`'s membership of `app` with `role`.
pub fn membership(app: &App, user: &User, role: Role) -> Membership {
    Membership { app_id: app.id, user_id: user.id, role, created_at: now() }
}

/// A pending invite of `local@example.com` to `app`, by `by`.
pub fn invite(app: &App, local: &str, by: &User) -> Invite {
    let at = now();
    Invite {
        id: InviteId(Uuid::now_v7()),
        app_id: app.id,
        email: email(local),
        role: Role::Reviewer,
        token_hash: token_hash(),
        state: InviteState::Pending,
        invited_by: by.id,
        created_at: at,
        expires_at: later(at, 7 * 24 * 3600),
        accepted_by: None,
        version: 1,
    }
}

/// A workspace of `owner` in `app` on branch `ws/<handle>/<slug>`.
pub fn workspace(app: &App, owner: &User, slug: &str) -> Workspace {
    let at = now();
    Workspace {
        id: WorkspaceId(Uuid::now_v7()),
        app_id: app.id,
        owner_id: owner.id,
        branch: format!("ws/{}/{slug}", owner.handle.as_str()),
        title: Some(format!("Workspace {slug}")),
        is_default: slug == "default",
        base_sha: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
        commit_mode: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// A draft release of `app` by `by`, selecting `changesets`.
pub fn release(app: &App, by: &User, changesets: &[ChangesetId]) -> Release {
    let at = now();
    Release {
        id: ReleaseId(Uuid::now_v7()),
        app_id: app.id,
        title: "Weekly".into(),
        state: ReleaseState::Draft,
        items: changesets.iter().map(|id| ReleaseItem { changeset_id: *id, revision: 0, outcome: None }).collect(),
        base_sha: None,
        composed_sha: None,
        assemble_job_id: None,
        gates: Vec::new(),
        failure: None,
        tag: None,
        created_by: by.id,
        assembled_by: None,
        assembled_at: None,
        published_by: None,
        published_at: None,
        reverts_release_id: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// A queued system job of `app`, runnable now, never attempted.
pub fn job(app: &App, job_type: JobType) -> Job {
    let at = now();
    Job {
        id: JobId(Uuid::now_v7()),
        app_id: app.id,
        job_type,
        state: JobState::Queued,
        entity_type: None,
        entity_id: None,
        payload: serde_json::json!({}),
        attempts: 0,
        max_attempts: 3,
        run_after: at,
        lease_owner: None,
        lease_expires_at: None,
        timeout_secs: 600,
        cancel_requested: false,
        result: None,
        error: None,
        created_by: None,
        created_at: at,
        started_at: None,
        finished_at: None,
    }
}

/// A draft changeset of `author` on `ws` (never submitted: revision 0, no
/// head, no dependencies).
pub fn changeset(ws: &Workspace, author: &User, title: &str) -> Changeset {
    let at = now();
    Changeset {
        id: ChangesetId(Uuid::now_v7()),
        app_id: ws.app_id,
        workspace_id: ws.id,
        author_id: author.id,
        title: title.into(),
        description: String::new(),
        state: ChangesetState::Draft,
        revision: 0,
        head_sha: None,
        depends_on: Vec::new(),
        gate_job_id: None,
        gate_failure: None,
        queued_at: None,
        last_revalidation: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// A fresh, unique 40-hex commit id.
pub fn sha() -> String {
    format!("{:040x}", Uuid::now_v7().as_u128())
}

/// Revision `number` of `cs`, frozen by `by`, changing `a.yaml`.
pub fn revision(cs: &Changeset, number: u32, by: &User) -> ChangesetRevision {
    ChangesetRevision {
        changeset_id: cs.id,
        number,
        head_sha: sha(),
        base_sha: sha(),
        files: vec!["a.yaml".into()],
        gate_job_id: None,
        created_by: by.id,
        created_at: now(),
    }
}

/// `reviewer`'s vote `action` on revision `revision` of `cs`, without comment.
pub fn review(cs: &Changeset, revision: u32, reviewer: &User, action: ReviewAction) -> Review {
    Review {
        id: ReviewId(Uuid::now_v7()),
        changeset_id: cs.id,
        revision,
        reviewer_id: reviewer.id,
        action,
        comment: None,
        created_at: now(),
    }
}

/// An unanchored, never edited comment of `author` on `cs`.
pub fn comment(cs: &Changeset, author: &User, body: &str) -> Comment {
    let at = now();
    Comment {
        id: CommentId(Uuid::now_v7()),
        changeset_id: cs.id,
        author_id: author.id,
        body: body.into(),
        anchor: None,
        edits: Vec::new(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// A fresh, unique hex SHA-256-like token hash.
pub fn token_hash() -> String {
    format!("{:032x}{:032x}", Uuid::now_v7().as_u128(), Uuid::now_v7().as_u128().reverse_bits())
}

/// A session credential of `user`.
pub fn credential(user: &User, kind: CredentialKind) -> Credential {
    let at = now();
    Credential {
        id: CredentialId(Uuid::now_v7()),
        user_id: user.id,
        kind,
        name: match kind {
            CredentialKind::Session => "session".into(),
            CredentialKind::ApiToken => "ci".into(),
        },
        token_hash: token_hash(),
        created_at: at,
        expires_at: Some(later(at, 3600)),
        revoked_at: None,
    }
}

/// A password reset of `user`, valid for an hour.
pub fn password_reset(user: &User) -> PasswordReset {
    let at = now();
    PasswordReset {
        id: PasswordResetId(Uuid::now_v7()),
        user_id: user.id,
        token_hash: token_hash(),
        created_at: at,
        expires_at: later(at, 3600),
        used_at: None,
    }
}

/// An undelivered outbox message to `local@example.com`.
pub fn outbox(local: &str, app_id: Option<AppId>) -> OutboxMessage {
    OutboxMessage {
        id: OutboxMessageId(Uuid::now_v7()),
        recipient: email(local),
        app_id,
        kind: "invite".into(),
        subject: format!("Hello {local}"),
        body: "Accept with token cm_abc".into(),
        created_at: now(),
        delivered_at: None,
    }
}

/// An audit entry of `action` on `entity_type`/`entity_id`.
pub fn audit_entry(action: &str, entity_type: &str, entity_id: &str) -> AuditEntry {
    AuditEntry {
        id: AuditEventId(Uuid::now_v7()),
        occurred_at: now(),
        actor_id: None,
        app_id: None,
        entity_type: entity_type.into(),
        entity_id: entity_id.into(),
        action: action.into(),
        before: None,
        after: None,
        git_sha: None,
        request: RequestContext::default(),
    }
}

/// The audit entry the core writes for inserting `user`.
pub fn user_created(user: &User) -> AuditEntry {
    let mut e = audit_entry("user.created", "user", &user.id.to_string());
    e.after = Some(serde_json::json!({ "email": user.email, "handle": user.handle }));
    e
}

/// `value` with `version` + 1, as the core prepares an `Update*`.
pub fn bumped_user(user: &User) -> User {
    User { version: user.version + 1, updated_at: later(user.updated_at, 1), ..user.clone() }
}

/// Commits `mutations` with one audit entry per mutation.
pub async fn commit<S: Store + ?Sized, M: Into<Mutation>>(
    store: &S,
    mutations: impl IntoIterator<Item = M>,
) -> Result<(), Error> {
    let mut unit = UnitOfWork::new();
    for (i, m) in mutations.into_iter().enumerate() {
        unit = unit.record(m, audit_entry("test.mutation", "test", &i.to_string()));
    }
    store.commit(unit).await
}

/// Commits `mutations`, panicking on failure (setup steps).
pub async fn setup<S: Store + ?Sized, M: Into<Mutation>>(store: &S, mutations: impl IntoIterator<Item = M>) {
    commit(store, mutations).await.expect("setup unit commits");
}

/// Inserts users with these handles and returns them.
pub async fn users<S: Store + ?Sized>(store: &S, handles: &[&str]) -> Vec<User> {
    let users: Vec<User> = handles.iter().map(|h| user(h)).collect();
    setup(store, users.iter().cloned().map(UserMutation::InsertUser)).await;
    users
}

/// Walks the whole audit chain in pages of `page` records, verifying every
/// segment from [`GENESIS_HASH`]; returns the records in chain order.
pub async fn verified_chain<S: Store + ?Sized>(store: &S, page: u32) -> Vec<AuditRecord> {
    let (mut seq, mut hash) = (0_i64, GENESIS_HASH.to_owned());
    let mut all = Vec::new();
    loop {
        let records = store.audit_chain(seq, page).await.expect("audit_chain reads");
        assert!(records.len() <= page as usize, "audit_chain returned more than its limit");
        if records.is_empty() {
            return all;
        }
        (seq, hash) = crate::domain::audit::verify_segment(seq, &hash, &records)
            .unwrap_or_else(|b| panic!("audit chain broken at {}: {}", b.seq, b.reason));
        all.extend(records);
    }
}

/// A minimal persistent-env runtime profile `name` of `app` at revision 1:
/// no vars, no secrets, every section at its default.
pub fn runtime_profile(app: &App, name: &str) -> RuntimeProfile {
    let at = now();
    RuntimeProfile {
        id: RuntimeProfileId(Uuid::now_v7()),
        app_id: app.id,
        name: name.into(),
        kind: ProfileKind::PersistentEnv,
        base_url: None,
        env_vars: Default::default(),
        secrets: Default::default(),
        database: DatabaseSettings::default(),
        migrations: MigrationSettings::default(),
        data_strategy: DataStrategy::None,
        lifecycle: Lifecycle::default(),
        revision: 1,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// Revision `number` of `profile` (its current document), a patch by `author`.
pub fn profile_revision(profile: &RuntimeProfile, number: u32, author: &User) -> ProfileRevision {
    ProfileRevision {
        number,
        created_at: now(),
        ..ProfileRevision::snapshot(profile, author.id, RevisionReason::Patch)
    }
}

/// A sealed value wrapped by `key_id`: literal, unique bytes (with NUL and
/// 0xFF bytes in them), never opened by the store.
pub fn sealed(key_id: &str) -> SealedSecret {
    let unique = Uuid::now_v7();
    let mut ciphertext = vec![0x00, 0xff, 0x7f, 0x80];
    ciphertext.extend_from_slice(unique.as_bytes());
    ciphertext.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
    SealedSecret {
        version: SEALED_FORMAT_VERSION,
        key_id: key_id.into(),
        wrap_nonce: [unique.as_bytes().as_slice(), &[0u8; 8]].concat(),
        wrapped_key: [[0xffu8; 16].as_slice(), unique.as_bytes(), &[1u8; 16]].concat(),
        value_nonce: [&[0u8; 8], unique.as_bytes().as_slice()].concat(),
        ciphertext,
    }
}

/// A sealed secret `name` of `owner` (in `app_id`) at `revision`, wrapped by `key_id`.
pub fn stored_secret(app_id: AppId, owner: SecretOwner, name: &str, revision: u32, key_id: &str) -> StoredSecret {
    StoredSecret { app_id, owner, name: name.into(), revision, sealed: sealed(key_id), created_at: now() }
}

/// An environment `name` of `app` at `position`, without a profile.
pub fn environment(app: &App, name: &str, position: u32, is_canonical: bool) -> Environment {
    Environment {
        id: EnvironmentId(Uuid::now_v7()),
        app_id: app.id,
        name: name.into(),
        position,
        is_canonical,
        runtime_profile_id: None,
    }
}

/// A pending deployment of `release` to `env` requested by `by`, needing
/// no approvals and holding its environment (`active`).
pub fn deployment(env: &Environment, release: &Release, by: &User) -> Deployment {
    let at = now();
    Deployment {
        id: DeploymentId(Uuid::now_v7()),
        app_id: env.app_id,
        environment_id: env.id,
        release_id: release.id,
        commit: sha(),
        kind: DeploymentKind::Deploy,
        exception: None,
        group_id: None,
        state: DeploymentState::Pending,
        approvals: Vec::new(),
        rejection: None,
        approval_expires_at: None,
        active: true,
        requested_by: by.id,
        job_id: None,
        previous_commit: None,
        previous_release_id: None,
        rolled_back_release_id: None,
        profile_revision: None,
        freeze_override: None,
        failure: None,
        created_at: at,
        started_at: None,
        finished_at: None,
        updated_at: at,
        version: 1,
    }
}

/// A freeze window of `env` with `schedule`, created by `by`.
pub fn freeze_window(env: &Environment, by: &User, schedule: FreezeSchedule) -> FreezeWindow {
    FreezeWindow {
        id: FreezeWindowId(Uuid::now_v7()),
        app_id: env.app_id,
        environment_id: env.id,
        schedule,
        reason: "quarter-end close".into(),
        created_by: by.id,
        created_at: now(),
    }
}

/// A validation of `env` by `source`, at profile revision 1 with no
/// migration records.
pub fn validation(env: &Environment, source: ValidationSource) -> EnvironmentValidation {
    EnvironmentValidation {
        id: EnvironmentValidationId(Uuid::now_v7()),
        app_id: env.app_id,
        environment_id: env.id,
        profile_id: env.runtime_profile_id,
        profile_revision: Some(1),
        migrations_fingerprint: crate::domain::drift::migrations_fingerprint(&[]),
        source,
        at: now(),
    }
}

/// A migration record of `deployment` (on its environment and release).
pub fn migration_execution(deployment: &Deployment) -> MigrationExecution {
    MigrationExecution {
        id: MigrationExecutionId(Uuid::now_v7()),
        app_id: deployment.app_id,
        environment_id: deployment.environment_id,
        release_id: deployment.release_id,
        deployment_id: deployment.id,
        paths: vec!["db/migrations".into()],
        command: Some("./migrate up".into()),
        applied_state: None,
        profile_revision: 1,
        recorded_at: now(),
    }
}
