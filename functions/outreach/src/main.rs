//! The outreach endpoint family on Lambda: mailboxes, sending, suppression, policy, inbound mail
//! and the unsubscribe page.

use linkcrm_api::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(&[Family::Outreach]).await
}
