//! Releases: immutable, ordered selections of queued changesets (SPEC §2.4, §4).

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;

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

/// The tag of the `n`-th release of a UTC day: `rYYYY.MM.DD.N`.
pub fn release_tag(day: chrono::NaiveDate, n: u32) -> String {
    format!("r{}.{n}", day.format("%Y.%m.%d"))
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
