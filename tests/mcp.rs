//! The MCP door end to end: the real binary driven by the official Python MCP SDK's client
//! (`infra/mcp_conversation.py`): the seeds' MCP examples as a conversation of tool calls, scopes,
//! workspaces, names, schemas and errors, on both backends.

mod common;
use common::*;
use linkcrm_testkit::{FakeApollo, FakePerson, SmtpServer};
use serde_json::{json, Value};
use std::time::Duration;

/// What the conversation needs: two workspaces of one agency, keys, and the seeds' partners.
async fn world(env: &Env, smtp_port: u16) -> Value {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let other = agency.create_workspace("Beta").await;
    for w in [&ws, &other] {
        agency.post(&format!("/v1/workspaces/{w}/credits"), json!({ "credits": 50 })).await.ok(201);
    }
    let api = agency.in_workspace(&ws);
    let rel = |api: &Api, domain: &'static str| {
        let api = api.clone();
        async move {
            let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
            let r = r.ok(201).clone();
            (r["id"].as_str().unwrap().to_owned(), r["accountId"].as_str().unwrap().to_owned())
        }
    };
    let (engaged, account) = rel(&api, "engineering-blog.com").await;
    rel(&api, "devleadweekly.com").await;
    api.patch(&format!("/v1/link-building/crm/relationship/{engaged}"), json!({ "status": "ACTIVELY_ENGAGED" }))
        .await
        .ok(200);
    let marina = json!({ "accountId": account, "firstName": "Marina", "email": "marina@engineering-blog.com" });
    api.post("/v1/link-building/crm/contact", marina).await.ok(201);
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@acme.example", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp_port, "security": "none" });
    api.post("/v1/mailboxes", mbx).await.ok(201);
    let c = api
        .post("/v1/link-building/campaign", json!({ "type": "custom", "name": "PM tools", "relationshipIds": [engaged] }))
        .await;
    let campaign = c.ok(201)["id"].as_str().unwrap().to_owned();
    let (other_rel, _) = rel(&agency.in_workspace(&other), "beta-partner.com").await;
    json!({
        "key": agency.create_key(&ws, None).await,
        "readonly_key": agency.create_key(&ws, Some(&["crm:read", "campaigns:read"])).await,
        "other_key": agency.create_key(&other, None).await,
        "agency_key": agency.key.clone().unwrap(),
        "workspace": ws,
        "engaged_rel": engaged,
        "other_rel": other_rel,
        "campaign": campaign,
    })
}

async fn conversation(backend: Backend) {
    let apollo = FakeApollo::start().await;
    for (domain, id, first) in [("engineering-blog.com", "p-marina", "Marina"), ("devleadweekly.com", "p-lee", "Lee")] {
        let person = FakePerson {
            id: id.into(),
            first_name: first.into(),
            last_name: "Editor".into(),
            title: "Editor".into(),
            seniority: "manager".into(),
            email: Some(format!("{}@{domain}", first.to_lowercase())),
            email_status: "verified".into(),
            ..FakePerson::default()
        };
        apollo.add_person(domain, person);
    }
    let smtp = SmtpServer::start().unwrap();
    let env = Env::start_with(
        backend,
        &[("LINKCRM_APOLLO_BASE_URL", apollo.base_url.as_str()), ("LINKCRM_APOLLO_API_KEY", apollo.api_key.as_str())],
    )
    .await;
    let mut cfg = world(&env, smtp.port).await;
    cfg["url"] = json!(format!("{}/mcp", env.agency().base));
    cfg["discover"] = json!(true);
    match linkcrm_testkit::mcp_client::converse(&cfg, Duration::from_secs(240)).await {
        Ok(out) => {
            println!("{out}");
            assert!(out.contains("conversation complete"), "{out}");
        }
        Err(out) => panic!("the MCP conversation failed:\n{out}"),
    }
    // The agency's bulk action and the note went through the executor: both are in the audit log.
    let audit = env.agency().get(&format!("/v1/workspaces/{}/audit?operation=link_building.crm.event.create", cfg["workspace"].as_str().unwrap())).await;
    assert_eq!(audit.ok(200)["data"].as_array().unwrap().len(), 1, "one note, made once: {}", audit.body);
}

each_backend!(the_seeds_mcp_conversation_runs_through_the_executor, conversation);
