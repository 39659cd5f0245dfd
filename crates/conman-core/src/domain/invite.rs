//! Invites: an app admin invites an email with a role; the invitee accepts
//! with the one-time token. Expiry is derived from `expires_at` at read time
//! so no job is needed to expire invites.

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;
use super::Timestamp;
use crate::ids::{AppId, InviteId, UserId};
use crate::rbac::Role;
use crate::validation::Email;

/// Stored state of an invite (expiry is computed, see [`Invite::effective_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    /// Waiting for the invitee.
    Pending,
    /// Accepted; the token is spent.
    Accepted,
    /// Revoked by an admin.
    Revoked,
    /// Past `expires_at` without acceptance.
    Expired,
}

/// What can happen to an invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteEvent {
    /// The invitee accepted.
    Accept,
    /// An admin revoked it.
    Revoke,
    /// An admin re-sent it with a fresh token and expiry.
    Resend,
}

use InviteEvent as E;
use InviteState as S;

/// Invite edges. Resend also revives an expired invite (new token, new expiry).
pub const INVITE_EDGES: &[(S, E, S)] = &[
    (S::Pending, E::Accept, S::Accepted),
    (S::Pending, E::Revoke, S::Revoked),
    (S::Pending, E::Resend, S::Pending),
    (S::Expired, E::Resend, S::Pending),
    (S::Expired, E::Revoke, S::Revoked),
];

impl StateMachine for InviteState {
    type Event = InviteEvent;
    const ENTITY: &'static str = "invite";
    const STATES: &'static [Self] = &[S::Pending, S::Accepted, S::Revoked, S::Expired];
    const EVENTS: &'static [E] = &[E::Accept, E::Revoke, E::Resend];

    fn next(self, event: E) -> Option<Self> {
        INVITE_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}

/// An invite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    /// Identity.
    pub id: InviteId,
    /// App the invitee joins.
    pub app_id: AppId,
    /// Invitee's email.
    pub email: Email,
    /// Role granted on acceptance.
    pub role: Role,
    /// Hex SHA-256 of the current token.
    #[serde(skip_serializing, default)]
    pub token_hash: String,
    /// Stored state (`pending`, `accepted`, `revoked`).
    pub state: InviteState,
    /// Who invited.
    pub invited_by: UserId,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry of the current token.
    pub expires_at: Timestamp,
    /// Who accepted, once accepted.
    pub accepted_by: Option<UserId>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Invite {
    /// The state as seen at `now`: a pending invite past its expiry is expired.
    pub fn effective_state(&self, now: Timestamp) -> InviteState {
        if self.state == S::Pending && now >= self.expires_at {
            S::Expired
        } else {
            self.state
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acceptance_is_refused() {
        let accepted = S::Pending.apply(E::Accept).unwrap();
        assert_eq!(accepted.apply(E::Accept).unwrap_err().code(), crate::ErrorCode::InvalidTransition);
    }
}
