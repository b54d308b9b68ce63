//! CRM account changes: price PATCH (PRICE_UPDATED in the shared log, If-Match, protected and
//! unknown fields), concurrent writers on the shared account item, sticky DO_NOT_CONTACT.

mod common;
use common::Api;
use serde_json::{json, Value};

const ACCOUNTS: &str = "/v1/link-building/crm/account";

/// Starts a relationship in the workspace `api` acts in; a new domain creates its account.
/// Returns (relationship id, account id).
async fn relate(api: &Api, domain: &str) -> (String, String) {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    let b = r.ok(201);
    (b["id"].as_str().unwrap().to_owned(), b["accountId"].as_str().unwrap().to_owned())
}

fn domains(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|a| a["domain"].as_str().unwrap().to_owned()).collect()
}

async fn history_types(api: &Api, acct: &str) -> Vec<String> {
    let r = api.get(&format!("{ACCOUNTS}/{acct}/history")).await;
    r.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

on_both_backends!(price_patch_is_logged_and_guarded, |env| {
    let agency = env.agency();
    let (ws_a, ws_b) = (agency.create_workspace("A").await, agency.create_workspace("B").await);
    let (a, b) = (agency.in_workspace(&ws_a), agency.in_workspace(&ws_b));
    let (_, acct) = relate(&a, "engineering-blog.com").await;
    let path = format!("{ACCOUNTS}/{acct}");
    let r = a
        .patch(
            &path,
            json!({ "priceLinkInsertion": 450, "priceContext": "Asking $450 for editorial insertions in 2026" }),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(body["priceLinkInsertion"], 450);
    assert_eq!(body["priceGuestPost"], Value::Null);
    assert_eq!(body["systemContactStatus"], "RATE_ESTABLISHED");
    assert!(body["pricesUpdatedAt"].as_str().is_some());
    // Every workspace sees the price and the change in the shared log.
    assert_eq!(b.get(&path).await.ok(200)["systemContactStatus"], "RATE_ESTABLISHED");
    let h = b.get(&format!("{path}/history")).await;
    let log = h.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["type"], "PRICE_UPDATED");
    assert_eq!(log[0]["accountId"], acct.as_str());
    assert_eq!(log[0]["relationshipId"], Value::Null);
    assert_eq!(log[0]["metadata"]["details"], json!({ "priceLinkInsertion": { "from": null, "to": 450 } }));
    assert_eq!(log[0]["metadata"]["workspaceId"], ws_a.as_str());

    // Same price again, or notes only: no price event.
    a.patch(&path, json!({ "priceLinkInsertion": 450 })).await.ok(200);
    let notes = a.patch(&path, json!({ "rawNotes": "Editor answers within a day" })).await;
    assert_eq!(notes.ok(200)["rawNotes"], "Editor answers within a day");
    assert_eq!(history_types(&b, &acct).await, vec!["PRICE_UPDATED"]);
    // A second change names both prices' moves.
    let r = a.patch(&path, json!({ "priceLinkInsertion": 500, "priceGuestPost": 900 })).await;
    r.ok(200);
    let latest = b.get(&format!("{path}/history?limit=1")).await.ok(200).clone();
    assert_eq!(
        latest["data"][0]["metadata"]["details"],
        json!({ "priceLinkInsertion": { "from": 450, "to": 500 }, "priceGuestPost": { "from": null, "to": 900 } })
    );
    let older = b.get(&format!("{path}/history?limit=1&cursor={}", latest["nextCursor"].as_str().unwrap())).await;
    assert_eq!(older.ok(200)["data"][0]["metadata"]["details"]["priceLinkInsertion"]["to"], 450);

    // What a workspace may not do.
    let p = a.patch(&path, json!({ "systemContactStatus": "NEVER_CONTACTED", "domain": "x.com" })).await;
    assert_eq!(p.problem(403, "system_field_protected")["details"]["field"], "systemContactStatus");
    let p = a.patch(&path, json!({ "domain": "other.com" })).await;
    assert_eq!(p.problem(400, "invalid_request")["errors"][0]["field"], "domain");
    a.patch(&path, json!({ "domainRating": 90 })).await.problem(400, "invalid_request");
    a.patch(&path, json!({ "priceGuestPost": -1 })).await.problem(400, "invalid_request");
    a.patch(&path, json!({ "priceGuestPost": 12.5 })).await.problem(400, "invalid_request");
    let current = a.get(&path).await.header("etag").unwrap().to_owned();
    let stale = a.with_header("If-Match", "\"1\"").patch(&path, json!({ "priceGuestPost": 1 })).await;
    assert_eq!(stale.problem(412, "precondition_failed")["details"]["currentETag"], current.as_str());
    let fresh = a.with_header("If-Match", &current).patch(&path, json!({ "priceGuestPost": null })).await;
    assert_eq!(fresh.ok(200)["priceGuestPost"], Value::Null);
    assert_eq!(b.get(&path).await.ok(200)["priceGuestPost"], Value::Null);
    a.patch(&format!("{ACCOUNTS}/acct_00000000000000000000000000"), json!({ "rawNotes": "x" }))
        .await
        .problem(404, "account_not_found");
    let reader = agency.create_key(&ws_a, Some(&["crm:read"])).await;
    a.with_key(&reader).patch(&path, json!({ "rawNotes": "x" })).await.problem(403, "insufficient_scope");
});

on_both_backends!(price_patches_keep_concurrent_contact_counters, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("A").await;
    let a = agency.in_workspace(&ws);
    let (rel, acct) = relate(&a, "busy-partner.com").await;
    // Sends add to the account's counters while prices are patched: an Update, not a whole-item
    // put, keeps every addition.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (a, rel, path) = (a.clone(), rel.clone(), format!("{ACCOUNTS}/{acct}"));
        tasks.push(tokio::spawn(async move {
            let sent = a.post("/v1/link-building/crm/event", json!({ "relationshipId": rel, "type": "EMAIL_SENT" }));
            let patched = a.patch(&path, json!({ "priceGuestPost": 100 + i }));
            let (s, p) = futures::join!(sent, patched);
            (s.status.as_u16(), p.status.as_u16())
        }));
    }
    let mut sends = 0;
    let mut patches = 0;
    for t in tasks {
        let (s, p) = t.await.unwrap();
        assert!(s == 201 || s == 409, "send: {s}");
        assert!(p == 200 || p == 409, "patch: {p}");
        sends += (s == 201) as i64;
        patches += (p == 200) as i64;
    }
    assert!(patches >= 1);
    let got = a.get(&format!("{ACCOUNTS}/{acct}")).await;
    let d = got.ok(200);
    assert_eq!(d["contactAttemptCount"], sends, "no send lost to a price write");
    assert_eq!(got.header("etag"), Some(format!("\"{}\"", 1 + patches).as_str()));
    let prices = history_types(&a, &acct).await;
    assert_eq!(prices.len() as i64, patches, "one PRICE_UPDATED per successful price change");
});

