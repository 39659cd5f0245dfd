//! Conversions between Postgres values and core values, Postgres errors to
//! core errors, and the few query helpers every aggregate uses.
//!
//! Invariant: decoding never panics — a value the schema should not hold (an
//! unknown enum name, malformed JSON) becomes `Error::Internal`; a unique
//! violation becomes `Error::Conflict` naming the field, a foreign-key
//! violation a `conflict` too (as on SQLite), and every other Postgres
//! failure `Error::Internal` with the cause for the logs. Timestamps are
//! written truncated to microseconds, the precision the core and SQLite
//! keep, so what is read back equals what was meant.

use chrono::SubsecRound as _;
use conman_core::domain::Timestamp;
use conman_core::ports::store::{ConflictReason, Page, PageRequest, Record};
use conman_core::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::{PgArguments, PgDatabaseError, PgRow};
use sqlx::{PgExecutor, PgPool, Postgres, Row as _};
use uuid::Uuid;

/// A query with its binds.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// `sqlx` results into core results.
pub(crate) trait Db<T> {
    /// Maps the error with [`db_error`].
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, Error> {
        self.map_err(db_error)
    }
}

const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// True when `err` is a unique violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == UNIQUE_VIOLATION)
}

/// Maps a Postgres error to the core error the port documents.
pub(crate) fn db_error(err: sqlx::Error) -> Error {
    if let Some(db) = err.as_database_error() {
        match db.code().as_deref() {
            Some(UNIQUE_VIOLATION) => {
                let detail = db.try_downcast_ref::<PgDatabaseError>().and_then(PgDatabaseError::detail);
                return unique_conflict(db.table().unwrap_or_default(), detail, db.constraint());
            }
            Some(FOREIGN_KEY_VIOLATION) => return ConflictReason::MissingReference.into(),
            _ => {}
        }
    }
    Error::internal(format!("postgres: {err}"))
}

/// A unique violation on `table` → [`ConflictReason::Taken`] of a record's
/// field; the partial index of open changesets per workspace →
/// [`ConflictReason::OpenChangesetExists`].
/// The field comes from the constraint name, `<table>_<field>_key` (the
/// schema names its one two-column key `workspaces_branch_key` so this holds;
/// a primary key is `id`), else from the last column of the error detail
/// (`Key (app_id, branch)=(...) already exists.`), as SQLite's message gives it.
fn unique_conflict(table: &str, detail: Option<&str>, constraint: Option<&str>) -> Error {
    let from_constraint = constraint.and_then(|name| name.strip_prefix(table)?.strip_prefix('_')).and_then(|rest| {
        if rest == "pkey" {
            Some("id")
        } else {
            rest.strip_suffix("_key")
        }
    });
    let from_detail = || {
        let columns = detail?.strip_prefix("Key (")?.split_once(")=")?.0;
        columns.rsplit(", ").next()
    };
    let field = from_constraint.or_else(from_detail).unwrap_or("key");
    if (table, field) == ("changesets", "workspace_id") {
        // The partial unique index of open changesets per workspace.
        return ConflictReason::OpenChangesetExists.into();
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
        "audit" => Record::AuditEvent,
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
        "releases" => Record::Release,
        "deployments" => Record::Deployment,
        "freeze_windows" => Record::FreezeWindow,
        "environment_validations" => Record::EnvironmentValidation,
        "migration_executions" => Record::MigrationExecution,
        _ => Record::Other,
    };
    ConflictReason::Taken { record, field: field.to_owned() }.into()
}

/// A timestamp as stored: truncated to microseconds.
pub(crate) fn ts(t: &Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

/// An optional timestamp as stored.
pub(crate) fn opt_ts(t: &Option<Timestamp>) -> Option<Timestamp> {
    t.as_ref().map(ts)
}

/// The wire name of a unit-like enum variant (`app_admin`, `session`, ...).
pub(crate) fn name_of<T: Serialize>(value: &T) -> Result<String, Error> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        other => Err(Error::internal(format!("enum value is not a name: {other:?}"))),
    }
}

