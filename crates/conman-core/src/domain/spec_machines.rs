//! SPEC §4 transcribed by hand, machine by machine, and every (state,
//! event) cell of each state machine tested against the transcription — the
//! oracle is the SPEC text, never the machines' own edge lists (as
//! `rbac.rs`'s tests do for SPEC §3).
//!
//! Each table is the SPEC's arrows, one target per line, with the event
//! that takes the edge in parentheses (the SPEC names the changeset's
//! events; for the other machines the event is the one the target implies).
//! Edges the SPEC does not draw but Conman needs are listed apart, each
//! with the reason and where it is decided, so that every cell outside both
//! lists is proven refused with `invalid_transition`.

use super::changeset::ChangesetState;
use super::deployment::DeploymentState;
use super::invite::InviteState;
use super::job::JobState;
use super::machine::check;
use super::release::ReleaseState;
use super::temp_env::TempEnvState;
use super::StateMachine;

/// Checks `M` cell by cell and by random walks from `start` against the
/// SPEC transcription plus Conman's own edges.
fn conforms<M>(states: &str, spec: &str, conman_own: &str, start: M)
where
    M: StateMachine + serde::de::DeserializeOwned,
{
    let mut edges = check::edges::<M>(spec);
    edges.extend(check::edges::<M>(conman_own));
    check::every_cell(states, &edges);
    check::random_walks(start, &edges);
}

#[test]
fn changeset_follows_spec_section_4() {
    conforms::<ChangesetState>(
        "draft submitted in_review approved changes_requested rejected queued released conflicted needs_revalidation",
        "
        draft -> submitted                                        (submit)
        submitted -> in_review                                    (gate_passed)
        submitted -> draft                                        (gate_failed)
        in_review -> approved                                     (approve)
        in_review -> changes_requested                            (request_changes)
        in_review -> rejected                                     (reject)
        changes_requested -> draft                                (move_to_draft)
        submitted | in_review | changes_requested -> submitted    (resubmit)
        approved -> queued                                        (queue)
        queued -> released                                        (release)
        queued -> conflicted                                      (conflict)
        queued -> needs_revalidation                              (invalidate)
        queued -> draft                                           (move_to_draft)
        conflicted | needs_revalidation -> draft                  (move_to_draft)
        # released, rejected: terminal
        ",
        "",
        ChangesetState::Draft,
    );
}

#[test]
fn release_follows_spec_section_4() {
    conforms::<ReleaseState>(
        "draft assembling validated published deployed_partial deployed_full rolled_back failed",
        "
        draft -> assembling                                       (assemble)
        assembling -> validated                                   (assembly_passed)
        validated -> published                                    (publish)
        published -> deployed_partial                             (deployed_some)
        deployed_partial -> deployed_full                         (deployed_all)
        published | deployed_partial | deployed_full -> rolled_back (roll_back)
        assembling -> failed                                      (assembly_failed)
        failed -> draft                                           (reopen)
        ",
        "
        # docs/decisions/0016-releases.md: a publish that finds the
        # integration branch moved leaves the release validated; SPEC §2.4
        # says to re-assemble it.
        validated -> assembling                                   (assemble)
        ",
        ReleaseState::Draft,
    );
}

#[test]
fn deployment_follows_spec_section_4() {
    conforms::<DeploymentState>(
        "pending running succeeded failed canceled",
        "
        pending -> running                                        (start)
        running -> succeeded                                      (succeed)
        running -> failed                                         (fail)
        running -> canceled                                       (cancel)
        ",
        "
        # SPEC §2.5: a deployment that needs two approvals waits in pending,
        # and may be rejected there (POST .../deployments/:id/reject); §4
        # draws no way out of pending but running, so a deployment refused
        # or withdrawn before it starts ends canceled.
        pending -> canceled                                       (cancel)
        ",
        DeploymentState::Pending,
    );
}

#[test]
fn job_follows_spec_section_4() {
    conforms::<JobState>(
        "queued running succeeded failed canceled",
        "
        queued -> running                                         (claim)
        running -> succeeded                                      (succeed)
        running -> failed                                         (fail)
        running -> canceled                                       (cancel)
        running -> queued                                         (retry)   # a failed attempt with attempts left
        ",
        "
        # docs/decisions/0002-jobs.md: cancelling a queued job cancels it at
        # once; a job whose lease expired (its worker died, or released it
        # at shutdown) goes back to the queue.
        queued -> canceled                                        (cancel)
        running -> queued                                         (lease_expired)
        ",
        JobState::Queued,
    );
}

#[test]
fn temp_env_follows_spec_section_4() {
    conforms::<TempEnvState>(
        "provisioning active expired deleted failed",
        "
        provisioning -> active                                    (provisioned)
        active -> expired                                         (expire)
        expired -> deleted                                        (delete)
        expired -> active                                         (undo_expire)
        provisioning -> failed                                    (provision_failed)
        ",
        "",
        TempEnvState::Provisioning,
    );
}

/// Invites are not in SPEC §4; their table is the one `domain/invite.rs`
/// documents (resend revives an expired invite with a new token).
#[test]
fn invite_follows_its_documented_table() {
    conforms::<InviteState>(
        "pending accepted revoked expired",
        "",
        "
        pending -> accepted                                       (accept)
        pending -> revoked                                        (revoke)
        pending -> pending                                        (resend)
        expired -> pending                                        (resend)
        expired -> revoked                                        (revoke)
        ",
        InviteState::Pending,
    );
}
