//! The outbox: messages for people (invites, password resets, notifications)
//! written in the same unit of work as the mutation that causes them, and
//! delivered by mail later or read by operators with `conman outbox`.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::ids::{AppId, OutboxMessageId};
use crate::validation::Email;

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Identity.
    pub id: OutboxMessageId,
    /// Recipient.
    pub recipient: Email,
    /// App concerned, if any.
    pub app_id: Option<AppId>,
    /// Kind (`invite`, `password_reset`, ...).
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (may carry a one-time token: the outbox is operator-only).
    pub body: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Delivery time, once delivered by mail.
    pub delivered_at: Option<Timestamp>,
}
