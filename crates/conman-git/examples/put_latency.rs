//! Latency of a single-file put through the git port on a 10,000-file
//! repository (100 directories × 100 YAML files), beside a baseline that
//! rebuilds the whole tree through an in-memory index for every write.
//!
//! Run: `cargo run -p conman-git --release --example put_latency [writes]`
//! (meant to be driven by `cargo xtask bench`). Invariant: touches only a
//! temporary directory.

use std::time::{Duration, Instant};

use conman_core::ids::AppId;
use conman_core::ports::git::{FileOp, GitPort, RepoSource, Signature, WriteRequest};
use conman_core::validation::RepoPath;
use conman_git::GitRepos;

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const BRANCH: &str = "refs/heads/main";
const WIP: &str = "refs/conman/wip/bench";

fn author() -> Signature {
    Signature { name: "Bench".into(), email: "bench@example.com".into() }
}

fn put(dir: usize, file: usize, round: usize) -> FileOp {
    FileOp::Put {
        path: RepoPath::parse(&format!("dir{dir:03}/file{file:03}.yaml")).expect("valid path"),
        content: format!("dir: {dir}\nfile: {file}\nround: {round}\npadding: {}\n", "x".repeat(200)).into_bytes(),
    }
}

fn request(target: &str, ops: Vec<FileOp>) -> WriteRequest {
    WriteRequest { target_ref: target.into(), base_ref: BRANCH.into(), ops, message: "bench".into(), author: author() }
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!("{label:<44} n={:<5} mean={:>8.1?} p50={:>8.1?} p99={:>8.1?}", samples.len(), mean, at(0.5), at(0.99));
}

#[tokio::main]
async fn main() {
    let writes: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir().expect("tempdir");
    let git = GitRepos::new(dir.path().join("repos")).expect("root");
    let app = AppId::from(uuid::Uuid::now_v7());
    git.create_repo(app, RepoSource::Init, "main", &author()).await.expect("create");

    let started = Instant::now();
    let ops = (0..DIRS).flat_map(|d| (0..FILES_PER_DIR).map(move |f| put(d, f, 0))).collect();
    git.write(app, request(BRANCH, ops)).await.expect("seed");
    println!("seed: one batch of {} files in {:.1?}", DIRS * FILES_PER_DIR, started.elapsed());

    let mut port = Vec::with_capacity(writes);
    for i in 0..writes {
        let op = put(i % DIRS, (i * 7) % FILES_PER_DIR, i + 1);
        let started = Instant::now();
        git.write(app, request(WIP, vec![op])).await.expect("write");
        port.push(started.elapsed());
    }
    summary("port write (path-copy trees, CAS ref)", port);

    let repo = git2::Repository::open_bare(git.root().join(format!("{app}.git"))).expect("open");
    let baseline = full_index_baseline(&repo, writes.min(100));
    summary("baseline: full in-memory index per write", baseline);
}

/// The naive way: load every entry into an index, add the file, write every tree.
fn full_index_baseline(repo: &git2::Repository, writes: usize) -> Vec<Duration> {
    let sig = git2::Signature::now("Bench", "bench@example.com").expect("signature");
    let mut head = repo.refname_to_id(BRANCH).expect("branch");
    (0..writes)
        .map(|i| {
            let started = Instant::now();
            let parent = repo.find_commit(head).expect("commit");
            let mut index = git2::Index::new().expect("index");
            index.read_tree(&parent.tree().expect("tree")).expect("read tree");
            let path = format!("dir{:03}/file{:03}.yaml", i % DIRS, (i * 7) % FILES_PER_DIR);
            let mut entry = index.get_path(std::path::Path::new(&path), 0).expect("entry");
            let content = format!("baseline {i}\n");
            entry.file_size = content.len() as u32;
            entry.id = repo.blob(content.as_bytes()).expect("blob");
            index.add(&entry).expect("add");
            let tree = repo.find_tree(index.write_tree_to(repo).expect("write tree")).expect("tree");
            head = repo.commit(None, &sig, &sig, "baseline", &tree, &[&parent]).expect("commit");
            repo.reference("refs/conman/wip/baseline", head, true, "bench").expect("ref");
            started.elapsed()
        })
        .collect()
}
