//! The store conformance suite: one specification of the store port, run
//! against every store crate (SPEC §10 "both stores pass one shared
//! conformance suite").
//!
//! Invariant: every case calls only methods of the [`Store`] traits and
//! asserts observable values, so a case that passes on one store means the
//! same on another. A case takes a fresh, empty store and panics (through
//! `assert!`) on the first deviation.
//!
//! A store crate runs the whole suite from one test file:
//!
//! ```ignore
//! async fn fresh_store() -> (SqliteStore, tempfile::TempDir) { /* ... */ }
//!
//! conman_core::store_conformance_tests!(fresh_store());
//! ```
//!
//! The expression given to [`store_conformance_tests!`](crate::store_conformance_tests) is evaluated once
//! per test and must yield a [`StoreFixture`]: either a store, or a
//! `(store, guard)` pair whose guard (a temporary directory, a scratch
//! database) lives until the test ends. The calling crate needs `tokio`
//! with the `macros` and `rt-multi-thread` features.

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, ErrorCode};
use crate::ports::store::{ConflictReason, Store};

pub mod apps;
pub mod audit;
pub mod changesets;
pub mod deployments;
pub mod drift;
pub mod fixtures;
pub mod freezes;
pub mod intents;
pub mod jobs;
pub mod profiles;
pub mod releases;
pub mod units;
pub mod users;
pub mod workspaces;

/// What the test-setup expression of [`store_conformance_tests!`](crate::store_conformance_tests) yields.
pub trait StoreFixture {
    /// The store under test.
    type Store: Store + 'static;
    /// Whatever must outlive the store (e.g. its directory).
    type Guard;
    /// Splits the fixture into the store and its guard.
    fn into_parts(self) -> (Self::Store, Self::Guard);
}

impl<S: Store + 'static> StoreFixture for S {
    type Store = S;
    type Guard = ();
    fn into_parts(self) -> (S, ()) {
        (self, ())
    }
}

impl<S: Store + 'static, G> StoreFixture for (S, G) {
    type Store = S;
    type Guard = G;
    fn into_parts(self) -> (S, G) {
        self
    }
}

/// A boxed future that may move between threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Starts `task` on the test's runtime at once and returns a future of its
/// output, so cases that need real concurrency stay runtime-agnostic.
pub type Spawner = fn(BoxFuture<Result<(), Error>>) -> BoxFuture<Result<(), Error>>;

/// Asserts that `result` failed with `code`, showing the value otherwise.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode) -> Error {
    match result {
        Err(err) if err.code() == code => err,
        other => panic!("expected a `{}` error, got {other:?}", code.as_str()),
    }
}

