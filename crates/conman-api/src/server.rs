//! The router (every route of SPEC §7 built so far) and the serve loop.
//! `serve` takes a bound listener, so tests start the server on port 0.
//!
//! Invariant: a route is registered once. Documented operations go through
//! [`documented`] (utoipa-axum's `routes!`), which registers the handler and
//! its OpenAPI operation together; `crate::openapi::document` is built from
//! the same router. The few routes outside the document are the one list
//! [`UNDOCUMENTED`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, MethodRouter};
use axum::Router;
use conman_core::services::Conman;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    apps, audit, auth, changesets, comments, deployments, diffs, jobs, me, members, profiles, releases, reviews,
    system, workspaces,
};
use crate::{docs, request_id};

/// Every documented operation: each `routes!` entry registers a handler
/// with the method and path of its `#[utoipa::path]` and adds that
/// operation to the document at once, so the router and
/// `/api/openapi.json` cannot disagree. Handlers of one path share an entry;
/// never group handlers of different paths (utoipa-axum would register
/// every method of the group on each path; `tests/routes.rs` catches it).
pub(crate) fn documented() -> OpenApiRouter<Arc<Conman>> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(system::health))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::accept_invite))
        .routes(routes!(me::me))
        .routes(routes!(me::get_preferences, me::patch_preferences))
        .routes(routes!(me::list_tokens, me::create_token, me::revoke_token))
        .routes(routes!(apps::list, apps::create))
        .routes(routes!(apps::get))
        .routes(routes!(apps::patch_settings))
        .routes(routes!(members::list, members::put))
        .routes(routes!(members::remove))
        .routes(routes!(members::grant_operator_admin))
        .routes(routes!(members::list_invites, members::create_invite))
        .routes(routes!(members::revoke_invite))
        .routes(routes!(members::resend_invite))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(workspaces::get, workspaces::update))
        .routes(routes!(workspaces::reset))
        .routes(routes!(workspaces::sync_integration))
        .routes(routes!(workspaces::read_files, workspaces::put_file, workspaces::delete_file))
        .routes(routes!(workspaces::changes))
        .routes(routes!(workspaces::checkpoint))
        .routes(routes!(changesets::list, changesets::create))
        .routes(routes!(changesets::get, changesets::update))
        .routes(routes!(changesets::submit))
        .routes(routes!(changesets::resubmit))
        .routes(routes!(reviews::review))
        .routes(routes!(changesets::queue))
        .routes(routes!(changesets::move_to_draft))
        .routes(routes!(diffs::diff))
        .routes(routes!(comments::list, comments::create))
        .routes(routes!(comments::edit))
        .routes(routes!(profiles::get_overrides, profiles::put_overrides))
        .routes(routes!(profiles::list, profiles::create))
        .routes(routes!(profiles::get, profiles::patch))
        .routes(routes!(profiles::revisions))
        .routes(routes!(profiles::revert))
        .routes(routes!(profiles::reveal))
        .routes(routes!(profiles::list_environments, profiles::replace_environments))
        .routes(routes!(profiles::rotate_master_key))
        .routes(routes!(releases::list, releases::create))
        .routes(routes!(releases::get))
        .routes(routes!(releases::set_changesets))
        .routes(routes!(releases::reorder))
        .routes(routes!(releases::assemble))
        .routes(routes!(releases::publish))
        .routes(routes!(deployments::deploy))
        .routes(routes!(deployments::promote))
        .routes(routes!(deployments::rollback))
        .routes(routes!(deployments::drift_check))
        .routes(routes!(deployments::create_drift_fix_changeset))
        .routes(routes!(deployments::list_migrations))
        .routes(routes!(deployments::status))
        .routes(routes!(deployments::list_freezes, deployments::create_freeze))
        .routes(routes!(deployments::delete_freeze))
        .routes(routes!(deployments::list))
        .routes(routes!(deployments::get))
        .routes(routes!(deployments::approve))
        .routes(routes!(deployments::reject))
        .routes(routes!(deployments::cancel))
        .routes(routes!(audit::list))
        .routes(routes!(jobs::list, jobs::start))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::logs))
        .routes(routes!(jobs::cancel))
}

/// A route outside the document: its path and its method router.
type Undocumented = (&'static str, fn() -> MethodRouter<Arc<Conman>>);

/// The routes outside the document, and only these: the document itself,
/// the reference that renders it (page and embedded assets) and the
/// Prometheus text. No other route is registered without its document.
const UNDOCUMENTED: &[Undocumented] = &[
    ("/api/metrics", || get(system::metrics)),
    ("/api/openapi.json", || get(system::openapi_json)),
    ("/api/docs", || get(docs::index)),
    ("/api/docs/", || get(docs::index)),
    ("/api/docs/{file}", || get(docs::asset)),
];

/// The path templates of the routes that are not in the OpenAPI document
/// (the contract tests accept their non-JSON answers).
pub fn undocumented_routes() -> impl Iterator<Item = &'static str> {
    UNDOCUMENTED.iter().map(|(path, _)| *path)
}

/// Every route, with the request-id and error-envelope layer.
pub fn router(conman: Arc<Conman>) -> Router {
    let (documented, _) = documented().split_for_parts();
    let api = UNDOCUMENTED.iter().fold(documented, |r, (path, methods)| r.route(path, methods()));
    Router::new()
        .merge(api.with_state(conman))
        .fallback(request_id::not_found)
        // Our extractors read bodies with their own per-route ceiling
        // (crate::body); this bounds any axum body extractor all the same.
        .layer(DefaultBodyLimit::max(crate::body::DEFAULT_BODY_BYTES))
        .layer(axum::middleware::from_fn(request_id::layer))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    conman: Arc<Conman>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(conman).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
