//! The seed 003 dialect on Lambda behind API Gateway (`/api/v1/backlink-outreach/...` and the
//! peer code's `/api/backlink-outreach/...`): the peer's routes, names and error bodies over our
//! operations. It links the whole catalogue, like the MCP function, since its routes call
//! operations of several families (campaigns, outreach, agent).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = linkcrm_lambda::app(linkcrm_api::catalogue()).await?;
    lambda_http::run(linkcrm_dialect_backlink::router(app)).await
}
