//! Unit tests of the services on the in-memory reference store, with a git
//! port that fails the test if reached: a refused request stops before any
//! effect (the store's whole state equals its snapshot, git is never
//! touched), and the job lifecycle leaves exactly the state the port
//! promises. No mocks: the reference store passes the same conformance suite
//! as SQLite and Postgres, so what holds here holds on them.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::conformance::fixtures;
use crate::domain::app::App;
use crate::domain::changeset::{Changeset, ChangesetState};
use crate::domain::job::{Job, JobState, JobType, LogStream, NewLogLine};
use crate::domain::user::{CredentialKind, User};
use crate::domain::workspace::Workspace;
use crate::error::{Error, ErrorCode};
use crate::ids::*;
use crate::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, TagRequest};
use crate::ports::git::*;
use crate::ports::store::*;
use crate::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use crate::rbac::Role;
use crate::reference_store::{ReferenceStore, State};
use crate::validation::RepoPath;

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
    async fn plan_write(&self, _: AppId, _: WriteRequest) -> Result<RefPlan, Error> {
        panic!("git must not be touched")
    }
    async fn plan_squash(&self, _: AppId, _: SquashRequest) -> Result<Option<RefPlan>, Error> {
        panic!("git must not be touched")
    }
    async fn plan_sync(&self, _: AppId, _: SyncRequest) -> Result<SyncPlan, Error> {
        panic!("git must not be touched")
    }
    async fn move_refs(&self, _: AppId, _: &[RefMove]) -> Result<(), Error> {
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
    async fn compose(&self, _: AppId, _: ComposeRequest) -> Result<Composition, Error> {
        panic!("git must not be touched")
    }
    async fn check_against(&self, _: AppId, _: Sha, _: Vec<ComposeItem>) -> Result<Vec<CheckOutcome>, Error> {
        panic!("git must not be touched")
    }
    async fn write_tag(&self, _: AppId, _: TagRequest) -> Result<Sha, Error> {
        panic!("git must not be touched")
    }
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

fn actor(u: &User) -> Actor {
    Actor { user: u.clone(), credential_id: None, request: Default::default() }
}

/// One app `billing` created by `bob` (its `app_admin`), and `ada`, who
/// holds `role` in it, with her default workspace; nothing else.
struct World {
    c: Conman,
    store: Arc<ReferenceStore>,
    app: App,
    ada: User,
    bob: User,
    ws: Workspace,
}

impl World {
    async fn new(role: Role) -> World {
        let store = Arc::new(ReferenceStore::new());
        let (ada, bob) = (fixtures::user("ada"), fixtures::user("bob"));
        let app = fixtures::app("billing", &bob);
        let ws = fixtures::workspace(&app, &ada, "default");
        let mutations: Vec<Mutation> = vec![
            UserMutation::InsertUser(ada.clone()).into(),
            UserMutation::InsertUser(bob.clone()).into(),
            AppMutation::InsertApp(app.clone()).into(),
            AppMutation::PutMembership(fixtures::membership(&app, &bob, Role::AppAdmin)).into(),
            AppMutation::PutMembership(fixtures::membership(&app, &ada, role)).into(),
            WorkspaceMutation::InsertWorkspace(ws.clone()).into(),
        ];
        fixtures::setup(store.as_ref(), mutations).await;
        let c = conman_on(store.clone());
        World { c, store, app, ada, bob, ws }
    }

    /// Ada, calling.
    fn ada(&self) -> Actor {
        actor(&self.ada)
    }

    async fn setup(&self, mutations: impl IntoIterator<Item = Mutation>) {
        fixtures::setup(self.store.as_ref(), mutations).await;
    }

    /// A changeset by `author` on a workspace of theirs, in `state` at
    /// revision 1 (with that revision stored).
    async fn changeset(&self, author: &User, state: ChangesetState) -> Changeset {
        let ws = if author.id == self.ada.id {
            self.ws.clone()
        } else {
            let ws = fixtures::workspace(&self.app, author, &format!("w{}", uuid::Uuid::now_v7().simple()));
            self.setup([WorkspaceMutation::InsertWorkspace(ws.clone()).into()]).await;
            ws
        };
        let cs = Changeset {
            state,
            revision: 1,
            head_sha: Some(fixtures::sha()),
            ..fixtures::changeset(&ws, author, "Raise the pool size")
        };
        let revision = fixtures::revision(&cs, 1, author);
        self.setup([
            ChangesetMutation::InsertChangeset(cs.clone()).into(),
            ChangesetMutation::InsertRevision(revision).into(),
        ])
        .await;
        cs
    }

    /// A job of the app running attempt `attempts` of 3, leased to `w1`.
    async fn running_job(&self, attempts: u32) -> Job {
        let at = fixtures::now();
        let job = Job {
            state: JobState::Running,
            attempts,
            lease_owner: Some("w1".into()),
            lease_expires_at: Some(fixtures::later(at, 600)),
            started_at: Some(at),
            ..fixtures::job(&self.app, JobType::GateSubmit)
        };
        self.setup([JobMutation::InsertJob(job.clone()).into()]).await;
        job
    }

    async fn stored_job(&self, job: &Job) -> Job {
        self.store.job(self.app.id, job.id).await.unwrap().expect("the job")
    }

    async fn log_texts(&self, job: &Job) -> Vec<String> {
        let page = self.store.job_log(job.id, 0, 1000).await.unwrap();
        page.lines.into_iter().map(|l| l.text).collect()
    }
}

/// Asserts `err` is `code` and the store holds exactly `before`.
fn refused<T: std::fmt::Debug>(w: &World, before: &State, got: Result<T, Error>, code: ErrorCode, what: &str) {
    let err = got.expect_err(what);
    assert_eq!(err.code(), code, "{what}: {err:?}");
    assert!(w.store.snapshot() == *before, "{what}: a refused call changed the store");
}

/// A GET is a read: listing workspaces neither commits nor creates the
/// caller's default workspace, and the git port is never reached.
#[tokio::test]
async fn listing_workspaces_only_reads() {
    let w = World::new(Role::User).await;
    let cleo = fixtures::user("cleo");
    w.setup([
        UserMutation::InsertUser(cleo.clone()).into(),
        AppMutation::PutMembership(fixtures::membership(&w.app, &cleo, Role::User)).into(),
    ])
    .await;
    let before = w.store.snapshot();
    let page = w.c.list_workspaces(&actor(&cleo), w.app.id, PageRequest::default()).await.unwrap();
    assert_eq!(page.total, 1, "ada's workspace; cleo has none and gets none");
    assert!(w.store.snapshot() == before);
}

#[tokio::test]
async fn non_operators_cannot_create_apps_and_nothing_is_touched() {
    let w = World::new(Role::AppAdmin).await;
    let before = w.store.snapshot();
    let got = w.c.create_app(&w.ada(), NewApp { name: "x".into(), ..Default::default() }).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "create_app");
}

