//! The mail port: delivers outbox messages. Without SMTP configured, messages
//! stay in the outbox for operators to read.

use async_trait::async_trait;

use crate::domain::outbox::OutboxMessage;
use crate::error::Error;

/// Delivers one message.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `message`; an error leaves it undelivered in the outbox.
    async fn send(&self, message: &OutboxMessage) -> Result<(), Error>;
}
