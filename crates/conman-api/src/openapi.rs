//! The OpenAPI 3 document, generated from the handlers' annotations and
//! the wire types as the router registers them (utoipa-axum), and the
//! passes that complete it. `/api/docs` renders it ([`crate::docs`]).

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The parts of the document that are not operations: info, tags. The
/// operations come from the router ([`crate::server`]'s `documented`).
#[derive(OpenApi)]
#[openapi(
    info(title = "Conman API", description = "Git-backed configuration manager. See SPEC §7."),
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
        (name = "releases", description = "Releases: select queued changesets, assemble, publish"),
        (name = "deployments", description = "Deployments: deploy, promote, two-person exceptions, rollback, drift checks, environment status and deploy freezes"),
        (name = "jobs", description = "Asynchronous jobs: gate runs, logs, cancellation"),
    )
)]
struct ApiDoc;

/// The document without operations, which the router extends.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.components.get_or_insert_with(Default::default).add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
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

/// The document as a value: the operations registered by the router, then
/// the passes that complete them (the bearer scheme, the standard errors).
/// The passes run here, after the router has added every operation; as
/// `#[openapi(modifiers(...))]` they would run on the base, which has none.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = crate::server::documented().split_for_parts();
    BearerAuth.modify(&mut doc);
    StandardErrors.modify(&mut doc);
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