#[tokio::test]
async fn a_config_manager_cannot_change_settings() {
    let w = World::new(Role::ConfigManager).await;
    let before = w.store.snapshot();
    let got = w.c.update_settings(&w.ada(), w.app.id, Default::default()).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "update_settings");
}

#[tokio::test]
async fn non_members_get_not_found_for_the_app_even_operators() {
    let w = World::new(Role::User).await;
    let op = User { is_operator: true, ..fixtures::user("olga") };
    w.setup([UserMutation::InsertUser(op.clone()).into()]).await;
    let err = w.c.get_app(&actor(&op), w.app.id).await.unwrap_err();
    assert_eq!(err, Error::NotFound("app"));
}

#[tokio::test]
async fn writing_into_someone_elses_workspace_is_forbidden_before_git() {
    let w = World::new(Role::AppAdmin).await;
    let before = w.store.snapshot();
    let got = w.c.write_file(&actor(&w.bob), w.app.id, w.ws.id, "a.yaml", b"x".to_vec(), None).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "bob writes into ada's workspace");
}

#[tokio::test]
async fn blocked_and_oversize_writes_stop_before_git() {
    let w = World::new(Role::User).await;
    let (a, before) = (w.ada(), w.store.snapshot());
    let blocked = w.c.write_file(&a, w.app.id, w.ws.id, ".github/workflows/x.yml", b"x".to_vec(), None).await;
    assert_eq!(blocked.as_ref().unwrap_err().details().unwrap()["reason"], "path_blocked");
    refused(&w, &before, blocked, ErrorCode::Validation, "blocked path");
    let big = vec![b'x'; 5 * 1024 * 1024 + 1];
    let too_big = w.c.write_file(&a, w.app.id, w.ws.id, "big.bin", big, None).await;
    refused(&w, &before, too_big, ErrorCode::PayloadTooLarge, "oversize file");
    let traversal = w.c.write_file(&a, w.app.id, w.ws.id, "../x", b"x".to_vec(), None).await;
    refused(&w, &before, traversal, ErrorCode::Validation, "path traversal");
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized() {
    let w = World::new(Role::User).await;
    assert_eq!(w.c.authenticate("cm_nope", Default::default()).await.unwrap_err(), Error::Unauthorized);
    assert_eq!(w.c.authenticate("", Default::default()).await.unwrap_err(), Error::Unauthorized);
}

#[tokio::test]
async fn login_does_not_reveal_whether_the_account_exists_and_is_throttled() {
    let w = World::new(Role::User).await;
    let before = w.store.snapshot();
    let ctx = crate::domain::audit::RequestContext { ip: Some("10.0.0.1".into()), ..Default::default() };
    for _ in 0..5 {
        let err = w.c.login("ghost@example.com", "whatever-password", ctx.clone()).await.unwrap_err();
        assert_eq!(err, Error::Unauthorized);
    }
    let got = w.c.login("ghost@example.com", "whatever-password", ctx).await;
    refused(&w, &before, got, ErrorCode::RateLimited, "the sixth try");
}

#[test]
fn every_repo_path_used_in_tests_is_valid() {
    assert!(RepoPath::parse("a.yaml").is_ok());
}

// ---- the job lifecycle -----------------------------------------------

fn failed(error: &str, retryable: bool) -> AttemptEnd {
    AttemptEnd::Finished(JobOutcome::Failed { error: error.into(), retryable, result: None })
}

#[tokio::test]
async fn a_transient_failure_with_attempts_left_is_retried_after_a_backoff() {
    let w = World::new(Role::User).await;
    let job = w.running_job(1).await;
    assert_eq!(w.c.complete_job(&job, "w1", failed("db hiccup", true)).await.unwrap(), JobState::Queued);
    let stored = w.stored_job(&job).await;
    assert_eq!((stored.state, stored.finished_at, stored.lease_owner), (JobState::Queued, None, None));
    assert!(stored.run_after > chrono::Utc::now(), "backoff puts the next attempt in the future");
    assert_eq!(stored.error.as_deref(), Some("db hiccup"));
}

#[tokio::test]
async fn the_last_attempt_fails_for_good_and_a_gate_verdict_is_never_retried() {
    let w = World::new(Role::User).await;
    let last = w.running_job(3).await;
    assert_eq!(w.c.complete_job(&last, "w1", failed("boom", true)).await.unwrap(), JobState::Failed);
    let first = w.running_job(1).await;
    assert_eq!(w.c.complete_job(&first, "w1", failed("exit 1", false)).await.unwrap(), JobState::Failed);
    for job in [last, first] {
        let stored = w.stored_job(&job).await;
        assert_eq!(stored.state, JobState::Failed);
        assert!(stored.finished_at.is_some());
    }
}

/// A credential of ada's, and the effect of revoking it.
async fn revocable(w: &World) -> (crate::domain::user::Credential, Mutation) {
    let credential = fixtures::credential(&w.ada, CredentialKind::ApiToken);
    w.setup([UserMutation::InsertCredential(credential.clone()).into()]).await;
    let effect = UserMutation::RevokeCredential { id: credential.id, at: fixtures::now() }.into();
    (credential, effect)
}

async fn is_revoked(w: &World, credential: &crate::domain::user::Credential) -> bool {
    let all = w.store.list_credentials(w.ada.id).await.unwrap();
    all.iter().find(|c| c.id == credential.id).expect("the credential").revoked_at.is_some()
}

#[tokio::test]
async fn a_success_commits_its_effects_with_the_finish_and_a_lost_lease_drops_both() {
    let w = World::new(Role::User).await;
    let (credential, effect) = revocable(&w).await;
    let job = w.running_job(1).await;
    let succeeded = |effect: Mutation| {
        AttemptEnd::Finished(JobOutcome::Succeeded {
            result: serde_json::json!({ "ok": true }),
            effects: UnitOfWork::new().unaudited(effect, Unaudited::Fixture),
        })
    };
    // Another worker's end changes nothing, its effects included.
    let before = w.store.snapshot();
    let got = w.c.complete_job(&job, "w2", succeeded(effect.clone())).await;
    refused(&w, &before, got, ErrorCode::Conflict, "a worker without the lease");
    assert_eq!(w.c.complete_job(&job, "w1", succeeded(effect)).await.unwrap(), JobState::Succeeded);
    let stored = w.stored_job(&job).await;
    assert_eq!((stored.state, stored.result), (JobState::Succeeded, Some(serde_json::json!({ "ok": true }))));
    assert!(is_revoked(&w, &credential).await, "the effect applied with the finish");
}

/// The attempt's last log lines go in the unit that ends it — sanitized as
/// `append_job_log` does (NUL replaced, overlong lines cut) — whatever the
/// outcome, and no line means no log line.
#[tokio::test]
async fn an_attempt_ends_with_its_last_log_lines() {
    use crate::domain::job::JOB_LOG_MAX_LINE_BYTES;
    let w = World::new(Role::User).await;
    let line = |text: String| NewLogLine { at: chrono::Utc::now(), stream: LogStream::System, text };
    let (ok_job, failed_job, timed_out_job) = (w.running_job(1).await, w.running_job(1).await, w.running_job(1).await);
    let tail = vec![line("done\0".into()), line("x".repeat(JOB_LOG_MAX_LINE_BYTES + 10))];
    let ok = AttemptEnd::Finished(JobOutcome::Succeeded { result: serde_json::json!({}), effects: UnitOfWork::new() });
    w.c.complete_job_with_log(&ok_job, "w1", ok, tail).await.unwrap();
    w.c.complete_job_with_log(&failed_job, "w1", failed("exit 1", false), vec![line("gate failed".into())])
        .await
        .unwrap();
    w.c.complete_job_with_log(&timed_out_job, "w1", AttemptEnd::TimedOut, Vec::new()).await.unwrap();

    let logged = w.log_texts(&ok_job).await;
    assert_eq!(logged[0], "done\u{FFFD}");
    assert!(logged[1].ends_with(" …[line truncated]") && logged[1].len() < JOB_LOG_MAX_LINE_BYTES + 30);
    assert_eq!(w.log_texts(&failed_job).await, ["gate failed"]);
    assert_eq!(w.log_texts(&timed_out_job).await, Vec::<String>::new());
    assert_eq!(w.stored_job(&timed_out_job).await.state, JobState::Queued, "a timeout with attempts left is retried");
}

#[tokio::test]
async fn cancelling_a_finished_job_is_an_invalid_transition_and_writes_nothing() {
    let w = World::new(Role::AppAdmin).await;
    let done = Job {
        state: JobState::Succeeded,
        finished_at: Some(fixtures::now()),
        ..fixtures::job(&w.app, JobType::GateSubmit)
    };
    w.setup([JobMutation::InsertJob(done.clone()).into()]).await;
    let before = w.store.snapshot();
    let got = w.c.cancel_job(&w.ada(), w.app.id, done.id).await;
    refused(&w, &before, got, ErrorCode::InvalidTransition, "cancel a finished job");
}

/// A running job whose cancel was requested.
async fn cancel_requested(w: &World) -> Job {
    let job = w.running_job(1).await;
    w.setup([JobMutation::RequestJobCancel { id: job.id }.into()]).await;
    job
}

#[tokio::test]
async fn a_cancel_requested_during_the_attempt_wins_over_a_retry() {
    let w = World::new(Role::User).await;
    let job = cancel_requested(&w).await;
    assert_eq!(w.c.complete_job(&job, "w1", failed("flaky", true)).await.unwrap(), JobState::Canceled);
    let stored = w.stored_job(&job).await;
    assert_eq!(stored.state, JobState::Canceled);
    assert_eq!(stored.error.as_deref(), Some("flaky"), "the failure's text is kept");
    assert!(stored.finished_at.is_some());
}

#[tokio::test]
async fn a_cancel_requested_during_the_attempt_wins_over_a_success_whose_effects_are_dropped() {
    let w = World::new(Role::User).await;
    let (credential, effect) = revocable(&w).await;
    let job = cancel_requested(&w).await;
    let effects = UnitOfWork::new().unaudited(effect, Unaudited::Fixture);
    let end = AttemptEnd::Finished(JobOutcome::Succeeded { result: serde_json::json!({ "exit_code": 0 }), effects });
    let tail = vec![w.c.system_line("last line")];
    assert_eq!(w.c.complete_job_with_log(&job, "w1", end, tail).await.unwrap(), JobState::Canceled);
    let stored = w.stored_job(&job).await;
    assert_eq!((stored.state, stored.result), (JobState::Canceled, None));
    assert!(!is_revoked(&w, &credential).await, "the success's effects are dropped");
    assert_eq!(w.log_texts(&job).await, ["last line"], "its log tail is kept");
}

/// A job of the app, running, with lines 1-3 in its log; its worker ends
/// it right after the next read of its log, writing line 4 with its end —
/// a follower racing the job's finish.
async fn job_finishing_after_the_next_log_read(w: &World) -> Job {
    let job = w.running_job(1).await;
    let line = |n: i64| NewLogLine { at: chrono::Utc::now(), stream: LogStream::Stdout, text: format!("line {n}") };
    w.c.append_job_log(job.id, (1..=3).map(line).collect()).await.unwrap();
    let finish = JobFinish {
        id: job.id,
        worker: "w1".into(),
        state: JobState::Succeeded,
        result: Some(serde_json::json!({})),
        error: None,
        run_after: None,
        finished_at: Some(fixtures::now()),
    };
    let unit = UnitOfWork::new().unaudited(JobMutation::FinishJob(finish), Unaudited::Fixture).unaudited(
        JobMutation::AppendJobLog {
            id: job.id,
            append: crate::domain::job::LogAppend::plan(vec![line(4)], w.c.config().jobs.log_limit_bytes),
        },
        Unaudited::Fixture,
    );
    w.store.commit_after_next_job_log_read(unit);
    job
}

#[tokio::test]
async fn a_follower_stopping_at_complete_gets_every_line_of_a_job_finishing_between_its_reads() {
    let w = World::new(Role::User).await;
    let job = job_finishing_after_the_next_log_read(&w).await;
    let (mut after, mut seen, mut reads) = (0, Vec::new(), 0);
    loop {
        let read = w.c.read_job_log(&w.ada(), w.app.id, job.id, after, 100).await.unwrap();
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
    let w = World::new(Role::User).await;
    let job = job_finishing_after_the_next_log_read(&w).await;
    let a = w.ada();
    w.c.read_job_log(&a, w.app.id, job.id, 0, 3).await.unwrap();
    // Finished now, but a page as long as the limit may have more after it.
    let read = w.c.read_job_log(&a, w.app.id, job.id, 2, 2).await.unwrap();
    assert_eq!((read.state, read.page.lines.len(), read.complete), (JobState::Succeeded, 2, false));
    let read = w.c.read_job_log(&a, w.app.id, job.id, 4, 2).await.unwrap();
    assert!(read.complete && read.page.lines.is_empty());
}

/// A claim opens the attempt's log with the core's opening line; a worker
/// id that is empty, too long or holds control characters is refused before
/// the store is asked anything.
#[tokio::test]
async fn a_claim_opens_the_log_and_refuses_a_bad_worker_id() {
    let w = World::new(Role::User).await;
    let (first, second) = (fixtures::job(&w.app, JobType::GateSubmit), fixtures::job(&w.app, JobType::GateSubmit));
    let second = Job { run_after: fixtures::later(first.run_after, 1), ..second };
    w.setup([JobMutation::InsertJob(first.clone()).into(), JobMutation::InsertJob(second.clone()).into()]).await;
    let claimed = w.c.claim_next_job("host-1-0").await.unwrap().expect("a job");
    assert_eq!((claimed.id, claimed.attempts), (first.id, 1));
    assert_eq!(w.log_texts(&first).await, ["attempt 1 of 3 on worker host-1-0"]);

    let before = w.store.snapshot();
    let too_long = "w".repeat(super::WORKER_ID_MAX_BYTES + 1);
    for bad in ["", "host\n1", "tab\there", too_long.as_str()] {
        let got = w.c.claim_next_job(bad).await;
        refused(&w, &before, got, ErrorCode::Validation, &format!("worker id {bad:?}"));
    }
    assert_eq!(w.stored_job(&second).await.state, JobState::Queued, "refused claims never reach the store");
}

// ---- changesets ------------------------------------------------------

fn vote(action: &str) -> ReviewInput {
    ReviewInput { action: action.into(), comment: None, revision: None }
}

#[tokio::test]
async fn a_plain_user_cannot_review_and_nothing_is_written() {
    let w = World::new(Role::User).await;
    let cs = w.changeset(&w.bob, ChangesetState::InReview).await;
    let before = w.store.snapshot();
    for action in ["approve", "request_changes", "reject"] {
        let got = w.c.review_changeset(&w.ada(), w.app.id, cs.id, vote(action)).await;
        refused(&w, &before, got, ErrorCode::Forbidden, action);
    }
}

#[tokio::test]
async fn the_author_cannot_approve_unless_the_app_allows_it() {
    let w = World::new(Role::AppAdmin).await;
    let cs = w.changeset(&w.ada, ChangesetState::InReview).await;
    let before = w.store.snapshot();
    let got = w.c.review_changeset(&w.ada(), w.app.id, cs.id, vote("approve")).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "self-approval");
}

#[tokio::test]
async fn votes_outside_in_review_or_on_an_old_revision_are_refused_before_any_write() {
    let w = World::new(Role::Reviewer).await;
    for state in [ChangesetState::Draft, ChangesetState::Submitted, ChangesetState::Approved, ChangesetState::Queued] {
        let cs = w.changeset(&w.bob, state).await;
        let before = w.store.snapshot();
        let got = w.c.review_changeset(&w.ada(), w.app.id, cs.id, vote("approve")).await;
        refused(&w, &before, got, ErrorCode::InvalidTransition, &format!("{state:?}"));
    }
    let cs = w.changeset(&w.bob, ChangesetState::InReview).await;
    let before = w.store.snapshot();
    let old = ReviewInput { revision: Some(0), ..vote("approve") };
    let got = w.c.review_changeset(&w.ada(), w.app.id, cs.id, old).await;
    refused(&w, &before, got, ErrorCode::Conflict, "a vote on an old revision");
    let got = w.c.review_changeset(&w.ada(), w.app.id, cs.id, vote("lgtm")).await;
    refused(&w, &before, got, ErrorCode::Validation, "an unknown action");
}

#[tokio::test]
async fn someone_elses_changeset_cannot_be_submitted_edited_or_queued() {
    let w = World::new(Role::AppAdmin).await;
    let me = w.ada();
    let draft = w.changeset(&w.bob, ChangesetState::Draft).await;
    let before = w.store.snapshot();
    refused(&w, &before, w.c.submit_changeset(&me, w.app.id, draft.id).await, ErrorCode::Forbidden, "submit");
    // With overrides too, before they are read or validated.
    let got = w.c.submit_changeset_with_overrides(&me, w.app.id, draft.id, Vec::new()).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "submit with overrides");
    let patch = ChangesetPatch { title: Some("mine now".into()), ..Default::default() };
    refused(&w, &before, w.c.update_changeset(&me, w.app.id, draft.id, patch).await, ErrorCode::Forbidden, "edit");

    let w = World::new(Role::Reviewer).await;
    let me = w.ada();
    let approved = w.changeset(&w.bob, ChangesetState::Approved).await;
    let queued = w.changeset(&w.bob, ChangesetState::Queued).await;
    let before = w.store.snapshot();
    refused(&w, &before, w.c.queue_changeset(&me, w.app.id, approved.id).await, ErrorCode::Forbidden, "queue");
    let got = w.c.move_changeset_to_draft(&me, w.app.id, queued.id).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "move to draft");
}

