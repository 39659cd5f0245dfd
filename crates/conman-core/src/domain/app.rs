//! Apps and their settings (SPEC §2.1). One app is one Git repository.
//!
//! Serde here is persistence: an [`App`] and its [`AppSettings`] are stored
//! as JSON by the stores and appear in audit `before`/`after`; the strict
//! `deny_unknown_fields` of a stored document refuses a row written by a
//! version that knows fields this one does not, instead of dropping them.
//! Requests are read by `conman_api::dto` types and converted into the
//! plain input types here ([`AppSettingsPatch`]).

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, UserId};
use crate::rbac::Role;
use crate::validation::{validate_branch_name, BlockedPaths, GlobList, DEFAULT_FILE_SIZE_LIMIT};

/// An app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    /// Identity.
    pub id: AppId,
    /// Unique, URL-safe name.
    pub name: String,
    /// Settings.
    pub settings: AppSettings,
    /// Creator (first `app_admin`).
    pub created_by: UserId,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl App {
    /// The integration branch as a full ref.
    pub fn integration_ref(&self) -> String {
        format!("refs/heads/{}", self.settings.integration_branch)
    }
}

/// Where new workspaces start and what `reset`/`sync` return to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMode {
    /// The integration branch head.
    IntegrationHead,
    /// The release deployed to the canonical environment (falls back to the
    /// integration head while none is deployed).
    CanonicalEnvRelease,
}

/// When workspace edits become commits on the workspace branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Edits are squashed into one commit at submit.
    SubmitCommit,
    /// Each checkpoint makes a commit.
    ManualCheckpoint,
}

/// Which approval policy applies to canonical-profile overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileApprovalPolicy {
    /// Two approvals.
    StricterTwoApprovals,
    /// Same as any changeset.
    SameAsChangeset,
}

/// Gate commands of an app; `None` falls back to the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
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

/// What secrets a gate running *unreviewed* content (a changeset's submit
/// gate, later revalidation and temp-environment provisioning of a
/// workspace) gets. Gates of reviewed content (release, deploy) always get
/// the real values. See docs/decisions/0013-job-log-secrets.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreviewedGateSecrets {
    /// Secret names are present with the value [`GATE_SECRET_PLACEHOLDER`]
    /// (the default, as forks' pull requests get no secrets on CI services).
    #[default]
    Placeholder,
    /// The real values (masked in the job log); an `app_admin` opts in.
    Real,
}

impl UnreviewedGateSecrets {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnreviewedGateSecrets::Placeholder => "placeholder",
            UnreviewedGateSecrets::Real => "real",
        }
    }
}

/// The value every secret has in a gate that gets placeholders.
pub const GATE_SECRET_PLACEHOLDER: &str = "conman-placeholder-secret";

/// Code-owner style rule: changesets touching `glob` need an approval from
/// someone with at least `role`, or from one of `user_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// Glob over repository paths.
    pub glob: String,
    /// Minimum role of an eligible approver.
    #[serde(default)]
    pub role: Option<Role>,
    /// Explicit eligible approvers.
    #[serde(default)]
    pub user_ids: Vec<UserId>,
}

