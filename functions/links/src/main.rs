//! The links endpoint family on Lambda: monitored placed links, their checks, checks on demand,
//! corrections and the monthly summary (`/v1/link-building/links...`).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Links, linkcrm_monitoring::ops::catalogue(), linkcrm_http::Extras::default()).await
}
