//! Inbound mail, black-box on both backends: replies matched to the send they answer, auto-replies,
//! unsubscribes, bounces, unsolicited requests, assignment, listing, limits and isolation.

mod common;
use serde_json::{json, Value};

const REPLY_PRICE: &str = include_str!("fixtures/inbound/reply_price_gmail.eml");
const OOO: &str = include_str!("fixtures/inbound/ooo_auto_reply.eml");
const UNSUBSCRIBE: &str = include_str!("fixtures/inbound/reply_unsubscribe.eml");
const HARD_BOUNCE: &str = include_str!("fixtures/inbound/dsn_hard_bounce.eml");
const GUEST_POST: &str = include_str!("fixtures/inbound/request_guest_post.eml");

const INBOUND: &str = "/v1/link-building/inbound";

async fn relationship(api: &common::Api, domain: &str) -> String {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    r.ok(201)["id"].as_str().unwrap().to_owned()
}

/// What the send path records: an EMAIL_SENT naming the Message-ID it sent.
async fn sent(api: &common::Api, rel: &str, message_id: &str) {
    let body = json!({"relationshipId": rel, "type": "EMAIL_SENT", "subject": "Hello",
                      "metadata": {"messageId": message_id}});
    api.post("/v1/link-building/crm/event", body).await.ok(201);
}

async fn status(api: &common::Api, rel: &str) -> String {
    let r = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await;
    r.ok(200)["status"].as_str().unwrap().to_owned()
}

async fn events(api: &common::Api, rel: &str) -> Vec<Value> {
    let r = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    r.ok(200)["data"].as_array().unwrap().clone()
}

async fn receive(api: &common::Api, raw: &str) -> common::Resp {
    api.post(&format!("{INBOUND}/email"), json!({ "raw": raw })).await
}

fn count(v: &Value) -> usize {
    v["data"].as_array().unwrap().len()
}

