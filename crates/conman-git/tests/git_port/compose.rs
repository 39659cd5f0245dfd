//! Composition of changesets onto a head and the queue's conflict check:
//! order, conflicts dropped with their paths, contents merged where both
//! sides changed a file, nothing moved, objects written only by a finished
//! composition — and, by property, the same outcome as libgit2's own
//! whole-index merge on random edits.

use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, ItemOutcome};
use conman_core::ports::git::{FileOp, GitPort, Sha};
use conman_git::GitRepos;
use proptest::prelude::*;

use crate::support::{author, delete, oid, put, Fixture, MAIN};

/// A changeset cut from `main`'s head now: its own branch with `ops`.
async fn changeset(fx: &Fixture, name: &str, ops: Vec<FileOp>) -> ComposeItem {
    let base = fx.head(MAIN).await.unwrap();
    let head = fx.write_to(&format!("refs/heads/cs/{name}"), MAIN, ops).await.unwrap();
    ComposeItem { key: name.into(), base, head, message: format!("Changeset {name}") }
}

fn request(onto: &Sha, items: &[ComposeItem]) -> ComposeRequest {
    ComposeRequest { onto: onto.clone(), items: items.to_vec(), author: author(), time: 1_700_000_000 }
}

/// `main` with `a.yaml` (five lines) and `dir/b.yaml`.
async fn seeded() -> (Fixture, Sha) {
    let fx = Fixture::new().await;
    let head =
        fx.write_to(MAIN, MAIN, vec![put("a.yaml", "1\n2\n3\n4\n5\n"), put("dir/b.yaml", "b: 1\n")]).await.unwrap();
    (fx, head)
}

#[tokio::test]
async fn changesets_compose_in_order_as_merge_commits_and_no_ref_moves() {
    let (fx, onto) = seeded().await;
    let one = changeset(&fx, "one", vec![put("one.yaml", "1\n")]).await;
    let two = changeset(&fx, "two", vec![put("dir/two.yaml", "2\n")]).await;
    let three = changeset(&fx, "three", vec![delete("dir/b.yaml")]).await;
    let composition = fx.git.compose(fx.app, request(&onto, &[one.clone(), two.clone(), three.clone()])).await.unwrap();

    let commits: Vec<Sha> = composition
        .outcomes
        .iter()
        .map(|(_, o)| match o {
            ItemOutcome::Composed { commit } => commit.clone(),
            other => panic!("expected composed, got {other:?}"),
        })
        .collect();
    assert_eq!(composition.outcomes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["one", "two", "three"]);
    assert_eq!(composition.head, commits[2]);
    assert_eq!(fx.parents(&commits[0]), [onto.clone(), one.head.clone()]);
    assert_eq!(fx.parents(&commits[1]), [commits[0].clone(), two.head.clone()]);
    assert_eq!(fx.parents(&commits[2]), [commits[1].clone(), three.head.clone()]);
    assert_eq!(fx.message(&commits[1]), "Changeset two");
    assert_eq!(fx.files(&composition.head), ["a.yaml", "dir/two.yaml", "one.yaml"]);
    assert_eq!(fx.head(MAIN).await, Some(onto), "composition moves no ref");
}

#[tokio::test]
async fn a_conflicting_changeset_is_dropped_with_its_paths_and_the_rest_go_on() {
    let (fx, onto) = seeded().await;
    let first = changeset(&fx, "first", vec![put("a.yaml", "1\n2\nthree\n4\n5\n")]).await;
    let clash = changeset(&fx, "clash", vec![put("a.yaml", "1\n2\nTHREE\n4\n5\n"), put("dir/c.yaml", "c\n")]).await;
    let later = changeset(&fx, "later", vec![put("dir/b.yaml", "b: 2\n")]).await;
    let composition = fx.git.compose(fx.app, request(&onto, &[first, clash, later])).await.unwrap();
    assert!(matches!(composition.outcomes[0].1, ItemOutcome::Composed { .. }));
    assert_eq!(composition.outcomes[1].1, ItemOutcome::Conflicted { paths: vec!["a.yaml".into()] });
    assert!(matches!(composition.outcomes[2].1, ItemOutcome::Composed { .. }));
    let head = &composition.head;
    assert_eq!(fx.file(head, "a.yaml").await.unwrap(), b"1\n2\nthree\n4\n5\n");
    assert_eq!(fx.file(head, "dir/b.yaml").await.unwrap(), b"b: 2\n");
    assert_eq!(fx.file(head, "dir/c.yaml").await, None, "nothing of the dropped changeset");
}

