//! Crash tests of the ref intents (decision 0008): for each operation that
//! moves a ref, a child process — this test binary re-executed with
//! `CONMAN_CRASH_POINT` set — runs the operation over a git port wrapper
//! that calls `std::process::abort()` at the named point; the parent then
//! reopens the same data directory (real git repositories, real SQLite
//! file), runs the start-up reconciliation and shows the repair: refs and
//! rows agree, nothing is pending, and the audit trail names the repair.
//!
//! Crash points:
//! - `before_move`: the unit with the change and its intent is committed,
//!   the refs have not moved — reconciliation rolls the intent forward;
//! - `after_move`: the refs moved, the intent was never completed —
//!   reconciliation completes it;
//! - `after_plan` (writes, checkpoints, syncs — the operations whose git
//!   port plans commits — and publish, whose tag object is written first;
//!   the others only move refs): the objects exist, nothing was committed
//!   to the store — nothing is pending, the refs and the audit trail are
//!   untouched, and writes (or the publish) go on.
//!
//! A deploy crashes inside its `deploy_release` job, run by a job worker in
//! the child: after the restart the environment ref, the deployment record
//! (`succeeded`) and the release state (`deployed_partial`) agree.

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{settings_for, ADMIN_EMAIL, PASSWORD};
use conman_api::compose;
use conman_core::domain::app::CommitMode;
use conman_core::domain::workspace::Workspace;
use conman_core::ids::AppId;
use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, TagRequest};
use conman_core::ports::git::{
    DiffDetail, FileChange, FileOp, GitPort, Node, RefMove, RefPlan, RepoSource, Sha, Signature, SquashRequest,
    SyncOutcome, SyncPlan, SyncRequest, WriteRequest,
};
use conman_core::ports::store::{AuditFilter, IntentOutcome, PageRequest};
use conman_core::ports::system::Argon2Hasher;
use conman_core::rbac::Role;
use conman_core::services::{Actor, Conman, NewApp, NewChangeset, Ports, ReviewInput};
use conman_core::validation::RepoPath;
use conman_core::Error;

const POINT: &str = "CONMAN_CRASH_POINT";
const DIR: &str = "CONMAN_CRASH_DIR";

/// The git port of the child: the real one, aborting the process at `point`.
struct CrashingGit {
    real: Arc<dyn GitPort>,
    point: String,
}

