//! Conformance cases of the audit log and the outbox
//! ([`AuditStore`](crate::ports::store::AuditStore)).
//!
//! Invariant: every committed audit entry becomes one record of a single
//! global chain that [`verify_segment`](crate::domain::audit::verify_segment)
//! accepts from the genesis hash, with content read back exactly as written.

use serde_json::json;
use uuid::Uuid;

use super::assert_code;
use super::fixtures::{self, audit_entry, later, setup};
use crate::domain::audit::{AuditEntry, AuditRecord, RequestContext, GENESIS_HASH};
use crate::domain::outbox::OutboxMessage;
use crate::domain::Timestamp;
use crate::error::ErrorCode;
use crate::ids::{AppId, AuditEventId, UserId};
use crate::ports::store::{
    AuditFilter, Mutation, OutboxMutation, PageRequest, Store, Unaudited, UnitOfWork, UserMutation,
};

/// Outbox messages list newest first with totals; marking one delivered
/// sets its delivery time only; an unknown message is not found.
pub async fn outbox_lists_newest_first_and_marks_delivery<S: Store>(store: &S) {
    let base = fixtures::now();
    let app = Some(AppId(Uuid::now_v7()));
    let messages: Vec<OutboxMessage> = (0..5)
        .map(|i| OutboxMessage {
            created_at: later(base, i),
            ..fixtures::outbox(&format!("r{i}"), if i % 2 == 0 { app } else { None })
        })
        .collect();
    setup(store, messages.iter().cloned().map(OutboxMutation::InsertOutbox)).await;

    let newest_first: Vec<OutboxMessage> = messages.iter().rev().cloned().collect();
    let all = store.list_outbox(PageRequest::default()).await.unwrap();
    assert_eq!(all.items, newest_first);
    assert_eq!(all.total, 5);
    let second = store.list_outbox(PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, newest_first[2..4].to_vec());
    assert_eq!(second.total, 5);

    let at = later(base, 60);
    setup(store, [Mutation::from(OutboxMutation::MarkOutboxDelivered { id: messages[1].id, at })]).await;
    let listed = store.list_outbox(PageRequest::default()).await.unwrap().items;
    let delivered: Vec<Option<Timestamp>> = listed.iter().map(|m| m.delivered_at).collect();
    assert_eq!(delivered, [None, None, None, Some(at), None]);
    assert_eq!(listed[3], OutboxMessage { delivered_at: Some(at), ..messages[1].clone() });

    let unknown = fixtures::outbox("ghost", None).id;
    assert_code(
        fixtures::commit(store, [Mutation::from(OutboxMutation::MarkOutboxDelivered { id: unknown, at })]).await,
        ErrorCode::NotFound,
    );
}

/// Every field of an audit entry, JSON included, reads back exactly, and
/// the first record follows the genesis hash.
pub async fn audit_records_round_trip_every_field<S: Store>(store: &S) {
    let full = AuditEntry {
        id: AuditEventId(Uuid::now_v7()),
        occurred_at: fixtures::now(),
        actor_id: Some(UserId(Uuid::now_v7())),
        app_id: Some(AppId(Uuid::now_v7())),
        entity_type: "workspace".into(),
        entity_id: Uuid::now_v7().to_string(),
        action: "workspace.file_written".into(),
        before: Some(json!({"path": "a.yaml", "size": 12, "nested": {"z": [1, 2.5, null], "a": true}})),
        after: Some(json!({"path": "a.yaml", "size": 13, "note": "ünïcødé \"quoted\" \n newline"})),
        git_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        request: RequestContext {
            request_id: Some("req-1".into()),
            ip: Some("2001:db8::1".into()),
            user_agent: Some("conman-cli/1.0".into()),
        },
    };
    let mut bare = audit_entry("system.started", "system", "conman");
    bare.before = Some(serde_json::Value::Null);
    store.commit(UnitOfWork::new().audit_only(full.clone()).audit_only(bare.clone())).await.unwrap();

    let chain = fixtures::verified_chain(store, 10).await;
    let entries: Vec<AuditEntry> = chain.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, [full, bare]);
    assert_eq!(chain[0].seq, 1);
    assert_eq!(chain[0].prev_hash, GENESIS_HASH);
    assert_eq!(chain[1].prev_hash, chain[0].hash);
}