#[tokio::test]
async fn transitions_outside_the_machine_are_refused_before_git() {
    let w = World::new(Role::User).await;
    let me = w.ada();
    for state in [ChangesetState::Approved, ChangesetState::Queued, ChangesetState::Rejected, ChangesetState::Released]
    {
        // One changeset per state (the workspace's open one is replaced).
        let w = World::new(Role::User).await;
        let cs = w.changeset(&w.ada, state).await;
        let before = w.store.snapshot();
        let me = w.ada();
        let got = w.c.submit_changeset(&me, w.app.id, cs.id).await;
        refused(&w, &before, got, ErrorCode::InvalidTransition, &format!("submit from {state:?}"));
        let got = w.c.resubmit_changeset(&me, w.app.id, cs.id).await;
        refused(&w, &before, got, ErrorCode::InvalidTransition, &format!("resubmit from {state:?}"));
        let got = w.c.submit_changeset_with_overrides(&me, w.app.id, cs.id, Vec::new()).await;
        refused(&w, &before, got, ErrorCode::InvalidTransition, &format!("submit with overrides from {state:?}"));
    }
    let draft = w.changeset(&w.ada, ChangesetState::Draft).await;
    let before = w.store.snapshot();
    refused(
        &w,
        &before,
        w.c.queue_changeset(&me, w.app.id, draft.id).await,
        ErrorCode::InvalidTransition,
        "queue a draft",
    );
    let w = World::new(Role::User).await;
    let me = w.ada();
    let approved = w.changeset(&w.ada, ChangesetState::Approved).await;
    let before = w.store.snapshot();
    let patch = ChangesetPatch { title: Some("late".into()), ..Default::default() };
    let got = w.c.update_changeset(&me, w.app.id, approved.id, patch).await;
    refused(&w, &before, got, ErrorCode::InvalidTransition, "edit an approved changeset");
}