#[async_trait]
impl GitPort for CrashingGit {
    async fn create_repo(
        &self,
        app: AppId,
        source: RepoSource,
        branch: &str,
        author: &Signature,
    ) -> Result<Sha, Error> {
        self.real.create_repo(app, source, branch, author).await
    }
    async fn remove_repo(&self, app: AppId) -> Result<(), Error> {
        self.real.remove_repo(app).await
    }
    async fn resolve_ref(&self, app: AppId, name: &str) -> Result<Option<Sha>, Error> {
        self.real.resolve_ref(app, name).await
    }
    async fn read(&self, app: AppId, rev: &Sha, path: Option<&RepoPath>) -> Result<Option<Node>, Error> {
        self.real.read(app, rev, path).await
    }
    async fn write(&self, app: AppId, request: WriteRequest) -> Result<Sha, Error> {
        self.real.write(app, request).await
    }
    async fn squash(&self, app: AppId, request: SquashRequest) -> Result<Option<Sha>, Error> {
        self.real.squash(app, request).await
    }
    async fn sync(&self, app: AppId, request: SyncRequest) -> Result<SyncOutcome, Error> {
        self.real.sync(app, request).await
    }
    async fn update_ref(&self, app: AppId, name: &str, new: Option<&Sha>, expected: Option<&Sha>) -> Result<(), Error> {
        self.real.update_ref(app, name, new, expected).await
    }
    async fn plan_write(&self, app: AppId, request: WriteRequest) -> Result<RefPlan, Error> {
        let plan = self.real.plan_write(app, request).await;
        if self.point == "after_plan" {
            std::process::abort();
        }
        plan
    }
    async fn plan_squash(&self, app: AppId, request: SquashRequest) -> Result<Option<RefPlan>, Error> {
        let plan = self.real.plan_squash(app, request).await;
        if self.point == "after_plan" {
            std::process::abort();
        }
        plan
    }
    async fn plan_sync(&self, app: AppId, request: SyncRequest) -> Result<SyncPlan, Error> {
        let plan = self.real.plan_sync(app, request).await;
        if self.point == "after_plan" {
            std::process::abort();
        }
        plan
    }
    async fn move_refs(&self, app: AppId, moves: &[RefMove]) -> Result<(), Error> {
        if self.point == "before_move" {
            std::process::abort();
        }
        let moved = self.real.move_refs(app, moves).await;
        if self.point == "after_move" {
            std::process::abort();
        }
        moved
    }
    async fn merge_base(&self, app: AppId, a: &Sha, b: &Sha) -> Result<Option<Sha>, Error> {
        self.real.merge_base(app, a, b).await
    }
    async fn is_ancestor(&self, app: AppId, ancestor: &Sha, descendant: &Sha) -> Result<bool, Error> {
        self.real.is_ancestor(app, ancestor, descendant).await
    }
    async fn diff(&self, app: AppId, from: &Sha, to: &Sha, detail: DiffDetail) -> Result<Vec<FileChange>, Error> {
        self.real.diff(app, from, to, detail).await
    }
    async fn compose(&self, app: AppId, request: ComposeRequest) -> Result<Composition, Error> {
        self.real.compose(app, request).await
    }
    async fn check_against(&self, app: AppId, onto: Sha, items: Vec<ComposeItem>) -> Result<Vec<CheckOutcome>, Error> {
        self.real.check_against(app, onto, items).await
    }
    async fn write_tag(&self, app: AppId, request: TagRequest) -> Result<Sha, Error> {
        let tag = self.real.write_tag(app, request).await;
        if self.point == "after_plan" {
            std::process::abort();
        }
        tag
    }
}

/// The operations under test.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Write,
    Checkpoint,
    Reset,
    Sync,
    CreateWorkspace,
    Submit,
    Publish,
    Deploy,
}

impl Operation {
    /// The intent's `operation` (the audited action).
    fn action(self) -> &'static str {
        match self {
            Operation::Write => "workspace.files_changed",
            Operation::Checkpoint => "workspace.checkpointed",
            Operation::Reset => "workspace.reset",
            Operation::Sync => "workspace.synced",
            Operation::CreateWorkspace => "workspace.created",
            Operation::Submit => "changeset.submitted",
            Operation::Publish => "release.published",
            Operation::Deploy => "deployment.succeeded",
        }
    }
}

struct Installation {
    conman: Arc<Conman>,
    actor: Actor,
    app: AppId,
    ws: Workspace,
}

async fn open(dir: &std::path::Path) -> Installation {
    let installation =
        compose::open_with_hasher(&settings_for(dir), Argon2Hasher::insecure_fast_for_tests()).expect("open");
    let conman = installation.conman;
    let actor = conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("actor");
    let app = conman.ports().store.app_by_name("crash").await.expect("app read").expect("app").id;
    let ws = conman.ports().store.default_workspace(app, actor.user.id).await.expect("read").expect("workspace");
    Installation { conman, actor, app, ws }
}

/// The state every operation starts from: an app, its admin's default
/// workspace in `manual_checkpoint` mode with one saved edit, and the
/// integration branch one commit ahead of the workspace's base.
async fn prepare(dir: &std::path::Path) {
    let installation =
        compose::open_with_hasher(&settings_for(dir), Argon2Hasher::insecure_fast_for_tests()).expect("open");
    let conman = installation.conman;
    conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
    let actor = conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "crash".into(), ..Default::default() }).await.expect("app");
    let ws = conman.ports().store.default_workspace(app.id, actor.user.id).await.unwrap().expect("default workspace");
    conman
        .update_workspace(&actor, app.id, ws.id, None, Some(CommitMode::ManualCheckpoint))
        .await
        .expect("manual checkpoints");
    conman.write_file(&actor, app.id, ws.id, "saved.yaml", b"saved: 1\n".to_vec(), None).await.expect("write");
    // Someone else's change on the integration branch (set up directly).
    let upstream = WriteRequest {
        target_ref: format!("refs/heads/{}", app.settings.integration_branch),
        base_ref: format!("refs/heads/{}", app.settings.integration_branch),
        ops: vec![FileOp::Put { path: RepoPath::parse("upstream.yaml").unwrap(), content: b"up: 1\n".to_vec() }],
        message: "upstream".into(),
        author: Signature { name: "Bob".into(), email: "bob@example.com".into() },
    };
    conman.ports().git.write(app.id, upstream).await.expect("upstream commit");
}