on_both_backends!(do_not_contact_is_shared_sticky_and_idempotent, |env| {
    let agency = env.agency();
    let (ws_a, ws_b) = (agency.create_workspace("A").await, agency.create_workspace("B").await);
    let (a, b) = (agency.in_workspace(&ws_a), agency.in_workspace(&ws_b));
    let (_, acct) = relate(&a, "leave-me-alone.com").await;
    relate(&b, "happy-partner.com").await;
    let dnc = format!("{ACCOUNTS}/{acct}/do-not-contact");
    a.post(&dnc, json!({})).await.problem(400, "invalid_request");
    a.post(&dnc, json!({ "reason": "   " })).await.problem(400, "invalid_request");
    a.post(&dnc, json!({ "reason": "x".repeat(2001) })).await.problem(400, "invalid_request");
    a.post(&format!("{ACCOUNTS}/acct_00000000000000000000000000/do-not-contact"), json!({ "reason": "x" }))
        .await
        .problem(404, "account_not_found");

    let r = a.post(&dnc, json!({ "reason": "Asked to be removed from all outreach" })).await;
    let body = r.ok(200);
    assert_eq!(body["systemContactStatus"], "DO_NOT_CONTACT");
    assert_eq!(body["doNotContactReason"], "Asked to be removed from all outreach");
    assert!(body["doNotContactAt"].as_str().is_some());
    assert_eq!(r.header("etag"), Some("\"2\""));
    // Every workspace, every view.
    let seen_by_b = b.get(&format!("{ACCOUNTS}/{acct}")).await;
    assert_eq!(seen_by_b.ok(200)["systemContactStatus"], "DO_NOT_CONTACT");
    assert_eq!(domains(b.get(&format!("{ACCOUNTS}?status=DO_NOT_CONTACT")).await.ok(200)), vec!["leave-me-alone.com"]);
    assert_eq!(domains(b.get(&format!("{ACCOUNTS}?status=NEVER_CONTACTED")).await.ok(200)), vec!["happy-partner.com"]);
    let log = b.get(&format!("{ACCOUNTS}/{acct}/history")).await.ok(200).clone();
    assert_eq!(log["data"][0]["type"], "DO_NOT_CONTACT_SET");
    assert_eq!(log["data"][0]["metadata"]["details"]["reason"], "Asked to be removed from all outreach");

    // Again, from another workspace: 200, the first reason stands, nothing new written.
    let again = b.post(&dnc, json!({ "reason": "Different reason" })).await;
    assert_eq!(again.ok(200)["doNotContactReason"], "Asked to be removed from all outreach");
    assert_eq!(again.header("etag"), Some("\"2\""));
    assert_eq!(history_types(&b, &acct).await, vec!["DO_NOT_CONTACT_SET"]);
    // A price PATCH cannot undo it, nor can a status PATCH.
    let p = a.patch(&format!("{ACCOUNTS}/{acct}"), json!({ "priceLinkInsertion": 100 })).await;
    assert_eq!(p.ok(200)["systemContactStatus"], "DO_NOT_CONTACT");
    a.patch(&format!("{ACCOUNTS}/{acct}"), json!({ "systemContactStatus": "NEVER_CONTACTED" }))
        .await
        .problem(403, "system_field_protected");
    assert_eq!(b.get(&format!("{ACCOUNTS}/{acct}")).await.ok(200)["systemContactStatus"], "DO_NOT_CONTACT");
    assert_eq!(history_types(&b, &acct).await, vec!["PRICE_UPDATED", "DO_NOT_CONTACT_SET"]);
});
