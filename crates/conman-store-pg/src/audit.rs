//! The audit log and the outbox: the `AuditStore` reads, appending audit
//! records to the chain, and the outbox mutations.
//!
//! Invariant: records are only appended, inside the unit's transaction and
//! under the audit advisory lock, each at `seq` = last + 1 with `prev_hash` =
//! the last record's hash and `hash` = the core's `chain_hash` — so the
//! chain is gap-free and verifiable however many processes write, and the
//! schema's triggers refuse any later UPDATE, DELETE or TRUNCATE. A unit's
//! records cost two statements however many there are: [`stage`] while the
//! unit applies its mutations (no lock), and [`chain_and_commit_sql`], the
//! unit's last message, which takes the lock, chains and commits.

use async_trait::async_trait;
use conman_core::domain::audit::{chain_content, AuditEntry, AuditRecord, GENESIS_HASH};
use conman_core::domain::outbox::OutboxMessage;
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, OutboxMessageId};
use conman_core::ports::store::{AuditFilter, AuditStore, Page, PageRequest};
use conman_core::validation::Email;
use conman_core::Error;
use sqlx::{query, PgConnection};
use uuid::Uuid;

use crate::codec::{self, all, exists, json, opt_ts, ts, Cols, Db as _, PgQuery};
use crate::PgStore;

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

macro_rules! outbox_columns {
    () => {
        "id, recipient, app_id, kind, subject, body, created_at, delivered_at"
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

fn outbox(c: &Cols<'_>) -> Result<OutboxMessage, Error> {
    let recipient = c.text(1)?;
    Ok(OutboxMessage {
        id: c.id(0)?,
        recipient: Email::parse(&recipient)
            .map_err(|_| Error::internal(format!("stored recipient {recipient:?} is invalid")))?,
        app_id: c.opt_id(2)?,
        kind: c.text(3)?,
        subject: c.text(4)?,
        body: c.text(5)?,
        created_at: c.ts(6)?,
        delivered_at: c.opt_ts(7)?,
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

    async fn list_outbox(&self, page: PageRequest) -> Result<Page<OutboxMessage>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM outbox"),
            query(concat!(
                "SELECT ",
                outbox_columns!(),
                " FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
            )),
            page,
            outbox,
        )
        .await
    }
}

/// Stages `entries` in `audit_pending` (schema 6), in one statement however
/// many there are, taking no lock: they are chained by the unit's last
/// message, [`chain_and_commit_sql`], and staged rows are visible to nobody
/// else meanwhile. Each row carries the content the core hashes
/// ([`chain_content`]), so Postgres computes exactly [`chain_hash`] when it
/// chains it (the conformance suite verifies the stored chain with the
/// core's verifier, non-ASCII content included).
pub(crate) async fn stage(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut records = Records::default();
    for e in entries {
        records.ids.push(e.id.0);
        records.occurred.push(ts(&e.occurred_at));
        records.actors.push(e.actor_id.map(|u| u.0));
        records.apps.push(e.app_id.map(|a| a.0));
        records.entity_types.push(e.entity_type.as_str());
        records.entity_ids.push(e.entity_id.as_str());
        records.actions.push(e.action.as_str());
        records.befores.push(e.before.as_ref().map(json).transpose()?);
        records.afters.push(e.after.as_ref().map(json).transpose()?);
        records.shas.push(e.git_sha.as_deref());
        records.requests.push(json(&e.request)?);
        records.contents.push(chain_content(e));
    }
    query(STAGE)
        .bind(records.ids)
        .bind(records.occurred)
        .bind(records.actors)
        .bind(records.apps)
        .bind(records.entity_types)
        .bind(records.entity_ids)
        .bind(records.actions)
        .bind(records.befores)
        .bind(records.afters)
        .bind(records.shas)
        .bind(records.requests)
        .bind(records.contents)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// The staging statement (see [`stage`]): `$1..$12` are the entries'
/// columns (JSON as text) and hashed contents; `n` keeps their order.
const STAGE: &str = "INSERT INTO audit_pending (n, id, occurred_at, actor_id, app_id, entity_type, entity_id, action,
                                       before_state, after_state, git_sha, request, content)
     SELECT e.n, e.id, e.occurred_at, e.actor_id, e.app_id, e.entity_type, e.entity_id, e.action,
            e.before_state::json, e.after_state::json, e.git_sha, e.request::json, e.content
       FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                   $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
            WITH ORDINALITY AS e (id, occurred_at, actor_id, app_id, entity_type, entity_id, action, before_state,
                                  after_state, git_sha, request, content, n)";

/// The last message of a unit that staged `staged` audit entries: one simple
/// query that chains them under the audit lock (`audit_chain_pending`,
/// schema 6) and commits, so the lock is released by the same message that
/// took it — no client round trip while it is held. The function refuses
/// (and the COMMIT does not run) unless it chained exactly `staged` records.
/// Every value in it is a constant of this crate or the core, or a number.
pub(crate) fn chain_and_commit_sql(staged: usize) -> String {
    format!("SELECT audit_chain_pending({AUDIT_LOCK_CLASS}, '{GENESIS_HASH}', {staged}); COMMIT")
}

/// The columns of the audit entries one unit appends, for one `UNNEST`.
#[derive(Default)]
struct Records<'a> {
    ids: Vec<Uuid>,
    occurred: Vec<Timestamp>,
    actors: Vec<Option<Uuid>>,
    apps: Vec<Option<Uuid>>,
    entity_types: Vec<&'a str>,
    entity_ids: Vec<&'a str>,
    actions: Vec<&'a str>,
    befores: Vec<Option<String>>,
    afters: Vec<Option<String>>,
    shas: Vec<Option<&'a str>>,
    requests: Vec<String>,
    contents: Vec<String>,
}

/// `InsertOutbox`.
pub(crate) async fn insert_outbox(conn: &mut PgConnection, m: &OutboxMessage) -> Result<(), Error> {
    let sql = concat!("INSERT INTO outbox (", outbox_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    query(sql)
        .bind(m.id.0)
        .bind(m.recipient.as_str())
        .bind(m.app_id.map(|a| a.0))
        .bind(&m.kind)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(ts(&m.created_at))
        .bind(opt_ts(&m.delivered_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `MarkOutboxDelivered`: keeps the first delivery time; `not_found` when unknown.
pub(crate) async fn mark_outbox_delivered(
    conn: &mut PgConnection,
    message: OutboxMessageId,
    at: &Timestamp,
) -> Result<(), Error> {
    let changed = query("UPDATE outbox SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL")
        .bind(message.0)
        .bind(ts(at))
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if changed == 0 && !exists(conn, query("SELECT 1 FROM outbox WHERE id = $1").bind(message.0)).await? {
        return Err(Error::NotFound(OutboxMessageId::KIND));
    }
    Ok(())
}
