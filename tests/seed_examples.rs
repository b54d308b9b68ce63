//! Seed 000's example requests and use cases A–D, against the real binary with an Authorization
//! header added, on both backends.

mod common;
use serde_json::{json, Value};
use std::collections::BTreeMap;

on_both_backends!(seed_000_examples_and_use_cases, |env| {
    let agency = env.agency();
    let acme = agency.create_workspace("Acme PM").await;
    let beta = agency.create_workspace("Beta").await;
    let api = agency.with_key(&agency.create_key(&acme, None).await);
    let other = agency.with_key(&agency.create_key(&beta, None).await);

    // Partners found by search and by competitor research.
    let mut rels = BTreeMap::new();
    for (domain, source) in
        [("engineering-blog.com", "SEARCH"), ("devleadweekly.com", "COMPETITOR"), ("pm-weekly.io", "SEARCH")]
    {
        let r = api.post("/v1/link-building/crm/relationship", json!({"domain": domain, "source": source,
            "targetBlogPost": format!("https://{domain}/best-pm-tools"), "ourContent": "https://acme.com/blog/engineering-team-capacity-tracking"})).await;
        rels.insert(domain, r.ok(201).clone());
    }
    let eb = rels["engineering-blog.com"].clone();
    let eb_id = eb["id"].as_str().unwrap().to_owned();
    let eb_acct = eb["accountId"].as_str().unwrap().to_owned();
    let contact = api
        .post(
            "/v1/link-building/crm/contact",
            json!({"accountId": eb_acct, "firstName": "Marina", "lastName": "Olafsson",
        "email": "marina@engineering-blog.com", "position": "Senior Editor", "seniority": "manager"}),
        )
        .await;
    let ct = contact.ok(201)["id"].as_str().unwrap().to_owned();

    // The event log example: a send and its reply.
    api.post("/v1/link-building/crm/event", json!({"relationshipId": eb_id, "contactId": ct, "type": "EMAIL_SENT",
        "subject": "Section 7 of your PM tools roundup", "content": "Hi Marina, ...", "metadata": {"instantlyMessageId": "im_1"},
        "occurredAt": "2026-05-08T09:14:23Z"})).await.ok(201);
    api.post("/v1/link-building/crm/event", json!({"relationshipId": eb_id, "type": "EMAIL_RECEIVED",
        "subject": "RE: Section 7 of your PM tools roundup", "content": "Sure, send the methodology ...", "occurredAt": "2026-05-09T14:22:00Z"})).await.ok(201);
    let log = api
        .get(&format!("/v1/link-building/crm/event?relationshipId={eb_id}&type=EMAIL_SENT,EMAIL_RECEIVED&limit=50"))
        .await;
    let log = log.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(log.len(), 2);
    for field in ["id", "relationshipId", "type", "subject", "content", "occurredAt"] {
        assert!(log[0].get(field).is_some(), "event field {field}");
    }
    assert_eq!(log[1]["contactId"], ct.as_str());
    assert_eq!(log[1]["metadata"]["instantlyMessageId"], "im_1");

    // POST /event: a manual note.
    api.post(
        "/v1/link-building/crm/event",
        json!({"relationshipId": eb_id, "type": "NOTE_ADDED", "subject": "Off-platform reply",
        "content": "Marina replied on LinkedIn DM — asked to schedule a call"}),
    )
    .await
    .ok(201);

    // Use case A: daily engaged-partners digest.
    let a = api.get("/v1/link-building/crm/relationship?status=ACTIVELY_ENGAGED").await;
    let digest: Vec<(String, String)> = a.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["accountDomain"].as_str().unwrap().to_owned(), r["lastEventAt"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].0, "engineering-blog.com");

    // The relationship list example and PATCH example.
    let r = api
        .patch(
            &format!("/v1/link-building/crm/relationship/{eb_id}"),
            json!({"status": "LINK_PLACED", "priority": "MEDIUM",
        "rawNotes": "Live on /best-pm-tools — confirmed 2026-05-22"}),
        )
        .await;
    r.ok(200);
    let dv = rels["devleadweekly.com"]["id"].as_str().unwrap().to_owned();
    api.post(
        "/v1/link-building/crm/event",
        json!({"relationshipId": dv, "type": "LINK_PLACED",
        "metadata": {"linkUrl": "https://devleadweekly.com/tools"}}),
    )
    .await
    .ok(201);
    let listed = api
        .get("/v1/link-building/crm/relationship?status=ACTIVELY_ENGAGED,LINK_PLACED&since=2026-05-01T00:00:00Z")
        .await;
    let items = listed.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    for field in
        ["id", "accountId", "accountDomain", "status", "priority", "targetBlogPost", "ourContent", "lastEventAt"]
    {
        assert!(items.iter().all(|i| i.get(field).is_some()), "relationship field {field}");
    }

    // Use case B: placement rate per source (`.data | group_by(.source)`).
    let b = api.get("/v1/link-building/crm/relationship?status=LINK_PLACED&since=2026-05-01").await;
    let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
    for r in b.ok(200)["data"].as_array().unwrap() {
        *by_source.entry(r["source"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(by_source, BTreeMap::from([("COMPETITOR".to_owned(), 1), ("SEARCH".to_owned(), 1)]));

    // Use case C: a manual override back to PROSPECTING.
    let c = api
        .patch(
            &format!("/v1/link-building/crm/relationship/{eb_id}"),
            json!({"status": "PROSPECTING",
        "rawNotes": "Re-evaluated; their decline was about timing, not content"}),
        )
        .await;
    assert_eq!(c.ok(200)["status"], "PROSPECTING");

    // The account examples: PATCH prices, then the list filter from seed 000.
    let p = api
        .patch(
            &format!("/v1/link-building/crm/account/{eb_acct}"),
            json!({"priceLinkInsertion": 450,
        "priceContext": "Asking $450 for editorial insertions in 2026"}),
        )
        .await;
    assert_eq!(p.ok(200)["priceLinkInsertion"], 450);
    let got = api.get(&format!("/v1/link-building/crm/account/{eb_acct}")).await;
    let got = got.ok(200).clone();
    assert_eq!(got["relationshipInThisWorkspace"]["id"], eb_id.as_str());
    assert_eq!(got["contacts"][0]["email"], "marina@engineering-blog.com");
    assert!(got["recentEvents"].as_array().unwrap().len() >= 3);
    let list = api.get("/v1/link-building/crm/account?minDR=40&status=NEVER_CONTACTED,IN_DISCUSSION&limit=50").await;
    assert!(list.ok(200)["data"].is_array());

    // Use case D: cross-portfolio intelligence. Another workspace sees the negotiated rate and a
    // DO_NOT_CONTACT flag, but none of our relationship or events.
    api.post(
        &format!(
            "/v1/link-building/crm/account/{}/do-not-contact",
            rels["pm-weekly.io"]["accountId"].as_str().unwrap()
        ),
        json!({"reason": "Asked to be removed from all outreach"}),
    )
    .await
    .ok(200);
    let seen = other.get(&format!("/v1/link-building/crm/account/{eb_acct}")).await;
    let seen = seen.ok(200).clone();
    assert_eq!(seen["priceLinkInsertion"], 450);
    assert_eq!(seen["systemContactStatus"], "RATE_ESTABLISHED");
    assert_eq!(seen["relationshipInThisWorkspace"], Value::Null);
    assert_eq!(seen["recentEvents"].as_array().unwrap().len(), 0);
    let dnc = other.get("/v1/link-building/crm/account?domain=pm-weekly.io").await;
    assert_eq!(dnc.ok(200)["data"][0]["systemContactStatus"], "DO_NOT_CONTACT");
    let history = other.get(&format!("/v1/link-building/crm/account/{eb_acct}/history")).await;
    assert_eq!(history.ok(200)["data"][0]["type"], "PRICE_UPDATED");

    // Seed 002's read-only pattern: one partner's events across all our workspaces.
    let all = agency.get(&format!("/v1/link-building/crm/event?accountId={eb_acct}")).await;
    assert!(all.ok(200)["data"].as_array().unwrap().iter().all(|e| e["organizationId"] == acme.as_str()));

    // Contact discovery is queued, billed work: this workspace has no credits granted, so 402.
    let d = api
        .post(
            "/v1/link-building/crm/contact/discover",
            json!({"accountIds": [eb_acct],
        "roles": ["Editor", "Head of Content", "Marketing Manager"], "seniority": ["manager", "director", "vp"]}),
        )
        .await;
    let p = d.problem(402, "insufficient_credits");
    assert_eq!(p["details"]["required"], 0.4);
});
