//! Shared fixtures: a fresh app repository per test, op builders, and
//! direct libgit2 access for checking what the adapter wrote.

use std::path::PathBuf;

use conman_core::ids::AppId;
use conman_core::ports::git::{FileOp, GitPort, Node, RepoSource, Sha, Signature, WriteRequest};
use conman_core::validation::RepoPath;
use conman_core::Error;
use conman_git::GitRepos;
use tempfile::TempDir;
use uuid::Uuid;

/// The integration branch of every fixture.
pub(crate) const MAIN: &str = "refs/heads/main";
/// A workspace branch.
pub(crate) const BRANCH: &str = "refs/heads/ws/alice/default";
/// The workspace's private WIP ref.
pub(crate) const WIP: &str = "refs/conman/wip/ws1";

/// One app repository in its own temporary root.
pub(crate) struct Fixture {
    pub(crate) _dir: TempDir,
    pub(crate) git: GitRepos,
    pub(crate) app: AppId,
    pub(crate) initial: Sha,
}

impl Fixture {
    /// A fresh repository with its initial commit on `main`.
    pub(crate) async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let git = GitRepos::new(dir.path().join("repos")).unwrap();
        let app = new_app();
        let initial = git.create_repo(app, RepoSource::Init, "main", &author()).await.unwrap();
        Fixture { _dir: dir, git, app, initial }
    }

    /// A fixture whose workspace branch starts at `main`'s head.
    pub(crate) async fn with_workspace() -> Fixture {
        let fx = Fixture::new().await;
        fx.git.update_ref(fx.app, BRANCH, Some(&fx.initial), None).await.unwrap();
        fx
    }

    /// Applies `ops` to `target` (starting from `base` when absent).
    pub(crate) async fn write_to(&self, target: &str, base: &str, ops: Vec<FileOp>) -> Result<Sha, Error> {
        let request = WriteRequest {
            target_ref: target.into(),
            base_ref: base.into(),
            ops,
            message: "edit".into(),
            author: author(),
        };
        self.git.write(self.app, request).await
    }

    /// Applies `ops` to the WIP ref, starting from the workspace branch.
    pub(crate) async fn write(&self, ops: Vec<FileOp>) -> Result<Sha, Error> {
        self.write_to(WIP, BRANCH, ops).await
    }

    /// Where a ref points.
    pub(crate) async fn head(&self, name: &str) -> Option<Sha> {
        self.git.resolve_ref(self.app, name).await.unwrap()
    }

    /// The bytes of a file at `rev`, if it is a file.
    pub(crate) async fn file(&self, rev: &Sha, path: &str) -> Option<Vec<u8>> {
        match self.git.read(self.app, rev, Some(&p(path))).await.unwrap()? {
            Node::File(bytes) => Some(bytes),
            Node::Dir(_) => panic!("{path} is a directory"),
        }
    }

    /// Every file path in the tree of `rev`, sorted.
    pub(crate) fn files(&self, rev: &Sha) -> Vec<String> {
        let repo = self.raw();
        let tree = repo.find_commit(oid(rev)).unwrap().tree().unwrap();
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                out.push(format!("{dir}{}", entry.name().unwrap()));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        out.sort();
        out
    }

    /// The ids of a commit's parents.
    pub(crate) fn parents(&self, rev: &Sha) -> Vec<Sha> {
        let repo = self.raw();
        let commit = repo.find_commit(oid(rev)).unwrap();
        commit.parent_ids().map(|id| Sha(id.to_string())).collect()
    }

    /// A commit's tree id.
    pub(crate) fn tree_of(&self, rev: &Sha) -> git2::Oid {
        self.raw().find_commit(oid(rev)).unwrap().tree_id()
    }

    /// A commit's message.
    pub(crate) fn message(&self, rev: &Sha) -> String {
        self.raw().find_commit(oid(rev)).unwrap().message().unwrap().to_owned()
    }

    /// The root the repositories live under.
    pub(crate) fn root(&self) -> PathBuf {
        self.git.root().to_owned()
    }

    /// A direct libgit2 handle on the app's repository.
    pub(crate) fn raw(&self) -> git2::Repository {
        git2::Repository::open_bare(self.root().join(format!("{}.git", self.app))).unwrap()
    }
}

/// A new random app id.
pub(crate) fn new_app() -> AppId {
    AppId(Uuid::now_v7())
}

/// The author of every test commit.
pub(crate) fn author() -> Signature {
    Signature { name: "Alice".into(), email: "alice@example.com".into() }
}

/// A repository path.
pub(crate) fn p(raw: &str) -> RepoPath {
    RepoPath::parse(raw).unwrap()
}

/// A commit id as libgit2 has it.
pub(crate) fn oid(sha: &Sha) -> git2::Oid {
    git2::Oid::from_str(sha.as_str()).unwrap()
}

/// `Put path content`.
pub(crate) fn put(path: &str, content: &str) -> FileOp {
    FileOp::Put { path: p(path), content: content.as_bytes().to_vec() }
}

/// `Delete path`.
pub(crate) fn delete(path: &str) -> FileOp {
    FileOp::Delete { path: p(path) }
}

/// `Move from to`.
pub(crate) fn mv(from: &str, to: &str) -> FileOp {
    FileOp::Move { from: p(from), to: p(to) }
}

/// The `reason` of a validation error's details.
pub(crate) fn reason(err: &Error) -> String {
    match err {
        Error::Validation { details: Some(details), .. } => details["reason"].as_str().unwrap().to_owned(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Asserts `result` is a conflict.
#[track_caller]
pub(crate) fn assert_conflict<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}
