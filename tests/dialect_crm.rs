//! The seed 004 dialect (`/api/crm/...`), written from the seed and its issue: `ak_` keys, the
//! entity rule, UUID ids, the `{"error"}` shape, paging, the stage list's shape, and the flow
//! stages → leads → moves → activity → task → outbound email → dashboard, with `/v1` showing the
//! same data in its own terms and replay finding no difference. Black-box, both backends.

mod common;
use common::{Api, Env};
use linkcrm_testkit::smtp::SmtpServer;
use serde_json::{json, Value};

const P: &str = "/api/crm";

/// A workspace with credits, its `ak_` key, and the workspace's id.
async fn workspace(env: &Env, name: &str) -> (Api, String) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.patch(&format!("/v1/workspaces/{ws}"), patch).await.ok(200);
    let k = agency.post(&format!("/v1/workspaces/{ws}/api-keys"), json!({ "name": "crm", "format": "ak" })).await;
    let k = k.ok(201).clone();
    assert_eq!(k["scopes"], json!(["read:crm", "write:crm"]), "{k}");
    let secret = k["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ak_") && k["prefix"].as_str().is_some_and(|p| p.starts_with("ak_")), "{k}");
    (agency.with_key(&secret), ws)
}

/// The UUID of one of our ids (what the dialect shows).
fn uuid_of(ours: &str) -> String {
    let body = ours.split_once('_').unwrap().1;
    linkcrm_domain::id::decode(body).unwrap().hyphenated().to_string()
}

#[track_caller]
fn error(r: &common::Resp, status: u16, text: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body, json!({ "error": text }), "{}", r.text);
}

#[track_caller]
fn is_uuid(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(uuid::Uuid::parse_str(s).is_ok() && s.len() == 36, "not a UUID: {s}");
    s.to_owned()
}

