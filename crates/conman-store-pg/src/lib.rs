//! Conman's metadata store on Postgres: the [`Store`](conman_core::ports::Store)
//! port over a `sqlx` connection pool, for installations whose several
//! `conman-server` and `conman worker` processes share one database. It
//! behaves exactly like the SQLite store; the shared conformance suite
//! (`conman_core::conformance`) is the proof.
//!
//! Invariant: this crate is the only place that knows SQL for Postgres, and
//! it holds no rule of the product — it stores what the core decides,
//! refusing only what the port documents (stale versions, taken unique
//! keys, missing entities). Every `sqlx` error is mapped here to a core
//! [`Error`]; nothing above sees a `sqlx` type.
//!
//! Transactions: a unit of work is one `READ COMMITTED` transaction.
//! Compare-and-set updates (`WHERE version = new - 1`) are safe there: a
//! concurrent update of the same row makes ours wait, re-check, change
//! nothing and report `conflict`. Paged listings read their count and their
//! rows in one `REPEATABLE READ READ ONLY` snapshot.
//!
//! The audit chain across processes: appends are serialised by a
//! transaction-scoped advisory lock, `pg_advisory_xact_lock(AUDIT_LOCK_CLASS,
//! <oid of this schema's audit table>)`, taken inside [`Store::commit`]
//! by the unit's last message, after its mutations: that message — one
//! simple query sent after the last mutation, with the entries written in
//! it as literals (`literal.rs`) — stages the entries without a lock, runs
//! `audit_chain_pending`, which takes the lock, reads the last record and
//! chains the staged entries after it, and then `COMMIT`s. A unit with no
//! mutation (an audited workspace write, say) is that one message alone,
//! `BEGIN` included. The lock is held until the commit, so the next writer
//! reads the record this one appended: one gap-free chain however many
//! processes write; and since it is taken and released by one message, no
//! client round trip or process wake-up happens while it is held. Chosen over
//! `LOCK TABLE audit IN EXCLUSIVE MODE` because an advisory lock never
//! blocks readers, `VACUUM` or anything else that touches the table; keying
//! it by the table's oid keeps installations in different schemas of one
//! database (and parallel tests) from contending. Only units carrying audit
//! entries take it, and a writer holding it waits for nothing else, so it
//! cannot deadlock with row locks.
//!
//! Wake-ups across processes: a unit that makes a job runnable also
//! `pg_notify`s the store's job channel in its transaction, and
//! [`PgStore::listen_for_jobs`] turns those notifications into calls back
//! in any process (see [`JobListener`]); [`PgStore::listen_for_job_notices`]
//! also reports the cancel notifications a unit requesting a running job's
//! cancel sends ([`JobNotice`]); polling remains the fallback.
//!
//! Schemas: [`PgStore::connect`] uses the URL's default `search_path`;
//! [`PgStore::connect_with`] can pin every pooled connection to one schema
//! (created if missing), which is how one database holds isolated
//! installations and each test its own scratch schema.
//!
//! [`Store::commit`]: conman_core::ports::Store::commit

#![deny(missing_docs)]

mod apps;
mod audit;
mod changesets;
mod codec;
mod deployments;
mod drift;
mod freezes;
mod intents;
mod jobs;
mod literal;
mod migrate;
mod notify;
mod outbox;
mod profiles;
mod releases;
#[cfg(feature = "scratch")]
pub mod scratch;
mod transaction;
mod unit_of_work;
mod users;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use conman_core::Error;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor as _;

pub use audit::AUDIT_LOCK_CLASS;
pub use migrate::SCHEMA_VERSION;
pub use notify::{JobListener, JobNotice};

