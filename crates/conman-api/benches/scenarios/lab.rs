//! The installation the release and deploy scenarios run on (issues 13 and
//! 14): the core as the server composes it — SQLite, libgit2 repositories,
//! the process runner, the in-process wake-up — with a job worker of the
//! server's default shape (2 slots, 1 s poll, so only the wake-up starts a
//! job promptly) running in this process, and the flow that takes
//! changesets to the queue and releases to `published`, all through the
//! core's services.
//!
//! Invariants: no gate, release-gate or deploy command is configured
//! (`Config::default()`), so every gate passes without starting a process;
//! every helper checks the state it waits for and panics on any other, so a
//! scenario never times a flow that went wrong; [`Lab::idle`] waits until no
//! job of any app is queued or running, so a timed call never shares the
//! machine with the previous step's jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conman_api::runtime::command::ProcessRunner;
use conman_api::runtime::wakeup::NotifyWakeup;
use conman_api::runtime::worker::{run_workers, WorkerOptions};
use conman_api::runtime::GateSandbox;
use conman_core::domain::app::AppSettingsPatch;
use conman_core::domain::audit::RequestContext;
use conman_core::domain::changeset::ChangesetState;
use conman_core::domain::release::{Release, ReleaseState};
use conman_core::ids::{AppId, ChangesetId};
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::services::{Actor, Config, Conman, NewApp, NewChangeset, Ports, ReviewInput};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a wait for a job-driven state may take before the run fails.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// An installation in a temporary directory with one app, its operator
/// (app admin, allowed to approve their own changesets) and a running
/// worker.
pub(super) struct Lab {
    pub(super) conman: Arc<Conman>,
    pub(super) actor: Actor,
    pub(super) app: AppId,
    pub(super) dir: tempfile::TempDir,
    wakeup: Arc<NotifyWakeup>,
    worker: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Lab {
    /// Opens the installation, creates the app `name` and starts the
    /// worker with the server's default options.
    pub(super) async fn open(name: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store");
        let git = conman_git::GitRepos::new(dir.path().join("repos")).expect("repos");
        let wakeup = Arc::new(NotifyWakeup::new());
        let key = conman_api::compose::MasterKey::parse(&"00".repeat(32), "key").expect("key");
        let conman = Conman::new(
            Ports {
                store: Arc::new(store),
                git: Arc::new(git.clone()),
                clock: Arc::new(SystemClock),
                ids: Arc::new(UuidV7Ids),
                passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
                tokens: Arc::new(OsRandomTokens),
            },
            Config::default(),
        )
        .with_job_runtime(Arc::new(ProcessRunner::new(git, GateSandbox::Unsandboxed)), wakeup.clone())
        .with_secrets(conman_api::compose::secrets_cipher(&key))
        .with_compute(Arc::new(conman_api::compute::BlockingCompute));
        let conman = Arc::new(conman);
        let admin = conman.bootstrap_admin("lab@example.com", "Lab", "bench-password-123").await.expect("admin");
        let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
        let app = conman.create_app(&actor, NewApp { name: name.into(), ..Default::default() }).await.expect("app");
        let patch = AppSettingsPatch { allow_self_approval: Some(true), ..Default::default() };
        conman.update_settings(&actor, app.id, patch).await.expect("settings");
        let mut lab = Lab { conman, actor, app: app.id, dir, wakeup, worker: None };
        lab.start_worker(WorkerOptions::default());
        lab
    }

    /// (Re)starts the in-process worker with `options`.
    pub(super) async fn restart_worker(&mut self, options: WorkerOptions) {
        self.stop_worker().await;
        self.start_worker(options);
    }

    fn start_worker(&mut self, options: WorkerOptions) {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_workers(self.conman.clone(), self.wakeup.clone(), options, async {
            let _ = stopped.await;
        }));
        self.worker = Some((stop, task));
    }

    /// Stops the worker and waits for it.
    pub(super) async fn stop_worker(&mut self) {
        if let Some((stop, task)) = self.worker.take() {
            let _ = stop.send(());
            task.await.expect("worker stops");
        }
    }

