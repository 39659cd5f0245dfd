//! The audit log: the `AuditStore` reads and appending audit records to the
//! chain.
//!
//! Invariant: records are only appended, inside the unit's transaction and
//! under the audit advisory lock, each at `seq` = last + 1 with `prev_hash` =
//! the last record's hash and `hash` = the core's `chain_hash` — so the
//! chain is gap-free and verifiable however many processes write, and the
//! schema's triggers refuse any later UPDATE, DELETE or TRUNCATE. A unit's
//! records cost two statements however many there are, both in the unit's
//! last message and so no round trip of their own: [`stage_sql`] (no lock)
//! and [`chain_sql`], which takes the lock and chains, right before the
//! `COMMIT` that releases it.

use std::fmt::Write as _;

use async_trait::async_trait;
use conman_core::domain::audit::{chain_content, AuditEntry, AuditRecord, GENESIS_HASH};
use conman_core::domain::Timestamp;
use conman_core::ids::AppId;
use conman_core::ports::store::{AuditFilter, AuditStore, Page, PageRequest};
use conman_core::Error;
use sqlx::query;
use uuid::Uuid;

use crate::codec::{self, all, exists, json, ts, Cols, PgQuery};
use crate::{literal, PgStore};

/// First key of the audit advisory lock, `pg_advisory_xact_lock(AUDIT_LOCK_CLASS,
/// <oid of the audit table>)`: "cmau" in ASCII. Other Conman advisory locks
/// use other classes.
pub const AUDIT_LOCK_CLASS: i32 = 0x636d_6175;

macro_rules! audit_columns {
    () => {
        "seq, id, occurred_at, actor_id, app_id, entity_type, entity_id, action, before_state::text,
         after_state::text, git_sha, request::text, prev_hash, hash"
    };
}

fn record(c: &Cols<'_>) -> Result<AuditRecord, Error> {
    Ok(AuditRecord {
        seq: c.int(0)?,
        entry: AuditEntry {
            id: c.id(1)?,
            occurred_at: c.ts(2)?,
            actor_id: c.opt_id(3)?,
            app_id: c.opt_id(4)?,
            entity_type: c.text(5)?,
            entity_id: c.text(6)?,
            action: c.text(7)?,
            before: c.opt_json(8)?,
            after: c.opt_json(9)?,
            git_sha: c.opt_text(10)?,
            request: c.json(11)?,
        },
        prev_hash: c.text(12)?,
        hash: c.text(13)?,
    })
}

/// A value bound by an audit filter.
#[derive(Clone)]
enum Param {
    Id(Uuid),
    Text(String),
    At(Timestamp),
}

/// The `WHERE` clause of `filter` (placeholders `$1..`) and its values.
fn audit_where(filter: &AuditFilter) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let mut add = |column: &str, op: &str, value: Param| {
        params.push(value);
        clauses.push(format!("{column} {op} ${}", params.len()));
    };
    if let Some(app_id) = filter.app_id {
        add("app_id", "=", Param::Id(app_id.0));
    }
    if let Some(entity_type) = &filter.entity_type {
        add("entity_type", "=", Param::Text(entity_type.clone()));
    }
    if let Some(entity_id) = &filter.entity_id {
        add("entity_id", "=", Param::Text(entity_id.clone()));
    }
    if let Some(actor_id) = filter.actor_id {
        add("actor_id", "=", Param::Id(actor_id.0));
    }
    if let Some(since) = &filter.since {
        add("occurred_at", ">=", Param::At(ts(since)));
    }
    if let Some(until) = &filter.until {
        add("occurred_at", "<", Param::At(ts(until)));
    }
    let clause = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (clause, params)
}

/// `q` with `params` bound in order.
fn bind_all<'q>(q: PgQuery<'q>, params: &[Param]) -> PgQuery<'q> {
    params.iter().cloned().fold(q, |q, p| match p {
        Param::Id(id) => q.bind(id),
        Param::Text(text) => q.bind(text),
        Param::At(at) => q.bind(at),
    })
}

