//! Service configuration: lifetimes, limits and policy switches set by the
//! operator (SPEC §9). Binaries build it from environment and flags.

use std::time::Duration;

/// Rate limits for login and password-reset requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures allowed per account within `window`.
    pub per_account: u32,
    /// Failures allowed per client IP within `window`.
    pub per_ip: u32,
    /// Sliding window.
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { per_account: 5, per_ip: 20, window: Duration::from_secs(15 * 60) }
    }
}

/// Server-wide gate commands (SPEC §6.3); `None` means the gate passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateCommands {
    /// Submit gate.
    pub submit: Option<String>,
    /// Release gate.
    pub release: Option<String>,
    /// Deploy gate.
    pub deploy: Option<String>,
    /// Deploy command of every environment (an app's own per-environment
    /// command wins when per-app commands are allowed).
    pub deploy_command: Option<String>,
    /// Timeout of one gate run.
    pub timeout: Duration,
}

impl Default for GateCommands {
    fn default() -> Self {
        GateCommands {
            submit: None,
            release: None,
            deploy: None,
            deploy_command: None,
            timeout: Duration::from_secs(600),
        }
    }
}

/// Job runner policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobConfig {
    /// How long a claim lasts without renewal (workers renew at a third of it).
    pub lease_ttl: Duration,
    /// Attempts per job unless its type says otherwise.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Bound of one job's stored log.
    pub log_limit_bytes: u64,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            lease_ttl: Duration::from_secs(30),
            max_attempts: 3,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            log_limit_bytes: crate::domain::job::JOB_LOG_LIMIT_BYTES,
        }
    }
}

/// What the operator configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Session lifetime (SPEC: 24 h).
    pub session_ttl: Duration,
    /// Invite lifetime (SPEC: 7 days).
    pub invite_ttl: Duration,
    /// Password-reset token lifetime.
    pub password_reset_ttl: Duration,
    /// Whether app admins may set per-app gate commands (default: no —
    /// an app admin with them runs any shell command on the server).
    pub allow_app_gate_commands: bool,
    /// Login / reset throttling.
    pub throttle: ThrottleConfig,
    /// Base URL printed in invite and reset mails.
    pub public_url: String,
    /// Server-wide gate commands.
    pub gates: GateCommands,
    /// Job runner policy.
    pub jobs: JobConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_ttl: Duration::from_secs(24 * 3600),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            password_reset_ttl: Duration::from_secs(3600),
            allow_app_gate_commands: false,
            throttle: ThrottleConfig::default(),
            public_url: "http://127.0.0.1:3000".into(),
            gates: GateCommands::default(),
            jobs: JobConfig::default(),
        }
    }
}