/// Entries of several units, including a unit with several entries, form
/// one chain in commit order, which verifies when walked in small pages.
pub async fn audit_entries_of_several_units_form_one_chain<S: Store>(store: &S) {
    let mut written = Vec::new();
    for unit in 0..7 {
        let entries: Vec<AuditEntry> =
            (0..=unit % 3).map(|i| audit_entry(&format!("unit{unit}.entry{i}"), "test", "x")).collect();
        let ada = fixtures::user(&format!("user{unit}"));
        let work = entries.iter().cloned().fold(
            UnitOfWork::new().unaudited(Mutation::from(UserMutation::InsertUser(ada)), Unaudited::Fixture),
            UnitOfWork::audit_only,
        );
        store.commit(work).await.unwrap();
        written.extend(entries);
    }

    let chain = fixtures::verified_chain(store, 3).await;
    let seqs: Vec<i64> = chain.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=written.len() as i64).collect::<Vec<_>>());
    assert_eq!(chain.into_iter().map(|r| r.entry).collect::<Vec<_>>(), written);

    // Reading after the last record, or past it, gives nothing.
    assert_eq!(store.audit_chain(written.len() as i64, 10).await.unwrap(), vec![]);
    let tail = store.audit_chain(written.len() as i64 - 2, 10).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [written.len() as i64 - 1, written.len() as i64]);
}

/// The entries `list_audit_*` cases query: two apps, two actors, several
/// entities, one second apart, committed oldest first.
fn audit_scenario() -> (AppId, AppId, UserId, UserId, Vec<AuditEntry>) {
    let (billing, search) = (AppId(Uuid::now_v7()), AppId(Uuid::now_v7()));
    let (ada, bob) = (UserId(Uuid::now_v7()), UserId(Uuid::now_v7()));
    let base = fixtures::now();
    let rows: [(Option<AppId>, Option<UserId>, &str, &str); 8] = [
        (Some(billing), Some(ada), "app", "billing"),
        (Some(billing), Some(ada), "workspace", "w1"),
        (Some(billing), Some(bob), "workspace", "w1"),
        (Some(search), Some(bob), "workspace", "w2"),
        (Some(billing), Some(bob), "workspace", "w3"),
        (None, None, "user", "u1"),
        (Some(search), Some(ada), "app", "search"),
        (Some(billing), Some(ada), "workspace", "w1"),
    ];
    let entries = rows
        .iter()
        .enumerate()
        .map(|(i, (app_id, actor_id, ty, id))| AuditEntry {
            occurred_at: later(base, i as i64),
            app_id: *app_id,
            actor_id: *actor_id,
            ..audit_entry(&format!("{ty}.event{i}"), ty, id)
        })
        .collect();
    (billing, search, ada, bob, entries)
}

/// Commits each entry as its own unit and returns the stored records.
async fn commit_each<S: Store>(store: &S, entries: &[AuditEntry]) -> Vec<AuditRecord> {
    for e in entries {
        store.commit(UnitOfWork::new().audit_only(e.clone())).await.unwrap();
    }
    fixtures::verified_chain(store, 100).await
}

/// Lists with `filter`, returning the matching positions in the scenario
/// (0-based) and the total.
async fn listed<S: Store>(store: &S, records: &[AuditRecord], filter: AuditFilter) -> (Vec<usize>, u64) {
    let page = store.list_audit(&filter, PageRequest { page: 1, limit: 100 }).await.unwrap();
    let positions = page
        .items
        .iter()
        .map(|item| {
            let i = records.iter().position(|r| r.entry.id == item.entry.id).expect("listed record is in the chain");
            assert_eq!(item, &records[i], "a listed record equals its chain record");
            i
        })
        .collect();
    (positions, page.total)
}

