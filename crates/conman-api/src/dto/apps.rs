//! Wire types of apps, settings, members and invites. Request types read
//! their bodies (unknown fields refused at every level) and convert into
//! the core's plain inputs (`NewApp`, `AppSettingsPatch`), which have no
//! serde of their own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use conman_core::domain::app::{
    App, AppSettings, AppSettingsPatch, BaselineMode, CommitMode, GateSettings, PathRule, ProfileApprovalPolicy,
    UnreviewedGateSecrets,
};
use conman_core::domain::invite::Invite;
use conman_core::domain::membership::Membership;
use conman_core::ids::UserId;
use conman_core::ports::store::MemberRecord;
use conman_core::rbac::Role;
use conman_core::services::{IssuedInvite, NewApp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::UserDto;

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// `POST /api/apps`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    /// 1-63 of `[a-z0-9-]`, unique.
    #[schema(schema_with = crate::dto::schemas::slug_name)]
    pub name: String,
    /// Integration branch (default `main`).
    #[serde(default)]
    pub integration_branch: Option<String>,
    /// Absolute local path or URL to import the repository from.
    #[serde(default)]
    pub import_from: Option<String>,
}

impl From<CreateAppRequest> for NewApp {
    fn from(r: CreateAppRequest) -> Self {
        NewApp { name: r.name, integration_branch: r.integration_branch, import_from: r.import_from }
    }
}

/// `gates` of a settings patch: each command `null` falls back to the
/// server's configuration (schema: `schemas::gates_opt`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesInputDto {
    /// Submit gate command.
    #[serde(default)]
    pub submit: Option<String>,
    /// Release gate command.
    #[serde(default)]
    pub release: Option<String>,
    /// Deploy gate command.
    #[serde(default)]
    pub deploy: Option<String>,
    /// Timeout in seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl From<GatesInputDto> for GateSettings {
    fn from(g: GatesInputDto) -> Self {
        GateSettings { submit: g.submit, release: g.release, deploy: g.deploy, timeout_secs: g.timeout_secs }
    }
}

/// One code-owner rule of a settings patch (schema: `schemas::path_rules_opt`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRuleInputDto {
    /// Glob over repository paths.
    pub glob: String,
    /// Minimum role of an eligible approver.
    #[serde(default)]
    pub role: Option<Role>,
    /// Explicit eligible approvers.
    #[serde(default)]
    pub user_ids: Vec<Uuid>,
}

impl From<PathRuleInputDto> for PathRule {
    fn from(r: PathRuleInputDto) -> Self {
        PathRule { glob: r.glob, role: r.role, user_ids: r.user_ids.into_iter().map(UserId).collect() }
    }
}

/// Gate commands of an app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GatesDto {
    /// Submit gate command (server default when null).
    pub submit: Option<String>,
    /// Release gate command.
    pub release: Option<String>,
    /// Deploy gate command.
    pub deploy: Option<String>,
    /// Timeout in seconds.
    pub timeout_secs: Option<u64>,
}

/// A code-owner rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PathRuleDto {
    /// Glob over paths.
    pub glob: String,
    /// Minimum role of an eligible approver.
    pub role: Option<String>,
    /// Eligible approvers.
    pub user_ids: Vec<Uuid>,
}

/// App settings (SPEC §2.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsDto {
    /// Branch releases land on.
    pub integration_branch: String,
    /// `integration_head` or `canonical_env_release`.
    pub baseline_mode: String,
    /// `submit_commit` or `manual_checkpoint`.
    pub commit_mode_default: String,
    /// Globs nobody may write.
    pub blocked_paths: Vec<String>,
    /// Largest file accepted, bytes.
    pub file_size_limit_bytes: u64,
    /// Distinct approvals needed.
    pub required_approvals: u32,
    /// Authors may approve their own changesets.
    pub allow_self_approval: bool,
    /// `stricter_two_approvals` or `same_as_changeset`.
    pub profile_approval_policy: String,
    /// Temp-env URL domain (server default when null).
    pub temp_url_domain: Option<String>,
    /// Gate commands.
    pub gates: GatesDto,
    /// Code-owner rules.
    pub path_rules: Vec<PathRuleDto>,
    /// `placeholder` (default) or `real`: the secrets of gates that run
    /// unreviewed content (a changeset's submit gate).
    #[schema(example = "placeholder")]
    pub unreviewed_gate_secrets: String,
    /// Deploy commands by environment name (used when the operator allows
    /// per-app commands).
    pub deploy_commands: BTreeMap<String, String>,
    /// The requester of a deployment exception may be one of its two
    /// approvers.
    pub allow_deploy_self_approval: bool,
}