/// A pooled connection idle at least this long is pinged before it is handed
/// out (a dead one is replaced); one back from use more recently passed the
/// ping sqlx sends on every return to the pool.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The URL schemes this store accepts.
pub const URL_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// How a [`PgStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?params]`.
    pub url: String,
    /// The schema every connection uses (`search_path`), created if missing;
    /// `None` keeps the server's default search path (usually `public`).
    pub schema: Option<String>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    /// Default options for `url`: default schema, 10 connections, 30 s wait.
    pub fn new(url: &str) -> Self {
        PgOptions { url: url.to_owned(), schema: None, max_connections: 10, acquire_timeout: Duration::from_secs(30) }
    }
}

/// The Postgres store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    schema: Option<String>,
    /// Where units that make a job runnable notify (see [`JobListener`]).
    job_channel: Arc<str>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` and applies the migrations this
    /// binary embeds. Refuses a database whose schema is newer than this
    /// binary knows.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(&PgOptions::new(url)).await
    }

    /// [`PgStore::connect`] with every connection pinned to `schema`
    /// (created if missing).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, Error> {
        Self::connect_with(&PgOptions { schema: Some(schema.to_owned()), ..PgOptions::new(url) }).await
    }

    /// Connects as `options` say and applies the embedded migrations.
    pub async fn connect_with(options: &PgOptions) -> Result<Self, Error> {
        let connect = connect_options(&options.url, options.schema.as_deref())?;
        if let Some(schema) = &options.schema {
            create_schema(&connect, schema).await?;
        }
        let mut pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it hands out (one round trip per
            // acquire, several per job on a busy worker) besides the ping it
            // sends whenever a connection comes back. Only a connection that
            // sat idle for a while can have died unseen, so only it is pinged.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        if let Some(schema) = &options.schema {
            let set_path: Arc<str> = format!("SET search_path TO {}", quote_ident(schema)).into();
            pool = pool.after_connect(move |conn, _meta| {
                let set_path = Arc::clone(&set_path);
                Box::pin(async move {
                    conn.execute(&*set_path).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(connect).await.map_err(connect_error)?;
        migrate::run(&pool).await?;
        let job_channel = notify::job_channel(options.schema.as_deref()).into();
        Ok(PgStore { pool, schema: options.schema.clone(), job_channel })
    }

    /// The schema the connections are pinned to, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Closes every pooled connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Parses `url` and names the connections after Conman (and the schema),
/// so operators can tell them apart in `pg_stat_activity`.
fn connect_options(url: &str, schema: Option<&str>) -> Result<PgConnectOptions, Error> {
    if !URL_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return Err(Error::invalid("database_url", "invalid", "a Postgres URL starts with postgres://"));
    }
    if let Some(schema) = schema {
        check_schema_name(schema)?;
    }
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| Error::invalid("database_url", "invalid", format!("not a usable Postgres URL: {e}")))?;
    let name = match schema {
        Some(schema) => format!("conman/{schema}"),
        None => "conman".to_owned(),
    };
    Ok(options.application_name(&name))
}

/// Schema names are plain lowercase identifiers, so they need no escaping
/// beyond quoting and mean the same to every tool.
fn check_schema_name(schema: &str) -> Result<(), Error> {
    let mut chars = schema.chars();
    let valid = schema.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid("schema", "invalid", "a schema name is 1-63 of a-z, 0-9 and _, not starting with a digit"))
    }
}

/// `"name"`, with any `"` doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `schema` if it is missing, on a connection of its own (the pool's
/// connections set a `search_path` that needs the schema to exist).
async fn create_schema(connect: &PgConnectOptions, schema: &str) -> Result<(), Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect_with(connect).await.map_err(connect_error)?;
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
    let created = conn.execute(sql.as_str()).await;
    let _ = conn.close().await;
    match created {
        Ok(_) => Ok(()),
        // Two processes creating it at once: the loser sees a unique violation.
        Err(e) if codec::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot create the schema {schema}: {e}"))),
    }
}

/// A connection failure, without the URL (it may hold a password).
fn connect_error(err: sqlx::Error) -> Error {
    Error::internal(format!("cannot connect to the Postgres database: {err}"))
}