    /// The app's repository, for the git CLI.
    pub(super) fn repo(&self) -> std::path::PathBuf {
        self.dir.path().join("repos").join(format!("{}.git", self.app))
    }

    /// Waits until no job of any app is queued or running.
    pub(super) async fn idle(&self) {
        let start = Instant::now();
        loop {
            let counts = self.conman.job_counts().await.expect("job counts");
            if counts.iter().all(|(_, state, n)| state.is_terminal() || *n == 0) {
                return;
            }
            assert!(start.elapsed() < SETTLE_LIMIT, "jobs still running after {SETTLE_LIMIT:?}: {counts:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// `files.len()` changesets, each on a workspace of its own writing one
    /// (path, content), taken through submit, the submit gate, approval and
    /// the queue; answers them in order.
    pub(super) async fn queued(&self, tag: &str, files: Vec<(String, String)>) -> Vec<ChangesetId> {
        let (c, a, app) = (&self.conman, &self.actor, self.app);
        let mut ids = Vec::with_capacity(files.len());
        for (n, (path, content)) in files.into_iter().enumerate() {
            let ws = c.create_workspace(a, app, Some(format!("{tag} {n}"))).await.expect("workspace");
            c.write_file(a, app, ws.id, &path, content.into_bytes(), None).await.expect("write");
            let input = NewChangeset {
                workspace_id: ws.id,
                title: format!("{tag} {n}"),
                description: None,
                depends_on: vec![],
            };
            let cs = c.create_changeset(a, app, input).await.expect("changeset");
            c.submit_changeset(a, app, cs.id).await.expect("submit");
            ids.push(cs.id);
        }
        for id in &ids {
            let state = self.changeset_settled(*id).await;
            assert_eq!(state, ChangesetState::InReview, "changeset {id} after its submit gate");
            let vote = ReviewInput { action: "approve".into(), comment: None, revision: None };
            c.review_changeset(a, app, *id, vote).await.expect("approve");
            let queued = c.queue_changeset(a, app, *id).await.expect("queue");
            assert_eq!(queued.state, ChangesetState::Queued);
        }
        ids
    }

    /// The changeset's state once its submit gate has settled.
    async fn changeset_settled(&self, id: ChangesetId) -> ChangesetState {
        let start = Instant::now();
        loop {
            let cs = self.conman.ports().store.changeset(self.app, id).await.expect("read").expect("exists");
            if cs.state != ChangesetState::Submitted {
                return cs.state;
            }
            assert!(start.elapsed() < SETTLE_LIMIT, "the submit gate of {id} never settled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A release of `changesets` (in that order), assembled and validated,
    /// every one of them composed.
    pub(super) async fn validated(&self, title: &str, changesets: &[ChangesetId]) -> Release {
        let (c, a, app) = (&self.conman, &self.actor, self.app);
        let release = c.create_release(a, app, Some(title)).await.expect("release");
        c.set_release_changesets(a, app, release.id, changesets).await.expect("selection");
        c.assemble_release(a, app, release.id).await.expect("assemble");
        let start = Instant::now();
        let release = loop {
            let r = c.get_release(a, app, release.id).await.expect("read release");
            if r.state != ReleaseState::Assembling {
                break r;
            }
            assert!(start.elapsed() < SETTLE_LIMIT, "release {} never finished assembling", r.id);
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert_eq!(release.state, ReleaseState::Validated, "release {}: {:?}", release.id, release.failure);
        assert_eq!(release.included().count(), changesets.len(), "every selected changeset composed");
        release
    }

    /// A published release of one changeset writing (path, content).
    pub(super) async fn published(&self, title: &str, path: &str, content: &str) -> Release {
        let ids = self.queued(title, vec![(path.to_owned(), content.to_owned())]).await;
        let release = self.validated(title, &ids).await;
        let published = self.conman.publish_release(&self.actor, self.app, release.id).await.expect("publish");
        assert_eq!(published.state, ReleaseState::Published);
        published
    }
}
