//! `conman keys rotate`: manual rotation of the secrets master key (SPEC
//! §2.6, operators). The new key (64 hex characters) is read from
//! `--new-key-file PATH` or stdin, never from the command line. Every sealed
//! value's data key is re-wrapped under it in one unit of work
//! (`rotate_master_key`); the value ciphertexts are untouched.
//!
//! When the current key came from `<data dir>/master.key`, the new key is
//! written there only after the rotation committed: the old file is kept as
//! `master.key.old` and the new one replaces `master.key` by an atomic
//! rename, both files `0600`. When it came from `CONMAN_SECRETS_MASTER_KEY`,
//! nothing is written and the operator sets the variable. Either way every
//! server and worker must be restarted with the new key: their start-up
//! check refuses the old one.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use conman_api::compose::{secrets_cipher, MasterKey, MasterKeySource};
use conman_api::config::Settings;
use conman_core::services::RotationReport;
use conman_core::Error;
use serde::Serialize;

use super::profiles::SecretResult;
use crate::output::{CoreError, Output};
use crate::session::{self, SessionArgs};

/// `conman keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCmd {
    /// Re-wrap every secret under a new master key (operators), then restart
    /// every server and worker with it.
    Rotate {
        /// File holding the new key (64 hex characters); `-` or absent reads stdin.
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
}

/// What `keys rotate --json` prints: the rotation report and where the new
/// key was written, if anywhere.
#[derive(Debug, Serialize)]
struct RotationDto {
    #[serde(flatten)]
    report: RotationReport,
    /// `<data dir>/master.key` when the new key was written there.
    key_file: Option<PathBuf>,
    /// The previous key file, kept.
    old_key_file: Option<PathBuf>,
}

impl KeysCmd {
    pub(crate) async fn run(self, settings: &Settings, args: &SessionArgs, out: &Output) -> anyhow::Result<()> {
        match self {
            KeysCmd::Rotate { new_key_file } => rotate(settings, args, out, new_key_file.as_deref()).await,
        }
    }
}

async fn rotate(settings: &Settings, args: &SessionArgs, out: &Output, file: Option<&Path>) -> anyhow::Result<()> {
    let new_key = read_new_key(file)?;
    let (s, source) = session::open_with_key_source(settings, args).await?;
    let cipher = secrets_cipher(&new_key);
    let report = match s.conman.rotate_master_key(&s.actor, cipher).await {
        Err(Error::Conflict { message, .. }) => {
            return Err(anyhow::Error::new(CoreError(Error::conflict(format!(
                "refusing to rotate with this current key: {message}"
            )))))
        }
        other => other.secret()?,
    };
    // The rotation committed: from now on only the new key opens secrets.
    let (key_file, old_key_file) = match &source {
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => {
            let old = replace_key_file(path, new_key.bytes()).map_err(|e| {
                e.context(format!(
                    "the rotation committed, but writing the new key to {} failed: put the new key there \
                     (or in CONMAN_SECRETS_MASTER_KEY) before restarting anything",
                    path.display()
                ))
            })?;
            (Some(path.clone()), Some(old))
        }
        MasterKeySource::Environment => (None, None),
    };
    let restart = match &key_file {
        Some(path) => format!(
            "the new key is in {} (the old one kept in {}); restart every server and worker of this \
             installation now: processes still holding the old key can no longer decrypt secrets",
            path.display(),
            old_key_file.as_deref().unwrap_or(path).display()
        ),
        None => "set CONMAN_SECRETS_MASTER_KEY to the new key and restart every server and worker of this \
                 installation now: processes still holding the old key can no longer decrypt secrets, and the \
                 old key is refused at start"
            .to_owned(),
    };
    let dto = RotationDto { report, key_file, old_key_file };
    out.show(&dto, |d| {
        format!(
            "re-wrapped {} secret value(s) from key {} to key {}\n{restart}",
            d.report.rewrapped, d.report.from_key_id, d.report.to_key_id
        )
    });
    if out.json {
        eprintln!("{restart}");
    }
    Ok(())
}

/// Reads and parses the new key (as the server parses keys).
fn read_new_key(file: Option<&Path>) -> anyhow::Result<MasterKey> {
    let text = match file {
        Some(path) if path != Path::new("-") => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
        }
        _ => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                eprint!("new master key (64 hex characters; input is visible): ");
            }
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
    };
    MasterKey::parse(&text, "key").map_err(|e| anyhow::Error::new(CoreError(e)))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keeps `path` as `<path>.old` and puts `key` in `path`, each written to a
/// temporary file (0600) and renamed into place; answers the old file's path.
fn replace_key_file(path: &Path, key: &[u8; 32]) -> anyhow::Result<PathBuf> {
    let old = with_suffix(path, ".old");
    let previous = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    write_atomically(&old, &previous)?;
    write_atomically(path, to_hex(key).as_bytes())?;
    Ok(old)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `contents` to a fresh private temporary file beside `path`, syncs
/// it, renames it over `path` and syncs the directory.
fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("writing {}: {e}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_keeps_the_old_file_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "aa".repeat(32)).unwrap();
        let old = replace_key_file(&path, &[0x11; 32]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "11".repeat(32));
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "aa".repeat(32));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for p in [&path, &old] {
                assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file is left");
    }
}