#[tokio::test]
async fn bad_comment_input_is_refused_before_any_write() {
    use crate::domain::comment::CommentAnchor;
    let w = World::new(Role::User).await;
    let cs = w.changeset(&w.bob, ChangesetState::InReview).await;
    let (me, before) = (w.ada(), w.store.snapshot());
    let empty = NewComment { body: "  ".into(), anchor: None };
    refused(&w, &before, w.c.add_comment(&me, w.app.id, cs.id, empty).await, ErrorCode::Validation, "empty body");
    for anchor in [
        CommentAnchor { path: "a.yaml".into(), line: Some(1), revision: 2 },
        CommentAnchor { path: "../a.yaml".into(), line: Some(1), revision: 1 },
        CommentAnchor { path: "a.yaml".into(), line: Some(0), revision: 1 },
    ] {
        let input = NewComment { body: "why?".into(), anchor: Some(anchor.clone()) };
        let got = w.c.add_comment(&me, w.app.id, cs.id, input).await;
        refused(&w, &before, got, ErrorCode::Validation, &format!("{anchor:?}"));
    }
}

// ---- runtime profiles --------------------------------------------------

#[tokio::test]
async fn only_app_admins_reveal_secrets_and_nothing_is_written_otherwise() {
    for role in [Role::User, Role::Reviewer, Role::ConfigManager] {
        let w = World::new(role).await;
        let profile = fixtures::runtime_profile(&w.app, "prod");
        w.setup([ProfileMutation::InsertRuntimeProfile(profile.clone()).into()]).await;
        let before = w.store.snapshot();
        let got = w.c.reveal_secret(&w.ada(), w.app.id, profile.id, "DB_PASSWORD").await;
        refused(&w, &before, got, ErrorCode::Forbidden, &format!("{role:?}"));
    }
}

