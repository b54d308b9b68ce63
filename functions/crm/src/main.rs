//! The CRM endpoint family on Lambda: accounts, contacts, relationships, events, discovery
//! (`/v1/link-building/crm/...`, except sending, which is outreach's).

use linkcrm_api::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(&[Family::Crm]).await
}
