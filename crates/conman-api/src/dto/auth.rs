//! Wire types of `/api/auth` and `/api/me`.

use chrono::{DateTime, Utc};
use conman_core::domain::user::{User, UserSummary};
use conman_core::services::{IssuedToken, LoginOutcome, MeView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as others see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserDto {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Handle (used in workspace branch names).
    pub handle: String,
    /// Server operator.
    pub is_operator: bool,
}

impl From<&UserSummary> for UserDto {
    fn from(u: &UserSummary) -> Self {
        UserDto {
            id: u.id.0,
            email: u.email.to_string(),
            name: u.name.clone(),
            handle: u.handle.to_string(),
            is_operator: u.is_operator,
        }
    }
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto::from(&UserSummary::from(u))
    }
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionDto {
    /// Bearer token (shown once).
    pub token: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The user.
    pub user: UserDto,
}

impl From<LoginOutcome> for SessionDto {
    fn from(o: LoginOutcome) -> Self {
        SessionDto { token: o.token, expires_at: o.expires_at, user: UserDto::from(&o.user) }
    }
}

/// `POST /api/auth/forgot-password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// Email of the account.
    pub email: String,
}

/// `POST /api/auth/reset-password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// Token from the reset mail.
    pub token: String,
    /// New password (at least 12 characters).
    #[schema(schema_with = crate::dto::schemas::password)]
    pub new_password: String,
}

/// `POST /api/auth/accept-invite`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// Invite token.
    pub token: String,
    /// Display name (ignored when the email already has an account).
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::display_name)]
    pub name: String,
    /// New password, or the existing account's password.
    #[schema(schema_with = crate::dto::schemas::password)]
    pub password: String,
}

/// A membership of the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipDto {
    /// App id.
    pub app_id: Uuid,
    /// App name.
    pub app_name: String,
    /// Role: `user`, `reviewer`, `config_manager` or `app_admin`.
    pub role: String,
}

/// `GET /api/me`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeDto {
    /// The caller.
    pub user: UserDto,
    /// Email notifications on or off.
    pub email_notifications: bool,
    /// Memberships.
    pub memberships: Vec<MembershipDto>,
}

impl From<MeView> for MeDto {
    fn from(m: MeView) -> Self {
        MeDto {
            user: UserDto::from(&m.user),
            email_notifications: m.email_notifications,
            memberships: m
                .memberships
                .into_iter()
                .map(|v| MembershipDto { app_id: v.app_id.0, app_name: v.app_name, role: v.role.to_string() })
                .collect(),
        }
    }
}

/// Notification preferences.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    /// Email notifications on or off.
    pub email_enabled: bool,
}

/// `POST /api/me/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name to recognise the token by.
    #[schema(schema_with = crate::dto::schemas::token_name)]
    pub name: String,
    /// Lifetime in days (1-3650); no expiry when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// `DELETE /api/me/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenRequest {
    /// Id of the token to revoke.
    pub id: Uuid,
}

/// A personal API token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiTokenDto {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The token: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<IssuedToken> for ApiTokenDto {
    fn from(t: IssuedToken) -> Self {
        ApiTokenDto {
            id: t.id.0,
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            token: t.token,
        }
    }
}
