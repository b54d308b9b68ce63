//! Relationships and events, black-box on both backends: the pipeline, derived state, isolation.

mod common;
use serde_json::{json, Value};

/// A workspace and a client acting in it with a workspace key.
async fn workspace(env: &common::Env, name: &str) -> (String, common::Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    let key = agency.create_key(&ws, None).await;
    (ws, agency.with_key(&key))
}

async fn relationship(api: &common::Api, body: Value) -> Value {
    let r = api.post("/v1/link-building/crm/relationship", body).await;
    r.ok(201).clone()
}

async fn event(api: &common::Api, body: Value) -> common::Resp {
    api.post("/v1/link-building/crm/event", body).await
}

fn dump_logs_on_failure(env: &common::Env, r: &common::Resp) {
    if r.status.is_server_error() {
        for l in env.server.logs() {
            eprintln!("{l}");
        }
    }
}

on_both_backends!(the_pipeline_follows_events, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let rel = relationship(
        &api,
        json!({"domain": "https://www.Engineering-Blog.com/best-pm-tools", "source": "SEARCH", "priority": "HIGH"}),
    )
    .await;
    assert_eq!(rel["accountDomain"], "engineering-blog.com");
    assert_eq!(rel["status"], "PROSPECTING");
    let id = rel["id"].as_str().unwrap().to_owned();
    let sent = event(
        &api,
        json!({"relationshipId": id, "type": "EMAIL_SENT", "subject": "Section 7 of your PM tools roundup",
        "content": "Hi Marina, ...", "metadata": {"instantlyMessageId": "im_1"}, "occurredAt": "2026-05-08T09:14:23Z"}),
    )
    .await;
    dump_logs_on_failure(&env, &sent);
    let sent = sent.ok(201).clone();
    assert_eq!(sent["occurredAt"], "2026-05-08T09:14:23.000Z");
    assert!(sent["id"].as_str().unwrap().starts_with("evt_"));
    let got = api.get(&format!("/v1/link-building/crm/relationship/{id}")).await;
    let got = got.ok(200);
    assert_eq!(got["status"], "CONTACTED_BY_US");
    assert_eq!(got["contactedByUs"], true);
    assert_eq!(got["firstContactedByUsAt"], "2026-05-08T09:14:23.000Z");
    let ooo = event(
        &api,
        json!({"relationshipId": id, "type": "EMAIL_RECEIVED", "metadata": {"replyClass": "out_of_office"}}),
    )
    .await;
    ooo.ok(201);
    assert_eq!(api.get(&format!("/v1/link-building/crm/relationship/{id}")).await.body["status"], "CONTACTED_BY_US");
    event(&api, json!({"relationshipId": id, "type": "EMAIL_RECEIVED", "subject": "RE: Section 7", "occurredAt": "2026-05-09T14:22:00Z"})).await.ok(201);
    assert_eq!(api.get(&format!("/v1/link-building/crm/relationship/{id}")).await.body["status"], "ACTIVELY_ENGAGED");
    // Seed 000: PATCH status is logged as STATUS_CHANGED.
    let r = api.patch(&format!("/v1/link-building/crm/relationship/{id}"),
        json!({"status": "LINK_PLACED", "priority": "MEDIUM", "rawNotes": "Live on /best-pm-tools — confirmed 2026-05-22"})).await;
    let body = r.ok(200);
    assert_eq!((body["status"].as_str(), body["priority"].as_str()), (Some("LINK_PLACED"), Some("MEDIUM")));
    let log = api.get(&format!("/v1/link-building/crm/event?relationshipId={id}&type=STATUS_CHANGED")).await;
    let changes = log.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["metadata"]["from"], "ACTIVELY_ENGAGED");
    assert_eq!(changes[0]["metadata"]["to"], "LINK_PLACED");
    assert!(changes[0]["metadata"]["keyId"].as_str().unwrap().starts_with("key_"));
    // Use case C: a manual override back to PROSPECTING always wins.
    let r = api
        .patch(
            &format!("/v1/link-building/crm/relationship/{id}"),
            json!({"status": "PROSPECTING", "rawNotes": "Re-evaluated; their decline was about timing, not content"}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "PROSPECTING");
    let all = api.get(&format!("/v1/link-building/crm/event?relationshipId={id}&order=asc")).await;
    let types: Vec<&str> =
        all.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec!["EMAIL_SENT", "EMAIL_RECEIVED", "EMAIL_RECEIVED", "STATUS_CHANGED", "STATUS_CHANGED"],
        "ordered by occurredAt"
    );
});

