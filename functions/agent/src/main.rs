//! The agent endpoint family on Lambda: invocations and approvals (`/v1/agent/...`).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Agent, linkcrm_core::ops::catalogue(), linkcrm_http::Extras::default()).await
}
