//! The API on Lambda behind API Gateway's HTTP API: one function per endpoint family, each
//! serving the router of its family over DynamoDB, linking only its own context. Config:
//! `LINKCRM_TABLE`.

use linkcrm_core::catalogue::{Family, OpSpec};
use linkcrm_http::Extras;
use std::sync::Arc;

/// Serves `catalogue` (one family's operations) on its routes, with `extras` (a context's pages,
/// the prepared OpenAPI document), until the Lambda runtime stops the process.
pub async fn serve(family: Family, catalogue: Vec<OpSpec>, extras: Extras) -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let store = linkcrm_storage::dynamo::DynamoStore::from_env(&table, None).await;
    // API Gateway throttles; a per-process limiter would only limit one instance.
    let config = linkcrm_core::Config { rate_limit_per_sec: 0.0, ..linkcrm_core::Config::from_env() };
    // The server secret is read in the background: init does no round trip to the table.
    let app = linkcrm_core::App::starting(Arc::new(store), config, catalogue);
    lambda_http::run(linkcrm_http::router_with(app, &[family], extras)).await
}

#[cfg(feature = "testing")]
pub mod testing;
