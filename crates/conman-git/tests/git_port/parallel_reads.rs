//! Reads of one app run in parallel — with each other and with writers —
//! and still see every write that returned before they started.
//!
//! The parallelism tests park one read of the app inside libgit2: the loose
//! ref it looks up is a FIFO, so its `open()` waits for a writer to the pipe.
//! While it waits, every other operation on the app must complete; with one
//! lock around the whole repository they would queue behind it for ever.
//! The visibility tests write through one handle (the port's writer, or
//! another instance on the same root, as another process would) and read
//! straight away through the port's pooled reader handles, many times and
//! under a concurrent write loop on real threads.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conman_core::ids::AppId;
use conman_core::ports::git::{DiffDetail, GitPort, Node, Sha, WriteRequest};
use conman_git::GitRepos;

use crate::support::{author, p, put, Fixture, BRANCH, WIP};

/// Safety net for operations that must not be waiting on the parked read;
/// they take milliseconds, so reaching it means they were queued behind it.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// The ref whose lookup parks inside libgit2.
const PARKED_REF: &str = "refs/heads/parked";

/// `O_NONBLOCK` on Linux: opening a FIFO's write end with it never waits.
const O_NONBLOCK: i32 = 0o4000;

/// A FIFO standing in for a loose ref file; dropping it lets a parked
/// reader go (its `open()` returns, it reads nothing) and removes it.
struct ParkingFifo {
    path: PathBuf,
}

impl ParkingFifo {
    fn new(fx: &Fixture) -> ParkingFifo {
        let path = fx.root().join(format!("{}.git", fx.app)).join(PARKED_REF);
        let status = std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo runs");
        assert!(status.success(), "mkfifo {}", path.display());
        ParkingFifo { path }
    }

    /// Opens and closes the write end, which releases a reader waiting in `open()`.
    fn release(&self) {
        // With no reader waiting this fails (ENXIO) and there is nothing to release.
        let _ = OpenOptions::new().write(true).custom_flags(O_NONBLOCK).open(&self.path);
    }
}

