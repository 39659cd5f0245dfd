//! Drift (SPEC §2.5): what an environment was last validated against, and
//! the migration execution records deploys write.
//!
//! Invariants:
//! - an environment's drift baseline is its newest [`EnvironmentValidation`]
//!   (written by each successful deployment and each passing drift check);
//!   validations and [`MigrationExecution`]s are append-only;
//! - [`migrations_fingerprint`] depends on the set of records only, not on
//!   the order they are given in (records are hashed in id order), and
//!   changes whenever a record is added or differs in any field;
//! - [`drift_between`] reports drift exactly when the environment's profile
//!   (which one, and its effective revision) or its migration fingerprint
//!   differs from the baseline.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::runtime_profile::revision::ProfileDocument;
use super::runtime_profile::AppliedState;
use super::Timestamp;
use crate::ids::{
    AppId, DeploymentId, EnvironmentId, EnvironmentValidationId, JobId, MigrationExecutionId, ReleaseId,
    RuntimeProfileId,
};

/// What an environment was validated against; the newest one of an
/// environment is its drift baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentValidation {
    /// Identity.
    pub id: EnvironmentValidationId,
    /// Owning app.
    pub app_id: AppId,
    /// The validated environment.
    pub environment_id: EnvironmentId,
    /// Its runtime profile then, if it had one.
    pub profile_id: Option<RuntimeProfileId>,
    /// The effective profile revision validated.
    pub profile_revision: Option<u32>,
    /// [`migrations_fingerprint`] of the environment's migration records then.
    pub migrations_fingerprint: String,
    /// What validated it.
    pub source: ValidationSource,
    /// When.
    pub at: Timestamp,
}

/// What validated an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ValidationSource {
    /// A successful deployment.
    Deployment {
        /// The deployment.
        deployment_id: DeploymentId,
    },
    /// A passing `drift_check` job.
    DriftCheck {
        /// The job.
        job_id: JobId,
    },
}

/// One run of an environment's migrations by a deployment, from the
/// profile's `migrations` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationExecution {
    /// Identity.
    pub id: MigrationExecutionId,
    /// Owning app.
    pub app_id: AppId,
    /// The environment migrated.
    pub environment_id: EnvironmentId,
    /// The release deployed.
    pub release_id: ReleaseId,
    /// The deployment that ran them.
    pub deployment_id: DeploymentId,
    /// The migration paths of the profile.
    pub paths: Vec<String>,
    /// The command that applied them, if any.
    pub command: Option<String>,
    /// What the migrations left applied, when known.
    pub applied_state: Option<AppliedState>,
    /// The effective profile revision they ran with.
    pub profile_revision: u32,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// A profile as drift compares it: which one, at which effective revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileState {
    /// The environment's profile, if it has one.
    pub profile_id: Option<RuntimeProfileId>,
    /// Its effective revision.
    pub revision: Option<u32>,
}

impl EnvironmentValidation {
    /// The profile this validation saw.
    pub fn profile_state(&self) -> ProfileState {
        ProfileState { profile_id: self.profile_id, revision: self.profile_revision }
    }
}

/// One drifted value: what the baseline holds and what holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drifted<T> {
    /// At the last validation.
    pub validated: T,
    /// Now.
    pub current: T,
}

/// Why an environment has drifted from its baseline; at least one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReason {
    /// The profile, when it differs.
    pub profile: Option<Drifted<ProfileState>>,
    /// The migration fingerprint, when it differs.
    pub migrations: Option<Drifted<String>>,
}

/// Fingerprint format, part of every fingerprint so a change of format is
/// itself seen as drift rather than colliding.
const FINGERPRINT_DOMAIN: &[u8] = b"conman-migrations-v1\n";

