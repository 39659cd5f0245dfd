//! The notification outbox (mirrors the SQL stores' `outbox`).

use async_trait::async_trait;

use super::{page, unique, ReferenceStore, State};
use crate::domain::outbox::OutboxMessage;
use crate::error::Error;
use crate::ids::OutboxMessageId;
use crate::ports::store::{OutboxMutation, OutboxStore, Page, PageRequest, Record};

/// The outbox slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Outbox {
    pub(crate) messages: Vec<OutboxMessage>,
}

#[async_trait]
impl OutboxStore for ReferenceStore {
    async fn list_outbox(&self, request: PageRequest) -> Result<Page<OutboxMessage>, Error> {
        let mut found = self.lock().outbox.messages.clone();
        found.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(page(found, request))
    }
}

/// Applies one outbox mutation.
pub(crate) fn apply(state: &mut State, mutation: &OutboxMutation) -> Result<(), Error> {
    let messages = &mut state.outbox.messages;
    match mutation {
        OutboxMutation::InsertOutbox(m) => {
            unique(messages.iter().any(|x| x.id == m.id), Record::OutboxMessage, "id")?;
            messages.push(m.clone());
        }
        OutboxMutation::MarkOutboxDelivered { id, at } => {
            let row = messages.iter_mut().find(|m| m.id == *id).ok_or(Error::NotFound(OutboxMessageId::KIND))?;
            row.delivered_at.get_or_insert(*at);
        }
    }
    Ok(())
}