/// Brings the workspace to the state `operation` needs beyond [`prepare`].
async fn before(operation: Operation, i: &Installation) {
    if let Operation::Submit | Operation::Publish | Operation::Deploy = operation {
        i.conman.checkpoint(&i.actor, i.app, i.ws.id, "saved").await.expect("checkpoint");
        let input =
            NewChangeset { workspace_id: i.ws.id, title: "crash".into(), description: None, depends_on: vec![] };
        i.conman.create_changeset(&i.actor, i.app, input).await.expect("changeset");
    }
    if let Operation::Publish | Operation::Deploy = operation {
        validated_release(i).await;
    }
    if let Operation::Deploy = operation {
        deploy_requested(i).await;
    }
}

/// Publishes the validated release and requests its deploy to `dev` (of
/// `dev`, `prod`): the deployment runs, its job waits for a worker.
async fn deploy_requested(i: &Installation) {
    use conman_core::services::{DeployRequest, EnvironmentInput};
    let (conman, actor, app) = (&i.conman, &i.actor, i.app);
    let release = conman.publish_release(actor, app, the_release(i).await.id).await.expect("publish");
    let input = ["dev", "prod"]
        .iter()
        .enumerate()
        .map(|(position, name)| EnvironmentInput {
            name: (*name).into(),
            position: position as u32,
            is_canonical: *name == "prod",
            runtime_profile_id: None,
        })
        .collect();
    let envs = conman.replace_environments(actor, app, input).await.expect("environments");
    let request = DeployRequest {
        release_id: release.id,
        environment_ids: vec![envs[0].id],
        is_skip_stage: false,
        is_concurrent_batch: false,
        freeze_override: None,
    };
    let started = conman.deploy_release(actor, app, request).await.expect("deploy");
    assert!(started[0].job.is_some(), "a first-stage deploy runs at once");
}

/// Takes the workspace's changeset through its gate, a review and the
/// queue into a release, assembled and gated by real job workers:
/// `validated`, ready to publish.
async fn validated_release(i: &Installation) {
    use conman_api::runtime::{run_workers, NotifyWakeup, WorkerOptions};
    use conman_core::domain::release::ReleaseState;
    let (conman, actor, app) = (&i.conman, &i.actor, i.app);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = WorkerOptions { concurrency: 1, poll_interval: Duration::from_millis(10), ..Default::default() };
    let workers = tokio::spawn(run_workers(conman.clone(), Arc::new(NotifyWakeup::new()), options, async {
        let _ = stopped.await;
    }));
    let cs = conman.ports().store.open_changeset_of_workspace(app, i.ws.id).await.unwrap().expect("changeset");
    conman.submit_changeset(actor, app, cs.id).await.expect("submit");
    let state = |id| async move { conman.ports().store.changeset(app, id).await.unwrap().expect("changeset").state };
    wait(|| async { state(cs.id).await.as_str() == "in_review" }).await;
    let rita = conman.create_user(actor, "rita@example.com", "Rita", PASSWORD, false).await.expect("reviewer");
    conman.put_member(actor, app, rita.id, Role::Reviewer).await.expect("member");
    let reviewer = conman.local_actor("rita@example.com", Default::default()).await.expect("reviewer actor");
    let vote = ReviewInput { action: "approve".into(), comment: None, revision: None };
    conman.review_changeset(&reviewer, app, cs.id, vote).await.expect("approve");
    conman.queue_changeset(actor, app, cs.id).await.expect("queue");
    let release = conman.create_release(actor, app, Some("crash")).await.expect("release");
    conman.set_release_changesets(actor, app, release.id, &[cs.id]).await.expect("select");
    conman.assemble_release(actor, app, release.id).await.expect("assemble");
    let release_state = || async { conman.get_release(actor, app, release.id).await.expect("release").state };
    wait(|| async { release_state().await != ReleaseState::Assembling }).await;
    assert_eq!(release_state().await, ReleaseState::Validated);
    let _ = stop.send(());
    workers.await.expect("workers stop");
}