/// Asserts `result` is exactly the conflict the core renders for `reason`:
/// code, message and details, so two stores cannot drift apart on it.
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, Error>, reason: ConflictReason) -> Error {
    let expected = Error::from(reason);
    match result {
        Err(err) if err == expected => err,
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

/// Expands to one `#[tokio::test]` per conformance case, grouped in one
/// module per aggregate. `$make` is an async expression yielding a fresh,
/// empty [`StoreFixture`]; it is evaluated once per test.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@module $make; users:
            user_round_trips_by_id_email_and_handle,
            duplicate_email_or_handle_is_a_conflict,
            user_update_is_compare_and_set,
            list_users_pages_by_email,
            credentials_are_found_by_hash_listed_and_revoked,
            revoking_all_credentials_of_a_user_spares_other_users,
            password_reset_is_usable_once,
        );
        $crate::store_conformance_tests!(@module $make; apps:
            app_round_trips_by_id_and_name,
            duplicate_app_name_is_a_conflict,
            app_update_is_compare_and_set,
            put_membership_inserts_then_replaces,
            list_members_pages_by_email_with_total,
            deleting_a_membership_removes_only_it,
            memberships_of_lists_every_app_of_a_user,
            list_apps_for_user_lists_only_member_apps,
            list_all_apps_pages_by_name,
            invite_lookups_are_scoped_by_app,
            invites_list_newest_first,
            invite_update_is_compare_and_set,
            the_admin_guard_refuses_a_unit_that_leaves_no_app_admin,
        );
        $crate::store_conformance_tests!(@module $make; workspaces:
            workspace_lookups_are_scoped_by_app,
            default_workspace_and_branch_lookups,
            duplicate_branch_conflicts_only_within_an_app,
            list_workspaces_filters_by_owner_and_pages_oldest_first,
            workspace_update_is_compare_and_set,
            all_workspaces_spans_every_app,
        );
        $crate::store_conformance_tests!(@module $make; changesets:
            changeset_round_trips_every_field_and_is_scoped_by_app,
            list_changesets_filters_and_pages_newest_first,
            queued_changesets_list_in_queue_order,
            a_workspace_has_at_most_one_open_changeset,
            reopening_beside_an_open_changeset_is_a_conflict,
            changeset_update_is_compare_and_set,
            open_changeset_of_workspace_is_scoped_by_app_and_workspace,
            revisions_list_by_number_and_refuse_duplicates,
            a_revision_of_an_unknown_changeset_is_refused,
            put_review_replaces_only_the_same_reviewers_vote_on_the_same_revision,
            comments_round_trip_and_list_oldest_first,
            comment_update_is_compare_and_set,
        );
        $crate::store_conformance_tests!(@module $make; profiles:
            runtime_profile_round_trips_every_field_and_is_scoped_by_app,
            duplicate_profile_name_conflicts_only_within_an_app,
            runtime_profile_update_is_compare_and_set,
            list_runtime_profiles_pages_by_name,
            profile_revisions_list_newest_first_and_refuse_duplicates,
            secrets_are_keyed_by_owner_name_and_revision,
            all_secrets_visits_every_row_once_in_keyset_order,
            rewrap_replaces_only_rows_still_wrapped_by_the_expected_key,
            secrets_key_id_is_compare_and_set,
            deleting_changeset_secrets_spares_every_other_owner,
            replace_environments_inserts_updates_and_removes,
            duplicate_environment_names_are_a_conflict,
            changeset_overrides_are_replaced_whole_in_order,
        );
        $crate::store_conformance_tests!(@module $make; audit:
            outbox_lists_newest_first_and_marks_delivery,
            audit_records_round_trip_every_field,
            audit_entries_of_several_units_form_one_chain,
            list_audit_filters_by_each_field,
            list_audit_pages_newest_first_with_totals,
            audit_has_sha_is_scoped_by_app,
        );
        $crate::store_conformance_tests!(@module $make; jobs:
            job_lookups_are_scoped_by_app,
            list_jobs_filters_and_pages_newest_first,
            claim_takes_the_oldest_runnable_job,
            claim_can_be_limited_to_types,
            claim_returns_none_when_nothing_is_runnable,
            an_expired_lease_is_reclaimed,
            renewal_extends_only_the_owners_lease,
            finishing_by_the_owner_ends_the_attempt,
            finishing_without_the_lease_changes_nothing,
            a_retry_is_claimable_only_after_run_after,
            cancelling_applies_only_to_queued_jobs,
            a_cancel_request_flags_a_running_job,
            a_requested_cancel_wins_over_any_other_end,
            a_released_job_is_queued_again_without_using_an_attempt,
            job_mutations_of_an_unknown_id_are_not_found,
            log_lines_are_numbered_per_job_and_followed_with_after,
            the_log_keeps_its_newest_tail_within_the_bound,
            one_oversized_append_keeps_only_its_tail,
            a_unit_appends_log_lines_with_its_other_changes,
            a_claim_leaves_the_log_alone,
            skipped_lines_use_up_their_numbers_and_mark_the_log_truncated,
            job_counts_group_by_type_and_state,
        );
        $crate::store_conformance_tests!(@module $make; releases:
            release_round_trips_whole_and_is_scoped_by_app,
            release_update_is_compare_and_set,
            a_tag_is_unique_per_app_and_refuses_its_whole_unit,
            releases_list_newest_first_and_tags_are_found_by_prefix,
        );
        $crate::store_conformance_tests!(@module $make; deployments:
            deployment_round_trips_whole_and_is_scoped_by_app,
            deployment_update_is_compare_and_set,
            two_active_deployments_of_one_environment_in_one_unit_are_refused,
            a_second_active_deployment_in_another_unit_is_refused,
            active_deployments_are_per_environment_and_finishing_frees_one,
            deployments_list_newest_first_with_every_filter,
            the_last_succeeded_deployment_is_the_one_that_finished_last,
            deployments_refer_to_existing_rows_and_pin_their_environment,
        );
        $crate::store_conformance_tests!(@module $make; freezes:
            freeze_windows_round_trip_and_list_oldest_first,
            deleting_a_freeze_window_removes_only_it,
            freeze_windows_refer_to_existing_rows_and_pin_their_environment,
        );
        $crate::store_conformance_tests!(@module $make; drift:
            the_last_validation_is_the_newest,
            migration_records_list_newest_first,
            drift_records_refer_to_existing_rows_and_pin_their_environment,
        );
        $crate::store_conformance_tests!(@module $make; intents:
            intent_round_trips_while_pending,
            a_claimed_ref_refuses_a_second_intent_and_its_whole_unit,
            completion_frees_the_refs_and_keeps_the_first_outcome,
            pending_intents_list_oldest_first,
            an_intent_of_an_unknown_app_is_refused,
            a_move_from_another_value_than_the_remembered_one_refuses_its_whole_unit,
            an_abandoned_intent_leaves_the_ref_value_unknown,
            an_adoption_claims_a_ref_whatever_its_memory,
        );
        $crate::store_conformance_tests!(@module $make; units:
            a_failing_mutation_rolls_back_the_whole_unit,
            a_stale_update_rolls_back_earlier_mutations,
            timestamps_round_trip_exactly,
            page_two_gives_the_second_slice,
        );
        mod concurrency {
            #[allow(unused_imports)]
            use super::*;

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_units_all_land_on_one_unbroken_chain() {
                let (store, _guard) = $crate::conformance::StoreFixture::into_parts($make.await);
                $crate::conformance::units::concurrent_units_all_land_on_one_unbroken_chain(
                    ::std::sync::Arc::new(store),
                    |task| {
                        let handle = ::tokio::spawn(task);
                        ::std::boxed::Box::pin(async move { handle.await.expect("conformance task panicked") })
                    },
                )
                .await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn admins_demoting_each_other_at_once_leave_one() {
                let (store, _guard) = $crate::conformance::StoreFixture::into_parts($make.await);
                $crate::conformance::apps::admins_demoting_each_other_at_once_leave_one(
                    ::std::sync::Arc::new(store),
                    |task| {
                        let handle = ::tokio::spawn(task);
                        ::std::boxed::Box::pin(async move { handle.await.expect("conformance task panicked") })
                    },
                )
                .await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn racing_deploys_to_one_environment_leave_exactly_one_active() {
                let (store, _guard) = $crate::conformance::StoreFixture::into_parts($make.await);
                $crate::conformance::deployments::racing_deploys_to_one_environment_leave_exactly_one_active(
                    ::std::sync::Arc::new(store),
                    |task| {
                        let handle = ::tokio::spawn(task);
                        ::std::boxed::Box::pin(async move { handle.await.expect("conformance task panicked") })
                    },
                )
                .await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claimers_take_each_job_exactly_once() {
                let (store, _guard) = $crate::conformance::StoreFixture::into_parts($make.await);
                $crate::conformance::jobs::concurrent_claimers_take_each_job_exactly_once(
                    ::std::sync::Arc::new(store),
                    |task| {
                        let handle = ::tokio::spawn(task);
                        ::std::boxed::Box::pin(async move { handle.await.expect("conformance task panicked") })
                    },
                )
                .await;
            }
        }
    };
    (@module $make:expr; $module:ident: $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[::tokio::test]
                async fn $case() {
                    let (store, _guard) = $crate::conformance::StoreFixture::into_parts($make.await);
                    $crate::conformance::$module::$case(&store).await;
                }
            )*
        }
    };
}
