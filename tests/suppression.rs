//! The suppression list, black-box on both backends.

mod common;
use serde_json::json;

on_both_backends!(suppression_list_per_workspace, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let other_ws = agency.create_workspace("Beta").await;
    let api = agency.with_key(&agency.create_key(&ws, None).await);
    let other = agency.with_key(&agency.create_key(&other_ws, None).await);

    let r =
        api.post("/v1/suppression", json!({"email": "Marina@Engineering-Blog.com", "reason": "asked by phone"})).await;
    let e = r.ok(201).clone();
    assert_eq!((e["kind"].as_str(), e["value"].as_str()), (Some("email"), Some("marina@engineering-blog.com")));
    assert_eq!((e["source"].as_str(), e["workspaceId"].as_str()), (Some("manual"), Some(ws.as_str())));
    // Adding it again changes nothing.
    assert_eq!(
        api.post("/v1/suppression", json!({"email": "marina@engineering-blog.com"})).await.ok(200)["createdAt"],
        e["createdAt"]
    );
    api.post("/v1/suppression", json!({"domain": "https://www.spammy.example/x"})).await.ok(201);

    // What blocks an address: the address itself, or its whole domain.
    let q = api.get("/v1/suppression?email=MARINA@engineering-blog.com").await;
    assert_eq!(q.ok(200)["data"].as_array().unwrap().len(), 1);
    let q = api.get("/v1/suppression?email=anyone@spammy.example").await;
    assert_eq!(q.ok(200)["data"][0]["kind"], "domain");
    assert_eq!(api.get("/v1/suppression?email=someone@else.com").await.ok(200)["data"].as_array().unwrap().len(), 0);
    let all = api.get("/v1/suppression?limit=1").await;
    assert_eq!(all.ok(200)["data"].as_array().unwrap().len(), 1);
    let next = all.body["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/v1/suppression?cursor={next}")).await.ok(200)["data"].as_array().unwrap().len(), 1);

    // Another workspace's list is its own.
    assert_eq!(other.get("/v1/suppression").await.ok(200)["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        other.get("/v1/suppression?email=marina@engineering-blog.com").await.ok(200)["data"].as_array().unwrap().len(),
        0
    );
    other.delete("/v1/suppression?email=marina@engineering-blog.com").await.problem(404, "suppression_not_found");

    api.delete("/v1/suppression?email=marina@engineering-blog.com").await.ok(204);
    assert_eq!(
        api.get("/v1/suppression?email=marina@engineering-blog.com").await.ok(200)["data"].as_array().unwrap().len(),
        0
    );
    api.delete("/v1/suppression?email=marina@engineering-blog.com").await.problem(404, "suppression_not_found");

    // Bad input.
    api.post("/v1/suppression", json!({"email": "not-an-address"})).await.problem(400, "invalid_email");
    api.post("/v1/suppression", json!({"domain": "nope"})).await.problem(400, "invalid_domain");
    api.post("/v1/suppression", json!({"email": "a@b.co", "domain": "b.co"})).await.problem(400, "invalid_request");
    api.post("/v1/suppression", json!({})).await.problem(400, "invalid_request");
    let reader = agency.with_key(&agency.create_key(&ws, Some(&["crm:read"])).await);
    reader.post("/v1/suppression", json!({"email": "x@y.co"})).await.problem(403, "insufficient_scope");
});
