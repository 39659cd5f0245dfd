//! Who the CLI acts as: a bearer token (`--token` / `CONMAN_TOKEN`, a
//! session or personal API token) or, for operators working on the data
//! directory itself, `--as EMAIL`. Holding the data directory already
//! grants full access to its files, so `--as` adds no power; every core
//! rule (roles, validation, audit) still applies to that user.

use clap::Args;
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::domain::audit::RequestContext;
use conman_core::services::{Actor, Conman};
use std::sync::Arc;

use crate::output::CoreResult;

/// Identity flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct SessionArgs {
    /// Bearer token (session or personal API token).
    #[arg(long, env = "CONMAN_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<String>,
    /// Act as this user (local operator mode on the data directory).
    #[arg(long = "as", env = "CONMAN_AS", global = true)]
    pub(crate) as_user: Option<String>,
}

/// An opened installation and the acting user.
pub(crate) struct Session {
    pub(crate) conman: Arc<Conman>,
    pub(crate) actor: Actor,
}

/// The request context of CLI calls (a fresh request id per invocation).
pub(crate) fn request_context() -> RequestContext {
    RequestContext {
        request_id: Some(uuid_v7()),
        ip: None,
        user_agent: Some(format!("conman-cli/{}", env!("CARGO_PKG_VERSION"))),
    }
}

fn uuid_v7() -> String {
    use conman_core::ports::IdGenerator as _;
    conman_core::ports::system::UuidV7Ids.new_uuid().to_string()
}

/// Opens the installation and resolves the actor.
pub(crate) async fn open(settings: &Settings, args: &SessionArgs) -> anyhow::Result<Session> {
    Ok(open_with_key_source(settings, args).await?.0)
}

/// [`open`], also saying where the secrets master key came from.
pub(crate) async fn open_with_key_source(
    settings: &Settings,
    args: &SessionArgs,
) -> anyhow::Result<(Session, compose::MasterKeySource)> {
    let installation = compose::open(settings)?;
    let (conman, source) = (installation.conman, installation.master_key_source);
    let actor = match (&args.token, &args.as_user) {
        (Some(token), _) => conman.authenticate(token, request_context()).await.core()?,
        (None, Some(email)) => conman.local_actor(email, request_context()).await.core()?,
        (None, None) => {
            anyhow::bail!("say who acts: --token TOKEN (or CONMAN_TOKEN), or --as EMAIL on the data directory")
        }
    };
    Ok((Session { conman, actor }, source))
}