/// Settings of SPEC §2.1, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Branch releases land on.
    pub integration_branch: String,
    /// Baseline of new workspaces.
    pub baseline_mode: BaselineMode,
    /// Default commit mode (users may override for themselves).
    pub commit_mode_default: CommitMode,
    /// Globs of paths nobody may write.
    pub blocked_paths: Vec<String>,
    /// Largest file content accepted.
    pub file_size_limit_bytes: u64,
    /// Distinct approvals a changeset needs.
    pub required_approvals: u32,
    /// Whether authors may approve their own changesets.
    pub allow_self_approval: bool,
    /// Approval policy for canonical-profile overrides.
    pub profile_approval_policy: ProfileApprovalPolicy,
    /// Domain of temp-environment URLs (server default when `None`).
    pub temp_url_domain: Option<String>,
    /// Gate commands.
    pub gates: GateSettings,
    /// Code-owner rules.
    pub path_rules: Vec<PathRule>,
    /// Secrets of gates that run unreviewed content.
    #[serde(default)]
    pub unreviewed_gate_secrets: UnreviewedGateSecrets,
    /// Deploy commands by environment name (SPEC §2.5), used when the
    /// operator allows per-app commands; else the server's.
    #[serde(default)]
    pub deploy_commands: std::collections::BTreeMap<String, String>,
    /// Whether the requester of a deployment exception may be one of its
    /// two approvers (default: no).
    #[serde(default)]
    pub allow_deploy_self_approval: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            integration_branch: "main".into(),
            baseline_mode: BaselineMode::CanonicalEnvRelease,
            commit_mode_default: CommitMode::SubmitCommit,
            blocked_paths: BlockedPaths::default_patterns(),
            file_size_limit_bytes: DEFAULT_FILE_SIZE_LIMIT,
            required_approvals: 1,
            allow_self_approval: false,
            profile_approval_policy: ProfileApprovalPolicy::StricterTwoApprovals,
            temp_url_domain: None,
            gates: GateSettings::default(),
            path_rules: Vec::new(),
            unreviewed_gate_secrets: UnreviewedGateSecrets::default(),
            deploy_commands: std::collections::BTreeMap::new(),
            allow_deploy_self_approval: false,
        }
    }
}

/// A partial update of [`AppSettings`]; absent fields stay as they are.
/// Not a wire type: `conman_api::dto::SettingsPatchDto` is read from a
/// request and converted into it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppSettingsPatch {
    /// See [`AppSettings::integration_branch`].
    pub integration_branch: Option<String>,
    /// See [`AppSettings::baseline_mode`].
    pub baseline_mode: Option<BaselineMode>,
    /// See [`AppSettings::commit_mode_default`].
    pub commit_mode_default: Option<CommitMode>,
    /// See [`AppSettings::blocked_paths`].
    pub blocked_paths: Option<Vec<String>>,
    /// See [`AppSettings::file_size_limit_bytes`].
    pub file_size_limit_bytes: Option<u64>,
    /// See [`AppSettings::required_approvals`].
    pub required_approvals: Option<u32>,
    /// See [`AppSettings::allow_self_approval`].
    pub allow_self_approval: Option<bool>,
    /// See [`AppSettings::profile_approval_policy`].
    pub profile_approval_policy: Option<ProfileApprovalPolicy>,
    /// See [`AppSettings::temp_url_domain`].
    pub temp_url_domain: Option<String>,
    /// See [`AppSettings::gates`].
    pub gates: Option<GateSettings>,
    /// See [`AppSettings::path_rules`].
    pub path_rules: Option<Vec<PathRule>>,
    /// See [`AppSettings::unreviewed_gate_secrets`].
    pub unreviewed_gate_secrets: Option<UnreviewedGateSecrets>,
    /// See [`AppSettings::deploy_commands`] (replaces the whole map).
    pub deploy_commands: Option<std::collections::BTreeMap<String, String>>,
    /// See [`AppSettings::allow_deploy_self_approval`].
    pub allow_deploy_self_approval: Option<bool>,
}

/// Hard ceiling on `file_size_limit_bytes` (64 MiB): content travels as
/// base64 in JSON bodies and is held in memory.
pub const MAX_FILE_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

