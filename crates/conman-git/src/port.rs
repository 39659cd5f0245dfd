//! The [`GitPort`] implementation: each method moves its arguments onto a
//! blocking thread and calls the module that does the work.
//!
//! Invariants:
//! - no logic here beyond argument plumbing and handle-cache eviction; git2
//!   values never cross an `.await`; `compose` and `check_against` open
//!   handles of their own (`compose.rs`);
//! - a method that can move a ref (`write`, `squash`, `sync`, `update_ref`,
//!   `move_refs`) or plans one (`plan_*`, `write_tag`, which write objects)
//!   runs under the app's writer lock ([`GitRepos::with_writer`]); every
//!   other method only reads and runs on a reader handle of its own
//!   ([`GitRepos::with_reader`]), in parallel with other reads and writes.

use async_trait::async_trait;
use conman_core::ids::AppId;
use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, TagRequest};
use conman_core::ports::git::{
    DiffDetail, FileChange, GitPort, Node, RefMove, RefPlan, RepoSource, Sha, Signature, SquashRequest, SyncOutcome,
    SyncPlan, SyncRequest, WriteRequest,
};
use conman_core::validation::RepoPath;
use conman_core::Error;

use crate::repos::{blocking, repo_dir, GitRepos};
use crate::{create, diff, history, read, refs, squash, sync, tag, write};

#[async_trait]
impl GitPort for GitRepos {
    async fn create_repo(
        &self,
        app: AppId,
        source: RepoSource,
        branch: &str,
        author: &Signature,
    ) -> Result<Sha, Error> {
        let (root, branch, author) = (self.root().to_owned(), branch.to_owned(), author.clone());
        self.evict(app);
        let head = blocking(move || create::create(&root, app, &source, &branch, &author)).await;
        self.evict(app);
        head
    }

    async fn remove_repo(&self, app: AppId) -> Result<(), Error> {
        self.evict(app);
        let dir = repo_dir(self.root(), app);
        blocking(move || create::remove_dir(&dir)).await
    }

    async fn resolve_ref(&self, app: AppId, name: &str) -> Result<Option<Sha>, Error> {
        let name = name.to_owned();
        self.with_reader(app, move |repo| refs::resolve(repo, &name)).await
    }

    async fn read(&self, app: AppId, rev: &Sha, path: Option<&RepoPath>) -> Result<Option<Node>, Error> {
        let (rev, path) = (rev.clone(), path.cloned());
        self.with_reader(app, move |repo| read::read(repo, &rev, path.as_ref())).await
    }

    async fn write(&self, app: AppId, request: WriteRequest) -> Result<Sha, Error> {
        self.with_writer(app, move |repo| write::write(repo, request)).await
    }

    async fn squash(&self, app: AppId, request: SquashRequest) -> Result<Option<Sha>, Error> {
        self.with_writer(app, move |repo| squash::squash(repo, request)).await
    }

    async fn sync(&self, app: AppId, request: SyncRequest) -> Result<SyncOutcome, Error> {
        self.with_writer(app, move |repo| sync::sync(repo, request)).await
    }

    async fn update_ref(&self, app: AppId, name: &str, new: Option<&Sha>, expected: Option<&Sha>) -> Result<(), Error> {
        let (name, new, expected) = (name.to_owned(), new.cloned(), expected.cloned());
        self.with_writer(app, move |repo| refs::update(repo, &name, new.as_ref(), expected.as_ref())).await
    }

    async fn plan_write(&self, app: AppId, request: WriteRequest) -> Result<RefPlan, Error> {
        self.with_writer(app, move |repo| write::plan_write(repo, request)).await
    }

    async fn plan_squash(&self, app: AppId, request: SquashRequest) -> Result<Option<RefPlan>, Error> {
        self.with_writer(app, move |repo| squash::plan_squash(repo, request)).await
    }

    async fn plan_sync(&self, app: AppId, request: SyncRequest) -> Result<SyncPlan, Error> {
        self.with_writer(app, move |repo| sync::plan_sync(repo, request)).await
    }

    async fn move_refs(&self, app: AppId, moves: &[RefMove]) -> Result<(), Error> {
        let moves = moves.to_vec();
        self.with_writer(app, move |repo| refs::move_refs(repo, &moves)).await
    }

    async fn merge_base(&self, app: AppId, a: &Sha, b: &Sha) -> Result<Option<Sha>, Error> {
        let (a, b) = (a.clone(), b.clone());
        self.with_reader(app, move |repo| history::merge_base(repo, &a, &b)).await
    }

    async fn is_ancestor(&self, app: AppId, ancestor: &Sha, descendant: &Sha) -> Result<bool, Error> {
        let (ancestor, descendant) = (ancestor.clone(), descendant.clone());
        self.with_reader(app, move |repo| history::is_ancestor(repo, &ancestor, &descendant)).await
    }

    async fn diff(&self, app: AppId, from: &Sha, to: &Sha, detail: DiffDetail) -> Result<Vec<FileChange>, Error> {
        let (from, to) = (from.clone(), to.clone());
        self.with_reader(app, move |repo| diff::diff(repo, &from, &to, detail)).await
    }
    async fn compose(&self, app: AppId, request: ComposeRequest) -> Result<Composition, Error> {
        GitRepos::compose(self, app, request).await
    }

    async fn check_against(&self, app: AppId, onto: Sha, items: Vec<ComposeItem>) -> Result<Vec<CheckOutcome>, Error> {
        GitRepos::check_against(self, app, onto, items).await
    }

    async fn write_tag(&self, app: AppId, request: TagRequest) -> Result<Sha, Error> {
        self.with_writer(app, move |repo| tag::write_tag(repo, &request)).await
    }
}