/// JSON text of a value (bound as text and cast with `::json` in SQL).
pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot encode JSON: {e}")))
}

/// Reads typed columns of one row, naming the column in decoding errors.
pub(crate) struct Cols<'r> {
    row: &'r PgRow,
}

impl<'r> Cols<'r> {
    /// Wraps a row.
    pub(crate) fn new(row: &'r PgRow) -> Self {
        Cols { row }
    }

    fn bad(&self, i: usize, what: &str, cause: impl std::fmt::Display) -> Error {
        use sqlx::Column as _;
        let column = self.row.columns().get(i).map_or("?", |c| c.name()).to_owned();
        Error::internal(format!("column {column} does not hold {what}: {cause}"))
    }

    fn get<T>(&self, i: usize, what: &str) -> Result<T, Error>
    where
        T: for<'a> sqlx::Decode<'a, Postgres> + sqlx::Type<Postgres>,
    {
        self.row.try_get(i).map_err(|e| self.bad(i, what, e))
    }

    /// A text column.
    pub(crate) fn text(&self, i: usize) -> Result<String, Error> {
        self.get(i, "text")
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, Error> {
        self.get(i, "text")
    }

    /// A `bigint` column.
    pub(crate) fn int(&self, i: usize) -> Result<i64, Error> {
        self.get(i, "a bigint")
    }

    /// A nullable `bigint` column.
    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        self.get(i, "a bigint")
    }

    /// A `smallint` column.
    pub(crate) fn small(&self, i: usize) -> Result<i16, Error> {
        self.get(i, "a smallint")
    }

    /// A `bytea` column.
    pub(crate) fn bytes(&self, i: usize) -> Result<Vec<u8>, Error> {
        self.get(i, "bytes")
    }

    /// A non-negative `bigint` column of a narrower type (counts, seconds).
    pub(crate) fn count<T: TryFrom<i64>>(&self, i: usize) -> Result<T, Error> {
        let n = self.int(i)?;
        T::try_from(n).map_err(|_| self.bad(i, "a count in range", n))
    }

    /// A `boolean` column.
    pub(crate) fn flag(&self, i: usize) -> Result<bool, Error> {
        self.get(i, "a boolean")
    }

    /// A `uuid` column as a typed id.
    pub(crate) fn id<T: From<Uuid>>(&self, i: usize) -> Result<T, Error> {
        self.get::<Uuid>(i, "a UUID").map(T::from)
    }

    /// A nullable `uuid` column as a typed id.
    pub(crate) fn opt_id<T: From<Uuid>>(&self, i: usize) -> Result<Option<T>, Error> {
        Ok(self.get::<Option<Uuid>>(i, "a UUID")?.map(T::from))
    }

    /// A `timestamptz` column.
    pub(crate) fn ts(&self, i: usize) -> Result<Timestamp, Error> {
        self.get(i, "a timestamp")
    }

    /// A nullable `timestamptz` column.
    pub(crate) fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>, Error> {
        self.get(i, "a timestamp")
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

    /// A `json` column, selected as `column::text`.
    pub(crate) fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let text = self.text(i)?;
        serde_json::from_str(&text).map_err(|e| self.bad(i, "JSON", e))
    }

    /// A nullable `json` column, selected as `column::text`.
    pub(crate) fn opt_json<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        self.opt_text(i)?.map(|text| serde_json::from_str(&text).map_err(|e| self.bad(i, "JSON", e))).transpose()
    }
}

/// Decodes one entity from a row.
pub(crate) type Decode<T> = fn(&Cols<'_>) -> Result<T, Error>;

/// The first row of `query`, decoded, if any.
pub(crate) async fn one<'e, T>(
    ex: impl PgExecutor<'e>,
    query: PgQuery<'_>,
    decode: Decode<T>,
) -> Result<Option<T>, Error> {
    match query.fetch_optional(ex).await.db()? {
        Some(row) => decode(&Cols::new(&row)).map(Some),
        None => Ok(None),
    }
}

