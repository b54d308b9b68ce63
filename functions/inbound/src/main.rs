//! The inbound endpoint family on Lambda: the negotiator's settings, partner modes, eval gates and
//! replies to received messages (`/v1/link-building/inbound/settings`, `/eval-gates...`,
//! `/v1/link-building/crm/account/{id}/inbound-settings`, `/v1/link-building/campaign/respond`).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Inbound, linkcrm_inbound::ops::catalogue(), linkcrm_http::Extras::default()).await
}
