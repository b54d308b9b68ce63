//! The API on Lambda behind API Gateway's HTTP API: one function per endpoint family, each
//! serving the router of its family over DynamoDB. Config: `LINKCRM_TABLE`.

use linkcrm_api::catalogue::Family;
use std::sync::Arc;

/// Serves the routes of `families` until the Lambda runtime stops the process.
pub async fn serve(families: &[Family]) -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let store = linkcrm_storage::dynamo::DynamoStore::from_env(&table, None).await;
    // API Gateway throttles; a per-process limiter would only limit one instance.
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, ..linkcrm_api::Config::from_env() };
    let app = linkcrm_api::app(Arc::new(store), config).await?;
    lambda_http::run(linkcrm_http::router_for(app.clone(), families)).await
}

#[cfg(feature = "testing")]
pub mod testing;
