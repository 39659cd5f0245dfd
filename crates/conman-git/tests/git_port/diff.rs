//! Diffs between two commits: statuses (exact renames only), nested paths,
//! sorting, patch text, line counts and changed paths checked against the
//! `git` CLI, binaries, the patch size limit, both contents, symlinks,
//! modes and submodules, and the refusals.

use std::process::Command;

use conman_core::ports::git::{ChangeStatus, DiffDetail, FileChange, FileOp, GitPort, Sha, MAX_PATCH_BYTES};
use conman_core::Error;

use crate::support::{delete, mv, new_app, oid, p, put, Fixture, MAIN};

/// Commits `ops` on `main` and returns the new commit.
async fn commit(fx: &Fixture, ops: Vec<FileOp>) -> Sha {
    fx.write_to(MAIN, MAIN, ops).await.unwrap()
}

/// `Put path bytes`.
fn put_bytes(path: &str, content: &[u8]) -> FileOp {
    FileOp::Put { path: p(path), content: content.to_vec() }
}

async fn diff(fx: &Fixture, from: &Sha, to: &Sha, detail: DiffDetail) -> Vec<FileChange> {
    fx.git.diff(fx.app, from, to, detail).await.unwrap()
}

/// A change as the `Paths` detail reports it.
fn change(path: &str, status: ChangeStatus, old_path: Option<&str>) -> FileChange {
    FileChange {
        path: path.into(),
        old_path: old_path.map(Into::into),
        status,
        binary: false,
        additions: 0,
        deletions: 0,
        patch: None,
        patch_truncated: false,
        old_content: None,
        new_content: None,
    }
}

/// The one change at `path`.
fn at<'a>(changes: &'a [FileChange], path: &str) -> &'a FileChange {
    let mut found = changes.iter().filter(|c| c.path == path);
    let one = found.next().unwrap_or_else(|| panic!("no change at {path}: {changes:#?}"));
    assert!(found.next().is_none(), "two changes at {path}");
    one
}

