//! Sync of a workspace with its upstream: up to date, fast-forward, merge,
//! rebase, and conflicts that change nothing.

use conman_core::ports::git::{GitPort, Sha, SyncOutcome, SyncRequest, SyncStrategy};
use conman_core::Error;

use crate::support::{author, put, Fixture, BRANCH, MAIN, WIP};

fn request(upstream: &Sha, strategy: SyncStrategy) -> SyncRequest {
    SyncRequest {
        branch_ref: BRANCH.into(),
        wip_ref: WIP.into(),
        upstream: upstream.clone(),
        strategy,
        message: "Sync with main".into(),
        author: author(),
    }
}

/// `main` and the workspace share `shared.yaml`; the workspace has saved
/// (not yet committed) edits to `ours.yaml`; `main` then gained `theirs.yaml`.
async fn diverged() -> (Fixture, Sha) {
    let fx = Fixture::new().await;
    let base = fx.write_to(MAIN, MAIN, vec![put("shared.yaml", "s: 1\n")]).await.unwrap();
    fx.git.update_ref(fx.app, BRANCH, Some(&base), None).await.unwrap();
    fx.write(vec![put("ours.yaml", "o: 1\n")]).await.unwrap();
    let upstream = fx.write_to(MAIN, MAIN, vec![put("theirs.yaml", "t: 1\n")]).await.unwrap();
    (fx, upstream)
}

#[tokio::test]
async fn an_upstream_already_contained_is_up_to_date() {
    let fx = Fixture::with_workspace().await;
    let outcome = fx.git.sync(fx.app, request(&fx.initial, SyncStrategy::Merge)).await.unwrap();
    assert_eq!(outcome, SyncOutcome::UpToDate { head: fx.initial.clone() });
    let wip = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    let outcome = fx.git.sync(fx.app, request(&fx.initial, SyncStrategy::Rebase)).await.unwrap();
    assert_eq!(outcome, SyncOutcome::UpToDate { head: wip.clone() });
    assert_eq!(fx.head(WIP).await, Some(wip));
}

#[tokio::test]
async fn a_workspace_without_edits_fast_forwards() {
    for strategy in [SyncStrategy::Merge, SyncStrategy::Rebase] {
        let fx = Fixture::with_workspace().await;
        let upstream = fx.write_to(MAIN, MAIN, vec![put("new.yaml", "1")]).await.unwrap();
        let outcome = fx.git.sync(fx.app, request(&upstream, strategy)).await.unwrap();
        assert_eq!(outcome, SyncOutcome::Updated { head: upstream.clone() });
        assert_eq!(fx.head(BRANCH).await, Some(upstream));
    }
}

#[tokio::test]
async fn a_clean_merge_keeps_the_workspace_edits_in_a_two_parent_commit() {
    let (fx, upstream) = diverged().await;
    let branch_before = fx.head(BRANCH).await.unwrap();
    let SyncOutcome::Updated { head } = fx.git.sync(fx.app, request(&upstream, SyncStrategy::Merge)).await.unwrap()
    else {
        panic!("expected an update")
    };
    let parents = fx.parents(&head);
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[1], upstream);
    let saved = &parents[0];
    assert_eq!(fx.parents(saved), [branch_before]);
    assert_eq!(fx.message(saved), "Save workspace edits before sync");
    assert_eq!(fx.files(saved), ["ours.yaml", "shared.yaml"]);
    assert_eq!(fx.message(&head), "Sync with main");
    assert_eq!(fx.files(&head), ["ours.yaml", "shared.yaml", "theirs.yaml"]);
    assert_eq!(fx.head(BRANCH).await, Some(head));
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test]
async fn a_rebase_makes_one_commit_on_top_of_upstream() {
    let (fx, upstream) = diverged().await;
    let SyncOutcome::Updated { head } = fx.git.sync(fx.app, request(&upstream, SyncStrategy::Rebase)).await.unwrap()
    else {
        panic!("expected an update")
    };
    assert_eq!(fx.parents(&head), [upstream]);
    assert_eq!(fx.files(&head), ["ours.yaml", "shared.yaml", "theirs.yaml"]);
    assert_eq!(fx.head(BRANCH).await, Some(head));
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test]
async fn committed_workspace_changes_merge_without_a_save_commit() {
    let fx = Fixture::with_workspace().await;
    let ours = fx.write_to(BRANCH, BRANCH, vec![put("ours.yaml", "1")]).await.unwrap();
    let upstream = fx.write_to(MAIN, MAIN, vec![put("theirs.yaml", "1")]).await.unwrap();
    let SyncOutcome::Updated { head } = fx.git.sync(fx.app, request(&upstream, SyncStrategy::Merge)).await.unwrap()
    else {
        panic!("expected an update")
    };
    assert_eq!(fx.parents(&head), [ours, upstream]);
    assert_eq!(fx.files(&head), ["ours.yaml", "theirs.yaml"]);
}

#[tokio::test]
async fn conflicting_changes_answer_the_paths_and_change_nothing() {
    let fx = Fixture::new().await;
    let base = fx.write_to(MAIN, MAIN, vec![put("app.yaml", "port: 80\n"), put("other.yaml", "x")]).await.unwrap();
    fx.git.update_ref(fx.app, BRANCH, Some(&base), None).await.unwrap();
    let wip = fx.write(vec![put("app.yaml", "port: 8080\n")]).await.unwrap();
    let upstream = fx.write_to(MAIN, MAIN, vec![put("app.yaml", "port: 9090\n")]).await.unwrap();
    for strategy in [SyncStrategy::Merge, SyncStrategy::Rebase] {
        let outcome = fx.git.sync(fx.app, request(&upstream, strategy)).await.unwrap();
        assert_eq!(outcome, SyncOutcome::Conflicts { paths: vec!["app.yaml".into()] });
        assert_eq!(fx.head(BRANCH).await, Some(base.clone()));
        assert_eq!(fx.head(WIP).await, Some(wip.clone()));
    }
}

#[tokio::test]
async fn an_unknown_upstream_is_not_found() {
    let fx = Fixture::with_workspace().await;
    let unknown = Sha("0123456789012345678901234567890123456789".into());
    assert_eq!(fx.git.sync(fx.app, request(&unknown, SyncStrategy::Merge)).await, Err(Error::NotFound("commit")));
}

#[tokio::test]
async fn a_wip_ref_without_net_edits_is_dropped_by_a_fast_forward() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    fx.write(vec![crate::support::delete("a.yaml")]).await.unwrap();
    let upstream = fx.write_to(MAIN, MAIN, vec![put("new.yaml", "1")]).await.unwrap();
    let outcome = fx.git.sync(fx.app, request(&upstream, SyncStrategy::Merge)).await.unwrap();
    assert_eq!(outcome, SyncOutcome::Updated { head: upstream.clone() });
    assert_eq!(fx.head(BRANCH).await, Some(upstream));
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_waits_while_another_writer_holds_the_wip_ref() {
    let (fx, upstream) = diverged().await;
    // Another process is in the middle of updating the WIP ref, for a moment.
    let lock = fx.root().join(format!("{}.git", fx.app)).join(format!("{WIP}.lock"));
    std::fs::write(&lock, "").unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        std::fs::remove_file(lock).unwrap();
    });
    let outcome = fx.git.sync(fx.app, request(&upstream, SyncStrategy::Merge)).await.unwrap();
    release.await.unwrap();
    assert!(matches!(outcome, SyncOutcome::Updated { .. }), "{outcome:?}");
    assert_eq!(fx.head(WIP).await, None);
}
