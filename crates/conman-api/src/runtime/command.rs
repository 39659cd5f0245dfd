//! [`ProcessRunner`]: the [`CommandRunner`] port on real processes.
//!
//! One run: a fresh temporary directory holding the exported tree of the
//! commit, `/bin/sh -c <command>` started there with exactly the given
//! environment plus `HOME`/`PWD` (the directory), stdin closed, stdout and
//! stderr streamed line by line into the job log, in a process group of its
//! own.
//!
//! Invariants:
//! - nothing of the server's environment reaches the command;
//! - whatever ends the run — the shell exiting, the timeout, or the future
//!   being dropped (cancellation, worker shutdown) — the whole process group
//!   is killed with `SIGKILL`, so a background child never outlives its gate;
//!   then the pipes are drained (bounded) so no straggler keeps writing;
//! - output is read lossily (invalid UTF-8 and NUL become U+FFFD) with a cap
//!   per line, so binary junk or a 10 MiB line cannot break or bloat it;
//! - "could not start" answers never carry internal paths.
//!
//! Limit: a process that leaves the group on purpose (`setsid`) escapes the
//! kill; gate commands run with the server's privileges anyway (see
//! `docs/decisions/0002-jobs.md`).

use std::process::Stdio;
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

/// The shell gate commands run in.
const SHELL: &str = "/bin/sh";
/// How long to keep reading the pipes once the process group is dead (a
/// process that left the group could hold them open forever).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Bytes kept of one line; the core cuts longer lines and marks them.
const LINE_CAP: usize = JOB_LOG_MAX_LINE_BYTES + 1;

/// Runs gate commands as child processes of this one.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    git: GitRepos,
}

impl ProcessRunner {
    /// A runner exporting trees from `git`.
    pub fn new(git: GitRepos) -> Self {
        ProcessRunner { git }
    }
}

#[async_trait]
impl CommandRunner for ProcessRunner {
    async fn run(&self, spec: CommandSpec, log: &dyn LogSink) -> Result<CommandOutcome, Error> {
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
        let outcome = run_in(dir.path(), &spec, log).await;
        // Removing a large tree is blocking file-system work.
        let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        outcome
    }
}

/// Runs `spec` in `dir` (already holding the tree).
async fn run_in(dir: &std::path::Path, spec: &CommandSpec, log: &dyn LogSink) -> Result<CommandOutcome, Error> {
    let mut command = Command::new(SHELL);
    command
        .arg("-c")
        .arg(&spec.command)
        .env_clear()
        .envs(&spec.env)
        .env("HOME", dir)
        .env("PWD", dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ok(CommandOutcome::FailedToStart { reason: format!("could not start {SHELL}: {}", e.kind()) })
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