/// What `git diff` prints between two commits for `paths`, with exact
/// rename detection and no user or system configuration.
fn git_diff(fx: &Fixture, from: &Sha, to: &Sha, paths: &[&str]) -> String {
    let out = Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("--git-dir")
        .arg(fx.root().join(format!("{}.git", fx.app)))
        .args(["diff", "--no-color", "--no-ext-diff", "-M100%", from.as_str(), to.as_str(), "--"])
        .args(paths)
        .output()
        .expect("the git CLI runs");
    assert!(out.status.success(), "git diff: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Commits a root tree made from `base`'s tree plus raw `(name, id, mode)`
/// entries (symlinks, modes and gitlinks the port cannot write); no ref moves.
fn raw_commit(fx: &Fixture, base: &Sha, entries: &[(&str, git2::Oid, i32)]) -> Sha {
    let repo = fx.raw();
    let parent = repo.find_commit(oid(base)).unwrap();
    let mut root = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    for (name, id, mode) in entries {
        root.insert(name, *id, *mode).unwrap();
    }
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let sig = git2::Signature::now("T", "t@example.com").unwrap();
    Sha(repo.commit(None, &sig, &sig, "raw", &tree, &[&parent]).unwrap().to_string())
}

#[tokio::test]
async fn paths_report_each_status_in_nested_directories_sorted_by_path() {
    let fx = Fixture::new().await;
    let from = commit(
        &fx,
        vec![
            put("z.yaml", "z: 1\n"),
            put("a/b/c/deep.yaml", "deep: 1\n"),
            put("a/b/keep.yaml", "keep: 1\n"),
            put("old/place.yaml", "moved: true\n"),
            put("m.yaml", "m: 1\n"),
        ],
    )
    .await;
    let to = commit(
        &fx,
        vec![
            put("a/b/c/deep.yaml", "deep: 2\n"),
            delete("z.yaml"),
            mv("old/place.yaml", "new/sub/place.yaml"),
            put("a/b/c/d/added.yaml", "added: 1\n"),
            put("0-first.yaml", "first\n"),
            put("a-b.yaml", "sorts between a/ and m\n"),
        ],
    )
    .await;

    let changes = diff(&fx, &from, &to, DiffDetail::Paths).await;
    assert_eq!(
        changes,
        vec![
            change("0-first.yaml", ChangeStatus::Added, None),
            change("a-b.yaml", ChangeStatus::Added, None),
            change("a/b/c/d/added.yaml", ChangeStatus::Added, None),
            change("a/b/c/deep.yaml", ChangeStatus::Modified, None),
            change("new/sub/place.yaml", ChangeStatus::Renamed, Some("old/place.yaml")),
            change("z.yaml", ChangeStatus::Deleted, None),
        ]
    );
    let paths: Vec<_> = changes.iter().map(|c| c.path.clone()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    // The other direction swaps additions and deletions and reverses the move.
    let back = diff(&fx, &to, &from, DiffDetail::Paths).await;
    assert_eq!(at(&back, "z.yaml").status, ChangeStatus::Added);
    assert_eq!(at(&back, "0-first.yaml").status, ChangeStatus::Deleted);
    assert_eq!(at(&back, "old/place.yaml").old_path.as_deref(), Some("new/sub/place.yaml"));
}

#[tokio::test]
async fn a_move_with_edits_is_a_deletion_and_an_addition() {
    let fx = Fixture::new().await;
    let from = commit(&fx, vec![put("before.yaml", "a: 1\nb: 2\nc: 3\nd: 4\n")]).await;
    let to = commit(&fx, vec![delete("before.yaml"), put("after.yaml", "a: 1\nb: 2\nc: 3\nd: 5\n")]).await;
    assert_eq!(
        diff(&fx, &from, &to, DiffDetail::Paths).await,
        vec![change("after.yaml", ChangeStatus::Added, None), change("before.yaml", ChangeStatus::Deleted, None)]
    );
}

#[tokio::test]
async fn moving_a_large_directory_is_one_rename_per_file() {
    let fx = Fixture::new().await;
    let files = 1_200; // above libgit2's default rename limit
    let from = commit(&fx, (0..files).map(|i| put(&format!("old/f{i:04}.yaml"), &format!("n: {i}\n"))).collect()).await;
    let to =
        commit(&fx, (0..files).map(|i| mv(&format!("old/f{i:04}.yaml"), &format!("new/f{i:04}.yaml"))).collect()).await;
    let changes = diff(&fx, &from, &to, DiffDetail::Paths).await;
    assert_eq!(changes.len(), files);
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c, &change(&format!("new/f{i:04}.yaml"), ChangeStatus::Renamed, Some(&format!("old/f{i:04}.yaml"))));
    }
}

#[tokio::test]
async fn patch_text_and_counts_are_what_git_diff_prints() {
    let fx = Fixture::new().await;
    let lines: Vec<String> = (1..=40).map(|i| format!("key{i}: value {i}")).collect();
    let original = lines.join("\n") + "\n";
    let from = commit(
        &fx,
        vec![
            put("config/app.yaml", &original),
            put("gone.yaml", "a: 1\nb: 2\n"),
            put("tail.txt", "no newline at the end"),
            put("same.yaml", "moved: true\n"),
        ],
    )
    .await;
    // Two hunks far apart in app.yaml: one edit near the top, an inserted
    // block near the bottom (an ambiguous slide for the indent heuristic).
    let mut edited = lines.clone();
    edited[2] = "key3: changed".into();
    edited[3] = "key4: changed".into();
    edited.insert(30, "block:".into());
    edited.insert(31, "  inner: 1".into());
    edited.insert(32, "".into());
    edited.remove(37);
    let to = commit(
        &fx,
        vec![
            put("config/app.yaml", &(edited.join("\n") + "\n")),
            delete("gone.yaml"),
            put("tail.txt", "still no newline, but different"),
            put("fresh/new.yaml", "x: 1\ny: 2\nz: 3\n"),
            mv("same.yaml", "moved/same.yaml"),
        ],
    )
    .await;

    let changes = diff(&fx, &from, &to, DiffDetail::Patch).await;
    let paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["config/app.yaml", "fresh/new.yaml", "gone.yaml", "moved/same.yaml", "tail.txt"]);
    for c in &changes {
        let cli_paths: Vec<&str> = [Some(c.path.as_str()), c.old_path.as_deref()].into_iter().flatten().collect();
        let expected = git_diff(&fx, &from, &to, &cli_paths);
        assert_eq!(c.patch.as_deref(), Some(expected.as_str()), "patch of {}", c.path);
        assert!(expected.starts_with("diff --git a/"), "{expected}");
        let added = expected.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count();
        let removed = expected.lines().filter(|l| l.starts_with('-') && !l.starts_with("---")).count();
        assert_eq!((c.additions as usize, c.deletions as usize), (added, removed), "counts of {}", c.path);
        assert!(!c.binary && !c.patch_truncated);
        assert_eq!((c.old_content.as_ref(), c.new_content.as_ref()), (None, None), "no contents at Patch detail");
    }
    let app = at(&changes, "config/app.yaml");
    assert_eq!((app.additions, app.deletions), (5, 3));
    assert_eq!(app.patch.as_deref().unwrap().matches("\n@@ ").count(), 2, "two hunks");
    assert_eq!((at(&changes, "fresh/new.yaml").additions, at(&changes, "gone.yaml").deletions), (3, 2));
    let tail = at(&changes, "tail.txt").patch.as_deref().unwrap();
    assert!(tail.contains("\\ No newline at end of file"), "{tail}");
    let moved = at(&changes, "moved/same.yaml");
    assert_eq!((moved.additions, moved.deletions), (0, 0));
    assert!(moved.patch.as_deref().unwrap().contains("rename from same.yaml\nrename to moved/same.yaml\n"));
}

