//! The API as a Lambda function behind API Gateway: the same router the local binary serves,
//! over DynamoDB. Config: `LINKCRM_TABLE`.

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
    let app =
        linkcrm_api::App::new(Arc::new(store), linkcrm_api::Config { rate_limit_per_sec: 0.0, ..Default::default() })
            .await?;
    lambda_http::run(app.router()).await
}
