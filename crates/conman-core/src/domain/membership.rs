//! Membership: a user's role in one app.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::ids::{AppId, UserId};
use crate::rbac::Role;

/// A user's role in an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// App.
    pub app_id: AppId,
    /// Member.
    pub user_id: UserId,
    /// Role in this app.
    pub role: Role,
    /// Since when.
    pub created_at: Timestamp,
}