#[tokio::test]
async fn profiles_and_environments_are_managed_by_app_admins_only() {
    let w = World::new(Role::ConfigManager).await;
    let profile = fixtures::runtime_profile(&w.app, "prod");
    w.setup([ProfileMutation::InsertRuntimeProfile(profile.clone()).into()]).await;
    let (me, before) = (w.ada(), w.store.snapshot());
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
    refused(&w, &before, w.c.create_runtime_profile(&me, w.app.id, input).await, ErrorCode::Forbidden, "create");
    let patch = crate::domain::runtime_profile::input::ProfilePatch { name: Some("qa".into()), ..Default::default() };
    let got = w.c.patch_runtime_profile(&me, w.app.id, profile.id, patch).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "patch");
    let got = w.c.revert_runtime_profile(&me, w.app.id, profile.id, 1).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "revert");
    refused(&w, &before, w.c.replace_environments(&me, w.app.id, vec![]).await, ErrorCode::Forbidden, "environments");
}

#[tokio::test]
async fn only_operators_rotate_the_master_key() {
    let w = World::new(Role::AppAdmin).await;
    let c = conman_on(w.store.clone()).with_secrets(Arc::new(crate::ports::EnvelopeCipher::new([1; 32])));
    let before = w.store.snapshot();
    let got = c.rotate_master_key(&w.ada(), Arc::new(crate::ports::EnvelopeCipher::new([2; 32]))).await;
    refused(&w, &before, got, ErrorCode::Forbidden, "rotate");
}

