//! Unit and property tests of the deployment rules.

use std::collections::HashMap;

use proptest::prelude::*;
use uuid::Uuid;

use super::*;

fn user(n: u128) -> UserId {
    UserId(Uuid::from_u128(n))
}

fn at() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().with_timezone(&chrono::Utc)
}

fn approval(n: u128, role: Role) -> DeploymentApproval {
    DeploymentApproval { user_id: user(n), role, at: at() }
}

fn deployment(state: DeploymentState, active: bool) -> Deployment {
    Deployment {
        id: DeploymentId(Uuid::now_v7()),
        app_id: AppId(Uuid::nil()),
        environment_id: EnvironmentId(Uuid::from_u128(7)),
        release_id: ReleaseId(Uuid::from_u128(8)),
        commit: "a".repeat(40),
        kind: DeploymentKind::Deploy,
        exception: None,
        group_id: None,
        state,
        approvals: Vec::new(),
        rejection: None,
        approval_expires_at: None,
        active,
        requested_by: user(1),
        job_id: None,
        previous_commit: None,
        previous_release_id: None,
        rolled_back_release_id: None,
        profile_revision: Some(3),
        freeze_override: None,
        failure: None,
        created_at: at(),
        started_at: None,
        finished_at: None,
        updated_at: at(),
        version: 1,
    }
}

fn later(secs: i64) -> Timestamp {
    at() + chrono::TimeDelta::seconds(secs)
}

#[test]
fn a_deployment_runs_then_finishes_and_frees_its_environment() {
    let pending = deployment(S::Pending, false);
    let running = pending.start(later(1)).unwrap();
    assert_eq!((running.state, running.active, running.version), (S::Running, true, 2));
    assert_eq!((running.started_at, running.updated_at, running.finished_at), (Some(later(1)), later(1), None));

    let failed = running.finish(DeploymentOutcome::Failed { reason: "gate exited 2".into() }, later(5)).unwrap();
    assert_eq!((failed.state, failed.active, failed.version), (S::Failed, false, 3));
    assert_eq!((failed.finished_at, failed.failure.as_deref()), (Some(later(5)), Some("gate exited 2")));

    let done = running.finish(DeploymentOutcome::Succeeded, later(6)).unwrap();
    assert_eq!((done.state, done.active, done.failure), (S::Succeeded, false, None));

    let withdrawn = pending.finish(DeploymentOutcome::Canceled { reason: Some("rejected".into()) }, later(2)).unwrap();
    assert_eq!((withdrawn.state, withdrawn.active, withdrawn.started_at), (S::Canceled, false, None));
    assert_eq!(withdrawn.failure.as_deref(), Some("rejected"));
}

#[test]
fn invalid_moves_are_refused_and_change_nothing() {
    let pending = deployment(S::Pending, true);
    let before = pending.clone();
    let err = pending.finish(DeploymentOutcome::Succeeded, later(1)).unwrap_err();
    assert_eq!(err.to_string(), "cannot succeed a deployment that is pending");
    assert_eq!(pending, before);

    let done = pending.start(later(1)).unwrap().finish(DeploymentOutcome::Succeeded, later(2)).unwrap();
    for refused in [
        done.start(later(3)),
        done.finish(DeploymentOutcome::Canceled { reason: None }, later(3)),
        done.finish(DeploymentOutcome::Failed { reason: "x".into() }, later(3)),
    ] {
        assert_eq!(refused.unwrap_err().code(), crate::ErrorCode::InvalidTransition);
    }
}

#[test]
fn approvals_expire_only_while_pending() {
    let mut d = deployment(S::Pending, false);
    assert!(!d.approvals_expired(later(100_000)), "no expiry set");
    d.approval_expires_at = Some(later(60));
    assert!(!d.approvals_expired(later(59)));
    assert!(d.approvals_expired(later(60)));
    d.state = S::Running;
    assert!(!d.approvals_expired(later(61)));
}