/// Polls `done` every 10 ms, for at most 20 s.
async fn wait<F: std::future::Future<Output = bool>>(done: impl Fn() -> F) {
    for _ in 0..2000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for the jobs");
}

/// The release `before(Publish)` made.
async fn the_release(i: &Installation) -> conman_core::domain::release::Release {
    let page = i.conman.list_releases(&i.actor, i.app, Default::default(), PageRequest::default()).await.unwrap();
    page.items.into_iter().next().expect("the release")
}

/// Runs `operation` (in the child).
async fn run(operation: Operation, i: &Installation) {
    let (conman, actor, app, ws) = (&i.conman, &i.actor, i.app, i.ws.id);
    match operation {
        Operation::Write => {
            conman.write_file(actor, app, ws, "crash.yaml", b"crash: 1\n".to_vec(), None).await.map(drop)
        }
        Operation::Checkpoint => conman.checkpoint(actor, app, ws, "checkpoint").await.map(drop),
        Operation::Reset => conman.reset_workspace(actor, app, ws).await.map(drop),
        Operation::Sync => conman.sync_integration(actor, app, ws, None).await.map(drop),
        Operation::CreateWorkspace => conman.create_workspace(actor, app, Some("second".into())).await.map(drop),
        Operation::Submit => {
            let cs = conman.ports().store.open_changeset_of_workspace(app, ws).await.unwrap().expect("changeset");
            conman.submit_changeset(actor, app, cs.id).await.map(drop)
        }
        Operation::Publish => conman.publish_release(actor, app, the_release(i).await.id).await.map(drop),
        Operation::Deploy => {
            // A worker runs the deploy job until the crash point aborts it.
            use conman_api::runtime::{run_workers, NotifyWakeup, WorkerOptions};
            let options =
                WorkerOptions { concurrency: 1, poll_interval: Duration::from_millis(10), ..Default::default() };
            let workers = run_workers(conman.clone(), Arc::new(NotifyWakeup::new()), options, std::future::pending());
            let _ = tokio::time::timeout(Duration::from_secs(60), workers).await;
            Err(Error::internal("the deploy job never reached the crash point"))
        }
    }
    .expect("the operation succeeds until the crash");
}

/// The child: runs `operation` over the crashing git port; never returns.
async fn child(operation: Operation, point: String, dir: &std::path::Path) {
    let i = open(dir).await;
    let ports = i.conman.ports().clone();
    let git = Arc::new(CrashingGit { real: ports.git.clone(), point });
    let crashing = Arc::new(Conman::new(Ports { git, ..ports }, settings_for(dir).core_config()));
    run(operation, &Installation { conman: crashing, ..i }).await;
    panic!("the crash point was never reached");
}