// --- Releases -------------------------------------------------------------

/// A release by bob (the app admin) selecting `changesets`, stored as is.
async fn stored_release(
    w: &World,
    state: crate::domain::release::ReleaseState,
    cs: &[ChangesetId],
) -> crate::domain::release::Release {
    let release = crate::domain::release::Release { state, ..fixtures::release(&w.app, &w.bob, cs) };
    w.setup([ReleaseMutation::InsertRelease(release.clone()).into()]).await;
    release
}

#[tokio::test]
async fn release_actions_need_a_config_manager_and_change_nothing() {
    for role in [Role::User, Role::Reviewer] {
        let w = World::new(role).await;
        let queued = w.changeset(&w.bob, ChangesetState::Queued).await;
        let draft = stored_release(&w, crate::domain::release::ReleaseState::Draft, &[queued.id]).await;
        let before = w.store.snapshot();
        let (a, app) = (w.ada(), w.app.id);
        refused(&w, &before, w.c.create_release(&a, app, Some("mine")).await, ErrorCode::Forbidden, "create");
        let set = w.c.set_release_changesets(&a, app, draft.id, &[queued.id]).await;
        refused(&w, &before, set, ErrorCode::Forbidden, "select");
        refused(
            &w,
            &before,
            w.c.reorder_release(&a, app, draft.id, &[queued.id]).await,
            ErrorCode::Forbidden,
            "reorder",
        );
        refused(&w, &before, w.c.assemble_release(&a, app, draft.id).await, ErrorCode::Forbidden, "assemble");
        refused(&w, &before, w.c.publish_release(&a, app, draft.id).await, ErrorCode::Forbidden, "publish");
        // Reading is every member's.
        assert_eq!(w.c.get_release(&a, app, draft.id).await.unwrap(), draft);
    }
}

