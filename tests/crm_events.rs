//! The event log, black-box on both backends: validation, back-dating, filters, paging.

mod common;
use serde_json::{json, Value};

async fn setup(env: &common::Env) -> (common::Api, String) {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.with_key(&agency.create_key(&ws, None).await);
    let rel = api.post("/v1/link-building/crm/relationship", json!({"domain": "engineering-blog.com"})).await;
    let id = rel.ok(201)["id"].as_str().unwrap().to_owned();
    (api, id)
}

on_both_backends!(manual_events_are_validated, |env| {
    let (api, rel) = setup(&env).await;
    let post = |body: Value| {
        let api = api.clone();
        async move { api.post("/v1/link-building/crm/event", body).await }
    };
    let cases = [
        (json!({"relationshipId": rel, "type": "EMAIL_BOUNCED"}), "type"),
        (json!({"relationshipId": rel, "type": "PRICE_UPDATED"}), "type"),
        (json!({"relationshipId": rel, "type": "TELEPATHY"}), "type"),
        (json!({"relationshipId": rel, "type": "LINK_PLACED"}), "metadata.linkUrl"),
        (json!({"relationshipId": rel, "type": "LINK_PLACED", "metadata": {"linkUrl": "ftp://x"}}), "metadata.linkUrl"),
        (json!({"relationshipId": rel, "type": "STATUS_CHANGED", "metadata": {"to": "DONE"}}), "metadata.to"),
        (
            json!({"relationshipId": rel, "type": "EMAIL_RECEIVED", "metadata": {"replyClass": "angry"}}),
            "metadata.replyClass",
        ),
        (json!({"relationshipId": rel, "type": "NOTE_ADDED", "metadata": "text"}), "metadata"),
        (json!({"relationshipId": rel, "type": "NOTE_ADDED", "occurredAt": "yesterday"}), "occurredAt"),
        (json!({"relationshipId": rel, "type": "NOTE_ADDED", "occurredAt": "2099-01-01T00:00:00Z"}), "occurredAt"),
        (json!({"relationshipId": "rel_bad", "type": "NOTE_ADDED"}), "relationshipId"),
        (json!({"relationshipId": rel, "type": "NOTE_ADDED", "contactId": "nope"}), "contactId"),
        (json!({"relationshipId": rel, "type": "NOTE_ADDED", "extra": 1}), "extra"),
        (json!({"type": "NOTE_ADDED"}), "relationshipId"),
    ];
    for (body, field) in cases {
        let r = post(body.clone()).await;
        assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], field, "{body}");
    }
    post(json!({"relationshipId": "rel_01M83BWKFZERNB10JQ53ZE5AN5", "type": "NOTE_ADDED"}))
        .await
        .problem(404, "relationship_not_found");
    post(json!({"relationshipId": rel, "type": "NOTE_ADDED", "contactId": "ct_01M83BWKFZERNB10JQ53ZE5AN5"}))
        .await
        .problem(404, "contact_not_found");
    // Nothing above was written.
    let log = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await;
    assert_eq!(log.ok(200)["data"].as_array().unwrap().len(), 0);
    // A read-only key cannot write.
    let agency = env.agency();
    let ws = api.get("/v1/workspace").await.body["id"].as_str().unwrap().to_owned();
    let reader = agency.with_key(&agency.create_key(&ws, Some(&["crm:read"])).await);
    reader
        .post("/v1/link-building/crm/event", json!({"relationshipId": rel, "type": "NOTE_ADDED"}))
        .await
        .problem(403, "insufficient_scope");
    reader.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await.ok(200);
});

on_both_backends!(filters_order_and_pages, |env| {
    let (api, rel) = setup(&env).await;
    for (i, t) in
        ["EMAIL_SENT", "EMAIL_RECEIVED", "NOTE_ADDED", "CALL_SCHEDULED", "EMAIL_SENT", "NOTE_ADDED", "CONTACT_RESEARCH"]
            .iter()
            .enumerate()
    {
        let body = json!({"relationshipId": rel, "type": t, "occurredAt": format!("2026-05-{:02}T09:00:00Z", 10 + i)});
        api.post("/v1/link-building/crm/event", body).await.ok(201);
    }
    let get = |q: String| {
        let api = api.clone();
        async move {
            let r = api.get(&format!("/v1/link-building/crm/event?{q}")).await;
            r.ok(200).clone()
        }
    };
    let days = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|e| e["occurredAt"].as_str().unwrap()[8..10].to_owned()).collect()
    };
    assert_eq!(
        days(&get(format!("relationshipId={rel}")).await),
        ["16", "15", "14", "13", "12", "11", "10"],
        "newest first"
    );
    assert_eq!(days(&get(format!("relationshipId={rel}&order=asc&limit=3")).await), ["10", "11", "12"]);
    assert_eq!(days(&get(format!("relationshipId={rel}&type=EMAIL_SENT,EMAIL_RECEIVED")).await), ["14", "11", "10"]);
    assert_eq!(
        days(&get(format!("relationshipId={rel}&since=2026-05-12&until=2026-05-14T09:00:00Z")).await),
        ["14", "13", "12"]
    );
    assert_eq!(days(&get("since=2026-05-15".to_owned()).await), ["16", "15"], "the workspace's whole log");
    let empty: [&str; 0] = [];
    assert_eq!(days(&get(format!("relationshipId={rel}&since=2026-05-14&until=2026-05-12")).await), empty);
    // Pages: 3 + 3 + 1, nothing twice.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(format!("relationshipId={rel}&limit=3{cursor}")).await;
        seen.extend(days(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["16", "15", "14", "13", "12", "11", "10"]);
    api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}&order=sideways"))
        .await
        .problem(400, "invalid_request");
    api.get("/v1/link-building/crm/event?type=NOPE").await.problem(400, "invalid_request");
    api.get("/v1/link-building/crm/event?since=last-week").await.problem(400, "invalid_request");
    api.get("/v1/link-building/crm/event?cursor=abc.def").await.problem(400, "invalid_cursor");
    // A cursor from one relationship's log is refused for another list.
    let c = get(format!("relationshipId={rel}&limit=2")).await["nextCursor"].as_str().unwrap().to_owned();
    api.get(&format!("/v1/link-building/crm/event?cursor={c}")).await.problem(400, "invalid_cursor");
});

