//! Ref compare-and-swap, ref resolution, merge base and ancestry.

use conman_core::ports::git::{GitPort, Sha};
use conman_core::Error;

use crate::support::{assert_conflict, put, reason, Fixture, BRANCH, MAIN};

const OTHER: &str = "refs/heads/other";

#[tokio::test]
async fn creating_a_ref_that_exists_conflicts_and_leaves_it() {
    let fx = Fixture::with_workspace().await;
    let moved = fx.write_to(MAIN, MAIN, vec![put("a", "1")]).await.unwrap();
    assert_conflict(fx.git.update_ref(fx.app, BRANCH, Some(&moved), None).await);
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()));
}

#[tokio::test]
async fn moving_a_ref_from_the_wrong_value_conflicts_and_leaves_it() {
    let fx = Fixture::with_workspace().await;
    let moved = fx.write_to(MAIN, MAIN, vec![put("a", "1")]).await.unwrap();
    assert_conflict(fx.git.update_ref(fx.app, BRANCH, Some(&moved), Some(&moved)).await);
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()));
    // Expecting a ref that does not exist is a conflict too.
    assert_conflict(fx.git.update_ref(fx.app, OTHER, Some(&moved), Some(&fx.initial)).await);
    assert_eq!(fx.head(OTHER).await, None);
    // The right expectation moves it.
    fx.git.update_ref(fx.app, BRANCH, Some(&moved), Some(&fx.initial)).await.unwrap();
    assert_eq!(fx.head(BRANCH).await, Some(moved));
}

#[tokio::test]
async fn deleting_a_ref_is_a_compare_and_swap_too() {
    let fx = Fixture::with_workspace().await;
    let moved = fx.write_to(MAIN, MAIN, vec![put("a", "1")]).await.unwrap();
    assert_conflict(fx.git.update_ref(fx.app, BRANCH, None, Some(&moved)).await);
    assert_conflict(fx.git.update_ref(fx.app, BRANCH, None, None).await);
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()));
    fx.git.update_ref(fx.app, BRANCH, None, Some(&fx.initial)).await.unwrap();
    assert_eq!(fx.head(BRANCH).await, None);
    // Deleting an absent ref "expected absent" is a no-op; "expected present" is a conflict.
    fx.git.update_ref(fx.app, BRANCH, None, None).await.unwrap();
    assert_conflict(fx.git.update_ref(fx.app, BRANCH, None, Some(&fx.initial)).await);
}

#[tokio::test]
async fn update_ref_refuses_bad_names_and_unknown_targets() {
    let fx = Fixture::new().await;
    for name in ["main", "refs/heads/a..b", "refs/heads/x.lock", "HEAD"] {
        let err = fx.git.update_ref(fx.app, name, Some(&fx.initial), None).await.unwrap_err();
        assert_eq!(reason(&err), "invalid_name", "{name}");
    }
    let unknown = Sha("0123456789012345678901234567890123456789".into());
    assert_eq!(fx.git.update_ref(fx.app, OTHER, Some(&unknown), None).await, Err(Error::NotFound("commit")));
}

#[tokio::test]
async fn resolve_ref_answers_none_for_a_missing_ref() {
    let fx = Fixture::new().await;
    assert_eq!(fx.head("refs/heads/missing").await, None);
    assert_eq!(fx.head(MAIN).await, Some(fx.initial.clone()));
}

#[tokio::test]
async fn merge_base_and_ancestry_follow_the_commit_graph() {
    let fx = Fixture::with_workspace().await;
    let root = fx.initial.clone();
    let ours = fx.write_to(BRANCH, BRANCH, vec![put("ours", "1")]).await.unwrap();
    let theirs = fx.write_to(MAIN, MAIN, vec![put("theirs", "1")]).await.unwrap();
    let theirs2 = fx.write_to(MAIN, MAIN, vec![put("theirs2", "1")]).await.unwrap();

    assert_eq!(fx.git.merge_base(fx.app, &ours, &theirs2).await.unwrap(), Some(root.clone()));
    assert_eq!(fx.git.merge_base(fx.app, &theirs, &theirs2).await.unwrap(), Some(theirs.clone()));
    let cases = [
        (&root, &ours, true),
        (&theirs, &theirs2, true),
        (&ours, &ours, true),
        (&ours, &theirs2, false),
        (&theirs2, &theirs, false),
    ];
    for (ancestor, descendant, want) in cases {
        assert_eq!(fx.git.is_ancestor(fx.app, ancestor, descendant).await.unwrap(), want, "{ancestor} {descendant}");
    }

    // Unrelated histories have no merge base.
    let orphan = {
        let repo = fx.raw();
        let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        Sha(repo.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap().to_string())
    };
    assert_eq!(fx.git.merge_base(fx.app, &orphan, &ours).await.unwrap(), None);
    let unknown = Sha("0123456789012345678901234567890123456789".into());
    assert_eq!(fx.git.merge_base(fx.app, &unknown, &ours).await, Err(Error::NotFound("commit")));
    assert_eq!(fx.git.is_ancestor(fx.app, &ours, &unknown).await, Err(Error::NotFound("commit")));
}
