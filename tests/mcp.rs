//! The MCP door end to end: the real binary driven by the official Python MCP SDK's client
//! (`infra/mcp_conversation.py`): the seeds' MCP examples as a conversation of tool calls, scopes,
//! workspaces, names, schemas and errors, on both backends.

mod common;
use common::*;
use linkcrm_testkit::{FakeApollo, FakePerson, SmtpServer};
use serde_json::json;
use std::time::Duration;

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
    let agency = env.agency();
    let mut cfg =
        linkcrm_testkit::mcp_client::seed_world(&agency.base, agency.key.as_deref().unwrap(), smtp.port).await;
    cfg["url"] = json!(format!("{}/mcp", env.agency().base));
    cfg["discover"] = json!(true);
    // The local binary answers a waiting call as a stream, with progress notifications.
    cfg["streams"] = json!(true);
    match linkcrm_testkit::mcp_client::converse(&cfg, Duration::from_secs(240)).await {
        Ok(out) => {
            println!("{out}");
            assert!(out.contains("conversation complete"), "{out}");
        }
        Err(out) => panic!("the MCP conversation failed:\n{out}"),
    }
    // The agency's bulk action and the note went through the executor: both are in the audit log.
    let audit = env
        .agency()
        .get(&format!(
            "/v1/workspaces/{}/audit?operation=link_building.crm.event.create",
            cfg["workspace"].as_str().unwrap()
        ))
        .await;
    assert_eq!(audit.ok(200)["data"].as_array().unwrap().len(), 1, "one note, made once: {}", audit.body);
}

each_backend!(the_seeds_mcp_conversation_runs_through_the_executor, conversation);