#[tokio::test]
async fn edits_of_one_file_on_different_lines_merge() {
    let (fx, onto) = seeded().await;
    let top = changeset(&fx, "top", vec![put("a.yaml", "one\n2\n3\n4\n5\n")]).await;
    let bottom = changeset(&fx, "bottom", vec![put("a.yaml", "1\n2\n3\n4\nfive\n")]).await;
    let composition = fx.git.compose(fx.app, request(&onto, &[top, bottom])).await.unwrap();
    assert!(composition.outcomes.iter().all(|(_, o)| matches!(o, ItemOutcome::Composed { .. })));
    assert_eq!(fx.file(&composition.head, "a.yaml").await.unwrap(), b"one\n2\n3\n4\nfive\n");
}

#[tokio::test]
async fn structural_conflicts_are_conflicts_and_identical_changes_are_not() {
    let (fx, onto) = seeded().await;
    let removes = changeset(&fx, "removes", vec![delete("a.yaml")]).await;
    let edits = changeset(&fx, "edits", vec![put("a.yaml", "1\n2\n3\n4\n5\n6\n")]).await;
    let adds = changeset(&fx, "adds", vec![put("new.yaml", "x\n")]).await;
    let adds_other = changeset(&fx, "adds-other", vec![put("new.yaml", "y\n")]).await;
    let adds_same = changeset(&fx, "adds-same", vec![put("new.yaml", "x\n")]).await;
    let file_over_dir = changeset(&fx, "file-over-dir", vec![delete("dir/b.yaml"), put("dir", "now a file\n")]).await;
    let into_dir = changeset(&fx, "into-dir", vec![put("dir/d.yaml", "d\n")]).await;
    let items = [removes, edits, adds, adds_other, adds_same.clone(), file_over_dir, into_dir];
    let composition = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    let outcome = |key: &str| composition.outcomes.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert!(matches!(outcome("removes"), ItemOutcome::Composed { .. }));
    assert_eq!(outcome("edits"), ItemOutcome::Conflicted { paths: vec!["a.yaml".into()] }, "modify/delete");
    assert_eq!(outcome("adds-other"), ItemOutcome::Conflicted { paths: vec!["new.yaml".into()] }, "add/add");
    assert_eq!(outcome("adds-same"), ItemOutcome::AlreadyContained, "the same addition twice is no conflict");
    assert!(matches!(outcome("file-over-dir"), ItemOutcome::Composed { .. }));
    assert_eq!(outcome("into-dir"), ItemOutcome::Conflicted { paths: vec!["dir".into()] }, "file/directory");
    assert_eq!(fx.file(&composition.head, "dir").await.unwrap(), b"now a file\n");
}

#[tokio::test]
async fn a_change_already_in_the_head_adds_no_commit() {
    let (fx, onto) = seeded().await;
    let once = changeset(&fx, "once", vec![put("x.yaml", "x\n")]).await;
    let again = ComposeItem { key: "again".into(), ..once.clone() };
    let composition = fx.git.compose(fx.app, request(&onto, &[once, again])).await.unwrap();
    assert_eq!(composition.outcomes[1].1, ItemOutcome::AlreadyContained);
    assert_eq!(fx.parents(&composition.head)[0], onto);
}

