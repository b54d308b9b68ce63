//! Mailboxes connected with OAuth 2.0: the authorization code flow with PKCE against a local
//! authorization server (`FakeOAuth`), the keyless callback, and IMAP logins with SASL XOAUTH2 at a
//! real Dovecot whose oauth2 passdb checks each access token at that server's introspection
//! endpoint. Refresh before expiry, revocation shown on the mailbox, connecting again.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::imap::{ImapOptions, ImapServer};
use linkcrm_testkit::smtp::{SmtpOptions, SmtpServer};
use linkcrm_testkit::FakeOAuth;
use serde_json::{json, Value};
use std::time::Duration;

const USER: &str = "inbox@example.com";

async fn wait_for(mut check: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn imap_of(api: &Api, mbx: &str) -> Value {
    api.get(&format!("/v1/mailboxes/{mbx}")).await.ok(200)["imap"].clone()
}

async fn inbound_count(api: &Api) -> usize {
    api.get("/v1/link-building/inbound?limit=200").await.ok(200)["data"].as_array().unwrap().len()
}

/// Plays the person's browser: opens the authorization URL (the fake consents at once) and follows
/// its redirect to linkcrm's callback. Answers the callback's status and page.
async fn consent(env: &Env, url: &str) -> (u16, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "the consent screen redirects back");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    // The redirect URI is LINKCRM_PUBLIC_URL's; the test server listens on its own port.
    let path = &location[location.find("/v1/oauth/mailbox/callback").expect("our callback")..];
    let page = client.get(env.server.url(path)).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

each_backend!(a_gmail_mailbox_connects_with_oauth_and_is_read_with_xoauth2, oauth_flow);

async fn oauth_flow(backend: Backend) {
    let oauth = FakeOAuth::start("client-1", "secret-1", USER).await;
    let imap = ImapServer::start_with(ImapOptions { introspection_url: Some(oauth.introspection_url()) }).unwrap();
    // The SMTP server takes XOAUTH2 only, checking tokens at the same authorization server.
    let smtp = SmtpServer::start_with(SmtpOptions {
        introspection_url: Some(oauth.introspection_url()),
        ..Default::default()
    })
    .unwrap();
    let ca = imap.ca_file().display().to_string();
    let (auth_url, token_url) = (oauth.authorize_url(), oauth.token_url());
    let env = Env::start_with(
        backend,
        &[
            ("LINKCRM_IMAP_CA_FILE", ca.as_str()),
            ("LINKCRM_IMAP_POLL_SECS", "1"),
            ("LINKCRM_IMAP_LEASE_SECS", "3"),
            ("LINKCRM_OAUTH_GMAIL_CLIENT_ID", "client-1"),
            ("LINKCRM_OAUTH_GMAIL_CLIENT_SECRET", "secret-1"),
            ("LINKCRM_OAUTH_GMAIL_AUTH_URL", auth_url.as_str()),
            ("LINKCRM_OAUTH_GMAIL_TOKEN_URL", token_url.as_str()),
        ],
    )
    .await;
    let agency = env.agency();
    let ws = agency.create_workspace("OAuth").await;
    let api = agency.in_workspace(&ws);

    // A provider without a client configured is a clear 422.
    let outlook = json!({ "type": "outlook", "address": USER });
    api.post("/v1/mailboxes/connect", outlook).await.problem(422, "oauth_not_configured");

    let body = json!({ "type": "gmail", "address": USER, "fromName": "Dana", "imapHost": "localhost",
                       "imapPort": imap.port, "imapSecurity": "starttls", "smtpHost": "127.0.0.1",
                       "smtpPort": smtp.port, "security": "none" });
    let started = api.post("/v1/mailboxes/connect", body.clone()).await.ok(201).clone();
    let mbx = started["mailbox"]["id"].as_str().unwrap().to_owned();
    let url = started["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&auth_url), "{url}");
    for part in ["client_id=client-1", "code_challenge_method=S256", "access_type=offline", "response_type=code"] {
        assert!(url.contains(part), "{part} in {url}");
    }
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fv1%2Foauth%2Fmailbox%2Fcallback"), "{url}");
    let m = &started["mailbox"];
    assert_eq!(
        (m["imap"]["oauthProvider"].as_str(), m["imap"]["oauthStatus"].as_str()),
        (Some("gmail"), Some("pending"))
    );
    assert_eq!((m["smtpUsername"].as_str(), m["fromAddress"].as_str()), (Some(USER), Some(USER)));
    // Until consent it is not polled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(imap_of(&api, &mbx).await["status"], "pending");

    // Consent, with short-lived access tokens: every poll refreshes its token first.
    oauth.set_access_ttl(30);
    let (status, page) = consent(&env, &url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Mailbox connected") && page.contains(USER), "{page}");
    wait_for(async || imap_of(&api, &mbx).await["status"] == "ok", "the first XOAUTH2 poll").await;
    assert_eq!(imap_of(&api, &mbx).await["oauthStatus"], "connected");
    // The link works once.
    let state = url.split("state=").nth(1).unwrap().split('&').next().unwrap();
    let replay =
        reqwest::get(env.server.url(&format!("/v1/oauth/mailbox/callback?code=code-1&state={state}"))).await.unwrap();
    assert_eq!(replay.status().as_u16(), 400);
    assert!(replay.text().await.unwrap().contains("Link expired"));

    // Mail is read with the refreshed tokens, which Dovecot checks at the introspection endpoint.
    imap.append(
        "From: Kim <kim@partner.example.com>\r\nTo: inbox@example.com\r\nSubject: Hi\r\n\
                 Message-ID: <oauth-1@partner.example.com>\r\n\r\nHello\r\n",
    )
    .await
    .unwrap();
    wait_for(async || inbound_count(&api).await == 1, "the message read over XOAUTH2").await;
    assert!(oauth.grants("refresh_token") >= 1, "the short-lived token was refreshed");
    assert_eq!(oauth.grants("authorization_code"), 1);

    // It sends with XOAUTH2 too.
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    let auto = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), auto).await.ok(200);
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": "partner.example.com" })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c = api
        .post("/v1/link-building/crm/contact", json!({ "accountId": acct, "email": "kim@partner.example.com" }))
        .await;
    let send = json!({ "contactId": c.ok(201)["id"], "subject": "Hello Kim", "body": "An idea." });
    let r = api.post(&format!("/v1/link-building/crm/relationship/{rel}/send-email"), send).await;
    let inv = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let got = smtp.received();
    assert_eq!((got.len(), got[0].authenticated_as.as_deref()), (1, Some(USER)));

    // The person revokes access: the next refresh is refused and the mailbox says so.
    oauth.revoke_all();
    wait_for(async || imap_of(&api, &mbx).await["lastError"]["code"] == "oauth_revoked", "oauth_revoked").await;
    let s = imap_of(&api, &mbx).await;
    assert_eq!((s["status"].as_str(), s["oauthStatus"].as_str()), (Some("failing"), Some("revoked")), "{s}");

    // Connecting the same address again reuses the mailbox; a refused consent changes nothing.
    oauth.deny_next();
    let retry = api.post("/v1/mailboxes/connect", body.clone()).await.ok(201).clone();
    assert_eq!(retry["mailbox"]["id"], mbx.as_str());
    let (status, page) = consent(&env, retry["authorizationUrl"].as_str().unwrap()).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("access_denied"), "{page}");
    let retry = api.post("/v1/mailboxes/connect", body).await.ok(201).clone();
    assert_eq!(consent(&env, retry["authorizationUrl"].as_str().unwrap()).await.0, 200);
    imap.append(
        "From: Kim <kim@partner.example.com>\r\nTo: inbox@example.com\r\nSubject: Again\r\n\
                 Message-ID: <oauth-2@partner.example.com>\r\n\r\nHello again\r\n",
    )
    .await
    .unwrap();
    wait_for(async || inbound_count(&api).await == 2, "reading again after reconnecting").await;
    assert_eq!(imap_of(&api, &mbx).await["oauthStatus"], "connected");
    let list = api.get("/v1/mailboxes").await.ok(200).clone();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    // Tokens never leave the server.
    assert!(!list.to_string().contains("access-") && !list.to_string().contains("refresh-"), "{list}");
}
