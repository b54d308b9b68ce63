//! A workspace's own Apollo key, and an exhausted quota known before queueing: black-box on both
//! backends, against the fake Apollo (which tells the keys apart).

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::fake_apollo::{FakeApollo, FakePerson, Fault, BULK_MATCH_PATH, SEARCH_PATH};
use serde_json::json;
use std::time::Duration;

const DISCOVER: &str = "/v1/link-building/crm/contact/discover";

async fn workspace(env: &Env, name: &str) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
    (ws.clone(), agency.in_workspace(&ws))
}

async fn account(api: &Api, domain: &str) -> String {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    r.ok(201)["accountId"].as_str().unwrap().to_owned()
}

fn keys_used(apollo: &FakeApollo) -> Vec<String> {
    apollo.calls_to(SEARCH_PATH).into_iter().filter_map(|c| c.api_key).collect()
}

async fn own_key_and_known_quota(backend: Backend) {
    let apollo = FakeApollo::start().await;
    apollo.add_person(
        "blog-one.example",
        FakePerson {
            id: "p1".into(),
            first_name: "Ada".into(),
            title: "Editor".into(),
            email: Some("ada@blog-one.example".into()),
            email_status: "verified".into(),
            ..FakePerson::default()
        },
    );
    let own = "client-owned-apollo-key-1234";
    apollo.add_api_key(own);
    let vars =
        [("LINKCRM_APOLLO_BASE_URL", apollo.base_url.as_str()), ("LINKCRM_APOLLO_API_KEY", apollo.api_key.as_str())];
    let env = Env::start_with(backend, &vars).await;
    let agency = env.agency();
    let (ws_a, a) = workspace(&env, "Brings its key").await;
    let (ws_b, b) = workspace(&env, "Platform key").await;
    let path = format!("/v1/workspaces/{ws_a}/integrations/apollo");

    // Set: sealed, never shown; bad keys refused; another workspace's key cannot touch it.
    agency.put(&path, json!({ "apiKey": "short" })).await.problem(400, "invalid_request");
    let set = agency.put(&path, json!({ "apiKey": own })).await.ok(200).clone();
    assert_eq!((set["configured"].as_bool(), set["keyLast4"].as_str()), (Some(true), Some("1234")));
    assert!(!set.to_string().contains(own), "the key is never returned: {set}");
    let b_key = agency.create_key(&ws_b, Some(&["workspaces:admin", "crm:read"])).await;
    agency.with_key(&b_key).get(&path).await.problem(403, "workspace_forbidden");

    // Each workspace's discovery is billed to its key.
    let acct_a = account(&a, "blog-one.example").await;
    let id =
        a.post(DISCOVER, json!({ "accountIds": [acct_a] })).await.ok(202)["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(a.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await["status"], "SUCCEEDED");
    let acct_b = account(&b, "blog-one.example").await;
    let id =
        b.post(DISCOVER, json!({ "accountIds": [acct_b] })).await.ok(202)["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(b.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await["status"], "SUCCEEDED");
    assert_eq!(keys_used(&apollo), vec![own.to_owned(), apollo.api_key.clone()]);

    // The workspace's key runs out: that discovery fails, and the next one is refused before it is
    // queued (no reservation, no Apollo call), while the platform's key still serves others.
    apollo.fail_next_on(BULK_MATCH_PATH, 1, Fault::QuotaExhausted);
    let id =
        a.post(DISCOVER, json!({ "accountIds": [acct_a] })).await.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = a.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["error"]["code"], "apollo_quota_exceeded", "{done}");
    let calls = apollo.calls().len();
    let refused = a.post(DISCOVER, json!({ "accountIds": [acct_a] })).await;
    let p = refused.problem(422, "apollo_quota_exceeded");
    assert!(p["details"]["exhaustedAt"].is_string(), "{p}");
    assert_eq!(apollo.calls().len(), calls, "nothing was asked of Apollo");
    assert_eq!(agency.get(&path).await.ok(200)["quotaExhaustedAt"], p["details"]["exhaustedAt"]);
    b.post(DISCOVER, json!({ "accountIds": [acct_b] })).await.ok(202);

    // Removing the key falls back to the platform's (whose quota is fine).
    agency.delete(&path).await.ok(204);
    assert_eq!(agency.get(&path).await.ok(200)["configured"], false);
    a.post(DISCOVER, json!({ "accountIds": [acct_a] })).await.ok(202);
}

each_backend!(a_workspace_key_is_used_and_a_known_exhausted_quota_refuses_early, own_key_and_known_quota);
