//! A worker killed mid-job (the binary, `kill -9`) loses nothing and repeats no side effect once
//! the job is delivered again after a restart: a discovery finishes with each contact and each
//! CONTACT_RESEARCH once and one charge; a send cut off mid-SMTP is SEND_UNCERTAIN, never resent,
//! never charged.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::fake_apollo::{FakeApollo, FakePerson, Fault, SEARCH_PATH};
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::json;
use std::time::{Duration, Instant};

const REL: &str = "/v1/link-building/crm/relationship";

async fn kill_and_restart(env: &mut Env) {
    tokio::task::block_in_place(|| env.server.kill_hard());
    tokio::task::block_in_place(|| env.restart());
}

async fn events_of(api: &Api, rel: &str, kind: &str) -> usize {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().iter().filter(|e| e["type"] == kind).count()
}

async fn discovery_killed_mid_run(backend: Backend) {
    let apollo = FakeApollo::start().await;
    for (domain, id) in [("first-crash.example", "pa"), ("second-crash.example", "pb")] {
        apollo.add_person(
            domain,
            FakePerson {
                id: id.into(),
                first_name: "Ada".into(),
                last_name: id.into(),
                title: "Editor".into(),
                seniority: "manager".into(),
                email: Some(format!("ada@{domain}")),
                email_status: "verified".into(),
                ..FakePerson::default()
            },
        );
    }
    let vars = [
        ("LINKCRM_APOLLO_BASE_URL", apollo.base_url.as_str()),
        ("LINKCRM_APOLLO_API_KEY", apollo.api_key.as_str()),
        // Longer than the run takes before it is killed, so it is not delivered again meanwhile.
        ("LINKCRM_JOB_VISIBILITY_SECS", "5"),
    ];
    let mut env = Env::start_with(backend, &vars).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Crash").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 5 })).await.ok(201);
    let api = agency.in_workspace(&ws);
    let mut rels = Vec::new();
    let mut accounts = Vec::new();
    for domain in ["first-crash.example", "second-crash.example"] {
        let r = api.post(REL, json!({ "domain": domain })).await;
        rels.push(r.ok(201)["id"].as_str().unwrap().to_owned());
        accounts.push(r.body["accountId"].as_str().unwrap().to_owned());
    }
    // Both searches answer slowly: the first account completes, the process dies in the second.
    apollo.fail_next_on(SEARCH_PATH, 2, Fault::Slow(Duration::from_millis(1500)));
    let body = json!({ "accountIds": accounts, "roles": ["editor"] });
    let accepted = api.post("/v1/link-building/crm/contact/discover", body).await.ok(202).clone();
    let id = accepted["invocationId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while apollo.calls_to(SEARCH_PATH).len() < 2 {
        assert!(Instant::now() < deadline, "the worker never reached the second account");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_and_restart(&mut env).await;

    let done =
        env.agency().in_workspace(&ws).wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(60)).await;
    let api = env.agency().in_workspace(&ws);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["creditsUsed"].as_f64(), Some(0.8), "each account charged once");
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    assert_eq!(usage["creditsRemaining"].as_f64(), Some(4.2), "{usage}");
    for (rel, account) in rels.iter().zip(&accounts) {
        let contacts = api.get(&format!("/v1/link-building/crm/contact?accountId={account}")).await;
        assert_eq!(contacts.ok(200)["data"].as_array().unwrap().len(), 1, "one contact on {account}");
        assert_eq!(events_of(&api, rel, "CONTACT_RESEARCH").await, 1, "one research event on {rel}");
    }
    let per = done["result"]["perAccount"].as_array().unwrap();
    assert_eq!(per.len(), 2, "{done}");
    // The finished account was not searched again; the one cut off was.
    let searched: Vec<String> = apollo
        .calls_to(SEARCH_PATH)
        .iter()
        .flat_map(|c| c.query_values("q_organization_domains_list[]"))
        .map(str::to_owned)
        .collect();
    assert_eq!(searched.iter().filter(|d| d.as_str() == "first-crash.example").count(), 1, "{searched:?}");
    assert_eq!(searched.iter().filter(|d| d.as_str() == "second-crash.example").count(), 2, "{searched:?}");
}

async fn send_killed_mid_smtp(backend: Backend) {
    let vars = [("LINKCRM_JOB_VISIBILITY_SECS", "2"), ("LINKCRM_SEND_CLAIM_LEASE_SECS", "3")];
    killed_mid_smtp(backend, &vars).await
}

/// The same crash on the job's last allowed delivery: the job dead-letters on the next receive,
/// and the worker's sweep gives it up (uncertain, credits released) instead of leaving it RUNNING.
async fn send_killed_on_its_last_delivery(backend: Backend) {
    let vars = [
        ("LINKCRM_JOB_VISIBILITY_SECS", "2"),
        ("LINKCRM_SEND_CLAIM_LEASE_SECS", "3"),
        ("LINKCRM_MAX_RECEIVES", "1"),
        ("LINKCRM_DEAD_LETTER_SWEEP_SECS", "1"),
    ];
    killed_mid_smtp(backend, &vars).await
}

async fn killed_mid_smtp(backend: Backend, vars: &[(&str, &str)]) {
    let smtp = SmtpServer::start().unwrap();
    let mut env = Env::start_with(backend, vars).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Crash send").await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    let auto = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), auto).await.ok(200);
    let api = agency.in_workspace(&ws);
    let mailbox = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                          "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", mailbox).await.ok(201);
    let r = api.post(REL, json!({ "domain": "slow-partner.example" })).await;
    let (rel, acct) = (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].clone());
    // The test server never answers RCPT for this address: the worker is stuck mid-SMTP.
    let c =
        api.post("/v1/link-building/crm/contact", json!({ "accountId": acct, "email": "slow@slow-partner.example" }));
    let contact = c.await.ok(201)["id"].clone();
    let body = json!({ "contactId": contact, "subject": "Guest post", "body": "Hi" });
    let accepted = api.post(&format!("{REL}/{rel}/send-email"), body).await.ok(202).clone();
    let id = accepted["invocationId"].as_str().unwrap().to_owned();
    api.wait_invocation(&id, &["RUNNING"], Duration::from_secs(30)).await;
    // Killed once the worker is stuck at RCPT (its claim is committed by then), however slow the
    // machine is.
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.slow_rcpts() == 0 {
        assert!(Instant::now() < deadline, "the worker never reached SMTP");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_and_restart(&mut env).await;

    let api = env.agency().in_workspace(&ws);
    let done = api.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(60)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"]["code"], "send_uncertain", "{done}");
    assert_eq!(events_of(&api, &rel, "SEND_UNCERTAIN").await, 1);
    assert_eq!(events_of(&api, &rel, "EMAIL_SENT").await, 0);
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    assert_eq!(usage["creditsRemaining"].as_f64(), Some(10.0), "an uncertain send is not charged: {usage}");
    // Well past the lease and another visibility timeout: still nothing sent, nothing retried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(smtp.received().is_empty());
    assert_eq!(api.get(&format!("/v1/agent/invocations/{id}")).await.ok(200)["status"], "FAILED");
}

each_backend!(a_discovery_killed_mid_run_finishes_once, discovery_killed_mid_run);
each_backend!(a_send_killed_mid_smtp_is_uncertain_never_resent, send_killed_mid_smtp);
each_backend!(a_send_killed_on_its_last_delivery_is_given_up_from_the_dead_letters, send_killed_on_its_last_delivery);
