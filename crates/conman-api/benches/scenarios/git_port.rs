//! Scenario 5 of `cargo xtask bench` (issue 19: reads of one app in
//! parallel), through the git port alone on a repository of 10,000 files:
//! - 8 raw diffs of one app (1,000 modified files each, patch detail)
//!   started together, against the same 8 one after another (bar: together
//!   ≤ 0.7× one after another);
//! - with `--only-git-reads`, also the one-file write into a workspace ref
//!   through the port beside the 7-process git CLI chain ([`WriteRow`],
//!   which scenario 1 prints in a full run).
//!
//! Invariant: the bench's runtime shape (2 worker threads, git work on
//! `spawn_blocking`); rounds of the two ways alternate, after a warm-up
//! round of each, so both see the same machine load; each figure is the
//! median round.

use std::path::Path;
use std::time::Instant;

use conman_core::ids::AppId;
use conman_core::ports::git::{DiffDetail, FileOp, GitPort, RepoSource, Sha, Signature, WriteRequest};
use conman_core::validation::RepoPath;
use conman_git::GitRepos;

use super::{cli_write, git, ms, row, stats, Bars, Stats};

/// How many reads a round starts.
const READS: usize = 8;

/// How many files the diffed commit modifies.
const CHANGED: usize = 1000;

/// The bar: 8 reads together take at most this share of 8 one after another.
const MAX_RATIO: f64 = 0.7;

pub(super) fn author() -> Signature {
    Signature { name: "Bench".into(), email: "bench@example.com".into() }
}

/// Puts `files` (path, content) on `target` in one commit (started from `base`).
pub(super) async fn put_files(
    git: &GitRepos,
    app: AppId,
    target: &str,
    base: &str,
    files: Vec<(String, String)>,
) -> Sha {
    let ops = files
        .into_iter()
        .map(|(path, content)| FileOp::Put {
            path: RepoPath::parse(&path).expect("path"),
            content: content.into_bytes(),
        })
        .collect();
    let request = WriteRequest {
        target_ref: target.into(),
        base_ref: base.into(),
        ops,
        message: "seed".into(),
        author: author(),
    };
    git.write(app, request).await.expect("seed write")
}

/// An app repository of 10,000 files on `main` (100 dirs × 100 YAML
/// files) and a commit on `changed` rewriting 1,000 of them; answers the
/// app and both commits.
pub(super) async fn seeded_repo(git: &GitRepos) -> (AppId, Sha, Sha) {
    let app = AppId(uuid::Uuid::now_v7());
    git.create_repo(app, RepoSource::Init, "main", &author()).await.expect("repository");
    let mut main = None;
    for d in 0..100 {
        let files = (0..100)
            .map(|f| {
                let content = format!("service: svc{d:03}\nindex: {f}\nreplicas: 3\nimage: registry/app:{d}.{f}\n");
                (format!("svc{d:03}/config{f:03}.yaml"), content)
            })
            .collect();
        main = Some(put_files(git, app, "refs/heads/main", "refs/heads/main", files).await);
    }
    let changed = (0..CHANGED)
        .map(|n| {
            let (d, f) = (n / 100, n % 100);
            let content = format!(
                "service: svc{d:03}\nindex: {f}\nreplicas: 5\nimage: registry/app:{d}.{f}.next\nowner: team-{d}\n"
            );
            (format!("svc{d:03}/config{f:03}.yaml"), content)
        })
        .collect();
    let changed = put_files(git, app, "refs/heads/changed", "refs/heads/main", changed).await;
    (app, main.expect("seeded"), changed)
}

