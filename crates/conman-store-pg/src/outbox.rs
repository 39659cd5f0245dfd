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
use sqlx::{query, PgConnection};

use crate::codec::{self, exists, opt_ts, ts, Cols, Db as _};
use crate::PgStore;

macro_rules! outbox_columns {
    () => {
        "id, recipient, app_id, kind, subject, body, created_at, delivered_at"
    };
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

#[async_trait]
impl OutboxStore for PgStore {
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

/// Applies one outbox mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &OutboxMutation) -> Result<(), Error> {
    match mutation {
        OutboxMutation::InsertOutbox(m) => insert_outbox(conn, m).await,
        OutboxMutation::MarkOutboxDelivered { id, at } => mark_outbox_delivered(conn, *id, at).await,
    }
}

/// `InsertOutbox`.
async fn insert_outbox(conn: &mut PgConnection, m: &OutboxMessage) -> Result<(), Error> {
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
async fn mark_outbox_delivered(conn: &mut PgConnection, message: OutboxMessageId, at: &Timestamp) -> Result<(), Error> {
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