on_both_backends!(keys_entities_ids_errors_and_paging, |env| {
    let (api, ws) = workspace(&env, "CRM").await;
    let (other, other_ws) = workspace(&env, "Elsewhere").await;
    let entity = uuid_of(&ws);

    // Auth.
    error(&env.anonymous().get(&format!("{P}/pipeline-stages")).await, 401, "Unauthorized");
    error(&api.with_key("ak_nope").get(&format!("{P}/pipeline-stages")).await, 401, "Unknown API key.");

    // ak_ keys: only the dialect's scopes; read:crm alone cannot write.
    let agency = env.agency();
    let bad = agency
        .post(&format!("/v1/workspaces/{ws}/api-keys"), json!({ "name": "x", "format": "ak", "scopes": ["crm:read"] }))
        .await;
    bad.problem(400, "invalid_request");
    let ro = agency
        .post(&format!("/v1/workspaces/{ws}/api-keys"), json!({ "name": "ro", "format": "ak", "scopes": ["read:crm"] }))
        .await
        .ok(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let ro = api.with_key(&ro);
    ro.get(&format!("{P}/pipeline-stages")).await.ok(200);
    let r = ro.post(&format!("{P}/leads"), json!({ "title": "x" })).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("crm:write"), "{}", r.text);

    // The entity rule: query, body or header; the key's own, or 403.
    api.get(&format!("{P}/pipeline-stages?entityId={entity}")).await.ok(200);
    api.with_header("x-entity-id", &entity).get(&format!("{P}/pipeline-stages")).await.ok(200);
    let theirs = uuid_of(&other_ws);
    error(
        &api.get(&format!("{P}/pipeline-stages?entityId={theirs}")).await,
        403,
        "entityId does not match this API key",
    );
    error(
        &api.with_header("x-entity-id", &theirs).get(&format!("{P}/leads")).await,
        403,
        "entityId does not match this API key",
    );
    error(
        &api.post(&format!("{P}/leads"), json!({ "entityId": theirs, "title": "x" })).await,
        403,
        "entityId does not match this API key",
    );
    error(&api.get(&format!("{P}/leads?entityId=not-a-uuid")).await, 400, "entityId must be a UUID");
    // An agency key names one of its workspaces by entity; another agency's is refused.
    agency.get(&format!("{P}/pipeline-stages?entityId={entity}")).await.ok(200);
    error(&agency.get(&format!("{P}/pipeline-stages")).await, 400, "entityId is required with an agency key");
    let stranger = agency.with_key(&env.other_agency_key);
    error(&stranger.get(&format!("{P}/leads?entityId={entity}")).await, 403, "entityId does not match this API key");

    // The stage list has the seed's shape, with UUID ids.
    let stages = api.get(&format!("{P}/pipeline-stages")).await.ok(200).clone();
    let list = stages["stages"].as_array().unwrap();
    assert_eq!(list.len(), 8);
    for s in list {
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["colorKey", "defaultProbabilityPct", "id", "kind", "leadCount", "name", "sortOrder", "systemKey"]
        );
        is_uuid(&s["id"]);
    }

    // Leads: UUIDs in and out; paging with page/pageSize and the legacy limit.
    for i in 0..3 {
        let l = api.post(&format!("{P}/leads"), json!({ "title": format!("Deal {i}"), "value": 100 * (i + 1) })).await;
        let l = l.ok(201).clone();
        is_uuid(&l["id"]);
        assert_eq!(
            (l["status"].as_str(), l["companyId"].clone(), l["ownerId"].clone()),
            (Some("open"), Value::Null, Value::Null)
        );
    }
    let page2 = api.get(&format!("{P}/leads?page=2&pageSize=2")).await.ok(200).clone();
    assert_eq!(
        (page2["page"].as_u64(), page2["pageSize"].as_u64(), page2["total"].as_u64()),
        (Some(2), Some(2), Some(3))
    );
    assert_eq!(page2["leads"].as_array().unwrap().len(), 1);
    assert_eq!(page2["leads"][0]["title"], "Deal 0", "newest first");
    let legacy = api.get(&format!("{P}/leads?limit=1")).await.ok(200).clone();
    assert_eq!((legacy["leads"].as_array().unwrap().len(), legacy["pageSize"].as_u64()), (1, Some(1)));
    error(&api.get(&format!("{P}/leads?pageSize=500")).await, 400, "pageSize must be at most 200");
    error(&api.get(&format!("{P}/leads?page=0")).await, 400, "page must be a whole number of at least 1");
    assert_eq!(api.get(&format!("{P}/leads?ownerId=unassigned")).await.ok(200)["total"], 3);
    // `me` is the member a key acts for.
    let member = agency.post(&format!("/v1/workspaces/{ws}/members"), json!({ "name": "Ana" })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = agency
        .post(&format!("/v1/workspaces/{ws}/api-keys"), json!({ "name": "ana", "format": "ak", "memberId": member }))
        .await
        .ok(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = api.with_key(&mine);
    assert_eq!(mine.get(&format!("{P}/leads?ownerId=me")).await.ok(200)["total"], 0);
    let owned =
        mine.post(&format!("{P}/leads"), json!({ "title": "Mine", "ownerId": uuid_of(&member) })).await.ok(201).clone();
    assert_eq!(owned["ownerId"], uuid_of(&member).as_str());
    assert_eq!(mine.get(&format!("{P}/leads?ownerId=me")).await.ok(200)["total"], 1);
    assert_eq!(mine.get(&format!("{P}/leads?ownerId={}", uuid_of(&member))).await.ok(200)["total"], 1);
    mine.delete(&format!("{P}/leads/{}", owned["id"].as_str().unwrap())).await.ok(200);
    let by_stage = api.get(&format!("{P}/leads?stage=PROSPECTING")).await.ok(200).clone();
    assert_eq!(by_stage["total"], 3, "a legacy system key names the stage");
    assert_eq!(api.get(&format!("{P}/leads?stage=Prospecting")).await.ok(200)["total"], 3);

    // Errors in the dialect's shape.
    let missing = uuid::Uuid::now_v7().hyphenated().to_string();
    let r = api.get(&format!("{P}/leads/{missing}")).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("lead") && !r.text.contains("opp_"), "{}", r.text);
    error(&api.get(&format!("{P}/leads/opp_nope")).await, 404, "Not found");
    let r = api.post(&format!("{P}/leads"), json!({})).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("title"), "{}", r.text);
    error(
        &api.post(&format!("{P}/leads"), json!({ "title": "x", "stageId": "nope" })).await,
        400,
        "stageId must be a UUID",
    );
    let r = api.post(&format!("{P}/leads"), json!({ "title": "x", "companyId": missing })).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.text);
    assert_eq!(r.body["error"], format!("No company with id '{missing}'."));
    // A contact needs a partner: a company with a domain, or a work email.
    error(
        &api.post(&format!("{P}/contacts"), json!({ "firstName": "Pat", "email": "pat@gmail.com" })).await,
        422,
        "a contact needs a company with a domain, or a work email address",
    );
    let r = api.send(reqwest::Method::PUT, &format!("{P}/leads"), None).await;
    assert_eq!((r.status.as_u16(), r.header("allow")), (405, Some("GET, POST")));
    error(&api.get(&format!("{P}/nothing-here")).await, 404, "Not found");
    let doc = api.get(&format!("{P}/openapi.json")).await.ok(200).clone();
    assert!(doc["paths"]["/api/crm/pipeline-stages/reorder"]["post"].is_object());

    // Deleting a contact another workspace's history names removes it from this workspace only.
    let co = api
        .post(&format!("{P}/companies"), json!({ "name": "Shared", "domain": "shared-partner.example" }))
        .await
        .ok(201)
        .clone();
    let pat = api
        .post(
            &format!("{P}/contacts"),
            json!({ "firstName": "Pat", "email": "pat@shared-partner.example", "companyId": co["id"] }),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pat_ours = format!("ct_{}", linkcrm_domain::id::encode(uuid::Uuid::parse_str(&pat).unwrap()));
    let rel =
        other.post("/v1/link-building/crm/relationship", json!({ "domain": "shared-partner.example" })).await.ok(201)
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
    other
        .post(
            "/v1/link-building/crm/event",
            json!({ "relationshipId": rel, "type": "NOTE_ADDED", "content": "met Pat", "contactId": pat_ours }),
        )
        .await
        .ok(201);
    assert_eq!(api.get(&format!("{P}/contacts")).await.ok(200)["total"], 1);
    let r = api.delete(&format!("{P}/contacts/{pat}")).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert_eq!(api.get(&format!("{P}/contacts")).await.ok(200)["total"], 0);
    assert_eq!(api.get(&format!("{P}/contacts/{pat}/company-memberships")).await.ok(200)["memberships"], json!([]));
    assert_eq!(other.get(&format!("/v1/link-building/crm/contact/{pat_ours}")).await.ok(200)["firstName"], "Pat");

    // Another workspace sees none of it.
    let first = api.get(&format!("{P}/leads")).await.ok(200)["leads"][0]["id"].as_str().unwrap().to_owned();
    assert!(other.get(&format!("{P}/leads/{first}")).await.status.as_u16() == 404);
    assert_eq!(other.get(&format!("{P}/leads")).await.ok(200)["total"], 0);
    assert!(
        other.patch(&format!("{P}/leads/{first}/stage"), json!({ "stageId": list[1]["id"] })).await.status.as_u16()
            == 404
    );
});