#[tokio::test]
async fn a_bad_selection_is_refused_naming_the_ids_and_changes_nothing() {
    let w = World::new(Role::ConfigManager).await;
    let queued = w.changeset(&w.bob, ChangesetState::Queued).await;
    let approved = w.changeset(&w.bob, ChangesetState::Approved).await;
    let dependency = w.changeset(&w.bob, ChangesetState::Queued).await;
    let mut dependent = w.changeset(&w.bob, ChangesetState::Queued).await;
    dependent = Changeset { depends_on: vec![dependency.id], version: dependent.version + 1, ..dependent };
    w.setup([ChangesetMutation::UpdateChangeset(dependent.clone()).into()]).await;
    let other_app = fixtures::app("search", &w.bob);
    let elsewhere_ws = fixtures::workspace(&other_app, &w.bob, "default");
    let elsewhere = Changeset { state: ChangesetState::Queued, ..fixtures::changeset(&elsewhere_ws, &w.bob, "x") };
    w.setup([
        AppMutation::InsertApp(other_app).into(),
        WorkspaceMutation::InsertWorkspace(elsewhere_ws).into(),
        ChangesetMutation::InsertChangeset(elsewhere.clone()).into(),
    ])
    .await;
    let draft = stored_release(&w, crate::domain::release::ReleaseState::Draft, &[]).await;
    let before = w.store.snapshot();
    let (a, app) = (w.ada(), w.app.id);
    let cases: Vec<(Vec<ChangesetId>, &str, ChangesetId)> = vec![
        (vec![approved.id], "not_queued", approved.id),
        (vec![queued.id, queued.id], "duplicate", queued.id),
        (vec![queued.id, elsewhere.id], "unknown_changeset", elsewhere.id),
        (vec![dependent.id], "missing_dependencies", dependency.id),
        (vec![dependent.id, dependency.id], "dependency_order", dependency.id),
    ];
    for (order, reason, named) in cases {
        let got = w.c.set_release_changesets(&a, app, draft.id, &order).await;
        let err = got.as_ref().err().cloned();
        refused(&w, &before, got, ErrorCode::Validation, reason);
        let details = err.and_then(|e| e.details()).expect("details");
        assert_eq!(details["reason"], reason);
        assert_eq!(details["changeset_ids"], serde_json::json!([named]), "{reason}");
    }
    // The dependency first is fine, and then a reorder must keep it first
    // and list exactly the same changesets.
    let set = w.c.set_release_changesets(&a, app, draft.id, &[dependency.id, dependent.id, queued.id]).await.unwrap();
    assert_eq!(set.changeset_ids(), vec![dependency.id, dependent.id, queued.id]);
    let before = w.store.snapshot();
    let swapped = w.c.reorder_release(&a, app, draft.id, &[dependent.id, dependency.id, queued.id]).await;
    refused(&w, &before, swapped, ErrorCode::Validation, "dependency after its dependent");
    let fewer = w.c.reorder_release(&a, app, draft.id, &[dependency.id, dependent.id]).await;
    refused(&w, &before, fewer, ErrorCode::Validation, "a different set");
    let moved = w.c.reorder_release(&a, app, draft.id, &[queued.id, dependency.id, dependent.id]).await.unwrap();
    assert_eq!(moved.changeset_ids(), vec![queued.id, dependency.id, dependent.id]);
    assert_eq!(moved.version, set.version + 1);
}

