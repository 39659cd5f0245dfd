//! [`ProcessRunner`]: the [`CommandRunner`] port on real processes.
//!
//! One run: a fresh private (`0700`) temporary directory, outside the data
//! directory, holding the exported tree of the commit; `/bin/sh -c
//! <command>` started there, isolated as the [`GateSandbox`] resolved at
//! start says (`docs/decisions/0012-gate-sandbox.md`), with exactly the
//! given environment plus `HOME`/`PWD` (the directory), stdin closed,
//! stdout and stderr streamed line by line into the job log, in a process
//! group of its own.
//!
//! Invariants:
//! - nothing of the server's environment reaches the command, nor any
//!   process the command can see: in bubblewrap the environment is that of
//!   `bwrap` itself (pid 1 of the sandbox), so `bwrap` is started with the
//!   gate's environment only;
//! - no file descriptor of the server but the three standard ones reaches
//!   the command: every descriptor from 3 up is marked close-on-exec just
//!   before the spawn (descriptors opened by C libraries without the flag
//!   included);
//! - the command never runs in the server's working directory, and never
//!   when the sandbox was refused: the run then fails to start with the
//!   reason, which names the fixes;
//! - `bwrap`: the command sees the tree at `/gate`, read-only system
//!   directories, its own `/proc`, `/dev` and `/tmp`, no network, no other
//!   process of the machine, and never the data directory; `--die-with-parent`
//!   ends it with the worker, even one killed with `SIGKILL`;
//! - gate user: the command runs with that uid/gid and no supplementary
//!   groups; the tree is handed over to it;
//! - whatever ends the run — the shell exiting, the timeout, or the future
//!   being dropped (cancellation, worker shutdown) — the whole process group
//!   is killed with `SIGKILL` (in bubblewrap: `bwrap`, whose death takes the
//!   sandbox's every process with it), so a background child never outlives
//!   its gate; then the pipes are drained (bounded) so no straggler keeps
//!   writing;
//! - output is read lossily (invalid UTF-8 and NUL become U+FFFD) with a cap
//!   per line, so binary junk or a 10 MiB line cannot break or bloat it;
//! - "could not start" answers never carry internal paths.
//!
//! Limits: without bubblewrap, a process that leaves the group on purpose
//! (`setsid`) escapes the kill; a descriptor opened without close-on-exec by
//! another thread between the marking and the spawn would still be
//! inherited (Rust, SQLite, libgit2 and the Postgres driver all open theirs
//! close-on-exec).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conman_core::domain::job::{LogStream, JOB_LOG_MAX_LINE_BYTES};
use conman_core::ports::runner::{CommandOutcome, CommandRunner, CommandSpec, LogSink};
use conman_core::Error;
use conman_git::GitRepos;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Command;

use super::sandbox::{GateSandbox, SANDBOX_WORKDIR};

/// The shell gate commands run in.
pub(super) const SHELL: &str = "/bin/sh";
/// How long to keep reading the pipes once the process group is dead (a
/// process that left the group could hold them open forever).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Bytes kept of one line; the core cuts longer lines and marks them.
const LINE_CAP: usize = JOB_LOG_MAX_LINE_BYTES + 1;

/// Runs gate commands as child processes of this one.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    git: GitRepos,
    sandbox: Arc<GateSandbox>,
}

impl ProcessRunner {
    /// A runner exporting trees from `git` and isolating commands as
    /// `sandbox` says.
    pub fn new(git: GitRepos, sandbox: GateSandbox) -> Self {
        ProcessRunner { git, sandbox: Arc::new(sandbox) }
    }
}

#[async_trait]
impl CommandRunner for ProcessRunner {
    async fn run(&self, spec: CommandSpec, log: &dyn LogSink) -> Result<CommandOutcome, Error> {
        if let GateSandbox::Refused(reason) = &*self.sandbox {
            return Ok(CommandOutcome::FailedToStart { reason: reason.clone() });
        }
        // tempfile creates it 0700.
        let dir = tempfile::Builder::new()
            .prefix("conman-gate-")
            .tempdir()
            .map_err(|e| Error::internal(format_args!("creating a gate working directory: {e}")))?;
        match self.git.export_tree(spec.app_id, &spec.commit, dir.path()).await {
            Ok(()) => {}
            Err(Error::NotFound(what)) => {
                return Ok(CommandOutcome::FailedToStart { reason: format!("the {what} under test does not exist") })
            }
            Err(e) => return Err(e),
        }
        if let GateSandbox::User(user) = &*self.sandbox {
            let (root, (uid, gid)) = (dir.path().to_owned(), (user.uid, user.gid));
            tokio::task::spawn_blocking(move || hand_over(&root, uid, gid))
                .await
                .map_err(|e| Error::internal(format_args!("handing the gate directory over: {e}")))?
                .map_err(|e| Error::internal(format_args!("handing the gate directory over: {e}")))?;
        }
        let outcome = run_in(dir.path(), &self.sandbox, &spec, log).await;
        // Removing a large tree is blocking file-system work.
        let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        outcome
    }
}