impl From<&AppSettings> for SettingsDto {
    fn from(s: &AppSettings) -> Self {
        SettingsDto {
            integration_branch: s.integration_branch.clone(),
            baseline_mode: snake(&s.baseline_mode),
            commit_mode_default: snake(&s.commit_mode_default),
            blocked_paths: s.blocked_paths.clone(),
            file_size_limit_bytes: s.file_size_limit_bytes,
            required_approvals: s.required_approvals,
            allow_self_approval: s.allow_self_approval,
            profile_approval_policy: snake(&s.profile_approval_policy),
            temp_url_domain: s.temp_url_domain.clone(),
            gates: GatesDto {
                submit: s.gates.submit.clone(),
                release: s.gates.release.clone(),
                deploy: s.gates.deploy.clone(),
                timeout_secs: s.gates.timeout_secs,
            },
            path_rules: s
                .path_rules
                .iter()
                .map(|r| PathRuleDto {
                    glob: r.glob.clone(),
                    role: r.role.map(|r| r.to_string()),
                    user_ids: r.user_ids.iter().map(|u| u.0).collect(),
                })
                .collect(),
            unreviewed_gate_secrets: s.unreviewed_gate_secrets.as_str().to_owned(),
            deploy_commands: s.deploy_commands.clone(),
            allow_deploy_self_approval: s.allow_deploy_self_approval,
        }
    }
}

/// `PATCH /api/apps/:appId/settings`: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatchDto {
    /// Branch releases land on (must exist).
    #[serde(default)]
    pub integration_branch: Option<String>,
    /// `integration_head` or `canonical_env_release`.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::baseline_mode_opt)]
    pub baseline_mode: Option<BaselineMode>,
    /// `submit_commit` or `manual_checkpoint`.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::commit_mode_opt)]
    pub commit_mode_default: Option<CommitMode>,
    /// Globs nobody may write (`.git/**` stays blocked regardless).
    #[serde(default)]
    pub blocked_paths: Option<Vec<String>>,
    /// 1 to 67108864.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 67108864)]
    pub file_size_limit_bytes: Option<u64>,
    /// 1-20.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    pub required_approvals: Option<u32>,
    /// Authors may approve their own changesets.
    #[serde(default)]
    pub allow_self_approval: Option<bool>,
    /// `stricter_two_approvals` or `same_as_changeset`.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::approval_policy_opt)]
    pub profile_approval_policy: Option<ProfileApprovalPolicy>,
    /// Temp-env URL domain; empty string resets to the server default.
    #[serde(default)]
    #[schema(max_length = 253, pattern = r"^([A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*)?$")]
    pub temp_url_domain: Option<String>,
    /// `{submit?, release?, deploy?, timeout_secs?}`.
    #[serde(default, deserialize_with = "crate::dto::schemas::object_only")]
    #[schema(schema_with = crate::dto::schemas::gates_opt)]
    pub gates: Option<GatesInputDto>,
    /// `[{glob, role?, user_ids?}]`.
    #[serde(default, deserialize_with = "crate::dto::schemas::objects_only")]
    #[schema(schema_with = crate::dto::schemas::path_rules_opt)]
    pub path_rules: Option<Vec<PathRuleInputDto>>,
    /// `placeholder` or `real` (`app_admin`): whether a changeset's submit
    /// gate gets the real secret values (masked in the job log) or
    /// placeholders.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::unreviewed_gate_secrets_opt)]
    pub unreviewed_gate_secrets: Option<UnreviewedGateSecrets>,
    /// Deploy commands by environment name (replaces the whole map).
    #[serde(default)]
    pub deploy_commands: Option<BTreeMap<String, String>>,
    /// The requester of a deployment exception may be one of its two
    /// approvers (default: no).
    #[serde(default)]
    pub allow_deploy_self_approval: Option<bool>,
}

impl From<SettingsPatchDto> for AppSettingsPatch {
    fn from(p: SettingsPatchDto) -> Self {
        AppSettingsPatch {
            integration_branch: p.integration_branch,
            baseline_mode: p.baseline_mode,
            commit_mode_default: p.commit_mode_default,
            blocked_paths: p.blocked_paths,
            file_size_limit_bytes: p.file_size_limit_bytes,
            required_approvals: p.required_approvals,
            allow_self_approval: p.allow_self_approval,
            profile_approval_policy: p.profile_approval_policy,
            temp_url_domain: p.temp_url_domain,
            gates: p.gates.map(Into::into),
            path_rules: p.path_rules.map(|rules| rules.into_iter().map(Into::into).collect()),
            unreviewed_gate_secrets: p.unreviewed_gate_secrets,
            deploy_commands: p.deploy_commands,
            allow_deploy_self_approval: p.allow_deploy_self_approval,
        }
    }
}