on_both_backends!(inbound_mail_end_to_end, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let other_ws = agency.create_workspace("Beta").await;
    let api = agency.with_key(&agency.create_key(&ws, None).await);
    let other = agency.with_key(&agency.create_key(&other_ws, None).await);

    // A reply to our send: matched by In-Reply-To, recorded as EMAIL_RECEIVED.
    let garden = relationship(&api, "gardening-blog.example.net").await;
    sent(&api, &garden, "<0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com>").await;
    let r = receive(&api, REPLY_PRICE).await;
    let reply = r.ok(201).clone();
    assert!(reply["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(reply["matched"], true);
    assert_eq!(reply["relationshipId"], garden.as_str());
    assert_eq!((reply["class"].as_str(), reply["classRule"].as_str()), (Some("asks_price"), Some("price_question")));
    assert_eq!(reply["from"], "jamie@gardening-blog.example.net");
    assert!(reply["intent"].is_null());
    let evs = events(&api, &garden).await;
    let received = evs.iter().find(|e| e["type"] == "EMAIL_RECEIVED").expect("EMAIL_RECEIVED recorded");
    assert_eq!(received["id"], reply["eventId"]);
    assert_eq!(received["metadata"]["replyClass"], "asks_price");
    assert_eq!(received["metadata"]["inReplyTo"], "0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com");
    assert!(received["content"].as_str().unwrap().contains("what\nbudget did you have in mind"));
    assert!(!received["content"].as_str().unwrap().contains("> Hi Jamie"), "quoted history is not the reply");
    assert_eq!(status(&api, &garden).await, "ACTIVELY_ENGAGED");

    // The same message handed over again: the stored one, nothing recorded twice.
    let again = receive(&api, REPLY_PRICE).await;
    assert_eq!(again.ok(200)["id"], reply["id"]);
    assert_eq!(events(&api, &garden).await.iter().filter(|e| e["type"] == "EMAIL_RECEIVED").count(), 1);
    assert_eq!(api.get(&format!("{INBOUND}/{}", reply["id"].as_str().unwrap())).await.ok(200)["id"], reply["id"]);

    // An out-of-office auto-reply: matched and recorded, but the status does not move.
    let travel = relationship(&api, "reisemagazin.example.de").await;
    sent(&api, &travel, "0195bc01e9a27f3e8d10b2c3d4e5f6a7@outreach.example.com").await;
    let before = status(&api, &travel).await;
    let r = receive(&api, OOO).await;
    let ooo = r.ok(201).clone();
    assert_eq!((ooo["matched"].as_bool(), ooo["class"].as_str()), (Some(true), Some("out_of_office")));
    assert_eq!(ooo["classRule"], "auto_reply_header");
    assert_eq!(status(&api, &travel).await, before);
    assert!(events(&api, &travel).await.iter().any(|e| e["type"] == "EMAIL_RECEIVED"));

    // A reply asking to stop, matched through References: the sender is suppressed here.
    let recipes = relationship(&api, "recipes.example.org").await;
    sent(&api, &recipes, "0195d0aa11bb7c2d8e90f1a2b3c4d5e6@outreach.example.com").await;
    let r = receive(&api, UNSUBSCRIBE).await;
    let unsub = r.ok(201).clone();
    assert_eq!(
        (unsub["relationshipId"].as_str(), unsub["class"].as_str()),
        (Some(recipes.as_str()), Some("unsubscribe"))
    );
    let s = api.get("/v1/suppression?email=sam@recipes.example.org").await;
    let entry = &s.ok(200)["data"][0];
    assert_eq!((entry["source"].as_str(), entry["workspaceId"].as_str()), (Some("unsubscribe"), Some(ws.as_str())));
    assert_eq!(count(other.get("/v1/suppression?email=sam@recipes.example.org").await.ok(200)), 0);

    // A hard bounce: EMAIL_BOUNCED on the relationship, and the address suppressed for this
    // workspace (posted through the API, it is the workspace's word, not the platform's evidence).
    let bounced = relationship(&api, "composting.example.net").await;
    sent(&api, &bounced, "0195b3c2a1e47d3c9f00a1b2c3d4e5f6@outreach.example.com").await;
    let r = receive(&api, HARD_BOUNCE).await;
    let dsn = r.ok(201).clone();
    assert_eq!((dsn["matched"].as_bool(), dsn["class"].as_str()), (Some(true), Some("bounce")));
    assert_eq!(dsn["bounce"]["recipient"], "j.doe@gardening-blog.example.net");
    assert_eq!((dsn["bounce"]["status"].as_str(), dsn["bounce"]["hard"].as_bool()), (Some("5.1.1"), Some(true)));
    let ev = events(&api, &bounced).await.into_iter().find(|e| e["type"] == "EMAIL_BOUNCED").expect("bounce recorded");
    assert_eq!(ev["id"], dsn["eventId"]);
    let s = api.get("/v1/suppression?email=J.Doe@gardening-blog.example.net").await;
    let entry = &s.ok(200)["data"][0];
    assert_eq!((entry["source"].as_str(), entry["workspaceId"].as_str()), (Some("bounce"), Some(ws.as_str())));
    assert_eq!(entry["provenance"]["channel"], "api");
    assert_eq!(count(other.get("/v1/suppression?email=J.Doe@gardening-blog.example.net").await.ok(200)), 0);

    // Someone pitching us, answering nothing we sent: kept unmatched, with an intent.
    let r = receive(&api, GUEST_POST).await;
    let pitch = r.ok(201).clone();
    assert_eq!(pitch["matched"], false);
    assert!(pitch["relationshipId"].is_null() && pitch["class"].is_null());
    assert_eq!(pitch["intent"], "guest_post_pitch");
    assert!(pitch["intentRule"].as_str().is_some());

    // Lists, newest first, filtered.
    let all = api.get(INBOUND).await;
    assert_eq!(count(all.ok(200)), 5);
    assert_eq!(all.body["data"][0]["id"], pitch["id"]);
    assert_eq!(api.get(&format!("{INBOUND}?matched=false")).await.ok(200)["data"][0]["id"], pitch["id"]);
    assert_eq!(count(api.get(&format!("{INBOUND}?matched=false")).await.ok(200)), 1);
    assert_eq!(count(api.get(&format!("{INBOUND}?matched=true")).await.ok(200)), 4);
    let ooo_only = api.get(&format!("{INBOUND}?class=out_of_office")).await;
    assert_eq!((count(ooo_only.ok(200)), &ooo_only.body["data"][0]["id"]), (1, &ooo["id"]));
    assert_eq!(count(api.get(&format!("{INBOUND}?relationshipId={garden}")).await.ok(200)), 1);
    let page = api.get(&format!("{INBOUND}?limit=2")).await;
    assert_eq!(count(page.ok(200)), 2);
    let next = page.body["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(count(api.get(&format!("{INBOUND}?limit=2&cursor={next}")).await.ok(200)), 2);
    api.get(&format!("{INBOUND}?class=angry")).await.problem(400, "invalid_request");

    // Assigning the pitch to a relationship records it there, once.
    let pitch_id = pitch["id"].as_str().unwrap().to_owned();
    let assigned = api.post(&format!("{INBOUND}/{pitch_id}/assign"), json!({"relationshipId": garden})).await;
    let assigned = assigned.ok(200).clone();
    assert_eq!(
        (assigned["matched"].as_bool(), assigned["relationshipId"].as_str()),
        (Some(true), Some(garden.as_str()))
    );
    assert!(assigned["eventId"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(events(&api, &garden).await.iter().filter(|e| e["type"] == "EMAIL_RECEIVED").count(), 2);
    assert_eq!(count(api.get(&format!("{INBOUND}?relationshipId={garden}")).await.ok(200)), 2);
    api.post(&format!("{INBOUND}/{pitch_id}/assign"), json!({"relationshipId": garden}))
        .await
        .problem(409, "inbound_message_already_matched");
    let reply_id = reply["id"].as_str().unwrap();
    api.post(&format!("{INBOUND}/{reply_id}/assign"), json!({"relationshipId": travel}))
        .await
        .problem(409, "inbound_message_already_matched");

    // Another workspace sees none of it.
    other.get(&format!("{INBOUND}/{pitch_id}")).await.problem(404, "inbound_message_not_found");
    assert_eq!(count(other.get(INBOUND).await.ok(200)), 0);
    other
        .post(&format!("{INBOUND}/{pitch_id}/assign"), json!({"relationshipId": garden}))
        .await
        .problem(404, "inbound_message_not_found");
    api.get(&format!("{INBOUND}/msg_nope")).await.problem(400, "invalid_request");

    // Limits and bad input.
    let huge = format!("{GUEST_POST}\n{}", "x".repeat(410 * 1024));
    receive(&api, &huge).await.problem(413, "payload_too_large");
    api.post(&format!("{INBOUND}/email"), json!({})).await.problem(400, "invalid_request");
    let reader = agency.with_key(&agency.create_key(&ws, Some(&["crm:read"])).await);
    receive(&reader, GUEST_POST).await.problem(403, "insufficient_scope");
    assert_eq!(count(reader.get(INBOUND).await.ok(200)), 5);
});
