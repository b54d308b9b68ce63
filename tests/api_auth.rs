//! Authentication and authorisation, black-box: every 401 and 403 case, and workspace isolation.

mod common;
use serde_json::json;

on_both_backends!(every_unauthenticated_request_is_401, |env| {
    let anon = env.anonymous();
    anon.get("/v1/workspaces").await.problem(401, "unauthorized");
    for header in ["Basic abc", "Bearer", "Bearer ", "sk_live_abc", "Bearer two words"] {
        anon.with_header("Authorization", header).get("/v1/workspaces").await.problem(401, "unauthorized");
    }
    env.agency()
        .with_key("sk_live_agency_doesnotexist000000000")
        .get("/v1/workspaces")
        .await
        .problem(401, "unauthorized");
    // Writes are refused the same way, and change nothing.
    anon.post("/v1/workspaces", json!({"name": "x"})).await.problem(401, "unauthorized");
    let listed = env.agency().get("/v1/workspaces").await;
    assert_eq!(listed.ok(200)["total"], 0);
});

on_both_backends!(a_revoked_key_fails_on_the_next_request, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let key = agency.create_key(&ws, None).await;
    let client = agency.with_key(&key);
    client.get("/v1/workspace").await.ok(200);
    let keys = agency.get(&format!("/v1/workspaces/{ws}/api-keys")).await;
    let key_id = keys.ok(200)["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(keys.body["data"][0].get("key").is_none(), "secrets are never listed");
    assert!(keys.body["data"][0]["lastUsedAt"].is_string(), "lastUsedAt is kept");
    agency.delete(&format!("/v1/workspaces/{ws}/api-keys/{key_id}")).await.ok(204);
    let r = client.get("/v1/workspace").await;
    assert_eq!(r.problem(401, "unauthorized")["message"], "This API key has been revoked.");
    let listed = agency.get(&format!("/v1/workspaces/{ws}/api-keys")).await;
    assert!(listed.ok(200)["data"][0]["revokedAt"].is_string());
    agency
        .delete(&format!("/v1/workspaces/{ws}/api-keys/key_01M83BWKFZERNB10JQ53ZE5AN5"))
        .await
        .problem(404, "api_key_not_found");
});

on_both_backends!(scopes_are_enforced_and_named, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let reader = agency.with_key(&agency.create_key(&ws, Some(&["crm:read"])).await);
    let r = reader.get(&format!("/v1/workspaces/{ws}/api-keys")).await;
    assert_eq!(r.problem(403, "insufficient_scope")["details"]["requiredScope"], "workspaces:admin");
    reader.patch(&format!("/v1/workspaces/{ws}"), json!({"name": "Hacked"})).await.problem(403, "insufficient_scope");
    // Reading its own workspace needs no particular scope.
    assert_eq!(reader.get(&format!("/v1/workspaces/{ws}")).await.ok(200)["name"], "Acme");
    // A key cannot mint a key with more than it holds.
    let admin = agency.with_key(&agency.create_key(&ws, Some(&["workspaces:admin"])).await);
    let r = admin.post(&format!("/v1/workspaces/{ws}/api-keys"), json!({"name": "n", "scopes": ["crm:write"]})).await;
    assert_eq!(r.problem(403, "insufficient_scope")["details"]["requiredScope"], "crm:write");
    let r =
        agency.post(&format!("/v1/workspaces/{ws}/api-keys"), json!({"name": "n", "scopes": ["crm:everything"]})).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], "scopes[0]");
});

