//! The MCP door on Lambda behind API Gateway (`/mcp`): every operation of the catalogue as a
//! tool, stateless, answering with plain JSON (the HTTP API cannot stream). It links the whole
//! catalogue, like the agency function, since a tool may be any operation.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = linkcrm_lambda::app(linkcrm_api::catalogue()).await?;
    lambda_http::run(linkcrm_mcp::router(app, linkcrm_mcp::McpConfig::lambda())).await
}