#[tokio::test]
async fn binary_files_are_flagged_with_no_hunks_and_no_counts() {
    let fx = Fixture::new().await;
    let from =
        commit(&fx, vec![put_bytes("img/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0old"), put("text.yaml", "a: 1\n")]).await;
    let to = commit(
        &fx,
        vec![
            put_bytes("img/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0new"),
            put_bytes("text.yaml", b"a: 1\n\0now binary\n"),
            put_bytes("blob.bin", &[0, 1, 2, 3]),
        ],
    )
    .await;

    let paths = diff(&fx, &from, &to, DiffDetail::Paths).await;
    assert!(paths.iter().all(|c| c.binary), "{paths:#?}");

    let changes = diff(&fx, &from, &to, DiffDetail::Patch).await;
    assert_eq!(changes.len(), 3);
    for c in &changes {
        assert!(c.binary, "{} is binary", c.path);
        assert_eq!((c.additions, c.deletions), (0, 0));
        let patch = c.patch.as_deref().unwrap();
        assert!(patch.starts_with(&format!("diff --git a/{0} b/{0}\n", c.path)), "{patch}");
        assert!(!patch.contains("\n@@"), "no hunks: {patch}");
        assert!(patch.contains("Binary files"), "{patch}");
        assert_eq!(patch, git_diff(&fx, &from, &to, &[c.path.as_str()]), "as git prints it");
    }
}

#[tokio::test]
async fn a_patch_over_the_limit_is_cut_at_a_line_boundary() {
    let fx = Fixture::new().await;
    let from = commit(&fx, vec![put("big.txt", "start\n"), put("small.yaml", "a: 1\n")]).await;
    let lines = 20_000;
    let big: String = (0..lines).map(|i| format!("line {i:06} {}\n", "x".repeat(60))).collect();
    assert!(big.len() > MAX_PATCH_BYTES);
    let to = commit(&fx, vec![put("big.txt", &big), put("small.yaml", "a: 2\n")]).await;

    let changes = diff(&fx, &from, &to, DiffDetail::Patch).await;
    let c = at(&changes, "big.txt");
    assert!(c.patch_truncated);
    let patch = c.patch.as_deref().unwrap();
    assert!(patch.len() <= MAX_PATCH_BYTES && patch.len() > MAX_PATCH_BYTES - 100, "{}", patch.len());
    assert!(patch.ends_with('\n'));
    let full = git_diff(&fx, &from, &to, &["big.txt"]);
    assert!(full.len() > MAX_PATCH_BYTES);
    assert!(full.starts_with(patch), "a prefix of the whole patch");
    assert_eq!((c.additions, c.deletions), (lines, 1), "counts cover the whole patch");
    assert!(!at(&changes, "small.yaml").patch_truncated);
}