/// An app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppDto {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Settings.
    pub settings: SettingsDto,
    /// Creator.
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The caller's role, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl AppDto {
    /// Converts, attaching the caller's role when known.
    pub fn new(app: &App, role: Option<Role>) -> Self {
        AppDto {
            id: app.id.0,
            name: app.name.clone(),
            settings: SettingsDto::from(&app.settings),
            created_by: app.created_by.0,
            created_at: app.created_at,
            updated_at: app.updated_at,
            role: role.map(|r| r.to_string()),
        }
    }
}

/// A member of an app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberDto {
    /// The user.
    pub user: UserDto,
    /// Role.
    pub role: String,
    /// Member since.
    pub created_at: DateTime<Utc>,
}

impl From<MemberRecord> for MemberDto {
    fn from(m: MemberRecord) -> Self {
        MemberDto {
            user: UserDto::from(&m.user),
            role: m.membership.role.to_string(),
            created_at: m.membership.created_at,
        }
    }
}

/// `POST /api/apps/:appId/members`: add a user or change their role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMemberRequest {
    /// The user.
    pub user_id: Uuid,
    /// `user`, `reviewer`, `config_manager` or `app_admin`.
    #[schema(schema_with = crate::dto::schemas::role)]
    pub role: Role,
}

/// A membership after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipChangeDto {
    /// App.
    pub app_id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Role.
    pub role: String,
}

impl From<&Membership> for MembershipChangeDto {
    fn from(m: &Membership) -> Self {
        MembershipChangeDto { app_id: m.app_id.0, user_id: m.user_id.0, role: m.role.to_string() }
    }
}

/// `POST /api/apps/:appId/invites`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// Invitee's email.
    #[schema(format = Email)]
    pub email: String,
    /// Role granted on acceptance.
    #[schema(schema_with = crate::dto::schemas::role)]
    pub role: Role,
}

/// An invite.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InviteDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Invitee.
    pub email: String,
    /// Role granted.
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub state: String,
    /// Who invited.
    pub invited_by: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry of the current token.
    pub expires_at: DateTime<Utc>,
    /// Who accepted.
    pub accepted_by: Option<Uuid>,
}

impl From<&Invite> for InviteDto {
    fn from(i: &Invite) -> Self {
        InviteDto {
            id: i.id.0,
            app_id: i.app_id.0,
            email: i.email.to_string(),
            role: i.role.to_string(),
            state: snake(&i.state),
            invited_by: i.invited_by.0,
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_by: i.accepted_by.map(|u| u.0),
        }
    }
}

/// An invite with its one-time token (create and resend answers only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedInviteDto {
    /// Invite id.
    pub id: Uuid,
    /// The token to accept it (shown once).
    pub token: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The invite.
    pub invite: InviteDto,
}

impl From<IssuedInvite> for IssuedInviteDto {
    fn from(i: IssuedInvite) -> Self {
        IssuedInviteDto {
            id: i.invite.id.0,
            token: i.token,
            expires_at: i.invite.expires_at,
            invite: InviteDto::from(&i.invite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::parse_body;

    #[test]
    fn settings_patches_refuse_unknown_fields_and_wrong_types_at_every_level() {
        for bad in [
            r#"{"nope": 1}"#,
            r#"{"required_approvals": "two"}"#,
            r#"{"gates": {"submit": "make", "shell": "sh"}}"#,
            r#"{"path_rules": [{"glob": "a/**", "team": "x"}]}"#,
            r#"{"path_rules": [{"glob": "a/**", "role": "owner"}]}"#,
        ] {
            assert!(parse_body::<SettingsPatchDto>(bad.as_bytes()).is_err(), "{bad}");
        }
        let patch: SettingsPatchDto = parse_body(
            br#"{"required_approvals": 2, "gates": {"timeout_secs": 30},
                 "path_rules": [{"glob": "a/**", "role": "reviewer", "user_ids": ["00000000-0000-7000-8000-000000000001"]}]}"#,
        )
        .unwrap();
        let patch = AppSettingsPatch::from(patch);
        assert_eq!(patch.required_approvals, Some(2));
        assert_eq!(patch.gates, Some(GateSettings { timeout_secs: Some(30), ..Default::default() }));
        let rules = patch.path_rules.unwrap();
        assert_eq!((rules[0].role, rules[0].user_ids.len()), (Some(Role::Reviewer), 1));
    }
}
