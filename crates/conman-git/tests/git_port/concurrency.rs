//! No lost update: many concurrent writers to one WIP ref, within one
//! `GitRepos` (serialised by its per-app lock) and across two instances on
//! the same root (two "processes": only the ref compare-and-swap and its
//! retry keep every write).

use std::sync::Arc;

use conman_core::ports::git::{GitPort, WriteRequest};
use conman_git::GitRepos;

use crate::support::{author, put, Fixture, BRANCH, WIP};

const WRITERS: usize = 32;

/// `writers` tasks, spread over `instances`, each put one distinct file at
/// the same moment; then every file is there, one commit each.
async fn write_concurrently(fx: &Fixture, instances: &[Arc<GitRepos>], writers: usize) {
    let start = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let git = Arc::clone(&instances[i % instances.len()]);
            let app = fx.app;
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let request = WriteRequest {
                    target_ref: WIP.into(),
                    base_ref: BRANCH.into(),
                    ops: vec![put(&format!("dir{}/file{i:02}.yaml", i % 4), &format!("n: {i}\n"))],
                    message: format!("write {i}"),
                    author: author(),
                };
                git.write(app, request).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let head = fx.head(WIP).await.unwrap();
    let mut expected: Vec<_> = (0..writers).map(|i| format!("dir{}/file{i:02}.yaml", i % 4)).collect();
    expected.sort();
    assert_eq!(fx.files(&head), expected);
    // One commit per write, in one line of history.
    let repo = fx.raw();
    let mut walk = repo.revwalk().unwrap();
    walk.push(crate::support::oid(&head)).unwrap();
    assert_eq!(walk.count(), writers + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_through_one_instance_lose_nothing() {
    let fx = Fixture::with_workspace().await;
    let git = Arc::new(fx.git.clone());
    write_concurrently(&fx, &[git], WRITERS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_through_two_instances_lose_nothing() {
    let fx = Fixture::with_workspace().await;
    let first = Arc::new(GitRepos::new(fx.root()).unwrap());
    let second = Arc::new(GitRepos::new(fx.root()).unwrap());
    write_concurrently(&fx, &[first, second], WRITERS).await;
}

/// The lock file another writer holds while it updates the WIP ref.
fn wip_lock(fx: &Fixture) -> std::path::PathBuf {
    fx.root().join(format!("{}.git", fx.app)).join(format!("{WIP}.lock"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_out_another_writers_ref_lock() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    let lock = wip_lock(&fx);
    std::fs::write(&lock, "").unwrap();
    let release = {
        let lock = lock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            std::fs::remove_file(lock).unwrap();
        })
    };
    let next = fx.write(vec![put("b.yaml", "2")]).await.unwrap();
    release.await.unwrap();
    assert_eq!(fx.parents(&next), [head]);
    assert_eq!(fx.files(&next), ["a.yaml", "b.yaml"]);
}

#[tokio::test]
async fn a_ref_lock_left_by_a_crashed_writer_is_cleared_and_the_write_lands() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    // What SIGKILL leaves between libgit2's lock and rename, some time ago.
    let lock = wip_lock(&fx);
    let file = std::fs::File::create(&lock).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10)).unwrap();
    drop(file);
    let next = fx.write(vec![put("b.yaml", "2")]).await.unwrap();
    assert!(!lock.exists(), "the stale lock is removed");
    assert_eq!(fx.parents(&next), [head]);
    assert_eq!(fx.files(&next), ["a.yaml", "b.yaml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_to_create_the_wip_ref_from_many_instances_loses_nothing() {
    // The first write creates the WIP ref: creation must be a CAS too.
    for _round in 0..10 {
        let fx = Fixture::with_workspace().await;
        let instances: Vec<_> = (0..8).map(|_| Arc::new(GitRepos::new(fx.root()).unwrap())).collect();
        write_concurrently(&fx, &instances, 8).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_wip_ref_waits_while_another_writer_holds_the_base_ref() {
    let fx = Fixture::with_workspace().await;
    // Another process is moving the workspace branch (a sync, say) for a moment.
    let lock = fx.root().join(format!("{}.git", fx.app)).join(format!("{BRANCH}.lock"));
    std::fs::write(&lock, "").unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        std::fs::remove_file(lock).unwrap();
    });
    let head = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    release.await.unwrap();
    assert_eq!(fx.parents(&head), vec![fx.initial.clone()]);
    assert_eq!(fx.head(WIP).await, Some(head));
}
