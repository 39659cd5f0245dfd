//! Scenario 6 of `cargo xtask bench` (issue 13: the release composer),
//! through the git adapter alone on a repository of 10,000 files (100 dirs
//! × 100 YAML files):
//! - 100 one-file changesets composed in order onto `main`, beside (a) the
//!   same chain done by git's CLI — `git merge-tree --write-tree` then `git
//!   commit-tree` per changeset, 200 processes — and (b) 100 *independent*
//!   merges onto `main` in one `git merge-tree --stdin` process (git cannot
//!   chain merges in one process, so (b) is git's in-process floor per
//!   merge). Bars: ≤ 30 ms, ≥ 20× (a), ≥ 1.0× (b);
//! - the same with 20 % of the changesets conflicting (each rewrites a line
//!   an earlier one rewrote), same bars;
//! - the revalidation conflict check of 1,000 queued changesets against a
//!   new head, beside one `git merge-tree --stdin` over the same 1,000.
//!   Bars: ≤ 300 ms, ≥ 1.0×.
//!
//! Invariant: every figure is a median of rounds, the ways alternating
//! round by round so both see the same machine load; outcomes are checked
//! (composed and conflicted counts), so a fast wrong answer fails; every
//! composition round makes new commits (a signature time of its own), so
//! each one pays for writing its pack.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conman_core::ids::AppId;
use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, ItemOutcome};
use conman_core::ports::git::{GitPort, Sha};
use conman_git::GitRepos;

use super::git_port_scenario::{author, put_files, seeded_repo};
use super::{ms, row, stats, Bars};

/// Changesets composed by one release.
const SELECTED: usize = 100;
/// Changesets in the queue revalidated after a publish.
const QUEUED: usize = 1000;

/// A one-file changeset cut from `base` on its own branch.
async fn changeset(git: &GitRepos, app: AppId, base: &Sha, name: &str, path: String, content: String) -> ComposeItem {
    let branch = format!("refs/heads/cs/{name}");
    git.update_ref(app, &branch, Some(base), None).await.expect("changeset branch");
    let head = put_files(git, app, &branch, &branch, vec![(path, content)]).await;
    ComposeItem { key: name.into(), base: base.clone(), head, message: format!("Changeset {name}") }
}

/// The file changeset `n` of a selection edits: a different one each.
fn file_of(n: usize) -> String {
    format!("svc{:03}/config{:03}.yaml", n % 100, (n * 37) % 100)
}

/// `SELECTED` changesets; with `conflicting`, every fifth rewrites the
/// `replicas` line of the file the one before it rewrote.
async fn selection(git: &GitRepos, app: AppId, base: &Sha, tag: &str, conflicting: bool) -> Vec<ComposeItem> {
    let mut items = Vec::with_capacity(SELECTED);
    for n in 0..SELECTED {
        let clash = conflicting && n % 5 == 4;
        let file = if clash { n - 1 } else { n };
        let (d, f) = (file % 100, (file * 37) % 100);
        let content = format!(
            "service: svc{d:03}\nindex: {f}\nreplicas: {}\nimage: registry/app:{d}.{f}\n",
            if clash { 9 } else { 5 }
        );
        items.push(changeset(git, app, base, &format!("{tag}{n}"), file_of(file), content).await);
    }
    items
}

/// Runs `git` in `repo`, answering its exit code and stdout (exit 1 is
/// `merge-tree`'s "conflicts").
fn git_run(repo: &Path, args: &[&str], stdin: Option<&[u8]>) -> (i32, String) {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git is installed");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    }
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    let status = child.wait().expect("git runs");
    let code = status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "git {args:?} failed with {status}");
    (code, out)
}

/// (a): the chain by git's CLI; answers how many composed.
fn cli_chain(repo: &Path, onto: &Sha, items: &[ComposeItem]) -> usize {
    let (mut head, mut composed) = (onto.as_str().to_owned(), 0);
    for item in items {
        let base = format!("--merge-base={}", item.base);
        let (code, out) = git_run(repo, &["merge-tree", "--write-tree", &base, &head, item.head.as_str()], None);
        if code != 0 {
            continue; // conflicted: dropped
        }
        let tree = out.lines().next().expect("a tree id").to_owned();
        let parents = ["-p", head.as_str(), "-p", item.head.as_str()];
        let (_, commit) = git_run(
            repo,
            &[&["commit-tree", tree.as_str()][..], &parents[..], &["-m", &item.message][..]].concat(),
            None,
        );
        head = commit.trim().to_owned();
        composed += 1;
    }
    composed
}

/// (b): independent merges of `items` onto `onto` in one `git merge-tree
/// --stdin`; answers how many were clean.
fn cli_stdin(repo: &Path, onto: &Sha, items: &[ComposeItem]) -> usize {
    let input: String = items.iter().map(|i| format!("{} -- {} {}\n", i.base, onto, i.head)).collect();
    let (_, out) =
        git_run(repo, &["merge-tree", "--stdin", "--write-tree", "-z", "--name-only"], Some(input.as_bytes()));
    // Each merge's output starts with its status (1 clean, 0 conflicted),
    // NUL-terminated, and ends with an empty NUL-terminated record.
    out.split("\0\0").filter(|merge| merge.starts_with("1\0")).count()
}

