//! Composition: the one place that chooses adapters (SQLite or Postgres
//! store, libgit2 repositories, system clock, ...) from the settings and
//! builds the core. Both binaries call [`open`]; a Postgres URL must be
//! opened from within their multi-threaded Tokio runtime, which also runs
//! the job listener that wakes this process's workers for jobs enqueued by
//! other processes. The gate sandbox (`CONMAN_GATE_SANDBOX`) is resolved
//! here once; a configuration that cannot be honoured makes every gate run
//! fail to start and is reported in [`Installation::gate_sandbox_error`],
//! which the commands that run jobs refuse to start with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use conman_core::ports::crypto::SecretCipher;
use conman_core::ports::runner::JobWakeup as _;
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::ports::EnvelopeCipher;
use conman_core::services::{Conman, Ports};
use conman_git::GitRepos;
use conman_store_pg::{JobListener, JobNotice, PgStore};
use conman_store_sqlite::SqliteStore;
use rand::RngCore;

use crate::compute::BlockingCompute;
use crate::config::{DatabaseTarget, Settings};
use crate::runtime::{GateSandbox, NotifyWakeup, ProcessRunner};

/// An opened installation.
pub struct Installation {
    /// The services.
    pub conman: Arc<Conman>,
    /// The master key for secrets (used by runtime profiles).
    pub master_key: MasterKey,
    /// Where the master key came from.
    pub master_key_source: MasterKeySource,
    /// Wakes this process's job workers on enqueue (pass it to
    /// [`run_workers`](crate::runtime::run_workers)).
    pub wakeup: Arc<NotifyWakeup>,
    /// On Postgres, when this process runs workers: turns jobs enqueued and
    /// cancels requested by any process (`LISTEN/NOTIFY`) into `wakeup`
    /// calls. Stops when dropped.
    pub job_listener: Option<JobListener>,
    /// How gate commands run here.
    pub gate_sandbox: GateSandbox,
    /// Why the configured sandbox cannot be honoured (then `gate_sandbox`
    /// is `Refused` with it): the server and `conman worker` refuse to start.
    pub gate_sandbox_error: Option<String>,
}

/// A 256-bit master key. Its bytes are never logged.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses a key written as 64 hex characters, surrounding whitespace
    /// ignored: the form of `CONMAN_SECRETS_MASTER_KEY`, the key file and a
    /// rotation's new key. A bad key is a `validation_error` on `field`.
    pub fn parse(text: &str, field: &str) -> Result<MasterKey, conman_core::Error> {
        conman_core::ports::parse_master_key(text.trim()).map(MasterKey).ok_or_else(|| {
            conman_core::Error::invalid(field, "invalid_key", "the master key must be 64 hex characters (32 bytes)")
        })
    }
}

/// The secrets adapter for `key`: the core's envelope encryption. The one
/// place that chooses it, for the key an installation opens with and for a
/// rotation's new key alike.
pub fn secrets_cipher(key: &MasterKey) -> Arc<dyn SecretCipher> {
    Arc::new(EnvelopeCipher::new(key.0))
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `CONMAN_SECRETS_MASTER_KEY`.
    Environment,
    /// The key file in the data directory.
    File(PathBuf),
    /// Generated now into the key file.
    Generated(PathBuf),
}

/// Opens (creating on first use) the installation the settings describe:
/// data directory, store (migrated), repositories and master key.
pub fn open(settings: &Settings) -> anyhow::Result<Installation> {
    open_with_hasher(settings, Argon2Hasher::recommended())
}

/// [`open`] with a chosen password-hashing cost (tests use a cheap one).
pub fn open_with_hasher(settings: &Settings, hasher: Argon2Hasher) -> anyhow::Result<Installation> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let (master_key, master_key_source) = master_key(settings)?;
    let wakeup = Arc::new(NotifyWakeup::new());
    let (store, job_listener): (Arc<dyn conman_core::ports::Store>, _) = match settings.database()? {
        DatabaseTarget::Sqlite(path) => {
            let store = SqliteStore::open(&path).map_err(|e| anyhow::anyhow!("opening {}: {e:?}", path.display()))?;
            (Arc::new(store), None)
        }
        DatabaseTarget::Postgres(url) => {
            let store = open_postgres(&url)?;
            let wakeup = Arc::clone(&wakeup);
            let listener = (settings.workers > 0).then(|| {
                store.listen_for_job_notices(move |notice| match notice {
                    JobNotice::Runnable => wakeup.job_enqueued(),
                    JobNotice::CancelRequested(job) => wakeup.cancel_requested(job),
                })
            });
            (Arc::new(store), listener)
        }
    };
    let git = GitRepos::new(settings.data_dir.join("repos")).map_err(|e| anyhow::anyhow!("repositories: {e:?}"))?;
    let (gate_sandbox, gate_sandbox_error) =
        match GateSandbox::resolve(settings.gate_sandbox, settings.gate_user.as_deref(), &settings.data_dir) {
            Ok(sandbox) => (sandbox, None),
            Err(why) => (GateSandbox::Refused(format!("the gate sandbox is misconfigured: {why}")), Some(why)),
        };
    let ports = Ports {
        store,
        git: Arc::new(git.clone()),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Ids),
        passwords: Arc::new(hasher),
        tokens: Arc::new(OsRandomTokens),
    };
    let conman = Arc::new(
        Conman::new(ports, settings.core_config())
            .with_job_runtime(Arc::new(ProcessRunner::new(git, gate_sandbox.clone())), wakeup.clone())
            .with_secrets(secrets_cipher(&master_key))
            .with_compute(Arc::new(BlockingCompute)),
    );
    Ok(Installation { conman, master_key, master_key_source, wakeup, job_listener, gate_sandbox, gate_sandbox_error })
}

/// Connects to Postgres (migrating it) from this sync function. The pool
/// must live on the runtime that will use it, so this blocks the calling
/// worker thread of the binaries' multi-threaded runtime (`block_in_place`)
/// rather than starting a runtime of its own.
fn open_postgres(url: &str) -> anyhow::Result<PgStore> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("opening a Postgres store needs a Tokio runtime"))?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        bail!("opening a Postgres store needs Tokio's multi-threaded runtime");
    }
    tokio::task::block_in_place(|| handle.block_on(PgStore::connect(url)))
        .map_err(|e| anyhow::anyhow!("opening the Postgres database of CONMAN_DATABASE_URL: {e:?}"))
}

fn master_key(settings: &Settings) -> anyhow::Result<(MasterKey, MasterKeySource)> {
    if let Some(hex_key) = settings.secrets_master_key.as_deref().filter(|k| !k.is_empty()) {
        return Ok((parse_key(hex_key).context("CONMAN_SECRETS_MASTER_KEY")?, MasterKeySource::Environment));
    }
    let path = settings.data_dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((parse_key(text.trim()).with_context(|| path.display().to_string())?, MasterKeySource::File(path)));
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    write_private(&path, &hex::encode(bytes))?;
    Ok((MasterKey(bytes), MasterKeySource::Generated(path)))
}

fn parse_key(hex_key: &str) -> anyhow::Result<MasterKey> {
    MasterKey::parse(hex_key, "master_key").map_err(|e| anyhow::anyhow!("{e}"))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
