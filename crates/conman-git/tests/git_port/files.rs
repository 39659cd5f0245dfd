//! Creating a repository, reading it, and file writes: put / delete / move,
//! batches as one atomic commit, and each refusal.

use conman_core::ports::git::{DirEntry, EntryKind, GitPort, Node, Sha};
use conman_core::Error;

use crate::support::{assert_conflict, delete, mv, p, put, reason, Fixture, BRANCH, MAIN, WIP};

fn entry(name: &str, path: &str, kind: EntryKind, size: Option<u64>) -> DirEntry {
    DirEntry { name: name.into(), path: path.into(), kind, size }
}

#[tokio::test]
async fn init_makes_one_empty_initial_commit_on_the_branch() {
    let fx = Fixture::new().await;
    assert_eq!(fx.head(MAIN).await, Some(fx.initial.clone()));
    assert_eq!(fx.git.read(fx.app, &fx.initial, None).await.unwrap(), Some(Node::Dir(vec![])));
    assert_eq!(fx.message(&fx.initial), "Initial commit");
    assert!(fx.parents(&fx.initial).is_empty());
    let raw = fx.raw();
    assert!(raw.is_bare());
    assert_eq!(raw.find_reference("HEAD").unwrap().symbolic_target(), Some(MAIN));
}

#[tokio::test]
async fn a_nested_file_reads_back_and_its_directories_list() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("config/app/settings.yaml", "a: 1\n"), put("README", "hi")]).await.unwrap();

    assert_eq!(fx.file(&head, "config/app/settings.yaml").await, Some(b"a: 1\n".to_vec()));
    let root = fx.git.read(fx.app, &head, None).await.unwrap();
    assert_eq!(
        root,
        Some(Node::Dir(vec![
            entry("README", "README", EntryKind::File, Some(2)),
            entry("config", "config", EntryKind::Dir, None),
        ]))
    );
    let app_dir = fx.git.read(fx.app, &head, Some(&p("config/app"))).await.unwrap();
    assert_eq!(
        app_dir,
        Some(Node::Dir(vec![entry("settings.yaml", "config/app/settings.yaml", EntryKind::File, Some(5))]))
    );
    for missing in ["nope.yaml", "config/nope", "README/below-a-file"] {
        assert_eq!(fx.git.read(fx.app, &head, Some(&p(missing))).await.unwrap(), None, "{missing}");
    }
}

#[tokio::test]
async fn listings_are_sorted_by_name() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("b", "x"), put("a.d/x", "x"), put("a", "x"), put("a-b", "x")]).await.unwrap();
    let Some(Node::Dir(entries)) = fx.git.read(fx.app, &head, None).await.unwrap() else { panic!("not a dir") };
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a", "a-b", "a.d", "b"]);
}

#[tokio::test]
async fn an_unknown_commit_is_not_found() {
    let fx = Fixture::new().await;
    for rev in ["0123456789012345678901234567890123456789", "not-hex", "abc"] {
        let read = fx.git.read(fx.app, &Sha(rev.into()), None).await;
        assert_eq!(read, Err(Error::NotFound("commit")), "{rev}");
    }
}

#[tokio::test]
async fn the_first_write_starts_from_the_base_ref_and_later_ones_stack() {
    let fx = Fixture::with_workspace().await;
    assert_eq!(fx.head(WIP).await, None);
    let first = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    assert_eq!(fx.parents(&first), vec![fx.initial.clone()]);
    assert_eq!(fx.head(WIP).await, Some(first.clone()));
    assert_eq!(fx.head(BRANCH).await, Some(fx.initial.clone()), "the branch does not move");
    let second = fx.write(vec![put("b.yaml", "2")]).await.unwrap();
    assert_eq!(fx.parents(&second), [first]);
    assert_eq!(fx.files(&second), ["a.yaml", "b.yaml"]);
}