#[tokio::test]
async fn contents_carry_both_sides_and_the_patch() {
    let fx = Fixture::new().await;
    let from =
        commit(&fx, vec![put("mod.yaml", "v: 1\n"), put("del.yaml", "gone: true\n"), put("ren.yaml", "same\n")]).await;
    let to = commit(
        &fx,
        vec![
            put("mod.yaml", "v: 2\n"),
            delete("del.yaml"),
            mv("ren.yaml", "dir/ren.yaml"),
            put("add.yaml", "new: 1\n"),
            put_bytes("raw.bin", b"\0\x01"),
        ],
    )
    .await;

    let changes = diff(&fx, &from, &to, DiffDetail::Contents).await;
    let sides = |path: &str| {
        let c = at(&changes, path);
        (c.old_content.as_deref(), c.new_content.as_deref())
    };
    assert_eq!(sides("add.yaml"), (None, Some(&b"new: 1\n"[..])));
    assert_eq!(sides("del.yaml"), (Some(&b"gone: true\n"[..]), None));
    assert_eq!(sides("dir/ren.yaml"), (Some(&b"same\n"[..]), Some(&b"same\n"[..])));
    assert_eq!(sides("mod.yaml"), (Some(&b"v: 1\n"[..]), Some(&b"v: 2\n"[..])));
    assert_eq!(sides("raw.bin"), (None, Some(&b"\0\x01"[..])));
    assert!(at(&changes, "raw.bin").binary);

    let modified = at(&changes, "mod.yaml");
    assert_eq!((modified.additions, modified.deletions), (1, 1));
    let patch = diff(&fx, &from, &to, DiffDetail::Patch).await;
    assert_eq!(modified.patch, at(&patch, "mod.yaml").patch, "the same patch as the Patch detail");
}

#[tokio::test]
async fn identical_commits_or_trees_have_no_changes() {
    let fx = Fixture::new().await;
    let head = commit(&fx, vec![put("a.yaml", "1"), put("d/b.yaml", "2")]).await;
    let edited = commit(&fx, vec![put("a.yaml", "changed")]).await;
    let reverted = commit(&fx, vec![put("a.yaml", "1")]).await;
    assert_ne!(head, reverted);
    for detail in [DiffDetail::Paths, DiffDetail::Patch, DiffDetail::Contents] {
        assert_eq!(diff(&fx, &head, &head, detail).await, vec![]);
        assert_eq!(diff(&fx, &head, &reverted, detail).await, vec![]);
        assert_eq!(diff(&fx, &head, &edited, detail).await.len(), 1);
    }
}

#[tokio::test]
async fn unknown_commits_and_apps_are_not_found() {
    let fx = Fixture::new().await;
    let known = fx.initial.clone();
    for rev in ["0123456789012345678901234567890123456789", "not-hex", "abc", ""] {
        let rev = Sha(rev.into());
        for (from, to) in [(&rev, &known), (&known, &rev)] {
            let result = fx.git.diff(fx.app, from, to, DiffDetail::Paths).await;
            assert_eq!(result, Err(Error::NotFound("commit")), "{rev}");
        }
    }
    let other_app = fx.git.diff(new_app(), &known, &known, DiffDetail::Paths).await;
    assert_eq!(other_app, Err(Error::NotFound("repository")));
}

#[tokio::test]
async fn symlinks_modes_and_submodules_are_changes_too() {
    let fx = Fixture::new().await;
    let from = commit(
        &fx,
        vec![put("link", "target.yaml"), put("same-link", "kept.yaml"), put("run.sh", "#!/bin/sh\necho hi\n")],
    )
    .await;
    let repo = fx.raw();
    let to = raw_commit(
        &fx,
        &from,
        &[
            ("link", repo.blob(b"other.yaml").unwrap(), 0o120000),
            ("same-link", repo.blob(b"kept.yaml").unwrap(), 0o120000),
            ("run.sh", repo.blob(b"#!/bin/sh\necho hi\n").unwrap(), 0o100755),
            ("vendored", oid(&fx.initial), 0o160000),
        ],
    );

    let changes = diff(&fx, &from, &to, DiffDetail::Contents).await;
    let statuses: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.status)).collect();
    assert_eq!(
        statuses,
        [
            ("link", ChangeStatus::Modified),
            ("run.sh", ChangeStatus::Modified),
            ("same-link", ChangeStatus::Modified),
            ("vendored", ChangeStatus::Added),
        ],
        "a file that becomes a symlink is one modification"
    );
    for c in &changes {
        assert!(!c.binary && !c.patch_truncated && c.old_path.is_none(), "{c:?}");
        assert_eq!(c.patch.as_deref(), Some(git_diff(&fx, &from, &to, &[c.path.as_str()]).as_str()), "{}", c.path);
    }

    let link = at(&changes, "link");
    assert_eq!((link.additions, link.deletions), (1, 1));
    assert_eq!(link.old_content.as_deref(), Some(&b"target.yaml"[..]));
    assert_eq!(link.new_content.as_deref(), Some(&b"other.yaml"[..]));
    let patch = link.patch.as_deref().unwrap();
    assert!(patch.contains("deleted file mode 100644\n") && patch.contains("new file mode 120000\n"), "{patch}");

    let run = at(&changes, "run.sh");
    assert_eq!((run.additions, run.deletions), (0, 0));
    assert!(run.patch.as_deref().unwrap().contains("old mode 100644\nnew mode 100755\n"));

    let vendored = at(&changes, "vendored");
    let expected = format!("Subproject commit {}\n", fx.initial);
    assert_eq!((vendored.old_content.as_deref(), vendored.new_content.as_deref()), (None, Some(expected.as_bytes())));
    assert_eq!((vendored.additions, vendored.deletions), (1, 0));

    let paths = diff(&fx, &from, &to, DiffDetail::Paths).await;
    let statuses_at_paths: Vec<_> = paths.iter().map(|c| (c.path.as_str(), c.status, c.binary)).collect();
    let expected: Vec<_> = statuses.iter().map(|&(path, status)| (path, status, false)).collect();
    assert_eq!(statuses_at_paths, expected);
}

