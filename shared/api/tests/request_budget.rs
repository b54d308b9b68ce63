//! Every endpoint's DynamoDB request count is small and fixed. Each call below runs through the
//! real router on DynamoDB (moto), and the adapter's SDK-call counters must stay within the
//! budget written in docs/access-patterns.md. A request path that grows a Scan, a loop of
//! reads, or an extra round trip fails here.

use axum::body::Body;
use axum::http::{Method, Request};
use linkcrm_storage::dynamo::{DynamoStore, RequestCounts};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sk_live_agency_request_budget_key";

struct Probe {
    router: axum::Router,
    store: Arc<DynamoStore>,
    ws: String,
}

/// The operations measured so far, by the first word of each measurement's name.
static MEASURED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl Probe {
    /// Sends one request and returns (status, body, the SDK calls it made).
    async fn call(&self, method: Method, path: &str, ws: bool, body: Option<Value>) -> (u16, Value, RequestCounts) {
        let mut req = Request::builder().method(method).uri(path).header("Authorization", format!("Bearer {KEY}"));
        if ws {
            req = req.header("X-Workspace-Id", &self.ws);
        }
        let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
        self.store.reset_request_counts();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let counts = self.store.request_counts();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), counts)
    }
}

#[track_caller]
fn within(name: &str, (status, body, counts): &(u16, Value, RequestCounts), ok: u16, budget: u64) {
    assert_eq!(*status, ok, "{name}: {body}");
    MEASURED.lock().unwrap().push(name.split(' ').next().unwrap().to_owned());
    assert!(counts.total() <= budget, "{name}: {} DynamoDB requests, budget {budget}: {counts:?}", counts.total());
    // Never the whole table.
    println!("{name:<40} {:>2} requests  {counts:?}", counts.total());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_stays_within_its_request_budget() {
    let moto = linkcrm_testkit::Moto::shared().unwrap();
    let store = Arc::new(DynamoStore::for_endpoint(&moto.endpoint, &linkcrm_testkit::unique_table_name("budget")));
    store.create_table().await.unwrap();
    let dyn_store: linkcrm_storage::DynStore = store.clone();
    linkcrm_api::platform::create_agency(&dyn_store, "Budget agency", Some(KEY.into())).await.unwrap();
    let config = linkcrm_api::Config { rate_limit_per_sec: 0.0, allow_private_targets: true, ..Default::default() };
    let app = linkcrm_api::app(dyn_store, config).await.unwrap();
    let mut p = Probe { router: linkcrm_api::router(&app), store, ws: String::new() };

    let r = p.call(Method::POST, "/v1/workspaces", false, Some(json!({"name": "Acme", "tags": ["a", "b"]}))).await;
    // The key's first use also records lastUsedAt (once a minute at most).
    within("workspaces.create (first use of the key)", &r, 201, 3);
    p.ws = r.1["id"].as_str().unwrap().to_owned();
    let ws = p.ws.clone();
    within("workspaces.list", &p.call(Method::GET, "/v1/workspaces", false, None).await, 200, 4);
    within("workspaces.get", &p.call(Method::GET, &format!("/v1/workspaces/{ws}"), false, None).await, 200, 2);
    within(
        "workspaces.update",
        &p.call(Method::PATCH, &format!("/v1/workspaces/{ws}"), false, Some(json!({"name": "Acme PM"}))).await,
        200,
        3,
    );
    within("workspaces.current", &p.call(Method::GET, "/v1/workspace", true, None).await, 200, 3);
    let r = p.call(Method::POST, &format!("/v1/workspaces/{ws}/api-keys"), false, Some(json!({"name": "k"}))).await;
    within("workspaces.api_keys.create", &r, 201, 3);
    let key_id = r.1["id"].as_str().unwrap().to_owned();
    within(
        "workspaces.api_keys.list",
        &p.call(Method::GET, &format!("/v1/workspaces/{ws}/api-keys"), false, None).await,
        200,
        4,
    );
    let r = p.call(Method::POST, "/v1/agency/api-keys", false, Some(json!({"name": "rotation"}))).await;
    within("agency.api_keys.create", &r, 201, 2);
    let agency_key_id = r.1["id"].as_str().unwrap().to_owned();
    within("agency.api_keys.list", &p.call(Method::GET, "/v1/agency/api-keys", false, None).await, 200, 3);
    within(
        "agency.api_keys.revoke",
        &p.call(Method::DELETE, &format!("/v1/agency/api-keys/{agency_key_id}"), false, None).await,
        204,
        4,
    );

    let rel_path = "/v1/link-building/crm/relationship";
    let r = p.call(Method::POST, rel_path, true, Some(json!({"domain": "engineering-blog.com"}))).await;
    within("relationship.create (new domain)", &r, 201, 6);
    let rel = r.1["id"].as_str().unwrap().to_owned();
    let acct = r.1["accountId"].as_str().unwrap().to_owned();
    let r = p.call(Method::POST, rel_path, true, Some(json!({"domain": "devleadweekly.com"}))).await;
    within("relationship.create (second)", &r, 201, 6);
    within("relationship.get", &p.call(Method::GET, &format!("{rel_path}/{rel}"), true, None).await, 200, 4);
    within("relationship.list", &p.call(Method::GET, rel_path, true, None).await, 200, 4);
    within(
        "relationship.list (two statuses, since)",
        &p.call(Method::GET, &format!("{rel_path}?status=PROSPECTING,LINK_PLACED&since=2026-01-01"), true, None).await,
        200,
        5,
    );
    within(
        "relationship.list (by domain)",
        &p.call(Method::GET, &format!("{rel_path}?domain=engineering-blog.com"), true, None).await,
        200,
        7,
    );
    within(
        "relationship.update (fields)",
        &p.call(Method::PATCH, &format!("{rel_path}/{rel}"), true, Some(json!({"priority": "HIGH"}))).await,
        200,
        6,
    );
    within(
        "relationship.update (status: one transaction)",
        &p.call(Method::PATCH, &format!("{rel_path}/{rel}"), true, Some(json!({"status": "QUEUED"}))).await,
        200,
        7,
    );

    let ev = "/v1/link-building/crm/event";
    let r = p
        .call(Method::POST, ev, true, Some(json!({"relationshipId": rel, "type": "NOTE_ADDED", "content": "x"})))
        .await;
    within("event.create (note)", &r, 201, 4);
    let evt = r.1["id"].as_str().unwrap().to_owned();
    let r = p
        .call(Method::POST, ev, true, Some(json!({"relationshipId": rel, "type": "EMAIL_SENT", "subject": "hi"})))
        .await;
    // The account's min/max contact stamps cost the adapter one read inside the transaction.
    within("event.create (EMAIL_SENT, shared counters)", &r, 201, 6);
    within("event.get", &p.call(Method::GET, &format!("{ev}/{evt}"), true, None).await, 200, 3);
    within("event.list (workspace)", &p.call(Method::GET, ev, true, None).await, 200, 3);
    within(
        "event.list (relationship, types)",
        &p.call(Method::GET, &format!("{ev}?relationshipId={rel}&type=EMAIL_SENT,NOTE_ADDED"), true, None).await,
        200,
        4,
    );
    within(
        "event.list (account, agency-wide)",
        &p.call(Method::GET, &format!("{ev}?accountId={acct}"), false, None).await,
        200,
        2,
    );

    // Pipeline stages and opportunities: the stage list is one item (written on first use).
    let stg = "/v1/link-building/crm/stage";
    let r = p.call(Method::GET, stg, true, None).await;
    within("crm.stage.list (first use writes the defaults)", &r, 200, 4);
    let first_stage = r.1["data"][0]["id"].as_str().unwrap().to_owned();
    let engaged = r.1["data"][4]["id"].as_str().unwrap().to_owned();
    within("crm.stage.list", &p.call(Method::GET, stg, true, None).await, 200, 3);
    let r =
        p.call(Method::POST, stg, true, Some(json!({"name": "Negotiating", "systemKey": "ACTIVELY_ENGAGED"}))).await;
    within("crm.stage.create", &r, 201, 4);
    let extra_stage = r.1["id"].as_str().unwrap().to_owned();
    within(
        "crm.stage.update",
        &p.call(Method::PATCH, &format!("{stg}/{extra_stage}"), true, Some(json!({"colorKey": "teal"}))).await,
        200,
        4,
    );
    let mut order: Vec<Value> = p.call(Method::GET, stg, true, None).await.1["data"].as_array().unwrap().to_vec();
    order.reverse();
    let ids: Vec<Value> = order.iter().map(|s| s["id"].clone()).collect();
    within(
        "crm.stage.reorder",
        &p.call(Method::POST, &format!("{stg}/reorder"), true, Some(json!({"stageIds": ids}))).await,
        200,
        4,
    );
    let opp = "/v1/link-building/crm/opportunity";
    let r = p.call(Method::POST, opp, true, Some(json!({"title": "Unlinked deal", "value": 250}))).await;
    within("crm.opportunity.create (unlinked)", &r, 201, 4);
    let unlinked = r.1["id"].as_str().unwrap().to_owned();
    let r = p.call(Method::POST, opp, true, Some(json!({"title": "Guest post", "relationshipId": rel}))).await;
    within("crm.opportunity.create (linked)", &r, 201, 5);
    let linked = r.1["id"].as_str().unwrap().to_owned();
    within("crm.opportunity.list", &p.call(Method::GET, opp, true, None).await, 200, 4);
    within(
        "crm.opportunity.list (stage)",
        &p.call(Method::GET, &format!("{opp}?stageId={first_stage}"), true, None).await,
        200,
        4,
    );
    within("crm.opportunity.get", &p.call(Method::GET, &format!("{opp}/{linked}"), true, None).await, 200, 4);
    within(
        "crm.opportunity.update",
        &p.call(Method::PATCH, &format!("{opp}/{unlinked}"), true, Some(json!({"value": 300}))).await,
        200,
        5,
    );
    within(
        "crm.opportunity.move (unlinked)",
        &p.call(Method::POST, &format!("{opp}/{unlinked}/move"), true, Some(json!({"stageId": engaged}))).await,
        200,
        5,
    );
    within(
        "crm.opportunity.move (linked: LEAD_STAGE_CHANGED and STATUS_CHANGED, one transaction)",
        &p.call(Method::POST, &format!("{opp}/{linked}/move"), true, Some(json!({"stageId": engaged}))).await,
        200,
        6,
    );
    let r = p.call(Method::POST, &format!("/v1/workspaces/{ws}/members"), false, Some(json!({"name": "Ana"}))).await;
    within("workspaces.members.create", &r, 201, 3);
    let member = r.1["id"].as_str().unwrap().to_owned();
    within(
        "workspaces.members.list",
        &p.call(Method::GET, &format!("/v1/workspaces/{ws}/members"), false, None).await,
        200,
        3,
    );
    let co = "/v1/link-building/crm/company";
    let r = p.call(Method::POST, co, true, Some(json!({"name": "Acme", "ownerId": member}))).await;
    within("crm.company.create (private)", &r, 201, 4);
    let company = r.1["id"].as_str().unwrap().to_owned();
    within(
        "crm.company.create (a partner's domain)",
        &p.call(Method::POST, co, true, Some(json!({"name": "Weekly", "domain": "devleadweekly.com"}))).await,
        201,
        6,
    );
    within("crm.company.list", &p.call(Method::GET, &format!("{co}?search=ac"), true, None).await, 200, 3);
    within("crm.company.get", &p.call(Method::GET, &format!("{co}/{company}"), true, None).await, 200, 3);
    within(
        "crm.company.update",
        &p.call(Method::PATCH, &format!("{co}/{company}"), true, Some(json!({"lifecycle": "inactive"}))).await,
        200,
        4,
    );
    let r = p
        .call(
            Method::POST,
            "/v1/link-building/crm/contact",
            true,
            Some(
                json!({"accountId": acct, "firstName": "Pia", "email": "pia@engineering-blog.com", "phone": "+1 555"}),
            ),
        )
        .await;
    within("crm.contact.create (with this workspace's phone)", &r, 201, 6);
    let pia = r.1["id"].as_str().unwrap().to_owned();
    within(
        "crm.contact.list (inWorkspace)",
        &p.call(Method::GET, "/v1/link-building/crm/contact?inWorkspace=true", true, None).await,
        200,
        4,
    );
    let r = p
        .call(
            Method::POST,
            &format!("/v1/link-building/crm/contact/{pia}/membership"),
            true,
            Some(json!({"companyId": company})),
        )
        .await;
    within("crm.contact.membership.create (primary)", &r, 201, 6);
    let ms = r.1["id"].as_str().unwrap().to_owned();
    within(
        "crm.contact.membership.list",
        &p.call(Method::GET, &format!("/v1/link-building/crm/contact/{pia}/membership"), true, None).await,
        200,
        4,
    );
    within(
        "crm.contact.membership.update",
        &p.call(
            Method::PATCH,
            &format!("/v1/link-building/crm/contact/{pia}/membership/{ms}"),
            true,
            Some(json!({"role": "Editor"})),
        )
        .await,
        200,
        4,
    );
    within("crm.company.contacts", &p.call(Method::GET, &format!("{co}/{company}/contacts"), true, None).await, 200, 6);
    let r = p.call(Method::POST, "/v1/link-building/crm/marketing-list", true, Some(json!({"name": "Q1"}))).await;
    within("crm.marketing_list.create", &r, 201, 3);
    let ml = r.1["id"].as_str().unwrap().to_owned();
    within(
        "crm.marketing_list.list",
        &p.call(Method::GET, "/v1/link-building/crm/marketing-list", true, None).await,
        200,
        3,
    );
    within(
        "crm.marketing_list.get",
        &p.call(Method::GET, &format!("/v1/link-building/crm/marketing-list/{ml}"), true, None).await,
        200,
        3,
    );
    within(
        "crm.marketing_list.add (one contact: one transaction each)",
        &p.call(
            Method::POST,
            &format!("/v1/link-building/crm/marketing-list/{ml}/members"),
            true,
            Some(json!({"contactIds": [pia]})),
        )
        .await,
        200,
        6,
    );
    within(
        "crm.contact.membership.delete",
        &p.call(Method::DELETE, &format!("/v1/link-building/crm/contact/{pia}/membership/{ms}"), true, None).await,
        204,
        4,
    );
    within(
        "crm.contact.forget (its memberships and the overlay, one transaction)",
        &p.call(Method::POST, &format!("/v1/link-building/crm/contact/{pia}/forget"), true, Some(json!({}))).await,
        204,
        5,
    );
    within(
        "workspaces.members.delete",
        &p.call(Method::DELETE, &format!("/v1/workspaces/{ws}/members/{member}"), false, None).await,
        204,
        3,
    );
    let act = "/v1/link-building/crm/activity";
    within(
        "crm.activity.create (on a linked opportunity: an ACTIVITY_LOGGED event)",
        &p.call(Method::POST, act, true, Some(json!({"type": "call", "subject": "Intro", "opportunityId": linked})))
            .await,
        201,
        5,
    );
    within(
        "crm.activity.create (unlinked opportunity)",
        &p.call(Method::POST, act, true, Some(json!({"type": "note", "subject": "x", "opportunityId": unlinked})))
            .await,
        201,
        4,
    );
    within("crm.activity.list", &p.call(Method::GET, act, true, None).await, 200, 3);
    within(
        "crm.activity.list (opportunity)",
        &p.call(Method::GET, &format!("{act}?opportunityId={linked}"), true, None).await,
        200,
        3,
    );
    let task = "/v1/link-building/crm/task";
    let r = p
        .call(
            Method::POST,
            task,
            true,
            Some(json!({"title": "Invoice", "dueAt": "2026-01-05", "opportunityId": linked})),
        )
        .await;
    within("crm.task.create (about an opportunity)", &r, 201, 5);
    let task_id = r.1["id"].as_str().unwrap().to_owned();
    within("crm.task.list", &p.call(Method::GET, task, true, None).await, 200, 3);
    within(
        "crm.task.list (due before)",
        &p.call(Method::GET, &format!("{task}?dueBefore=2026-02-01"), true, None).await,
        200,
        3,
    );
    within("crm.task.get", &p.call(Method::GET, &format!("{task}/{task_id}"), true, None).await, 200, 3);
    within(
        "crm.task.update",
        &p.call(Method::PATCH, &format!("{task}/{task_id}"), true, Some(json!({"title": "Send invoice"}))).await,
        200,
        4,
    );
    within(
        "crm.task.complete",
        &p.call(Method::POST, &format!("{task}/{task_id}/complete"), true, Some(json!({}))).await,
        200,
        4,
    );
    within("crm.task.delete", &p.call(Method::DELETE, &format!("{task}/{task_id}"), true, None).await, 204, 3);
    within(
        "crm.dashboard (stage counters, three counting queries)",
        &p.call(Method::GET, "/v1/link-building/crm/dashboard", true, None).await,
        200,
        6,
    );
    within("crm.opportunity.delete", &p.call(Method::DELETE, &format!("{opp}/{unlinked}"), true, None).await, 204, 4);
    within(
        "crm.stage.delete (empty)",
        &p.call(Method::DELETE, &format!("{stg}/{extra_stage}"), true, None).await,
        200,
        5,
    );

    let acc = "/v1/link-building/crm/account";
    // The rating list merges the four shard partitions: one Query each, one BatchGetItem of the
    // page's workspace-account guards, one GetItem of the counters for `total`.
    within("account.list (by rating, total)", &p.call(Method::GET, acc, true, None).await, 200, 8);
    within(
        "account.list (minDR, status)",
        &p.call(Method::GET, &format!("{acc}?minDR=40&status=NEVER_CONTACTED,IN_DISCUSSION&limit=50"), true, None)
            .await,
        200,
        7,
    );
    let r = p.call(Method::GET, &format!("{acc}?domain=engineering-blog.com"), true, None).await;
    within("account.list (domain)", &r, 200, 5);
    assert_eq!(r.1["data"][0]["relationshipInThisWorkspace"]["id"], rel.as_str());
    within(
        "account.list (domainContains)",
        &p.call(Method::GET, &format!("{acc}?domainContains=eng"), true, None).await,
        200,
        4,
    );
    within("account.get", &p.call(Method::GET, &format!("{acc}/{acct}"), true, None).await, 200, 7);
    let prices = json!({"priceLinkInsertion": 350, "priceContext": "2026 rate"});
    within(
        "account.update (prices: one transaction)",
        &p.call(Method::PATCH, &format!("{acc}/{acct}"), true, Some(prices)).await,
        200,
        4,
    );
    within("account.history", &p.call(Method::GET, &format!("{acc}/{acct}/history"), true, None).await, 200, 4);
    let dnc = format!("{acc}/{acct}/do-not-contact");
    within("account.do_not_contact", &p.call(Method::POST, &dnc, true, Some(json!({"reason": "asked"}))).await, 200, 4);
    within(
        "account.do_not_contact (again)",
        &p.call(Method::POST, &dnc, true, Some(json!({"reason": "asked"}))).await,
        200,
        3,
    );
    within("relationship.archive", &p.call(Method::DELETE, &format!("{rel_path}/{rel}"), true, None).await, 204, 4);

    let ct = "/v1/link-building/crm/contact";
    let r =
        p.call(Method::POST, ct, true, Some(json!({"accountId": acct, "email": "marina@engineering-blog.com"}))).await;
    within("contact.create (accountId)", &r, 201, 5);
    let contact = r.1["id"].as_str().unwrap().to_owned();
    let r = p.call(Method::POST, ct, true, Some(json!({"domain": "engineering-blog.com", "email": "ed@x.com"}))).await;
    within("contact.create (known domain)", &r, 201, 6);
    let r = p.call(Method::POST, ct, true, Some(json!({"domain": "new-blog.com", "email": "new@new-blog.com"}))).await;
    within("contact.create (new domain)", &r, 201, 6);
    within("contact.get", &p.call(Method::GET, &format!("{ct}/{contact}"), true, None).await, 200, 3);
    within(
        "contact.list (email)",
        &p.call(Method::GET, &format!("{ct}?email=marina@engineering-blog.com"), true, None).await,
        200,
        4,
    );
    within("contact.list (account)", &p.call(Method::GET, &format!("{ct}?accountId={acct}"), true, None).await, 200, 4);
    within("contact.list (all shards)", &p.call(Method::GET, ct, true, None).await, 200, 7);
    within(
        "contact.update (email moves)",
        &p.call(Method::PATCH, &format!("{ct}/{contact}"), true, Some(json!({"email": "m@engineering-blog.com"})))
            .await,
        200,
        4,
    );
    within("contact.delete", &p.call(Method::DELETE, &format!("{ct}/{contact}"), true, None).await, 204, 4);

    let mbx = json!({"fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1"});
    p.call(Method::POST, "/v1/mailboxes", true, Some(mbx)).await;
    let validate = |to: &str| json!({"recipientEmail": to, "senderEmail": "dana@outreach.example.com", "subject": "Hi", "body": "Hello"});
    // Mailboxes Query, email guard, account, suppression BatchGetItem, counters + guard BatchGetItem.
    within(
        "policy.validate (known contact)",
        &p.call(Method::POST, "/v1/policy/validate", true, Some(validate("ed@x.com"))).await,
        200,
        7,
    );
    // No contact: the domain guard and its account instead of the contact's.
    within(
        "policy.validate (unknown address)",
        &p.call(Method::POST, "/v1/policy/validate", true, Some(validate("someone@engineering-blog.com"))).await,
        200,
        8,
    );

    // Outreach: mailboxes, suppression, inbound mail, sending.
    let r = p.call(Method::GET, "/v1/mailboxes", true, None).await;
    within("mailboxes.list", &r, 200, 3);
    let mbx_id = r.1["data"][0]["id"].as_str().unwrap().to_owned();
    within("mailboxes.get", &p.call(Method::GET, &format!("/v1/mailboxes/{mbx_id}"), true, None).await, 200, 3);
    within(
        "mailboxes.update",
        &p.call(Method::PATCH, &format!("/v1/mailboxes/{mbx_id}"), true, Some(json!({"fromName": "Dana K"}))).await,
        200,
        5,
    );
    let mbx2 = json!({"fromName": "Eve", "fromAddress": "eve@outreach.example.com", "smtpHost": "127.0.0.1"});
    let r = p.call(Method::POST, "/v1/mailboxes", true, Some(mbx2)).await;
    within("mailboxes.create", &r, 201, 3);
    let mbx2_id = r.1["id"].as_str().unwrap().to_owned();
    within("mailboxes.delete", &p.call(Method::DELETE, &format!("/v1/mailboxes/{mbx2_id}"), true, None).await, 204, 4);
    let sup = json!({"email": "quiet@devleadweekly.com", "reason": "asked"});
    within("suppression.add", &p.call(Method::POST, "/v1/suppression", true, Some(sup)).await, 201, 3);
    within("suppression.list", &p.call(Method::GET, "/v1/suppression", true, None).await, 200, 3);
    within(
        "suppression.remove",
        &p.call(Method::DELETE, "/v1/suppression?email=quiet@devleadweekly.com", true, None).await,
        204,
        3,
    );
    let raw = "From: Ed <ed@x.com>\r\nTo: dana@outreach.example.com\r\nSubject: Re: Hello\r\n\
               Message-ID: <budget-1@x.com>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nSounds good.\r\n";
    let r = p.call(Method::POST, "/v1/link-building/inbound/email", true, Some(json!({"raw": raw}))).await;
    within("link_building.inbound.receive", &r, 201, 4);
    let msg = r.1["id"].as_str().unwrap().to_owned();
    within("link_building.inbound.list", &p.call(Method::GET, "/v1/link-building/inbound", true, None).await, 200, 3);
    within(
        "link_building.inbound.get",
        &p.call(Method::GET, &format!("/v1/link-building/inbound/{msg}"), true, None).await,
        200,
        3,
    );
    within(
        "link_building.inbound.poll (no IMAP mailbox)",
        &p.call(Method::POST, "/v1/link-building/inbound/poll", true, Some(json!({}))).await,
        200,
        3,
    );
    // A mailbox whose IMAP server is down: lease, status, release besides the listing.
    let imap = json!({"fromName": "Ivy", "fromAddress": "ivy@outreach.example.com", "smtpHost": "127.0.0.1",
                      "imapHost": "127.0.0.1", "imapPort": 9, "imapSecurity": "starttls"});
    let r = p.call(Method::POST, "/v1/mailboxes", true, Some(imap)).await;
    within("mailboxes.create (with IMAP)", &r, 201, 3);
    let r = p.call(Method::POST, "/v1/link-building/inbound/poll", true, Some(json!({}))).await;
    assert_eq!(r.1["mailboxes"][0]["error"]["code"], "imap_unreachable", "{}", r.1);
    within("link_building.inbound.poll (one IMAP mailbox, down)", &r, 200, 7);
    std::env::set_var("LINKCRM_OAUTH_GMAIL_CLIENT_ID", "budget-client");
    let connect = json!({"type": "gmail", "address": "seo@outreach.example.com"});
    let r = p.call(Method::POST, "/v1/mailboxes/connect", true, Some(connect)).await;
    assert!(r.1["authorizationUrl"].as_str().unwrap().contains("client_id=budget-client"), "{}", r.1);
    within("mailboxes.connect", &r, 201, 5);
    let r = p.call(Method::POST, rel_path, true, Some(json!({"domain": "third-blog.com"}))).await;
    let rel3 = r.1["id"].as_str().unwrap().to_owned();
    let acct3 = r.1["accountId"].as_str().unwrap().to_owned();
    within(
        "link_building.inbound.assign",
        &p.call(
            Method::POST,
            &format!("/v1/link-building/inbound/{msg}/assign"),
            true,
            Some(json!({"relationshipId": rel3})),
        )
        .await,
        200,
        7,
    );

    // The inbound negotiator's settings, partner modes, gates, and a person's reply.
    let settings = "/v1/link-building/inbound/settings";
    within("link_building.inbound.settings.get", &p.call(Method::GET, settings, true, None).await, 200, 3);
    let on = json!({"enabled": true, "autonomous": false, "angles": ["composting"]});
    within("link_building.inbound.settings.update", &p.call(Method::POST, settings, true, Some(on)).await, 200, 4);
    let mode_path = format!("/v1/link-building/crm/account/{acct3}/inbound-settings");
    let mode = json!({"mode": "always_escalate"});
    within(
        "link_building.inbound.account_settings.set",
        &p.call(Method::PUT, &mode_path, true, Some(mode)).await,
        200,
        5,
    );
    within("link_building.inbound.account_settings.get", &p.call(Method::GET, &mode_path, true, None).await, 200, 5);
    let gate = json!({"name": "money", "when": {"field": "amountMentioned", "op": "gte", "value": 100},
                      "then": {"action": "escalate_to_approval"}});
    let gates = "/v1/link-building/inbound/eval-gates";
    let r = p.call(Method::POST, gates, true, Some(gate.clone())).await;
    within("link_building.inbound.eval_gate.create", &r, 201, 4);
    let gate_id = r.1["id"].as_str().unwrap().to_owned();
    let r = p.call(Method::POST, "/v1/link-building/inbound/eval-gate", true, Some(gate)).await;
    within("link_building.inbound.eval_gate.add", &r, 201, 4);
    within("link_building.inbound.eval_gate.list", &p.call(Method::GET, gates, true, None).await, 200, 3);
    let one = format!("{gates}/{gate_id}");
    within("link_building.inbound.eval_gate.get", &p.call(Method::GET, &one, true, None).await, 200, 3);
    let r = p.call(Method::PATCH, &one, true, Some(json!({"priority": 5}))).await;
    within("link_building.inbound.eval_gate.update", &r, 200, 4);
    let r = p.call(Method::GET, &format!("{one}/versions"), true, None).await;
    within("link_building.inbound.eval_gate.versions", &r, 200, 3);
    within("link_building.inbound.eval_gate.delete", &p.call(Method::DELETE, &one, true, None).await, 204, 4);
    let raw = "From: Fay <fay@third-blog.com>\r\nTo: dana@outreach.example.com\r\nSubject: A question\r\n\
               Message-ID: <budget-2@third-blog.com>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n";
    let r = p.call(Method::POST, "/v1/link-building/inbound/email", true, Some(json!({"raw": raw}))).await;
    let fay = r.1["id"].as_str().unwrap().to_owned();
    let assign = json!({"relationshipId": rel3});
    p.call(Method::POST, &format!("/v1/link-building/inbound/{fay}/assign"), true, Some(assign)).await;

    // Credits, and the agent runtime: a send that waits for approval, approved; one rejected;
    // one cancelled; a discovery.
    within(
        "workspaces.credits.grant",
        &p.call(Method::POST, &format!("/v1/workspaces/{ws}/credits"), false, Some(json!({"credits": 50}))).await,
        201,
        4,
    );
    within("workspaces.usage", &p.call(Method::GET, &format!("/v1/workspaces/{ws}/usage"), false, None).await, 200, 3);
    let respond = json!({"inboundMessageId": fay, "body": "Thanks, sounds good."});
    let r = p.call(Method::POST, "/v1/link-building/campaign/respond", true, Some(respond)).await;
    within("link_building.campaign.respond", &r, 202, 8);
    let contact3 =
        p.call(Method::POST, ct, true, Some(json!({"accountId": acct3, "email": "pat@third-blog.com"}))).await;
    let contact3 = contact3.1["id"].as_str().unwrap().to_owned();
    let send = json!({"contactId": contact3, "subject": "Hello", "body": "Hi Pat"});
    let r = p.call(Method::POST, &format!("{rel_path}/{rel3}/send-email"), true, Some(send.clone())).await;
    within("link_building.crm.relationship.send_email", &r, 202, 6);
    let inv1 = r.1["invocationId"].as_str().or(r.1["id"].as_str()).unwrap().to_owned();
    within(
        "agent.invocations.get",
        &p.call(Method::GET, &format!("/v1/agent/invocations/{inv1}"), true, None).await,
        200,
        3,
    );
    within("agent.invocations.list", &p.call(Method::GET, "/v1/agent/invocations", true, None).await, 200, 3);
    let r = p.call(Method::GET, "/v1/agent/approvals", true, None).await;
    within("agent.approvals.list", &r, 200, 3);
    let approval = r.1["data"][0]["approvalId"].as_str().unwrap().to_owned();
    within(
        "agent.approvals.get",
        &p.call(Method::GET, &format!("/v1/agent/approvals/{approval}"), true, None).await,
        200,
        3,
    );
    within(
        "agent.invocations.approve",
        &p.call(Method::POST, &format!("/v1/agent/invocations/{inv1}/approve"), true, Some(json!({}))).await,
        200,
        6,
    );
    let r = p.call(Method::POST, &format!("{rel_path}/{rel3}/send-email"), true, Some(send.clone())).await;
    let inv2 = r.1["invocationId"].as_str().or(r.1["id"].as_str()).unwrap().to_owned();
    within(
        "agent.invocations.reject",
        &p.call(Method::POST, &format!("/v1/agent/invocations/{inv2}/reject"), true, Some(json!({}))).await,
        200,
        6,
    );
    let r = p.call(Method::POST, &format!("{rel_path}/{rel3}/send-email"), true, Some(send)).await;
    let inv3 = r.1["invocationId"].as_str().or(r.1["id"].as_str()).unwrap().to_owned();
    within(
        "agent.invocations.cancel",
        &p.call(Method::POST, &format!("/v1/agent/invocations/{inv3}/cancel"), true, Some(json!({}))).await,
        200,
        5,
    );
    within(
        "link_building.crm.contact.discover",
        &p.call(Method::POST, &format!("{ct}/discover"), true, Some(json!({"accountIds": [acct3]}))).await,
        202,
        5,
    );

    // Templates and a custom campaign: create, read, a send within it that waits for approval,
    // approved and rejected through the campaign, pause, resume, complete, cancel.
    let tpl_body = json!({"name": "t", "subject": "Idea for {domain}", "body": "Hi {firstName|there}"});
    let r = p.call(Method::POST, "/v1/link-building/templates", true, Some(tpl_body)).await;
    within("link_building.templates.create", &r, 201, 3);
    let tpl = r.1["id"].as_str().unwrap().to_owned();
    let tpl_path = format!("/v1/link-building/templates/{tpl}");
    within(
        "link_building.templates.list",
        &p.call(Method::GET, "/v1/link-building/templates", true, None).await,
        200,
        3,
    );
    within("link_building.templates.get", &p.call(Method::GET, &tpl_path, true, None).await, 200, 3);
    within(
        "link_building.templates.update",
        &p.call(Method::PATCH, &tpl_path, true, Some(json!({"name": "t2"}))).await,
        200,
        5,
    );
    within(
        "link_building.templates.render",
        &p.call(Method::POST, &format!("{tpl_path}/render"), true, Some(json!({"relationshipId": rel3}))).await,
        200,
        7,
    );
    let cmp_body = json!({"type": "custom", "name": "Q3", "relationshipIds": [rel3], "templateId": tpl});
    let r = p.call(Method::POST, "/v1/link-building/campaign", true, Some(cmp_body)).await;
    within("link_building.campaign.create (one partner)", &r, 201, 8);
    let cmp = r.1["id"].as_str().unwrap().to_owned();
    let cmp_path = format!("/v1/link-building/campaign/{cmp}");
    within("link_building.campaign.list", &p.call(Method::GET, "/v1/link-building/campaign", true, None).await, 200, 4);
    within("link_building.campaign.get", &p.call(Method::GET, &cmp_path, true, None).await, 200, 3);
    let snap = "/v1/link-building/reporting/snapshot";
    within("link_building.reporting.snapshot (a workspace)", &p.call(Method::GET, snap, true, None).await, 200, 3);
    // Agency-wide: the agency's workspaces, then one Query per workspace (here one).
    within(
        "link_building.reporting.snapshot (the agency, one workspace)",
        &p.call(Method::GET, snap, false, None).await,
        200,
        3,
    );
    let follow = json!({"name": "Q3 partners", "followUps": [{"afterDays": 3, "body": "Bumping this, {firstName|}."}]});
    within("link_building.campaign.update", &p.call(Method::PATCH, &cmp_path, true, Some(follow)).await, 200, 5);
    within(
        "link_building.campaign.metrics",
        &p.call(Method::GET, &format!("{cmp_path}/metrics"), true, None).await,
        200,
        5,
    );
    for kind in ["relationships", "sends", "replies"] {
        let r = p.call(Method::GET, &format!("{cmp_path}/export/{kind}"), true, None).await;
        within(&format!("link_building.campaign.export ({kind})"), &r, 200, 5);
    }
    within(
        "link_building.campaign.replies (one page of members, none written to)",
        &p.call(Method::GET, &format!("{cmp_path}/replies"), true, None).await,
        200,
        4,
    );
    let r = p.call(Method::POST, rel_path, true, Some(json!({"domain": "fourth-blog.com"}))).await;
    let rel4 = r.1["id"].as_str().unwrap().to_owned();
    within(
        "link_building.campaign.relationships.add (one partner)",
        &p.call(Method::POST, &format!("{cmp_path}/relationships"), true, Some(json!({"relationshipIds": [rel4]})))
            .await,
        200,
        7,
    );
    // Leads: one new site with its contact, then the lead read, listed and moved to `replied`
    // (STATUS_CHANGED with the lead in its transaction).
    let lead = json!({"leads": [{"websiteUrl": "https://fifth-blog.com/write-for-us", "contactEmail": "ed@fifth-blog.com",
                                 "qualityScore": 0.7}]});
    let r = p.call(Method::POST, &format!("{cmp_path}/leads"), true, Some(lead)).await;
    within("link_building.campaign.leads.add (one new site and contact)", &r, 200, 10);
    let lead_id = r.1["added"][0]["relationshipId"].as_str().unwrap().to_owned();
    within(
        "link_building.campaign.leads.get",
        &p.call(Method::GET, &format!("{cmp_path}/leads/{lead_id}"), true, None).await,
        200,
        4,
    );
    within(
        "link_building.campaign.leads.list",
        &p.call(Method::GET, &format!("{cmp_path}/leads"), true, None).await,
        200,
        4,
    );
    within(
        "link_building.campaign.leads.update_status (one lead, with its STATUS_CHANGED)",
        &p.call(
            Method::POST,
            &format!("{cmp_path}/leads/status"),
            true,
            Some(json!({"relationshipIds": [lead_id], "status": "replied"})),
        )
        .await,
        200,
        6,
    );
    let one_off = json!({"relationshipId": rel3, "contactId": contact3, "subject": "Hello again", "body": "Hi Pat"});
    let r = p.call(Method::POST, &format!("{cmp_path}/send-email"), true, Some(one_off.clone())).await;
    within("link_building.campaign.send_email", &r, 202, 7);
    let draft1 = r.1["invocationId"].as_str().unwrap().to_owned();
    within(
        "link_building.campaign.drafts",
        &p.call(Method::GET, &format!("{cmp_path}/drafts"), true, None).await,
        200,
        5,
    );
    within(
        "link_building.campaign.approve (one draft)",
        &p.call(Method::POST, &format!("{cmp_path}/approve"), true, Some(json!({"draftIds": [draft1]}))).await,
        200,
        8,
    );
    let one_off = json!({"relationshipId": rel3, "contactId": contact3, "subject": "Third", "body": "Hi Pat"});
    let r = p.call(Method::POST, &format!("{cmp_path}/send-email"), true, Some(one_off)).await;
    let draft2 = r.1["invocationId"].as_str().unwrap().to_owned();
    within(
        "link_building.campaign.reject (one draft)",
        &p.call(Method::POST, &format!("{cmp_path}/reject"), true, Some(json!({"draftIds": [draft2]}))).await,
        200,
        8,
    );
    within(
        "link_building.campaign.pause",
        &p.call(Method::POST, &format!("{cmp_path}/pause"), true, Some(json!({}))).await,
        200,
        5,
    );
    within(
        "link_building.campaign.resume",
        &p.call(Method::POST, &format!("{cmp_path}/resume"), true, Some(json!({}))).await,
        200,
        5,
    );
    within(
        "link_building.campaign.toggle",
        &p.call(Method::POST, &format!("{cmp_path}/toggle"), true, Some(json!({"action": "pause"}))).await,
        200,
        5,
    );
    within("link_building.campaign.cancel", &p.call(Method::DELETE, &cmp_path, true, None).await, 200, 5);
    let r = p
        .call(Method::POST, "/v1/link-building/campaign", true, Some(json!({"type": "custom", "name": "Empty"})))
        .await;
    let cmp2 = r.1["id"].as_str().unwrap().to_owned();
    within(
        "link_building.campaign.complete",
        &p.call(Method::POST, &format!("/v1/link-building/campaign/{cmp2}/complete"), true, Some(json!({}))).await,
        200,
        5,
    );
    within("link_building.templates.delete", &p.call(Method::DELETE, &tpl_path, true, None).await, 204, 3);

    // SERP research (a fetch, then the cache) and the writing operations, against fakes.
    let serp = linkcrm_testkit::FakeDataForSeo::start().await;
    serp.set_serp("pm tools", [("engineering-blog.com", "https://engineering-blog.com/pm", "PM")]);
    let llm = linkcrm_testkit::FakeLlm::start().await;
    // One test in this binary: the environment is ours to set.
    std::env::set_var("LINKCRM_DATAFORSEO_BASE_URL", &serp.base_url);
    std::env::set_var("LINKCRM_DATAFORSEO_LOGIN", &serp.login);
    std::env::set_var("LINKCRM_DATAFORSEO_PASSWORD", &serp.password);
    std::env::set_var("LINKCRM_LLM_BASE_URL", &llm.base_url);
    std::env::set_var("LINKCRM_LLM_API_KEY", &llm.api_key);
    let q = json!({"query": "pm tools", "topN": 5});
    within("research.serp (fetched)", &p.call(Method::POST, "/v1/research/serp", true, Some(q.clone())).await, 200, 7);
    within("research.serp (cached)", &p.call(Method::POST, "/v1/research/serp", true, Some(q)).await, 200, 3);
    // Opportunities from the cached research: the known sites' metrics in two batch reads.
    let q = json!({"keyword": "pm tools", "maxResults": 5});
    within(
        "research.opportunities (cached, not saved)",
        &p.call(Method::POST, "/v1/research/opportunities", true, Some(q)).await,
        200,
        5,
    );
    // SERP and competitor campaigns: the start (the pipeline is queued work) and their endpoints.
    std::env::set_var("LINKCRM_AHREFS_API_KEY", "platform-ahrefs-key");
    for (kind, path, body) in [
        (
            "serp_outreach",
            "/v1/link-building/serp-outreach",
            json!({"keyword": "pm tools", "topN": 5, "subject": "Hi", "body": "About {domain}"}),
        ),
        (
            "competitor_outreach",
            "/v1/link-building/competitor-outreach",
            json!({"competitorDomain": "rival.com", "limit": 5, "subject": "Hi", "body": "About {domain}"}),
        ),
    ] {
        let r = p.call(Method::POST, path, true, Some(body)).await;
        within(&format!("link_building.{kind}.start"), &r, 202, 4);
        let one = format!("{path}/{}", r.1["id"].as_str().unwrap());
        within(&format!("link_building.{kind}.list"), &p.call(Method::GET, path, true, None).await, 200, 3);
        within(&format!("link_building.{kind}.get"), &p.call(Method::GET, &one, true, None).await, 200, 3);
        within(
            &format!("link_building.{kind}.drafts"),
            &p.call(Method::GET, &format!("{one}/drafts"), true, None).await,
            200,
            4,
        );
        within(
            &format!("link_building.{kind}.approve (none waiting)"),
            &p.call(Method::POST, &format!("{one}/approve"), true, Some(json!({}))).await,
            200,
            4,
        );
        within(
            &format!("link_building.{kind}.reject (none waiting)"),
            &p.call(Method::POST, &format!("{one}/reject"), true, Some(json!({}))).await,
            200,
            4,
        );
        let patch = json!({"name": "Renamed", "filters": {"minDR": 20}});
        within(&format!("link_building.{kind}.update"), &p.call(Method::PATCH, &one, true, Some(patch)).await, 200, 5);
        within(&format!("link_building.{kind}.cancel"), &p.call(Method::DELETE, &one, true, None).await, 200, 5);
    }
    let e = "/v1/link-building/emails";
    let topic = json!({"topic": "PM tools"});
    within(
        "link_building.emails.generate",
        &p.call(Method::POST, &format!("{e}/generate"), true, Some(topic.clone())).await,
        200,
        6,
    );
    within(
        "link_building.emails.subject_suggestions",
        &p.call(Method::POST, &format!("{e}/subject-suggestions"), true, Some(topic)).await,
        200,
        5,
    );
    let base = json!({"baseEmail": "Hi", "leadName": "Pat", "leadWebsite": "third-blog.com"});
    within(
        "link_building.emails.personalize",
        &p.call(Method::POST, &format!("{e}/personalize"), true, Some(base)).await,
        200,
        5,
    );
    let orig = json!({"originalSubject": "Hello", "originalBody": "Hi Pat"});
    within(
        "link_building.emails.follow_up",
        &p.call(Method::POST, &format!("{e}/follow-up"), true, Some(orig)).await,
        200,
        5,
    );
    for provider in ["dataforseo", "ahrefs", "llm"] {
        let path = format!("/v1/workspaces/{ws}/integrations/{provider}");
        let body = match provider {
            "dataforseo" => json!({"login": "client-login", "password": "client-password"}),
            _ => json!({"apiKey": "client-key-1234"}),
        };
        within(
            &format!("workspaces.integrations.{provider}.set"),
            &p.call(Method::PUT, &path, false, Some(body)).await,
            200,
            4,
        );
        within(
            &format!("workspaces.integrations.{provider}.get"),
            &p.call(Method::GET, &path, false, None).await,
            200,
            3,
        );
        within(
            &format!("workspaces.integrations.{provider}.remove"),
            &p.call(Method::DELETE, &path, false, None).await,
            204,
            3,
        );
    }

    // Webhooks: a workspace's endpoint, its test delivery (to a closed port), attempts, recover,
    // dead letters; an agency webhook.
    let hook = json!({"url": "https://127.0.0.1:1/hook", "events": ["link_building.*"]});
    let r = p.call(Method::POST, "/v1/webhooks", true, Some(hook)).await;
    within("webhooks.create", &r, 201, 4);
    let whk = r.1["id"].as_str().unwrap().to_owned();
    let one = format!("/v1/webhooks/{whk}");
    within("webhooks.list", &p.call(Method::GET, "/v1/webhooks", true, None).await, 200, 3);
    within("webhooks.get", &p.call(Method::GET, &one, true, None).await, 200, 3);
    within("webhooks.update", &p.call(Method::PATCH, &one, true, Some(json!({"description": "d"}))).await, 200, 4);
    let r = p.call(Method::POST, &format!("{one}/rotate-secret"), true, Some(json!({}))).await;
    within("webhooks.rotate_secret", &r, 200, 4);
    within("webhooks.test", &p.call(Method::POST, &format!("{one}/test"), true, Some(json!({}))).await, 200, 4);
    within("webhooks.deliveries", &p.call(Method::GET, &format!("{one}/deliveries"), true, None).await, 200, 4);
    let since = linkcrm_domain::time::format(chrono::Utc::now() - chrono::Duration::days(1));
    let r = p.call(Method::POST, &format!("{one}/recover"), true, Some(json!({"since": since}))).await;
    within("webhooks.recover", &r, 202, 4);
    within("webhooks.dead_letter.list", &p.call(Method::GET, "/v1/webhooks/dead-letter", true, None).await, 200, 3);
    let r = p
        .call(Method::POST, "/v1/webhooks/dead-letter/whmsg_00000000000000000000000000/replay", true, Some(json!({})))
        .await;
    within("webhooks.dead_letter.replay (none to replay)", &r, 404, 3);
    within("webhooks.event_types", &p.call(Method::GET, "/v1/webhooks/event-types", true, None).await, 200, 2);
    let agency_hook = json!({"url": "https://hooks.example.com/all", "events": ["*"], "workspaceIds": [ws]});
    within("webhooks.create (agency)", &p.call(Method::POST, "/v1/webhooks", false, Some(agency_hook)).await, 201, 5);
    within("webhooks.delete", &p.call(Method::DELETE, &one, true, None).await, 204, 4);

    // The agency's tools: the audit log, bulk actions (a read answered at once over one
    // workspace, a write queued as children), a bulk action read back, scheduled bulk actions.
    // The first read probes what nothing has checked lately (four integrations and mailboxes
    // here): one more request each, the outcome's record. The next read is records only.
    let r = p.call(Method::GET, &format!("/v1/workspaces/{ws}/health"), false, None).await;
    within("workspaces.health (probing 4 stale integrations and mailboxes)", &r, 200, 10);
    let r = p.call(Method::GET, &format!("/v1/workspaces/{ws}/health"), false, None).await;
    within("workspaces.health", &r, 200, 6);
    let r = p.call(Method::GET, "/v1/workspaces?include=usage,health,lastActiveAt", false, None).await;
    within("workspaces.list (include=usage,health,lastActiveAt; 1 workspace)", &r, 200, 10);
    within("audit.list", &p.call(Method::GET, "/v1/audit", true, None).await, 200, 3);
    within("workspaces.audit", &p.call(Method::GET, &format!("/v1/workspaces/{ws}/audit"), false, None).await, 200, 3);
    let read = json!({"action": "link_building.campaign.list", "workspaces": [ws]});
    let r = p.call(Method::POST, "/v1/workspaces/bulk-action", false, Some(read)).await;
    within("workspaces.bulk_action (a read in 1 workspace, answered at once)", &r, 200, 8);
    let write = json!({"action": "link_building.crm.relationship.create", "workspaces": [ws], "config": {"domain": "bulk-budget.com"}});
    let r = p.call(Method::POST, "/v1/workspaces/bulk-action", false, Some(write)).await;
    within("workspaces.bulk_action (a write, queued)", &r, 202, 3);
    let bulk_id = r.1["invocationId"].as_str().unwrap().to_owned();
    let r = p.call(Method::GET, &format!("/v1/workspaces/bulk-action/{bulk_id}"), false, None).await;
    within("workspaces.bulk_action.get", &r, 200, 3);
    let sched = json!({"action": "link_building.campaign.list", "workspaces": "all", "schedule": "daily:09:00"});
    let r = p.call(Method::POST, "/v1/workspaces/bulk-action", false, Some(sched)).await;
    within("workspaces.bulk_action.schedules (create, through bulk_action)", &r, 201, 5);
    let bsch = r.1["id"].as_str().unwrap().to_owned();
    let one = format!("/v1/workspaces/bulk-action/schedules/{bsch}");
    let r = p.call(Method::GET, "/v1/workspaces/bulk-action/schedules", false, None).await;
    within("workspaces.bulk_action.schedules.list", &r, 200, 2);
    within("workspaces.bulk_action.schedules.get", &p.call(Method::GET, &one, false, None).await, 200, 2);
    let r = p.call(Method::PATCH, &one, false, Some(json!({"status": "paused"}))).await;
    within("workspaces.bulk_action.schedules.update", &r, 200, 3);
    within("workspaces.bulk_action.schedules.delete", &p.call(Method::DELETE, &one, false, None).await, 204, 3);

    // Placed links: a LINK_PLACED starts monitoring (its job, run here by hand), then the link's
    // reads, a correction, a check on demand, and the requests of one check itself.
    let page_server = PageServer::start().await;
    let target = "https://our-site.example/guide";
    let r = p
        .call(
            Method::POST,
            ev,
            true,
            Some(json!({"relationshipId": rel, "type": "LINK_PLACED",
                        "metadata": {"linkUrl": page_server.url("/post"), "targetUrl": target, "anchorText": "the guide"}})),
        )
        .await;
    within("event.create (LINK_PLACED, monitoring job)", &r, 201, 6);
    let placed = r.1["id"].as_str().unwrap().to_owned();
    let event_item = app.store.get(&linkcrm_api::crm::keys::event(&placed)).await.unwrap().unwrap();
    p.store.reset_request_counts();
    let started = linkcrm_api::monitoring::track::start(&app, &event_item, std::time::Duration::ZERO).await.unwrap();
    let link_id = match started {
        linkcrm_api::monitoring::track::Started::Made(id) => id,
        other => panic!("{other:?}"),
    };
    let track_counts = p.store.request_counts();
    println!("{:<40} {:>2} requests  {track_counts:?}", "(job) link_track", track_counts.total());
    assert!(track_counts.total() <= 4, "link_track: {track_counts:?}");
    let links = "/v1/link-building/links";
    within("links.list", &p.call(Method::GET, links, true, None).await, 200, 3);
    within("links.list (state)", &p.call(Method::GET, &format!("{links}?state=pending"), true, None).await, 200, 3);
    within(
        "links.list (relationship, checked before)",
        &p.call(Method::GET, &format!("{links}?relationshipId={rel}&checkedBefore=2025-06-01"), true, None).await,
        200,
        3,
    );
    within("links.list (agency-wide)", &p.call(Method::GET, links, false, None).await, 200, 2);
    within("links.get", &p.call(Method::GET, &format!("{links}/{link_id}"), true, None).await, 200, 3);
    within(
        "links.update",
        &p.call(Method::PATCH, &format!("{links}/{link_id}"), true, Some(json!({"rel": "sponsored"}))).await,
        200,
        4,
    );
    // One scheduled check: dispatched from the due index, then run as its worker runs it.
    p.store.reset_request_counts();
    let tick = linkcrm_api::monitoring::schedule::dispatch_due(&app, chrono::Utc::now(), 50).await.unwrap();
    assert_eq!(tick.dispatched, 1, "{tick:?}");
    let dispatch_counts = p.store.request_counts();
    println!("{:<40} {:>2} requests  {dispatch_counts:?}", "(tick) link dispatch, 8 shards", dispatch_counts.total());
    assert!(dispatch_counts.total() <= 9, "dispatch: {dispatch_counts:?}");
    let jobs = app
        .store
        .query(linkcrm_storage::Query::partition(format!(
            "{}{}",
            linkcrm_jobs::store_queue::QUEUE_PREFIX,
            linkcrm_domain::jobs::LINKCHECK_QUEUE
        )))
        .await
        .unwrap();
    let job_item = jobs
        .items
        .iter()
        .find(|j| j.get("kind").and_then(Value::as_str) == Some("link_check"))
        .expect("a link_check job");
    let job = linkcrm_jobs::Job::new("link_check", job_item.get("payload").cloned().expect("a payload"));
    p.store.reset_request_counts();
    linkcrm_api::monitoring::run::handle(&app, &job).await.unwrap();
    let check_counts = p.store.request_counts();
    // Seen for the first time: a LINK_CHANGED (from pending) rides with the check.
    println!("{:<40} {:>2} requests  {check_counts:?}", "(job) link_check, with its event", check_counts.total());
    assert!(check_counts.total() <= 8, "link_check: {check_counts:?}");
    let r = p.call(Method::GET, &format!("{links}/{link_id}"), true, None).await;
    assert_eq!((r.1["state"].as_str(), r.1["lastResult"].as_str()), (Some("at_risk"), Some("rel_changed")), "{}", r.1);
    let r = p.call(Method::GET, &format!("{links}/{link_id}/checks"), true, None).await;
    assert_eq!(r.1["data"][0]["eventId"].as_str().map(|e| e.starts_with("evt_")), Some(true), "{}", r.1);
    within("links.checks", &r, 200, 4);
    within("links.summary", &p.call(Method::GET, &format!("{links}/summary"), true, None).await, 200, 5);
    within(
        "links.check (on demand)",
        &p.call(Method::POST, &format!("{links}/{link_id}/check"), true, None).await,
        202,
        5,
    );

    // The workspace's Apollo key, a key revoked, the workspace archived.
    let apollo = format!("/v1/workspaces/{ws}/integrations/apollo");
    within(
        "workspaces.integrations.apollo.set",
        &p.call(Method::PUT, &apollo, false, Some(json!({"apiKey": "apollo-key-1234"}))).await,
        200,
        4,
    );
    within("workspaces.integrations.apollo.get", &p.call(Method::GET, &apollo, false, None).await, 200, 3);
    within("workspaces.integrations.apollo.remove", &p.call(Method::DELETE, &apollo, false, None).await, 204, 3);
    let key_id = key_id.clone();
    within(
        "workspaces.api_keys.revoke",
        &p.call(Method::DELETE, &format!("/v1/workspaces/{ws}/api-keys/{key_id}"), false, None).await,
        204,
        4,
    );
    within("workspaces.archive", &p.call(Method::DELETE, &format!("/v1/workspaces/{ws}"), false, None).await, 204, 3);

    // Every operation of the catalogue has a budget here.
    let measured = MEASURED.lock().unwrap().clone();
    let catalogue = linkcrm_api::catalogue();
    let resolve = |short: &str| -> Option<&'static str> {
        let hits: Vec<_> = catalogue
            .iter()
            .filter(|op| op.name == short || op.name.ends_with(&format!(".{short}")))
            .map(|op| op.name)
            .collect();
        (hits.len() == 1).then(|| hits[0])
    };
    let covered: std::collections::HashSet<&str> = measured.iter().filter_map(|m| resolve(m)).collect();
    let missing: Vec<&str> = catalogue.iter().map(|op| op.name).filter(|n| !covered.contains(n)).collect();
    assert!(missing.is_empty(), "operations without a request budget: {missing:?}");
}

/// A page with the placed link, for the check whose requests are counted.
struct PageServer {
    addr: std::net::SocketAddr,
}

impl PageServer {
    async fn start() -> PageServer {
        use axum::routing::get;
        let html = r#"<html><body><p>Read <a href="https://our-site.example/guide">the guide</a>.</p></body></html>"#;
        let app = axum::Router::new()
            .route("/post", get(move || async move { ([("content-type", "text/html")], html) }))
            .route("/robots.txt", get(|| async { (axum::http::StatusCode::NOT_FOUND, "") }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        PageServer { addr }
    }
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
