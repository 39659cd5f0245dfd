//! Conversions between SQLite values and core values, and SQLite errors
//! to core errors.
//!
//! Invariant: decoding never panics — a value the schema should not hold
//! (a malformed id, timestamp or JSON) becomes `Error::Internal`; a UNIQUE
//! violation becomes `Error::Conflict` naming the field (a second open
//! changeset of a workspace names the reason `open_changeset_exists`), a
//! foreign-key violation `Error::Conflict` too, and every other
//! SQLite failure `Error::Internal` with the cause for the logs.

use conman_core::domain::{format_timestamp, Timestamp};
use conman_core::ports::store::{ConflictReason, Page, PageRequest, Record};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{ffi, Connection, ErrorCode, Params, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// `rusqlite` results into core results.
pub(crate) trait Db<T> {
    /// Maps the error with [`db_error`].
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, Error> {
        self.map_err(db_error)
    }
}

/// Maps a SQLite error to the core error the port documents.
pub(crate) fn db_error(err: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(cause, Some(message)) = &err {
        if cause.code == ErrorCode::ConstraintViolation {
            match cause.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => return unique_conflict(message),
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return ConflictReason::MissingReference.into(),
                _ => {}
            }
        }
    }
    Error::internal(format!("sqlite: {err}"))
}

/// `UNIQUE constraint failed: users.email` → [`ConflictReason::Taken`] of a
/// user's `email`; the partial index `changesets_one_open_per_workspace` →
/// [`ConflictReason::OpenChangesetExists`]; the partial index
/// `deployments_one_active_per_environment` → a deployment's `environment`.
fn unique_conflict(message: &str) -> Error {
    let columns = message.rsplit(": ").next().unwrap_or_default();
    let (table, field) = columns.rsplit(", ").next().and_then(|c| c.split_once('.')).unwrap_or(("", "key"));
    if (table, field) == ("changesets", "workspace_id") {
        return ConflictReason::OpenChangesetExists.into();
    }
    if (table, field) == ("deployments", "environment_id") {
        // The partial index of active deployments per environment.
        return ConflictReason::Taken { record: Record::Deployment, field: "environment".to_owned() }.into();
    }
    let record = match table {
        "users" => Record::User,
        "credentials" => Record::Token,
        "password_resets" => Record::PasswordReset,
        "apps" => Record::App,
        "memberships" => Record::Membership,
        "invites" => Record::Invite,
        "workspaces" => Record::Workspace,
        "outbox" => Record::OutboxMessage,
        "jobs" => Record::Job,
        "job_logs" => Record::JobLogLine,
        "changesets" => Record::Changeset,
        "changeset_revisions" => Record::ChangesetRevision,
        "changeset_reviews" => Record::Review,
        "changeset_comments" => Record::Comment,
        "runtime_profiles" => Record::RuntimeProfile,
        "profile_revisions" => Record::ProfileRevision,
        "secrets" => Record::Secret,
        "installation_meta" => Record::InstallationSetting,
        "environments" => Record::Environment,
        "changeset_overrides" => Record::ChangesetOverride,
        "audit" => Record::AuditEvent,
        "releases" => Record::Release,
        "deployments" => Record::Deployment,
        "freeze_windows" => Record::FreezeWindow,
        "environment_validations" => Record::EnvironmentValidation,
        "migration_executions" => Record::MigrationExecution,
        _ => Record::Other,
    };
    ConflictReason::Taken { record, field: field.to_owned() }.into()
}

/// The rows an `INSERT ... ON CONFLICT (id) DO NOTHING` of a `record`
/// wrote: none means its id is taken. Every store reports a duplicate id
/// before any other taken key (SQLite checks a table's unique indexes
/// newest first, so without the conflict target a row repeated whole would
/// name its last unique column instead).
pub(crate) fn inserted(rows: usize, record: Record) -> Result<(), Error> {
    if rows == 0 {
        return Err(ConflictReason::Taken { record, field: "id".to_owned() }.into());
    }
    Ok(())
}

/// Text of an id.
pub(crate) fn id(uuid: Uuid) -> String {
    uuid.hyphenated().to_string()
}

/// Text of an optional id.
pub(crate) fn opt_id(uuid: Option<Uuid>) -> Option<String> {
    uuid.map(id)
}

/// Text of a timestamp.
pub(crate) fn ts(t: &Timestamp) -> String {
    format_timestamp(t)
}

/// Text of an optional timestamp.
pub(crate) fn opt_ts(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(format_timestamp)
}

/// The wire name of a unit-like enum variant (`app_admin`, `session`, ...).
pub(crate) fn name_of<T: Serialize>(value: &T) -> Result<String, Error> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        other => Err(Error::internal(format!("enum value is not a name: {other:?}"))),
    }
}

/// JSON text of a value.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot encode JSON: {e}")))
}

/// `0`/`1` of a flag.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Reads typed columns of one row, naming the column in decoding errors.
pub(crate) struct Cols<'r, 's> {
    row: &'r Row<'s>,
}

impl<'r, 's> Cols<'r, 's> {
    /// Wraps a row.
    pub(crate) fn new(row: &'r Row<'s>) -> Self {
        Cols { row }
    }

    fn bad(&self, i: usize, what: &str, cause: impl std::fmt::Display) -> Error {
        let column = self.row.as_ref().column_name(i).unwrap_or("?").to_owned();
        Error::internal(format!("column {column} does not hold {what}: {cause}"))
    }

