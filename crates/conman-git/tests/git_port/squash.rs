//! Squash: the WIP tree becomes one commit on the workspace branch.

use conman_core::ports::git::{GitPort, SquashRequest};
use conman_core::Error;

use crate::support::{author, delete, put, Fixture, BRANCH, WIP};

fn request() -> SquashRequest {
    SquashRequest { source_ref: WIP.into(), branch_ref: BRANCH.into(), message: "Checkpoint".into(), author: author() }
}

#[tokio::test]
async fn squash_makes_one_commit_with_the_wip_tree_on_the_branch() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    fx.write(vec![put("b/c.yaml", "2")]).await.unwrap();
    let wip = fx.write(vec![delete("a.yaml")]).await.unwrap();

    let commit = fx.git.squash(fx.app, request()).await.unwrap().expect("a commit");
    assert_eq!(fx.parents(&commit), vec![fx.initial.clone()]);
    assert_eq!(fx.tree_of(&commit), fx.tree_of(&wip));
    assert_eq!(fx.message(&commit), "Checkpoint");
    assert_eq!(fx.head(BRANCH).await, Some(commit));
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test]
async fn squash_without_wip_edits_makes_nothing() {
    let fx = Fixture::with_workspace().await;
    assert_eq!(fx.git.squash(fx.app, request()).await.unwrap(), None);
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()));
}

#[tokio::test]
async fn squash_of_edits_that_cancel_out_only_drops_the_wip_ref() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    fx.write(vec![delete("a.yaml")]).await.unwrap();
    assert!(fx.head(WIP).await.is_some());
    assert_eq!(fx.git.squash(fx.app, request()).await.unwrap(), None);
    assert_eq!(fx.head(WIP).await, None);
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()));
}

#[tokio::test]
async fn squash_onto_a_missing_branch_is_not_found() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    fx.git.update_ref(fx.app, BRANCH, None, Some(&fx.initial)).await.unwrap();
    assert_eq!(fx.git.squash(fx.app, request()).await, Err(Error::NotFound("ref")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squash_waits_while_another_writer_holds_the_branch() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    // Another process holds the branch's lock for a moment.
    let lock = fx.root().join(format!("{}.git", fx.app)).join(format!("{BRANCH}.lock"));
    std::fs::write(&lock, "").unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        std::fs::remove_file(lock).unwrap();
    });
    let squashed = fx.git.squash(fx.app, request()).await.unwrap().expect("a commit");
    release.await.unwrap();
    assert_eq!(fx.head(BRANCH).await, Some(squashed.clone()));
    assert_eq!(fx.parents(&squashed), vec![fx.initial.clone()]);
    assert_eq!(fx.head(WIP).await, None);
}