/// `list_audit` filters by app, entity type, entity id, actor and the
/// `[since, until)` time range, alone and combined, newest first.
pub async fn list_audit_filters_by_each_field<S: Store>(store: &S) {
    let (billing, search, ada, bob, entries) = audit_scenario();
    let records = commit_each(store, &entries).await;
    let at = |i: usize| entries[i].occurred_at;

    let cases: Vec<(&str, AuditFilter, Vec<usize>)> = vec![
        ("no filter", AuditFilter::default(), vec![7, 6, 5, 4, 3, 2, 1, 0]),
        ("app", AuditFilter { app_id: Some(billing), ..Default::default() }, vec![7, 4, 2, 1, 0]),
        ("other app", AuditFilter { app_id: Some(search), ..Default::default() }, vec![6, 3]),
        ("entity type", AuditFilter { entity_type: Some("app".into()), ..Default::default() }, vec![6, 0]),
        (
            "entity",
            AuditFilter { entity_type: Some("workspace".into()), entity_id: Some("w1".into()), ..Default::default() },
            vec![7, 2, 1],
        ),
        ("entity id", AuditFilter { entity_id: Some("w3".into()), ..Default::default() }, vec![4]),
        ("actor", AuditFilter { actor_id: Some(bob), ..Default::default() }, vec![4, 3, 2]),
        ("since", AuditFilter { since: Some(at(5)), ..Default::default() }, vec![7, 6, 5]),
        ("until", AuditFilter { until: Some(at(2)), ..Default::default() }, vec![1, 0]),
        ("range", AuditFilter { since: Some(at(2)), until: Some(at(5)), ..Default::default() }, vec![4, 3, 2]),
        (
            "app, actor and range",
            AuditFilter {
                app_id: Some(billing),
                actor_id: Some(ada),
                since: Some(at(1)),
                until: Some(later(at(7), 1)),
                ..Default::default()
            },
            vec![7, 1],
        ),
        ("no match", AuditFilter { entity_id: Some("nope".into()), ..Default::default() }, vec![]),
    ];
    for (name, filter, expected) in cases {
        let total = expected.len() as u64;
        assert_eq!(listed(store, &records, filter).await, (expected, total), "filter: {name}");
    }
}

/// `list_audit` pages newest first, with the filter's total on every page.
pub async fn list_audit_pages_newest_first_with_totals<S: Store>(store: &S) {
    let (billing, _, _, _, entries) = audit_scenario();
    let records = commit_each(store, &entries).await;
    let newest_first: Vec<AuditRecord> = records.iter().rev().cloned().collect();

    let second = store.list_audit(&AuditFilter::default(), PageRequest { page: 2, limit: 3 }).await.unwrap();
    assert_eq!(second.items, newest_first[3..6].to_vec());
    assert_eq!(second.total, 8);
    let last = store.list_audit(&AuditFilter::default(), PageRequest { page: 3, limit: 3 }).await.unwrap();
    assert_eq!(last.items, newest_first[6..].to_vec());
    assert_eq!(last.total, 8);

    // Billing has entries 7, 4, 2, 1, 0: its second page of two is 2, 1.
    let filter = AuditFilter { app_id: Some(billing), ..Default::default() };
    let page = store.list_audit(&filter, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(page.items, vec![records[2].clone(), records[1].clone()]);
    assert_eq!(page.total, 5);
    let beyond = store.list_audit(&filter, PageRequest { page: 9, limit: 2 }).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 5));
}

/// `audit_has_sha` finds a Git sha recorded for that app only.
pub async fn audit_has_sha_is_scoped_by_app<S: Store>(store: &S) {
    let (billing, search) = (AppId(Uuid::now_v7()), AppId(Uuid::now_v7()));
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    let entry = AuditEntry {
        app_id: Some(billing),
        git_sha: Some(sha.into()),
        ..audit_entry("release.published", "release", "r1")
    };
    assert!(!store.audit_has_sha(billing, sha).await.unwrap());
    store.commit(UnitOfWork::new().audit_only(entry)).await.unwrap();

    assert!(store.audit_has_sha(billing, sha).await.unwrap());
    assert!(!store.audit_has_sha(search, sha).await.unwrap());
    assert!(!store.audit_has_sha(billing, "0000000000000000000000000000000000000001").await.unwrap());
}
