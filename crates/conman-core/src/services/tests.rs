//! Unit tests of the services with a mocked store and a git port that fails the test if reached: they prove that a refused
//! request stops before any effect (no git write, no store commit).

use std::sync::Arc;

use async_trait::async_trait;
use mockall::mock;

use super::*;
use crate::domain::app::{App, AppSettings};
use crate::domain::audit::AuditRecord;
use crate::domain::invite::Invite;
use crate::domain::membership::Membership;
use crate::domain::outbox::OutboxMessage;
use crate::domain::user::{Credential, PasswordReset, User};
use crate::domain::workspace::Workspace;
use crate::error::Error;
use crate::ids::*;
use crate::ports::git::*;
use crate::ports::store::*;
use crate::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use crate::rbac::Role;
use crate::validation::{Email, Handle, RepoPath};

mock! {
    pub Store {}
    #[async_trait]
    impl UserStore for Store {
        async fn user(&self, id: UserId) -> Result<Option<User>, Error>;
        async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error>;
        async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error>;
        async fn list_users(&self, page: PageRequest) -> Result<Page<User>, Error>;
        async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error>;
        async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error>;
        async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error>;
    }
    #[async_trait]
    impl AppStore for Store {
        async fn app(&self, id: AppId) -> Result<Option<App>, Error>;
        async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error>;
        async fn list_apps_for_user(&self, user_id: UserId, page: PageRequest) -> Result<Page<App>, Error>;
        async fn list_all_apps(&self, page: PageRequest) -> Result<Page<App>, Error>;
        async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error>;
        async fn list_members(&self, app_id: AppId, page: PageRequest) -> Result<Page<MemberRecord>, Error>;
        async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error>;
        async fn invite(&self, app_id: AppId, id: InviteId) -> Result<Option<Invite>, Error>;
        async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error>;
        async fn list_invites(&self, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error>;
    }
    #[async_trait]
    impl WorkspaceStore for Store {
        async fn workspace(&self, app_id: AppId, id: WorkspaceId) -> Result<Option<Workspace>, Error>;
        async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error>;
        async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error>;
        async fn list_workspaces(&self, app_id: AppId, owner_id: Option<UserId>, page: PageRequest) -> Result<Page<Workspace>, Error>;
        async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error>;
    }
    #[async_trait]
    impl ChangesetStore for Store {
        async fn changeset(&self, app_id: AppId, id: ChangesetId) -> Result<Option<crate::domain::changeset::Changeset>, Error>;
        async fn list_changesets(&self, app_id: AppId, filter: &ChangesetFilter, page: PageRequest) -> Result<Page<crate::domain::changeset::Changeset>, Error>;
        async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<crate::domain::changeset::Changeset>, Error>;
        async fn changeset_revisions(&self, id: ChangesetId) -> Result<Vec<crate::domain::changeset::ChangesetRevision>, Error>;
        async fn changeset_reviews(&self, id: ChangesetId) -> Result<Vec<crate::domain::review::Review>, Error>;
        async fn comment(&self, changeset_id: ChangesetId, id: CommentId) -> Result<Option<crate::domain::comment::Comment>, Error>;
        async fn list_comments(&self, changeset_id: ChangesetId, page: PageRequest) -> Result<Page<crate::domain::comment::Comment>, Error>;
    }

    #[async_trait]
    impl ProfileStore for Store {
        async fn runtime_profile(&self, app_id: AppId, id: RuntimeProfileId) -> Result<Option<crate::domain::runtime_profile::RuntimeProfile>, Error>;
        async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<crate::domain::runtime_profile::RuntimeProfile>, Error>;
        async fn list_runtime_profiles(&self, app_id: AppId, page: PageRequest) -> Result<Page<crate::domain::runtime_profile::RuntimeProfile>, Error>;
        async fn profile_revisions(&self, id: RuntimeProfileId, page: PageRequest) -> Result<Page<crate::domain::runtime_profile::revision::ProfileRevision>, Error>;
        async fn profile_revision(&self, id: RuntimeProfileId, number: u32) -> Result<Option<crate::domain::runtime_profile::revision::ProfileRevision>, Error>;
        async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error>;
        async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error>;
        async fn all_secrets(&self, after: Option<(SecretOwner, String, u32)>, limit: u32) -> Result<Vec<StoredSecret>, Error>;
        async fn secrets_key_id(&self) -> Result<Option<String>, Error>;
        async fn environments(&self, app_id: AppId) -> Result<Vec<crate::domain::environment::Environment>, Error>;
        async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<crate::domain::runtime_profile::overrides::ProfileOverride>, Error>;
    }

    #[async_trait]
    impl AuditStore for Store {
        async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditRecord>, Error>;
        async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error>;
        async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error>;
    }
    #[async_trait]
    impl JobStore for Store {
        async fn job(&self, app_id: AppId, id: JobId) -> Result<Option<crate::domain::job::Job>, Error>;
        async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, page: PageRequest) -> Result<Page<crate::domain::job::Job>, Error>;
        async fn claim_job(&self, claim: &JobClaim) -> Result<Option<crate::domain::job::Job>, Error>;
        async fn renew_job_lease(&self, id: JobId, worker: &str, until: crate::domain::Timestamp) -> Result<Option<bool>, Error>;
        async fn jobs_to_cancel(&self, ids: &[JobId]) -> Result<Vec<JobId>, Error>;
        async fn append_job_log(&self, id: JobId, lines: &[crate::domain::job::NewLogLine], limit_bytes: u64) -> Result<(), Error>;
        async fn job_log(&self, id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error>;
        async fn job_counts(&self) -> Result<Vec<(crate::domain::job::JobType, crate::domain::job::JobState, u64)>, Error>;
    }
    #[async_trait]
    impl OutboxStore for Store {
        async fn list_outbox(&self, page: PageRequest) -> Result<Page<OutboxMessage>, Error>;
    }
    #[async_trait]
    impl Store for Store {
        async fn commit(&self, unit: UnitOfWork) -> Result<(), Error>;
    }
}

/// A git port that must not be reached: every call fails the test.
struct UntouchableGit;

#[async_trait]
impl GitPort for UntouchableGit {
    async fn create_repo(&self, _: AppId, _: RepoSource, _: &str, _: &Signature) -> Result<Sha, Error> {
        panic!("git must not be touched")
    }
    async fn remove_repo(&self, _: AppId) -> Result<(), Error> {
        panic!("git must not be touched")
    }
    async fn resolve_ref(&self, _: AppId, _: &str) -> Result<Option<Sha>, Error> {
        panic!("git must not be touched")
    }
    async fn read(&self, _: AppId, _: &Sha, _: Option<&RepoPath>) -> Result<Option<Node>, Error> {
        panic!("git must not be touched")
    }
    async fn write(&self, _: AppId, _: WriteRequest) -> Result<Sha, Error> {
        panic!("git must not be touched")
    }
    async fn squash(&self, _: AppId, _: SquashRequest) -> Result<Option<Sha>, Error> {
        panic!("git must not be touched")
    }
    async fn sync(&self, _: AppId, _: SyncRequest) -> Result<SyncOutcome, Error> {
        panic!("git must not be touched")
    }
    async fn update_ref(&self, _: AppId, _: &str, _: Option<&Sha>, _: Option<&Sha>) -> Result<(), Error> {
        panic!("git must not be touched")
    }
    async fn merge_base(&self, _: AppId, _: &Sha, _: &Sha) -> Result<Option<Sha>, Error> {
        panic!("git must not be touched")
    }
    async fn is_ancestor(&self, _: AppId, _: &Sha, _: &Sha) -> Result<bool, Error> {
        panic!("git must not be touched")
    }
    async fn diff(&self, _: AppId, _: &Sha, _: &Sha, _: DiffDetail) -> Result<Vec<FileChange>, Error> {
        panic!("git must not be touched")
    }
}

fn user(operator: bool) -> User {
    let now = chrono::Utc::now();
    User {
        id: UserId(uuid::Uuid::now_v7()),
        email: Email::parse("ada@example.com").unwrap(),
        name: "Ada".into(),
        handle: Handle::parse("ada").unwrap(),
        password_hash: String::new(),
        is_operator: operator,
        email_notifications: true,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn app() -> App {
    let now = chrono::Utc::now();
    App {
        id: AppId(uuid::Uuid::now_v7()),
        name: "billing".into(),
        settings: AppSettings::default(),
        created_by: UserId(uuid::Uuid::now_v7()),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn conman(store: MockStore) -> Conman {
    conman_on(Arc::new(store))
}

/// A service on `store` whose git port fails the test if reached.
pub(super) fn conman_on(store: Arc<dyn Store>) -> Conman {
    Conman::new(
        Ports {
            store,
            git: Arc::new(UntouchableGit),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
            tokens: Arc::new(OsRandomTokens),
        },
        Config::default(),
    )
}

fn actor(u: User) -> Actor {
    Actor { user: u, credential_id: None, request: Default::default() }
}

/// A store where the actor has `role` in `app` and nothing may be committed.
fn store_with_member(app: &App, role: Role) -> MockStore {
    let mut store = MockStore::new();
    let (app_c, app_id) = (app.clone(), app.id);
    store
        .expect_membership()
        .returning(move |_, u| Ok(Some(Membership { app_id, user_id: u, role, created_at: chrono::Utc::now() })));
    store.expect_app().returning(move |_| Ok(Some(app_c.clone())));
    store.expect_commit().never();
    store
}

/// A GET is a read: listing workspaces neither commits nor looks for (to
/// create) the caller's default workspace, and the git port is never reached.
#[tokio::test]
async fn listing_workspaces_only_reads() {
    let app = app();
    let mut store = store_with_member(&app, Role::User);
    store.expect_list_workspaces().returning(|_, _, _| Ok(Page { items: Vec::new(), total: 0 }));
    store.expect_default_workspace().never();
    let c = conman(store);
    let page = c.list_workspaces(&actor(user(false)), app.id, PageRequest::default()).await.unwrap();
    assert_eq!(page.total, 0);
}

#[tokio::test]
async fn non_operators_cannot_create_apps_and_nothing_is_touched() {
    let mut store = MockStore::new();
    store.expect_commit().never();
    let c = conman(store);
    let err = c.create_app(&actor(user(false)), NewApp { name: "x".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
}

#[tokio::test]
async fn a_user_cannot_change_settings() {
    let app = app();
    let c = conman(store_with_member(&app, Role::ConfigManager));
    let err = c.update_settings(&actor(user(false)), app.id, Default::default()).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
}

#[tokio::test]
async fn non_members_get_not_found_for_the_app() {
    // The app exists (it is read alongside the membership), yet a
    // non-member is told it does not.
    let existing = app();
    let id = existing.id;
    let mut store = MockStore::new();
    store.expect_membership().returning(|_, _| Ok(None));
    store.expect_app().returning(move |_| Ok(Some(existing.clone())));
    store.expect_commit().never();
    let c = conman(store);
    let err = c.get_app(&actor(user(true)), id).await.unwrap_err();
    assert_eq!(err, Error::NotFound("app"));
}

#[tokio::test]
async fn writing_into_someone_elses_workspace_is_forbidden_before_git() {
    let app = app();
    let mut store = store_with_member(&app, Role::AppAdmin);
    let other_owner = UserId(uuid::Uuid::now_v7());
    let app_id = app.id;
    store.expect_workspace().returning(move |_, id| {
        let now = chrono::Utc::now();
        Ok(Some(Workspace {
            id,
            app_id,
            owner_id: other_owner,
            branch: "ws/bob/default".into(),
            title: None,
            is_default: true,
            base_sha: "0".repeat(40),
            commit_mode: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }))
    });
    let c = conman(store);
    let ws = WorkspaceId(uuid::Uuid::now_v7());
    let err = c.write_file(&actor(user(false)), app.id, ws, "a.yaml", b"x".to_vec(), None).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
}

#[tokio::test]
async fn blocked_and_oversize_writes_stop_before_git() {
    let app = app();
    let me = user(false);
    let mut store = store_with_member(&app, Role::User);
    let (app_id, owner) = (app.id, me.id);
    store.expect_workspace().returning(move |_, id| {
        let now = chrono::Utc::now();
        Ok(Some(Workspace {
            id,
            app_id,
            owner_id: owner,
            branch: "ws/ada/default".into(),
            title: None,
            is_default: true,
            base_sha: "0".repeat(40),
            commit_mode: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }))
    });
    let c = conman(store);
    let ws = WorkspaceId(uuid::Uuid::now_v7());
    let a = actor(me);
    let blocked = c.write_file(&a, app.id, ws, ".github/workflows/x.yml", b"x".to_vec(), None).await.unwrap_err();
    assert_eq!(blocked.details().unwrap()["reason"], "path_blocked");
    let big = vec![b'x'; 5 * 1024 * 1024 + 1];
    let too_big = c.write_file(&a, app.id, ws, "big.bin", big, None).await.unwrap_err();
    assert_eq!(too_big.code(), crate::ErrorCode::PayloadTooLarge);
    let traversal = c.write_file(&a, app.id, ws, "../x", b"x".to_vec(), None).await.unwrap_err();
    assert_eq!(traversal.code(), crate::ErrorCode::Validation);
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized() {
    let mut store = MockStore::new();
    store.expect_credential_by_hash().returning(|_| Ok(None));
    let c = conman(store);
    assert_eq!(c.authenticate("cm_nope", Default::default()).await.unwrap_err(), Error::Unauthorized);
    assert_eq!(c.authenticate("", Default::default()).await.unwrap_err(), Error::Unauthorized);
}

#[tokio::test]
async fn login_does_not_reveal_whether_the_account_exists_and_is_throttled() {
    let mut store = MockStore::new();
    store.expect_user_by_email().returning(|_| Ok(None));
    store.expect_commit().never();
    let c = conman(store);
    let ctx = crate::domain::audit::RequestContext { ip: Some("10.0.0.1".into()), ..Default::default() };
    for _ in 0..5 {
        let err = c.login("ghost@example.com", "whatever-password", ctx.clone()).await.unwrap_err();
        assert_eq!(err, Error::Unauthorized);
    }
    let err = c.login("ghost@example.com", "whatever-password", ctx).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::RateLimited);
}

#[test]
fn every_repo_path_used_in_tests_is_valid() {
    assert!(RepoPath::parse("a.yaml").is_ok());
}

fn running_job(app_id: AppId, attempts: u32) -> crate::domain::job::Job {
    let now = chrono::Utc::now();
    crate::domain::job::Job {
        id: JobId(uuid::Uuid::now_v7()),
        app_id,
        job_type: crate::domain::job::JobType::GateSubmit,
        state: crate::domain::job::JobState::Running,
        entity_type: None,
        entity_id: None,
        payload: serde_json::json!({}),
        attempts,
        max_attempts: 3,
        run_after: now,
        lease_owner: Some("w1".into()),
        lease_expires_at: Some(now),
        timeout_secs: 10,
        cancel_requested: false,
        result: None,
        error: None,
        created_by: None,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
    }
}

/// A store that records the one unit committed.
fn recording_store() -> (MockStore, Arc<std::sync::Mutex<Vec<UnitOfWork>>>) {
    let units = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut store = MockStore::new();
    let sink = units.clone();
    store.expect_job().returning(|_, _| Ok(None));
    store.expect_commit().returning(move |u| {
        sink.lock().unwrap().push(u);
        Ok(())
    });
    (store, units)
}

fn finish_of(unit: &UnitOfWork) -> JobFinish {
    unit.mutations()
        .iter()
        .find_map(|m| match m {
            Mutation::Jobs(JobMutation::FinishJob(f)) => Some(f.clone()),
            _ => None,
        })
        .expect("a FinishJob mutation")
}

#[tokio::test]
async fn a_transient_failure_with_attempts_left_is_retried_after_a_backoff() {
    let (store, units) = recording_store();
    let c = conman(store);
    let job = running_job(AppId(uuid::Uuid::now_v7()), 1);
    let end = AttemptEnd::Finished(JobOutcome::Failed { error: "db hiccup".into(), retryable: true, result: None });
    let state = c.complete_job(&job, "w1", end).await.unwrap();
    assert_eq!(state, crate::domain::job::JobState::Queued);
    let finish = finish_of(&units.lock().unwrap()[0]);
    assert_eq!(finish.state, crate::domain::job::JobState::Queued);
    assert!(finish.run_after.unwrap() > chrono::Utc::now(), "backoff puts the next attempt in the future");
    assert_eq!(finish.finished_at, None);
}

#[tokio::test]
async fn the_last_attempt_fails_for_good_and_a_gate_verdict_is_never_retried() {
    let (store, units) = recording_store();
    let c = conman(store);
    let app = AppId(uuid::Uuid::now_v7());
    let last = running_job(app, 3);
    let end = AttemptEnd::Finished(JobOutcome::Failed { error: "boom".into(), retryable: true, result: None });
    assert_eq!(c.complete_job(&last, "w1", end).await.unwrap(), crate::domain::job::JobState::Failed);
    let first = running_job(app, 1);
    let verdict = AttemptEnd::Finished(JobOutcome::Failed { error: "exit 1".into(), retryable: false, result: None });
    assert_eq!(c.complete_job(&first, "w1", verdict).await.unwrap(), crate::domain::job::JobState::Failed);
    let units = units.lock().unwrap();
    assert!(units.iter().all(|u| finish_of(u).finished_at.is_some()));
}

#[tokio::test]
async fn a_success_commits_its_effects_in_the_same_unit_as_the_finish() {
    let (store, units) = recording_store();
    let c = conman(store);
    let job = running_job(AppId(uuid::Uuid::now_v7()), 1);
    let effect = Mutation::from(UserMutation::RevokeCredential {
        id: CredentialId(uuid::Uuid::now_v7()),
        at: chrono::Utc::now(),
    });
    let end = AttemptEnd::Finished(JobOutcome::Succeeded {
        result: serde_json::json!({ "ok": true }),
        effects: UnitOfWork::new().unaudited(effect.clone(), Unaudited::Fixture),
    });
    c.complete_job(&job, "w1", end).await.unwrap();
    let units = units.lock().unwrap();
    assert_eq!(units.len(), 1, "one unit: finish and effects together");
    assert!(units[0].mutations().contains(&effect));
    assert_eq!(finish_of(&units[0]).worker, "w1");
}

/// The attempt's last log lines go in the unit that ends it — sanitized as
/// `append_job_log` does (NUL replaced, overlong lines cut) — whatever the
/// outcome, and no line means no log mutation.
#[tokio::test]
async fn an_attempt_ends_with_its_last_log_lines_in_the_same_unit() {
    use crate::domain::job::{LogStream, NewLogLine, JOB_LOG_MAX_LINE_BYTES};
    let (store, units) = recording_store();
    let c = conman(store);
    let job = running_job(AppId(uuid::Uuid::now_v7()), 1);
    let line = |text: String| NewLogLine { at: chrono::Utc::now(), stream: LogStream::System, text };
    let tail = vec![line("done\0".into()), line("x".repeat(JOB_LOG_MAX_LINE_BYTES + 10))];
    let ok = AttemptEnd::Finished(JobOutcome::Succeeded { result: serde_json::json!({}), effects: UnitOfWork::new() });
    c.complete_job_with_log(&job, "w1", ok, tail).await.unwrap();
    let failed = AttemptEnd::Finished(JobOutcome::Failed { error: "exit 1".into(), retryable: false, result: None });
    c.complete_job_with_log(&job, "w1", failed, vec![line("gate failed".into())]).await.unwrap();
    c.complete_job_with_log(&job, "w1", AttemptEnd::TimedOut, Vec::new()).await.unwrap();

    let units = units.lock().unwrap();
    assert_eq!(units.len(), 3, "one unit per attempt end");
    let logged: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            assert_eq!(finish_of(u).id, job.id);
            u.mutations()
                .iter()
                .filter_map(|m| match m {
                    Mutation::Jobs(JobMutation::AppendJobLog { id, lines, limit_bytes }) => {
                        assert_eq!((*id, *limit_bytes), (job.id, c.config().jobs.log_limit_bytes));
                        Some(lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>())
                    }
                    _ => None,
                })
                .flatten()
                .collect()
        })
        .collect();
    assert_eq!(logged[0][0], "done\u{FFFD}");
    assert!(logged[0][1].ends_with(" …[line truncated]") && logged[0][1].len() < JOB_LOG_MAX_LINE_BYTES + 30);
    assert_eq!(logged[1], ["gate failed"]);
    assert!(logged[2].is_empty());
    assert!(!units[2].mutations().iter().any(|m| matches!(m, Mutation::Jobs(JobMutation::AppendJobLog { .. }))));
}

#[tokio::test]
async fn cancelling_a_finished_job_is_an_invalid_transition_and_writes_nothing() {
    let app = app();
    let mut store = store_with_member(&app, Role::AppAdmin);
    let app_id = app.id;
    store.expect_job().returning(move |_, id| {
        let mut job = running_job(app_id, 1);
        job.id = id;
        job.state = crate::domain::job::JobState::Succeeded;
        Ok(Some(job))
    });
    let c = conman(store);
    let err = c.cancel_job(&actor(user(false)), app.id, JobId(uuid::Uuid::now_v7())).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::InvalidTransition);
}

/// A store whose job had its cancel requested: as the store port says, it
/// refuses every `FinishJob` but `canceled` with `cancel_requested` (and
/// records the units it accepts).
fn store_with_cancel_requested() -> (MockStore, Arc<std::sync::Mutex<Vec<UnitOfWork>>>) {
    let units = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut store = MockStore::new();
    let sink = units.clone();
    store.expect_commit().returning(move |u| {
        if finish_of(&u).state != crate::domain::job::JobState::Canceled {
            return Err(ConflictReason::CancelRequested.into());
        }
        sink.lock().unwrap().push(u);
        Ok(())
    });
    (store, units)
}

#[tokio::test]
async fn a_cancel_requested_during_the_attempt_wins_over_a_retry() {
    let (store, units) = store_with_cancel_requested();
    let c = conman(store);
    let job = running_job(AppId(uuid::Uuid::now_v7()), 1);
    let end = AttemptEnd::Finished(JobOutcome::Failed { error: "flaky".into(), retryable: true, result: None });
    assert_eq!(c.complete_job(&job, "w1", end).await.unwrap(), crate::domain::job::JobState::Canceled);
    let units = units.lock().unwrap();
    assert_eq!(units.len(), 1);
    let finish = finish_of(&units[0]);
    assert_eq!(finish.state, crate::domain::job::JobState::Canceled);
    assert_eq!(finish.error.as_deref(), Some("flaky"), "the failure's text is kept");
}

#[tokio::test]
async fn a_cancel_requested_during_the_attempt_wins_over_a_success_whose_effects_are_dropped() {
    let (store, units) = store_with_cancel_requested();
    let c = conman(store);
    let job = running_job(AppId(uuid::Uuid::now_v7()), 1);
    let effect = JobMutation::RequestJobCancel { id: JobId(uuid::Uuid::now_v7()) };
    let effects = UnitOfWork::new().unaudited(effect, Unaudited::LogAppend);
    let end = AttemptEnd::Finished(JobOutcome::Succeeded { result: serde_json::json!({ "exit_code": 0 }), effects });
    let tail = vec![c.system_line("last line")];
    let state = c.complete_job_with_log(&job, "w1", end, tail).await.unwrap();
    assert_eq!(state, crate::domain::job::JobState::Canceled);
    let units = units.lock().unwrap();
    assert_eq!(units.len(), 1);
    let finish = finish_of(&units[0]);
    assert_eq!((finish.state, finish.result.clone()), (crate::domain::job::JobState::Canceled, None));
    let kinds: Vec<_> = units[0]
        .mutations()
        .iter()
        .map(|m| match m {
            Mutation::Jobs(JobMutation::FinishJob(_)) => "finish",
            Mutation::Jobs(JobMutation::AppendJobLog { .. }) => "log tail",
            _ => "effect",
        })
        .collect();
    assert_eq!(kinds, ["finish", "log tail"], "the success's effects are dropped, its log tail kept");
}

/// A job whose worker ends it right after a follower's first read of its
/// lines, writing its last line with its end: the store as a follower
/// racing the job's finish sees it.
fn store_with_job_finishing_after_the_first_log_read(app: &App) -> MockStore {
    use crate::domain::job::{JobLogLine, JobState, LogStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut store = store_with_member(app, Role::AppAdmin);
    let finished = Arc::new(AtomicBool::new(false));
    let app_id = app.id;
    let seen = finished.clone();
    store.expect_job().returning(move |_, id| {
        let mut job = running_job(app_id, 1);
        job.id = id;
        if seen.load(Ordering::SeqCst) {
            job.state = JobState::Succeeded;
        }
        Ok(Some(job))
    });
    let line =
        |seq: i64| JobLogLine { seq, at: chrono::Utc::now(), stream: LogStream::Stdout, text: format!("line {seq}") };
    store.expect_job_log().returning(move |_, after, limit| {
        // Lines 1-3 are stored; line 4 comes with the job's end.
        let stored = if finished.load(Ordering::SeqCst) { 4 } else { 3 };
        let lines: Vec<_> = (after + 1..=stored).take(limit as usize).map(line).collect();
        // The job finishes right after this read.
        finished.store(true, Ordering::SeqCst);
        Ok(JobLogPage { lines, truncated: false })
    });
    store
}

#[tokio::test]
async fn a_follower_stopping_at_complete_gets_every_line_of_a_job_finishing_between_its_reads() {
    let app = app();
    let c = conman(store_with_job_finishing_after_the_first_log_read(&app));
    let who = actor(user(false));
    let job = JobId(uuid::Uuid::now_v7());
    let (mut after, mut seen, mut reads) = (0, Vec::new(), 0);
    loop {
        let read = c.read_job_log(&who, app.id, job, after, 100).await.unwrap();
        reads += 1;
        seen.extend(read.page.lines.iter().map(|l| l.text.clone()));
        after = read.page.lines.last().map_or(after, |l| l.seq);
        if read.complete {
            assert!(read.state.is_terminal());
            break;
        }
        assert!(reads < 10, "never complete");
    }
    assert_eq!(seen, ["line 1", "line 2", "line 3", "line 4"], "no line lost to the race");
}

#[tokio::test]
async fn a_full_page_of_a_finished_job_is_not_complete() {
    let app = app();
    let c = conman(store_with_job_finishing_after_the_first_log_read(&app));
    let who = actor(user(false));
    let job = JobId(uuid::Uuid::now_v7());
    c.read_job_log(&who, app.id, job, 0, 3).await.unwrap();
    // Finished now, but a page as long as the limit may have more after it.
    let read = c.read_job_log(&who, app.id, job, 2, 2).await.unwrap();
    assert_eq!((read.state, read.page.lines.len(), read.complete), (crate::domain::job::JobState::Succeeded, 2, false));
    let read = c.read_job_log(&who, app.id, job, 4, 2).await.unwrap();
    assert!(read.complete && read.page.lines.is_empty());
}

// ---- changesets ------------------------------------------------------

fn changeset(
    app: &App,
    author: UserId,
    state: crate::domain::changeset::ChangesetState,
) -> crate::domain::changeset::Changeset {
    let now = chrono::Utc::now();
    crate::domain::changeset::Changeset {
        id: ChangesetId(uuid::Uuid::now_v7()),
        app_id: app.id,
        workspace_id: WorkspaceId(uuid::Uuid::now_v7()),
        author_id: author,
        title: "Raise the pool size".into(),
        description: String::new(),
        state,
        revision: 1,
        head_sha: Some("a".repeat(40)),
        depends_on: Vec::new(),
        gate_job_id: None,
        gate_failure: None,
        created_at: now,
        updated_at: now,
        version: 3,
    }
}

/// A store holding `cs` in `app`, where the actor has `role` and nothing may be committed.
fn store_with_changeset(app: &App, role: Role, cs: &crate::domain::changeset::Changeset) -> MockStore {
    let mut store = store_with_member(app, role);
    let cs = cs.clone();
    store.expect_changeset().returning(move |_, _| Ok(Some(cs.clone())));
    store.expect_changeset_revisions().returning(|_| Ok(Vec::new()));
    store.expect_changeset_reviews().returning(|_| Ok(Vec::new()));
    store
}

fn vote(action: &str) -> ReviewInput {
    ReviewInput { action: action.into(), comment: None, revision: None }
}

#[tokio::test]
async fn a_plain_user_cannot_review_and_nothing_is_written() {
    use crate::domain::changeset::ChangesetState;
    let app = app();
    let author = UserId(uuid::Uuid::now_v7());
    let cs = changeset(&app, author, ChangesetState::InReview);
    let c = conman(store_with_changeset(&app, Role::User, &cs));
    for action in ["approve", "request_changes", "reject"] {
        let err = c.review_changeset(&actor(user(false)), app.id, cs.id, vote(action)).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Forbidden, "{action}");
    }
}

#[tokio::test]
async fn the_author_cannot_approve_unless_the_app_allows_it() {
    use crate::domain::changeset::ChangesetState;
    let app = app();
    let me = user(false);
    let cs = changeset(&app, me.id, ChangesetState::InReview);
    let c = conman(store_with_changeset(&app, Role::AppAdmin, &cs));
    let err = c.review_changeset(&actor(me), app.id, cs.id, vote("approve")).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
}

#[tokio::test]
async fn votes_outside_in_review_or_on_an_old_revision_are_refused_before_any_write() {
    use crate::domain::changeset::ChangesetState;
    let app = app();
    let author = UserId(uuid::Uuid::now_v7());
    for state in [ChangesetState::Draft, ChangesetState::Submitted, ChangesetState::Approved, ChangesetState::Queued] {
        let cs = changeset(&app, author, state);
        let c = conman(store_with_changeset(&app, Role::Reviewer, &cs));
        let err = c.review_changeset(&actor(user(false)), app.id, cs.id, vote("approve")).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "{state:?}");
    }
    let cs = changeset(&app, author, ChangesetState::InReview);
    let c = conman(store_with_changeset(&app, Role::Reviewer, &cs));
    let old = ReviewInput { revision: Some(0), ..vote("approve") };
    let err = c.review_changeset(&actor(user(false)), app.id, cs.id, old).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Conflict);
    let err = c.review_changeset(&actor(user(false)), app.id, cs.id, vote("lgtm")).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Validation);
}

#[tokio::test]
async fn someone_elses_changeset_cannot_be_submitted_edited_or_queued() {
    use crate::domain::changeset::ChangesetState;
    let app = app();
    let author = UserId(uuid::Uuid::now_v7());
    let draft = changeset(&app, author, ChangesetState::Draft);
    let c = conman(store_with_changeset(&app, Role::AppAdmin, &draft));
    let me = actor(user(false));
    assert_eq!(c.submit_changeset(&me, app.id, draft.id).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    // With overrides too, before they are read or validated (the mock store
    // has no environments to give).
    let err = c.submit_changeset_with_overrides(&me, app.id, draft.id, Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
    let patch = ChangesetPatch { title: Some("mine now".into()), ..Default::default() };
    assert_eq!(c.update_changeset(&me, app.id, draft.id, patch).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    let approved = changeset(&app, author, ChangesetState::Approved);
    let c = conman(store_with_changeset(&app, Role::Reviewer, &approved));
    assert_eq!(c.queue_changeset(&me, app.id, approved.id).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    let queued = changeset(&app, author, ChangesetState::Queued);
    let c = conman(store_with_changeset(&app, Role::Reviewer, &queued));
    assert_eq!(
        c.move_changeset_to_draft(&me, app.id, queued.id).await.unwrap_err().code(),
        crate::ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn transitions_outside_the_machine_are_refused_before_git() {
    use crate::domain::changeset::ChangesetState;
    let app = app();
    let me = user(false);
    let me_actor = actor(me.clone());
    for state in [ChangesetState::Approved, ChangesetState::Queued, ChangesetState::Rejected, ChangesetState::Released]
    {
        let cs = changeset(&app, me.id, state);
        let c = conman(store_with_changeset(&app, Role::User, &cs));
        let err = c.submit_changeset(&me_actor, app.id, cs.id).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "submit from {state:?}");
        let err = c.resubmit_changeset(&me_actor, app.id, cs.id).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "resubmit from {state:?}");
        let err = c.submit_changeset_with_overrides(&me_actor, app.id, cs.id, Vec::new()).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "submit with overrides from {state:?}");
    }
    let draft = changeset(&app, me.id, ChangesetState::Draft);
    let c = conman(store_with_changeset(&app, Role::User, &draft));
    assert_eq!(
        c.queue_changeset(&me_actor, app.id, draft.id).await.unwrap_err().code(),
        crate::ErrorCode::InvalidTransition
    );
    let approved = changeset(&app, me.id, ChangesetState::Approved);
    let c = conman(store_with_changeset(&app, Role::User, &approved));
    let patch = ChangesetPatch { title: Some("late".into()), ..Default::default() };
    assert_eq!(
        c.update_changeset(&me_actor, app.id, approved.id, patch).await.unwrap_err().code(),
        crate::ErrorCode::InvalidTransition
    );
}

#[tokio::test]
async fn bad_comment_input_is_refused_before_any_write() {
    use crate::domain::changeset::ChangesetState;
    use crate::domain::comment::CommentAnchor;
    let app = app();
    let cs = changeset(&app, UserId(uuid::Uuid::now_v7()), ChangesetState::InReview);
    let c = conman(store_with_changeset(&app, Role::User, &cs));
    let me = actor(user(false));
    let empty = NewComment { body: "  ".into(), anchor: None };
    assert_eq!(c.add_comment(&me, app.id, cs.id, empty).await.unwrap_err().code(), crate::ErrorCode::Validation);
    for anchor in [
        CommentAnchor { path: "a.yaml".into(), line: Some(1), revision: 2 },
        CommentAnchor { path: "../a.yaml".into(), line: Some(1), revision: 1 },
        CommentAnchor { path: "a.yaml".into(), line: Some(0), revision: 1 },
    ] {
        let input = NewComment { body: "why?".into(), anchor: Some(anchor.clone()) };
        let err = c.add_comment(&me, app.id, cs.id, input).await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Validation, "{anchor:?}");
    }
}

// ---- runtime profiles --------------------------------------------------

#[tokio::test]
async fn only_app_admins_reveal_secrets_and_nothing_is_read_or_written_otherwise() {
    let app = app();
    for role in [Role::User, Role::Reviewer, Role::ConfigManager] {
        // No profile or secret read is expected: the mock panics on any.
        let c = conman(store_with_member(&app, role));
        let id = RuntimeProfileId(uuid::Uuid::now_v7());
        let err = c.reveal_secret(&actor(user(false)), app.id, id, "DB_PASSWORD").await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Forbidden, "{role:?}");
    }
}

#[tokio::test]
async fn profiles_and_environments_are_managed_by_app_admins_only() {
    let app = app();
    let c = conman(store_with_member(&app, Role::ConfigManager));
    let me = actor(user(false));
    let input = crate::domain::runtime_profile::input::ProfileInput {
        name: "dev".into(),
        kind: crate::domain::runtime_profile::ProfileKind::PersistentEnv,
        base_url: None,
        env_vars: Default::default(),
        secrets: Default::default(),
        database: Default::default(),
        migrations: Default::default(),
        data_strategy: Default::default(),
        lifecycle: Default::default(),
    };
    assert_eq!(c.create_runtime_profile(&me, app.id, input).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    let id = RuntimeProfileId(uuid::Uuid::now_v7());
    let patch = crate::domain::runtime_profile::input::ProfilePatch { name: Some("qa".into()), ..Default::default() };
    assert_eq!(c.patch_runtime_profile(&me, app.id, id, patch).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    assert_eq!(c.revert_runtime_profile(&me, app.id, id, 1).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
    assert_eq!(c.replace_environments(&me, app.id, vec![]).await.unwrap_err().code(), crate::ErrorCode::Forbidden);
}

#[tokio::test]
async fn only_operators_rotate_the_master_key() {
    let mut store = MockStore::new();
    store.expect_commit().never();
    let c = conman(store).with_secrets(Arc::new(crate::ports::EnvelopeCipher::new([1; 32])));
    let new = Arc::new(crate::ports::EnvelopeCipher::new([2; 32]));
    let err = c.rotate_master_key(&actor(user(false)), new).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Forbidden);
}

/// A claim asks the store to open the attempt's log within the configured
/// bound; a worker id that is empty, too long or holds control characters
/// is refused before the store is asked anything.
#[tokio::test]
async fn a_claim_opens_the_log_and_refuses_a_bad_worker_id() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut store = MockStore::new();
    let seen = asked.clone();
    store.expect_claim_job().returning(move |claim| {
        seen.lock().unwrap().push(claim.clone());
        Ok(None)
    });
    let c = conman(store);
    assert_eq!(c.claim_next_job("host-1-0").await.unwrap(), None);
    let claims = asked.lock().unwrap().clone();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].worker, "host-1-0");
    assert_eq!(claims[0].opening_line_limit_bytes, Some(c.config().jobs.log_limit_bytes));

    let too_long = "w".repeat(super::WORKER_ID_MAX_BYTES + 1);
    for bad in ["", "host\n1", "tab\there", too_long.as_str()] {
        let err = c.claim_next_job(bad).await.expect_err("a bad worker id is refused");
        assert_eq!(err.code(), crate::ErrorCode::Validation, "{bad:?}: {err:?}");
    }
    assert_eq!(asked.lock().unwrap().len(), 1, "refused claims never reach the store");
}
