//! The notification outbox: reads and mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::outbox::OutboxMessage;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::OutboxMessageId;

/// A change to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxMutation {
    /// Queue a message in the outbox.
    InsertOutbox(OutboxMessage),
    /// Mark an outbox message delivered.
    MarkOutboxDelivered {
        /// Which.
        id: OutboxMessageId,
        /// When.
        at: Timestamp,
    },
}

/// The notification outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Outbox messages, newest first.
    async fn list_outbox(&self, page: PageRequest) -> Result<Page<OutboxMessage>, Error>;
}
