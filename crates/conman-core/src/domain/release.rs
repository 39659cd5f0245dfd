//! Releases: immutable, ordered selections of queued changesets (SPEC §2.4, §4).
//!
//! Invariants: a release's `items` are its selection in release order, each
//! changeset at most once; only a `draft` release's selection changes; the
//! composition fields (`base_sha`, `composed_sha`, each item's `outcome`)
//! are written by assembly only; `tag` is set exactly when the release is
//! published and is unique per app; a published release (and every later
//! state) never changes again except by the deployment and rollback
//! edges of its state machine. The use cases live in `services::releases`.

use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, HashMap, HashSet};

use super::changeset::{Changeset, ChangesetState};
use super::machine::StateMachine;
use super::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, JobId, ReleaseId, RuntimeProfileId, UserId};

/// A release: an ordered selection of queued changesets, composed onto the
/// integration head, gated, then published as a tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Identity.
    pub id: ReleaseId,
    /// Owning app.
    pub app_id: AppId,
    /// Title (may be empty).
    pub title: String,
    /// Current state.
    pub state: ReleaseState,
    /// The selection, in release order.
    pub items: Vec<ReleaseItem>,
    /// The integration head the last assembly started from.
    pub base_sha: Option<String>,
    /// The composed commit of the last assembly.
    pub composed_sha: Option<String>,
    /// The `release_assemble` job of the last assembly.
    pub assemble_job_id: Option<JobId>,
    /// The release gate, per environment, of the last assembly.
    pub gates: Vec<ReleaseGate>,
    /// Why the last assembly failed.
    pub failure: Option<String>,
    /// `rYYYY.MM.DD.N`, once published.
    pub tag: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// Who started the last assembly.
    pub assembled_by: Option<UserId>,
    /// When the last assembly started.
    pub assembled_at: Option<Timestamp>,
    /// Who published it.
    pub published_by: Option<UserId>,
    /// When it was published.
    pub published_at: Option<Timestamp>,
    /// For a release made by `revert_and_release`: the release whose
    /// changes it reverts (it is born `published`, with no selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts_release_id: Option<ReleaseId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One selected changeset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseItem {
    /// The changeset.
    pub changeset_id: ChangesetId,
    /// The revision assembly composed (0 until assembled).
    pub revision: u32,
    /// What assembly made of it (`None` until assembled).
    pub outcome: Option<ItemVerdict>,
}

/// What assembly made of one selected changeset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum ItemVerdict {
    /// Brought in by `commit`.
    Composed {
        /// The merge commit that brings it in.
        commit: String,
    },
    /// Its change was already in what composed before it.
    AlreadyContained,
    /// Conflicted textually with what composed before it: dropped.
    Conflicted {
        /// Conflicting paths, sorted.
        paths: Vec<String>,
    },
    /// Overrides a profile key an earlier selected changeset overrides with
    /// another typed value: dropped.
    OverrideConflict {
        /// `target:KEY` of each conflicting key, sorted.
        keys: Vec<String>,
    },
}

impl ItemVerdict {
    /// True when the changeset is part of the composed release.
    pub fn is_included(&self) -> bool {
        matches!(self, ItemVerdict::Composed { .. } | ItemVerdict::AlreadyContained)
    }

    /// The wire name of the outcome.
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemVerdict::Composed { .. } => "composed",
            ItemVerdict::AlreadyContained => "already_contained",
            ItemVerdict::Conflicted { .. } => "conflicted",
            ItemVerdict::OverrideConflict { .. } => "override_conflict",
        }
    }
}