/// `git diff --name-status` with exact renames, as `(path, status, old path)`
/// sorted by path (git's `T`, a kind change, is a modification here).
fn git_name_status(fx: &Fixture, from: &Sha, to: &Sha) -> Vec<(String, ChangeStatus, Option<String>)> {
    let out = Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("--git-dir")
        .arg(fx.root().join(format!("{}.git", fx.app)))
        .args(["diff", "--name-status", "-M100%", "-z", from.as_str(), to.as_str()])
        .output()
        .expect("the git CLI runs");
    assert!(out.status.success(), "git diff: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split('\0').filter(|f| !f.is_empty());
    let mut rows = Vec::new();
    while let Some(code) = fields.next() {
        let first = fields.next().unwrap().to_owned();
        let row = match &code[..1] {
            "A" => (first, ChangeStatus::Added, None),
            "D" => (first, ChangeStatus::Deleted, None),
            "M" | "T" => (first, ChangeStatus::Modified, None),
            "R" => (fields.next().unwrap().to_owned(), ChangeStatus::Renamed, Some(first)),
            other => panic!("unexpected status {other}"),
        };
        rows.push(row);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test]
async fn a_diff_limited_to_the_changed_paths_matches_git_name_status() {
    let fx = Fixture::new().await;
    let mut ops: Vec<FileOp> =
        (0..50).map(|i| put(&format!("bulk/d{}/f{i}.yaml", i % 5), &format!("n: {i}\n"))).collect();
    ops.extend([
        put("a", "file a\n"),
        put("a-b", "a-b\n"),
        put("a.d/x", "x\n"),
        put("b/c/d", "d\n"),
        put("b/c/e", "e\n"),
        put("b/keep", "keep\n"),
        put("dir/gone/one", "one\n"),
        put("dir/gone/two", "two\n"),
        put("dir/stay", "stay\n"),
        put("m/n/o/p.yaml", "deep\n"),
        put("q/moving.yaml", "moving\n"),
    ]);
    let from = commit(&fx, ops).await;
    let to = commit(
        &fx,
        vec![
            delete("a"),
            put("a/inner", "a is a directory now\n"),
            put("a.d/x", "x changed\n"),
            delete("b/c/d"),
            delete("b/c/e"),
            put("b/c", "b/c is a file now\n"),
            delete("dir/gone/one"),
            delete("dir/gone/two"),
            put("m/n/o/p.yaml", "deeper\n"),
            put("bulk/d3/f13.yaml", "n: changed\n"),
            mv("q/moving.yaml", "r/s/moved.yaml"),
            put("z/new", "new\n"),
        ],
    )
    .await;

    let ours: Vec<_> =
        diff(&fx, &from, &to, DiffDetail::Paths).await.into_iter().map(|c| (c.path, c.status, c.old_path)).collect();
    assert_eq!(ours, git_name_status(&fx, &from, &to));
    assert_eq!(ours.len(), 12);
}