/// The parent: prepares the data, lets the child crash at `point`, then
/// reopens, reconciles and checks the repair.
async fn crash_and_repair(test: &str, operation: Operation, point: &str) {
    if let Ok(point) = std::env::var(POINT) {
        let dir = std::env::var(DIR).expect("crash dir");
        return child(operation, point, std::path::Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    prepare(dir.path()).await;
    let (refs_before, audit_before) = {
        let i = open(dir.path()).await;
        before(operation, &i).await;
        (workspace_refs(&i).await, newest_audit(&i, &i.ws.id.to_string()).await)
    };
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(POINT, point)
        .env(DIR, dir.path())
        .status()
        .expect("child runs");
    assert_eq!(status.signal(), Some(libc_sigabrt()), "the child aborted at {point}: {status:?}");

    let i = open(dir.path()).await;
    let (store, git) = (&i.conman.ports().store, &i.conman.ports().git);
    let pending = store.pending_intents(None).await.expect("pending");
    if point == "after_plan" {
        assert!(pending.is_empty(), "a crash before the unit leaves no intent: {pending:?}");
        let report = i.conman.reconcile_intents().await.expect("reconcile");
        assert_eq!(report.repaired(), 0, "{report:?}");
        assert_eq!(workspace_refs(&i).await, refs_before, "no ref moved");
        let (_, node) = i.conman.read_workspace_path(&i.actor, i.app, i.ws.id, None).await.expect("root");
        assert!(!format!("{node:?}").contains("crash.yaml"), "the planned commit never landed");
        let audit = newest_audit(&i, &i.ws.id.to_string()).await;
        assert_eq!(audit, audit_before, "the last audited change is the prepared one");
        if let Operation::Publish = operation {
            // The tag object was written; nothing refers to it, nothing
            // was published, and publishing again succeeds.
            let release = the_release(&i).await;
            assert_eq!(release.state, conman_core::domain::release::ReleaseState::Validated);
            let app = i.conman.ports().store.app(i.app).await.unwrap().expect("app");
            let head = git.resolve_ref(i.app, &app.integration_ref()).await.unwrap();
            assert_eq!(head.map(|s| s.0), release.base_sha, "the integration branch did not move");
            let published = i.conman.publish_release(&i.actor, i.app, release.id).await.expect("publish again");
            assert_eq!(published.tag.as_deref().map(|t| t.ends_with(".1")), Some(true), "{published:?}");
            return;
        }
        i.conman.write_file(&i.actor, i.app, i.ws.id, "after.yaml", b"a\n".to_vec(), None).await.expect("writes go on");
        return;
    }
    assert_eq!(pending.len(), 1, "{pending:?}");
    let intent = pending[0].clone();
    assert_eq!(intent.operation, operation.action());
    for m in &intent.moves {
        let now = git.resolve_ref(i.app, &m.name).await.expect("ref");
        let expected = if point == "before_move" { &m.from } else { &m.to };
        assert_eq!(&now, expected, "{} before reconciliation", m.name);
    }

    let report = i.conman.reconcile_intents().await.expect("reconcile");
    let (rolled, completed) = if point == "before_move" { (1, 0) } else { (0, 1) };
    assert_eq!((report.checked, report.rolled_forward, report.completed, report.abandoned), (1, rolled, completed, 0));
    for m in &intent.moves {
        assert_eq!(git.resolve_ref(i.app, &m.name).await.expect("ref"), m.to, "{} after reconciliation", m.name);
    }
    assert!(store.pending_intents(None).await.unwrap().is_empty());
    assert_eq!(store.intent_outcome(intent.id).await.unwrap(), Some(IntentOutcome::Applied));
    let (action, actor, sha, after) = newest_audit(&i, &intent.owner_id).await;
    let repair = if point == "before_move" { "intent.rolled_forward" } else { "intent.completed" };
    assert_eq!(action, repair);
    assert_eq!(actor, None, "the system repaired it");
    assert_eq!(after["intent_id"], intent.id.to_string());
    assert_eq!(sha, intent.moves.iter().find_map(|m| m.to.clone()).map(|s| s.0));
    agrees(operation, &i, &intent.owner_id).await;

    // A second reconciliation finds nothing; the installation works on.
    assert_eq!(i.conman.reconcile_intents().await.unwrap().checked, 0);
    i.conman.write_file(&i.actor, i.app, i.ws.id, "after.yaml", b"a\n".to_vec(), None).await.expect("writes go on");
    let verification = i.conman.verify_audit_chain().await.expect("verify");
    assert!(verification.is_intact(), "{:?}", verification.first_break);
}

/// The store's rows agree with the refs after the repair.
async fn agrees(operation: Operation, i: &Installation, owner: &str) {
    let (conman, store) = (&i.conman, &i.conman.ports().store);
    let ws = store.workspace(i.app, i.ws.id).await.unwrap().expect("workspace");
    let (_, head) = conman.get_workspace(&i.actor, i.app, ws.id).await.expect("workspace head");
    let app = store.app(i.app).await.unwrap().expect("app");
    let baseline = conman
        .ports()
        .git
        .resolve_ref(i.app, &format!("refs/heads/{}", app.settings.integration_branch))
        .await
        .unwrap()
        .expect("baseline");
    let audited_sha = |action: &'static str| async move {
        let filter = AuditFilter { app_id: Some(i.app), entity_id: Some(i.ws.id.to_string()), ..Default::default() };
        let page = store.list_audit(&filter, PageRequest::new(Some(1), Some(100)).unwrap()).await.unwrap();
        let newest = page.items.iter().find(|r| r.entry.action == action).expect("the operation's audit entry");
        newest.entry.git_sha.clone().expect("sha")
    };
    match operation {
        Operation::Write => {
            assert_eq!(head.0, audited_sha("workspace.files_changed").await);
            let (_, node) = conman.read_workspace_path(&i.actor, i.app, ws.id, Some("crash.yaml")).await.unwrap();
            assert_eq!(node, Node::File(b"crash: 1\n".to_vec()));
        }
        Operation::Checkpoint => {
            assert_eq!(head.0, audited_sha("workspace.checkpointed").await);
            assert_eq!(conman.ports().git.resolve_ref(i.app, &ws.wip_ref()).await.unwrap(), None);
        }
        Operation::Reset => {
            assert_eq!((head.0.as_str(), ws.base_sha.as_str()), (baseline.0.as_str(), baseline.0.as_str()));
        }
        Operation::Sync => {
            assert_eq!(ws.base_sha, baseline.0, "the row's base is the synced upstream");
            assert_eq!(head.0, audited_sha("workspace.synced").await);
            assert!(conman.ports().git.is_ancestor(i.app, &baseline, &head).await.unwrap());
        }
        Operation::CreateWorkspace => {
            let created: conman_core::ids::WorkspaceId = owner.parse().unwrap();
            let second = store.workspace(i.app, created).await.unwrap().expect("the row");
            let branch = conman.ports().git.resolve_ref(i.app, &second.branch_ref()).await.unwrap();
            assert_eq!(branch.map(|s| s.0), Some(second.base_sha));
        }
        Operation::Publish => {
            use conman_core::domain::release::ReleaseState;
            let release = the_release(i).await;
            assert_eq!(release.state, ReleaseState::Published);
            let tag = release.tag.clone().expect("tag");
            assert_eq!(baseline.0, release.composed_sha.clone().expect("composed"), "the branch is at the release");
            let tag_ref = conman.ports().git.resolve_ref(i.app, &format!("refs/tags/{tag}")).await.unwrap();
            assert!(tag_ref.is_some(), "the tag ref exists");
            for item in &release.items {
                let cs = store.changeset(i.app, item.changeset_id).await.unwrap().expect("changeset");
                assert_eq!(cs.state.as_str(), "released");
            }
        }
        Operation::Deploy => {
            use conman_core::domain::deployment::DeploymentState;
            use conman_core::domain::release::ReleaseState;
            let id: conman_core::ids::DeploymentId = owner.parse().unwrap();
            let d = store.deployment(i.app, id).await.unwrap().expect("the deployment");
            assert_eq!((d.state, d.active), (DeploymentState::Succeeded, false), "{d:?}");
            let env = store.environments(i.app).await.unwrap().into_iter().find(|e| e.id == d.environment_id);
            let env = env.expect("its environment");
            let on_env = conman.ports().git.resolve_ref(i.app, &env.git_ref()).await.unwrap();
            assert_eq!(on_env.map(|s| s.0), Some(d.commit.clone()), "the environment ref is the release commit");
            let release = store.release(i.app, d.release_id).await.unwrap().expect("release");
            assert_eq!(release.state, ReleaseState::DeployedPartial, "on dev, not prod");
            assert_eq!(release.composed_sha.as_deref(), Some(d.commit.as_str()));
            let status = conman.environment_status(&i.actor, i.app, env.id).await.unwrap();
            assert_eq!(status.current_release_id, Some(release.id));
            assert!(status.drift.is_none() && status.active_deployment.is_none(), "{status:?}");
        }
        Operation::Submit => {
            let cs = store.open_changeset_of_workspace(i.app, ws.id).await.unwrap().expect("changeset");
            let revisions = store.changeset_revisions(cs.id).await.unwrap();
            let revision = revisions.last().expect("a revision");
            let protect = format!("refs/conman/changesets/{}/{}", cs.id, revision.number);
            let protected = conman.ports().git.resolve_ref(i.app, &protect).await.unwrap();
            assert_eq!(protected.map(|s| s.0), Some(revision.head_sha.clone()));
            assert_eq!(cs.head_sha, Some(revision.head_sha.clone()));
        }
    }
}

/// The workspace's branch and WIP ref values.
async fn workspace_refs(i: &Installation) -> (Option<Sha>, Option<Sha>) {
    let git = &i.conman.ports().git;
    (git.resolve_ref(i.app, &i.ws.branch_ref()).await.unwrap(), git.resolve_ref(i.app, &i.ws.wip_ref()).await.unwrap())
}

/// (action, actor, sha, after) of the newest audit event of `entity_id`.
async fn newest_audit(
    i: &Installation,
    entity_id: &str,
) -> (String, Option<String>, Option<String>, serde_json::Value) {
    let filter = AuditFilter { app_id: Some(i.app), entity_id: Some(entity_id.into()), ..Default::default() };
    let page = i.conman.ports().store.list_audit(&filter, PageRequest::new(Some(1), Some(1)).unwrap()).await.unwrap();
    let e = &page.items[0].entry;
    (e.action.clone(), e.actor_id.map(|a| a.to_string()), e.git_sha.clone(), e.after.clone().unwrap_or_default())
}

fn libc_sigabrt() -> i32 {
    6
}

macro_rules! crash_tests {
    ($($name:ident: $operation:expr, $point:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            crash_and_repair(stringify!($name), $operation, $point).await;
        }
    )*};
}

