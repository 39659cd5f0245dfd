//! How gate commands are kept away from the installation
//! (`docs/decisions/0012-gate-sandbox.md`): the operator's
//! `CONMAN_GATE_SANDBOX` mode, resolved once at start into a
//! [`GateSandbox`] the [`ProcessRunner`](super::ProcessRunner) obeys.
//!
//! Invariants:
//! - resolution happens once, at start; a run never re-decides its mode;
//! - `bwrap`: the sandbox sees read-only system directories, a curated
//!   `/etc`, its own `/proc`, `/dev` and `/tmp`, and the gate's directory —
//!   never the data directory: a data directory under a bound path is
//!   refused;
//! - `user`: the gate user is resolved to a uid/gid other than root and the
//!   server's own; the server must be root to switch to it; the data
//!   directory is set to mode `0700` and must be owned by the server's user;
//! - the gates' temporary directory never lies inside the data directory;
//! - `auto` without bubblewrap or a gate user resolves to
//!   [`GateSandbox::Refused`]: every gate run then fails to start with a
//!   reason naming the fixes; an explicit mode that cannot be honoured is an
//!   error (the server refuses to start).

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `CONMAN_GATE_SANDBOX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    /// Bubblewrap when installed, else the gate user when
    /// `CONMAN_GATE_USER` is set, else gates are refused.
    Auto,
    /// Bubblewrap (`bwrap`), required.
    Bwrap,
    /// A separate unprivileged user (`CONMAN_GATE_USER`), required.
    User,
    /// No isolation: gates run as the server's user (warned at start).
    None,
}

/// The fixes named whenever gates cannot be isolated.
const FIXES: &str = "install bubblewrap (apt-get install bubblewrap), or set CONMAN_GATE_USER to an \
                     unprivileged user (the server must run as root), or set CONMAN_GATE_SANDBOX=none \
                     to run gates unisolated as the server's user";

/// Where the gate's directory appears inside the bubblewrap sandbox (its
/// `HOME`, `PWD` and working directory).
pub const SANDBOX_WORKDIR: &str = "/gate";

/// System directories bound read-only (or recreated as the symlinks they
/// are, on merged-`/usr` systems).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The part of `/etc` a gate sees: users and groups, the dynamic linker,
/// alternatives, TLS roots, time zone, name service switch and hosts.
const ETC_ENTRIES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/os-release",
];

/// How gates run, decided at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateSandbox {
    /// In a bubblewrap sandbox.
    Bubblewrap(Bubblewrap),
    /// As a separate unprivileged user.
    User(GateUser),
    /// As the server's user, unisolated (`CONMAN_GATE_SANDBOX=none`).
    Unsandboxed,
    /// Not at all: each run fails to start with this reason.
    Refused(String),
}

/// A resolved bubblewrap sandbox: the program and its mount arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bubblewrap {
    program: PathBuf,
    mounts: Vec<OsString>,
}

/// A resolved gate user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

impl GateSandbox {
    /// Resolves `mode` for an installation in `data_dir` (which exists).
    /// `Err` is a configuration the server must refuse to start with.
    pub fn resolve(mode: SandboxMode, gate_user: Option<&str>, data_dir: &Path) -> Result<GateSandbox, String> {
        resolve_with(mode, gate_user, data_dir, find_program("bwrap"))
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            GateSandbox::Bubblewrap(b) => format!("gates run in a bubblewrap sandbox ({})", b.program.display()),
            GateSandbox::User(u) => format!("gates run as uid {} gid {}", u.uid, u.gid),
            GateSandbox::Unsandboxed => "CONMAN_GATE_SANDBOX=none: gates run unisolated as the server's user and \
                                         can read the data directory (master key, database, every app's \
                                         repository) and this process's environment"
                .to_owned(),
            GateSandbox::Refused(reason) => format!("every gate run will fail to start: {reason}"),
        }
    }
}

/// [`GateSandbox::resolve`] with `bwrap` the bubblewrap program found (or
/// not) on this machine.
fn resolve_with(
    mode: SandboxMode,
    gate_user: Option<&str>,
    data_dir: &Path,
    bwrap: Option<PathBuf>,
) -> Result<GateSandbox, String> {
    let data_dir =
        data_dir.canonicalize().map_err(|e| format!("resolving the data directory {}: {e}", data_dir.display()))?;
    check_temp_dir(&data_dir)?;
    let gate_user = gate_user.map(str::trim).filter(|u| !u.is_empty());
    let bubblewrap = || {
        bwrap
            .clone()
            .ok_or("bubblewrap (bwrap) is not installed".to_owned())
            .and_then(|program| Bubblewrap::new(program, &data_dir))
    };
    match mode {
        SandboxMode::None => Ok(GateSandbox::Unsandboxed),
        SandboxMode::Bwrap => bubblewrap().map(GateSandbox::Bubblewrap),
        SandboxMode::User => {
            let user = gate_user.ok_or("CONMAN_GATE_SANDBOX=user needs CONMAN_GATE_USER (a user name or uid)")?;
            GateUser::resolve(user, &data_dir).map(GateSandbox::User)
        }
        SandboxMode::Auto => match (bubblewrap(), gate_user) {
            (Ok(bwrap), _) => Ok(GateSandbox::Bubblewrap(bwrap)),
            // The operator named a gate user: it must work.
            (Err(_), Some(user)) => GateUser::resolve(user, &data_dir).map(GateSandbox::User),
            (Err(why), None) => Ok(GateSandbox::Refused(format!("gate commands cannot be isolated ({why}): {FIXES}"))),
        },
    }
}

/// The gates' temporary directories must lie outside the data directory.
fn check_temp_dir(data_dir: &Path) -> Result<(), String> {
    let temp = std::env::temp_dir();
    let temp = temp.canonicalize().unwrap_or(temp);
    if temp.starts_with(data_dir) {
        return Err(format!(
            "the temporary directory {} lies inside the data directory: point TMPDIR elsewhere",
            temp.display()
        ));
    }
    Ok(())
}

impl Bubblewrap {
    /// A sandbox of `program` (`bwrap`), checked to start here, with the
    /// data directory outside every bound path.
    fn new(program: PathBuf, data_dir: &Path) -> Result<Bubblewrap, String> {
        let mut mounts: Vec<OsString> = Vec::new();
        let mut bound = Vec::new();
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(path).map_err(|e| format!("reading the link {dir}: {e}"))?;
                    mounts.extend(["--symlink".into(), target.into_os_string(), (*dir).into()]);
                    bound.push(path.canonicalize().unwrap_or_else(|_| path.to_owned()));
                }
                Ok(meta) if meta.is_dir() => {
                    mounts.extend(["--ro-bind".into(), (*dir).into(), (*dir).into()]);
                    bound.push(path.canonicalize().unwrap_or_else(|_| path.to_owned()));
                }
                _ => {}
            }
        }
        for entry in ETC_ENTRIES {
            let path = Path::new(entry);
            if path.exists() {
                mounts.extend(["--ro-bind".into(), (*entry).into(), (*entry).into()]);
                bound.push(path.canonicalize().unwrap_or_else(|_| path.to_owned()));
            }
        }
        for path in &bound {
            if data_dir.starts_with(path) || path.starts_with(data_dir) {
                return Err(format!(
                    "the data directory {} overlaps {}, which the gate sandbox shows: move the data directory",
                    data_dir.display(),
                    path.display()
                ));
            }
        }
        mounts.extend([
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
            "--tmpfs".into(),
            "/tmp".into(),
        ]);
        let bwrap = Bubblewrap { program, mounts };
        bwrap.check()?;
        Ok(bwrap)
    }

    /// Starts `true` in the sandbox once: bubblewrap may be installed but
    /// unable to create namespaces here (no user namespaces, no privilege).
    fn check(&self) -> Result<(), String> {
        let dir = tempfile::Builder::new()
            .prefix("conman-gate-check-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let mut command = Command::new(&self.program);
        command.args(self.args(dir.path())).arg("--").args([super::command::SHELL, "-c", "true"]);
        let out = command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("running {}: {e}", self.program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("bubblewrap cannot start a sandbox here: {}", stderr.trim()))
        }
    }

    /// The program to spawn.
    pub(super) fn program(&self) -> &Path {
        &self.program
    }

    /// Every argument before `--`: namespaces, mounts, and `dir` as the
    /// working directory at [`SANDBOX_WORKDIR`].
    pub(super) fn args(&self, dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> =
            ["--unshare-all", "--die-with-parent", "--new-session"].into_iter().map(OsString::from).collect();
        args.extend(self.mounts.iter().cloned());
        args.extend([
            "--bind".into(),
            dir.as_os_str().to_owned(),
            SANDBOX_WORKDIR.into(),
            "--chdir".into(),
            SANDBOX_WORKDIR.into(),
        ]);
        args
    }
}

/// `name` (`bwrap`) on the server's `PATH`, else in `/usr/bin`.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

impl GateUser {
    /// Resolves `user` (a name or a uid), checks this process can switch to
    /// it, and closes the data directory to everyone but the server's user.
    fn resolve(user: &str, data_dir: &Path) -> Result<GateUser, String> {
        use nix::unistd::{geteuid, Uid, User};
        let found = match user.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(user),
        };
        let found = found
            .map_err(|e| format!("looking up CONMAN_GATE_USER {user:?}: {e}"))?
            .ok_or_else(|| format!("CONMAN_GATE_USER {user:?} is not a user of this system"))?;
        let me = geteuid();
        if found.uid.is_root() || found.uid == me {
            return Err(format!("CONMAN_GATE_USER {user:?} must be an unprivileged user other than the server's own"));
        }
        if !me.is_root() {
            return Err(format!(
                "CONMAN_GATE_USER {user:?}: switching to another user needs the server to run as root"
            ));
        }
        let meta = std::fs::metadata(data_dir).map_err(|e| format!("reading the data directory: {e}"))?;
        if meta.uid() != me.as_raw() {
            return Err(format!(
                "the data directory {} must be owned by the server's user (uid {}) when gates run as CONMAN_GATE_USER",
                data_dir.display(),
                me.as_raw()
            ));
        }
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("setting the data directory to mode 0700: {e}"))?;
        Ok(GateUser { uid: found.uid.as_raw(), gid: found.gid.as_raw() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_without_bubblewrap_or_gate_user_refuses_gates_naming_every_fix() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = resolve_with(SandboxMode::Auto, None, dir.path(), None).unwrap();
        let GateSandbox::Refused(reason) = sandbox else { panic!("{sandbox:?}") };
        for fix in [
            "bubblewrap (bwrap) is not installed",
            "apt-get install bubblewrap",
            "CONMAN_GATE_USER",
            "CONMAN_GATE_SANDBOX=none",
        ] {
            assert!(reason.contains(fix), "{fix:?} missing from {reason:?}");
        }
    }

    #[test]
    fn explicit_modes_that_cannot_be_honoured_are_start_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_with(SandboxMode::Bwrap, None, dir.path(), None).unwrap_err();
        assert!(err.contains("not installed"), "{err}");
        let err = resolve_with(SandboxMode::User, None, dir.path(), None).unwrap_err();
        assert!(err.contains("needs CONMAN_GATE_USER"), "{err}");
        let err = resolve_with(SandboxMode::User, Some("no-such-user-here"), dir.path(), None).unwrap_err();
        assert!(err.contains("is not a user of this system"), "{err}");
        let err = resolve_with(SandboxMode::Auto, Some("root"), dir.path(), None).unwrap_err();
        assert!(err.contains("unprivileged user other than the server's own"), "{err}");
        assert_eq!(resolve_with(SandboxMode::None, None, dir.path(), None), Ok(GateSandbox::Unsandboxed));
    }

    #[test]
    fn a_data_directory_the_sandbox_would_show_is_refused() {
        let err =
            resolve_with(SandboxMode::Bwrap, None, Path::new("/usr/share"), Some("/usr/bin/bwrap".into())).unwrap_err();
        assert!(err.contains("overlaps /usr"), "{err}");
    }
}