impl AppSettings {
    /// Applies `patch` and validates the result as a whole.
    pub fn patched(&self, patch: AppSettingsPatch) -> Result<AppSettings, Error> {
        let mut s = self.clone();
        macro_rules! take {
            ($($f:ident),*) => {$( if let Some(v) = patch.$f { s.$f = v; } )*};
        }
        take!(
            integration_branch,
            baseline_mode,
            commit_mode_default,
            blocked_paths,
            file_size_limit_bytes,
            required_approvals,
            allow_self_approval,
            profile_approval_policy,
            gates,
            path_rules,
            unreviewed_gate_secrets,
            deploy_commands,
            allow_deploy_self_approval
        );
        if let Some(domain) = patch.temp_url_domain {
            s.temp_url_domain = if domain.is_empty() { None } else { Some(domain) };
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks every field's rule.
    pub fn validate(&self) -> Result<(), Error> {
        validate_branch_name(&self.integration_branch)?;
        BlockedPaths::new(&self.blocked_paths)?;
        if self.file_size_limit_bytes == 0 || self.file_size_limit_bytes > MAX_FILE_SIZE_LIMIT {
            return Err(Error::invalid(
                "file_size_limit_bytes",
                "out_of_range",
                "file_size_limit_bytes must be between 1 and 67108864",
            ));
        }
        for (env, command) in &self.deploy_commands {
            crate::domain::environment::validate_environment_name(env)?;
            if command.len() > 4096 || command.contains('\0') {
                return Err(Error::invalid(
                    "deploy_commands",
                    "invalid_command",
                    format!("the deploy command of {env} must be at most 4096 bytes without NUL"),
                ));
            }
        }
        if !(1..=20).contains(&self.required_approvals) {
            return Err(Error::invalid("required_approvals", "out_of_range", "required_approvals must be 1-20"));
        }
        if let Some(domain) = &self.temp_url_domain {
            let ok = domain.len() <= 253
                && domain.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(Error::invalid(
                    "temp_url_domain",
                    "invalid_domain",
                    "temp_url_domain is not a domain name",
                ));
            }
        }
        if self.gates.timeout_secs.is_some_and(|t| t == 0 || t > 24 * 3600) {
            return Err(Error::invalid("gates.timeout_secs", "out_of_range", "gate timeout must be 1-86400 seconds"));
        }
        for cmd in [&self.gates.submit, &self.gates.release, &self.gates.deploy].into_iter().flatten() {
            if cmd.len() > 8192 || cmd.contains('\0') {
                return Err(Error::invalid("gates", "invalid_command", "gate commands must be at most 8192 bytes"));
            }
        }
        for rule in &self.path_rules {
            GlobList::new(std::slice::from_ref(&rule.glob))?;
            if rule.role.is_none() && rule.user_ids.is_empty() {
                return Err(Error::invalid("path_rules", "empty_rule", "a path rule needs a role or user_ids"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let s = AppSettings::default();
        assert_eq!(s.integration_branch, "main");
        assert_eq!(s.baseline_mode, BaselineMode::CanonicalEnvRelease);
        assert_eq!(s.commit_mode_default, CommitMode::SubmitCommit);
        assert_eq!(s.blocked_paths, [".git/**", ".gitignore", ".github/**"]);
        assert_eq!(s.file_size_limit_bytes, 5 * 1024 * 1024);
        assert_eq!(s.required_approvals, 1);
        assert!(!s.allow_self_approval);
        assert_eq!(s.profile_approval_policy, ProfileApprovalPolicy::StricterTwoApprovals);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn patch_changes_only_given_fields() {
        let patch = AppSettingsPatch { required_approvals: Some(2), ..Default::default() };
        let s = AppSettings::default().patched(patch).unwrap();
        assert_eq!(s.required_approvals, 2);
        assert_eq!(s.integration_branch, "main");
    }

    #[test]
    fn patch_refuses_bad_values() {
        let bad = [
            AppSettingsPatch { required_approvals: Some(0), ..Default::default() },
            AppSettingsPatch { file_size_limit_bytes: Some(0), ..Default::default() },
            AppSettingsPatch { integration_branch: Some("a..b".into()), ..Default::default() },
            AppSettingsPatch { blocked_paths: Some(vec!["a[".into()]), ..Default::default() },
            AppSettingsPatch { temp_url_domain: Some("bad domain".into()), ..Default::default() },
            AppSettingsPatch {
                path_rules: Some(vec![PathRule { glob: "x/**".into(), role: None, user_ids: vec![] }]),
                ..Default::default()
            },
        ];
        for patch in bad {
            assert!(AppSettings::default().patched(patch.clone()).is_err(), "{patch:?}");
        }
    }
}