#[tokio::test]
async fn a_batch_of_put_delete_and_move_is_one_commit() {
    let fx = Fixture::with_workspace().await;
    let before = fx.write(vec![put("keep.yaml", "k"), put("old/name.yaml", "n"), put("gone.yaml", "g")]).await.unwrap();
    let after = fx
        .write(vec![put("new/file.yaml", "f"), delete("gone.yaml"), mv("old/name.yaml", "renamed/name.yaml")])
        .await
        .unwrap();
    assert_eq!(fx.parents(&after), [before]);
    assert_eq!(fx.files(&after), ["keep.yaml", "new/file.yaml", "renamed/name.yaml"]);
    assert_eq!(fx.file(&after, "renamed/name.yaml").await, Some(b"n".to_vec()));
}

#[tokio::test]
async fn a_refused_op_anywhere_in_a_batch_changes_nothing() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    let batches = [
        vec![put("b.yaml", "2"), delete("missing.yaml")],
        vec![put("b.yaml", "2"), mv("a.yaml", "c.yaml"), put("c.yaml/under-a-file", "x")],
        vec![delete("a.yaml"), put("dir/x", "x"), put("dir", "over a directory")],
    ];
    for ops in batches {
        assert!(fx.write(ops.clone()).await.is_err(), "{ops:?}");
        assert_eq!(fx.head(WIP).await, Some(head.clone()), "{ops:?}");
    }
    // Also when the WIP ref does not exist yet: it is not created.
    fx.git.update_ref(fx.app, WIP, None, Some(&head)).await.unwrap();
    assert!(fx.write(vec![put("b.yaml", "2"), delete("missing.yaml")]).await.is_err());
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test]
async fn deleting_a_missing_file_is_not_found() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("dir/a.yaml", "1"), put("file", "x")]).await.unwrap();
    for path in ["nope.yaml", "dir/nope.yaml", "nodir/a.yaml", "file/below"] {
        assert_eq!(fx.write(vec![delete(path)]).await, Err(Error::NotFound("file")), "{path}");
    }
}

#[tokio::test]
async fn deleting_a_directory_is_refused() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("dir/sub/a.yaml", "1")]).await.unwrap();
    for path in ["dir", "dir/sub"] {
        let err = fx.write(vec![delete(path)]).await.unwrap_err();
        assert_eq!(reason(&err), "is_directory", "{path}");
    }
}

#[tokio::test]
async fn putting_over_a_directory_or_below_a_file_conflicts() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("dir/a.yaml", "1"), put("file.yaml", "x")]).await.unwrap();
    assert_conflict(fx.write(vec![put("dir", "x")]).await);
    assert_conflict(fx.write(vec![put("file.yaml/below", "x")]).await);
    assert_conflict(fx.write(vec![put("file.yaml/deeper/below", "x")]).await);
}

#[tokio::test]
async fn a_move_needs_its_source_and_a_free_destination() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a.yaml", "a"), put("b.yaml", "b"), put("dir/c.yaml", "c")]).await.unwrap();
    assert_eq!(fx.write(vec![mv("missing.yaml", "x.yaml")]).await, Err(Error::NotFound("file")));
    assert_conflict(fx.write(vec![mv("a.yaml", "b.yaml")]).await);
    assert_conflict(fx.write(vec![mv("a.yaml", "a.yaml")]).await);
    assert_conflict(fx.write(vec![mv("a.yaml", "dir")]).await);
    assert_eq!(reason(&fx.write(vec![mv("dir", "elsewhere")]).await.unwrap_err()), "is_directory");
}

