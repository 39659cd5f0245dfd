//! Ref intents racing other processes and moves outside Conman (decision
//! 0008), deterministically, on one real SQLite store and real repositories:
//! two `Conman` values over the same ports stand for two server processes
//! (each has its own in-process intent turns, as two processes do).
//!
//! - A write planned on a head the other process then moved is refused by
//!   the store before its unit commits (`ref_moved`), so it is never
//!   audited; it re-plans and lands. The audit names exactly the heads that
//!   were moved.
//! - A ref moved outside Conman (the store remembers another value) is
//!   adopted — audited `ref.adopted` by the system — and the write goes on.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::{settings_for, ADMIN_EMAIL, PASSWORD};
use conman_api::compose;
use conman_core::domain::audit::AuditEntry;
use conman_core::ids::AppId;
use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, TagRequest};
use conman_core::ports::git::{
    DiffDetail, FileChange, GitPort, Node, RefMove, RefPlan, RepoSource, Sha, Signature, SquashRequest, SyncOutcome,
    SyncPlan, SyncRequest, WriteRequest,
};
use conman_core::ports::store::{AuditFilter, PageRequest};
use conman_core::ports::system::Argon2Hasher;
use conman_core::services::{Actor, Conman, NewApp, Ports};
use conman_core::validation::RepoPath;
use conman_core::Error;
use tokio::sync::Notify;

/// The real git port; its first `plan_write` (when `pause` is set) tells
/// `planned` and waits for `proceed` before answering.
struct PausingGit {
    real: Arc<dyn GitPort>,
    pause: AtomicBool,
    planned: Notify,
    proceed: Notify,
}

#[async_trait]
impl GitPort for PausingGit {
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
        if self.pause.swap(false, Ordering::SeqCst) {
            self.planned.notify_one();
            self.proceed.notified().await;
        }
        plan
    }
    async fn plan_squash(&self, app: AppId, request: SquashRequest) -> Result<Option<RefPlan>, Error> {
        self.real.plan_squash(app, request).await
    }
    async fn plan_sync(&self, app: AppId, request: SyncRequest) -> Result<SyncPlan, Error> {
        self.real.plan_sync(app, request).await
    }
    async fn move_refs(&self, app: AppId, moves: &[RefMove]) -> Result<(), Error> {
        self.real.move_refs(app, moves).await
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
        self.real.write_tag(app, request).await
    }
}

struct World {
    _dir: tempfile::TempDir,
    conman: Arc<Conman>,
    actor: Actor,
    app: AppId,
    ws: conman_core::ids::WorkspaceId,
    wip: String,
}

/// An installation with one app and its admin's default workspace holding
/// one write (so the store remembers the WIP ref's value).
async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let installation =
        compose::open_with_hasher(&settings_for(dir.path()), Argon2Hasher::insecure_fast_for_tests()).expect("open");
    let conman = installation.conman;
    conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
    let actor = conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "race".into(), ..Default::default() }).await.expect("app");
    let ws = conman.ports().store.default_workspace(app.id, actor.user.id).await.unwrap().expect("default workspace");
    conman.write_file(&actor, app.id, ws.id, "first.yaml", b"n: 0\n".to_vec(), None).await.expect("first write");
    World { _dir: dir, conman, actor, app: app.id, wip: ws.wip_ref(), ws: ws.id }
}

/// The workspace's audit entries, oldest first.
async fn audit_of(w: &World) -> Vec<AuditEntry> {
    let filter = AuditFilter { app_id: Some(w.app), entity_id: Some(w.ws.to_string()), ..Default::default() };
    let page = w.conman.ports().store.list_audit(&filter, PageRequest::new(Some(1), Some(100)).unwrap()).await.unwrap();
    page.items.into_iter().rev().map(|r| r.entry).collect()
}