crash_tests! {
    write_crash_after_plan_leaves_nothing_pending: Operation::Write, "after_plan";
    write_crash_before_move_is_rolled_forward: Operation::Write, "before_move";
    write_crash_after_move_is_completed: Operation::Write, "after_move";
    checkpoint_crash_after_plan_leaves_nothing_pending: Operation::Checkpoint, "after_plan";
    checkpoint_crash_before_move_is_rolled_forward: Operation::Checkpoint, "before_move";
    checkpoint_crash_after_move_is_completed: Operation::Checkpoint, "after_move";
    reset_crash_before_move_is_rolled_forward: Operation::Reset, "before_move";
    reset_crash_after_move_is_completed: Operation::Reset, "after_move";
    sync_crash_after_plan_leaves_nothing_pending: Operation::Sync, "after_plan";
    sync_crash_before_move_is_rolled_forward: Operation::Sync, "before_move";
    sync_crash_after_move_is_completed: Operation::Sync, "after_move";
    create_workspace_crash_before_move_is_rolled_forward: Operation::CreateWorkspace, "before_move";
    create_workspace_crash_after_move_is_completed: Operation::CreateWorkspace, "after_move";
    submit_crash_before_move_is_rolled_forward: Operation::Submit, "before_move";
    submit_crash_after_move_is_completed: Operation::Submit, "after_move";
    publish_crash_after_the_tag_object_leaves_nothing_published: Operation::Publish, "after_plan";
    publish_crash_before_move_is_rolled_forward: Operation::Publish, "before_move";
    publish_crash_after_move_is_completed: Operation::Publish, "after_move";
    deploy_crash_before_move_is_rolled_forward: Operation::Deploy, "before_move";
    deploy_crash_after_move_is_completed: Operation::Deploy, "after_move";
}
