//! Who is acting. An [`Actor`] is an authenticated user; an [`AppScope`] is
//! an actor narrowed to one app after its membership was loaded — the only
//! way to reach app-owned data, so a non-member cannot even ask (they get
//! `not_found`, never learning that the app exists).

use crate::domain::app::App;
use crate::domain::audit::RequestContext;
use crate::domain::user::User;
use crate::error::Error;
use crate::ids::{CredentialId, UserId};
use crate::rbac::{authorize, Capability, Ownership, Role};

/// An authenticated user and the request they act through.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user.
    pub user: User,
    /// The credential presented (`None` for local operator commands).
    pub credential_id: Option<CredentialId>,
    /// Request context for audit.
    pub request: RequestContext,
}

impl Actor {
    /// Refuses anyone but a server operator.
    pub fn require_operator(&self) -> Result<(), Error> {
        if self.user.is_operator {
            Ok(())
        } else {
            Err(Error::Forbidden("only a server operator may do this".into()))
        }
    }
}

/// An actor inside one app, with their role there.
#[derive(Debug, Clone)]
pub struct AppScope {
    /// The actor.
    pub actor: Actor,
    /// The app.
    pub app: App,
    /// The actor's role in the app.
    pub role: Role,
}

impl AppScope {
    /// Refuses unless the role allows `capability` on an entity owned by `owner`
    /// (`None` for capabilities that are not about someone's entity).
    pub fn require(&self, capability: Capability, owner: Option<UserId>) -> Result<(), Error> {
        let ownership = match owner {
            Some(o) if o != self.actor.user.id => Ownership::Other,
            _ => Ownership::Own,
        };
        authorize(self.role, capability, ownership)
    }
}
