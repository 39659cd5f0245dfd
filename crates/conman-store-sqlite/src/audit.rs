//! The audit log: the `AuditStore` reads and appending audit records to the
//! chain.
//!
//! Invariant: records are only appended, inside the unit's transaction,
//! each at `seq` = last + 1 with `prev_hash` = the last record's hash and
//! `hash` = [`chain_hash`] — so the chain is gap-free and verifiable, and the
//! schema's triggers refuse any later UPDATE or DELETE.

use async_trait::async_trait;
use conman_core::domain::audit::{chain_hash, AuditEntry, AuditRecord, GENESIS_HASH};
use conman_core::ids::AppId;
use conman_core::ports::store::{AuditFilter, AuditStore, Page, PageRequest};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::codec::{self, all, exists, id, json, opt_id, ts, Cols, Db as _};
use crate::SqliteStore;

macro_rules! audit_columns {
    () => {
        "seq, id, occurred_at, actor_id, app_id, entity_type, entity_id, action, before_state, after_state, git_sha,
         request, prev_hash, hash"
    };
}

fn record(c: &Cols<'_, '_>) -> Result<AuditRecord, Error> {
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

/// The `WHERE` clause of `filter` and its parameters.
fn audit_where(filter: &AuditFilter) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let mut add = |clause: &'static str, value: String| {
        clauses.push(clause);
        params.push(Value::Text(value));
    };
    if let Some(app_id) = filter.app_id {
        add("app_id = ?", id(app_id.0));
    }
    if let Some(entity_type) = &filter.entity_type {
        add("entity_type = ?", entity_type.clone());
    }
    if let Some(entity_id) = &filter.entity_id {
        add("entity_id = ?", entity_id.clone());
    }
    if let Some(actor_id) = filter.actor_id {
        add("actor_id = ?", id(actor_id.0));
    }
    // Stored timestamps are fixed-width RFC 3339 UTC text: text order is time order.
    if let Some(since) = &filter.since {
        add("occurred_at >= ?", ts(since));
    }
    if let Some(until) = &filter.until {
        add("occurred_at < ?", ts(until));
    }
    let clause = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (clause, params)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditRecord>, Error> {
        let (clause, params) = audit_where(filter);
        self.read(move |conn| {
            let count = format!("SELECT COUNT(*) FROM audit{clause}");
            let list = format!(
                concat!("SELECT ", audit_columns!(), " FROM audit{} ORDER BY seq DESC LIMIT ? OFFSET ?"),
                clause
            );
            codec::page(conn, &count, &list, params, page, record)
        })
        .await
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!("SELECT ", audit_columns!(), " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
                params![after_seq, limit],
                record,
            )
        })
        .await
    }

    async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error> {
        let git_sha = git_sha.to_owned();
        self.read(move |conn| {
            exists(conn, "SELECT 1 FROM audit WHERE app_id = ?1 AND git_sha = ?2 LIMIT 1", [id(app_id.0), git_sha])
        })
        .await
    }
}

/// Appends `entries` to the chain, after the last stored record.
pub(crate) fn append(conn: &Connection, entries: &[AuditEntry]) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .db()?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    let (mut seq, mut prev_hash) = last.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    let mut insert = conn
        .prepare_cached(concat!(
            "INSERT INTO audit (",
            audit_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))
        .db()?;
    for e in entries {
        seq += 1;
        let hash = chain_hash(&prev_hash, e);
        insert
            .execute(params![
                seq,
                id(e.id.0),
                ts(&e.occurred_at),
                opt_id(e.actor_id.map(|u| u.0)),
                opt_id(e.app_id.map(|a| a.0)),
                e.entity_type,
                e.entity_id,
                e.action,
                e.before.as_ref().map(json).transpose()?,
                e.after.as_ref().map(json).transpose()?,
                e.git_sha,
                json(&e.request)?,
                prev_hash,
                hash,
            ])
            .db()?;
        prev_hash = hash;
    }
    Ok(())
}