/// Runs scenario 5 with `rounds` timed rounds of each way; `writes` adds
/// the git port's write row (when scenario 1 does not print it).
pub(super) async fn scenario_git_port(bars: &mut Bars, rounds: usize, writes: Option<WriteRow>) {
    println!("Scenario 5: reads of one app in parallel through the git port (10,000-file repository)");
    let dir = tempfile::tempdir().expect("tempdir");
    let git = GitRepos::new(dir.path().join("repos")).expect("repos");
    let (app, base, changed) = seeded_repo(&git).await;
    let diff = {
        let git = git.clone();
        let (base, changed) = (base.clone(), changed.clone());
        move || {
            let (git, base, changed) = (git.clone(), base.clone(), changed.clone());
            async move {
                let files = git.diff(app, &base, &changed, DiffDetail::Patch).await.expect("diff");
                assert_eq!(files.len(), CHANGED, "the diff shows every changed file");
            }
        }
    };
    let one_after_another = || async {
        let t = Instant::now();
        for _ in 0..READS {
            diff().await;
        }
        t.elapsed()
    };
    let together = || async {
        let t = Instant::now();
        let reads: Vec<_> = (0..READS).map(|_| tokio::spawn(diff())).collect();
        for read in reads {
            read.await.expect("read task");
        }
        t.elapsed()
    };
    one_after_another().await;
    together().await;
    let (mut serial, mut concurrent) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        serial.push(one_after_another().await);
        concurrent.push(together().await);
    }
    let (serial, concurrent) = (stats(serial), stats(concurrent));
    let single = serial.median / READS as u32;

    if let Some(writes) = writes {
        let repo = dir.path().join("repos").join(format!("{app}.git"));
        writes.measure(&git, app, &repo, &dir.path().join("bench.index"), &base).await.print();
    }
    println!("  one raw diff of {CHANGED} modified files (patch detail) ≈ {} (serial median / {READS})", ms(single));
    row(&format!("{READS} concurrent reads of one app (raw diffs)"), &concurrent);
    row(&format!("the same {READS} reads one after another"), &serial);
    let ratio = concurrent.median.as_secs_f64() / serial.median.as_secs_f64();
    println!("  ratio reads: {READS} concurrent take {ratio:.2}× the time of {READS} one after another");
    bars.check(format!("{READS} concurrent reads ≤ {MAX_RATIO}× serial"), ratio <= MAX_RATIO);
}

/// The one-file write into a workspace ref through the git port, beside the
/// same write as the 7-process git CLI chain (rev-parse, hash-object,
/// read-tree, update-index, write-tree, commit-tree, update-ref).
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteRow {
    /// Timed port writes (after 20 untimed ones).
    pub(super) writes: usize,
    /// Timed CLI chains.
    pub(super) cli_writes: usize,
}

/// The figures of a [`WriteRow`].
pub(super) struct WriteFigures {
    pub(super) port: Stats,
    pub(super) cli: Stats,
}

impl WriteRow {
    /// Measures both on the repository `repo` of `app` (whose `main` holds
    /// the 10,000 seeded files), each starting from `head`; `index` is a
    /// scratch path for the CLI's temporary index.
    pub(super) async fn measure(
        self,
        port: &dyn GitPort,
        app: AppId,
        repo: &Path,
        index: &Path,
        head: &Sha,
    ) -> WriteFigures {
        let base_ref = "refs/heads/bench-port-base";
        port.update_ref(app, base_ref, Some(head), None).await.expect("base ref");
        let write = |i: usize| WriteRequest {
            target_ref: "refs/conman/wip/bench-port".into(),
            base_ref: base_ref.into(),
            ops: vec![FileOp::Put {
                path: RepoPath::parse(&format!("svc{:03}/config{:03}.yaml", i % 100, (i * 7) % 100)).expect("path"),
                content: format!("service: port\nrevision: {i}\n").into_bytes(),
            }],
            message: "bench write".into(),
            author: author(),
        };
        for i in 0..20 {
            port.write(app, write(i)).await.expect("warm-up write");
        }
        let mut samples = Vec::with_capacity(self.writes);
        for i in 0..self.writes {
            let request = write(i);
            let t = Instant::now();
            port.write(app, request).await.expect("port write");
            samples.push(t.elapsed());
        }
        let port = stats(samples);

        let cli_ref = "refs/heads/bench-cli";
        git(repo, &["update-ref", cli_ref, head.as_str()], &[], None);
        let mut samples = Vec::with_capacity(self.cli_writes);
        for i in 0..self.cli_writes {
            let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 7) % 100);
            let t = Instant::now();
            cli_write(repo, index, cli_ref, &path, format!("cli: {i}\n").as_bytes());
            samples.push(t.elapsed());
        }
        WriteFigures { port, cli: stats(samples) }
    }
}

impl WriteFigures {
    /// The port row, the CLI row beside it, and their ratio.
    pub(super) fn print(&self) {
        row("write via git port (one file, workspace ref)", &self.port);
        row("write via git CLI (hash-object…update-ref)", &self.cli);
        let ratio = self.cli.median.as_secs_f64() / self.port.median.as_secs_f64().max(1e-9);
        println!("  ratio write: the git port is {ratio:.1}× faster than the 7-process git CLI chain");
    }
}