#[tokio::test]
async fn composition_is_deterministic_and_its_objects_are_in_the_repository() {
    let (fx, onto) = seeded().await;
    let items = [
        changeset(&fx, "one", vec![put("one.yaml", "1\n")]).await,
        changeset(&fx, "two", vec![put("a.yaml", "1\n2\n3\n4\nfive\n")]).await,
    ];
    let first = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    let second = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    assert_eq!(first, second);
    // Another process (a handle cache of its own) reads the composed commit.
    let other = GitRepos::new(fx.root()).unwrap();
    let node = other.read(fx.app, &first.head, Some(&crate::support::p("a.yaml"))).await.unwrap();
    assert_eq!(node, Some(conman_core::ports::git::Node::File(b"1\n2\n3\n4\nfive\n".to_vec())));
}

/// The objects in the repository's packs (counted from their indexes).
fn packed_objects(fx: &Fixture) -> Vec<git2::Oid> {
    let dir = fx.raw().path().join("objects/pack");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "idx") {
            // Index v2: magic, version, 256 fan-out counts, then the ids.
            let idx = std::fs::read(&path).unwrap();
            let count = u32::from_be_bytes(idx[8 + 255 * 4..8 + 256 * 4].try_into().unwrap()) as usize;
            let ids_at = 8 + 256 * 4;
            ids.extend(
                (0..count).map(|n| git2::Oid::from_bytes(&idx[ids_at + 20 * n..ids_at + 20 * (n + 1)]).unwrap()),
            );
        }
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn a_composition_persists_its_own_objects_alone_and_once() {
    let (fx, onto) = seeded().await;
    let first = changeset(&fx, "first", vec![put("a.yaml", "1\n2\nthree\n4\n5\n")]).await;
    let clash = changeset(&fx, "clash", vec![put("a.yaml", "1\n2\nTHREE\n4\n5\n"), put("dir/c.yaml", "c\n")]).await;
    let later = changeset(&fx, "later", vec![put("a.yaml", "1\n2\n3\n4\nfive\n")]).await;
    assert_eq!(packed_objects(&fx), [], "the fixture writes loose objects");
    let items = [first, clash, later];
    let composition = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    assert!(matches!(composition.outcomes[1].1, ItemOutcome::Conflicted { .. }));
    let repo = fx.raw();
    // The two merge commits, the second's root tree and the blob of the
    // line merge of `later` onto `first` (the first's tree is `first`'s
    // own: nothing to write): nothing else of the repository, nothing of
    // the dropped item.
    let commit = |n: usize| match &composition.outcomes[n].1 {
        ItemOutcome::Composed { commit } => repo.find_commit(oid(commit)).unwrap(),
        other => panic!("{other:?}"),
    };
    let (one, three) = (commit(0), commit(2));
    assert_eq!(one.tree_id(), repo.find_commit(oid(&items[0].head)).unwrap().tree_id());
    let merged_blob = three.tree().unwrap().get_name("a.yaml").unwrap().id();
    assert_eq!(repo.find_blob(merged_blob).unwrap().content(), b"1\n2\nthree\n4\nfive\n");
    let mut expected = vec![one.id(), three.id(), three.tree_id(), merged_blob];
    expected.sort();
    assert_eq!(packed_objects(&fx), expected);
    // The same composition again: already stored, no second pack.
    let again = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    assert_eq!(again, composition);
    assert_eq!(packed_objects(&fx), expected);
}

#[tokio::test]
async fn nothing_composed_answers_the_head_itself() {
    let (fx, onto) = seeded().await;
    let clash = changeset(&fx, "clash", vec![delete("a.yaml")]).await;
    fx.write_to(MAIN, MAIN, vec![put("a.yaml", "changed\n")]).await.unwrap();
    let head = fx.head(MAIN).await.unwrap();
    let composition = fx.git.compose(fx.app, request(&head, &[clash])).await.unwrap();
    assert_eq!(composition.head, head);
    assert!(matches!(composition.outcomes[0].1, ItemOutcome::Conflicted { .. }));
    assert_ne!(head, onto);
}