/// Every row of `query`, decoded.
pub(crate) async fn all<'e, T>(
    ex: impl PgExecutor<'e>,
    query: PgQuery<'_>,
    decode: Decode<T>,
) -> Result<Vec<T>, Error> {
    query.fetch_all(ex).await.db()?.iter().map(|row| decode(&Cols::new(row))).collect()
}

/// True when `query` yields a row.
pub(crate) async fn exists<'e>(ex: impl PgExecutor<'e>, query: PgQuery<'_>) -> Result<bool, Error> {
    Ok(query.fetch_optional(ex).await.db()?.is_some())
}

/// One page of `list` (whose SQL must end in `LIMIT $n OFFSET $n+1`, the
/// two binds this adds) and the total of `count`, both read in one
/// `REPEATABLE READ` snapshot.
pub(crate) async fn page<T>(
    pool: &PgPool,
    count: PgQuery<'_>,
    list: PgQuery<'_>,
    page: PageRequest,
    decode: Decode<T>,
) -> Result<Page<T>, Error> {
    if page.page == 0 {
        return Err(Error::invalid("page", "out_of_range", "page must be 1 or more"));
    }
    let offset =
        i64::try_from(page.offset()).map_err(|_| Error::invalid("page", "out_of_range", "page is too large"))?;
    let mut snapshot = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.db()?;
    let total: i64 = count.fetch_one(&mut *snapshot).await.db()?.try_get(0).db()?;
    let items = all(&mut *snapshot, list.bind(i64::from(page.limit)).bind(offset), decode).await?;
    snapshot.commit().await.db()?;
    Ok(Page { items, total: u64::try_from(total).unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict_of(table: &str, detail: Option<&str>, constraint: Option<&str>) -> (String, serde_json::Value) {
        match unique_conflict(table, detail, constraint) {
            Error::Conflict { message, details } => (message, details.unwrap()["field"].clone()),
            other => panic!("not a conflict: {other:?}"),
        }
    }

    #[test]
    fn unique_violations_name_the_last_column_of_the_key() {
        let cases = [
            (
                "users",
                Some("Key (email)=(a@example.com) already exists."),
                None,
                "a user with this email already exists",
            ),
            (
                "workspaces",
                Some("Key (app_id, branch)=(x, ws/a/b) already exists."),
                None,
                "a workspace in this app with this branch already exists",
            ),
            ("users", None, Some("users_handle_key"), "a user with this handle already exists"),
            ("apps", None, Some("apps_pkey"), "a app with this id already exists"),
            ("credentials", None, Some("credentials_token_hash_key"), "a token with this token_hash already exists"),
            (
                "workspaces",
                Some("Key (app_id, branch)=(x, y) already exists."),
                Some("workspaces_branch_key"),
                "a workspace in this app with this branch already exists",
            ),
            (
                "changesets",
                Some("Key (workspace_id)=(x) already exists."),
                Some("changesets_workspace_id_key"),
                "the workspace already has an open changeset",
            ),
            (
                "deployments",
                Some("Key (environment_id)=(x) already exists."),
                Some("deployments_environment_key"),
                "a deployment in progress with this environment already exists",
            ),
            ("changeset_reviews", None, Some("changeset_reviews_pkey"), "a review with this id already exists"),
            ("mystery", None, None, "a record with this key already exists"),
        ];
        for (table, detail, constraint, message) in cases {
            assert_eq!(conflict_of(table, detail, constraint).0, message, "{table} {detail:?} {constraint:?}");
        }
        assert_eq!(conflict_of("users", Some("Key (email)=(x) already exists."), None).1, "email");
    }
}
