//! Drift-fix changesets (SPEC §2.5): the way to make a drifted
//! environment's current profile the intended one through review. The
//! changeset records the intended profile state in the repository — the
//! file `.conman/drift-fix/<environment>.json` naming the environment, its
//! profile, the profile revision and the migration fingerprint now, and the
//! drifted keys (names only, never a value) — so it is reviewed, queued,
//! released and deployed like any change.
//!
//! Invariants:
//! - a drift-fix changeset is created only for a drifted environment, by
//!   the roles that deploy, in a workspace of its own;
//! - a deploy to a drifted environment is let through the drift block only
//!   when the release's composed commit holds that environment's drift-fix
//!   file and the file records exactly the environment's current profile,
//!   revision and migration fingerprint — a fix recorded before a later
//!   edit fixes nothing; a successful deploy then records the new baseline,
//!   which ends the drift.

use serde::{Deserialize, Serialize};

use super::changesets::NewChangeset;
use super::{Actor, Conman};
use crate::domain::changeset::Changeset;
use crate::domain::drift::migrations_fingerprint;
use crate::domain::environment::Environment;
use crate::domain::release::Release;
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, RuntimeProfileId};
use crate::ports::git::{Node, Sha};
use crate::ports::store::collect_pages;
use crate::rbac::Capability;
use crate::validation::RepoPath;

/// What a drift-fix file records. Serde here is the file's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftFixRecord {
    /// The environment's name.
    pub environment: String,
    /// Its id.
    pub environment_id: EnvironmentId,
    /// The profile it runs with now.
    pub profile_id: Option<RuntimeProfileId>,
    /// That profile's revision now: the intended state.
    pub profile_revision: Option<u32>,
    /// The fingerprint of its migration records now.
    pub migrations_fingerprint: String,
    /// What drifted (names only).
    pub keys: Vec<String>,
}

/// The repository path of `env`'s drift-fix file.
pub fn drift_fix_path(env: &Environment) -> String {
    format!(".conman/drift-fix/{}.json", env.name)
}

impl Conman {
    /// Creates a changeset recording a drifted environment's current
    /// profile state as intended, in a new workspace of the actor's.
    /// Config managers and admins; 400 `not_drifted` otherwise.
    pub async fn create_drift_fix_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Changeset, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        let env = self.environment(app_id, environment_id).await?;
        let Some(drift) = self.drift_of(&env).await? else {
            return Err(Error::invalid(
                "environment_id",
                "not_drifted",
                format!("{} has not drifted: there is nothing to fix", env.name),
            ));
        };
        let record = self.drift_fix_record(&env, drift.keys.clone()).await?;
        let mut content = serde_json::to_vec_pretty(&record).map_err(Error::internal)?;
        content.push(b'\n');
        let keys = if drift.keys.is_empty() { "migration records".to_owned() } else { drift.keys.join(", ") };
        let ws = self.create_workspace(actor, app_id, Some(format!("drift fix {}", env.name))).await?;
        let message = format!("Record the intended profile state of {}", env.name);
        self.write_file(actor, app_id, ws.id, &drift_fix_path(&env), content, Some(message)).await?;
        let input = NewChangeset {
            workspace_id: ws.id,
            title: format!("Drift fix: {}", env.name),
            description: Some(format!(
                "Accept the current profile of {} (revision {}) as intended; drifted: {keys}.",
                env.name,
                record.profile_revision.map_or_else(|| "none".to_owned(), |r| r.to_string())
            )),
            depends_on: Vec::new(),
        };
        self.create_changeset(actor, app_id, input).await
    }

    /// What a drift fix of `env` made now would record.
    async fn drift_fix_record(&self, env: &Environment, keys: Vec<String>) -> Result<DriftFixRecord, Error> {
        let (state, _) = self.profile_state(env).await?;
        let records = collect_pages(|page| self.store().migration_executions(env.app_id, env.id, page)).await?;
        Ok(DriftFixRecord {
            environment: env.name.clone(),
            environment_id: env.id,
            profile_id: state.profile_id,
            profile_revision: state.revision,
            migrations_fingerprint: migrations_fingerprint(&records),
            keys,
        })
    }

    /// True when `release`'s composed commit holds `env`'s drift-fix file
    /// recording exactly its current profile state.
    pub(super) async fn release_fixes_drift(&self, release: &Release, env: &Environment) -> Result<bool, Error> {
        let Some(commit) = &release.composed_sha else { return Ok(false) };
        let path = RepoPath::parse(&drift_fix_path(env))?;
        let Some(Node::File(bytes)) = self.git().read(env.app_id, &Sha(commit.clone()), Some(&path)).await? else {
            return Ok(false);
        };
        let Ok(recorded) = serde_json::from_slice::<DriftFixRecord>(&bytes) else { return Ok(false) };
        let now = self.drift_fix_record(env, recorded.keys.clone()).await?;
        Ok(recorded == now)
    }
}
