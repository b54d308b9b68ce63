//! Workspaces: create, list (filters, pagination, totals), get, patch (If-Match, merge), archive.

mod common;
use serde_json::json;

on_both_backends!(create_get_and_defaults, |env| {
    let agency = env.agency();
    let body = json!({
        "name": "Acme PM", "primaryDomain": "https://www.Acme.com/pricing", "tags": ["industry:saas", "tier:premium"],
        "settings": { "primaryLocation": "us", "primaryLanguage": "en",
                      "approvalPolicy": { "publish": "require_approval", "outreach_send": "require_approval", "indexing_submit": "auto" },
                      "creditPool": "agency" }
    });
    let r = agency.post("/v1/workspaces", body).await;
    let ws = r.ok(201).clone();
    assert!(ws["id"].as_str().unwrap().starts_with("ws_"));
    assert_eq!(ws["primaryDomain"], "acme.com", "domains are normalised");
    assert_eq!(ws["tags"], json!(["industry:saas", "tier:premium"]));
    assert_eq!(ws["active"], true);
    assert_eq!(ws["settings"]["creditPool"], "agency");
    assert_eq!(r.header("etag"), Some("\"1\""));
    let got = agency.get(&format!("/v1/workspaces/{}", ws["id"].as_str().unwrap())).await;
    assert_eq!(got.ok(200), &ws);
    // Defaults: outreach sends need approval.
    let plain = agency.post("/v1/workspaces", json!({"name": "Plain"})).await;
    assert_eq!(plain.ok(201)["settings"]["approvalPolicy"]["outreach_send"], "require_approval");
    assert_eq!(plain.body["settings"]["creditPool"], "workspace");
});

on_both_backends!(create_rejects_bad_input_with_field_errors, |env| {
    let agency = env.agency();
    let cases = [
        (json!({}), "invalid_request", "name"),
        (json!({"name": ""}), "invalid_request", "name"),
        (json!({"name": "x", "primaryDomain": "not a domain"}), "invalid_domain", "primaryDomain"),
        (json!({"name": "x", "tags": ["ok", "no spaces"]}), "invalid_request", "tags[1]"),
        (json!({"name": "x", "colour": "red"}), "invalid_request", "colour"),
        (json!({"name": 5}), "invalid_request", "name"),
        (
            json!({"name": "x", "settings": {"approvalPolicy": {"outreach_send": "sometimes"}}}),
            "invalid_request",
            "settings.approvalPolicy.outreach_send",
        ),
    ];
    for (body, code, field) in cases {
        let r = agency.post("/v1/workspaces", body.clone()).await;
        let p = r.problem(400, code);
        assert_eq!(p["errors"][0]["field"], field, "for {body}: {}", r.text);
    }
    assert_eq!(agency.get("/v1/workspaces").await.ok(200)["total"], 0, "nothing half-written");
});

on_both_backends!(list_filters_pages_and_counts, |env| {
    let agency = env.agency();
    let mut ids = Vec::new();
    for i in 0..7 {
        let tags = if i % 2 == 0 { json!(["tier:premium"]) } else { json!([]) };
        let r = agency.post("/v1/workspaces", json!({"name": format!("Client {i}"), "tags": tags})).await;
        ids.push(r.ok(201)["id"].as_str().unwrap().to_owned());
    }
    agency.delete(&format!("/v1/workspaces/{}", ids[1])).await.ok(204);
    // Newest first, three at a time, nothing skipped or repeated.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workspaces?limit=3&cursor={c}"),
            None => "/v1/workspaces?limit=3".to_owned(),
        };
        let page = agency.get(&path).await;
        let body = page.ok(200);
        assert_eq!(body["total"], 7);
        seen.extend(body["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let active = agency.get("/v1/workspaces?active=true&limit=200").await;
    assert_eq!(active.ok(200)["total"], 6);
    assert!(active.body["data"].as_array().unwrap().iter().all(|w| w["active"] == true));
    let archived = agency.get("/v1/workspaces?active=false").await;
    assert_eq!(archived.ok(200)["data"][0]["id"], ids[1].as_str());
    assert_eq!(archived.body["total"], 1);
    let premium = agency.get("/v1/workspaces?tag=tier:premium").await;
    let got: Vec<&str> =
        premium.ok(200)["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[6].as_str(), ids[4].as_str(), ids[2].as_str(), ids[0].as_str()]);
    // Bad arguments.
    agency.get("/v1/workspaces?limit=0").await.problem(400, "invalid_request");
    agency.get("/v1/workspaces?limit=201").await.problem(400, "invalid_request");
    agency.get("/v1/workspaces?active=maybe").await.problem(400, "invalid_request");
    agency.get("/v1/workspaces?cursor=forged").await.problem(400, "invalid_cursor");
    agency.get("/v1/workspaces?sort=name").await.problem(400, "invalid_request");
    // A cursor is bound to who listed: another agency cannot replay it.
    let first = agency.get("/v1/workspaces?limit=2").await;
    let c = first.ok(200)["nextCursor"].as_str().unwrap().to_owned();
    env.other_agency().get(&format!("/v1/workspaces?cursor={c}")).await.problem(400, "invalid_cursor");
});

on_both_backends!(patch_merges_settings_and_guards_versions, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let path = format!("/v1/workspaces/{ws}");
    let r = agency
        .patch(&path, json!({"settings": {"approvalPolicy": {"outreach_send": "auto"}}, "tags": ["a", "b"]}))
        .await;
    let body = r.ok(200);
    assert_eq!(body["settings"]["approvalPolicy"]["outreach_send"], "auto");
    assert_eq!(body["settings"]["approvalPolicy"]["publish"], "require_approval", "untouched settings stay");
    assert_eq!(r.header("etag"), Some("\"2\""));
    // If-Match with a stale version is 412 and changes nothing; the current one passes.
    let stale = agency.with_header("If-Match", "\"1\"").patch(&path, json!({"name": "Stale"})).await;
    assert_eq!(stale.problem(412, "precondition_failed")["details"]["currentETag"], "\"2\"");
    let fresh =
        agency.with_header("If-Match", "\"2\"").patch(&path, json!({"name": "Fresh", "primaryDomain": null})).await;
    assert_eq!(fresh.ok(200)["name"], "Fresh");
    assert_eq!(fresh.header("etag"), Some("\"3\""));
    // Tags moved: the old tag no longer lists it.
    let r = agency.patch(&path, json!({"tags": ["b", "c"]})).await;
    r.ok(200);
    assert_eq!(agency.get("/v1/workspaces?tag=a").await.ok(200)["data"].as_array().unwrap().len(), 0);
    assert_eq!(agency.get("/v1/workspaces?tag=c").await.ok(200)["data"][0]["id"], ws.as_str());
    agency.patch(&path, json!({"settings": "loud"})).await.problem(400, "invalid_request");
    agency.patch(&path, json!({"id": "ws_other"})).await.problem(400, "invalid_request");
    assert_eq!(agency.get(&path).await.ok(200)["name"], "Fresh");
});

on_both_backends!(concurrent_patches_never_lose_an_update, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let path = format!("/v1/workspaces/{ws}");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (a, p) = (agency.clone(), path.clone());
        tasks
            .push(tokio::spawn(async move { a.patch(&p, json!({"name": format!("Name {i}")})).await.status.as_u16() }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let r = agency.get(&path).await;
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", 1 + ok).as_str()),
        "each success bumped the version exactly once"
    );
});