on_both_backends!(the_flow_from_stages_to_the_dashboard, |env| {
    let smtp = SmtpServer::start().unwrap();
    let (api, ws) = workspace(&env, "Flow").await;
    let v1 = env.agency().in_workspace(&ws);

    // Stages customised and reordered.
    let neg = api
        .post(
            &format!("{P}/pipeline-stages"),
            json!({ "name": "Negotiating", "systemKey": "ACTIVELY_ENGAGED", "colorKey": "teal" }),
        )
        .await
        .ok(201)
        .clone();
    let neg_id = is_uuid(&neg["id"]);
    let ids: Vec<Value> = api.get(&format!("{P}/pipeline-stages")).await.ok(200)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    let mut order = ids.clone();
    order.swap(4, 5);
    let stages = api.post(&format!("{P}/pipeline-stages/reorder"), json!({ "stageIds": order })).await.ok(200).clone();
    let names: Vec<&str> = stages["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(&names[3..6], ["Contacted", "Negotiating", "Engaged"]);
    let id_of = |n: &str| {
        stages["stages"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let contacted = id_of("Contacted");
    let renamed =
        api.patch(&format!("{P}/pipeline-stages/{neg_id}"), json!({ "name": "Negotiation" })).await.ok(200).clone();
    assert_eq!(renamed["name"], "Negotiation");

    // A company with a domain, and two leads on it.
    let co = api
        .post(
            &format!("{P}/companies"),
            json!({ "name": "Engineering Blog", "domain": "engineering-blog.com", "relationshipType": "vendor" }),
        )
        .await
        .ok(201)
        .clone();
    let co_id = is_uuid(&co["id"]);
    is_uuid(&co["accountId"]);
    assert_eq!((co["lifecycle"].as_str(), co["domain"].as_str()), (Some("active"), Some("engineering-blog.com")));
    let private = api.post(&format!("{P}/companies"), json!({ "name": "Acme Network" })).await.ok(201).clone();
    assert_eq!(private["domain"], Value::Null);
    let found = api.get(&format!("{P}/companies?search=engineering&relationshipType=vendor")).await.ok(200).clone();
    assert_eq!((found["total"].as_u64(), found["companies"][0]["id"].as_str()), (Some(1), Some(co_id.as_str())));
    assert_eq!(api.get(&format!("{P}/companies/{co_id}")).await.ok(200)["name"], "Engineering Blog");
    let patched = api
        .patch(&format!("{P}/companies/{}", private["id"].as_str().unwrap()), json!({ "lifecycle": "inactive" }))
        .await
        .ok(200)
        .clone();
    assert_eq!(patched["lifecycle"], "inactive");
    let a = api
        .post(&format!("{P}/leads"), json!({ "title": "Guest post", "companyId": co_id, "value": 500 }))
        .await
        .ok(201)
        .clone();
    let b = api
        .post(&format!("{P}/leads"), json!({ "title": "Link insertion", "companyId": co_id, "value": 150 }))
        .await
        .ok(201)
        .clone();
    assert_eq!(a["companyId"], co_id.as_str());
    let on_co = api.get(&format!("{P}/leads?companyId={co_id}")).await.ok(200).clone();
    assert_eq!(on_co["total"], 2);
    let (a_id, b_id) = (is_uuid(&a["id"]), is_uuid(&b["id"]));
    // /v1 sees the same opportunities, linked to one relationship.
    let opps = v1.get("/v1/link-building/crm/opportunity").await.ok(200).clone();
    let rel = opps["data"][0]["relationshipId"].as_str().unwrap().to_owned();
    assert_eq!(opps["data"][1]["relationshipId"], rel.as_str());
    assert_eq!(uuid_of(opps["data"][1]["id"].as_str().unwrap()), a_id);

    // A is moved to Contacted: LEAD_STAGE_CHANGED and STATUS_CHANGED; leadCount follows.
    let moved = api.patch(&format!("{P}/leads/{a_id}/stage"), json!({ "stageId": contacted })).await.ok(200).clone();
    assert_eq!((moved["stage"].as_str(), moved["stageId"].as_str()), (Some("Contacted"), Some(contacted.as_str())));
    assert_eq!(v1.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200)["status"], "CONTACTED_BY_US");
    let counts = api.get(&format!("{P}/pipeline-stages")).await.ok(200).clone();
    let count = |n: &str| {
        counts["stages"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap()["leadCount"].as_i64().unwrap()
    };
    assert_eq!((count("Prospecting"), count("Contacted")), (1, 1));
    let timeline = api.get(&format!("{P}/leads/{a_id}/timeline")).await.ok(200).clone();
    let types: Vec<&str> =
        timeline["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"LEAD_STAGE_CHANGED") && types.contains(&"STATUS_CHANGED"), "{types:?}");
    let stage_event =
        timeline["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "LEAD_STAGE_CHANGED").unwrap().clone();
    assert_eq!(stage_event["metadata"]["leadId"], a_id.as_str());
    assert_eq!(stage_event["metadata"]["toStageId"], contacted.as_str());
    // B's timeline does not show A's move.
    let b_line = api.get(&format!("{P}/leads/{b_id}/timeline")).await.ok(200).clone();
    assert!(b_line["timeline"].as_array().unwrap().iter().all(|e| e["type"] != "LEAD_STAGE_CHANGED"));

    // An activity on A and a task.
    let act = api
        .post(
            &format!("{P}/leads/{a_id}/activities"),
            json!({ "type": "call", "subject": "Rates call", "body": "Agreed $150" }),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!((act["leadId"].as_str(), act["type"].as_str()), (Some(a_id.as_str()), Some("call")));
    let acts = api.get(&format!("{P}/activities?leadId={a_id}")).await.ok(200).clone();
    assert_eq!(acts["total"], 1);
    let due = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let task = api
        .post(&format!("{P}/tasks"), json!({ "title": "Send the draft", "dueAt": due, "leadId": a_id }))
        .await
        .ok(201)
        .clone();
    assert_eq!((task["leadId"].as_str(), task["status"].as_str()), (Some(a_id.as_str()), Some("open")));
    let tasks = api.get(&format!("{P}/tasks?leadId={a_id}")).await.ok(200).clone();
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1);

    // A company's activity and a lead-less task, then completed; `assigneeId=me` with a member key.
    let meeting = api
        .post(&format!("{P}/activities"), json!({ "type": "meeting", "subject": "Editorial sync", "companyId": co_id }))
        .await
        .ok(201)
        .clone();
    assert_eq!((meeting["companyId"].as_str(), meeting["leadId"].clone()), (Some(co_id.as_str()), Value::Null));
    // The company's activities include its leads' (the rates call on A).
    assert_eq!(api.get(&format!("{P}/activities?companyId={co_id}")).await.ok(200)["total"], 2);
    error(
        &api.post(&format!("{P}/activities"), json!({ "type": "call", "subject": "x" })).await,
        400,
        "name leadId or companyId",
    );
    let chore = api.post(&format!("{P}/tasks"), json!({ "title": "Update the sheet" })).await.ok(201).clone();
    let chore_id = is_uuid(&chore["id"]);
    let p =
        api.patch(&format!("{P}/tasks/{chore_id}"), json!({ "title": "Update the rates sheet" })).await.ok(200).clone();
    assert_eq!(p["title"], "Update the rates sheet");
    let done = api.post(&format!("{P}/tasks/{chore_id}/complete"), json!({})).await.ok(200).clone();
    assert_eq!((done["status"].as_str(), done["completedAt"].is_string()), (Some("done"), true));

    // An outbound email to A's contact through a connection, received by aiosmtpd.
    let mbx = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                      "smtpPort": smtp.port, "security": "none" });
    let mbx = v1.post("/v1/mailboxes", mbx).await.ok(201)["id"].as_str().unwrap().to_owned();
    let conns = api.get(&format!("{P}/outbound-email-connections")).await.ok(200).clone();
    assert_eq!(
        conns["connections"][0],
        json!({ "id": uuid_of(&mbx), "channel": "smtp", "address": "dana@outreach.example.com", "displayName": "Dana" })
    );
    // The contact, at the company (its primary membership), with this workspace's phone.
    let contact = api
        .post(
            &format!("{P}/contacts"),
            json!({ "firstName": "Marina", "lastName": "Olafsson", "email": "marina@engineering-blog.com",
                    "title": "Senior Editor", "phone": "+354 555 0101", "companyId": co_id }),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (contact["companyId"].as_str(), contact["title"].as_str(), contact["phone"].as_str()),
        (Some(co_id.as_str()), Some("Senior Editor"), Some("+354 555 0101"))
    );
    let contact_uuid = is_uuid(&contact["id"]);
    let contact = format!("ct_{}", linkcrm_domain::id::encode(uuid::Uuid::parse_str(&contact_uuid).unwrap()));
    let ms = api.get(&format!("{P}/contacts/{contact_uuid}/company-memberships")).await.ok(200).clone();
    assert_eq!(ms["memberships"][0]["companyId"], co_id.as_str());
    assert_eq!(ms["memberships"][0]["isPrimary"], true);
    let listed = api.get(&format!("{P}/contacts")).await.ok(200).clone();
    assert_eq!(
        (listed["total"].as_u64(), listed["contacts"][0]["id"].as_str()),
        (Some(1), Some(contact_uuid.as_str()))
    );
    let at_co = api.get(&format!("{P}/companies/{co_id}/contacts")).await.ok(200).clone();
    assert_eq!(at_co["contacts"][0]["email"], "marina@engineering-blog.com");
    // A second membership (the private company) made primary; the role patched.
    let private_id = private["id"].as_str().unwrap().to_owned();
    let m2 = api
        .post(
            &format!("{P}/contacts/{contact_uuid}/company-memberships"),
            json!({ "companyId": private_id, "role": "Contributor" }),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(m2["isPrimary"], false);
    let m2_id = is_uuid(&m2["id"]);
    let dup =
        api.post(&format!("{P}/contacts/{contact_uuid}/company-memberships"), json!({ "companyId": private_id })).await;
    assert_eq!(dup.status.as_u16(), 409, "{}", dup.text);
    let p = api
        .patch(
            &format!("{P}/contacts/{contact_uuid}/company-memberships/{m2_id}"),
            json!({ "isPrimary": true, "role": "Editor" }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!((p["isPrimary"].as_bool(), p["role"].as_str()), (Some(true), Some("Editor")));
    assert_eq!(api.get(&format!("{P}/contacts/{contact_uuid}")).await.ok(200)["companyId"], private_id.as_str());
    api.delete(&format!("{P}/contacts/{contact_uuid}/company-memberships/{m2_id}")).await.ok(200);
    assert_eq!(api.get(&format!("{P}/contacts/{contact_uuid}")).await.ok(200)["companyId"], Value::Null);
    let renamed_contact =
        api.patch(&format!("{P}/contacts/{contact_uuid}"), json!({ "title": "Managing Editor" })).await.ok(200).clone();
    assert_eq!(renamed_contact["title"], "Managing Editor");
    // A marketing list (made in /v1) gets the company's contacts, once.
    let list = v1.post("/v1/link-building/crm/marketing-list", json!({ "name": "Q1 editors" })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let added = api
        .post(
            &format!("{P}/prospecting/add-to-marketing-list"),
            json!({ "listId": uuid_of(&list), "companyIds": [co_id] }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!((added["added"].as_u64(), added["memberCount"].as_i64()), (Some(1), Some(1)), "{added}");
    let again = api
        .post(
            &format!("{P}/prospecting/add-to-marketing-list"),
            json!({ "listId": uuid_of(&list), "contactIds": [contact_uuid] }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (again["added"].as_u64(), again["skipped"].as_u64(), again["memberCount"].as_i64()),
        (Some(0), Some(1), Some(1))
    );
    let without = api
        .post(&format!("{P}/outbound-email"), json!({ "leadId": a_id, "connectionId": uuid_of(&mbx), "channel": "smtp", "subject": "Hi", "htmlBody": "<p>Hi</p>" }))
        .await;
    error(&without, 422, "contactId: the lead has no contact; name one");
    api.patch(&format!("{P}/leads/{a_id}"), json!({ "contactId": uuid_of(&contact) })).await.ok(200);
    let wrong_channel = api
        .post(&format!("{P}/outbound-email"), json!({ "leadId": a_id, "connectionId": uuid_of(&mbx), "channel": "gmail", "subject": "Hi", "htmlBody": "<p>Hi</p>" }))
        .await;
    error(&wrong_channel, 422, "channel: the connection is smtp, not gmail");
    let sent = api
        .post(
            &format!("{P}/outbound-email"),
            json!({ "leadId": a_id, "connectionId": uuid_of(&mbx), "channel": "smtp", "subject": "Guest post draft",
                    "htmlBody": "<html><body><p>Hi Marina,</p><p>Here is the <b>draft</b>.</p></body></html>" }),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 202, "{}", sent.text);
    is_uuid(&sent.body["id"]);
    let mut got = None;
    for _ in 0..100 {
        if let Some(m) =
            smtp.received().into_iter().find(|m| m.rcpt_tos.iter().any(|r| r == "marina@engineering-blog.com"))
        {
            got = Some(m);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mail = got.expect("aiosmtpd received the outbound email");
    let raw = String::from_utf8_lossy(&mail.raw).replace("=\r\n", "");
    assert!(raw.contains("multipart/alternative") && raw.contains("<b>draft</b>"), "{raw}");
    assert!(raw.contains("Hi Marina,"), "the text alternative: {raw}");
    // The send moved the relationship on (CONTACTED_BY_US already); wait for its EMAIL_SENT.
    let mut sends = 0;
    for _ in 0..50 {
        let d = api.get(&format!("{P}/dashboard")).await.ok(200).clone();
        sends = d["sendsThisWeek"].as_u64().unwrap();
        if sends == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sends, 1);

    // The dashboard.
    let d = api.get(&format!("{P}/dashboard")).await.ok(200).clone();
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "activitiesThisWeek",
            "leadsByStage",
            "openPipelineValue",
            "repliesThisWeek",
            "sendsThisWeek",
            "tasksDue",
            "tasksOverdue"
        ]
    );
    assert_eq!(
        (d["activitiesThisWeek"].as_u64(), d["tasksDue"].as_u64(), d["tasksOverdue"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{d}"
    );
    assert_eq!(d["openPipelineValue"], 650.0);
    let contacted_row =
        d["leadsByStage"].as_array().unwrap().iter().find(|s| s["name"] == "Contacted").unwrap().clone();
    assert_eq!(contacted_row, json!({ "stageId": contacted, "name": "Contacted", "count": 1, "value": 500.0 }));

    // Deleting a stage with leads moves them (to moveLeadsTo) first.
    let prospecting = id_of("Prospecting");
    let r = api.send(reqwest::Method::DELETE, &format!("{P}/pipeline-stages/{prospecting}"), Some("{}")).await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text);
    let r = api
        .send(
            reqwest::Method::DELETE,
            &format!("{P}/pipeline-stages/{prospecting}"),
            Some(&json!({ "moveLeadsTo": neg_id }).to_string()),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["movingLeads"].as_u64()), (202, Some(1)), "{}", r.text);
    let mut moved = false;
    for _ in 0..100 {
        let stages = api.get(&format!("{P}/pipeline-stages")).await.ok(200).clone();
        if stages["stages"].as_array().unwrap().iter().all(|s| s["id"] != prospecting.as_str()) {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(moved, "the stage went once its lead moved");
    assert_eq!(api.get(&format!("{P}/leads/{b_id}")).await.ok(200)["stage"], "Negotiation");

    // Deleting the contact removes it from the workspace (memberships, its own fields).
    let r = api.delete(&format!("{P}/contacts/{contact_uuid}")).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert_eq!(api.get(&format!("{P}/contacts/{contact_uuid}")).await.status.as_u16(), 404);
    assert_eq!(api.get(&format!("{P}/contacts")).await.ok(200)["total"], 0);

    // Replay finds no difference.
    let report = tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        let out = common::cli(&env.opts, &["replay"]);
        env.restart();
        out
    });
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(report["opportunities"], 2, "{report}");
    assert_eq!(report["mismatches"], json!([]), "{report}");
});
