//! Granting credits and reading usage, black-box on both backends.

mod common;
use serde_json::json;

on_both_backends!(grants_and_usage, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let usage = agency.get(&format!("/v1/workspaces/{ws}/usage")).await;
    let u = usage.ok(200).clone();
    assert_eq!((u["creditsUsedThisCycle"].as_f64(), u["creditsRemaining"].as_f64()), (Some(0.0), Some(0.0)));
    assert!(u["cycleEndsAt"].as_str().unwrap().ends_with("01T00:00:00.000Z"), "cycles end on the first of a month");
    let r =
        agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({"credits": 150.5, "reason": "invoice 42"})).await;
    assert_eq!(r.ok(201)["creditsRemaining"], 150.5);
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({"credits": 0.4})).await.ok(201);
    let u = agency.get(&format!("/v1/workspaces/{ws}/usage")).await;
    assert_eq!(u.ok(200)["creditsRemaining"], 150.9);
    assert_eq!(u.body["creditPool"], "workspace");
    // Only the agency funds workspaces; amounts are checked.
    let key = agency.with_key(&agency.create_key(&ws, Some(&["workspaces:admin"])).await);
    key.post(&format!("/v1/workspaces/{ws}/credits"), json!({"credits": 1000}))
        .await
        .problem(403, "agency_key_required");
    assert_eq!(
        key.get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200)["creditsRemaining"],
        150.9,
        "the workspace reads its own usage"
    );
    for bad in
        [json!({"credits": 0}), json!({"credits": -5}), json!({"credits": 0.0001}), json!({"credits": "10"}), json!({})]
    {
        agency.post(&format!("/v1/workspaces/{ws}/credits"), bad).await.problem(400, "invalid_request");
    }
    env.other_agency()
        .post(&format!("/v1/workspaces/{ws}/credits"), json!({"credits": 1}))
        .await
        .problem(403, "workspace_forbidden");
    env.other_agency().get(&format!("/v1/workspaces/{ws}/usage")).await.problem(403, "workspace_forbidden");
    // An agency-pooled workspace draws on (and shows) the agency's pool.
    let pooled = agency.post("/v1/workspaces", json!({"name": "Pooled", "settings": {"creditPool": "agency"}})).await;
    let pooled = pooled.ok(201)["id"].as_str().unwrap().to_owned();
    let other_pooled =
        agency.post("/v1/workspaces", json!({"name": "Pooled 2", "settings": {"creditPool": "agency"}})).await;
    let other_pooled = other_pooled.ok(201)["id"].as_str().unwrap().to_owned();
    agency.post(&format!("/v1/workspaces/{pooled}/credits"), json!({"credits": 10})).await.ok(201);
    let u = agency.get(&format!("/v1/workspaces/{other_pooled}/usage")).await;
    assert_eq!((u.ok(200)["creditPool"].as_str(), u.body["creditsRemaining"].as_f64()), (Some("agency"), Some(10.0)));
});