    /// A text column.
    pub(crate) fn text(&self, i: usize) -> Result<String, Error> {
        self.row.get(i).map_err(|e| self.bad(i, "text", e))
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, Error> {
        self.row.get(i).map_err(|e| self.bad(i, "text", e))
    }

    /// A BLOB column.
    pub(crate) fn blob(&self, i: usize) -> Result<Vec<u8>, Error> {
        self.row.get(i).map_err(|e| self.bad(i, "bytes", e))
    }

    /// An integer column.
    pub(crate) fn int(&self, i: usize) -> Result<i64, Error> {
        self.row.get(i).map_err(|e| self.bad(i, "an integer", e))
    }

    /// A non-negative integer column of a narrower type (counts, seconds).
    pub(crate) fn count<T: TryFrom<i64>>(&self, i: usize) -> Result<T, Error> {
        let n = self.int(i)?;
        T::try_from(n).map_err(|_| self.bad(i, "a count in range", n))
    }

    /// A `0`/`1` column.
    pub(crate) fn flag(&self, i: usize) -> Result<bool, Error> {
        match self.int(i)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.bad(i, "a flag", n)),
        }
    }

    /// An id column.
    pub(crate) fn id<T: From<Uuid>>(&self, i: usize) -> Result<T, Error> {
        let text = self.text(i)?;
        Uuid::parse_str(&text).map(T::from).map_err(|e| self.bad(i, "a UUID", e))
    }

    /// A nullable id column.
    pub(crate) fn opt_id<T: From<Uuid>>(&self, i: usize) -> Result<Option<T>, Error> {
        match self.opt_text(i)? {
            None => Ok(None),
            Some(text) => Uuid::parse_str(&text).map(|u| Some(T::from(u))).map_err(|e| self.bad(i, "a UUID", e)),
        }
    }

    /// A timestamp column.
    pub(crate) fn ts(&self, i: usize) -> Result<Timestamp, Error> {
        let text = self.text(i)?;
        self.parse_ts(i, &text)
    }

    /// A nullable timestamp column.
    pub(crate) fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>, Error> {
        self.opt_text(i)?.map(|text| self.parse_ts(i, &text)).transpose()
    }

    fn parse_ts(&self, i: usize, text: &str) -> Result<Timestamp, Error> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| self.bad(i, "an RFC 3339 timestamp", e))
    }

    /// A column holding an enum's wire name.
    pub(crate) fn named<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let text = self.text(i)?;
        serde_json::from_value(serde_json::Value::String(text)).map_err(|e| self.bad(i, "a known name", e))
    }

    /// A nullable column holding an enum's wire name.
    pub(crate) fn opt_named<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        self.opt_text(i)?
            .map(|text| {
                serde_json::from_value(serde_json::Value::String(text)).map_err(|e| self.bad(i, "a known name", e))
            })
            .transpose()
    }

    /// A JSON text column.
    pub(crate) fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let text = self.text(i)?;
        serde_json::from_str(&text).map_err(|e| self.bad(i, "JSON", e))
    }

    /// A nullable JSON text column.
    pub(crate) fn opt_json<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        self.opt_text(i)?.map(|text| serde_json::from_str(&text).map_err(|e| self.bad(i, "JSON", e))).transpose()
    }
}

/// Decodes one entity from a row.
pub(crate) type Decode<T> = fn(&Cols<'_, '_>) -> Result<T, Error>;

/// The first row of `sql`, decoded, if any.
pub(crate) fn one<T>(conn: &Connection, sql: &str, params: impl Params, decode: Decode<T>) -> Result<Option<T>, Error> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    match rows.next().db()? {
        Some(row) => decode(&Cols::new(row)).map(Some),
        None => Ok(None),
    }
}

/// Every row of `sql`, decoded.
pub(crate) fn all<T>(conn: &Connection, sql: &str, params: impl Params, decode: Decode<T>) -> Result<Vec<T>, Error> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(decode(&Cols::new(row))?);
    }
    Ok(out)
}

/// True when `sql` yields a row.
pub(crate) fn exists(conn: &Connection, sql: &str, params: impl Params) -> Result<bool, Error> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    stmt.exists(params).db()
}

/// One page of `list_sql` (which must end in `LIMIT ? OFFSET ?`) and the
/// total of `count_sql`, both bound to `params` and read in one snapshot.
pub(crate) fn page<T>(
    conn: &Connection,
    count_sql: &str,
    list_sql: &str,
    params: Vec<Value>,
    page: PageRequest,
    decode: Decode<T>,
) -> Result<Page<T>, Error> {
    if page.page == 0 {
        return Err(Error::invalid("page", "out_of_range", "page must be 1 or more"));
    }
    let snapshot = conn.unchecked_transaction().db()?;
    let total: i64 = {
        let mut stmt = snapshot.prepare_cached(count_sql).db()?;
        stmt.query_row(rusqlite::params_from_iter(&params), |r| r.get(0)).db()?
    };
    let offset =
        i64::try_from(page.offset()).map_err(|_| Error::invalid("page", "out_of_range", "page is too large"))?;
    let mut list_params = params;
    list_params.push(Value::Integer(i64::from(page.limit)));
    list_params.push(Value::Integer(offset));
    let items = all(&snapshot, list_sql, rusqlite::params_from_iter(list_params), decode)?;
    snapshot.finish().db()?;
    Ok(Page { items, total: u64::try_from(total).unwrap_or_default() })
}
