//! The Store conformance suite on the DynamoDB adapter, against moto's server on loopback.

use linkcrm_storage::dynamo::DynamoStore;
use linkcrm_storage::Store;
use linkcrm_testkit::{unique_table_name, Moto};
use std::sync::Arc;

/// A table of its own per case, so a failing case leaves nothing for the others to trip on.
async fn fresh() -> Arc<dyn Store> {
    let moto = Moto::shared().expect("moto server");
    let store = DynamoStore::for_endpoint(&moto.endpoint, &unique_table_name("conformance"));
    store.create_table().await.expect("create table");
    Arc::new(store)
}

linkcrm_storage::conformance_suite!(fresh().await);