/// The release gate for one environment (or, for an app without
/// environments, the one gate run without a profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseGate {
    /// The environment's name (`None`: the app has no environments).
    pub environment: Option<String>,
    /// Its runtime profile, if it has one.
    pub profile_id: Option<RuntimeProfileId>,
    /// The `gate_release` job.
    pub job_id: JobId,
    /// `None` while it runs.
    pub passed: Option<bool>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl Release {
    /// The changesets of the selection, in release order.
    pub fn changeset_ids(&self) -> Vec<ChangesetId> {
        self.items.iter().map(|i| i.changeset_id).collect()
    }

    /// The items assembly kept, in release order.
    pub fn included(&self) -> impl Iterator<Item = &ReleaseItem> {
        self.items.iter().filter(|i| i.outcome.as_ref().is_some_and(ItemVerdict::is_included))
    }
}

/// Where a release is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Selection being edited.
    Draft,
    /// Composition and release gate running.
    Assembling,
    /// Composed and gated; ready to publish.
    Validated,
    /// Tagged on the integration branch.
    Published,
    /// Deployed to some environments.
    DeployedPartial,
    /// Deployed to every environment.
    DeployedFull,
    /// Rolled back.
    RolledBack,
    /// Assembly or its gate failed.
    Failed,
}

/// What can happen to a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseEvent {
    /// Start composing.
    Assemble,
    /// Composition and gate passed.
    AssemblyPassed,
    /// Composition or gate failed.
    AssemblyFailed,
    /// Move the integration branch and tag.
    Publish,
    /// Deployed to an environment, not yet all.
    DeployedSome,
    /// Deployed to all environments.
    DeployedAll,
    /// Rolled back.
    RollBack,
    /// Failed release returns to draft for re-assembly.
    Reopen,
}

use ReleaseEvent as E;
use ReleaseState as S;

/// The SPEC §4 release table. Deployment coverage only moves forward one
/// step at a time (`published -> deployed_partial -> deployed_full`); a
/// deployment that changes coverage goes through
/// [`ReleaseState::after_deployments`].
pub const RELEASE_EDGES: &[(S, E, S)] = &[
    (S::Draft, E::Assemble, S::Assembling),
    (S::Assembling, E::AssemblyPassed, S::Validated),
    (S::Assembling, E::AssemblyFailed, S::Failed),
    (S::Failed, E::Reopen, S::Draft),
    // Not drawn by SPEC §4 (decision 0016): a publish that finds the
    // integration branch moved since assembly leaves the release validated,
    // and SPEC §2.4 says to re-assemble it.
    (S::Validated, E::Assemble, S::Assembling),
    (S::Validated, E::Publish, S::Published),
    (S::Published, E::DeployedSome, S::DeployedPartial),
    (S::DeployedPartial, E::DeployedAll, S::DeployedFull),
    (S::Published, E::RollBack, S::RolledBack),
    (S::DeployedPartial, E::RollBack, S::RolledBack),
    (S::DeployedFull, E::RollBack, S::RolledBack),
];

impl StateMachine for ReleaseState {
    type Event = ReleaseEvent;
    const ENTITY: &'static str = "release";
    const STATES: &'static [Self] = &[
        S::Draft,
        S::Assembling,
        S::Validated,
        S::Published,
        S::DeployedPartial,
        S::DeployedFull,
        S::RolledBack,
        S::Failed,
    ];
    const EVENTS: &'static [E] = &[
        E::Assemble,
        E::AssemblyPassed,
        E::AssemblyFailed,
        E::Publish,
        E::DeployedSome,
        E::DeployedAll,
        E::RollBack,
        E::Reopen,
    ];

    fn next(self, event: E) -> Option<Self> {
        RELEASE_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}