#[async_trait]
impl AuditStore for PgStore {
    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditRecord>, Error> {
        let (clause, params) = audit_where(filter);
        let count = format!("SELECT COUNT(*) FROM audit{clause}");
        let n = params.len();
        let list = format!(
            concat!("SELECT ", audit_columns!(), " FROM audit{} ORDER BY seq DESC LIMIT ${} OFFSET ${}"),
            clause,
            n + 1,
            n + 2
        );
        codec::page(&self.pool, bind_all(query(&count), &params), bind_all(query(&list), &params), page, record).await
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        let sql = concat!("SELECT ", audit_columns!(), " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
        all(&self.pool, query(sql).bind(after_seq).bind(i64::from(limit)), record).await
    }

    async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error> {
        let sql = "SELECT 1 FROM audit WHERE app_id = $1 AND git_sha = $2 LIMIT 1";
        exists(&self.pool, query(sql).bind(app_id.0).bind(git_sha)).await
    }
}

/// Appends to `out` the statement that stages `entries` in `audit_pending`
/// (schema 6), one statement however many there are, taking no lock: they
/// are chained by [`chain_sql`] later in the same message, and staged rows
/// are visible to nobody else meanwhile. The values are written as literals
/// (see `literal.rs`), so staging costs no round trip of its own. Each row
/// carries the content the core hashes ([`chain_content`]), so Postgres
/// computes exactly [`chain_hash`] when it chains it (the conformance suite
/// verifies the stored chain with the core's verifier, non-ASCII content
/// included).
///
/// [`chain_hash`]: conman_core::domain::audit::chain_hash
pub(crate) fn stage_sql(out: &mut String, entries: &[AuditEntry]) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    out.push_str(
        "INSERT INTO audit_pending (n, id, occurred_at, actor_id, app_id, entity_type, entity_id, action, \
         before_state, after_state, git_sha, request, content) VALUES ",
    );
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "({}, ", n + 1);
        literal::uuid(out, e.id.0);
        out.push_str(", ");
        literal::timestamp(out, &e.occurred_at);
        out.push_str(", ");
        literal::opt_uuid(out, e.actor_id.map(|u| u.0));
        out.push_str(", ");
        literal::opt_uuid(out, e.app_id.map(|a| a.0));
        out.push_str(", ");
        literal::text(out, &e.entity_type)?;
        out.push_str(", ");
        literal::text(out, &e.entity_id)?;
        out.push_str(", ");
        literal::text(out, &e.action)?;
        out.push_str(", ");
        literal::opt_text(out, e.before.as_ref().map(json).transpose()?.as_deref())?;
        out.push_str("::json, ");
        literal::opt_text(out, e.after.as_ref().map(json).transpose()?.as_deref())?;
        out.push_str("::json, ");
        literal::opt_text(out, e.git_sha.as_deref())?;
        out.push_str(", ");
        literal::text(out, &json(&e.request)?)?;
        out.push_str("::json, ");
        literal::text(out, &chain_content(e))?;
        out.push(')');
    }
    out.push_str("; ");
    Ok(())
}

/// Appends to `out` the statement that chains the `staged` entries the
/// unit staged (`audit_chain_pending`, schema 6) under the audit lock. It
/// comes last in the unit's last message, right before `COMMIT`, so the lock
/// is released by the same message that took it — no client round trip
/// while it is held. The function refuses (and the `COMMIT` does not run)
/// unless it chained exactly `staged` records. Every value in it is a
/// constant of this crate or the core, or a number.
pub(crate) fn chain_sql(out: &mut String, staged: usize) {
    let _ = write!(out, "SELECT audit_chain_pending({AUDIT_LOCK_CLASS}, '{GENESIS_HASH}', {staged}); ");
}
