//! Contact discovery end to end: the binary with its in-process worker, Apollo faked.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::fake_apollo::{FakeApollo, FakePerson, Fault, BULK_MATCH_PATH};
use serde_json::{json, Value};
use std::time::Duration;

const DISCOVER: &str = "/v1/link-building/crm/contact/discover";

fn person(id: &str, first: &str, last: &str, title: &str, email: &str) -> FakePerson {
    FakePerson {
        id: id.into(),
        first_name: first.into(),
        last_name: last.into(),
        title: title.into(),
        seniority: "manager".into(),
        email: Some(email.into()),
        email_status: "verified".into(),
        ..FakePerson::default()
    }
}

async fn start(apollo: &FakeApollo, backend: Backend) -> Env {
    Env::start_with(
        backend,
        &[("LINKCRM_APOLLO_BASE_URL", &apollo.base_url), ("LINKCRM_APOLLO_API_KEY", &apollo.api_key)],
    )
    .await
}

/// A workspace key with CRM scopes, and its workspace id.
async fn workspace(env: &Env, name: &str, credits: Option<f64>) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    if let Some(c) = credits {
        agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": c })).await.ok(201);
    }
    let key = agency.create_key(&ws, None).await;
    (ws, agency.with_key(&key))
}

async fn relationship(api: &Api, domain: &str) -> (String, String) {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    let b = r.ok(201);
    (b["id"].as_str().unwrap().to_owned(), b["accountId"].as_str().unwrap().to_owned())
}

fn body(accounts: &[&str]) -> Value {
    json!({ "accountIds": accounts, "roles": ["editor", "head of content"], "seniority": ["manager", "director"] })
}

each_backend!(discovers_contacts_charges_once_and_dedupes, discovery_end_to_end);
each_backend!(apollo_quota_fails_the_invocation_and_charges_only_searched_accounts, quota_fault);

async fn discovery_end_to_end(backend: Backend) {
    let apollo = FakeApollo::start().await;
    apollo.add_person("eng-blog.com", person("ap_1", "Marina", "Costa", "Editor", "marina@eng-blog.com"));
    apollo.add_person("eng-blog.com", person("ap_2", "Tom", "Reyes", "Head of Content", "tom@eng-blog.com"));
    apollo.add_person("other.com", person("ap_3", "Ann", "Lee", "Sales Director", "ann@other.com"));
    let env = start(&apollo, backend).await;
    let (ws, api) = workspace(&env, "Acme", Some(10.0)).await;
    let (rel_a, acct_a) = relationship(&api, "eng-blog.com").await;
    let (_rel_b, acct_b) = relationship(&api, "quiet-site.org").await;

    let r = api.post(DISCOVER, body(&[&acct_a, &acct_b])).await;
    let accepted = r.ok(202).clone();
    let id = accepted["invocationId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("inv_"));
    assert!(accepted["agentId"].as_str().unwrap().starts_with("agt_"));
    assert_eq!(accepted["skill"], "link_building.crm.contact.discover");
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["links"]["self"], format!("/v1/agent/invocations/{id}"));
    assert_eq!(accepted["estimatedCost"]["credits"], 0.8);
    assert!(accepted["estimatedCost"]["durationSeconds"].as_i64().unwrap() > 0);

    let done = api.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["creditsUsed"], 0.8);
    let per = done["result"]["perAccount"].as_array().unwrap();
    assert_eq!(per.len(), 2);
    assert_eq!(per[0]["accountId"], acct_a.as_str());
    let found = per[0]["contactsFound"].as_array().unwrap();
    let mut emails: Vec<&str> = found.iter().map(|c| c["email"].as_str().unwrap()).collect();
    emails.sort();
    assert_eq!(emails, ["marina@eng-blog.com", "tom@eng-blog.com"]);
    assert!(found.iter().all(|c| c["id"].as_str().unwrap().starts_with("ct_")));
    assert!(per[0].get("reason").is_none());
    assert_eq!(per[1]["accountId"], acct_b.as_str());
    assert_eq!(per[1]["contactsFound"], json!([]));
    assert_eq!(per[1]["reason"], "Apollo returned no contacts matching the role filter");

    // The contacts exist, on the account.
    let listed = api.get(&format!("/v1/link-building/crm/contact?accountId={acct_a}")).await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 2);
    // A CONTACT_RESEARCH event on the relationship.
    let events = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel_a}")).await;
    let research: Vec<&Value> =
        events.ok(200)["data"].as_array().unwrap().iter().filter(|e| e["type"] == "CONTACT_RESEARCH").collect();
    assert_eq!(research.len(), 1, "{}", events.text);
    assert_eq!(research[0]["metadata"]["found"], 2);
    // Charged once, under the skill.
    let usage = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    let u = usage.ok(200);
    assert_eq!(u["creditsUsedThisCycle"], 0.8);
    assert_eq!(u["creditsRemaining"], 9.2);
    assert_eq!(u["creditsReserved"], 0.0);
    assert_eq!(u["bySkill"]["link_building.crm.contact.discover"], 0.8);

    // The list shows it; filters apply.
    let l = api.get("/v1/agent/invocations?skill=link_building.crm.contact.discover&status=SUCCEEDED").await;
    assert_eq!(l.ok(200)["data"][0]["invocationId"], id.as_str());
    let l = api.get("/v1/agent/invocations?status=FAILED").await;
    assert_eq!(l.ok(200)["data"], json!([]));
    api.get("/v1/agent/invocations?status=DONE").await.problem(400, "invalid_request");
    // Finished: cannot be cancelled.
    api.post(&format!("/v1/agent/invocations/{id}/cancel"), json!({})).await.problem(409, "invalid_state");

    // Discovering the same domain again reuses the contacts.
    let r = api.post(DISCOVER, body(&[&acct_a])).await;
    let again = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done2 = api.wait_invocation(&again, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done2["status"], "SUCCEEDED", "{done2}");
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v["result"]["perAccount"][0]["contactsFound"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&done), ids(&done2));
    let listed = api.get(&format!("/v1/link-building/crm/contact?accountId={acct_a}")).await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 2, "no duplicates");

    // Another workspace cannot see the invocation; unknown ids are 404.
    let (_, stranger) = workspace(&env, "Other", None).await;
    stranger.get(&format!("/v1/agent/invocations/{id}")).await.problem(404, "invocation_not_found");
    api.get("/v1/agent/invocations/inv_nope").await.problem(400, "invalid_request");
    api.get("/v1/agent/invocations/inv_01M9495E2ME2GA2R79535J0T3H").await.problem(404, "invocation_not_found");
    // Without credits: 402, and nothing is queued.
    let (_, acct_s) = relationship(&stranger, "eng-blog.com").await;
    stranger.post(DISCOVER, body(&[&acct_s])).await.problem(402, "insufficient_credits");
    assert_eq!(stranger.get("/v1/agent/invocations").await.ok(200)["data"], json!([]));
    // Input checks.
    api.post(DISCOVER, body(&[])).await.problem(400, "invalid_request");
    api.post(DISCOVER, body(&["acct_00000000000000000000000000"])).await.problem(404, "account_not_found");
}

