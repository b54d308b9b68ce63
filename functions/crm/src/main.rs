//! The CRM endpoint family on Lambda: accounts, contacts, relationships, events, discovery
//! (`/v1/link-building/crm/...`, except sending, which is outreach's).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Crm, linkcrm_crm::ops::catalogue(), linkcrm_http::Extras::default()).await
}
