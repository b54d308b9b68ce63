//! The workspaces endpoint family on Lambda: workspaces, keys, credits, usage, integrations; also
//! the OpenAPI document, the docs page, and API Gateway's catch-all route, so an unknown path gets
//! a problem+json 404 with a request id rather than API Gateway's own answer.

use linkcrm_core::catalogue::Family;

/// The whole API's document (every family's), prepared by a test of the composition.
const OPENAPI: &str = include_str!("../../../infra/openapi.json");

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(
        Family::Workspaces,
        linkcrm_workspaces::ops::catalogue(),
        linkcrm_http::Extras { pages: None, openapi: Some(OPENAPI) },
    )
    .await
}
