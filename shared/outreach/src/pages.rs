//! Pages outreach serves outside the operations: the unsubscribe page a recipient reaches from an
//! email (keyless by design: the sealed token in the path names the workspace and the address).

use crate::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// `GET`/`POST /v1/unsubscribe/{token}`.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe_now))
        .route("/v1/t/o/{token}", get(open_pixel))
        .route(crate::oauth::CALLBACK_PATH, get(oauth_callback))
}

/// `GET /v1/oauth/mailbox/callback?code&state` (or `error&state`): where the provider sends the
/// person after consent (`crate::oauth`). Keyless: the one-time state names the mailbox.
async fn oauth_callback(
    State(app): State<Arc<App>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    use crate::oauth::Callback;
    let Some(state) = q.get("state").filter(|s| !s.is_empty() && s.len() <= 200) else {
        return unsubscribe_html(StatusCode::BAD_REQUEST, "Not connected", "<p>This link is not complete.</p>");
    };
    match crate::oauth::callback(&app, q.get("code").map(String::as_str), q.get("error").map(String::as_str), state)
        .await
    {
        Ok(Callback::Connected { address }) => unsubscribe_html(
            StatusCode::OK,
            "Mailbox connected",
            &format!(
                "<p>{} is connected. Replies to it will be read every few minutes. You can close this page.</p>",
                escape(&address)
            ),
        ),
        Ok(Callback::Refused(why)) => unsubscribe_html(
            StatusCode::BAD_REQUEST,
            "Not connected",
            &format!("<p>The mailbox was not connected: {}. Start again from linkcrm.</p>", escape(&why)),
        ),
        Ok(Callback::Expired) => unsubscribe_html(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "<p>This link was used already or is older than 15 minutes. Start again from linkcrm.</p>",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the OAuth callback could not be completed");
            unsubscribe_html(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Please try again in a minute.</p>")
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /v1/t/o/{token}.gif`: the tracking pixel of a send (`crate::opens`). A valid token
/// records the open (once per send) and answers the 1×1 GIF, never cached; another answers 404.
async fn open_pixel(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let gif = || {
        (
            StatusCode::OK,
            [
                (axum::http::header::CONTENT_TYPE, "image/gif"),
                (axum::http::header::CACHE_CONTROL, "no-store, private, max-age=0"),
            ],
            crate::opens::PIXEL_GIF,
        )
            .into_response()
    };
    match crate::opens::record(&app, &token).await {
        Ok(true) => gif(),
        Ok(false) => (StatusCode::NOT_FOUND, "not found").into_response(),
        // The image shows either way; the open is lost only when the store is down.
        Err(e) => {
            tracing::warn!(error = %e, "an open could not be recorded");
            gif()
        }
    }
}

fn unsubscribe_html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32rem;margin:3rem auto\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, Html(page)).into_response()
}

fn not_an_unsubscribe_link() -> Response {
    unsubscribe_html(StatusCode::NOT_FOUND, "Link not found", "<p>This unsubscribe link is not valid.</p>")
}

/// GET: a confirmation page whose button POSTs back (mail scanners follow GET links; only the POST
/// unsubscribes).
async fn unsubscribe_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Some((_, email)) = crate::suppression::unsubscribe_target(&app, &token) else {
        return not_an_unsubscribe_link();
    };
    let email = email.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    unsubscribe_html(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop emails to <b>{email}</b>?</p><form method=\"post\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// POST (RFC 8058 one-click, or the page's button): suppresses the address for the workspace.
/// Doing it twice is fine.
async fn unsubscribe_now(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    match crate::suppression::unsubscribe(&app, &token).await {
        Ok(true) => unsubscribe_html(
            StatusCode::OK,
            "Unsubscribed",
            "<p>You will not receive further emails from this sender.</p>",
        ),
        Ok(false) => not_an_unsubscribe_link(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be stored");
            unsubscribe_html(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Please try again in a moment.</p>")
        }
    }
}
