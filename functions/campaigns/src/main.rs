//! The campaigns endpoint family on Lambda: campaigns, their drafts and sends, templates
//! (`/v1/link-building/campaign...`, `/v1/link-building/templates...`).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Campaigns, linkcrm_campaigns::ops::catalogue(), linkcrm_http::Extras::default()).await
}
