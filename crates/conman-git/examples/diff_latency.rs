//! Latency of `GitPort::diff` on a 10,000-file repository (100 directories
//! × 100 YAML files): a 20-file change spread over 20 directories at each
//! level of detail, then the worst case for exact rename detection (1,000
//! and then all 10,000 files moved at once).
//!
//! Run: `cargo run -p conman-git --release --example diff_latency [rounds]`.
//! Invariant: touches only a temporary directory.

use std::time::{Duration, Instant};

use conman_core::ids::AppId;
use conman_core::ports::git::{ChangeStatus, DiffDetail, FileOp, GitPort, RepoSource, Sha, Signature, WriteRequest};
use conman_core::validation::RepoPath;
use conman_git::GitRepos;

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const CHANGED: usize = 20;
const BRANCH: &str = "refs/heads/main";

fn author() -> Signature {
    Signature { name: "Bench".into(), email: "bench@example.com".into() }
}

fn path(raw: &str) -> RepoPath {
    RepoPath::parse(raw).expect("valid path")
}

fn content(dir: usize, file: usize, round: usize) -> Vec<u8> {
    let body: String = (0..20).map(|k| format!("key{k}: value {k} of {dir}/{file}\n")).collect();
    format!("dir: {dir}\nfile: {file}\nround: {round}\n{body}").into_bytes()
}

fn put(dir: usize, file: usize, round: usize) -> FileOp {
    FileOp::Put { path: path(&format!("dir{dir:03}/file{file:03}.yaml")), content: content(dir, file, round) }
}

async fn commit(git: &GitRepos, app: AppId, ops: Vec<FileOp>) -> Sha {
    let request = WriteRequest {
        target_ref: BRANCH.into(),
        base_ref: BRANCH.into(),
        ops,
        message: "bench".into(),
        author: author(),
    };
    git.write(app, request).await.expect("write")
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!("{label:<44} n={:<5} mean={:>8.1?} p50={:>8.1?} p99={:>8.1?}", samples.len(), mean, at(0.5), at(0.99));
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir().expect("tempdir");
    let git = GitRepos::new(dir.path().join("repos")).expect("root");
    let app = AppId::from(uuid::Uuid::now_v7());
    git.create_repo(app, RepoSource::Init, "main", &author()).await.expect("create");

    let ops = (0..DIRS).flat_map(|d| (0..FILES_PER_DIR).map(move |f| put(d, f, 0))).collect();
    let base = commit(&git, app, ops).await;
    let changed = (0..CHANGED).map(|i| put(i * (DIRS / CHANGED), (i * 7) % FILES_PER_DIR, 1)).collect();
    let head = commit(&git, app, changed).await;

    for (label, detail) in [
        ("20-file diff, Paths", DiffDetail::Paths),
        ("20-file diff, Patch", DiffDetail::Patch),
        ("20-file diff, Contents", DiffDetail::Contents),
    ] {
        let samples = (0..rounds)
            .map(|_| async {
                let started = Instant::now();
                let changes = git.diff(app, &base, &head, detail).await.expect("diff");
                assert_eq!(changes.len(), CHANGED);
                started.elapsed()
            })
            .collect::<Vec<_>>();
        let mut times = Vec::with_capacity(rounds);
        for sample in samples {
            times.push(sample.await);
        }
        summary(label, times);
    }

    // Worst case for exact rename detection: every deleted file is paired
    // against every added one (blob ids only, but quadratic).
    let mut before = head;
    for (moved_dirs, target) in [(DIRS / 10, "moved1"), (DIRS, "moved2")] {
        let moves = (0..moved_dirs)
            .flat_map(|d| {
                (0..FILES_PER_DIR).map(move |f| FileOp::Move {
                    from: path(&format!("dir{d:03}/file{f:03}.yaml")),
                    to: path(&format!("{target}/dir{d:03}/file{f:03}.yaml")),
                })
            })
            .collect();
        let after = commit(&git, app, moves).await;
        let started = Instant::now();
        let changes = git.diff(app, &before, &after, DiffDetail::Paths).await.expect("diff");
        let elapsed = started.elapsed();
        assert_eq!(changes.len(), moved_dirs * FILES_PER_DIR);
        assert!(changes.iter().all(|c| c.status == ChangeStatus::Renamed));
        println!("{:>6} files moved at once: every rename found in {elapsed:.1?}", changes.len());
        // Put them back for the next, larger move.
        before = commit(
            &git,
            app,
            changes
                .iter()
                .map(|c| FileOp::Move { from: path(&c.path), to: path(c.old_path.as_deref().expect("renamed")) })
                .collect(),
        )
        .await;
    }
}
