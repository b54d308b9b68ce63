//! The API on Lambda behind API Gateway's HTTP API: one function per endpoint family, each
//! serving the router of its family over DynamoDB, linking only its own context. Config:
//! `LINKCRM_TABLE`.

use linkcrm_core::catalogue::{Family, OpSpec};
use linkcrm_http::Extras;
use std::sync::Arc;

/// Serves `catalogue` (one family's operations) on its routes, with `extras` (a context's pages,
/// the prepared OpenAPI document), until the Lambda runtime stops the process.
pub async fn serve(family: Family, catalogue: Vec<OpSpec>, extras: Extras) -> Result<(), lambda_http::Error> {
    let app = app(catalogue).await?;
    lambda_http::run(linkcrm_http::router_with(app, &[family], extras)).await
}

/// JSON log lines (CloudWatch adds the time), filtered by `RUST_LOG`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
}

/// Logging, and the app over the `LINKCRM_TABLE` table with `catalogue`: what an HTTP function
/// (a family's, the MCP door's) serves from.
pub async fn app(catalogue: Vec<OpSpec>) -> Result<Arc<linkcrm_core::App>, lambda_http::Error> {
    init_logging();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let store = linkcrm_storage::dynamo::DynamoStore::from_env(&table, None).await;
    // API Gateway throttles; a per-process limiter would only limit one instance.
    let config = linkcrm_core::Config { rate_limit_per_sec: 0.0, ..linkcrm_core::Config::from_env() };
    // The server secret is read in the background: init does no round trip to the table.
    Ok(linkcrm_core::App::starting(Arc::new(store), config, catalogue))
}

#[cfg(feature = "testing")]
pub mod testing;