impl ReleaseState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            S::Draft => "draft",
            S::Assembling => "assembling",
            S::Validated => "validated",
            S::Published => "published",
            S::DeployedPartial => "deployed_partial",
            S::DeployedFull => "deployed_full",
            S::RolledBack => "rolled_back",
            S::Failed => "failed",
        }
    }

    /// Parses the wire name (a `state` filter).
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::STATES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid("state", "invalid_release_state", format!("unknown release state {s:?}")))
    }

    /// Published releases (and later states) are immutable artifacts.
    pub fn is_published(self) -> bool {
        matches!(self, S::Published | S::DeployedPartial | S::DeployedFull | S::RolledBack)
    }

    /// The state once the release is deployed to `deployed` of the app's
    /// `total` environments (SPEC §2.5: some → `deployed_partial`, all →
    /// `deployed_full`), walking the table's edges: a release that reaches
    /// every environment at once (an app with one environment, a concurrent
    /// batch) passes through `deployed_partial`; a further partial
    /// deployment, or any after `deployed_full`, changes nothing. A release
    /// that is not published is `invalid_transition`.
    pub fn after_deployments(self, deployed: usize, total: usize) -> Result<Self, crate::Error> {
        let mut state = self;
        if deployed == 0 || state == S::DeployedFull {
            return Ok(state);
        }
        if state != S::DeployedPartial {
            state = state.apply(E::DeployedSome)?;
        }
        if deployed >= total {
            state = state.apply(E::DeployedAll)?;
        }
        Ok(state)
    }
}

/// Most changesets one release selects.
pub const MAX_SELECTION: usize = 500;

fn selection_error(reason: &str, message: String, ids: &[ChangesetId]) -> Error {
    Error::Validation {
        message,
        details: Some(serde_json::json!({ "field": "changeset_ids", "reason": reason, "changeset_ids": ids })),
    }
}

