//! The webhooks endpoint family on Lambda: endpoints, their deliveries, dead letters, replays,
//! recover and the event-type catalogue (`/v1/webhooks...`).

use linkcrm_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    linkcrm_lambda::serve(Family::Webhooks, linkcrm_webhooks::ops::catalogue(), linkcrm_http::Extras::default()).await
}