#[tokio::test]
async fn unknown_commits_are_not_found_and_a_missing_repository_too() {
    let (fx, onto) = seeded().await;
    let ghost = Sha("1".repeat(40));
    let item = ComposeItem { key: "ghost".into(), base: onto.clone(), head: ghost.clone(), message: "m".into() };
    let err = fx.git.compose(fx.app, request(&onto, std::slice::from_ref(&item))).await.unwrap_err();
    assert_eq!(err, conman_core::Error::NotFound("commit"));
    let err = fx.git.compose(crate::support::new_app(), request(&onto, &[])).await.unwrap_err();
    assert_eq!(err, conman_core::Error::NotFound("repository"));
    let err = fx.git.check_against(fx.app, ghost, vec![]).await.unwrap_err();
    assert_eq!(err, conman_core::Error::NotFound("commit"));
}

#[tokio::test]
async fn the_queue_check_merges_each_changeset_alone_and_writes_nothing() {
    let (fx, _) = seeded().await;
    let mut items = Vec::new();
    for i in 0..40 {
        items.push(changeset(&fx, &format!("q{i}"), vec![put(&format!("q/{i}.yaml"), "q\n")]).await);
    }
    items.push(changeset(&fx, "clash", vec![put("a.yaml", "mine\n")]).await);
    let fresh = changeset(&fx, "fresh", vec![put("fresh.yaml", "f\n")]).await;
    // The integration branch moves on: a.yaml changes under the queue.
    let new_head = fx.write_to(MAIN, MAIN, vec![put("a.yaml", "theirs\n")]).await.unwrap();
    let outcomes = fx.git.check_against(fx.app, new_head.clone(), items.clone()).await.unwrap();
    assert_eq!(outcomes.len(), 41);
    assert_eq!(outcomes[40], CheckOutcome::Conflicted { paths: vec!["a.yaml".into()] });
    let raw = fx.raw();
    for (i, outcome) in outcomes[..40].iter().enumerate() {
        let CheckOutcome::Clean { tree, head_tree } = outcome else { panic!("q{i}: {outcome:?}") };
        // The same tree a composition of that changeset alone makes.
        let alone = fx.git.compose(fx.app, request(&new_head, &items[i..=i])).await.unwrap();
        assert_eq!(*tree, Sha(fx.tree_of(&alone.head).to_string()), "q{i}");
        // And the tree its own head has (what its submit gate ran on).
        assert_eq!(*head_tree, Sha(fx.tree_of(&items[i].head).to_string()), "q{i}");
        assert_ne!(tree, head_tree, "q{i}: the merge brings in the new head's change");
    }
    let checked = fx.git.check_against(fx.app, new_head.clone(), items[..3].to_vec()).await.unwrap();
    // A check alone writes nothing: a tree only it computed is not stored.
    let CheckOutcome::Clean { tree, .. } = &fx.git.check_against(fx.app, new_head, vec![fresh]).await.unwrap()[0]
    else {
        panic!("fresh conflicts")
    };
    assert!(raw.find_tree(git2::Oid::from_str(tree.as_str()).unwrap()).is_err(), "the check wrote its merged tree");
    assert_eq!(checked, outcomes[..3].to_vec());
}

#[tokio::test]
async fn composed_commits_are_byte_for_byte_what_libgit2_writes() {
    let (fx, onto) = seeded().await;
    let one = changeset(&fx, "one", vec![put("one.yaml", "1\n")]).await;
    let composition = fx.git.compose(fx.app, request(&onto, std::slice::from_ref(&one))).await.unwrap();
    let repo = fx.raw();
    let commit = repo.find_commit(oid(&composition.head)).unwrap();
    let who = author();
    let sig = git2::Signature::new(&who.name, &who.email, &git2::Time::new(1_700_000_000, 0)).unwrap();
    let parents = [repo.find_commit(oid(&onto)).unwrap(), repo.find_commit(oid(&one.head)).unwrap()];
    let expected =
        repo.commit_create_buffer(&sig, &sig, "Changeset one", &commit.tree().unwrap(), &[&parents[0], &parents[1]]);
    let odb = repo.odb().unwrap();
    let raw = odb.read(commit.id()).unwrap();
    assert_eq!(raw.data(), &*expected.unwrap());
}