on_both_backends!(workspace_keys_stay_in_their_workspace, |env| {
    let agency = env.agency();
    let ws_a = agency.create_workspace("A").await;
    let ws_b = agency.create_workspace("B").await;
    let key_a = agency.with_key(&agency.create_key(&ws_a, Some(&["crm:read", "crm:write", "workspaces:admin"])).await);
    // Its own workspace, by key alone or by header.
    assert_eq!(key_a.get("/v1/workspace").await.ok(200)["id"], ws_a.as_str());
    assert_eq!(key_a.in_workspace(&ws_a).get("/v1/workspace").await.ok(200)["id"], ws_a.as_str());
    // Never its sibling's, whichever way it asks.
    key_a.in_workspace(&ws_b).get("/v1/workspace").await.problem(403, "workspace_forbidden");
    key_a.get(&format!("/v1/workspaces/{ws_b}")).await.problem(403, "workspace_forbidden");
    key_a.get(&format!("/v1/workspaces/{ws_b}/api-keys")).await.problem(403, "workspace_forbidden");
    key_a
        .post(&format!("/v1/workspaces/{ws_b}/api-keys"), json!({"name": "x"}))
        .await
        .problem(403, "workspace_forbidden");
    // A workspace it does not know about at all looks the same as a sibling's: no existence leak.
    key_a.get("/v1/workspaces/ws_01M83BWKFZERNB10JQ53ZE5AN5").await.problem(403, "workspace_forbidden");
    // Listing shows only its own workspace.
    let listed = key_a.get("/v1/workspaces").await;
    let ids: Vec<&str> = listed.ok(200)["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![ws_a.as_str()]);
    // Agency-level actions need the agency key.
    key_a.post("/v1/workspaces", json!({"name": "mine"})).await.problem(403, "agency_key_required");
    key_a.delete(&format!("/v1/workspaces/{ws_a}")).await.problem(403, "agency_key_required");
});

on_both_backends!(agencies_cannot_see_each_other, |env| {
    let ours = env.agency();
    let theirs = env.other_agency();
    let ws = ours.create_workspace("Ours").await;
    let r = theirs.get(&format!("/v1/workspaces/{ws}")).await;
    assert_eq!(r.problem(403, "workspace_forbidden")["details"]["workspaceId"], ws.as_str());
    theirs.in_workspace(&ws).get("/v1/workspace").await.problem(403, "workspace_forbidden");
    theirs
        .patch(&format!("/v1/workspaces/{ws}"), json!({"name": "Mine now"}))
        .await
        .problem(403, "workspace_forbidden");
    theirs.delete(&format!("/v1/workspaces/{ws}")).await.problem(403, "workspace_forbidden");
    theirs
        .post(&format!("/v1/workspaces/{ws}/api-keys"), json!({"name": "x"}))
        .await
        .problem(403, "workspace_forbidden");
    assert_eq!(theirs.get("/v1/workspaces").await.ok(200)["data"].as_array().unwrap().len(), 0);
    assert_eq!(ours.get(&format!("/v1/workspaces/{ws}")).await.ok(200)["name"], "Ours");
    // A well-formed id nobody has is 404 for an agency key; a malformed one is 400.
    ours.get("/v1/workspaces/ws_01M83BWKFZERNB10JQ53ZE5AN5").await.problem(404, "workspace_not_found");
    ours.get("/v1/workspaces/acme").await.problem(400, "invalid_request");
});

on_both_backends!(agency_keys_must_name_the_workspace, |env| {
    let agency = env.agency();
    agency.get("/v1/workspace").await.problem(400, "workspace_required");
    let ws = agency.create_workspace("Acme").await;
    assert_eq!(agency.in_workspace(&ws).get("/v1/workspace").await.ok(200)["id"], ws.as_str());
    agency.in_workspace("nonsense").get("/v1/workspace").await.problem(400, "invalid_request");
    // Archived workspaces refuse work; the agency can still read and restore them.
    let key = agency.with_key(&agency.create_key(&ws, None).await);
    agency.delete(&format!("/v1/workspaces/{ws}")).await.ok(204);
    key.get("/v1/workspace").await.problem(403, "workspace_archived");
    agency.in_workspace(&ws).get("/v1/workspace").await.problem(403, "workspace_archived");
    assert_eq!(agency.get(&format!("/v1/workspaces/{ws}")).await.ok(200)["active"], false);
    assert_eq!(agency.patch(&format!("/v1/workspaces/{ws}"), json!({"active": true})).await.ok(200)["active"], true);
    key.get("/v1/workspace").await.ok(200);
});
