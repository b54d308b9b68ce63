//! Pipeline stages and opportunities in `/v1` (the core of the seed 004 dialect): a workspace's own
//! stages mapped to relationship statuses, opportunities linked to relationships, their moves as
//! events in both directions, counters, validation, isolation and replay. Black-box against the
//! binary on both backends.

mod common;
use common::{Api, Env};
use serde_json::{json, Value};

const STG: &str = "/v1/link-building/crm/stage";
const OPP: &str = "/v1/link-building/crm/opportunity";
const REL: &str = "/v1/link-building/crm/relationship";
const EV: &str = "/v1/link-building/crm/event";

async fn workspace_key(env: &Env, name: &str) -> (Api, String) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    (agency.with_key(&agency.create_key(&ws, None).await), ws)
}

async fn stages(api: &Api) -> Vec<Value> {
    api.get(STG).await.ok(200)["data"].as_array().unwrap().clone()
}

fn id_named(stages: &[Value], name: &str) -> String {
    stages.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no stage {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn count_of(stages: &[Value], name: &str) -> (i64, f64) {
    let s = stages.iter().find(|s| s["name"] == name).unwrap();
    (s["leadCount"].as_i64().unwrap(), s["value"].as_f64().unwrap())
}

async fn stage_events(api: &Api, rel: &str) -> Vec<Value> {
    let r = api.get(&format!("{EV}?relationshipId={rel}&type=LEAD_STAGE_CHANGED,STATUS_CHANGED&limit=50")).await;
    let mut events = r.ok(200)["data"].as_array().unwrap().clone();
    events.reverse();
    events
}

on_both_backends!(stages_opportunities_and_their_events, |env| {
    let (api, _ws) = workspace_key(&env, "Pipeline").await;
    let (other, _) = workspace_key(&env, "Elsewhere").await;

    // Every workspace starts with one stage per status a relationship can hold, in pipeline order.
    let list = api.get(STG).await.ok(200).clone();
    let s = list["data"].as_array().unwrap().clone();
    let keys: Vec<&str> = s.iter().map(|s| s["systemKey"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "PROSPECTING",
            "APPROVED_TO_CONTACT",
            "QUEUED",
            "CONTACTED_BY_US",
            "ACTIVELY_ENGAGED",
            "LINK_PLACED",
            "NOT_INTERESTED",
            "INACTIVE"
        ]
    );
    assert_eq!(list["total"], 8);
    for (i, st) in s.iter().enumerate() {
        assert!(st["id"].as_str().unwrap().starts_with("stg_"), "{st}");
        assert_eq!(st["sortOrder"], i as i64);
        assert_eq!((st["leadCount"].as_i64(), st["value"].as_f64()), (Some(0), Some(0.0)));
    }
    let kinds: Vec<&str> = s.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["open", "open", "open", "open", "open", "won", "lost", "lost"]);
    // Reading again gives the same stages (written once).
    assert_eq!(stages(&api).await, s);

    // A custom stage goes after the last open one and stands for the status before it.
    let neg = api.post(STG, json!({ "name": "Negotiating", "colorKey": "teal" })).await.ok(201).clone();
    assert_eq!((neg["sortOrder"].as_i64(), neg["systemKey"].as_str()), (Some(5), Some("ACTIVELY_ENGAGED")));
    assert_eq!((neg["kind"].as_str(), neg["colorKey"].as_str()), (Some("open"), Some("teal")));
    let neg_id = neg["id"].as_str().unwrap().to_owned();
    api.post(STG, json!({ "name": "negotiating" })).await.problem(409, "stage_name_taken");
    api.post(STG, json!({ "name": "Other org", "systemKey": "CONTACTED_BY_OTHER_ORG" }))
        .await
        .problem(422, "invalid_system_key");
    api.post(STG, json!({ "name": "" })).await.problem(400, "invalid_request");
    api.post(STG, json!({ "name": "X", "defaultProbabilityPct": 101 })).await.problem(400, "invalid_request");
    api.post(STG, json!({ "name": "X", "kind": "maybe" })).await.problem(400, "invalid_request");

    // Reorder: Negotiating before Engaged. Every stage must be named once.
    let mut ids: Vec<String> = stages(&api).await.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    ids.swap(4, 5);
    let r = api.post(&format!("{STG}/reorder"), json!({ "stageIds": ids })).await.ok(200).clone();
    let names: Vec<&str> = r["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(&names[3..6], ["Contacted", "Negotiating", "Engaged"]);
    api.post(&format!("{STG}/reorder"), json!({ "stageIds": &ids[1..] })).await.problem(422, "invalid_stage_order");
    let twice: Vec<&String> = ids.iter().chain(std::iter::once(&ids[0])).collect();
    api.post(&format!("{STG}/reorder"), json!({ "stageIds": twice })).await.problem(422, "invalid_stage_order");
    let s = stages(&api).await;
    let (prospecting, contacted, engaged, placed) =
        (id_named(&s, "Prospecting"), id_named(&s, "Contacted"), id_named(&s, "Engaged"), id_named(&s, "Link placed"));

    // Two opportunities on one partner: by domain (the relationship is made) and by relationship.
    let a = api
        .post(
            OPP,
            json!({ "title": "Guest post", "domain": "engineering-blog.com", "value": 500,
                           "expectedCloseDate": "2027-01-31" }),
        )
        .await
        .ok(201)
        .clone();
    let rel = a["relationshipId"].as_str().unwrap().to_owned();
    assert!(a["id"].as_str().unwrap().starts_with("opp_"), "{a}");
    assert_eq!((a["stageId"].as_str(), a["stage"].as_str()), (Some(prospecting.as_str()), Some("Prospecting")));
    assert_eq!((a["status"].as_str(), a["probabilityPct"].as_i64()), (Some("open"), Some(10)));
    assert_eq!((a["value"].as_f64(), a["expectedCloseDate"].as_str()), (Some(500.0), Some("2027-01-31")));
    let a_id = a["id"].as_str().unwrap().to_owned();
    let b = api
        .post(OPP, json!({ "title": "Link insertion", "relationshipId": rel, "value": 200.5, "probabilityPct": 40 }))
        .await
        .ok(201)
        .clone();
    let b_id = b["id"].as_str().unwrap().to_owned();
    assert_eq!((b["stageId"].as_str(), b["probabilityPct"].as_i64()), (Some(prospecting.as_str()), Some(40)));
    let s = stages(&api).await;
    assert_eq!(count_of(&s, "Prospecting"), (2, 700.5));

    // A person moves A to Contacted: LEAD_STAGE_CHANGED, then STATUS_CHANGED to CONTACTED_BY_US.
    let moved = api.post(&format!("{OPP}/{a_id}/move"), json!({ "stageId": contacted })).await.ok(200).clone();
    assert_eq!((moved["stage"].as_str(), moved["version"].as_i64()), (Some("Contacted"), Some(2)));
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["status"], "CONTACTED_BY_US");
    let events = stage_events(&api, &rel).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["LEAD_STAGE_CHANGED", "STATUS_CHANGED"]);
    assert_eq!(events[0]["metadata"]["opportunityId"], a_id.as_str());
    assert_eq!(
        (events[0]["metadata"]["toStageId"].as_str(), events[0]["metadata"]["automatic"].as_bool()),
        (Some(contacted.as_str()), Some(false))
    );
    assert_eq!(
        (events[1]["metadata"]["from"].as_str(), events[1]["metadata"]["to"].as_str()),
        (Some("PROSPECTING"), Some("CONTACTED_BY_US"))
    );
    let s = stages(&api).await;
    assert_eq!((count_of(&s, "Prospecting"), count_of(&s, "Contacted")), ((1, 200.5), (1, 500.0)));
    // Moving to the stage it is in changes nothing.
    let same = api.post(&format!("{OPP}/{a_id}/move"), json!({ "stageId": contacted })).await.ok(200).clone();
    assert_eq!(same["version"], 2);
    assert_eq!(stage_events(&api, &rel).await.len(), 2);

    // A reply (derived status ACTIVELY_ENGAGED) carries both open opportunities to the first
    // stage standing for it, Negotiating, in the reply's own commit.
    api.post(EV, json!({ "relationshipId": rel, "type": "EMAIL_RECEIVED", "subject": "Re: guest post" })).await.ok(201);
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["status"], "ACTIVELY_ENGAGED");
    for id in [&a_id, &b_id] {
        let o = api.get(&format!("{OPP}/{id}")).await.ok(200).clone();
        assert_eq!((o["stageId"].as_str(), o["stage"].as_str()), (Some(neg_id.as_str()), Some("Negotiating")), "{o}");
    }
    let events = stage_events(&api, &rel).await;
    let auto: Vec<&Value> = events.iter().filter(|e| e["metadata"]["automatic"] == true).collect();
    assert_eq!(auto.len(), 2, "{events:?}");
    assert!(auto.iter().all(|e| e["metadata"]["toStageId"] == neg_id.as_str()));
    let s = stages(&api).await;
    assert_eq!(count_of(&s, "Negotiating"), (2, 700.5));
    assert_eq!((count_of(&s, "Prospecting").0, count_of(&s, "Contacted").0), (0, 0));

    // Won: B to Link placed; the relationship follows.
    let won = api.post(&format!("{OPP}/{b_id}/move"), json!({ "stageId": placed })).await.ok(200).clone();
    assert_eq!(won["status"], "won");
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["status"], "LINK_PLACED");
    // A closed opportunity is not moved by later status changes; an open one behind is not moved
    // back either (A stays in Negotiating).
    assert_eq!(api.get(&format!("{OPP}/{a_id}")).await.ok(200)["stage"], "Negotiating");

    // Deleting a stage with opportunities needs a destination; they move there without touching
    // the relationship's status.
    api.delete(&format!("{STG}/{neg_id}")).await.problem(409, "stage_has_leads");
    let r =
        api.send(reqwest::Method::DELETE, &format!("{STG}/{neg_id}?moveLeadsTo={engaged}"), None).await.ok(202).clone();
    assert_eq!((r["deleted"].as_bool(), r["movingLeads"].as_u64()), (Some(false), Some(1)));
    // While it is being deleted nothing moves into it; a second delete answers the same.
    let into = api.post(&format!("{OPP}/{b_id}/move"), json!({ "stageId": neg_id })).await;
    assert!(into.status.as_u16() == 409 || into.status.as_u16() == 404, "{}", into.text);
    // The job moves A and removes the stage.
    let mut gone = false;
    for _ in 0..100 {
        if stages(&api).await.iter().all(|s| s["id"] != neg_id.as_str()) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the stage was removed after its opportunities moved");
    assert_eq!(api.get(&format!("{OPP}/{a_id}")).await.ok(200)["stage"], "Engaged");
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["status"], "LINK_PLACED");
    let s = stages(&api).await;
    assert_eq!(s.len(), 8);
    assert_eq!((count_of(&s, "Engaged"), count_of(&s, "Link placed")), ((1, 500.0), (1, 200.5)));
    api.post(&format!("{OPP}/{a_id}/move"), json!({ "stageId": neg_id })).await.problem(404, "stage_not_found");

    // An unlinked opportunity: no relationship, no events; its value counts in its stage.
    let c = api.post(OPP, json!({ "title": "Sponsorship", "value": 1000 })).await.ok(201).clone();
    let c_id = c["id"].as_str().unwrap().to_owned();
    assert_eq!((c["relationshipId"].clone(), c["stage"].as_str()), (Value::Null, Some("Prospecting")));
    let u =
        api.patch(&format!("{OPP}/{c_id}"), json!({ "value": 1500, "title": "Sponsorship Q1" })).await.ok(200).clone();
    assert_eq!(
        (u["value"].as_f64(), u["title"].as_str(), u["version"].as_i64()),
        (Some(1500.0), Some("Sponsorship Q1"), Some(2))
    );
    assert_eq!(count_of(&stages(&api).await, "Prospecting"), (1, 1500.0));
    let stale = api.with_header("If-Match", "\"1\"").patch(&format!("{OPP}/{c_id}"), json!({ "title": "x" })).await;
    stale.problem(412, "precondition_failed");

    // Lists: newest first, by stage, by relationship; totals from the counters.
    let all = api.get(OPP).await.ok(200).clone();
    let order: Vec<&str> = all["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(order, [c_id.as_str(), b_id.as_str(), a_id.as_str()]);
    assert_eq!(all["total"], 3);
    let by_stage = api.get(&format!("{OPP}?stageId={engaged}")).await.ok(200).clone();
    assert_eq!((by_stage["data"][0]["id"].as_str(), by_stage["total"].as_u64()), (Some(a_id.as_str()), Some(1)));
    let by_rel = api.get(&format!("{OPP}?relationshipId={rel}")).await.ok(200).clone();
    assert_eq!(by_rel["data"].as_array().unwrap().len(), 2);
    let page = api.get(&format!("{OPP}?limit=2")).await.ok(200).clone();
    let next = page["nextCursor"].as_str().unwrap();
    let rest = api.get(&format!("{OPP}?limit=2&cursor={next}")).await.ok(200).clone();
    assert_eq!(rest["data"][0]["id"], a_id.as_str());

    // Validation.
    api.post(OPP, json!({ "title": "x", "value": -1 })).await.problem(400, "invalid_request");
    api.post(OPP, json!({ "title": "x", "probabilityPct": 101 })).await.problem(400, "invalid_request");
    api.post(OPP, json!({ "title": "x", "expectedCloseDate": "2027-02-30" })).await.problem(422, "invalid_date");
    api.post(OPP, json!({ "title": "x", "stageId": "stg_00000000000000000000000000" }))
        .await
        .problem(404, "stage_not_found");
    api.post(OPP, json!({ "title": "x", "relationshipId": rel, "domain": "devleadweekly.com" }))
        .await
        .problem(422, "invalid_request");

    // Another workspace sees none of it, and its own stages are its own.
    other.get(&format!("{OPP}/{a_id}")).await.problem(404, "opportunity_not_found");
    assert_eq!(other.get(OPP).await.ok(200)["data"], json!([]));
    other
        .post(&format!("{OPP}/{a_id}/move"), json!({ "stageId": engaged }))
        .await
        .problem(404, "opportunity_not_found");
    other.delete(&format!("{OPP}/{c_id}")).await.problem(404, "opportunity_not_found");
    other.post(OPP, json!({ "title": "x", "relationshipId": rel })).await.problem(404, "relationship_not_found");
    let theirs = stages(&other).await;
    assert!(theirs.iter().all(|t| t["id"] != engaged.as_str() && t["leadCount"] == 0));
    other.patch(&format!("{STG}/{engaged}"), json!({ "name": "Mine" })).await.problem(404, "stage_not_found");

    // Delete: counters follow.
    api.delete(&format!("{OPP}/{c_id}")).await.ok(204);
    api.get(&format!("{OPP}/{c_id}")).await.problem(404, "opportunity_not_found");
    assert_eq!(count_of(&stages(&api).await, "Prospecting"), (0, 0.0));

    // The last open stage stays.
    let (solo, _) = workspace_key(&env, "Solo").await;
    let open: Vec<String> = stages(&solo)
        .await
        .iter()
        .filter(|s| s["kind"] == "open")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &open[1..] {
        solo.delete(&format!("{STG}/{id}")).await.ok(200);
    }
    solo.delete(&format!("{STG}/{}", open[0])).await.problem(409, "last_open_stage");
    solo.patch(&format!("{STG}/{}", open[0]), json!({ "kind": "won" })).await.problem(409, "last_open_stage");

    // Replay derives every linked opportunity's stage from the relationship's events alone.
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

on_both_backends!(activities_tasks_and_the_dashboard, |env| {
    let (api, _ws) = workspace_key(&env, "Desk").await;
    let (other, _) = workspace_key(&env, "Elsewhere").await;
    const ACT: &str = "/v1/link-building/crm/activity";
    const TASK: &str = "/v1/link-building/crm/task";

    let a = api
        .post(OPP, json!({ "title": "Guest post", "domain": "engineering-blog.com", "value": 400 }))
        .await
        .ok(201)
        .clone();
    let (a_id, rel) = (a["id"].as_str().unwrap().to_owned(), a["relationshipId"].as_str().unwrap().to_owned());
    let loose = api.post(OPP, json!({ "title": "Podcast", "value": 100 })).await.ok(201).clone();
    let loose_id = loose["id"].as_str().unwrap().to_owned();
    let before = api.get(&format!("{REL}/{rel}")).await.ok(200).clone();

    // A logged call on a linked opportunity is an ACTIVITY_LOGGED event of its relationship; it
    // moves no status. One on an unlinked opportunity is the log line alone.
    let call = api
        .post(ACT, json!({ "type": "call", "subject": "Intro call", "body": "Talked rates", "opportunityId": a_id }))
        .await
        .ok(201)
        .clone();
    assert!(call["id"].as_str().unwrap().starts_with("evt_"), "{call}");
    assert_eq!((call["type"].as_str(), call["relationshipId"].as_str()), (Some("call"), Some(rel.as_str())));
    let ev = api.get(&format!("{EV}/{}", call["id"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!((ev["type"].as_str(), ev["metadata"]["kind"].as_str()), (Some("ACTIVITY_LOGGED"), Some("call")));
    assert_eq!(ev["metadata"]["opportunityId"], a_id.as_str());
    let after = api.get(&format!("{REL}/{rel}")).await.ok(200).clone();
    assert_eq!(after["status"], before["status"]);
    // A logged "email" is not a send: the shared account's counters do not move.
    api.post(ACT, json!({ "type": "email", "subject": "Sent the brief", "relationshipId": rel })).await.ok(201);
    let acct = api
        .get(&format!("/v1/link-building/crm/account/{}", after["accountId"].as_str().unwrap()))
        .await
        .ok(200)
        .clone();
    assert_eq!(acct["contactAttemptCount"], 0, "{acct}");
    let note = api
        .post(ACT, json!({ "type": "note", "subject": "Host wants audio only", "opportunityId": loose_id }))
        .await
        .ok(201)
        .clone();
    assert_eq!(note["relationshipId"], Value::Null);
    api.post(ACT, json!({ "type": "fax", "subject": "x", "opportunityId": a_id }))
        .await
        .problem(400, "invalid_request");
    api.post(ACT, json!({ "type": "call", "subject": "x" })).await.problem(422, "invalid_request");
    api.post(ACT, json!({ "type": "call", "subject": "x", "occurredAt": "2099-01-01T00:00:00Z" }))
        .await
        .problem(400, "invalid_request");

    let all = api.get(ACT).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["id"], note["id"]);
    let of_a = api.get(&format!("{ACT}?opportunityId={a_id}")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(of_a.len(), 1);
    let of_rel = api.get(&format!("{ACT}?relationshipId={rel}")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(of_rel.len(), 2);

    // Tasks: one overdue, one due later today, one done.
    let now = chrono::Utc::now();
    let past = (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let soon = (now + chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let t1 =
        api.post(TASK, json!({ "title": "Send invoice", "dueAt": past, "opportunityId": a_id })).await.ok(201).clone();
    assert_eq!((t1["status"].as_str(), t1["relationshipId"].as_str()), (Some("open"), Some(rel.as_str())));
    let t2 = api.post(TASK, json!({ "title": "Follow up", "dueAt": soon })).await.ok(201).clone();
    let t3 = api.post(TASK, json!({ "title": "Draft pitch", "dueAt": past })).await.ok(201).clone();
    let done = api.post(&format!("{TASK}/{}/complete", t3["id"].as_str().unwrap()), json!({})).await.ok(200).clone();
    assert_eq!(done["status"], "done");
    assert!(done["completedAt"].is_string());
    let due = api.get(&format!("{TASK}?dueBefore={soon}")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["id"], t1["id"]);
    let of_a = api.get(&format!("{TASK}?opportunityId={a_id}")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(of_a.len(), 1);
    let open = api.get(&format!("{TASK}?status=open")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(open.len(), 2);
    let reopened = api
        .patch(&format!("{TASK}/{}", t3["id"].as_str().unwrap()), json!({ "status": "open", "dueAt": null }))
        .await
        .ok(200)
        .clone();
    assert_eq!((reopened["completedAt"].clone(), reopened["dueAt"].clone()), (Value::Null, Value::Null));
    api.post(TASK, json!({ "title": "x", "dueAt": "soon" })).await.problem(400, "invalid_request");
    other.get(&format!("{TASK}/{}", t1["id"].as_str().unwrap())).await.problem(404, "task_not_found");
    assert_eq!(other.get(ACT).await.ok(200)["data"], json!([]));
    other
        .post(ACT, json!({ "type": "call", "subject": "x", "opportunityId": a_id }))
        .await
        .problem(404, "opportunity_not_found");

    // A send and a reply this week.
    api.post(EV, json!({ "relationshipId": rel, "type": "EMAIL_SENT", "subject": "Pitch" })).await.ok(201);
    api.post(EV, json!({ "relationshipId": rel, "type": "EMAIL_RECEIVED", "subject": "Re: Pitch" })).await.ok(201);

    let d = api.get("/v1/link-building/crm/dashboard").await.ok(200).clone();
    assert_eq!(
        (d["activitiesThisWeek"].as_u64(), d["sendsThisWeek"].as_u64(), d["repliesThisWeek"].as_u64()),
        (Some(3), Some(1), Some(1)),
        "{d}"
    );
    assert_eq!((d["tasksOverdue"].as_u64(), d["tasksDue"].as_u64()), (Some(1), Some(1)), "{d}");
    // The reply carried A to Engaged; the podcast stays in Prospecting.
    let by_stage = d["leadsByStage"].as_array().unwrap();
    let stage = |n: &str| by_stage.iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!((stage("Engaged")["count"].as_i64(), stage("Engaged")["value"].as_f64()), (Some(1), Some(400.0)));
    assert_eq!(stage("Prospecting")["count"], 1);
    assert_eq!(d["openPipelineValue"], 500.0);
    assert_eq!(d["countsCapped"], false);
    let theirs = other.get("/v1/link-building/crm/dashboard").await.ok(200).clone();
    assert_eq!((theirs["activitiesThisWeek"].as_u64(), theirs["openPipelineValue"].as_f64()), (Some(0), Some(0.0)));

    api.delete(&format!("{TASK}/{}", t2["id"].as_str().unwrap())).await.ok(204);
    api.delete(&format!("{TASK}/{}", t2["id"].as_str().unwrap())).await.problem(404, "task_not_found");
});

on_both_backends!(companies_members_and_owners, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Companies").await;
    const CO: &str = "/v1/link-building/crm/company";
    let m1 = agency
        .post(&format!("/v1/workspaces/{ws}/members"), json!({ "name": "Ana", "email": "Ana@Agency.example" }))
        .await
        .ok(201)
        .clone();
    assert_eq!(m1["email"], "ana@agency.example");
    let m1 = m1["id"].as_str().unwrap().to_owned();
    let m2 = agency.post(&format!("/v1/workspaces/{ws}/members"), json!({ "name": "Ben" })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(agency.get(&format!("/v1/workspaces/{ws}/members")).await.ok(200)["total"], 2);
    let key = agency
        .post(&format!("/v1/workspaces/{ws}/api-keys"), json!({ "name": "ana", "memberId": m1 }))
        .await
        .ok(201)
        .clone();
    assert_eq!(key["memberId"], m1.as_str());
    let api = agency.with_key(key["key"].as_str().unwrap());
    let (other, _) = workspace_key(&env, "Elsewhere").await;
    agency
        .post(
            &format!("/v1/workspaces/{ws}/api-keys"),
            json!({ "name": "x", "memberId": "mem_00000000000000000000000000" }),
        )
        .await
        .problem(404, "member_not_found");

    // A private company (no domain) and a partner's.
    let acme = api.post(CO, json!({ "name": "Acme Blog Network", "ownerId": m1 })).await.ok(201).clone();
    assert!(acme["id"].as_str().unwrap().starts_with("co_"), "{acme}");
    assert_eq!((acme["domain"].clone(), acme["accountId"].clone()), (Value::Null, Value::Null));
    assert_eq!((acme["relationshipType"].as_str(), acme["lifecycle"].as_str()), (Some("prospect"), Some("active")));
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    let eng = api.post(CO, json!({ "name": "Engineering Blog", "domain": "https://Engineering-Blog.com/", "relationshipType": "vendor" })).await.ok(201).clone();
    assert_eq!(eng["domain"], "engineering-blog.com");
    assert!(eng["accountId"].as_str().unwrap().starts_with("acct_"));
    let eng_id = eng["id"].as_str().unwrap().to_owned();
    let dup = api.post(CO, json!({ "name": "Again", "domain": "engineering-blog.com" })).await;
    assert_eq!(dup.problem(409, "company_exists")["details"]["companyId"], eng_id.as_str());
    api.post(CO, json!({ "name": "x", "ownerId": "mem_00000000000000000000000000" }))
        .await
        .problem(404, "member_not_found");

    // Lists: search, owner (me, unassigned, an id), type and lifecycle.
    let names = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(api.get(&format!("{CO}?search=ACME")).await.ok(200)), ["Acme Blog Network"]);
    assert_eq!(names(api.get(&format!("{CO}?owner=me")).await.ok(200)), ["Acme Blog Network"]);
    assert_eq!(names(api.get(&format!("{CO}?owner=unassigned")).await.ok(200)), ["Engineering Blog"]);
    assert_eq!(names(api.get(&format!("{CO}?owner={m2}")).await.ok(200)), Vec::<String>::new());
    assert_eq!(names(api.get(&format!("{CO}?relationshipType=vendor")).await.ok(200)), ["Engineering Blog"]);
    assert_eq!(names(api.get(&format!("{CO}?lifecycle=active")).await.ok(200)).len(), 2);
    let page = api.get(&format!("{CO}?limit=1")).await.ok(200).clone();
    let rest = api.get(&format!("{CO}?limit=1&cursor={}", page["nextCursor"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!(
        (names(&page), names(&rest)),
        (vec!["Engineering Blog".to_owned()], vec!["Acme Blog Network".to_owned()])
    );
    // A key that acts for no member owns nothing.
    assert_eq!(agency.in_workspace(&ws).get(&format!("{CO}?owner=me")).await.ok(200)["data"], json!([]));

    // An opportunity on the private company is unlinked; setting the company's domain links it.
    let o =
        api.post(OPP, json!({ "title": "Network deal", "companyId": acme_id, "ownerId": m2 })).await.ok(201).clone();
    assert_eq!(
        (o["companyId"].as_str(), o["relationshipId"].clone(), o["ownerId"].as_str()),
        (Some(acme_id.as_str()), Value::Null, Some(m2.as_str()))
    );
    let o_id = o["id"].as_str().unwrap().to_owned();
    let linked = api
        .patch(
            &format!("{CO}/{acme_id}"),
            json!({ "domain": "devleadweekly.com", "lifecycle": "inactive", "ownerId": null }),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (linked["domain"].as_str(), linked["lifecycle"].as_str(), linked["ownerId"].clone()),
        (Some("devleadweekly.com"), Some("inactive"), Value::Null)
    );
    let o = api.get(&format!("{OPP}/{o_id}")).await.ok(200).clone();
    let rel = o["relationshipId"].as_str().expect("linked by the domain").to_owned();
    assert_eq!(api.get(&format!("{REL}/{rel}")).await.ok(200)["accountDomain"], "devleadweekly.com");
    api.patch(&format!("{CO}/{acme_id}"), json!({ "domain": "other.example.com" }))
        .await
        .problem(422, "company_domain_set");
    // Moving it now writes the relationship's events.
    let stages_now = stages(&api).await;
    api.post(&format!("{OPP}/{o_id}/move"), json!({ "stageId": id_named(&stages_now, "Contacted") })).await.ok(200);
    assert_eq!(stage_events(&api, &rel).await.len(), 2);

    // An opportunity on the partner's company is linked at once; lists by company and owner.
    let p = api.post(OPP, json!({ "title": "Guest post", "companyId": eng_id })).await.ok(201).clone();
    assert!(p["relationshipId"].is_string());
    api.post(OPP, json!({ "title": "x", "companyId": eng_id, "domain": "engineering-blog.com" }))
        .await
        .problem(422, "invalid_request");
    let by_co = api.get(&format!("{OPP}?companyId={eng_id}")).await.ok(200).clone();
    assert_eq!(by_co["data"].as_array().unwrap().len(), 1);
    assert_eq!(api.get(&format!("{OPP}?owner={m2}")).await.ok(200)["data"].as_array().unwrap().len(), 1);

    // A company's activity is an event on its relationship; tasks take an assignee.
    let a = api
        .post(
            "/v1/link-building/crm/activity",
            json!({ "type": "meeting", "subject": "Kick-off", "companyId": eng_id }),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (a["companyId"].as_str(), a["relationshipId"].as_str()),
        (Some(eng_id.as_str()), p["relationshipId"].as_str())
    );
    let by_co = api.get(&format!("/v1/link-building/crm/activity?companyId={eng_id}")).await.ok(200).clone();
    assert_eq!(by_co["data"].as_array().unwrap().len(), 1);
    let t = api
        .post("/v1/link-building/crm/task", json!({ "title": "Call Ana back", "assigneeId": m1, "companyId": eng_id }))
        .await
        .ok(201)
        .clone();
    assert_eq!((t["assigneeId"].as_str(), t["companyId"].as_str()), (Some(m1.as_str()), Some(eng_id.as_str())));
    assert_eq!(api.get("/v1/link-building/crm/task?assignee=me").await.ok(200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/v1/link-building/crm/task?assignee=unassigned").await.ok(200)["data"].as_array().unwrap().len(),
        0
    );

    // Another workspace sees none of it.
    other.get(&format!("{CO}/{eng_id}")).await.problem(404, "company_not_found");
    assert_eq!(other.get(CO).await.ok(200)["data"], json!([]));
    other.post(OPP, json!({ "title": "x", "companyId": eng_id })).await.problem(404, "company_not_found");
    // Its own company for the same partner is its own.
    other.post(CO, json!({ "name": "Eng", "domain": "engineering-blog.com" })).await.ok(201);
});
