//! Review votes and the approval policy (SPEC §2.1 `path_rules`, §2.3).
//!
//! Invariants: a reviewer has at most one vote per revision (a later vote
//! replaces the earlier one — the store keeps one row per (changeset,
//! revision, reviewer)); only votes on the latest revision count;
//! [`approval_status`] is a pure function of the settings, the votes, the
//! voters' current roles and the revision's changed paths, so the HTTP
//! answer, the CLI and the state transition all agree.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::app::{AppSettings, PathRule};
use super::Timestamp;
use crate::error::Error;
use crate::ids::{ChangesetId, ReviewId, UserId};
use crate::rbac::Role;
use crate::validation::{GlobList, RepoPath};

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// Counts toward approval.
    Approve,
    /// Sends the changeset back to its author.
    RequestChanges,
    /// Refuses it for good.
    Reject,
}

impl ReviewAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Approve => "approve",
            ReviewAction::RequestChanges => "request_changes",
            ReviewAction::Reject => "reject",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "approve" => Ok(ReviewAction::Approve),
            "request_changes" => Ok(ReviewAction::RequestChanges),
            "reject" => Ok(ReviewAction::Reject),
            other => Err(Error::invalid(
                "action",
                "unknown_action",
                format!("unknown review action {other:?} (approve, request_changes or reject)"),
            )),
        }
    }
}

/// One reviewer's vote on one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Identity (a replacing vote gets a new id).
    pub id: ReviewId,
    /// The changeset.
    pub changeset_id: ChangesetId,
    /// The revision voted on.
    pub revision: u32,
    /// Who voted.
    pub reviewer_id: UserId,
    /// The decision.
    pub action: ReviewAction,
    /// Optional comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// How one `path_rules` entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathRuleStatus {
    /// The rule's glob.
    pub glob: String,
    /// Changed paths it matches (the rule applies when non-empty).
    pub matched_paths: Vec<String>,
    /// An eligible approver approved.
    pub satisfied: bool,
}

/// Where a revision stands against the approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalStatus {
    /// The revision counted.
    pub revision: u32,
    /// Distinct eligible approvers.
    pub approvals: u32,
    /// Approvals needed.
    pub required: u32,
    /// Who approved (eligible only), sorted.
    pub approved_by: Vec<UserId>,
    /// The path rules that apply to this revision.
    pub path_rules: Vec<PathRuleStatus>,
    /// Enough approvals and every applicable path rule satisfied.
    pub approved: bool,
}

/// The inputs of [`approval_status`].
#[derive(Debug, Clone, Copy)]
pub struct ApprovalInput<'a> {
    /// The app's settings.
    pub settings: &'a AppSettings,
    /// Approvals needed (`required_approvals`, or 2 under
    /// `stricter_two_approvals` when canonical-profile overrides are included).
    pub required: u32,
    /// The author (never eligible unless self-approval is allowed).
    pub author: UserId,
    /// The latest revision's number.
    pub revision: u32,
    /// The latest revision's changed paths.
    pub files: &'a [String],
    /// Every vote on the changeset (any revision).
    pub reviews: &'a [Review],
    /// Current roles of the voters (absent = no longer a member).
    pub roles: &'a HashMap<UserId, Role>,
}