async fn quota_fault(backend: Backend) {
    let apollo = FakeApollo::start().await;
    apollo.add_person("eng-blog.com", person("ap_1", "Marina", "Costa", "Editor", "marina@eng-blog.com"));
    let env = start(&apollo, backend).await;
    let (ws, api) = workspace(&env, "Acme", Some(5.0)).await;
    let (_, empty) = relationship(&api, "quiet-site.org").await;
    let (_, full) = relationship(&api, "eng-blog.com").await;
    // The empty domain is searched (no enrichment needed); the second one's enrichment hits the quota.
    apollo.fail_next_on(BULK_MATCH_PATH, 1, Fault::QuotaExhausted);
    let r = api.post(DISCOVER, body(&[&empty, &full])).await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&id, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"]["code"], "apollo_quota_exceeded");
    assert_eq!(done["error"]["status"], 422);
    assert_eq!(done["creditsUsed"], 0.4, "only the account searched is charged");
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!((u.ok(200)["creditsRemaining"].as_f64(), u.body["creditsReserved"].as_f64()), (Some(4.6), Some(0.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_apollo_key_discovery_fails_cleanly_and_pending_work_can_be_cancelled() {
    let env = Env::start(Backend::Embedded).await;
    let (ws, api) = workspace(&env, "Acme", Some(1.0)).await;
    let (_, acct) = relationship(&api, "eng-blog.com").await;
    let r = api.post(DISCOVER, body(&[&acct])).await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    // Racing the worker: either still PENDING (cancelled, reservation released) or already claimed (409).
    let c = api.post(&format!("/v1/agent/invocations/{id}/cancel"), json!({})).await;
    if c.status.as_u16() == 200 {
        assert_eq!(c.body["status"], "CANCELLED");
    } else {
        c.problem(409, "invalid_state");
        let done = api.wait_invocation(&id, &["FAILED"], Duration::from_secs(30)).await;
        assert_eq!(done["error"]["code"], "provider_unavailable");
        assert!(done["error"]["message"].as_str().unwrap().contains("LINKCRM_APOLLO_API_KEY"));
    }
    // Either way nothing was charged and nothing stays reserved.
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!((u.ok(200)["creditsRemaining"].as_f64(), u.body["creditsReserved"].as_f64()), (Some(1.0), Some(0.0)));
    // A second one, not raced: fails with provider_unavailable.
    let r = api.post(DISCOVER, body(&[&acct])).await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&id, &["FAILED", "SUCCEEDED"], Duration::from_secs(30)).await;
    assert_eq!(
        (done["status"].as_str(), done["error"]["code"].as_str()),
        (Some("FAILED"), Some("provider_unavailable"))
    );
    assert_eq!(done["error"]["status"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_invocation_is_cancelled_and_its_reservation_released() {
    // No worker: the invocation stays PENDING until cancelled.
    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_JOB_WORKER", "off")]).await;
    let (ws, api) = workspace(&env, "Acme", Some(1.0)).await;
    let (_, acct) = relationship(&api, "eng-blog.com").await;
    let r = api.post(DISCOVER, body(&[&acct])).await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!((u.ok(200)["creditsRemaining"].as_f64(), u.body["creditsReserved"].as_f64()), (Some(0.6), Some(0.4)));
    let pending = api.get("/v1/agent/invocations?status=PENDING").await;
    assert_eq!(pending.ok(200)["data"][0]["invocationId"], id.as_str());
    // Another workspace cannot cancel it.
    let (_, stranger) = workspace(&env, "Other", None).await;
    stranger.post(&format!("/v1/agent/invocations/{id}/cancel"), json!({})).await.problem(404, "invocation_not_found");
    let c = api.post(&format!("/v1/agent/invocations/{id}/cancel"), json!({})).await;
    assert_eq!(c.ok(200)["status"], "CANCELLED");
    api.post(&format!("/v1/agent/invocations/{id}/cancel"), json!({})).await.problem(409, "invalid_state");
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!((u.ok(200)["creditsRemaining"].as_f64(), u.body["creditsReserved"].as_f64()), (Some(1.0), Some(0.0)));
    assert_eq!(u.body["creditsUsedThisCycle"], 0.0);
}
