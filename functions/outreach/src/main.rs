//! The outreach endpoint family on Lambda: mailboxes, sending, suppression, policy, inbound mail
//! and the unsubscribe page.

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(
        Family::Outreach,
        linkcrm_outreach::ops::catalogue(),
        linkcrm_http::Extras { pages: Some(linkcrm_outreach::pages::router()), openapi: None },
    )
    .await
}
