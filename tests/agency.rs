//! The agency's tools end to end, on both backends: bulk actions across workspaces (seed 001 use
//! case A as written, writes as a parent with one child per workspace, idempotent retries),
//! scheduled bulk actions, and the audit log of every write.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const BULK: &str = "/v1/workspaces/bulk-action";

async fn custom_campaign(api: &Api, name: &str) -> String {
    let rel = api
        .post("/v1/link-building/crm/relationship", json!({ "domain": format!("{}.com", name.to_lowercase()) }))
        .await;
    let rel = rel.ok(201)["id"].as_str().unwrap().to_owned();
    let c = api
        .post("/v1/link-building/campaign", json!({ "type": "custom", "name": name, "relationshipIds": [rel] }))
        .await;
    c.ok(201)["id"].as_str().unwrap().to_owned()
}

async fn wait_done(agency: &Api, id: &str) -> Value {
    for _ in 0..300 {
        let r = agency.get(&format!("{BULK}/{id}")).await;
        let b = r.ok(200).clone();
        if b["status"] != "WAITING_CHILDREN" {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bulk action {id} did not finish");
}

on_both_backends!(seed_use_case_a_portfolio_campaign_dashboard, |env| {
    let agency = env.agency();
    let (a, b, c) = (
        agency.create_workspace("Acme").await,
        agency.create_workspace("Beta").await,
        agency.create_workspace("Cito").await,
    );
    let ca = custom_campaign(&agency.in_workspace(&a), "AcmeLaunch").await;
    let cb = custom_campaign(&agency.in_workspace(&b), "BetaLaunch").await;
    agency.in_workspace(&b).post(&format!("/v1/link-building/campaign/{cb}/pause"), json!({})).await.ok(200);

    // Seed 001, use case A, as written.
    let r = agency
        .post(
            BULK,
            json!({ "action": "link_building.campaign.list", "workspaces": "all", "config": { "status": "active" } }),
        )
        .await;
    let body = r.ok(200).clone();
    assert!(body["invocationId"].as_str().unwrap().starts_with("inv_"));
    assert_eq!(body["status"], "SUCCEEDED");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "every workspace of the agency: {body}");
    let of = |ws: &str| results.iter().find(|r| r["workspaceId"] == ws).unwrap().clone();
    assert_eq!(of(&a)["status"], "succeeded");
    let ids = |r: &Value| -> Vec<String> {
        r["result"]["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&of(&a)), vec![ca]);
    assert!(ids(&of(&b)).is_empty(), "B's only campaign is paused");
    assert!(ids(&of(&c)).is_empty());
    // The same answer later, by id.
    let again = agency.get(&format!("{BULK}/{}", body["invocationId"].as_str().unwrap())).await;
    assert_eq!(again.ok(200)["results"].as_array().unwrap().len(), 3);
    env.other_agency()
        .get(&format!("{BULK}/{}", body["invocationId"].as_str().unwrap()))
        .await
        .problem(404, "bulk_action_not_found");

    // A list of workspaces, and tags.
    let r = agency.post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": [a, c] })).await;
    assert_eq!(r.ok(200)["results"].as_array().unwrap().len(), 2);
    agency.patch(&format!("/v1/workspaces/{b}"), json!({ "tags": ["tier:gold"] })).await.ok(200);
    let r = agency
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": { "tags": ["tier:gold"] } }))
        .await;
    let r = r.ok(200).clone();
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    assert_eq!(r["results"][0]["workspaceId"], b.as_str());
});

on_both_backends!(bulk_actions_are_refused_clearly, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let p = agency.post(BULK, json!({ "action": "workspaces.bulk_action", "workspaces": "all" })).await;
    assert_eq!(p.problem(400, "invalid_request")["errors"][0]["field"], "action");
    agency.post(BULK, json!({ "action": "no.such_op", "workspaces": "all" })).await.problem(422, "unknown_action");
    agency
        .post(BULK, json!({ "action": "workspaces.create", "workspaces": "all" }))
        .await
        .problem(422, "not_a_workspace_action");
    agency
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": "some" }))
        .await
        .problem(400, "invalid_request");
    agency
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": [] }))
        .await
        .problem(400, "invalid_request");
    let theirs = env.other_agency().create_workspace("Theirs").await;
    agency
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": [ws, theirs] }))
        .await
        .problem(422, "workspace_not_found");
    let key = agency.create_key(&ws, None).await;
    agency
        .with_key(&key)
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": "all" }))
        .await
        .problem(403, "agency_key_required");
});

on_both_backends!(writes_run_as_children_once_each_and_report_per_workspace, |env| {
    let agency = env.agency();
    let (a, b, c) = (
        agency.create_workspace("Acme").await,
        agency.create_workspace("Beta").await,
        agency.create_workspace("Cito").await,
    );
    // C already works with the partner: its child fails, the others succeed.
    agency
        .in_workspace(&c)
        .post("/v1/link-building/crm/relationship", json!({ "domain": "bulk-partner.com" }))
        .await
        .ok(201);
    let ask = json!({ "action": "link_building.crm.relationship.create", "workspaces": [a, b, c],
                      "config": { "domain": "bulk-partner.com", "priority": "HIGH" } });
    let keyed = agency.with_header("idempotency-key", "bulk-partner-1");
    let r = keyed.post(BULK, ask.clone()).await;
    let started = r.ok(202).clone();
    assert_eq!(started["status"], "WAITING_CHILDREN");
    assert_eq!(started["total"], 3);
    let id = started["invocationId"].as_str().unwrap().to_owned();
    let done = wait_done(&agency, &id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!((done["succeeded"].as_u64(), done["failed"].as_u64()), (Some(2), Some(1)));
    let of = |ws: &str| done["results"].as_array().unwrap().iter().find(|r| r["workspaceId"] == ws).unwrap().clone();
    assert_eq!(of(&a)["status"], "succeeded");
    assert_eq!(of(&a)["result"]["priority"], "HIGH");
    assert_eq!(of(&c)["status"], "failed");
    assert_eq!(of(&c)["error"]["code"], "relationship_exists");

    // The same request again: the same bulk action, nothing run twice.
    let r = keyed.post(BULK, ask).await;
    assert_eq!(r.ok(202)["invocationId"], id.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ws in [&a, &b, &c] {
        let list = agency.in_workspace(ws).get("/v1/link-building/crm/relationship").await;
        let n = list.ok(200)["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["accountDomain"] == "bulk-partner.com")
            .count();
        assert_eq!(n, 1, "{ws}");
    }

    // Every child failing: the parent fails.
    let r = agency
        .post(
            BULK,
            json!({ "action": "link_building.crm.relationship.create", "workspaces": [a, b],
                            "config": { "domain": "bulk-partner.com" } }),
        )
        .await;
    let id = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = wait_done(&agency, &id).await;
    assert_eq!(done["status"], "FAILED", "{done}");

    // The writes were audited in each workspace, under the agency key, with the targets.
    let audit = agency.get(&format!("/v1/workspaces/{a}/audit?operation=link_building.crm.relationship.create")).await;
    let entries = audit.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["keyKind"], "agency");
    assert_eq!(e["workspaceId"], a.as_str());
    assert!(e["id"].as_str().unwrap().starts_with("aud_"));
    assert!(e["targetIds"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().starts_with("rel_")), "{e}");
    assert_eq!(e["idempotencyKey"], format!("bulk:{}:{a}", started["invocationId"].as_str().unwrap()));
});

on_both_backends!(the_audit_log_records_every_write_and_only_writes, |env| {
    let agency = env.agency();
    let (ws, other) = (agency.create_workspace("Acme").await, agency.create_workspace("Other").await);
    let admin = agency.create_key(&ws, Some(&["crm:read", "crm:write", "workspaces:admin"])).await;
    let api = agency.with_key(&admin);
    let r = api
        .with_header("idempotency-key", "create-partner-1")
        .post("/v1/link-building/crm/relationship", json!({ "domain": "audited.com" }))
        .await;
    let rel = r.ok(201)["id"].as_str().unwrap().to_owned();
    let request_id = r.header("x-request-id").unwrap().to_owned();
    api.patch(&format!("/v1/link-building/crm/relationship/{rel}"), json!({ "priority": "LOW" })).await.ok(200);
    api.get("/v1/link-building/crm/relationship").await.ok(200);
    // A refused write leaves no entry.
    api.post("/v1/link-building/crm/relationship", json!({ "domain": "audited.com" }))
        .await
        .problem(409, "relationship_exists");

    let log = api.get("/v1/audit").await;
    let entries = log.ok(200)["data"].as_array().unwrap().clone();
    let ops: Vec<&str> = entries.iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["link_building.crm.relationship.update", "link_building.crm.relationship.create"],
        "newest first, writes only"
    );
    let create = &entries[1];
    assert_eq!(create["keyKind"], "workspace");
    assert_eq!(create["requestId"], request_id.as_str());
    assert_eq!(create["idempotencyKey"], "create-partner-1");
    assert!(create["targetIds"].as_array().unwrap().iter().any(|t| t == &json!(rel)));
    assert!(create["keyId"].as_str().unwrap().starts_with("key_"));
    // Filters and paging.
    let by_op = api.get("/v1/audit?operation=link_building.crm.relationship.update").await;
    assert_eq!(by_op.ok(200)["data"].as_array().unwrap().len(), 1);
    let page = api.get("/v1/audit?limit=1").await;
    let cursor = page.ok(200)["nextCursor"].as_str().unwrap().to_owned();
    let next = api.get(&format!("/v1/audit?limit=1&cursor={cursor}")).await;
    assert_eq!(next.ok(200)["data"][0]["operation"], "link_building.crm.relationship.create");
    let future = api.get("/v1/audit?since=2099-01-01T00:00:00Z").await;
    assert!(future.ok(200)["data"].as_array().unwrap().is_empty());
    api.get("/v1/audit?since=yesterday").await.problem(400, "invalid_request");
    let none = api.get("/v1/audit?until=2020-01-01T00:00:00Z").await;
    assert!(none.ok(200)["data"].as_array().unwrap().is_empty());
    // The agency reads it per workspace; another workspace's log does not have it.
    let seen = agency.get(&format!("/v1/workspaces/{ws}/audit")).await;
    assert_eq!(seen.ok(200)["data"].as_array().unwrap().len(), entries.len());
    let theirs = agency.get(&format!("/v1/workspaces/{other}/audit")).await;
    assert!(theirs.ok(200)["data"].as_array().unwrap().iter().all(|e| e["workspaceId"] == other.as_str()));
    env.other_agency().get(&format!("/v1/workspaces/{ws}/audit")).await.problem(403, "workspace_forbidden");
    // Only admins read it.
    let crm_only = agency.create_key(&ws, Some(&["crm:read"])).await;
    agency.with_key(&crm_only).get("/v1/audit").await.problem(403, "insufficient_scope");
    api.get(&format!("/v1/workspaces/{ws}/audit")).await.problem(403, "agency_key_required");
});

on_both_backends!(scheduled_bulk_actions_are_kept_paused_and_deleted, |env| {
    let agency = env.agency();
    agency.create_workspace("Acme").await;
    let r = agency
        .post(
            BULK,
            json!({ "action": "link_building.campaign.list", "workspaces": "all", "schedule": "weekly:mon:09:00",
                            "timeZone": "Europe/Berlin", "config": { "status": "active" } }),
        )
        .await;
    let s = r.ok(201).clone();
    let id = s["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("bsch_"));
    assert_eq!(s["status"], "active");
    assert_eq!(s["timeZone"], "Europe/Berlin");
    let next = chrono::DateTime::parse_from_rfc3339(s["nextRunAt"].as_str().unwrap()).unwrap();
    let local = next.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!((local.format("%a %H:%M").to_string()), "Mon 09:00");
    agency
        .post(BULK, json!({ "action": "link_building.campaign.list", "workspaces": "all", "schedule": "hourly" }))
        .await
        .problem(400, "invalid_request");
    agency
        .post(
            BULK,
            json!({ "action": "link_building.campaign.list", "workspaces": "all", "schedule": "daily:09:00",
                            "timeZone": "Mars/Olympus" }),
        )
        .await
        .problem(422, "invalid_time_zone");
    let list = agency.get(&format!("{BULK}/schedules")).await;
    assert_eq!(list.ok(200)["data"].as_array().unwrap().len(), 1);
    let paused = agency.patch(&format!("{BULK}/schedules/{id}"), json!({ "status": "paused" })).await;
    let paused = paused.ok(200).clone();
    assert_eq!((paused["status"].as_str(), paused["pausedReason"].as_str()), (Some("paused"), Some("paused_by_user")));
    let resumed = agency.patch(&format!("{BULK}/schedules/{id}"), json!({ "status": "active" })).await;
    assert_eq!(resumed.ok(200)["status"], "active");
    env.other_agency().get(&format!("{BULK}/schedules/{id}")).await.problem(404, "schedule_not_found");
    agency.delete(&format!("{BULK}/schedules/{id}")).await.ok(204);
    agency.get(&format!("{BULK}/schedules/{id}")).await.problem(404, "schedule_not_found");
});

/// Health from what real calls did: DataForSEO through the platform's login against the fake,
/// healthy after a call that worked, error after one that failed; a connected provider nothing
/// has called lately is probed with its free call when one workspace's health is read (never by
/// the list); mailboxes get an SMTP session; webhooks from their own state; the list embeds it,
/// with usage and the last write.
mod health_comes_from_real_calls {
    use super::*;
    use linkcrm_testkit::smtp::SmtpServer;
    use linkcrm_testkit::{DataForSeoFault, FakeAhrefs, FakeApollo, FakeDataForSeo, FakeLlm};

    async fn run(backend: Backend) {
        let fake = FakeDataForSeo::start().await;
        fake.set_serp("health check one", [("https://a.example.com/x", "a.example.com", "A")]);
        fake.set_serp("health check two", [("https://b.example.com/x", "b.example.com", "B")]);
        let ahrefs = FakeAhrefs::start().await;
        ahrefs.set_units(100_000, 100_000);
        let llm = FakeLlm::start().await;
        let apollo = FakeApollo::start().await;
        let smtp = SmtpServer::start_with_user("dana", "s3cret-pass").unwrap();
        let env = Env::start_with(
            backend,
            &[
                ("LINKCRM_DATAFORSEO_BASE_URL", fake.base_url.as_str()),
                ("LINKCRM_DATAFORSEO_LOGIN", fake.login.as_str()),
                ("LINKCRM_DATAFORSEO_PASSWORD", fake.password.as_str()),
                ("LINKCRM_AHREFS_BASE_URL", ahrefs.base_url.as_str()),
                ("LINKCRM_AHREFS_API_KEY", ahrefs.api_key.as_str()),
                ("LINKCRM_LLM_BASE_URL", llm.base_url.as_str()),
                ("LINKCRM_LLM_API_KEY", "sk-not-the-fakes-key"),
                ("LINKCRM_APOLLO_BASE_URL", apollo.base_url.as_str()),
            ],
        )
        .await;
        let agency = env.agency();
        let ws = agency.create_workspace("Acme").await;
        agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);
        let api = agency.in_workspace(&ws);
        let mailbox = |password: &str| {
            json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                    "smtpPort": smtp.port, "security": "none", "smtpUsername": "dana", "password": password })
        };
        let good = api.post("/v1/mailboxes", mailbox("s3cret-pass")).await.ok(201)["id"].as_str().unwrap().to_owned();
        let bad = api.post("/v1/mailboxes", mailbox("wrong-pass")).await.ok(201)["id"].as_str().unwrap().to_owned();

        // Nothing has called the providers yet: reading the health probes each connected one.
        let h = agency.get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
        assert_eq!(h["workspaceId"], ws.as_str());
        assert_eq!(h["integrations"]["apollo"]["status"], "not_connected");
        assert_eq!(h["integrations"]["webhooks"]["status"], "not_connected");
        let i = &h["integrations"];
        assert_eq!(i["dataforseo"]["status"], "healthy", "its user_data answered with a balance: {h}");
        assert_eq!(i["ahrefs"]["status"], "error", "{h}");
        assert_eq!(i["ahrefs"]["lastError"]["code"], "quota_exceeded", "every unit spent: {h}");
        assert_eq!(i["llm"]["status"], "error", "{h}");
        assert_eq!(i["llm"]["lastError"]["code"], "credentials_rejected", "{h}");
        let smtp_of = |h: &Value, id: &str| {
            h["mailboxes"].as_array().unwrap().iter().find(|m| m["mailboxId"] == id).unwrap()["smtp"].clone()
        };
        assert_eq!(smtp_of(&h, &good)["status"], "healthy", "{h}");
        assert_eq!(smtp_of(&h, &bad)["status"], "error", "{h}");
        assert_eq!(smtp_of(&h, &bad)["lastError"]["code"], "smtp_login_refused", "{h}");
        let probes = || {
            (
                fake.calls().iter().filter(|c| c.path == linkcrm_testkit::fake_dataforseo::USER_DATA_PATH).count(),
                ahrefs.calls_to(linkcrm_testkit::fake_ahrefs::LIMITS_PATH).len(),
                llm.requests().iter().filter(|r| r.path == linkcrm_testkit::fake_llm::MODELS_PATH).count(),
            )
        };
        assert_eq!(probes(), (1, 1, 1));
        assert!(fake.calls()[0].authorization.as_deref().is_some_and(|a| a.starts_with("Basic ")));
        assert!(smtp.received().is_empty(), "a probe sends nothing");
        // Fresh records are not probed again.
        let again = agency.get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
        assert_eq!(probes(), (1, 1, 1));
        assert_eq!(again["integrations"]["ahrefs"]["lastError"]["code"], "quota_exceeded");

        // Another workspace, with its own Apollo key the provider does not know, and DataForSEO's
        // balance spent meanwhile.
        let ws2 = agency.create_workspace("Beta").await;
        let apollo_path = format!("/v1/workspaces/{ws2}/integrations/apollo");
        agency.put(&apollo_path, json!({ "apiKey": "apollo-unknown-key-1" })).await.ok(200);
        fake.set_balance(0.0);
        let h2 = agency.get(&format!("/v1/workspaces/{ws2}/health")).await.ok(200).clone();
        assert_eq!(h2["integrations"]["dataforseo"]["lastError"]["code"], "quota_exceeded", "{h2}");
        assert_eq!(h2["integrations"]["apollo"]["lastError"]["code"], "credentials_rejected", "{h2}");
        assert_eq!(apollo.calls_to(linkcrm_testkit::fake_apollo::HEALTH_PATH).len(), 1);
        assert_eq!(probes(), (2, 2, 2));

        api.post("/v1/research/serp", json!({ "query": "health check one" })).await.ok(200);
        let h = agency.get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
        assert_eq!(h["integrations"]["dataforseo"]["status"], "healthy", "{h}");
        assert!(h["integrations"]["dataforseo"]["lastCheckedAt"].as_str().is_some());

        fake.fail_next(5, DataForSeoFault::ServerError(500));
        api.post("/v1/research/serp", json!({ "query": "health check two" }))
            .await
            .problem(503, "provider_unavailable");
        let h = agency.get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
        assert_eq!(h["integrations"]["dataforseo"]["status"], "error", "{h}");
        assert_eq!(h["integrations"]["dataforseo"]["lastError"]["code"], "provider_unavailable");
        assert_eq!(h["status"], "error");

        // A webhook that keeps failing makes webhooks a warning.
        let w = api
            .post(
                "/v1/webhooks",
                json!({ "url": "https://127.0.0.1:1/hook", "events": ["link_building.relationship.created"] }),
            )
            .await;
        let wid = w.ok(201)["id"].as_str().unwrap().to_owned();
        api.post("/v1/link-building/crm/relationship", json!({ "domain": "health-partner.com" })).await.ok(201);
        let mut seen = Value::Null;
        for _ in 0..100 {
            seen = agency.get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
            if seen["integrations"]["webhooks"]["status"] == "warning" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let attempts = api.get(&format!("/v1/webhooks/{wid}/deliveries")).await.ok(200).clone();
        let hook = api.get(&format!("/v1/webhooks/{wid}")).await.ok(200).clone();
        assert_eq!(seen["integrations"]["webhooks"]["status"], "warning", "{seen} {attempts} {hook}");

        // The list embeds usage, health and the last write.
        let list = agency.get("/v1/workspaces?include=usage,health,lastActiveAt").await;
        let row = list.ok(200)["data"].as_array().unwrap().iter().find(|w| w["id"] == ws.as_str()).unwrap().clone();
        assert_eq!(row["health"]["dataforseo"], "error");
        assert_eq!(row["health"]["webhooks"], "warning");
        assert_eq!(row["health"]["mailboxes"], "error", "the worst mailbox: {row}");
        assert_eq!(probes(), (2, 2, 2), "the list reads records only");
        assert_eq!(apollo.calls_to(linkcrm_testkit::fake_apollo::HEALTH_PATH).len(), 1);
        assert!(row["usage"]["creditsUsedThisCycle"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["usage"]["cycleEndsAt"].as_str().is_some());
        assert!(row["lastActiveAt"].as_str().is_some());
        let plain = agency.get("/v1/workspaces").await;
        assert!(plain.ok(200)["data"][0].get("usage").is_none());
        agency.get("/v1/workspaces?include=brand").await.problem(400, "invalid_request");
        let usage = agency.get(&format!("/v1/workspaces/{ws}/usage")).await;
        let usage = usage.ok(200).clone();
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert!(usage["byDay"][&today].as_f64().unwrap() > 0.0, "{usage}");
        env.other_agency().get(&format!("/v1/workspaces/{ws}/health")).await.problem(403, "workspace_forbidden");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        run(Backend::Embedded).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        run(Backend::Dynamo).await
    }
}