#[test]
fn states_parse_by_wire_name() {
    for s in DeploymentState::STATES {
        assert_eq!(DeploymentState::parse(s.as_str()).unwrap(), *s);
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    let err = DeploymentState::parse("done").unwrap_err();
    assert_eq!(err.details().unwrap()["reason"], "invalid_deployment_state");
}

#[test]
fn two_distinct_approvers_one_senior_complete_an_exception() {
    let requester = user(1);
    let complete = |approvals: &[DeploymentApproval], allow| approval_verdict(requester, approvals, allow);
    assert_eq!(complete(&[approval(2, Role::Reviewer), approval(3, Role::User)], false), ApprovalVerdict::Complete);
    assert_eq!(
        complete(&[approval(2, Role::ConfigManager), approval(3, Role::AppAdmin)], false),
        ApprovalVerdict::Complete
    );

    let cases: Vec<(Vec<DeploymentApproval>, bool, &str)> = vec![
        (vec![], false, "2 approvals by distinct users, at least one a reviewer, config_manager or app_admin"),
        (vec![approval(2, Role::Reviewer)], false, "1 more approval by another user"),
        (vec![approval(2, Role::User)], false, "1 more approval by a reviewer, config_manager or app_admin"),
        (
            vec![approval(2, Role::User), approval(3, Role::User)],
            false,
            "1 more approval by a reviewer, config_manager or app_admin",
        ),
        // One approver twice is one approver.
        (vec![approval(2, Role::Reviewer), approval(2, Role::Reviewer)], false, "1 more approval by another user"),
        // The requester as one of the two, not allowed.
        (
            vec![approval(1, Role::AppAdmin), approval(2, Role::Reviewer)],
            false,
            "1 more approval by another user (the requester's own approval does not count)",
        ),
    ];
    for (approvals, allow, want) in cases {
        assert_eq!(complete(&approvals, allow), ApprovalVerdict::Incomplete { missing: want.into() }, "{approvals:?}");
    }
    // Allowed by the app's settings, the requester counts.
    assert_eq!(complete(&[approval(1, Role::AppAdmin), approval(2, Role::User)], true), ApprovalVerdict::Complete);
}

fn roles() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

proptest! {
    /// Whatever the approvals: a complete verdict always has two distinct
    /// eligible users, at least one of them senior; the requester never
    /// counts unless allowed; and with those conditions met it is complete.
    #[test]
    fn a_complete_verdict_always_has_two_eligible_users_one_senior(
        raw in prop::collection::vec((0u128..5, roles()), 0..7),
        allow in any::<bool>(),
    ) {
        let requester = user(0);
        let approvals: Vec<DeploymentApproval> = raw.iter().map(|(u, r)| approval(*u, *r)).collect();
        let eligible: Vec<&DeploymentApproval> =
            approvals.iter().filter(|a| allow || a.user_id != requester).collect();
        let users: BTreeSet<UserId> = eligible.iter().map(|a| a.user_id).collect();
        let any_senior = eligible.iter().any(|a| a.role >= Role::Reviewer);
        let verdict = approval_verdict(requester, &approvals, allow);
        prop_assert_eq!(verdict == ApprovalVerdict::Complete, users.len() >= 2 && any_senior);
        if approvals.iter().all(|a| a.role == Role::User) {
            prop_assert_ne!(approval_verdict(requester, &approvals, allow), ApprovalVerdict::Complete);
        }
        if !allow {
            // Dropping the requester's approvals never changes the verdict.
            let others: Vec<DeploymentApproval> =
                approvals.iter().filter(|a| a.user_id != requester).cloned().collect();
            let without = approval_verdict(requester, &others, false);
            prop_assert_eq!(without == ApprovalVerdict::Complete, verdict == ApprovalVerdict::Complete);
        }
    }
}

fn env(n: u128, position: u32) -> Environment {
    Environment {
        id: EnvironmentId(Uuid::from_u128(n)),
        app_id: AppId(Uuid::nil()),
        name: format!("e{n}"),
        position,
        is_canonical: position == 0,
        runtime_profile_id: None,
    }
}

#[test]
fn promotion_follows_stage_order_and_anything_else_skips() {
    // Given out of order: stage_check orders by position (dev 0, qa 5, prod 9).
    let (dev, qa, prod) = (env(1, 0), env(2, 5), env(3, 9));
    let envs = vec![prod.clone(), dev.clone(), qa.clone()];
    let (r1, r2) = (ReleaseId(Uuid::from_u128(100)), ReleaseId(Uuid::from_u128(200)));
    let mut on: HashMap<EnvironmentId, ReleaseId> = HashMap::new();

    let check = |target: &Environment, release, on: &HashMap<_, _>| stage_check(&envs, target.id, release, on).unwrap();
    assert_eq!(check(&dev, r1, &on), StageVerdict::FirstStage);
    assert_eq!(check(&qa, r1, &on), StageVerdict::SkipStage { previous: dev.id });
    assert_eq!(check(&prod, r1, &on), StageVerdict::SkipStage { previous: qa.id });

    on.insert(dev.id, r1);
    assert_eq!(check(&qa, r1, &on), StageVerdict::Promotion { from: dev.id });
    assert_eq!(check(&qa, r2, &on), StageVerdict::SkipStage { previous: dev.id }, "another release on dev");
    assert_eq!(check(&prod, r1, &on), StageVerdict::SkipStage { previous: qa.id }, "qa never got it");

    on.insert(qa.id, r1);
    on.insert(dev.id, r2);
    assert_eq!(check(&prod, r1, &on), StageVerdict::Promotion { from: qa.id });
    assert_eq!(check(&dev, r1, &on), StageVerdict::FirstStage, "the first stage takes any release");

    let unknown = stage_check(&envs, EnvironmentId(Uuid::from_u128(99)), r1, &on).unwrap_err();
    assert_eq!(unknown, Error::NotFound("environment"));
}

#[test]
fn the_exception_follows_the_stage_and_the_request() {
    let prev = EnvironmentId(Uuid::from_u128(1));
    assert_eq!(required_exception(StageVerdict::FirstStage, 1), None);
    assert_eq!(required_exception(StageVerdict::Promotion { from: prev }, 1), None);
    assert_eq!(required_exception(StageVerdict::SkipStage { previous: prev }, 1), Some(DeploymentException::SkipStage));
    assert_eq!(required_exception(StageVerdict::FirstStage, 2), Some(DeploymentException::MultiEnvironment));
    assert_eq!(
        required_exception(StageVerdict::SkipStage { previous: prev }, 3),
        Some(DeploymentException::MultiEnvironment)
    );
}

#[test]
fn a_deployment_round_trips_through_json() {
    let mut d = deployment(S::Pending, false);
    d.kind = DeploymentKind::RevertAndRelease;
    d.exception = Some(DeploymentException::SkipStage);
    d.approvals = vec![approval(2, Role::ConfigManager)];
    d.rejection = Some(DeploymentRejection { user_id: user(3), at: later(1), reason: Some("not today".into()) });
    let text = serde_json::to_value(&d).unwrap();
    assert_eq!(text["kind"], "revert_and_release");
    assert_eq!(text["exception"], "skip_stage");
    assert_eq!(text["approvals"][0]["role"], "config_manager");
    assert_eq!(serde_json::from_value::<Deployment>(text).unwrap(), d);
}