fn actions(entries: &[AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.action.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_planned_on_a_head_another_process_moved_is_refused_before_it_is_audited() {
    let w = world().await;
    let ports = w.conman.ports().clone();
    let pausing = Arc::new(PausingGit {
        real: ports.git.clone(),
        pause: true.into(),
        planned: Notify::new(),
        proceed: Notify::new(),
    });
    let config = settings_for(w._dir.path()).core_config();
    let first = Arc::new(Conman::new(Ports { git: pausing.clone(), ..ports }, config));

    // Process A plans its write on the current head and stops there.
    let slow = {
        let (first, actor, app, ws) = (first.clone(), w.actor.clone(), w.app, w.ws);
        tokio::spawn(async move { first.write_file(&actor, app, ws, "a.yaml", b"a: 1\n".to_vec(), None).await })
    };
    pausing.planned.notified().await;
    let planned_on = ports_head(&w).await;
    // Process B writes and moves the head meanwhile.
    let fast = w.conman.write_file(&w.actor, w.app, w.ws, "b.yaml", b"b: 1\n".to_vec(), None).await.expect("B");
    assert_ne!(Some(&fast.head), planned_on.as_ref());
    pausing.proceed.notify_one();
    let slow = slow.await.expect("task").expect("A re-plans and lands");

    let head = ports_head(&w).await.expect("head");
    assert_eq!(head, slow.head, "A's re-planned write is the head");
    let git = &w.conman.ports().git;
    assert!(git.is_ancestor(w.app, &fast.head, &head).await.unwrap(), "B's write is kept");
    let audit = audit_of(&w).await;
    let written: Vec<&AuditEntry> = audit.iter().filter(|e| e.action == "workspace.files_changed").collect();
    assert_eq!(written.len(), 3, "one audited write per head moved: {:?}", actions(&audit));
    for e in &written {
        let sha = Sha(e.git_sha.clone().expect("sha"));
        assert!(git.is_ancestor(w.app, &sha, &head).await.unwrap(), "audited {sha} never became the head");
    }
    assert!(!actions(&audit).contains(&"intent.abandoned"), "{:?}", actions(&audit));
    assert!(w.conman.ports().store.pending_intents(None).await.unwrap().is_empty());
    assert!(w.conman.verify_audit_chain().await.unwrap().is_intact());
}

async fn ports_head(w: &World) -> Option<Sha> {
    w.conman.ports().git.resolve_ref(w.app, &w.wip).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_moved_outside_conman_is_adopted_audited_and_the_write_goes_on() {
    let w = world().await;
    let git = w.conman.ports().git.clone();
    // Outside Conman: the WIP ref is deleted (the store remembers the first write).
    let remembered = ports_head(&w).await.expect("the first write");
    git.update_ref(w.app, &w.wip, None, Some(&remembered)).await.expect("moved outside Conman");

    let written =
        w.conman.write_file(&w.actor, w.app, w.ws, "after.yaml", b"x: 1\n".to_vec(), None).await.expect("write");
    assert_eq!(ports_head(&w).await, Some(written.head.clone()));
    let audit = audit_of(&w).await;
    let tail: Vec<&str> = actions(&audit).into_iter().rev().take(2).collect();
    assert_eq!(tail, ["workspace.files_changed", "ref.adopted"], "{:?}", actions(&audit));
    let adopted = &audit[audit.len() - 2];
    assert_eq!(adopted.actor_id, None, "the system adopted it");
    let after = adopted.after.clone().expect("after");
    assert_eq!(after["ref"], w.wip);
    assert_eq!(after["value"], serde_json::Value::Null, "the ref was absent");
    assert_eq!(after["for"], "workspace.files_changed");

    // The memory is right again: the next write adopts nothing.
    w.conman.write_file(&w.actor, w.app, w.ws, "next.yaml", b"y: 1\n".to_vec(), None).await.expect("write");
    let audit = audit_of(&w).await;
    assert_eq!(actions(&audit).iter().filter(|a| **a == "ref.adopted").count(), 1, "{:?}", actions(&audit));
    assert!(w.conman.ports().store.pending_intents(None).await.unwrap().is_empty());
    assert!(w.conman.verify_audit_chain().await.unwrap().is_intact());
}
