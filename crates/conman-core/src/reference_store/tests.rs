//! The whole store conformance suite, run against the reference store.

use super::ReferenceStore;

async fn fresh_store() -> ReferenceStore {
    ReferenceStore::new()
}

crate::store_conformance_tests!(fresh_store());