/// Gives `root` and everything under it to `uid`:`gid`.
fn hand_over(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(root)?.is_dir() {
        for entry in std::fs::read_dir(root)? {
            hand_over(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The command for `spec` in `dir` (already holding the tree), isolated as
/// `sandbox` says (never `Refused`).
fn command_for(dir: &Path, sandbox: &GateSandbox, spec: &CommandSpec) -> Command {
    let (mut command, workdir) = match sandbox {
        GateSandbox::Bubblewrap(bwrap) => {
            let mut command = Command::new(bwrap.program());
            command.args(bwrap.args(dir)).arg("--").arg(SHELL);
            (command, Path::new(SANDBOX_WORKDIR))
        }
        _ => (Command::new(SHELL), dir),
    };
    command
        .arg("-c")
        .arg(&spec.command)
        // In bubblewrap this is `bwrap`'s own environment, which it passes on.
        .env_clear()
        .envs(&spec.env)
        .env("HOME", workdir)
        .env("PWD", workdir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let GateSandbox::User(user) = sandbox {
        // std drops the supplementary groups when switching from root.
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// Runs `spec` in `dir` (already holding the tree).
async fn run_in(
    dir: &Path,
    sandbox: &GateSandbox,
    spec: &CommandSpec,
    log: &dyn LogSink,
) -> Result<CommandOutcome, Error> {
    let mut command = command_for(dir, sandbox, spec);
    // Whatever this process holds open (inherited from its parent, or
    // opened by a C library without the flag) closes at the child's exec.
    close_fds::set_fds_cloexec_threadsafe(3, &[]);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let what = match sandbox {
                GateSandbox::Bubblewrap(_) => "bubblewrap",
                _ => SHELL,
            };
            return Ok(CommandOutcome::FailedToStart { reason: format!("could not start {what}: {}", e.kind()) });
        }
    };
    // `process_group(0)`: the group id is the shell's pid.
    let mut group = GroupKiller(child.id().and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let output = async {
        tokio::join!(pump(stdout, LogStream::Stdout, log), pump(stderr, LogStream::Stderr, log));
    };
    tokio::pin!(output);
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut output_done = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = &mut output, if !output_done => output_done = true,
            () = &mut deadline => break None,
        }
    };
    // Kills the timed-out command, or whatever the exited shell left behind.
    group.kill();
    if status.is_none() {
        let _ = child.wait().await;
    }
    if !output_done && tokio::time::timeout(DRAIN_LIMIT, &mut output).await.is_err() {
        log.line(LogStream::System, "output still open after the process group was killed; the rest is dropped".into())
            .await;
    }
    match status {
        Some(Ok(status)) => Ok(CommandOutcome::Exited { code: status.code() }),
        Some(Err(e)) => Err(Error::internal(format_args!("waiting for the gate command: {e}"))),
        None => Ok(CommandOutcome::TimedOut),
    }
}

/// Kills a process group once: explicitly, or when dropped (the run's
/// future was dropped mid-way).
struct GroupKiller(Option<Pid>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // ESRCH: every member is gone already.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Streams `pipe` to `log` line by line until it closes.
async fn pump<R: AsyncRead + Unpin>(pipe: Option<R>, stream: LogStream, log: &dyn LogSink) {
    let Some(pipe) = pipe else { return };
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let newline = chunk.iter().position(|&b| b == b'\n');
        let end = newline.unwrap_or(chunk.len());
        let room = LINE_CAP.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..end.min(room)]);
        reader.consume(end + usize::from(newline.is_some()));
        if newline.is_some() {
            emit(&mut line, stream, log).await;
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, log).await;
    }
}

/// Sends the collected bytes as one line and clears them.
async fn emit(line: &mut Vec<u8>, stream: LogStream, log: &dyn LogSink) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = String::from_utf8_lossy(line).replace('\0', "\u{FFFD}");
    line.clear();
    log.line(stream, text).await;
}
