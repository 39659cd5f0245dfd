//! The values a unit's last message writes as SQL literals (its audit
//! entries, see `literal.rs`) read back exactly, whatever they hold: a
//! property over arbitrary text — quotes, backslashes, `E'`, semicolons,
//! `$$`, control characters, any Unicode — on a real Postgres. Text holding
//! NUL (which Postgres text cannot store) refuses the whole unit, which then
//! changes nothing.

mod common;

use conman_core::conformance::fixtures::{self, verified_chain};
use conman_core::domain::audit::RequestContext;
use conman_core::ports::store::{AuditStore as _, Store, UnitOfWork};
use conman_core::ErrorCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Text biased towards what could end or bend a literal, mixed with
/// arbitrary Unicode.
fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![proptest::string::string_regex("[\\x00-\\x1f'\"\\\\;$E -]{0,16}").expect("regex"), any::<String>(),]
}

#[test]
fn audit_values_written_as_literals_read_back_exactly() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let Some((store, _scratch)) = rt.block_on(common::fresh_store()) else { return };
    let mut runner = TestRunner::new(Config { cases: 96, ..Config::default() });
    let strategy = (awkward_text(), awkward_text(), awkward_text());
    runner
        .run(&strategy, |(entity_id, text, agent)| {
            rt.block_on(async {
                let before = store.audit_chain(0, 10_000).await.expect("reads").len();
                let mut entry = fixtures::audit_entry("probe.literal", "probe", &entity_id);
                entry.before = Some(serde_json::json!({ "text": text }));
                entry.after = Some(serde_json::json!(text));
                entry.git_sha = Some(text.clone());
                entry.request = RequestContext { request_id: Some(text.clone()), ip: None, user_agent: Some(agent) };
                // An audit-only unit is sent as one message of literals.
                let committed = store.commit(UnitOfWork::new().audit_only(entry.clone())).await;
                let chain = verified_chain(&store, 500).await;
                // entity_id and git_sha are stored as text; JSON values
                // (before, after, request) escape NUL and store it.
                if entity_id.contains('\0') || text.contains('\0') {
                    let err = committed.expect_err("NUL cannot be stored as text");
                    prop_assert_eq!(err.code(), ErrorCode::Validation);
                    prop_assert_eq!(chain.len(), before);
                } else {
                    committed.expect("the unit commits");
                    prop_assert_eq!(chain.len(), before + 1);
                    let stored = &chain.last().expect("the new record").entry;
                    prop_assert_eq!(stored, &entry);
                }
                Ok(())
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
