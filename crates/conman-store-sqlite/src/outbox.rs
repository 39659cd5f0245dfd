//! The outbox: the `OutboxStore` read and the outbox mutations.
//!
//! Invariant: a message is delivered at most once on record — marking it
//! delivered keeps the first time.

use async_trait::async_trait;
use conman_core::domain::outbox::OutboxMessage;
use conman_core::domain::Timestamp;
use conman_core::ids::OutboxMessageId;
use conman_core::ports::store::{OutboxMutation, OutboxStore, Page, PageRequest};
use conman_core::validation::Email;
use conman_core::Error;
use rusqlite::{params, Connection};

use crate::codec::{self, exists, id, opt_id, opt_ts, ts, Cols, Db as _};
use crate::SqliteStore;

macro_rules! outbox_columns {
    () => {
        "id, recipient, app_id, kind, subject, body, created_at, delivered_at"
    };
}

fn outbox(c: &Cols<'_, '_>) -> Result<OutboxMessage, Error> {
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

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn list_outbox(&self, page: PageRequest) -> Result<Page<OutboxMessage>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM outbox",
                concat!(
                    "SELECT ",
                    outbox_columns!(),
                    " FROM outbox ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
                ),
                Vec::new(),
                page,
                outbox,
            )
        })
        .await
    }
}

/// Applies one outbox mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &OutboxMutation) -> Result<(), Error> {
    match mutation {
        OutboxMutation::InsertOutbox(m) => insert_outbox(conn, m),
        OutboxMutation::MarkOutboxDelivered { id, at } => mark_outbox_delivered(conn, *id, at),
    }
}

/// `InsertOutbox`.
fn insert_outbox(conn: &Connection, m: &OutboxMessage) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO outbox (",
        outbox_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .db()?
    .execute(params![
        id(m.id.0),
        m.recipient.as_str(),
        opt_id(m.app_id.map(|a| a.0)),
        m.kind,
        m.subject,
        m.body,
        ts(&m.created_at),
        opt_ts(&m.delivered_at),
    ])
    .db()?;
    Ok(())
}

/// `MarkOutboxDelivered`: keeps the first delivery time; `not_found` when unknown.
fn mark_outbox_delivered(conn: &Connection, message: OutboxMessageId, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE outbox SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL")
        .db()?
        .execute(params![id(message.0), ts(at)])
        .db()?;
    if changed == 0 && !exists(conn, "SELECT 1 FROM outbox WHERE id = ?1", [id(message.0)])? {
        return Err(Error::NotFound(OutboxMessageId::KIND));
    }
    Ok(())
}
