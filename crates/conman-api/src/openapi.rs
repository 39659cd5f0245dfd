//! The OpenAPI 3 document, generated from the handlers' annotations and
//! the wire types, and a self-contained HTML reference rendered from it
//! (no external scripts, so it works offline).

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::PathItem;
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Conman API", description = "Git-backed configuration manager. See SPEC §7."),
    paths(
        routes::system::health,
        routes::auth::login,
        routes::auth::logout,
        routes::auth::forgot_password,
        routes::auth::reset_password,
        routes::auth::accept_invite,
        routes::me::me,
        routes::me::get_preferences,
        routes::me::patch_preferences,
        routes::me::list_tokens,
        routes::me::create_token,
        routes::me::revoke_token,
        routes::apps::list,
        routes::apps::create,
        routes::apps::get,
        routes::apps::patch_settings,
        routes::members::list,
        routes::members::put,
        routes::members::remove,
        routes::members::grant_operator_admin,
        routes::members::list_invites,
        routes::members::create_invite,
        routes::members::resend_invite,
        routes::members::revoke_invite,
        routes::workspaces::list,
        routes::workspaces::create,
        routes::workspaces::get,
        routes::workspaces::update,
        routes::workspaces::reset,
        routes::workspaces::sync_integration,
        routes::workspaces::read_files,
        routes::workspaces::put_file,
        routes::workspaces::delete_file,
        routes::workspaces::changes,
        routes::workspaces::checkpoint,
        routes::changesets::list,
        routes::changesets::create,
        routes::changesets::get,
        routes::changesets::update,
        routes::changesets::submit,
        routes::changesets::resubmit,
        routes::reviews::review,
        routes::changesets::queue,
        routes::changesets::move_to_draft,
        routes::diffs::diff,
        routes::comments::list,
        routes::comments::create,
        routes::comments::edit,
        routes::profiles::get_overrides,
        routes::profiles::rotate_master_key,
        routes::profiles::put_overrides,
        routes::profiles::list,
        routes::profiles::create,
        routes::profiles::get,
        routes::profiles::patch,
        routes::profiles::revisions,
        routes::profiles::revert,
        routes::profiles::reveal,
        routes::profiles::list_environments,
        routes::profiles::replace_environments,
        routes::audit::list,
        routes::jobs::list,
        routes::jobs::start,
        routes::jobs::get,
        routes::jobs::logs,
        routes::jobs::cancel,
    ),
    modifiers(&BearerAuth, &StandardErrors),
    tags(
        (name = "system", description = "Health and documentation"),
        (name = "auth", description = "Login, logout, password reset, invite acceptance"),
        (name = "me", description = "The caller, preferences and personal API tokens"),
        (name = "apps", description = "Apps and settings"),
        (name = "members", description = "Members, roles and invites"),
        (name = "workspaces", description = "Workspaces, checkpoints, reset and sync"),
        (name = "files", description = "File reads and writes in a workspace"),
        (name = "changesets", description = "Changesets: revisions, the submit gate, reviews, queueing, comments and diffs"),
        (name = "runtime_profiles", description = "Runtime profiles (typed env vars, sealed secrets, revisions, audited reveal), environments and changeset profile overrides"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "jobs", description = "Asynchronous jobs: gate runs, logs, cancellation"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Documents the error statuses every operation of a kind can answer, so
/// no answer is undocumented: `401` on every operation that declares the
/// bearer scheme (missing, expired or revoked credentials), `400` on every
/// operation that takes input (a path id, a query or a body that does not
/// parse), `404` on every operation with a path parameter, `403` on the
/// protected operations of an app or of the operator, `413` on every
/// operation with a body (with the ceilings of [`crate::body`]). An operation's own, more specific description of
/// a status is kept.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
                    )
                    .build(),
            )
        };
        let too_large = format!(
            "`payload_too_large`: the body is over this route's ceiling (`details.limit_bytes`), refused before \
             it is read: {} bytes for the unauthenticated auth endpoints, the app's `file_size_limit_bytes` in \
             base64 plus room for paths and message for file writes, {} bytes for runtime profile documents, \
             {} bytes otherwise",
            crate::body::AUTH_BODY_BYTES,
            crate::body::PROFILE_BODY_BYTES,
            crate::body::DEFAULT_BODY_BYTES,
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_path_params = path.contains('{');
            let scoped = path.starts_with("/api/apps/{app_id}") || path.starts_with("/api/admin/");
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = op.request_body.is_some();
                let has_input = has_path_params || has_body || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |status: &str, description: &str| {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description));
                };
                if secured {
                    add("401", "`unauthorized`: missing, invalid, expired or revoked credentials");
                }
                if has_input {
                    add("400", "`validation_error`: a path id, query or body that does not parse or validate");
                }
                if has_path_params {
                    add("404", "`not_found`: no such resource visible to the caller");
                }
                if secured && scoped {
                    add("403", "`forbidden`: the caller's role does not allow this");
                }
                if has_body {
                    add("413", &too_large);
                }
            }
        }
    }
}

/// The document as a value.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document as pretty JSON (what `conman-server openapi` prints and
/// `docs/contracts/openapi.json` freezes), computed once.
pub fn document_json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = document().to_pretty_json().expect("the OpenAPI document serializes");
        s.push('\n');
        s
    })
    .clone()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn operations(item: &PathItem) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("PATCH", &item.patch), ("DELETE", &item.delete)]
        .into_iter()
        .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
        .collect()
}

/// The browsable reference served at `/api/docs`.
pub fn docs_html() -> String {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let doc = document();
        let mut rows = String::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in operations(item) {
                let summary = op.summary.clone().or_else(|| op.description.clone()).unwrap_or_default();
                let tag = op.tags.as_ref().and_then(|t| t.first().cloned()).unwrap_or_default();
                let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
                rows.push_str(&format!(
                    "<tr><td>{}</td><td class=m>{method}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    escape(&tag),
                    escape(path),
                    escape(&summary),
                    statuses.join(" ")
                ));
            }
        }
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>Conman API</title><style>\
             body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}\
             table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.35rem;text-align:left}}\
             .m{{font-weight:bold}}code{{font-size:.95em}}</style></head><body>\
             <h1>Conman API {}</h1><p>Base path <code>/api</code>, JSON bodies, bearer tokens. \
             The full machine-readable contract is <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>\
             <table><tr><th>Tag</th><th>Method</th><th>Path</th><th>Summary</th><th>Statuses</th></tr>\n{rows}</table>\
             </body></html>",
            escape(&doc.info.version)
        )
    })
    .clone()
}
