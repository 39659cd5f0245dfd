//! Exporting a commit's tree into a directory: files with their paths and
//! executable bits, safe symlinks kept, escaping ones turned into plain
//! files, submodules skipped, unknown commits and apps refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use conman_core::ports::git::Sha;
use conman_core::Error;

use crate::support::{new_app, Fixture};

/// A commit (on no ref) with every kind of entry the export must handle.
fn crafted_commit(fx: &Fixture) -> Sha {
    let repo = fx.raw();
    let blob = |text: &str| repo.blob(text.as_bytes()).unwrap();
    let mut dir = repo.treebuilder(None).unwrap();
    dir.insert("a.txt", blob("deep"), 0o100644).unwrap();
    dir.insert("back", blob("../../config.yaml"), 0o120000).unwrap();
    let dir = dir.write().unwrap();
    let mut sub = repo.treebuilder(None).unwrap();
    sub.insert("dir", dir, 0o040000).unwrap();
    let sub = sub.write().unwrap();
    let mut bin = repo.treebuilder(None).unwrap();
    bin.insert("run.sh", blob("#!/bin/sh\necho hi\n"), 0o100755).unwrap();
    let bin = bin.write().unwrap();
    let mut root = repo.treebuilder(None).unwrap();
    root.insert("config.yaml", blob("key: value\n"), 0o100644).unwrap();
    root.insert("bin", bin, 0o040000).unwrap();
    root.insert("sub", sub, 0o040000).unwrap();
    root.insert("good", blob("sub/dir/a.txt"), 0o120000).unwrap();
    root.insert("dot", blob("."), 0o120000).unwrap();
    root.insert("up", blob("../secret.txt"), 0o120000).unwrap();
    root.insert("abs", blob("/etc/passwd"), 0o120000).unwrap();
    root.insert("sneaky", blob("dot/../secret.txt"), 0o120000).unwrap();
    root.insert("dangling", blob("nowhere"), 0o120000).unwrap();
    let initial = git2::Oid::from_str(fx.initial.as_str()).unwrap();
    root.insert("vendored", initial, 0o160000).unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let sig = git2::Signature::now("T", "t@example.com").unwrap();
    let parent = repo.find_commit(initial).unwrap();
    Sha(repo.commit(None, &sig, &sig, "crafted", &tree, &[&parent]).unwrap().to_string())
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn link_target(path: &Path) -> Option<String> {
    std::fs::read_link(path).ok().map(|t| t.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn export_writes_files_modes_and_only_links_that_stay_inside() {
    let fx = Fixture::new().await;
    let commit = crafted_commit(&fx);
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("secret.txt"), "outside").unwrap();
    let dest = scratch.path().join("out");
    std::fs::create_dir(&dest).unwrap();

    fx.git.export_tree(fx.app, &commit, &dest).await.unwrap();

    assert_eq!(std::fs::read_to_string(dest.join("config.yaml")).unwrap(), "key: value\n");
    assert_eq!(mode(&dest.join("config.yaml")), 0o644);
    assert_eq!(mode(&dest.join("bin/run.sh")), 0o755);
    assert_eq!(std::fs::read_to_string(dest.join("sub/dir/a.txt")).unwrap(), "deep");
    // Links that resolve inside stay links.
    assert_eq!(link_target(&dest.join("good")).as_deref(), Some("sub/dir/a.txt"));
    assert_eq!(std::fs::read_to_string(dest.join("good")).unwrap(), "deep");
    assert_eq!(link_target(&dest.join("sub/dir/back")).as_deref(), Some("../../config.yaml"));
    assert_eq!(link_target(&dest.join("dot")).as_deref(), Some("."));
    // Links that escape (lexically, physically through another link, or
    // absolutely) and dangling ones become files holding their target.
    for (name, target) in
        [("up", "../secret.txt"), ("abs", "/etc/passwd"), ("sneaky", "dot/../secret.txt"), ("dangling", "nowhere")]
    {
        let path = dest.join(name);
        assert_eq!(link_target(&path), None, "{name} must not be a link");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), target, "{name}");
    }
    assert!(!dest.join("vendored").exists(), "submodules are skipped");
    let mut names: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["abs", "bin", "config.yaml", "dangling", "dot", "good", "sneaky", "sub", "up"]);
}

#[tokio::test]
async fn export_refuses_unknown_commits_and_apps() {
    let fx = Fixture::new().await;
    let dest = tempfile::tempdir().unwrap();
    let missing = Sha("0".repeat(40));
    assert!(matches!(fx.git.export_tree(fx.app, &missing, dest.path()).await, Err(Error::NotFound("commit"))));
    let other = new_app();
    assert!(matches!(fx.git.export_tree(other, &fx.initial, dest.path()).await, Err(Error::NotFound("repository"))));
    fx.git.export_tree(fx.app, &fx.initial, dest.path()).await.unwrap();
}
