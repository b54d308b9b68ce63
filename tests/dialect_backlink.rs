//! The seed 003 dialect (`/api/v1/backlink-outreach/...`), written from the seed: each endpoint's
//! request fields, statuses and error bodies, black-box against the binary on both backends, and
//! what the same key sees through `/v1`. Another workspace sees none of it.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::{FakeAhrefs, FakeDataForSeo, FakeLlm};
use serde_json::{json, Value};

const P: &str = "/api/v1/backlink-outreach";

/// A workspace key of a new workspace, and the workspace's id.
async fn workspace_key(env: &Env, name: &str) -> (Api, String) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 50 })).await.ok(201);
    (agency.with_key(&agency.create_key(&ws, None).await), ws)
}

/// Asserts a `{"detail": "..."}` answer with this status.
#[track_caller]
fn detail(r: &common::Resp, status: u16, text: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body["detail"], text, "{}", r.text);
}

/// Asserts FastAPI's 422 and returns its first problem.
#[track_caller]
fn invalid(r: &common::Resp) -> Value {
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    let first = r.body["detail"][0].clone();
    assert!(first["type"].is_string() && first["loc"].is_array() && first["msg"].is_string(), "{}", r.text);
    first
}

on_both_backends!(campaigns_and_leads_as_the_seed_gives_them, |env| {
    let (api, ws) = workspace_key(&env, "Dialect").await;
    let (other, _) = workspace_key(&env, "Elsewhere").await;

    // Auth: the seed's 401.
    let r = env.anonymous().get(&format!("{P}/campaigns")).await;
    detail(&r, 401, "Not authenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    detail(&api.with_key("lcrm_live_nope").get(&format!("{P}/campaigns")).await, 401, "Not authenticated");

    // Create: 201 with the fields sent; validation as FastAPI states it.
    let body = json!({ "name": "Q3 guest posts", "description": "Dev-tool blogs", "keywords": ["pm tools", "devops"],
                       "user_id": "ignored", "unknown": 1 });
    let c = api.post(&format!("{P}/campaigns"), body).await.ok(201).clone();
    let cid = c["campaign_id"].as_str().unwrap().to_owned();
    assert!(cid.starts_with("cmp_"), "{c}");
    assert_eq!((c["name"].as_str(), c["description"].as_str()), (Some("Q3 guest posts"), Some("Dev-tool blogs")));
    assert_eq!(c["keywords"], json!(["pm tools", "devops"]));
    assert_eq!(c["status"], "active");
    let e = invalid(&api.post(&format!("{P}/campaigns"), json!({ "description": "x" })).await);
    assert_eq!((e["type"].as_str(), e["msg"].as_str()), (Some("missing"), Some("Field required")));
    assert_eq!(e["loc"], json!(["body", "name"]));
    let e = invalid(&api.post(&format!("{P}/campaigns"), json!({ "name": "x", "keywords": "not a list" })).await);
    assert_eq!((e["type"].as_str(), e["loc"].clone()), (Some("list_type"), json!(["body", "keywords"])));
    let r = api.send(reqwest::Method::POST, &format!("{P}/campaigns"), Some("{")).await;
    assert_eq!(invalid(&r)["type"], "json_invalid");
    // The same campaign in /v1, as a custom campaign with its keywords.
    let v1 = api.get(&format!("/v1/link-building/campaign/{cid}")).await.ok(200).clone();
    assert_eq!((v1["type"].as_str(), v1["keywords"].clone()), (Some("custom"), json!(["pm tools", "devops"])));

    // List: an array; `workspace_id` absent, `default` or its own id is the key's workspace.
    for q in ["", "?workspace_id=default", &format!("?workspace_id={ws}")] {
        let list = api.get(&format!("{P}/campaigns{q}")).await.ok(200).clone();
        assert_eq!(list.as_array().unwrap().iter().filter(|x| x["campaign_id"] == cid.as_str()).count(), 1, "{list}");
    }
    detail(&api.get(&format!("{P}/campaigns?workspace_id=ws_someone_else")).await, 404, "Resource not found");
    // An agency key names the workspace with `workspace_id`; without one, the operation says so.
    let agency = env.agency();
    let list = agency.get(&format!("{P}/campaigns?workspace_id={ws}")).await.ok(200).clone();
    assert_eq!(list.as_array().unwrap().iter().filter(|x| x["campaign_id"] == cid.as_str()).count(), 1, "{list}");
    let body = json!({ "name": "By the agency", "workspace_id": ws });
    assert_eq!(agency.post(&format!("{P}/campaigns"), body).await.ok(201)["status"], "active");
    assert_eq!(agency.get(&format!("{P}/campaigns")).await.status.as_u16(), 422);
    // A provider we lack keeps its status, in the peer's body.
    let r = api.post(&format!("{P}/emails/generate"), json!({ "topic": "x" })).await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("LINKCRM_LLM_API_KEY"), "{}", r.text);
    // The peer code's prefix serves the same.
    let list = api.get("/api/backlink-outreach/campaigns").await.ok(200).clone();
    assert_eq!(list.as_array().unwrap().iter().filter(|x| x["campaign_id"] == cid.as_str()).count(), 1, "{list}");

    // Leads: add one (201), the same site again answers the lead it has (200).
    let leads = format!("{P}/campaigns/{cid}/leads");
    let lead = json!({ "website_url": "https://engineering-blog.com/write-for-us", "website_title": "Engineering Blog",
                       "contact_email": "Marina@Engineering-Blog.com", "quality_score": 0.8, "relevance_score": 0.6,
                       "guest_post_likelihood": 0.9, "source": "manual" });
    let l = api.post(&leads, lead.clone()).await.ok(201).clone();
    let l1 = l["lead_id"].as_str().unwrap().to_owned();
    assert_eq!(l["website_url"], "https://engineering-blog.com/write-for-us");
    assert_eq!(l["website_title"], "Engineering Blog");
    assert_eq!(l["contact_email"], "marina@engineering-blog.com");
    assert_eq!((l["quality_score"].as_f64(), l["relevance_score"].as_f64()), (Some(0.8), Some(0.6)));
    assert_eq!((l["guest_post_likelihood"].as_f64(), l["source"].as_str()), (Some(0.9), Some("manual")));
    assert_eq!((l["status"].as_str(), l["campaign_id"].as_str()), (Some("discovered"), Some(cid.as_str())));
    assert_eq!(l["domain"], "engineering-blog.com");
    let again = api.post(&leads, json!({ "website_url": "engineering-blog.com" })).await.ok(200).clone();
    assert_eq!(again["lead_id"], l1.as_str());
    let e = invalid(&api.post(&leads, json!({ "website_url": "a.com", "quality_score": 2 })).await);
    assert_eq!((e["type"].as_str(), e["loc"].clone()), (Some("less_than_equal"), json!(["body", "quality_score"])));
    assert_eq!(
        invalid(&api.post(&leads, json!({ "website_url": "not a site" })).await)["loc"],
        json!(["body", "website_url"])
    );
    detail(&api.post(&format!("{P}/campaigns/cmp_nope/leads"), lead.clone()).await, 404, "Resource not found");
    // The lead is the workspace's relationship, with its contact.
    let rel = api.get(&format!("/v1/link-building/crm/relationship/{l1}")).await.ok(200).clone();
    assert_eq!(rel["accountDomain"], "engineering-blog.com", "{rel}");
    assert!(l["contact_id"].as_str().is_some_and(|c| c.starts_with("ct_")), "{l}");

    // Bulk: added, skipped (already a lead, or twice in the batch), failed with the reason.
    let bulk = json!([
        { "website_url": "https://devleadweekly.com", "contact_email": "ed@devleadweekly.com" },
        { "website_url": "https://engineering-blog.com/other" },
        { "website_url": "http://devleadweekly.com/again" },
        { "website_url": "nope" },
        { "website_url": "https://pm-reviews.org", "source": "serp" },
    ]);
    let b = api.post(&format!("{leads}/bulk"), bulk).await.ok(200).clone();
    assert_eq!((b["added"].as_u64(), b["skipped"].as_u64()), (Some(2), Some(2)), "{b}");
    let failed = b["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{b}");
    assert!(failed[0].as_str().unwrap().starts_with("3: nope:"), "{b}");
    let e = invalid(&api.post(&format!("{leads}/bulk"), json!([{ "website_title": "no url" }])).await);
    assert_eq!(e["loc"], json!(["body", 0, "website_url"]));
    assert_eq!(
        invalid(&api.post(&format!("{leads}/bulk"), json!({ "website_url": "a.com" })).await)["type"],
        "list_type"
    );

    // Status: `replied` moves the pipeline (STATUS_CHANGED with the lead status) and reads back.
    let r = api.patch(&format!("{leads}/{l1}/status"), json!({ "status": "replied" })).await.ok(200).clone();
    assert_eq!(r["status"], "replied");
    let rel = api.get(&format!("/v1/link-building/crm/relationship/{l1}")).await.ok(200).clone();
    assert_eq!(rel["status"], "ACTIVELY_ENGAGED", "{rel}");
    let events = api.get(&format!("/v1/link-building/crm/event?relationshipId={l1}&type=STATUS_CHANGED")).await;
    let changed: Vec<Value> = events.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["metadata"]["leadStatus"], "replied");
    assert_eq!(changed[0]["metadata"]["to"], "ACTIVELY_ENGAGED");
    // `lost` has no pipeline counterpart: the lead alone changes.
    let r = api.patch(&format!("{leads}/{l1}/status"), json!({ "status": "lost", "notes": "went quiet" })).await;
    assert_eq!((r.ok(200)["status"].as_str(), r.body["notes"].as_str()), (Some("lost"), Some("went quiet")));
    let events = api.get(&format!("/v1/link-building/crm/event?relationshipId={l1}&type=STATUS_CHANGED")).await;
    assert_eq!(events.ok(200)["data"].as_array().unwrap().len(), 1, "no second STATUS_CHANGED");
    let e = invalid(&api.patch(&format!("{leads}/{l1}/status"), json!({ "status": "won" })).await);
    assert_eq!(e["type"], "literal_error");
    assert_eq!(e["msg"], "Input should be 'discovered', 'contacted', 'replied', 'placed', 'bounced' or 'lost'");
    detail(
        &api.patch(&format!("{leads}/rel_nope/status"), json!({ "status": "lost" })).await,
        404,
        "Resource not found",
    );

    // Bulk status: what was updated, and the ids that were not.
    let all = api.get(&format!("{P}/campaigns/{cid}")).await.ok(200).clone();
    let ids: Vec<String> =
        all["leads"].as_array().unwrap().iter().map(|l| l["lead_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3, "{all}");
    assert_eq!(all["lead_count"], 3);
    let mut asked = ids.clone();
    asked.push("rel_00000000000000000000000000".into());
    asked.push("garbage".into());
    let r = api.patch(&format!("{leads}/bulk-status"), json!({ "lead_ids": asked, "status": "contacted" })).await;
    assert_eq!(r.ok(200)["updated"], 3, "{}", r.text);
    assert_eq!(r.body["failed"].as_array().unwrap().len(), 2, "{}", r.text);
    let all = api.get(&format!("{P}/campaigns/{cid}")).await.ok(200).clone();
    assert!(all["leads"].as_array().unwrap().iter().all(|l| l["status"] == "contacted"), "{all}");
    assert_eq!(
        invalid(&api.patch(&format!("{leads}/bulk-status"), json!({ "lead_ids": [], "status": "lost" })).await)["type"],
        "too_short"
    );

    // Another workspace sees none of it, here or in /v1.
    detail(&other.get(&format!("{P}/campaigns/{cid}")).await, 404, "Resource not found");
    assert!(!other.get(&format!("{P}/campaigns")).await.ok(200).to_string().contains(&cid));
    detail(&other.post(&leads, lead.clone()).await, 404, "Resource not found");
    detail(
        &other.patch(&format!("{leads}/{l1}/status"), json!({ "status": "placed" })).await,
        404,
        "Resource not found",
    );
    other.get(&format!("/v1/link-building/campaign/{cid}")).await.problem(404, "campaign_not_found");
    other.get(&format!("/v1/link-building/crm/relationship/{l1}")).await.problem(404, "relationship_not_found");

    // Delete: 204, and the campaign leaves the list.
    let r = api.delete(&format!("{P}/campaigns/{cid}")).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert!(!api.get(&format!("{P}/campaigns")).await.ok(200).to_string().contains(&cid));
    detail(&api.delete(&format!("{P}/campaigns/cmp_nope")).await, 404, "Resource not found");

    // Unknown routes and methods, in the peer's words.
    detail(&api.get(&format!("{P}/nothing-here")).await, 404, "Not Found");
    let r = api.put(&format!("{P}/campaigns"), json!({})).await;
    detail(&r, 405, "Method Not Allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));

    // The document lists every route of the seed.
    let doc = env.anonymous().get(&format!("{P}/openapi.json")).await.ok(200).clone();
    let count: usize = doc["paths"].as_object().unwrap().values().map(|m| m.as_object().unwrap().len()).sum();
    assert_eq!(count, 30, "the seed's 30 endpoints");
    assert_eq!(
        doc["paths"][format!("{P}/campaigns/{{campaign_id}}/leads/bulk")]["post"]["responses"]["200"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/BulkAdd"
    );
});

async fn writing_templates_suppression_policy(backend: Backend) {
    let llm = FakeLlm::start().await;
    let ahrefs = FakeAhrefs::start().await;
    // DR 80 and 999,999 visits a month: quality 0.6 × 0.8 + 0.4 × 1.0 = 0.88.
    ahrefs.set_metrics("engineering-blog.com", 80.0, 999_999, 300, 80, 900);
    let serp = FakeDataForSeo::start().await;
    serp.set_serp(
        "pm tools",
        [
            ("reviews.example.org", "https://reviews.example.org/garden", "Gardening tips"),
            ("devleadweekly.com", "https://devleadweekly.com/pm", "PM tools weekly"),
            ("engineering-blog.com", "https://engineering-blog.com/write-for-us", "Write for us: PM tools guest posts"),
        ],
    );
    let env = Env::start_with(
        backend,
        &[
            ("LINKCRM_LLM_BASE_URL", llm.base_url.as_str()),
            ("LINKCRM_LLM_API_KEY", llm.api_key.as_str()),
            ("LINKCRM_DATAFORSEO_BASE_URL", serp.base_url.as_str()),
            ("LINKCRM_DATAFORSEO_LOGIN", serp.login.as_str()),
            ("LINKCRM_DATAFORSEO_PASSWORD", serp.password.as_str()),
            ("LINKCRM_AHREFS_BASE_URL", ahrefs.base_url.as_str()),
            ("LINKCRM_AHREFS_API_KEY", ahrefs.api_key.as_str()),
            ("LINKCRM_METRICS_REFRESH_SECS", "1"),
        ],
    )
    .await;
    let (api, ws) = workspace_key(&env, "Writing").await;
    let (other, _) = workspace_key(&env, "Elsewhere").await;
    // A site the workspace works with gets its Ahrefs metrics (the metrics schedule).
    let rel = api.post("/v1/link-building/crm/relationship", json!({ "domain": "engineering-blog.com" })).await;
    let acct = rel.ok(201)["accountId"].as_str().unwrap().to_owned();
    for _ in 0..300 {
        if api.get(&format!("/v1/link-building/crm/account/{acct}")).await.ok(200)["domainRating"] == 80 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Deep discovery: our SERP research, each result scored; saved as leads when asked.
    let d = api.post(&format!("{P}/discover/deep"), json!({ "keyword": "pm tools" })).await.ok(200).clone();
    let results = d["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{d}");
    assert_eq!((d["saved_to_campaign"].as_u64(), d["save_failed"].as_u64()), (Some(0), Some(0)));
    assert_eq!(d["credits_charged"], 1.0);
    let top = &results[0];
    assert_eq!(top["domain"], "engineering-blog.com", "the guest-post page first: {d}");
    assert!(top["guest_post_likelihood"].as_f64().unwrap() >= 0.55, "{top}");
    assert!(top["signals"].as_array().unwrap().contains(&json!("write for us")), "{top}");
    assert_eq!((top["relevance_score"].as_f64(), top["has_guest_post_guidelines"].as_bool()), (Some(1.0), Some(true)));
    assert_eq!((top["domain_rating"].as_f64(), top["quality_score"].as_f64()), (Some(80.0), Some(0.88)), "{top}");
    let garden = results.iter().find(|r| r["domain"] == "reviews.example.org").unwrap();
    // The fake's snippets name the keyword ("…: everything about pm tools."), so every result is relevant.
    assert_eq!((garden["relevance_score"].as_f64(), garden["guest_post_likelihood"].as_f64()), (Some(1.0), Some(0.1)));
    assert_eq!(garden["quality_score"], 0.3, "nothing known of the site: {garden}");
    let cmp = api.post(&format!("{P}/campaigns"), json!({ "name": "Found" })).await.ok(201)["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "keyword": "pm tools", "campaign_id": cmp, "save_to_campaign": true, "max_results": 2 });
    let d = api.post(&format!("{P}/discover/deep"), body).await.ok(200).clone();
    assert_eq!(
        (d["saved_to_campaign"].as_u64(), d["save_failed"].as_u64(), d["credits_charged"].as_f64()),
        (Some(2), Some(0), Some(0.0)),
        "{d}"
    );
    let leads = api.get(&format!("{P}/campaigns/{cmp}")).await.ok(200)["leads"].clone();
    assert_eq!(leads.as_array().unwrap().len(), 2, "{leads}");
    assert!(
        leads.as_array().unwrap().iter().all(|l| l["source"] == "serp" && l["quality_score"].is_number()),
        "{leads}"
    );
    detail(
        &api.post(&format!("{P}/discover/deep"), json!({ "keyword": "x", "campaign_id": "cmp_nope" })).await,
        404,
        "Resource not found",
    );
    detail(
        &other.post(&format!("{P}/discover/deep"), json!({ "keyword": "pm tools", "campaign_id": cmp })).await,
        404,
        "Resource not found",
    );
    assert_eq!(
        invalid(&api.post(&format!("{P}/discover/deep"), json!({ "keyword": "x", "max_results": 0 })).await)["loc"],
        json!(["body", "max_results"])
    );

    // Email writing through our writer.
    let g = api.post(&format!("{P}/emails/generate"), json!({ "topic": "PM tools", "tone": "friendly" })).await;
    assert!(!g.ok(200)["subject"].as_str().unwrap().is_empty() && g.body["body"].is_string(), "{}", g.text);
    assert_eq!(
        invalid(&api.post(&format!("{P}/emails/generate"), json!({ "topic": "x", "tone": "angry" })).await)["type"],
        "literal_error"
    );
    let p = api
        .post(&format!("{P}/emails/personalize"), json!({ "base_email": "Hi, we wrote a guide.", "lead_name": "Marina",
                                                           "lead_website": "engineering-blog.com", "content_topic": "CI" }))
        .await;
    assert!(p.ok(200)["body"].as_str().unwrap().contains("Marina"), "{}", p.text);
    // The seed's optional fields are optional.
    let p = api.post(&format!("{P}/emails/personalize"), json!({ "base_email": "Hi, we wrote a guide." })).await;
    assert!(p.ok(200)["body"].as_str().unwrap().contains("we wrote a guide"), "{}", p.text);
    let s = api.post(&format!("{P}/emails/subject-suggestions"), json!({ "topic": "PM tools" })).await;
    assert!(!s.ok(200)["suggestions"].as_array().unwrap().is_empty(), "{}", s.text);
    let f = api
        .post(
            &format!("{P}/emails/follow-up"),
            json!({ "original_subject": "A guest post", "original_body": "Hi Marina" }),
        )
        .await;
    assert!(f.ok(200)["subject"].as_str().unwrap().starts_with("Re:"), "{}", f.text);
    let e = invalid(&api.post(&format!("{P}/emails/follow-up"), json!({ "original_subject": "x" })).await);
    assert_eq!(e["loc"], json!(["body", "original_body"]));

    // Templates with the seed's placeholders, kept as ours.
    let t = json!({ "name": "Pitch", "subject": "Guest Post: {topic}", "category": "guest_post",
                    "body": "Hi {name|there},\n\nI've been following {website}.\n\n{your_name}" });
    let t = api.post(&format!("{P}/emails/templates"), t).await.ok(201).clone();
    let tid = t["template_id"].as_str().unwrap().to_owned();
    assert_eq!(t["subject"], "Guest Post: {topic}");
    assert!(t["body"].as_str().unwrap().starts_with("Hi {name|there},"), "{t}");
    assert_eq!(t["category"], "guest_post");
    let mut ph: Vec<String> =
        t["placeholders"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    ph.sort();
    assert_eq!(ph, ["name", "topic", "website", "your_name"]);
    let ours = api.get(&format!("/v1/link-building/templates/{tid}")).await.ok(200).clone();
    assert_eq!(ours["subject"], "Guest Post: {keyword}");
    assert!(
        ours["body"].as_str().unwrap().contains("{firstName|there}")
            && ours["body"].as_str().unwrap().contains("{domain}")
    );
    let e = invalid(
        &api.post(&format!("{P}/emails/templates"), json!({ "name": "x", "subject": "{bogus}", "body": "b" })).await,
    );
    assert_eq!(e["type"], "invalid_template");
    let list = api.get(&format!("{P}/emails/templates")).await.ok(200).clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(api.get(&format!("{P}/emails/templates/{tid}")).await.ok(200)["name"], "Pitch");
    detail(&other.get(&format!("{P}/emails/templates/{tid}")).await, 404, "Resource not found");
    assert_eq!(api.delete(&format!("{P}/emails/templates/{tid}")).await.status.as_u16(), 204);
    detail(&api.get(&format!("{P}/emails/templates/{tid}")).await, 404, "Resource not found");

    // Suppression: 201 with the record, listed, and private to the workspace.
    let s = api.post(&format!("{P}/suppression"), json!({ "email": "Stop@Example.org", "reason": "asked" })).await;
    let rec = s.ok(201).clone();
    assert_eq!((rec["email"].as_str(), rec["domain"].as_str()), (Some("stop@example.org"), Some("example.org")));
    assert_eq!(rec["reason"], "asked");
    let list = api.get(&format!("{P}/suppression")).await.ok(200).clone();
    assert!(list.as_array().unwrap().iter().any(|e| e["email"] == "stop@example.org"), "{list}");
    assert!(!other.get(&format!("{P}/suppression")).await.ok(200).to_string().contains("stop@example.org"));
    assert_eq!(
        invalid(&api.post(&format!("{P}/suppression"), json!({ "reason": "x" })).await)["loc"],
        json!(["body", "email"])
    );

    // Policy: our check, in the seed's shape.
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                      "smtpPort": 2525, "security": "none", "dailyCap": 40 });
    env.agency().in_workspace(&ws).post("/v1/mailboxes", mbx).await.ok(201);
    let v = api
        .post(
            &format!("{P}/policy/validate"),
            json!({ "recipient_email": "marina@engineering-blog.com",
                                                        "sender_email": "dana@outreach.example.com", "subject": "Hi" }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!((v["allowed"].as_bool(), v["reason"].as_str()), (Some(true), Some("All checks passed")), "{v}");
    assert_eq!(
        (v["daily_user_limit"].as_u64(), v["counts"]["mailbox_sends_today"].as_u64()),
        (Some(40), Some(0)),
        "{v}"
    );
    let v = api
        .post(
            &format!("{P}/policy/validate"),
            json!({ "recipient_email": "stop@example.org", "sender_email": "dana@outreach.example.com" }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(v["reasons"], json!(["suppressed"]), "{v}");
    let e = invalid(&api.post(&format!("{P}/policy/validate"), json!({ "recipient_email": "a@b.com" })).await);
    assert_eq!(e["loc"], json!(["body", "sender_email"]));
}

each_backend!(writing_templates_suppression_and_policy, writing_templates_suppression_policy);

const REPLY: &str = include_str!("fixtures/inbound/reply_price_gmail.eml");
const REPLY_TO: &str = "0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com";
const FROM: &str = "dana@outreach.example.com";

/// The seed's whole flow: campaign, bulk leads, writing, policy, a send that aiosmtpd receives,
/// the reply read from Dovecot by a poll, replies, analytics and the CSV exports.
async fn full_flow(backend: Backend) {
    use linkcrm_testkit::imap::ImapServer;
    use linkcrm_testkit::smtp::SmtpServer;
    let smtp = SmtpServer::start().unwrap();
    let imap = ImapServer::start().unwrap();
    let ca = imap.ca_file().display().to_string();
    let llm = FakeLlm::start().await;
    let env = Env::start_with(
        backend,
        &[
            ("LINKCRM_LLM_BASE_URL", llm.base_url.as_str()),
            ("LINKCRM_LLM_API_KEY", llm.api_key.as_str()),
            ("LINKCRM_IMAP_CA_FILE", ca.as_str()),
            ("LINKCRM_IMAP_POLL_SECS", "3600"),
        ],
    )
    .await;
    let (api, ws) = workspace_key(&env, "Flow").await;
    let (other, _) = workspace_key(&env, "Elsewhere").await;
    let admin = env.agency().in_workspace(&ws);
    let mbx = json!({ "fromName": "Dana", "fromAddress": FROM, "smtpHost": "127.0.0.1", "smtpPort": smtp.port,
        "security": "none", "imapHost": "localhost", "imapPort": imap.port, "imapSecurity": "starttls",
        "imapUsername": imap.user, "imapPassword": imap.password });
    admin.post("/v1/mailboxes", mbx).await.ok(201);
    // The first read of the mailbox only marks where new mail starts.
    let first = api.post(&format!("{P}/replies/poll"), json!({})).await.ok(200).clone();
    assert_eq!((first["replies_found"].as_u64(), first["failed"].as_u64()), (Some(0), Some(0)), "{first}");

    let c = api.post(&format!("{P}/campaigns"), json!({ "name": "Gardening", "keywords": ["composting"] })).await;
    let cid = c.ok(201)["campaign_id"].as_str().unwrap().to_owned();
    let leads = json!([
        { "website_url": "https://gardening-blog.example.net", "contact_email": "jamie@gardening-blog.example.net",
          "quality_score": 0.7, "source": "manual" },
        { "website_url": "https://bobs-site.example.com", "contact_email": "bob@bobs-site.example.com" },
        { "website_url": "https://compost-weekly.example.org", "contact_email": "kim@compost-weekly.example.org" },
    ]);
    let b = api.post(&format!("{P}/campaigns/{cid}/leads/bulk"), leads).await.ok(200).clone();
    assert_eq!((b["added"].as_u64(), b["skipped"].as_u64()), (Some(3), Some(0)), "{b}");
    let all = api.get(&format!("{P}/campaigns/{cid}")).await.ok(200).clone();
    let lead = |domain: &str| {
        all["leads"].as_array().unwrap().iter().find(|l| l["domain"] == domain).unwrap()["lead_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (jamie, bob, kim) =
        (lead("gardening-blog.example.net"), lead("bobs-site.example.com"), lead("compost-weekly.example.org"));

    let g = api.post(&format!("{P}/emails/generate"), json!({ "topic": "composting at home" })).await.ok(200).clone();
    let p = api
        .post(
            &format!("{P}/emails/personalize"),
            json!({ "base_email": g["body"], "lead_name": "Jamie",
                                                           "lead_website": "gardening-blog.example.net" }),
        )
        .await
        .ok(200)
        .clone();
    let v = api
        .post(
            &format!("{P}/policy/validate"),
            json!({ "recipient_email": "jamie@gardening-blog.example.net",
                                                        "sender_email": FROM, "subject": g["subject"] }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!((v["allowed"].as_bool(), v["legal_basis"].as_str()), (Some(true), Some("legitimate_interest")), "{v}");

    // The workspace asks for approval: the attempt waits for it.
    let send = |lead: &str| json!({ "campaign_id": cid, "lead_id": lead, "subject": g["subject"], "body": p["body"] });
    let a = api.post(&format!("{P}/outreach/send"), send(&bob)).await.ok(200).clone();
    assert_eq!((a["status"].as_str(), a["lead_id"].as_str()), (Some("pending_approval"), Some(bob.as_str())), "{a}");
    // Without approval: sent, and aiosmtpd has it.
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" }, "legalBasis": "consent" } });
    env.agency().patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    // A follow-up three days after each send (set through /v1: the seed has no route for it).
    let follow = json!({ "followUps": [{ "afterDays": 3, "body": "Bumping this." }] });
    api.patch(&format!("/v1/link-building/campaign/{cid}"), follow).await.ok(200);
    let keyed = api.with_header("Idempotency-Key", "send-jamie-1");
    let a = keyed.post(&format!("{P}/outreach/send"), send(&jamie)).await.ok(200).clone();
    assert_eq!(a["status"], "sent", "{a}");
    // The same key again answers the same attempt, and nothing is sent twice.
    let again = keyed.post(&format!("{P}/outreach/send"), send(&jamie)).await.ok(200).clone();
    assert_eq!(
        (again["attempt_id"].clone(), again["status"].as_str()),
        (a["attempt_id"].clone(), Some("sent")),
        "{again}"
    );
    let to_jamie = smtp
        .received()
        .into_iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == "jamie@gardening-blog.example.net"))
        .count();
    assert_eq!(to_jamie, 1, "one email for one key");
    assert_eq!(
        (a["sender_email"].as_str(), a["recipient_email"].as_str()),
        (Some(FROM), Some("jamie@gardening-blog.example.net"))
    );
    let mail = smtp
        .received()
        .into_iter()
        .find(|m| m.rcpt_tos.iter().any(|r| r == "jamie@gardening-blog.example.net"))
        .expect("aiosmtpd received the send");
    let message_id = mail.header("Message-ID").unwrap().trim().trim_matches(['<', '>']).to_owned();
    assert_eq!(a["message_id"], message_id.as_str());
    // Blocked by the policy first: the seed's 403 with the reason, nothing sent.
    api.post(&format!("{P}/suppression"), json!({ "email": "kim@compost-weekly.example.org" })).await.ok(201);
    let r = api.post(&format!("{P}/outreach/send"), send(&kim)).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert_eq!(
        (r.body["detail"].as_str(), r.body["reason"].as_str()),
        (Some("Policy validation failed"), Some("suppressed"))
    );
    let v = api
        .post(
            &format!("{P}/policy/validate"),
            json!({ "recipient_email": "kim@compost-weekly.example.org", "sender_email": FROM }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!((v["allowed"].as_bool(), v["legal_basis"].as_str()), (Some(false), Some("consent")), "{v}");

    let attempts = api.get(&format!("{P}/campaigns/{cid}/attempts")).await.ok(200).clone();
    let statuses: Vec<&str> = attempts.as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending_approval", "sent"], "{attempts}");
    // (A reply stops it when it falls due: the list then shows it `cancelled` with the reason.)
    let follow_ups = |status: &'static str| {
        let (api, cid, jamie, attempt) = (api.clone(), cid.clone(), jamie.clone(), a["attempt_id"].clone());
        async move {
            for _ in 0..200 {
                let f = api.get(&format!("{P}/campaigns/{cid}/follow-ups")).await.ok(200).clone();
                if f[0]["status"] == status {
                    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
                    assert_eq!(
                        (f[0]["lead_id"].as_str(), f[0]["attempt_id"].clone()),
                        (Some(jamie.as_str()), attempt),
                        "{f}"
                    );
                    assert_eq!(f[0]["sent"], false);
                    return f;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("no {status} follow-up");
        }
    };
    let f = follow_ups("scheduled").await;
    assert!(f[0]["scheduled_for"].as_str().is_some_and(|d| d > a["sent_at"].as_str().unwrap()), "{f}");

    // Jamie's reply arrives by IMAP; a poll records it, and the campaign's replies show it.
    imap.append(&REPLY.replace(REPLY_TO, &message_id)).await.unwrap();
    let polled = api.post(&format!("{P}/replies/poll"), json!({ "campaign_id": cid })).await.ok(200).clone();
    assert_eq!((polled["replies_found"].as_u64(), polled["failed"].as_u64()), (Some(1), Some(0)), "{polled}");
    let replies = api.get(&format!("{P}/campaigns/{cid}/replies")).await.ok(200).clone();
    let replies = replies.as_array().unwrap();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["lead_id"], jamie.as_str());
    assert_eq!(replies[0]["attempt_id"], a["attempt_id"], "the reply answers the send it names");
    assert_eq!(replies[0]["from_email"], "jamie@gardening-blog.example.net");
    assert_eq!(replies[0]["subject"], "Re: Quick question about your composting guide");
    assert!(["interested", "not_interested", "out_of_office", "replied"]
        .contains(&replies[0]["classification"].as_str().unwrap()));

    // Analytics from the same facts.
    let an = api.get(&format!("{P}/campaigns/{cid}/analytics?days=30")).await.ok(200).clone();
    assert_eq!(an["total_leads"], 3, "{an}");
    assert_eq!(an["leads_by_status"]["replied"], 1, "{an}");
    assert_eq!(an["leads_by_status"]["discovered"], 2, "{an}");
    assert_eq!(
        (an["total_sends"].as_u64(), an["total_replies"].as_u64(), an["total_attempts"].as_u64()),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(an["rates"]["response_rate"], 1.0, "{an}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(an["daily_send_volume"], json!([{ "date": today, "count": 1 }]), "{an}");
    let by_class: u64 =
        an["replies_by_classification"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_class, 1);
    assert_eq!(
        invalid(&api.get(&format!("{P}/campaigns/{cid}/analytics?days=0")).await)["loc"],
        json!(["query", "days"])
    );
    let snap = api.get(&format!("{P}/reporting/snapshot")).await.ok(200).clone();
    assert_eq!((snap["total_sends"].as_u64(), snap["total_replies"].as_u64()), (Some(1), Some(1)), "{snap}");

    // CSV exports in the peer's columns.
    let r = api.get(&format!("{P}/campaigns/{cid}/export/leads")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.header("content-disposition"), Some(format!("attachment; filename=leads_{cid}.csv").as_str()));
    let lines: Vec<&str> = r.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "lead_id,campaign_id,domain,page_title,email,status,discovery_source,created_at,website_url,quality_score,relevance_score,guest_post_likelihood");
    assert_eq!(lines.len(), 4, "{}", r.text);
    assert!(lines.iter().any(|l| l.starts_with(&jamie) && l.contains(",replied,")), "{}", r.text);
    let r = api.get(&format!("{P}/campaigns/{cid}/export/attempts")).await;
    assert!(r.text.starts_with("attempt_id,lead_id,campaign_id,sender_email,subject,status,sent_at,created_at\r\n"));
    assert_eq!(r.text.matches("\r\n").count(), 3, "{}", r.text);
    let r = api.get(&format!("{P}/campaigns/{cid}/export/replies")).await;
    assert!(r.text.starts_with("reply_id,attempt_id,from_email,subject,classification,received_at\r\n"));
    assert!(r.text.contains("jamie@gardening-blog.example.net"), "{}", r.text);

    // Another workspace sees none of it.
    for path in ["attempts", "follow-ups", "replies", "analytics", "export/leads"] {
        detail(&other.get(&format!("{P}/campaigns/{cid}/{path}")).await, 404, "Resource not found");
    }
    detail(&other.post(&format!("{P}/outreach/send"), send(&jamie)).await, 404, "Resource not found");
    assert_eq!(other.get(&format!("{P}/reporting/snapshot")).await.ok(200)["total_sends"], 0);
}

each_backend!(the_seed_flow_end_to_end, full_flow);