/// Names around a directory `a` that sort differently in git's tree order
/// (a directory as if named `a/`) than by bytes: merged trees keep git's
/// order, so their ids are libgit2's.
#[tokio::test]
async fn names_a_directory_sorts_around_merge_as_libgit2_does() {
    let fx = Fixture::new().await;
    let seed = vec![put("a/x.yaml", "x\n"), put("a-b.yaml", "1\n2\n3\n"), put("a.c", "c\n"), put("a0", "0\n")];
    let onto = fx.write_to(MAIN, MAIN, seed).await.unwrap();
    let items = [
        changeset(&fx, "dir", vec![put("a/y.yaml", "y\n")]).await,
        changeset(&fx, "dash", vec![put("a-b.yaml", "one\n2\n3\n")]).await,
        changeset(&fx, "dash-too", vec![put("a-b.yaml", "1\n2\nthree\n"), put("a!", "!\n")]).await,
        changeset(&fx, "dot", vec![delete("a.c"), put("a/z/deep.yaml", "z\n")]).await,
    ];
    let composition = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
    let repo = fx.raw();
    let mut head = oid(&onto);
    for (item, (_, outcome)) in items.iter().zip(&composition.outcomes) {
        let ItemOutcome::Composed { commit } = outcome else { panic!("{}: {outcome:?}", item.key) };
        let tree = repo.find_commit(oid(commit)).unwrap().tree_id();
        assert_eq!(Ok(tree), oracle(&repo, head, item), "{}", item.key);
        head = oid(commit);
    }
    assert_eq!(fx.file(&composition.head, "a-b.yaml").await.unwrap(), b"one\n2\nthree\n");
    let checked = fx.git.check_against(fx.app, onto.clone(), items.to_vec()).await.unwrap();
    for (item, outcome) in items.iter().zip(checked) {
        let tree = oracle(&repo, oid(&onto), item).unwrap();
        let head_tree = Sha(fx.tree_of(&item.head).to_string());
        assert_eq!(outcome, CheckOutcome::Clean { tree: Sha(tree.to_string()), head_tree }, "{}", item.key);
    }
}

// ---- by property: the same outcome as libgit2's whole-index merge ----------

/// One edit of a random changeset.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace line `line` of file `file` (of 4 files of 6 lines) with `text`.
    Line { file: usize, line: usize, text: u8 },
    /// Delete file `file`.
    Delete { file: usize },
    /// Add file `name` under `dir/`.
    Add { name: u8, text: u8 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (0..4usize, 0..6usize, 0..3u8).prop_map(|(file, line, text)| Edit::Line { file, line, text }),
        1 => (0..4usize).prop_map(|file| Edit::Delete { file }),
        2 => (0..3u8, 0..2u8).prop_map(|(name, text)| Edit::Add { name, text }),
    ]
}

fn base_file(file: usize) -> Vec<String> {
    (0..6).map(|l| format!("f{file} line {l}")).collect()
}

fn file_path(file: usize) -> String {
    if file % 2 == 0 {
        format!("top{file}.yaml")
    } else {
        format!("dir/sub{file}.yaml")
    }
}

