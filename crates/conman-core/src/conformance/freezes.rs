//! Conformance cases of deploy freeze windows
//! ([`FreezeStore`](crate::ports::store::FreezeStore) plus the freeze
//! mutations).
//!
//! Invariant: a window round-trips whole (one-off and weekly schedules),
//! lookups are scoped by app and environment, an environment's windows are
//! listed oldest first, deleting removes only that window (a missing one
//! is `not_found`), and an environment with windows cannot be removed.

use super::deployments::stage;
use super::fixtures::{self, freeze_window, later, setup};
use super::{assert_code, assert_conflict};
use crate::domain::freeze::{FreezeSchedule, FreezeWindow, Weekday};
use crate::error::ErrorCode;
use crate::ids::{EnvironmentId, FreezeWindowId};
use crate::ports::store::{ConflictReason, FreezeMutation, ProfileMutation, Record, Store};

fn weekend() -> FreezeSchedule {
    FreezeSchedule::Weekly {
        start_day: Weekday::Friday,
        start_time: "16:00".into(),
        end_day: Weekday::Monday,
        end_time: "08:00".into(),
        timezone: "Europe/Berlin".into(),
    }
}

fn one_off() -> FreezeSchedule {
    let at = fixtures::now();
    FreezeSchedule::OneOff { starts_at: at, ends_at: later(at, 3600) }
}

/// Windows read back equal, listed per environment oldest first, under
/// their app only.
pub async fn freeze_windows_round_trip_and_list_oldest_first<S: Store>(store: &S) {
    let s = stage(store).await;
    let base = fixtures::now();
    let prod = &s.envs[2];
    let windows: Vec<FreezeWindow> = [weekend(), one_off(), weekend()]
        .into_iter()
        .enumerate()
        .map(|(i, schedule)| FreezeWindow {
            created_at: later(base, 10 - i as i64),
            ..freeze_window(prod, &s.ada, schedule)
        })
        .collect();
    let on_qa = freeze_window(&s.envs[1], &s.bob, one_off());
    let elsewhere = freeze_window(&s.other_env, &s.ada, weekend());
    // Inserted newest first, so insertion order cannot pass for "oldest first".
    setup(store, windows.iter().chain([&on_qa, &elsewhere]).cloned().map(FreezeMutation::InsertFreezeWindow)).await;

    let oldest_first: Vec<FreezeWindow> = windows.iter().rev().cloned().collect();
    assert_eq!(store.freeze_windows(s.app.id, prod.id).await.unwrap(), oldest_first);
    assert_eq!(store.freeze_windows(s.app.id, s.envs[1].id).await.unwrap(), vec![on_qa.clone()]);
    assert!(store.freeze_windows(s.app.id, s.envs[0].id).await.unwrap().is_empty());
    assert!(store.freeze_windows(s.other_app.id, prod.id).await.unwrap().is_empty(), "scoped by app");
    assert_eq!(store.freeze_window(s.app.id, on_qa.id).await.unwrap(), Some(on_qa.clone()));
    assert_eq!(store.freeze_window(s.other_app.id, on_qa.id).await.unwrap(), None);
    assert_eq!(store.freeze_window(s.other_app.id, elsewhere.id).await.unwrap(), Some(elsewhere));
}

/// Deleting removes exactly that window; deleting a missing window, or one
/// of another app, is `not_found` and refuses the unit; an id is unique.
pub async fn deleting_a_freeze_window_removes_only_it<S: Store>(store: &S) {
    let s = stage(store).await;
    let prod = &s.envs[2];
    let (a, b) = (freeze_window(prod, &s.ada, weekend()), freeze_window(prod, &s.ada, one_off()));
    setup(store, [FreezeMutation::InsertFreezeWindow(a.clone()), FreezeMutation::InsertFreezeWindow(b.clone())]).await;
    assert_conflict(
        fixtures::commit(store, [FreezeMutation::InsertFreezeWindow(a.clone())]).await,
        ConflictReason::Taken { record: Record::FreezeWindow, field: "id".into() },
    );

    setup(store, [FreezeMutation::DeleteFreezeWindow { app_id: s.app.id, id: a.id }]).await;
    assert_eq!(store.freeze_windows(s.app.id, prod.id).await.unwrap(), vec![b.clone()]);
    assert_eq!(store.freeze_window(s.app.id, a.id).await.unwrap(), None);

    let again = FreezeMutation::DeleteFreezeWindow { app_id: s.app.id, id: a.id };
    assert_code(fixtures::commit(store, [again]).await, ErrorCode::NotFound);
    let of_other_app = FreezeMutation::DeleteFreezeWindow { app_id: s.other_app.id, id: b.id };
    let bystander = freeze_window(prod, &s.bob, weekend());
    let err = assert_code(
        fixtures::commit(store, [FreezeMutation::InsertFreezeWindow(bystander.clone()), of_other_app]).await,
        ErrorCode::NotFound,
    );
    assert_eq!(err.to_string(), "freeze_window not found");
    assert_eq!(store.freeze_window(s.app.id, bystander.id).await.unwrap(), None, "the whole unit is refused");
    let unknown = FreezeMutation::DeleteFreezeWindow { app_id: s.app.id, id: FreezeWindowId(uuid::Uuid::now_v7()) };
    assert_code(fixtures::commit(store, [unknown]).await, ErrorCode::NotFound);
    assert_eq!(store.freeze_windows(s.app.id, prod.id).await.unwrap(), vec![b]);
}

/// A window of an unknown environment or user is refused; an environment
/// with windows cannot be removed until they are deleted (in the same unit).
pub async fn freeze_windows_refer_to_existing_rows_and_pin_their_environment<S: Store>(store: &S) {
    let s = stage(store).await;
    let dev = &s.envs[0];
    let unknown_env =
        FreezeWindow { environment_id: EnvironmentId(uuid::Uuid::now_v7()), ..freeze_window(dev, &s.ada, weekend()) };
    assert_conflict(
        fixtures::commit(store, [FreezeMutation::InsertFreezeWindow(unknown_env)]).await,
        ConflictReason::MissingReference,
    );
    let unknown_user = freeze_window(dev, &fixtures::user("eve"), weekend());
    assert_conflict(
        fixtures::commit(store, [FreezeMutation::InsertFreezeWindow(unknown_user)]).await,
        ConflictReason::MissingReference,
    );

    let w = freeze_window(dev, &s.ada, weekend());
    setup(store, [FreezeMutation::InsertFreezeWindow(w.clone())]).await;
    let without_dev = ProfileMutation::ReplaceEnvironments { app_id: s.app.id, environments: s.envs[1..].to_vec() };
    assert_conflict(fixtures::commit(store, [without_dev.clone()]).await, ConflictReason::MissingReference);
    assert_eq!(store.environments(s.app.id).await.unwrap().len(), 3);
    setup(
        store,
        [
            crate::ports::store::Mutation::from(FreezeMutation::DeleteFreezeWindow { app_id: s.app.id, id: w.id }),
            crate::ports::store::Mutation::from(without_dev),
        ],
    )
    .await;
    assert_eq!(store.environments(s.app.id).await.unwrap().len(), 2);
}
