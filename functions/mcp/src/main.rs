//! The MCP door on Lambda behind API Gateway (`/mcp`): every operation of the catalogue as a
//! tool, stateless, answering with plain JSON (the HTTP API cannot stream). It links the whole
//! catalogue, like the agency function, since a tool may be any operation.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let table = std::env::var("LINKCRM_TABLE").map_err(|_| "LINKCRM_TABLE is not set")?;
    let store = linkcrm_storage::dynamo::DynamoStore::from_env(&table, None).await;
    let config = linkcrm_core::Config { rate_limit_per_sec: 0.0, ..linkcrm_core::Config::from_env() };
    let app = linkcrm_core::App::starting(Arc::new(store), config, linkcrm_api::catalogue());
    lambda_http::run(linkcrm_mcp::router(app, linkcrm_mcp::McpConfig::lambda())).await
}