impl Drop for ParkingFifo {
    fn drop(&mut self) {
        self.release();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits until a thread of this process sleeps in the kernel's FIFO open
/// (`wait_for_partner`), i.e. the parked read holds whatever it holds.
async fn until_a_thread_waits_on_a_fifo() {
    let start = Instant::now();
    loop {
        let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task is readable");
        let waiting = tasks.flatten().any(|task| {
            std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|wchan| wchan.trim() == "wait_for_partner")
        });
        if waiting {
            return;
        }
        assert!(start.elapsed() < SAFETY_NET, "the parked read never reached the FIFO's open()");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `op` finishes within the safety net, or the test fails naming `what`.
async fn promptly<T>(what: &str, op: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(SAFETY_NET, op).await {
        Ok(value) => value,
        Err(_) => panic!("{what} waited on a read that was still running"),
    }
}

/// A repository with a workspace branch, one commit on its WIP ref, and a
/// read of the app parked inside libgit2; answers the fixture, the WIP head,
/// the FIFO and the parked task.
async fn parked() -> (Fixture, Sha, ParkingFifo, tokio::task::JoinHandle<()>) {
    let fx = Fixture::with_workspace().await;
    let head = fx.write(vec![put("a.yaml", "a: 1\n")]).await.unwrap();
    let fifo = ParkingFifo::new(&fx);
    let (git, app) = (fx.git.clone(), fx.app);
    let parked = tokio::spawn(async move {
        // A ref file that holds nothing is no ref: the lookup fails once released.
        assert!(git.resolve_ref(app, PARKED_REF).await.is_err());
    });
    until_a_thread_waits_on_a_fifo().await;
    (fx, head, fifo, parked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_of_the_app_completes_while_another_read_is_still_running() {
    let (fx, head, fifo, parked) = parked().await;
    let (git, app) = (&fx.git, fx.app);

    let resolved = promptly("resolve_ref", git.resolve_ref(app, WIP)).await.unwrap();
    assert_eq!(resolved.as_ref(), Some(&head));
    let file = promptly("read", git.read(app, &head, Some(&p("a.yaml")))).await.unwrap();
    assert_eq!(file, Some(Node::File(b"a: 1\n".to_vec())));
    let changes = promptly("diff", git.diff(app, &fx.initial, &head, DiffDetail::Patch)).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["a.yaml"]);
    let base = promptly("merge_base", git.merge_base(app, &fx.initial, &head)).await.unwrap();
    assert_eq!(base, Some(fx.initial.clone()));
    assert!(promptly("is_ancestor", git.is_ancestor(app, &fx.initial, &head)).await.unwrap());
    let dest = tempfile::tempdir().unwrap();
    promptly("export_tree", git.export_tree(app, &head, dest.path())).await.unwrap();
    assert_eq!(std::fs::read(dest.path().join("a.yaml")).unwrap(), b"a: 1\n");

    fifo.release();
    promptly("the released read", parked).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lands_and_is_read_back_while_another_read_is_still_running() {
    let (fx, head, fifo, parked) = parked().await;

    let next = promptly("write", fx.write(vec![put("b.yaml", "b: 2\n")])).await.unwrap();
    assert_eq!(fx.parents(&next), [head]);
    assert_eq!(promptly("resolve_ref", fx.git.resolve_ref(fx.app, WIP)).await.unwrap(), Some(next.clone()));
    assert_eq!(promptly("read", fx.file(&next, "b.yaml")).await, Some(b"b: 2\n".to_vec()));

    fifo.release();
    promptly("the released read", parked).await.unwrap();
}

/// The counter a write loop puts into `counter.yaml`, read at `WIP`'s head
/// through the port (ref and blob both through the port's reader handles).
async fn counter_at_head(git: &GitRepos, app: AppId) -> (Sha, u64) {
    let head = git.resolve_ref(app, WIP).await.unwrap().expect("the WIP ref exists");
    let node = git.read(app, &head, Some(&p("counter.yaml"))).await.unwrap();
    let Some(Node::File(bytes)) = node else { panic!("counter.yaml is a file at {head}") };
    let text = String::from_utf8(bytes).unwrap();
    (head, text.trim().parse().unwrap())
}

/// Puts `n` into `counter.yaml` on the WIP ref through `git`.
async fn write_counter(fx: &Fixture, git: &GitRepos, n: u64) -> Sha {
    let request = WriteRequest {
        target_ref: WIP.into(),
        base_ref: BRANCH.into(),
        ops: vec![put("counter.yaml", &format!("{n}\n"))],
        message: format!("counter {n}"),
        author: author(),
    };
    git.write(fx.app, request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_seen_by_the_very_next_read_through_every_pooled_handle() {
    let fx = Fixture::with_workspace().await;
    // Another instance on the same root: another process's handles.
    let elsewhere = GitRepos::new(fx.root()).unwrap();
    write_counter(&fx, &fx.git, 0).await;
    for n in 1..=200 {
        let writer = if n % 2 == 0 { &fx.git } else { &elsewhere };
        let written = write_counter(&fx, writer, n).await;
        // Several reads at once, so several pooled handles (each with warm
        // caches from earlier rounds) answer, and every one sees the write.
        let reads: Vec<_> = (0..4)
            .map(|_| {
                let (git, app) = (fx.git.clone(), fx.app);
                tokio::spawn(async move { counter_at_head(&git, app).await })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap(), (written.clone(), n), "round {n}");
        }
    }
}

/// How far the write loop of the threaded test goes.
const WRITES: u64 = 150;

#[test]
fn reads_on_real_threads_never_see_less_than_the_last_write_that_returned() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fx = rt.block_on(async {
        let fx = Fixture::with_workspace().await;
        write_counter(&fx, &fx.git, 0).await;
        fx
    });
    let elsewhere = GitRepos::new(fx.root()).unwrap();
    // The highest counter whose write has returned.
    let returned = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|threads| {
        threads.spawn(|| {
            for n in 1..=WRITES {
                let writer = if n % 3 == 0 { &elsewhere } else { &fx.git };
                rt.block_on(write_counter(&fx, writer, n));
                returned.store(n, Ordering::Release);
            }
            done.store(true, Ordering::Release);
        });
        for _ in 0..4 {
            threads.spawn(|| {
                let mut last_seen = 0;
                while !done.load(Ordering::Acquire) {
                    let floor = returned.load(Ordering::Acquire);
                    let (head, seen) = rt.block_on(counter_at_head(&fx.git, fx.app));
                    assert!(seen >= floor, "read {seen} at {head} after the write of {floor} returned");
                    assert!(seen >= last_seen, "read {seen} after having read {last_seen}");
                    last_seen = seen;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let (_, last) = rt.block_on(counter_at_head(&fx.git, fx.app));
    assert_eq!(last, WRITES);
    assert!(reads.load(Ordering::Relaxed) > 0, "the readers ran");
}
