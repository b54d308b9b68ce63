//! The agency family on Lambda: the audit log (`/v1/audit`, `/v1/workspaces/{id}/audit`) and bulk
//! actions with their schedules (`/v1/workspaces/bulk-action...`). It serves only its family's
//! routes but carries the whole catalogue: a bulk action runs any operation in each workspace
//! through the executor (reads over up to 50 workspaces in the request itself).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Agency, linkcrm_api::catalogue(), linkcrm_http::Extras::default()).await
}