on_both_backends!(link_placed_and_rejections_drive_status, |env| {
    let (api, rel) = setup(&env).await;
    let status = || {
        let api = api.clone();
        let rel = rel.clone();
        async move {
            api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.body["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    api.post("/v1/link-building/crm/event", json!({"relationshipId": rel, "type": "CALL_SCHEDULED"})).await.ok(201);
    assert_eq!(status().await, "ACTIVELY_ENGAGED");
    api.post("/v1/link-building/crm/event", json!({"relationshipId": rel, "type": "REJECTED"})).await.ok(201);
    assert_eq!(status().await, "NOT_INTERESTED");
    let placed = json!({"relationshipId": rel, "type": "LINK_PLACED", "metadata": {"linkUrl": "https://engineering-blog.com/best-pm-tools"}});
    api.post("/v1/link-building/crm/event", placed).await.ok(201);
    assert_eq!(status().await, "LINK_PLACED");
    api.post("/v1/link-building/crm/event", json!({"relationshipId": rel, "type": "REJECTED"})).await.ok(201);
    assert_eq!(status().await, "LINK_PLACED");
    // POST /event may also carry a status change, logged like a PATCH.
    let r = api
        .post(
            "/v1/link-building/crm/event",
            json!({"relationshipId": rel, "type": "STATUS_CHANGED", "metadata": {"to": "INACTIVE"}}),
        )
        .await;
    assert_eq!(r.ok(201)["metadata"]["from"], "LINK_PLACED");
    assert_eq!(status().await, "INACTIVE");
    // Archiving keeps the log; the list leaves it out unless asked.
    api.delete(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(204);
    assert_eq!(api.get("/v1/link-building/crm/relationship").await.ok(200)["data"].as_array().unwrap().len(), 0);
    let all = api.get("/v1/link-building/crm/relationship?includeArchived=true").await;
    assert_eq!(all.ok(200)["data"][0]["archived"], true);
    assert_eq!(
        api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}")).await.ok(200)["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // A second relationship with the same partner is refused even while archived; PATCH restores.
    let again = api.post("/v1/link-building/crm/relationship", json!({"domain": "engineering-blog.com"})).await;
    assert_eq!(again.problem(409, "relationship_exists")["details"]["archived"], true);
    let restored = api.patch(&format!("/v1/link-building/crm/relationship/{rel}"), json!({"archived": false})).await;
    assert_eq!(restored.ok(200)["archived"], false);
    assert_eq!(api.get("/v1/link-building/crm/relationship").await.ok(200)["data"].as_array().unwrap().len(), 1);
});

on_both_backends!(concurrent_status_patches_lose_nothing, |env| {
    let (api, rel) = setup(&env).await;
    let path = format!("/v1/link-building/crm/relationship/{rel}");
    let statuses = ["QUEUED", "APPROVED_TO_CONTACT", "ACTIVELY_ENGAGED", "NOT_INTERESTED", "INACTIVE", "QUEUED"];
    let tasks: Vec<_> = statuses
        .iter()
        .map(|s| {
            let (api, path) = (api.clone(), path.clone());
            let s = s.to_string();
            tokio::spawn(async move { api.patch(&path, json!({"status": s})).await.status.as_u16() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            409 => {}
            s => panic!("status {s}"),
        }
    }
    let log = api.get(&format!("/v1/link-building/crm/event?relationshipId={rel}&type=STATUS_CHANGED&order=asc")).await;
    let changes = log.ok(200)["data"].as_array().unwrap().clone();
    assert!(changes.len() <= ok && !changes.is_empty());
    // The log is a chain: each change starts where the previous one ended.
    for pair in changes.windows(2) {
        assert_eq!(pair[0]["metadata"]["to"], pair[1]["metadata"]["from"]);
    }
    let last_to = changes.last().unwrap()["metadata"]["to"].clone();
    assert_eq!(api.get(&path).await.body["status"], last_to);
    // If-Match: a stale version is refused.
    let stale = api.with_header("If-Match", "\"1\"").patch(&path, json!({"priority": "LOW"})).await;
    stale.problem(412, "precondition_failed");
});
