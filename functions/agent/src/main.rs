//! The agent endpoint family on Lambda: invocations and approvals (`/v1/agent/...`).

use linkcrm_api::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(&[Family::Agent]).await
}