/// Counts the approvals of the latest revision against the policy.
///
/// An approval is eligible when it is on the latest revision, its voter is
/// still a member with at least `reviewer`, and it is not the author's
/// (unless `allow_self_approval`). A path rule applies when one of the
/// changed paths matches its glob; it is satisfied by an eligible approval
/// from a user listed in `user_ids` or holding at least its `role`.
pub fn approval_status(input: ApprovalInput<'_>) -> Result<ApprovalStatus, Error> {
    let eligible: BTreeSet<UserId> = input
        .reviews
        .iter()
        .filter(|r| r.revision == input.revision && r.action == ReviewAction::Approve)
        .filter(|r| input.settings.allow_self_approval || r.reviewer_id != input.author)
        .filter(|r| input.roles.get(&r.reviewer_id).is_some_and(|role| *role >= Role::Reviewer))
        .map(|r| r.reviewer_id)
        .collect();
    let mut rules = Vec::new();
    for rule in &input.settings.path_rules {
        let matched = matched_paths(rule, input.files)?;
        if matched.is_empty() {
            continue;
        }
        let satisfied = eligible.iter().any(|user| rule_accepts(rule, *user, input.roles));
        rules.push(PathRuleStatus { glob: rule.glob.clone(), matched_paths: matched, satisfied });
    }
    let approvals = u32::try_from(eligible.len()).unwrap_or(u32::MAX);
    let approved = approvals >= input.required && rules.iter().all(|r| r.satisfied);
    Ok(ApprovalStatus {
        revision: input.revision,
        approvals,
        required: input.required,
        approved_by: eligible.into_iter().collect(),
        path_rules: rules,
        approved,
    })
}

/// Changed paths matching the rule's glob.
fn matched_paths(rule: &PathRule, files: &[String]) -> Result<Vec<String>, Error> {
    let globs = GlobList::new(std::slice::from_ref(&rule.glob))?;
    Ok(files.iter().filter(|f| RepoPath::parse(f).is_ok_and(|p| globs.matches(&p))).cloned().collect())
}

