//! The router (every route of SPEC §7 built so far) and the serve loop.
//! `serve` takes a bound listener, so tests start the server on port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use conman_core::services::Conman;
use tokio::net::TcpListener;

use crate::request_id;
use crate::routes::{
    apps, audit, auth, changesets, comments, diffs, jobs, me, members, profiles, reviews, system, workspaces,
};

/// Every route, with the request-id and error-envelope layer.
pub fn router(conman: Arc<Conman>) -> Router {
    let api = Router::new()
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi_json))
        .route("/docs", get(system::docs))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/forgot-password", post(auth::forgot_password))
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/accept-invite", post(auth::accept_invite))
        .route("/me", get(me::me))
        .route("/me/notification-preferences", get(me::get_preferences).patch(me::patch_preferences))
        .route("/me/tokens", get(me::list_tokens).post(me::create_token).delete(me::revoke_token))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{app_id}", get(apps::get))
        .route("/apps/{app_id}/settings", axum::routing::patch(apps::patch_settings))
        .route("/apps/{app_id}/members", get(members::list).post(members::put))
        .route("/apps/{app_id}/members/{user_id}", axum::routing::delete(members::remove))
        .route("/apps/{app_id}/admins", post(members::grant_operator_admin))
        .route("/apps/{app_id}/invites", get(members::list_invites).post(members::create_invite))
        .route("/apps/{app_id}/invites/{invite_id}", axum::routing::delete(members::revoke_invite))
        .route("/apps/{app_id}/invites/{invite_id}/resend", post(members::resend_invite))
        .route("/apps/{app_id}/workspaces", get(workspaces::list).post(workspaces::create))
        .route("/apps/{app_id}/workspaces/{ws_id}", get(workspaces::get).patch(workspaces::update))
        .route("/apps/{app_id}/workspaces/{ws_id}/reset", post(workspaces::reset))
        .route("/apps/{app_id}/workspaces/{ws_id}/sync-integration", post(workspaces::sync_integration))
        .route(
            "/apps/{app_id}/workspaces/{ws_id}/files",
            get(workspaces::read_files).put(workspaces::put_file).delete(workspaces::delete_file),
        )
        .route("/apps/{app_id}/workspaces/{ws_id}/changes", post(workspaces::changes))
        .route("/apps/{app_id}/workspaces/{ws_id}/checkpoints", post(workspaces::checkpoint))
        .route("/apps/{app_id}/changesets", get(changesets::list).post(changesets::create))
        .route("/apps/{app_id}/changesets/{cs_id}", get(changesets::get).patch(changesets::update))
        .route("/apps/{app_id}/changesets/{cs_id}/submit", post(changesets::submit))
        .route("/apps/{app_id}/changesets/{cs_id}/resubmit", post(changesets::resubmit))
        .route("/apps/{app_id}/changesets/{cs_id}/review", post(reviews::review))
        .route("/apps/{app_id}/changesets/{cs_id}/queue", post(changesets::queue))
        .route("/apps/{app_id}/changesets/{cs_id}/move-to-draft", post(changesets::move_to_draft))
        .route("/apps/{app_id}/changesets/{cs_id}/diff", get(diffs::diff))
        .route("/apps/{app_id}/changesets/{cs_id}/comments", get(comments::list).post(comments::create))
        .route("/apps/{app_id}/changesets/{cs_id}/comments/{comment_id}", axum::routing::patch(comments::edit))
        .route(
            "/apps/{app_id}/changesets/{cs_id}/profile-overrides",
            get(profiles::get_overrides).put(profiles::put_overrides),
        )
        .route("/apps/{app_id}/runtime-profiles", get(profiles::list).post(profiles::create))
        .route("/apps/{app_id}/runtime-profiles/{profile_id}", get(profiles::get).patch(profiles::patch))
        .route("/apps/{app_id}/runtime-profiles/{profile_id}/revisions", get(profiles::revisions))
        .route("/apps/{app_id}/runtime-profiles/{profile_id}/revert", post(profiles::revert))
        .route("/apps/{app_id}/runtime-profiles/{profile_id}/secrets/{key}/reveal", post(profiles::reveal))
        .route("/apps/{app_id}/environments", get(profiles::list_environments).patch(profiles::replace_environments))
        .route("/admin/secrets/rotate", post(profiles::rotate_master_key))
        .route("/apps/{app_id}/audit", get(audit::list))
        .route("/apps/{app_id}/jobs", get(jobs::list).post(jobs::start))
        .route("/apps/{app_id}/jobs/{job_id}", get(jobs::get))
        .route("/apps/{app_id}/jobs/{job_id}/logs", get(jobs::logs))
        .route("/apps/{app_id}/jobs/{job_id}/cancel", post(jobs::cancel))
        .with_state(conman);
    Router::new()
        .nest("/api", api)
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