#[tokio::test]
async fn emptied_directories_disappear() {
    let fx = Fixture::with_workspace().await;
    fx.write(vec![put("a/b/c.yaml", "1"), put("a/d.yaml", "2")]).await.unwrap();
    let head = fx.write(vec![delete("a/b/c.yaml")]).await.unwrap();
    assert_eq!(fx.files(&head), ["a/d.yaml"]);
    assert_eq!(fx.git.read(fx.app, &head, Some(&p("a/b"))).await.unwrap(), None);
    // Within one batch, the emptied directory is already gone: a file may take its name.
    let head = fx.write(vec![delete("a/d.yaml"), put("a", "now a file")]).await.unwrap();
    assert_eq!(fx.files(&head), ["a"]);
    // A move out of a directory empties it too.
    fx.write(vec![put("x/y/z.yaml", "z")]).await.unwrap();
    let head = fx.write(vec![mv("x/y/z.yaml", "z.yaml")]).await.unwrap();
    assert_eq!(fx.files(&head), ["a", "z.yaml"]);
}

#[tokio::test]
async fn a_write_that_changes_nothing_makes_no_commit() {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("a.yaml", "1")]).await.unwrap();
    assert_eq!(fx.write(vec![put("a.yaml", "1")]).await.unwrap(), head);
    assert_eq!(fx.write(vec![put("b.yaml", "2"), delete("b.yaml")]).await.unwrap(), head);
    assert_eq!(fx.write(vec![]).await.unwrap(), head);
    assert_eq!(fx.head(WIP).await, Some(head));
    // Without a WIP ref the answer is the base head, and no WIP ref appears.
    let fresh = Fixture::with_workspace().await;
    assert_eq!(fresh.write(vec![put("a", "1"), delete("a")]).await.unwrap(), fresh.initial);
    assert_eq!(fresh.head(WIP).await, None);
}

#[tokio::test]
async fn replacing_an_executable_keeps_its_mode() {
    let fx = Fixture::with_workspace().await;
    // Make an executable file with libgit2 directly: the port only writes regular files.
    let base = {
        let repo = fx.raw();
        let blob = repo.blob(b"#!/bin/sh\n").unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("run.sh", blob, 0o100755).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = repo.find_commit(crate::support::oid(&fx.initial)).unwrap();
        let id = repo.commit(None, &sig, &sig, "exec", &tree, &[&parent]).unwrap();
        Sha(id.to_string())
    };
    fx.git.update_ref(fx.app, BRANCH, Some(&base), Some(&fx.initial)).await.unwrap();
    let head = fx.write(vec![put("run.sh", "#!/bin/sh\necho hi\n"), put("plain.sh", "x")]).await.unwrap();
    let repo = fx.raw();
    let tree = repo.find_commit(crate::support::oid(&head)).unwrap().tree().unwrap();
    assert_eq!(tree.get_name("run.sh").unwrap().filemode(), 0o100755);
    assert_eq!(tree.get_name("plain.sh").unwrap().filemode(), 0o100644);
}

#[tokio::test]
async fn git_reserved_segments_are_refused() {
    let fx = Fixture::with_workspace().await;
    for path in [".git/config", "a/.GIT/x", ".git", ".git\u{200c}", "a/.g\u{200d}it/x", ".git. /x", "GIT~1/x"] {
        let err = fx.write(vec![put(path, "x")]).await.unwrap_err();
        assert_eq!(reason(&err), "reserved", "{path}");
    }
    assert_eq!(fx.head(WIP).await, None);
}

#[tokio::test]
async fn bad_ref_names_and_a_missing_base_are_refused() {
    let fx = Fixture::with_workspace().await;
    let err = fx.write_to("refs/conman/wip/..bad", BRANCH, vec![put("a", "1")]).await.unwrap_err();
    assert_eq!(reason(&err), "invalid_name");
    let err = fx.write_to("main", BRANCH, vec![put("a", "1")]).await.unwrap_err();
    assert_eq!(reason(&err), "invalid_name");
    let missing = fx.write_to(WIP, "refs/heads/nope", vec![put("a", "1")]).await;
    assert_eq!(missing, Err(Error::NotFound("ref")));
}

#[tokio::test]
async fn an_unknown_app_has_no_repository() {
    let fx = Fixture::new().await;
    let other = crate::support::new_app();
    assert_eq!(fx.git.resolve_ref(other, MAIN).await, Err(Error::NotFound("repository")));
}
