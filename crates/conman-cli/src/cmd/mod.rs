//! Subcommands, one module per area (the same split as the core's services).

pub(crate) mod admin;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod cs;
pub(crate) mod deployments;
pub(crate) mod envs;
pub(crate) mod freezes;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod profiles;
pub(crate) mod releases;
pub(crate) mod ws;

use conman_core::ids::AppId;
use conman_core::ports::store::PageRequest;

use crate::output::CoreResult;
use crate::session::Session;

/// Resolves an app given by id or by name (among the actor's apps).
pub(crate) async fn resolve_app(s: &Session, app: &str) -> anyhow::Result<AppId> {
    if let Ok(id) = app.parse::<AppId>() {
        return Ok(id);
    }
    let mut page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    loop {
        let apps = s.conman.list_apps(&s.actor, page).await.core()?;
        if let Some(a) = apps.items.iter().find(|a| a.app.name == app) {
            return Ok(a.app.id);
        }
        if u64::from(page.page) * u64::from(page.limit) >= apps.total {
            anyhow::bail!("no app named {app} among your apps");
        }
        page.page += 1;
    }
}

/// Reads a secret: from the environment variable `var` if set, else one
/// line of stdin (never from the command line).
pub(crate) fn read_secret(var: &str, prompt: &str) -> anyhow::Result<String> {
    if let Ok(v) = std::env::var(var) {
        if !v.is_empty() {
            return Ok(v);
        }
    }
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprint!("{prompt} (input is visible; or set {var}): ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        anyhow::bail!("no password given: pipe it on stdin or set {var}");
    }
    Ok(secret)
}