on_both_backends!(relationships_are_unique_and_private, |env| {
    let (ws_a, a) = workspace(&env, "A").await;
    let (_, b) = workspace(&env, "B").await;
    let rel = relationship(&a, json!({"domain": "devleadweekly.com"})).await;
    let id = rel["id"].as_str().unwrap();
    let again = a.post("/v1/link-building/crm/relationship", json!({"domain": "https://devleadweekly.com/"})).await;
    assert_eq!(again.problem(409, "relationship_exists")["details"]["relationshipId"], id);
    // Another workspace has its own relationship with the same shared account.
    let theirs = relationship(&b, json!({"accountId": rel["accountId"]})).await;
    assert_eq!(theirs["accountId"], rel["accountId"]);
    // …and never sees ours, by id, in lists, or through its events.
    b.get(&format!("/v1/link-building/crm/relationship/{id}")).await.problem(404, "relationship_not_found");
    b.patch(&format!("/v1/link-building/crm/relationship/{id}"), json!({"priority": "LOW"}))
        .await
        .problem(404, "relationship_not_found");
    event(&b, json!({"relationshipId": id, "type": "NOTE_ADDED", "content": "x"}))
        .await
        .problem(404, "relationship_not_found");
    let note = event(&a, json!({"relationshipId": id, "type": "NOTE_ADDED", "subject": "Off-platform reply", "content": "Marina replied on LinkedIn DM"})).await;
    let note_id = note.ok(201)["id"].as_str().unwrap().to_owned();
    b.get(&format!("/v1/link-building/crm/event/{note_id}")).await.problem(404, "event_not_found");
    assert_eq!(
        a.get(&format!("/v1/link-building/crm/event/{note_id}")).await.ok(200)["content"],
        "Marina replied on LinkedIn DM"
    );
    let listed = b.get("/v1/link-building/crm/relationship").await;
    let ids: Vec<&str> = listed.ok(200)["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![theirs["id"].as_str().unwrap()]);
    let events_b =
        b.get(&format!("/v1/link-building/crm/event?accountId={}", rel["accountId"].as_str().unwrap())).await;
    assert_eq!(events_b.ok(200)["data"].as_array().unwrap().len(), 0);
    // The agency sees the partner's events across its workspaces, each with its workspace.
    let agency_wide = env
        .agency()
        .get(&format!("/v1/link-building/crm/event?accountId={}", rel["accountId"].as_str().unwrap()))
        .await;
    let data = agency_wide.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["organizationId"], ws_a.as_str());
    env.agency().get("/v1/link-building/crm/event").await.problem(400, "workspace_required");
    env.other_agency()
        .get(&format!("/v1/link-building/crm/event?accountId={}", rel["accountId"].as_str().unwrap()))
        .await
        .ok(200);
    assert_eq!(
        env.other_agency()
            .get(&format!("/v1/link-building/crm/event?accountId={}", rel["accountId"].as_str().unwrap()))
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
});

on_both_backends!(contact_by_another_workspace_shows_on_read, |env| {
    let (_, a) = workspace(&env, "A").await;
    let (_, b) = workspace(&env, "B").await;
    let ours = relationship(&a, json!({"domain": "pm-weekly.io", "status": "QUEUED"})).await;
    let theirs = relationship(&b, json!({"domain": "pm-weekly.io"})).await;
    let now = chrono_now();
    event(&b, json!({"relationshipId": theirs["id"], "type": "EMAIL_SENT", "occurredAt": now})).await.ok(201);
    let got = a.get(&format!("/v1/link-building/crm/relationship/{}", ours["id"].as_str().unwrap())).await;
    assert_eq!(got.ok(200)["status"], "CONTACTED_BY_OTHER_ORG");
    assert_eq!(got.body["contactedByOtherOrg"], true);
    let by_status = a.get("/v1/link-building/crm/relationship?status=CONTACTED_BY_OTHER_ORG").await;
    assert_eq!(by_status.ok(200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.get("/v1/link-building/crm/relationship?status=QUEUED").await.ok(200)["data"].as_array().unwrap().len(),
        0
    );
    // Their own view is unaffected: they are the ones who contacted it.
    let mine = b.get(&format!("/v1/link-building/crm/relationship/{}", theirs["id"].as_str().unwrap())).await;
    assert_eq!(mine.ok(200)["status"], "CONTACTED_BY_US");
    assert_eq!(mine.body["contactedByOtherOrg"], false);
});

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // RFC 3339 from epoch seconds without a date library: let the server parse an offset time.
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