/// Whether `user`'s approval satisfies `rule`.
fn rule_accepts(rule: &PathRule, user: UserId, roles: &HashMap<UserId, Role>) -> bool {
    rule.user_ids.contains(&user) || rule.role.is_some_and(|needed| roles.get(&user).is_some_and(|r| *r >= needed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn user(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    fn vote(reviewer: u128, revision: u32, action: ReviewAction) -> Review {
        Review {
            id: ReviewId(Uuid::from_u128(1000 + reviewer)),
            changeset_id: ChangesetId(Uuid::from_u128(7)),
            revision,
            reviewer_id: user(reviewer),
            action,
            comment: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn roles(pairs: &[(u128, Role)]) -> HashMap<UserId, Role> {
        pairs.iter().map(|(u, r)| (user(*u), *r)).collect()
    }

    fn status(
        settings: &AppSettings,
        required: u32,
        files: &[&str],
        reviews: &[Review],
        roles: &HashMap<UserId, Role>,
    ) -> ApprovalStatus {
        let files: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        approval_status(ApprovalInput {
            settings,
            required,
            author: user(1),
            revision: 2,
            files: &files,
            reviews,
            roles,
        })
        .unwrap()
    }

    #[test]
    fn counts_distinct_eligible_approvals_of_the_latest_revision_only() {
        let settings = AppSettings { required_approvals: 2, ..Default::default() };
        let team = roles(&[(1, Role::Reviewer), (2, Role::Reviewer), (3, Role::User), (4, Role::AppAdmin)]);
        let reviews = [
            vote(1, 2, ReviewAction::Approve),        // the author: not eligible
            vote(2, 1, ReviewAction::Approve),        // an old revision
            vote(3, 2, ReviewAction::Approve),        // a plain user
            vote(4, 2, ReviewAction::Approve),        // counts
            vote(5, 2, ReviewAction::Approve),        // no longer a member
            vote(2, 2, ReviewAction::RequestChanges), // not an approval
        ];
        let s = status(&settings, 2, &["a.yaml"], &reviews, &team);
        assert_eq!((s.approvals, s.required, s.approved), (1, 2, false));
        assert_eq!(s.approved_by, vec![user(4)]);
        let more = [reviews.to_vec(), vec![vote(2, 2, ReviewAction::Approve)]].concat();
        assert!(status(&settings, 2, &["a.yaml"], &more, &team).approved);
    }

    #[test]
    fn self_approval_counts_only_when_allowed() {
        let team = roles(&[(1, Role::Reviewer)]);
        let reviews = [vote(1, 2, ReviewAction::Approve)];
        assert!(!status(&AppSettings::default(), 1, &[], &reviews, &team).approved);
        let allowed = AppSettings { allow_self_approval: true, ..Default::default() };
        assert!(status(&allowed, 1, &[], &reviews, &team).approved);
    }

    #[test]
    fn a_matching_path_rule_needs_an_approval_from_its_set() {
        let settings = AppSettings {
            path_rules: vec![
                PathRule { glob: "prod/**".into(), role: Some(Role::ConfigManager), user_ids: vec![] },
                PathRule { glob: "db/*.yaml".into(), role: None, user_ids: vec![user(9)] },
                PathRule { glob: "docs/**".into(), role: Some(Role::AppAdmin), user_ids: vec![] },
            ],
            ..Default::default()
        };
        let team = roles(&[(2, Role::Reviewer), (3, Role::ConfigManager), (9, Role::Reviewer)]);
        let files = ["prod/app.yaml", "db/main.yaml", "readme.md"];
        let s = status(&settings, 1, &files, &[vote(2, 2, ReviewAction::Approve)], &team);
        assert_eq!(s.path_rules.len(), 2, "docs/** matches nothing and does not apply");
        assert!(!s.approved);
        assert!(s.path_rules.iter().all(|r| !r.satisfied));
        let reviews = [vote(2, 2, ReviewAction::Approve), vote(3, 2, ReviewAction::Approve)];
        let s = status(&settings, 1, &files, &reviews, &team);
        assert_eq!(s.path_rules.iter().map(|r| r.satisfied).collect::<Vec<_>>(), vec![true, false]);
        assert!(!s.approved);
        let reviews = [vote(3, 2, ReviewAction::Approve), vote(9, 2, ReviewAction::Approve)];
        let s = status(&settings, 1, &files, &reviews, &team);
        assert!(s.approved);
        assert_eq!(s.path_rules[1].matched_paths, vec!["db/main.yaml".to_owned()]);
    }

    #[test]
    fn action_names_round_trip() {
        for action in [ReviewAction::Approve, ReviewAction::RequestChanges, ReviewAction::Reject] {
            assert_eq!(ReviewAction::parse(action.as_str()).unwrap(), action);
        }
        assert!(ReviewAction::parse("lgtm").is_err());
    }

    proptest! {
        /// Approval never exceeds the number of distinct voters, never
        /// counts the author or a non-reviewer, and is reached exactly when
        /// the count reaches the requirement (no path rules here).
        #[test]
        fn approval_count_matches_a_simple_model(
            votes in proptest::collection::vec((1u128..8, 1u32..4, 0usize..3), 0..30),
            required in 1u32..4,
        ) {
            let actions = [ReviewAction::Approve, ReviewAction::RequestChanges, ReviewAction::Reject];
            let team = roles(&[(1, Role::AppAdmin), (2, Role::Reviewer), (3, Role::User), (4, Role::ConfigManager), (5, Role::Reviewer)]);
            // Later votes replace earlier ones per (revision, reviewer), as the store does.
            let mut latest: HashMap<(u32, u128), ReviewAction> = HashMap::new();
            let reviews: Vec<Review> = votes.iter().map(|(u, rev, a)| {
                latest.insert((*rev, *u), actions[*a]);
                vote(*u, *rev, actions[*a])
            }).collect();
            let deduped: Vec<Review> = latest.iter().map(|((rev, u), a)| vote(*u, *rev, *a)).collect();
            let s = status(&AppSettings::default(), required, &[], &deduped, &team);
            let model = latest.iter().filter(|((rev, u), a)| {
                *rev == 2 && **a == ReviewAction::Approve && *u != 1 && matches!(*u, 2 | 4 | 5)
            }).count() as u32;
            prop_assert_eq!(s.approvals, model);
            prop_assert_eq!(s.approved, model >= required);
            prop_assert!(reviews.len() >= deduped.len());
        }
    }
}