fn listed(ids: &[ChangesetId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Checks a selection in release order (SPEC §2.3, §2.4): at most
/// [`MAX_SELECTION`] changesets, none twice, each one of `found` (the
/// app's changesets among them) and `queued`, and each changeset's
/// dependencies either in `released` or earlier in the selection. The
/// error names the offending ids (`details.changeset_ids`).
pub fn check_selection(
    order: &[ChangesetId],
    found: &HashMap<ChangesetId, Changeset>,
    released: &HashSet<ChangesetId>,
) -> Result<(), Error> {
    if order.len() > MAX_SELECTION {
        return Err(Error::invalid(
            "changeset_ids",
            "too_many",
            format!("a release selects at most {MAX_SELECTION} changesets"),
        ));
    }
    let mut seen = HashSet::new();
    let twice: Vec<ChangesetId> = order.iter().filter(|id| !seen.insert(**id)).copied().collect();
    if !twice.is_empty() {
        return Err(selection_error("duplicate", format!("selected more than once: {}", listed(&twice)), &twice));
    }
    let unknown: Vec<ChangesetId> = order.iter().filter(|id| !found.contains_key(id)).copied().collect();
    if !unknown.is_empty() {
        let msg = format!("no such changesets in this app: {}", listed(&unknown));
        return Err(selection_error("unknown_changeset", msg, &unknown));
    }
    let unqueued: Vec<ChangesetId> =
        order.iter().filter(|id| found[id].state != ChangesetState::Queued).copied().collect();
    if !unqueued.is_empty() {
        let msg = format!("only queued changesets can be selected; not queued: {}", listed(&unqueued));
        return Err(selection_error("not_queued", msg, &unqueued));
    }
    for (i, id) in order.iter().enumerate() {
        let deps = &found[id].depends_on;
        let later: Vec<ChangesetId> = deps.iter().filter(|d| order[i + 1..].contains(d)).copied().collect();
        if !later.is_empty() {
            let msg = format!("changeset {id} must come after its dependencies {}", listed(&later));
            return Err(selection_error("dependency_order", msg, &later));
        }
        let missing: Vec<ChangesetId> =
            deps.iter().filter(|d| !released.contains(d) && !order[..i].contains(d)).copied().collect();
        if !missing.is_empty() {
            let msg =
                format!("changeset {id} depends on {}, neither released nor selected before it", listed(&missing));
            return Err(selection_error("missing_dependencies", msg, &missing));
        }
    }
    Ok(())
}

/// The override conflicts of a selection (SPEC §2.4): `items` in release
/// order, each with the `(key, value)` pairs its profile overrides set
/// (`key` names the target and the variable or secret). An item setting a
/// key that an earlier, non-conflicting item set to another value is
/// conflicted, with those keys (sorted); the same value is no conflict. A
/// conflicted item's own keys bind nothing.
pub fn override_conflicts<'a, K: Ord + Clone + ToString + 'a, V: PartialEq + 'a>(
    items: impl IntoIterator<Item = &'a (ChangesetId, Vec<(K, V)>)>,
) -> BTreeMap<ChangesetId, Vec<String>> {
    let mut taken: BTreeMap<K, &V> = BTreeMap::new();
    let mut conflicted = BTreeMap::new();
    for (id, pairs) in items {
        let mut clashes: Vec<String> = pairs
            .iter()
            .filter(|(k, v)| taken.get(k).is_some_and(|held| *held != v))
            .map(|(k, _)| k.to_string())
            .collect();
        if clashes.is_empty() {
            for (k, v) in pairs {
                taken.entry(k.clone()).or_insert(v);
            }
        } else {
            clashes.sort();
            clashes.dedup();
            conflicted.insert(*id, clashes);
        }
    }
    conflicted
}

/// The tag of the `n`-th release of a UTC day: `rYYYY.MM.DD.N`.
pub fn release_tag(day: chrono::NaiveDate, n: u32) -> String {
    format!("{}{n}", release_tag_prefix(day))
}

/// What every tag of a UTC day starts with: `rYYYY.MM.DD.`.
pub fn release_tag_prefix(day: chrono::NaiveDate) -> String {
    format!("r{}.", day.format("%Y.%m.%d"))
}

/// The next tag of `day` after `existing` (tags of that day, any order):
/// one more than the highest number, from 1.
pub fn next_release_tag(day: chrono::NaiveDate, existing: &[String]) -> String {
    let prefix = release_tag_prefix(day);
    let highest = existing.iter().filter_map(|t| t.strip_prefix(&prefix)?.parse::<u32>().ok()).max().unwrap_or(0);
    release_tag(day, highest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_count_from_one_per_day() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(release_tag(day, 1), "r2026.03.07.1");
        assert!(S::RolledBack.is_terminal());
    }

    #[test]
    fn the_next_tag_follows_the_highest_of_the_day() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(next_release_tag(day, &[]), "r2026.12.03.1");
        let existing = ["r2026.12.03.2".to_owned(), "r2026.12.03.10".to_owned(), "r2026.12.03.x".to_owned()];
        assert_eq!(next_release_tag(day, &existing), "r2026.12.03.11");
        assert_eq!(next_release_tag(day, &["r2026.12.02.7".to_owned()]), "r2026.12.03.1");
    }

    fn cs(state: ChangesetState, deps: &[ChangesetId]) -> Changeset {
        let at = chrono::Utc::now();
        Changeset {
            id: ChangesetId(uuid::Uuid::now_v7()),
            app_id: AppId(uuid::Uuid::nil()),
            workspace_id: crate::ids::WorkspaceId(uuid::Uuid::nil()),
            author_id: UserId(uuid::Uuid::nil()),
            title: "t".into(),
            description: String::new(),
            state,
            revision: 1,
            head_sha: None,
            depends_on: deps.to_vec(),
            gate_job_id: None,
            gate_failure: None,
            queued_at: None,
            last_revalidation: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    fn ids(n: usize) -> Vec<ChangesetId> {
        (0..n).map(|i| ChangesetId(uuid::Uuid::from_u128(i as u128 + 1))).collect()
    }

    fn reason(e: Error) -> (String, serde_json::Value) {
        let d = e.details().expect("details");
        (d["reason"].as_str().unwrap_or_default().to_owned(), d["changeset_ids"].clone())
    }

    #[test]
    fn a_selection_is_refused_naming_the_offending_ids() {
        let id = ids(5);
        let mut found = HashMap::new();
        found.insert(id[0], cs(ChangesetState::Queued, &[]));
        found.insert(id[1], cs(ChangesetState::Queued, &[id[0]]));
        found.insert(id[2], cs(ChangesetState::Approved, &[]));
        found.insert(id[3], cs(ChangesetState::Queued, &[id[4]]));
        let none = HashSet::new();
        let ok = check_selection(&[id[0], id[1]], &found, &none);
        assert!(ok.is_ok(), "{ok:?}");
        let cases: Vec<(Vec<ChangesetId>, &str, Vec<ChangesetId>)> = vec![
            (vec![id[0], id[0]], "duplicate", vec![id[0]]),
            (vec![id[0], id[4]], "unknown_changeset", vec![id[4]]),
            (vec![id[2]], "not_queued", vec![id[2]]),
            (vec![id[1], id[0]], "dependency_order", vec![id[0]]),
            (vec![id[1]], "missing_dependencies", vec![id[0]]),
        ];
        for (order, want, named) in cases {
            let (got, listed) = reason(check_selection(&order, &found, &none).unwrap_err());
            assert_eq!(got, want, "{order:?}");
            assert_eq!(listed, serde_json::json!(named), "{order:?}");
        }
        // A dependency released earlier needs no place in the selection.
        let released: HashSet<ChangesetId> = [id[4]].into();
        assert!(check_selection(&[id[3]], &found, &released).is_ok());
    }

    #[test]
    fn override_conflicts_name_the_keys_and_spare_equal_values() {
        let id = ids(4);
        let items = vec![
            (id[0], vec![("prod:A", 1), ("prod:B", 2)]),
            (id[1], vec![("prod:A", 1)]),
            (id[2], vec![("prod:B", 3), ("prod:C", 9), ("prod:A", 5)]),
            (id[3], vec![("prod:C", 4)]),
        ];
        let got = override_conflicts(&items);
        let want: BTreeMap<ChangesetId, Vec<String>> = [(id[2], vec!["prod:A".to_owned(), "prod:B".to_owned()])].into();
        // id[3]'s C is free: the conflicted id[2] binds nothing.
        assert_eq!(got, want);
    }

    proptest::proptest! {
        /// Whatever the overrides, the items left unconflicted never
        /// disagree on a key, and an item is conflicted only when an
        /// earlier unconflicted item holds another value for one of its keys.
        #[test]
        fn unconflicted_items_never_disagree(
            raw in proptest::collection::vec(proptest::collection::vec((0u8..4, 0u8..3), 0..4), 0..8)
        ) {
            let id = ids(raw.len());
            let items: Vec<(ChangesetId, Vec<(u8, u8)>)> = id.iter().copied().zip(raw).collect();
            let conflicted = override_conflicts(&items);
            let mut held: BTreeMap<u8, u8> = BTreeMap::new();
            for (cs, pairs) in &items {
                let clash = pairs.iter().any(|(k, v)| held.get(k).is_some_and(|h| h != v));
                proptest::prop_assert_eq!(clash, conflicted.contains_key(cs));
                if !clash {
                    for (k, v) in pairs {
                        held.entry(*k).or_insert(*v);
                    }
                }
            }
        }
    }

    #[test]
    fn coverage_walks_through_deployed_partial() {
        let cases = [
            (S::Published, 1, 3, Ok(S::DeployedPartial)),
            (S::Published, 1, 1, Ok(S::DeployedFull)),
            (S::Published, 0, 2, Ok(S::Published)),
            (S::DeployedPartial, 2, 3, Ok(S::DeployedPartial)),
            (S::DeployedPartial, 3, 3, Ok(S::DeployedFull)),
            (S::DeployedFull, 2, 3, Ok(S::DeployedFull)),
            (S::Validated, 1, 2, Err("cannot deployed_some a release that is validated")),
            (S::RolledBack, 1, 1, Err("cannot deployed_some a release that is rolled_back")),
        ];
        for (from, deployed, total, want) in cases {
            let got = from.after_deployments(deployed, total).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{from:?} after {deployed} of {total}");
        }
    }
}