/// The ops of one changeset's edits against the base.
fn ops(edits: &[Edit]) -> Vec<FileOp> {
    let mut files: Vec<Option<Vec<String>>> = (0..4).map(|f| Some(base_file(f))).collect();
    let mut added = std::collections::BTreeMap::new();
    for e in edits {
        match *e {
            Edit::Line { file, line, text } => {
                if let Some(lines) = files[file].as_mut() {
                    lines[line] = format!("changed to {text}");
                }
            }
            Edit::Delete { file } => files[file] = None,
            Edit::Add { name, text } => {
                added.insert(name, text);
            }
        }
    }
    let mut ops = Vec::new();
    for (f, lines) in files.iter().enumerate() {
        match lines {
            Some(lines) if *lines != base_file(f) => ops.push(put(&file_path(f), &(lines.join("\n") + "\n"))),
            Some(_) => {}
            None => ops.push(delete(&file_path(f))),
        }
    }
    for (name, text) in added {
        ops.push(put(&format!("dir/new{name}.yaml"), &format!("new {text}\n")));
    }
    ops
}

/// libgit2's whole-index three-way merge of `item` onto `onto`: the merged
/// tree, or the sorted conflicting paths (the oracle).
fn oracle(repo: &git2::Repository, onto: git2::Oid, item: &ComposeItem) -> Result<git2::Oid, Vec<String>> {
    let tree = |sha: &Sha| repo.find_commit(oid(sha)).unwrap().tree().unwrap();
    let ours = repo.find_commit(onto).unwrap().tree().unwrap();
    let mut index = repo.merge_trees(&tree(&item.base), &ours, &tree(&item.head), None).unwrap();
    if index.has_conflicts() {
        let mut paths: Vec<String> = index
            .conflicts()
            .unwrap()
            .flat_map(|c| {
                let c = c.unwrap();
                [c.ancestor, c.our, c.their].into_iter().flatten().map(|e| String::from_utf8(e.path).unwrap())
            })
            .collect();
        paths.sort();
        paths.dedup();
        return Err(paths);
    }
    Ok(index.write_tree_to(repo).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random changesets from one base, composed in order: each is composed
    /// exactly when libgit2's merge onto what composed before it is clean,
    /// with the same tree; a conflicted one names a conflicting path that
    /// libgit2 names too (libgit2 lists every side's path of a
    /// file/directory conflict, the composer the entry where it is found).
    #[test]
    fn composition_agrees_with_libgit2s_merge(changesets in proptest::collection::vec(proptest::collection::vec(edit(), 1..4), 1..6)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let fx = Fixture::new().await;
            let base_ops: Vec<FileOp> = (0..4).map(|f| put(&file_path(f), &(base_file(f).join("\n") + "\n"))).collect();
            let onto = fx.write_to(MAIN, MAIN, base_ops).await.unwrap();
            let mut items = Vec::new();
            for (i, edits) in changesets.iter().enumerate() {
                let ops = ops(edits);
                if ops.is_empty() {
                    continue;
                }
                items.push(changeset(&fx, &format!("c{i}"), ops).await);
            }
            let composition = fx.git.compose(fx.app, request(&onto, &items)).await.unwrap();
            let repo = fx.raw();
            let mut head = oid(&onto);
            for (item, (_, outcome)) in items.iter().zip(&composition.outcomes) {
                let head_tree = repo.find_commit(head).unwrap().tree_id();
                match (oracle(&repo, head, item), outcome) {
                    (Ok(tree), ItemOutcome::Composed { commit }) => {
                        prop_assert_eq!(repo.find_commit(oid(commit)).unwrap().tree_id(), tree);
                        head = oid(commit);
                    }
                    (Ok(tree), ItemOutcome::AlreadyContained) => prop_assert_eq!(tree, head_tree),
                    (Err(expected), ItemOutcome::Conflicted { paths }) => {
                        prop_assert!(!paths.is_empty());
                        for path in paths {
                            prop_assert!(
                                expected.iter().any(|e| e == path || e.starts_with(&format!("{path}/"))),
                                "{} not among libgit2's {:?}", path, expected
                            );
                        }
                    }
                    (expected, got) => prop_assert!(false, "{}: libgit2 {:?}, composer {:?}", item.key, expected, got),
                }
            }
            Ok(())
        })?;
    }
}