/// Composed and conflicted counts of a composition.
fn counts(outcomes: &[(String, ItemOutcome)]) -> (usize, usize) {
    let composed = outcomes.iter().filter(|(_, o)| matches!(o, ItemOutcome::Composed { .. })).count();
    let conflicted = outcomes.iter().filter(|(_, o)| matches!(o, ItemOutcome::Conflicted { .. })).count();
    (composed, conflicted)
}

/// Runs scenario 6 with `rounds` timed rounds of Conman's ways and
/// `cli_rounds` of the CLI chain.
pub(super) async fn scenario_composer(bars: &mut Bars, rounds: usize, cli_rounds: usize) {
    println!("Scenario 6: the release composer (10,000-file repository)");
    let dir = tempfile::tempdir().expect("tempdir");
    let git = GitRepos::new(dir.path().join("repos")).expect("repos");
    let (app, main, _) = seeded_repo(&git).await;
    let repo = dir.path().join("repos").join(format!("{app}.git"));

    for (label, conflicting) in [("100 one-file changesets", false), ("100 changesets, 20 % conflicting", true)] {
        let items = selection(&git, app, &main, if conflicting { "x" } else { "c" }, conflicting).await;
        let expected = if conflicting { (80, 20) } else { (100, 0) };
        // Each call at a time of its own: its commits are new, so every
        // round composes *and persists* (a repeat of the same request finds
        // its commit already stored and writes nothing — a re-assembly, not
        // what the bar is about).
        let calls = std::cell::Cell::new(0);
        let compose = || async {
            calls.set(calls.get() + 1);
            let request = ComposeRequest {
                onto: main.clone(),
                items: items.clone(),
                author: author(),
                time: 1_700_000_000 + calls.get(),
            };
            let t = Instant::now();
            let composition = git.compose(app, request).await.expect("compose");
            let took = t.elapsed();
            assert_eq!(counts(&composition.outcomes), expected, "{label}: composed and conflicted");
            took
        };
        let stdin = || {
            let t = Instant::now();
            let clean = cli_stdin(&repo, &main, &items);
            let took = t.elapsed();
            // Independent merges onto main: nothing conflicts with main itself.
            assert_eq!(clean, SELECTED, "{label}: git merge-tree --stdin clean merges");
            took
        };
        compose().await;
        stdin();
        let (mut ours, mut floor, mut chain) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            ours.push(compose().await);
            floor.push(stdin());
            if round < cli_rounds {
                let t = Instant::now();
                let composed = cli_chain(&repo, &main, &items);
                chain.push(t.elapsed());
                assert_eq!(composed, expected.0, "{label}: the CLI chain composes as many");
            }
        }
        let (ours, floor, chain) = (stats(ours), stats(floor), stats(chain));
        row(&format!("compose {label}"), &ours);
        row("  (a) git merge-tree + commit-tree chain", &chain);
        row("  (b) git merge-tree --stdin, independent", &floor);
        let ratio = |other: &super::Stats| other.median.as_secs_f64() / ours.median.as_secs_f64();
        println!("  ratio compose: {:.1}× (a), {:.2}× (b)", ratio(&chain), ratio(&floor));
        bars.check(format!("compose {label} ≤ 30 ms"), ours.median <= Duration::from_millis(30));
        bars.check(format!("compose {label} ≥ 20× the CLI chain"), ratio(&chain) >= 20.0);
        bars.check(format!("compose {label} ≥ 1.0× git merge-tree --stdin"), ratio(&floor) >= 1.0);
    }

    // Revalidation: the queue after a publish that rewrote 100 other files.
    let mut queue = Vec::with_capacity(QUEUED);
    for n in 0..QUEUED {
        let (d, f) = (n % 100, n / 100 + 10);
        let content = format!("service: svc{d:03}\nindex: {f}\nreplicas: 7\nimage: registry/app:{d}.{f}\n");
        queue
            .push(changeset(&git, app, &main, &format!("q{n}"), format!("svc{d:03}/config{f:03}.yaml"), content).await);
    }
    let published =
        (0..100).map(|d| (format!("svc{d:03}/config{:03}.yaml", 99 - d % 10), format!("published: {d}\n"))).collect();
    let head = put_files(&git, app, "refs/heads/main", "refs/heads/main", published).await;
    let check = || async {
        let t = Instant::now();
        let outcomes = git.check_against(app, head.clone(), queue.clone()).await.expect("check");
        let took = t.elapsed();
        assert!(outcomes.iter().all(|o| matches!(o, CheckOutcome::Clean { .. })), "the queue checks clean");
        took
    };
    let stdin = || {
        let t = Instant::now();
        assert_eq!(cli_stdin(&repo, &head, &queue), QUEUED, "git merges the queue clean");
        t.elapsed()
    };
    check().await;
    stdin();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds.min(9) {
        ours.push(check().await);
        theirs.push(stdin());
    }
    let (ours, theirs) = (stats(ours), stats(theirs));
    row(&format!("revalidation conflict check of {QUEUED} queued"), &ours);
    row(&format!("  git merge-tree --stdin over the same {QUEUED}"), &theirs);
    let ratio = theirs.median.as_secs_f64() / ours.median.as_secs_f64();
    println!(
        "  ratio revalidation: {ratio:.2}× git merge-tree --stdin ({} per changeset)",
        ms(ours.median / QUEUED as u32)
    );
    bars.check(format!("revalidation of {QUEUED} ≤ 300 ms"), ours.median <= Duration::from_millis(300));
    bars.check(format!("revalidation of {QUEUED} ≥ 1.0× git merge-tree --stdin"), ratio >= 1.0);
}