/// A stable fingerprint of an environment's migration records:
/// `sha256:<hex>` over each record's JSON document, in id order (UUIDv7:
/// recording order), each followed by a newline. The order the records are
/// given in does not matter; the empty set has a fingerprint too.
pub fn migrations_fingerprint(records: &[MigrationExecution]) -> String {
    let mut ordered: Vec<&MigrationExecution> = records.iter().collect();
    ordered.sort_by_key(|r| r.id);
    let mut hash = Sha256::new();
    hash.update(FINGERPRINT_DOMAIN);
    for record in ordered {
        // Serializing a plain struct of strings, ids and timestamps cannot fail.
        let doc = serde_json::to_vec(record).unwrap_or_default();
        hash.update(&doc);
        hash.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// The drift of an environment from `validated` (its baseline), given its
/// profile now and the fingerprint of its migration records now; `None`
/// when nothing differs.
pub fn drift_between(
    validated: &EnvironmentValidation,
    current_profile: ProfileState,
    current_fingerprint: &str,
) -> Option<DriftReason> {
    let was = validated.profile_state();
    let profile = (was != current_profile).then_some(Drifted { validated: was, current: current_profile });
    let migrations = (validated.migrations_fingerprint != current_fingerprint).then(|| Drifted {
        validated: validated.migrations_fingerprint.clone(),
        current: current_fingerprint.to_owned(),
    });
    (profile.is_some() || migrations.is_some()).then_some(DriftReason { profile, migrations })
}

/// The keys of a profile that differ between `validated` and `current`
/// documents, by name only: `env_vars.<NAME>` and `secrets.<NAME>` for each
/// variable or secret added, removed or changed (a secret changes when its
/// revision does), and the name of each other section that differs
/// (`base_url`, `database`, `migrations`, `data_strategy`, `lifecycle`).
pub fn drifted_keys(validated: &ProfileDocument, current: &ProfileDocument) -> Vec<String> {
    let mut keys = Vec::new();
    let names = |a: &mut Vec<String>, prefix: &str, was: Vec<(&String, String)>, now: Vec<(&String, String)>| {
        let was: std::collections::BTreeMap<_, _> = was.into_iter().collect();
        let now: std::collections::BTreeMap<_, _> = now.into_iter().collect();
        for name in was.keys().chain(now.keys()).collect::<std::collections::BTreeSet<_>>() {
            if was.get(name) != now.get(name) {
                a.push(format!("{prefix}.{name}"));
            }
        }
    };
    fn vars(d: &ProfileDocument) -> Vec<(&String, String)> {
        d.env_vars.iter().map(|(k, v)| (k, format!("{v:?}"))).collect()
    }
    fn secrets(d: &ProfileDocument) -> Vec<(&String, String)> {
        d.secrets.iter().map(|(k, m)| (k, m.revision.to_string())).collect()
    }
    names(&mut keys, "env_vars", vars(validated), vars(current));
    names(&mut keys, "secrets", secrets(validated), secrets(current));
    let sections = [
        ("base_url", validated.base_url != current.base_url),
        ("database", validated.database != current.database),
        ("migrations", validated.migrations != current.migrations),
        ("data_strategy", validated.data_strategy != current.data_strategy),
        ("lifecycle", validated.lifecycle != current.lifecycle),
    ];
    keys.extend(sections.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name.to_owned()));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn at() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().with_timezone(&chrono::Utc)
    }

    fn record(n: u128, revision: u32) -> MigrationExecution {
        MigrationExecution {
            id: MigrationExecutionId(Uuid::from_u128(n)),
            app_id: AppId(Uuid::nil()),
            environment_id: EnvironmentId(Uuid::nil()),
            release_id: ReleaseId(Uuid::from_u128(100)),
            deployment_id: DeploymentId(Uuid::from_u128(200)),
            paths: vec!["db/migrations".into()],
            command: Some("migrate up".into()),
            applied_state: Some(AppliedState { last_applied: "0007".into(), checksum: None, recorded_at: at() }),
            profile_revision: revision,
            recorded_at: at(),
        }
    }

    fn validation(profile: ProfileState, fingerprint: &str) -> EnvironmentValidation {
        EnvironmentValidation {
            id: EnvironmentValidationId(Uuid::nil()),
            app_id: AppId(Uuid::nil()),
            environment_id: EnvironmentId(Uuid::nil()),
            profile_id: profile.profile_id,
            profile_revision: profile.revision,
            migrations_fingerprint: fingerprint.into(),
            source: ValidationSource::DriftCheck { job_id: JobId(Uuid::nil()) },
            at: at(),
        }
    }

    #[test]
    fn the_fingerprint_sees_every_record_and_every_field() {
        let (a, b) = (record(1, 3), record(2, 3));
        let both = migrations_fingerprint(&[a.clone(), b.clone()]);
        assert!(both.starts_with("sha256:") && both.len() == 7 + 64, "{both}");
        assert_eq!(both, migrations_fingerprint(&[b.clone(), a.clone()]), "order does not matter");
        assert_ne!(both, migrations_fingerprint(std::slice::from_ref(&a)), "a record added");
        assert_ne!(migrations_fingerprint(&[]), migrations_fingerprint(std::slice::from_ref(&a)));
        let edited = MigrationExecution { command: Some("migrate up --all".into()), ..b.clone() };
        assert_ne!(both, migrations_fingerprint(&[a.clone(), edited]), "a field differs");
        let state = MigrationExecution { applied_state: None, ..b };
        assert_ne!(both, migrations_fingerprint(&[a, state]));
        // The empty set is stable across calls (and versions: it is pinned).
        assert_eq!(migrations_fingerprint(&[]), migrations_fingerprint(&[]));
    }

    #[test]
    fn drift_names_what_changed() {
        let profile = ProfileState { profile_id: Some(RuntimeProfileId(Uuid::from_u128(5))), revision: Some(4) };
        let base = validation(profile, "sha256:aa");
        assert_eq!(drift_between(&base, profile, "sha256:aa"), None);

        let edited = ProfileState { revision: Some(5), ..profile };
        let got = drift_between(&base, edited, "sha256:aa").unwrap();
        assert_eq!(
            got,
            DriftReason { profile: Some(Drifted { validated: profile, current: edited }), migrations: None }
        );

        let other = ProfileState { profile_id: Some(RuntimeProfileId(Uuid::from_u128(6))), ..profile };
        assert!(drift_between(&base, other, "sha256:aa").unwrap().profile.is_some(), "another profile, same number");

        let got = drift_between(&base, profile, "sha256:bb").unwrap();
        let want = Drifted { validated: "sha256:aa".to_owned(), current: "sha256:bb".to_owned() };
        assert_eq!(got.migrations, Some(want));
        assert_eq!(got.profile, None);

        let both = drift_between(&base, edited, "sha256:bb").unwrap();
        assert!(both.profile.is_some() && both.migrations.is_some());
    }

    proptest! {
        /// Any permutation of a set of records has one fingerprint, and
        /// drift is reported exactly when something differs.
        #[test]
        fn fingerprints_ignore_order_and_drift_is_exact(
            revisions in prop::collection::vec(0u32..4, 0..6),
            seed in any::<u64>(),
            validated_rev in prop::option::of(0u32..3),
            current_rev in prop::option::of(0u32..3),
        ) {
            let records: Vec<MigrationExecution> =
                revisions.iter().enumerate().map(|(i, r)| record(i as u128 + 1, *r)).collect();
            let mut shuffled = records.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            if seed % 2 == 0 {
                shuffled.reverse();
            }
            let fingerprint = migrations_fingerprint(&records);
            prop_assert_eq!(&fingerprint, &migrations_fingerprint(&shuffled));

            let was = ProfileState { profile_id: None, revision: validated_rev };
            let now = ProfileState { profile_id: None, revision: current_rev };
            let base = validation(was, &fingerprint);
            let fewer = migrations_fingerprint(&records[..records.len().saturating_sub(1)]);
            let drift = drift_between(&base, now, &fewer);
            prop_assert_eq!(drift.is_some(), validated_rev != current_rev || (!records.is_empty()));
        }
    }
}