#[tokio::test]
async fn releases_refuse_steps_out_of_order_and_change_nothing() {
    use crate::domain::release::ReleaseState as R;
    let w = World::new(Role::ConfigManager).await;
    let queued = w.changeset(&w.bob, ChangesetState::Queued).await;
    let empty = stored_release(&w, R::Draft, &[]).await;
    let draft = stored_release(&w, R::Draft, &[queued.id]).await;
    let published = stored_release(&w, R::Published, &[queued.id]).await;
    let before = w.store.snapshot();
    let (a, app) = (w.ada(), w.app.id);
    refused(&w, &before, w.c.assemble_release(&a, app, empty.id).await, ErrorCode::Validation, "assemble nothing");
    refused(&w, &before, w.c.publish_release(&a, app, draft.id).await, ErrorCode::InvalidTransition, "publish a draft");
    refused(
        &w,
        &before,
        w.c.publish_release(&a, app, published.id).await,
        ErrorCode::InvalidTransition,
        "publish twice",
    );
    let select = w.c.set_release_changesets(&a, app, published.id, &[queued.id]).await;
    refused(&w, &before, select, ErrorCode::InvalidTransition, "a selection on a published release");
    refused(
        &w,
        &before,
        w.c.assemble_release(&a, app, published.id).await,
        ErrorCode::InvalidTransition,
        "re-assemble",
    );
    let long = "x".repeat(MAX_RELEASE_TITLE_CHARS + 1);
    refused(&w, &before, w.c.create_release(&a, app, Some(&long)).await, ErrorCode::Validation, "a long title");
    let unknown = ReleaseId(uuid::Uuid::now_v7());
    refused(&w, &before, w.c.publish_release(&a, app, unknown).await, ErrorCode::NotFound, "an unknown release");
    // A draft is created by a config manager, audited.
    let created = w.c.create_release(&a, app, Some("Weekly")).await.unwrap();
    assert_eq!((created.title.as_str(), created.state, created.version), ("Weekly", R::Draft, 1));
    let audit = w.store.list_audit(&AuditFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!(audit.items[0].entry.action, "release.created");
}
