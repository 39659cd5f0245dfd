//! Creating repositories: import from a local repository, its refusals,
//! replacing a leftover, and removal.

use std::path::Path;

use conman_core::ports::git::{GitPort, RepoSource, Sha};
use conman_core::Error;
use conman_git::GitRepos;

use crate::support::{author, new_app, reason, MAIN};

struct Source {
    main: git2::Oid,
    feature: git2::Oid,
}

/// A non-bare source repository with `main`, `feature` and an annotated tag `v1`.
fn make_source(dir: &Path) -> Source {
    let repo = git2::Repository::init(dir).unwrap();
    let sig = git2::Signature::now("Src", "src@example.com").unwrap();
    let commit = |parent: Option<git2::Oid>, name: &str, body: &str| {
        let mut root = match parent {
            Some(p) => repo.treebuilder(Some(&repo.find_commit(p).unwrap().tree().unwrap())).unwrap(),
            None => repo.treebuilder(None).unwrap(),
        };
        root.insert(name, repo.blob(body.as_bytes()).unwrap(), 0o100644).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let parents: Vec<_> = parent.map(|p| repo.find_commit(p).unwrap()).into_iter().collect();
        let parents: Vec<_> = parents.iter().collect();
        repo.commit(None, &sig, &sig, name, &tree, &parents).unwrap()
    };
    let first = commit(None, "a.yaml", "a");
    let main = commit(Some(first), "b.yaml", "b");
    let feature = commit(Some(first), "f.yaml", "f");
    repo.reference("refs/heads/main", main, true, "").unwrap();
    repo.reference("refs/heads/feature", feature, true, "").unwrap();
    repo.tag("v1", &repo.find_object(first, None).unwrap(), &sig, "v1", false).unwrap();
    Source { main, feature }
}

fn sha(oid: git2::Oid) -> Sha {
    Sha(oid.to_string())
}

#[tokio::test]
async fn import_brings_every_branch_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let source = make_source(&dir.path().join("src"));
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let app = new_app();
    let from = dir.path().join("src").to_str().unwrap().to_owned();

    let head = git.create_repo(app, RepoSource::Import(from), "main", &author()).await.unwrap();
    assert_eq!(head, sha(source.main));
    assert_eq!(git.resolve_ref(app, MAIN).await.unwrap(), Some(sha(source.main)));
    assert_eq!(git.resolve_ref(app, "refs/heads/feature").await.unwrap(), Some(sha(source.feature)));
    assert!(git.resolve_ref(app, "refs/tags/v1").await.unwrap().is_some());
    let raw = git2::Repository::open_bare(dir.path().join("repos").join(format!("{app}.git"))).unwrap();
    assert_eq!(raw.find_reference("HEAD").unwrap().symbolic_target(), Some(MAIN));
    assert!(raw.remotes().unwrap().is_empty(), "the source is not recorded");
}

#[tokio::test]
async fn import_of_another_branch_points_head_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = make_source(&dir.path().join("src"));
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let app = new_app();
    let from = format!("file://{}", dir.path().join("src").display());
    let head = git.create_repo(app, RepoSource::Import(from), "feature", &author()).await.unwrap();
    assert_eq!(head, sha(source.feature));
}

#[tokio::test]
async fn import_without_the_branch_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    make_source(&dir.path().join("src"));
    let root = dir.path().join("repos");
    let git = GitRepos::new(root.clone()).unwrap();
    let app = new_app();
    let from = dir.path().join("src").to_str().unwrap().to_owned();
    let err = git.create_repo(app, RepoSource::Import(from), "develop", &author()).await.unwrap_err();
    assert_eq!(reason(&err), "branch_not_found");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unreachable_source_is_refused_without_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let missing = dir.path().join("secret-location").to_str().unwrap().to_owned();
    for from in [missing.clone(), "https://127.0.0.1:9/nothing.git".to_owned()] {
        let err = git.create_repo(new_app(), RepoSource::Import(from.clone()), "main", &author()).await.unwrap_err();
        assert_eq!(reason(&err), "unreachable", "{from}");
        assert!(!err.to_string().contains("secret-location"));
    }
}

#[tokio::test]
async fn creating_again_replaces_a_leftover_repository() {
    let dir = tempfile::tempdir().unwrap();
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let app = new_app();
    let first = git.create_repo(app, RepoSource::Init, "main", &author()).await.unwrap();
    git.update_ref(app, "refs/heads/leftover", Some(&first), None).await.unwrap();
    git.create_repo(app, RepoSource::Init, "trunk", &author()).await.unwrap();
    assert_eq!(git.resolve_ref(app, "refs/heads/leftover").await.unwrap(), None);
    assert_eq!(git.resolve_ref(app, MAIN).await.unwrap(), None);
    assert!(git.resolve_ref(app, "refs/heads/trunk").await.unwrap().is_some());
}

#[tokio::test]
async fn removing_a_repository_forgets_it_and_tolerates_absence() {
    let dir = tempfile::tempdir().unwrap();
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let app = new_app();
    git.create_repo(app, RepoSource::Init, "main", &author()).await.unwrap();
    git.remove_repo(app).await.unwrap();
    assert_eq!(git.resolve_ref(app, MAIN).await, Err(Error::NotFound("repository")));
    git.remove_repo(app).await.unwrap();
}

#[tokio::test]
async fn a_bad_branch_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let git = GitRepos::new(dir.path().join("repos")).unwrap();
    let err = git.create_repo(new_app(), RepoSource::Init, "bad..name", &author()).await.unwrap_err();
    assert_eq!(reason(&err), "invalid_name");
}
