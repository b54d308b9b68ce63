//! One function per route: the request in our names, the operations called, the answer in the
//! peer's shape. Nothing here decides anything the operations do not.

use crate::shapes::{self, LEAD_NAMES};
use crate::wire::Detail;
use crate::{Out, Req};
use axum::http::StatusCode;
use futures::future::BoxFuture;
use linkcrm_domain::IdKind;
use serde_json::{json, Map, Value};

pub type Result = std::result::Result<Out, Detail>;

/// Leads one call of ours takes (`link_building.campaign.leads.*`).
const CHUNK: usize = 100;

macro_rules! handler {
    ($(#[$m:meta])* $name:ident, |$r:ident| $body:block) => {
        $(#[$m])*
        pub fn $name<'a>($r: &'a Req) -> BoxFuture<'a, Result> {
            Box::pin(async move $body)
        }
    };
}

fn ok(v: Value) -> Result {
    Ok(Out::Json(StatusCode::OK, v))
}

fn created(v: Value) -> Result {
    Ok(Out::Json(StatusCode::CREATED, v))
}

/// Copies the request's fields into our names (absent ones stay absent).
fn rename(r: &Req, pairs: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    for (theirs, ours) in pairs {
        if let Some(v) = r.field(theirs) {
            out.insert((*ours).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// A campaign id in the path: one of ours, or the resource does not exist.
fn campaign_id(r: &Req) -> std::result::Result<String, Detail> {
    let id = r.param("campaign_id");
    if linkcrm_domain::id::is_id(IdKind::Campaign, id) {
        Ok(id.to_owned())
    } else {
        Err(Detail::not_found())
    }
}

/// Our keys in snake_case, all the way down.
pub fn snake_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (crate::wire::snake(k), snake_keys(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(snake_keys).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Campaigns

handler!(create_campaign, |r| {
    let mut input = rename(r, &[("name", "name"), ("description", "description"), ("keywords", "keywords")]);
    input["type"] = json!("custom");
    let c = r.op("link_building.campaign.create", input, &[]).await?;
    created(shapes::campaign(&c))
});

handler!(list_campaigns, |r| {
    // Deleted campaigns (cancelled) are not listed, as the peer's are gone.
    let input = json!({ "type": "custom", "status": "active,paused,completed", "limit": 200 });
    let items = r.all("link_building.campaign.list", input, &[]).await?;
    ok(Value::Array(items.iter().map(shapes::campaign).collect()))
});

handler!(get_campaign, |r| {
    let id = campaign_id(r)?;
    let c = r.op("link_building.campaign.get", json!({ "id": id }), &[]).await?;
    if c.get("type").and_then(Value::as_str) != Some("custom") {
        return Err(Detail::not_found());
    }
    let leads = r.all("link_building.campaign.leads.list", json!({ "id": id, "limit": 200 }), &[]).await?;
    let mut out = shapes::campaign(&c);
    out["lead_count"] = c.get("membersCount").cloned().unwrap_or_else(|| json!(leads.len()));
    out["leads"] = Value::Array(leads.iter().map(shapes::lead).collect());
    ok(out)
});

handler!(delete_campaign, |r| {
    let id = campaign_id(r)?;
    r.op("link_building.campaign.cancel", json!({ "id": id }), &[]).await?;
    Ok(Out::Empty(StatusCode::NO_CONTENT))
});

// ---------------------------------------------------------------------------------------------
// Leads

/// Where in the seed's lead a failure of ours points.
fn lead_field(code: &str) -> &'static str {
    match code {
        "invalid_email" => "contact_email",
        "invalid_score" => "quality_score",
        _ => "website_url",
    }
}

handler!(add_lead, |r| {
    let id = campaign_id(r)?;
    let input = json!({ "id": id, "leads": [shapes::lead_input(&r.body)] });
    let out = r.op("link_building.campaign.leads.add", input, LEAD_NAMES).await?;
    if let Some(l) = out["added"].get(0) {
        return created(shapes::lead(l));
    }
    if let Some(s) = out["skipped"].get(0) {
        // Already a lead of the campaign: the peer answers with the lead it has.
        let rel = s["relationshipId"].clone();
        let l = r.op("link_building.campaign.leads.get", json!({ "id": id, "relationshipId": rel }), &[]).await?;
        return ok(shapes::lead(&l));
    }
    let f = &out["failed"][0];
    let code = f["code"].as_str().unwrap_or("value_error");
    let message = f["message"].as_str().unwrap_or("The lead could not be added");
    if code.starts_with("invalid_") {
        return Err(Detail::invalid(vec![Detail::problem(
            vec![json!("body"), json!(lead_field(code))],
            code,
            message,
            r.field(lead_field(code)),
        )]));
    }
    let mut d = Detail::new(StatusCode::CONFLICT, message);
    d.body["code"] = json!(code);
    Err(d)
});

handler!(bulk_add_leads, |r| {
    let id = campaign_id(r)?;
    let items = r.body.as_array().cloned().unwrap_or_default();
    let (mut added, mut skipped, mut failed) = (0u64, 0u64, Vec::<Value>::new());
    for (chunk_no, chunk) in items.chunks(CHUNK).enumerate() {
        let leads: Vec<Value> = chunk.iter().map(shapes::lead_input).collect();
        let out = r.op("link_building.campaign.leads.add", json!({ "id": id, "leads": leads }), LEAD_NAMES).await?;
        added += out["added"].as_array().map_or(0, Vec::len) as u64;
        skipped += out["skipped"].as_array().map_or(0, Vec::len) as u64;
        for f in out["failed"].as_array().into_iter().flatten() {
            let index = chunk_no * CHUNK + f["index"].as_u64().unwrap_or(0) as usize;
            failed.push(json!(format!(
                "{index}: {}: {} ({})",
                f["websiteUrl"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default(),
                f["code"].as_str().unwrap_or_default()
            )));
        }
    }
    ok(json!({ "added": added, "skipped": skipped, "failed": failed }))
});

handler!(update_lead_status, |r| {
    let id = campaign_id(r)?;
    let lead = r.param("lead_id").to_owned();
    if !linkcrm_domain::id::is_id(IdKind::Relationship, &lead) {
        return Err(Detail::not_found());
    }
    let mut input = json!({ "id": id, "relationshipIds": [lead], "status": r.field("status") });
    if let Some(n) = r.field("notes") {
        input["notes"] = n.clone();
    }
    let out = r.op("link_building.campaign.leads.update_status", input, LEAD_NAMES).await?;
    match out["updated"].get(0) {
        Some(l) => ok(shapes::lead(l)),
        None => {
            let f = &out["failed"][0];
            if f["code"] == "lead_not_found" {
                return Err(Detail::not_found());
            }
            let mut d = Detail::new(StatusCode::CONFLICT, f["message"].as_str().unwrap_or("The lead was not updated"));
            d.body["code"] = f["code"].clone();
            Err(d)
        }
    }
});

handler!(bulk_update_lead_status, |r| {
    let id = campaign_id(r)?;
    let ids: Vec<String> = r
        .field("lead_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let (good, mut failed): (Vec<String>, Vec<String>) =
        ids.iter().cloned().partition(|i| linkcrm_domain::id::is_id(IdKind::Relationship, i));
    let mut updated = 0u64;
    for chunk in good.chunks(CHUNK) {
        let mut input = json!({ "id": id, "relationshipIds": chunk, "status": r.field("status") });
        if let Some(n) = r.field("notes") {
            input["notes"] = n.clone();
        }
        let out = r.op("link_building.campaign.leads.update_status", input, LEAD_NAMES).await?;
        updated += out["updated"].as_array().map_or(0, Vec::len) as u64;
        for f in out["failed"].as_array().into_iter().flatten() {
            failed.push(f["relationshipId"].as_str().unwrap_or_default().to_owned());
        }
    }
    ok(json!({ "updated": updated, "failed": failed }))
});

// ---------------------------------------------------------------------------------------------
// Email writing and templates

handler!(generate_email, |r| {
    let input = rename(r, &[("topic", "topic"), ("tone", "tone"), ("template_id", "templateId")]);
    ok(shapes::email(&r.op("link_building.emails.generate", input, &[]).await?))
});

handler!(personalize_email, |r| {
    let input = rename(
        r,
        &[
            ("base_email", "baseEmail"),
            ("lead_name", "leadName"),
            ("lead_website", "leadWebsite"),
            ("content_topic", "contentTopic"),
        ],
    );
    ok(shapes::email(&r.op("link_building.emails.personalize", input, &[]).await?))
});

handler!(subject_suggestions, |r| {
    let input = rename(r, &[("topic", "topic"), ("tone", "tone")]);
    let out = r.op("link_building.emails.subject_suggestions", input, &[]).await?;
    ok(json!({ "suggestions": out["suggestions"], "credits_charged": out["creditsCharged"] }))
});

handler!(follow_up_email, |r| {
    let input =
        rename(r, &[("original_subject", "originalSubject"), ("original_body", "originalBody"), ("tone", "tone")]);
    ok(shapes::email(&r.op("link_building.emails.follow_up", input, &[]).await?))
});

handler!(create_template, |r| {
    let mut input = rename(r, &[("name", "name"), ("category", "category")]);
    input["subject"] = json!(shapes::to_ours(r.str("subject").unwrap_or_default()));
    input["body"] = json!(shapes::to_ours(r.str("body").unwrap_or_default()));
    let t = r.op("link_building.templates.create", input, &[]).await?;
    created(shapes::template(&t))
});

handler!(list_templates, |r| {
    let items = r.all("link_building.templates.list", json!({ "limit": 200 }), &[]).await?;
    ok(Value::Array(items.iter().map(shapes::template).collect()))
});

fn template_id(r: &Req) -> std::result::Result<String, Detail> {
    let id = r.param("template_id");
    if linkcrm_domain::id::is_id(IdKind::Template, id) {
        Ok(id.to_owned())
    } else {
        Err(Detail::not_found())
    }
}

handler!(get_template, |r| {
    let id = template_id(r)?;
    ok(shapes::template(&r.op("link_building.templates.get", json!({ "id": id }), &[]).await?))
});

handler!(delete_template, |r| {
    let id = template_id(r)?;
    r.op("link_building.templates.delete", json!({ "id": id }), &[]).await?;
    Ok(Out::Empty(StatusCode::NO_CONTENT))
});

// ---------------------------------------------------------------------------------------------
// Suppression and policy

handler!(add_suppression, |r| {
    let input = rename(r, &[("email", "email"), ("reason", "reason")]);
    let e = r.op("suppression.add", input, &[]).await?;
    created(shapes::suppression(&e))
});

handler!(list_suppression, |r| {
    let items = r.all("suppression.list", json!({ "limit": 200 }), &[]).await?;
    ok(Value::Array(items.iter().map(shapes::suppression).collect()))
});

handler!(validate_policy, |r| {
    let input =
        rename(r, &[("recipient_email", "recipientEmail"), ("sender_email", "senderEmail"), ("subject", "subject")]);
    let out = r.op("policy.validate", input, &[]).await?;
    let reasons = out["reasons"].as_array().cloned().unwrap_or_default();
    let reason = reasons
        .first()
        .and_then(|x| x["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| "All checks passed".to_owned());
    let counts = snake_keys(&out["counts"]);
    let limits = snake_keys(&out["limits"]);
    ok(json!({
        "allowed": out["allowed"],
        "reason": reason,
        "reasons": reasons.iter().map(|x| x["code"].clone()).collect::<Vec<_>>(),
        "legal_basis": out.get("legalBasis").cloned().unwrap_or(Value::Null),
        "counts": counts,
        "limits": limits,
        "notes": snake_keys(&out["notes"]),
        "daily_user_count": out["counts"]["mailboxSendsToday"],
        "daily_user_limit": out["limits"]["mailboxDailyCap"],
        "daily_domain_count": out["counts"]["domainSendsToday"],
        "daily_domain_limit": out["limits"]["domainDailyCap"],
    }))
});

// ---------------------------------------------------------------------------------------------
// Outreach: send, attempts, follow-ups

/// How long a send waits for its outcome before answering `queued` (the seed's client expects
/// the send's result in the answer; ours queue sends).
fn send_wait() -> std::time::Duration {
    let secs = std::env::var("LINKCRM_DIALECT_SEND_WAIT_SECS").ok().and_then(|v| v.trim().parse::<f64>().ok());
    std::time::Duration::from_secs_f64(secs.unwrap_or(10.0).clamp(0.0, 25.0))
}

/// A draft or send of ours (a campaign draft, or an invocation of the send skill) as an attempt.
fn attempt_status(ours: &str) -> (&'static str, Option<&str>) {
    match ours {
        "awaiting_approval" | "WAITING_APPROVAL" => ("pending_approval", None),
        "approved" | "PENDING" | "RUNNING" => ("queued", None),
        "sent" | "SUCCEEDED" => ("sent", None),
        "blocked" => ("blocked", None),
        "failed" | "FAILED" => ("failed", None),
        "rejected" => ("failed", Some("rejected")),
        "expired" => ("failed", Some("approval_expired")),
        _ => ("failed", Some("cancelled")),
    }
}

/// One of our campaign drafts (`link_building.campaign.drafts`) as the peer's attempt.
fn attempt_of_draft(d: &Value) -> Value {
    let (status, why) = attempt_status(d["status"].as_str().unwrap_or_default());
    let reason = d["error"]["code"].as_str().or(why).map(str::to_owned);
    json!({
        "attempt_id": d["id"], "id": d["id"], "lead_id": d["relationshipId"], "campaign_id": d["campaignId"],
        "idempotency_key": Value::Null, "sender_email": Value::Null, "recipient_email": d["to"],
        "subject": d["subject"], "status": status, "decision_reason": reason, "sent_at": d["sentAt"],
        "created_at": d["createdAt"], "message_id": d["messageId"], "follow_up_step": d["followUpStep"],
    })
}

handler!(send_outreach, |r| {
    let id = r.str("campaign_id").unwrap_or_default().to_owned();
    let lead = r.str("lead_id").unwrap_or_default().to_owned();
    if !linkcrm_domain::id::is_id(IdKind::Campaign, &id) || !linkcrm_domain::id::is_id(IdKind::Relationship, &lead) {
        return Err(Detail::not_found());
    }
    let l = r.op("link_building.campaign.leads.get", json!({ "id": id, "relationshipId": lead }), &[]).await?;
    let (subject, body) = (r.field("subject").cloned(), r.field("body").cloned());
    // A retry under the same Idempotency-Key replays both steps' first answers (the check's
    // too: the first send would otherwise make the retry look like a duplicate).
    let key = r.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let step_key = |step: &str| key.as_ref().map(|k| format!("{k}#{step}"));
    // The policy first, synchronously, as the peer does: a block is the seed's 403.
    let mut sender = Value::Null;
    if let Some(to) = l["contactEmail"].as_str() {
        let check = json!({ "recipientEmail": to, "subject": subject, "body": body });
        let v = r.op_keyed("policy.validate", check, &[], step_key("policy")).await?;
        sender = v["mailbox"]["fromAddress"].clone();
        if v["allowed"] == false {
            let reasons: Vec<Value> =
                v["reasons"].as_array().into_iter().flatten().map(|x| x["code"].clone()).collect();
            let first = reasons.first().and_then(Value::as_str).unwrap_or("blocked").to_owned();
            return Err(Detail::policy(first, reasons));
        }
    }
    let mut input = json!({ "id": id, "relationshipId": lead, "subject": subject, "body": body });
    if let Some(c) = l["contactId"].as_str() {
        input["contactId"] = json!(c);
    }
    let queued = r.op_keyed("link_building.campaign.send_email", input, &[], step_key("send")).await?;
    let inv = queued["invocationId"].as_str().unwrap_or_default().to_owned();
    // Wait for the outcome (at most the send wait), unless it waits for a person.
    let deadline = std::time::Instant::now() + send_wait();
    let mut current = queued.clone();
    loop {
        let status = current["status"].as_str().unwrap_or_default();
        if !matches!(status, "PENDING" | "RUNNING") || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        current = r.op("agent.invocations.get", json!({ "id": inv }), &[]).await?;
    }
    let ours = current["status"].as_str().unwrap_or_default();
    let code = current["error"]["code"].as_str();
    let (status, why) = match (ours, code) {
        ("FAILED", Some("send_blocked")) => ("blocked", None),
        (s, _) => attempt_status(s),
    };
    let reasons: Vec<Value> =
        current["error"]["details"]["reasons"].as_array().into_iter().flatten().map(|x| x["code"].clone()).collect();
    let decision = if reasons.is_empty() { code.or(why).map(str::to_owned) } else { Some(join_codes(&reasons)) };
    ok(json!({
        "attempt_id": inv, "id": inv, "lead_id": lead, "campaign_id": id, "idempotency_key": key,
        "sender_email": sender, "recipient_email": l["contactEmail"], "subject": subject, "status": status,
        "decision_reason": decision, "policy_reasons": reasons,
        "sent_at": if status == "sent" { current["updatedAt"].clone() } else { Value::Null },
        "created_at": current["createdAt"], "message_id": current["result"]["messageId"],
    }))
});

fn join_codes(codes: &[Value]) -> String {
    codes.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
}

handler!(list_attempts, |r| {
    let id = campaign_id(r)?;
    let drafts = r.all("link_building.campaign.drafts", json!({ "id": id, "limit": 200 }), &[]).await?;
    ok(Value::Array(drafts.iter().map(attempt_of_draft).collect()))
});

handler!(list_follow_ups, |r| {
    let id = campaign_id(r)?;
    let drafts = r.all("link_building.campaign.drafts", json!({ "id": id, "limit": 200 }), &[]).await?;
    let mut out: Vec<Value> = drafts
        .iter()
        .filter(|d| d["followUpStep"].is_i64())
        .map(|d| {
            let (status, _) = attempt_status(d["status"].as_str().unwrap_or_default());
            json!({ "schedule_id": d["id"], "attempt_id": d["id"], "lead_id": d["relationshipId"], "campaign_id": id,
                    "subject": d["subject"], "scheduled_for": d["scheduledAt"].as_str().or(d["createdAt"].as_str()),
                    "sent": status == "sent", "status": status, "step": d["followUpStep"] })
        })
        .collect();
    let leads = r.all("link_building.campaign.leads.list", json!({ "id": id, "limit": 200 }), &[]).await?;
    for l in &leads {
        // A follow-up not made yet: waiting, or stopped (a reply, a bounce, the campaign's end).
        let f = &l["followUp"];
        if f["status"] == "scheduled" || f["status"] == "cancelled" {
            out.push(json!({
                "schedule_id": format!("{}:{}", f["after"].as_str().unwrap_or_default(), f["step"].as_i64().unwrap_or(0)),
                "attempt_id": f["after"], "lead_id": l["relationshipId"], "campaign_id": id, "subject": Value::Null,
                "scheduled_for": f["dueAt"], "sent": false, "status": f["status"], "step": f["step"],
                "reason": f["reason"]["code"],
            }));
        }
    }
    out.sort_by(|a, b| a["scheduled_for"].as_str().cmp(&b["scheduled_for"].as_str()));
    out.truncate(crate::MAX_LIST_ITEMS);
    ok(Value::Array(out))
});

// ---------------------------------------------------------------------------------------------
// Replies

/// Our reply classes in the peer's four.
fn classification(ours: Option<&str>) -> &'static str {
    match ours {
        Some("interested") => "interested",
        Some("not_interested") | Some("unsubscribe") => "not_interested",
        Some("out_of_office") => "out_of_office",
        _ => "replied",
    }
}

/// The campaign's replies, each with the attempt it answers (its `In-Reply-To` is that send's
/// `Message-ID`), in the peer's shape.
async fn replies_of(r: &Req, id: &str) -> std::result::Result<Vec<Value>, Detail> {
    let items = r.all("link_building.campaign.replies", json!({ "id": id, "limit": 200 }), &[]).await?;
    let drafts = r.all("link_building.campaign.drafts", json!({ "id": id, "limit": 200 }), &[]).await?;
    let by_message: std::collections::HashMap<&str, &Value> =
        drafts.iter().filter_map(|d| Some((d["messageId"].as_str()?, &d["id"]))).collect();
    Ok(items
        .iter()
        .map(|x| {
            let attempt = x["inReplyTo"].as_str().and_then(|m| by_message.get(m)).map(|v| (*v).clone());
            reply(x, id, attempt.unwrap_or(Value::Null))
        })
        .collect())
}

fn reply(x: &Value, campaign: &str, attempt: Value) -> Value {
    json!({
        "reply_id": x["eventId"], "id": x["eventId"], "attempt_id": attempt, "lead_id": x["relationshipId"],
        "campaign_id": campaign, "from_email": x["from"], "subject": x["subject"], "received_at": x["receivedAt"],
        "classification": classification(x["class"].as_str()), "linkcrm_class": x["class"],
        "body": x["text"], "inbound_message_id": x["inboundMessageId"],
    })
}

handler!(poll_replies, |r| {
    if let Some(id) = r.str("campaign_id") {
        if !linkcrm_domain::id::is_id(IdKind::Campaign, id) {
            return Err(Detail::not_found());
        }
        r.op("link_building.campaign.get", json!({ "id": id }), &[]).await?;
    }
    let out = r.op("link_building.inbound.poll", json!({}), &[]).await?;
    ok(
        json!({ "replies_found": out["repliesFound"], "failed": out["failed"], "mailboxes": snake_keys(&out["mailboxes"]) }),
    )
});

handler!(list_replies, |r| {
    let id = campaign_id(r)?;
    ok(Value::Array(replies_of(r, &id).await?))
});

// ---------------------------------------------------------------------------------------------
// Analytics, reporting, exports

fn rate(n: f64, d: f64) -> f64 {
    if d > 0.0 {
        (n / d * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

handler!(campaign_analytics, |r| {
    let id = campaign_id(r)?;
    let days = r.query.get("days").and_then(Value::as_i64).unwrap_or(30);
    let c = r.op("link_building.campaign.get", json!({ "id": id }), &[]).await?;
    let leads = r.all("link_building.campaign.leads.list", json!({ "id": id, "limit": 200 }), &[]).await?;
    let replies = r.all("link_building.campaign.replies", json!({ "id": id, "limit": 200 }), &[]).await?;
    let metrics = r.op("link_building.campaign.metrics", json!({ "id": id, "limit": 1 }), &[]).await?;
    let drafts = r.all("link_building.campaign.drafts", json!({ "id": id, "limit": 200 }), &[]).await?;
    let mut by_status = Map::new();
    for s in crate::routes::LEAD_STATUSES {
        by_status.insert((*s).to_owned(), json!(leads.iter().filter(|l| l["status"] == *s).count()));
    }
    let mut by_class = Map::new();
    for x in &replies {
        let k = classification(x["class"].as_str());
        let n = by_class.get(k).and_then(Value::as_u64).unwrap_or(0) + 1;
        by_class.insert(k.to_owned(), json!(n));
    }
    let since = first_day(days);
    let mut volume: Vec<Value> = metrics["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "emails_sent" && e["date"].as_str().is_some_and(|d| d >= since.as_str()))
        .map(|e| json!({ "date": e["date"], "count": e["count"] }))
        .collect();
    volume.sort_by(|a, b| a["date"].as_str().cmp(&b["date"].as_str()));
    let s = &c["summary"];
    let sent = s["sent"].as_f64().unwrap_or(0.0);
    let placed = by_status["placed"].as_f64().unwrap_or(0.0);
    let total = leads.len() as f64;
    let rates = json!({
        "response_rate": rate(s["replied"].as_f64().unwrap_or(0.0), sent),
        "placement_rate": rate(placed, total),
        "open_rate": s["openRate"], "bounce_rate": rate(sent - s["delivered"].as_f64().unwrap_or(sent), sent),
    });
    ok(json!({
        "campaign_id": id, "days": days, "total_leads": leads.len(), "leads_by_status": by_status,
        "total_attempts": drafts.len(), "total_sends": s["sent"], "total_replies": replies.len(),
        "replies_by_classification": by_class, "rates": rates.clone(),
        "response_rate": rates["response_rate"], "placement_rate": rates["placement_rate"],
        "daily_send_volume": volume,
    }))
});

/// The first day (`YYYY-MM-DD`, UTC) of the last `days` days, today included.
fn first_day(days: i64) -> String {
    (linkcrm_domain::time::now() - chrono::Duration::days(days.max(1) - 1)).format("%Y-%m-%d").to_string()
}

handler!(reporting_snapshot, |r| {
    let out = r.op("link_building.reporting.snapshot", json!({}), &[]).await?;
    let rows: Vec<Value> = match out.get("workspace").filter(|w| !w.is_null()) {
        Some(w) => vec![w.clone()],
        None => r.all("link_building.reporting.snapshot", json!({ "limit": 100 }), &[]).await?,
    };
    let sum = |f: &dyn Fn(&Value) -> f64| rows.iter().map(f).sum::<f64>();
    let campaigns = sum(&|w| w["campaigns"]["total"].as_f64().unwrap_or(0.0));
    let sends = sum(&|w| w["totals"]["sent"].as_f64().unwrap_or(0.0));
    let replies = sum(&|w| w["totals"]["replied"].as_f64().unwrap_or(0.0));
    let placements = sum(&|w| w["totals"]["placed"].as_f64().unwrap_or(0.0));
    ok(json!({
        "total_campaigns": campaigns as i64, "total_sends": sends as i64, "total_replies": replies as i64,
        "total_placements": placements as i64, "overall_response_rate": rate(replies, sends),
        "overall_placement_rate": rate(placements, sends), "send_volume": sends as i64,
        "response_rate": rate(replies, sends), "placement_conversion": rate(placements, sends),
        "generated_at": out["generatedAt"],
    }))
});

/// One CSV cell: a leading `= + - @ tab CR` made inert with `'` (as the peer does), quoted
/// where needed.
fn cell(v: &Value) -> String {
    let mut s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        s.insert(0, '\'');
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv(header: &[&str], rows: &[Value]) -> String {
    let mut out = header.join(",");
    out.push_str("\r\n");
    for r in rows {
        let cells: Vec<String> = header.iter().map(|h| cell(&r[*h])).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

handler!(export_leads, |r| {
    let id = campaign_id(r)?;
    let leads = r.all("link_building.campaign.leads.list", json!({ "id": id, "limit": 200 }), &[]).await?;
    let rows: Vec<Value> = leads.iter().map(shapes::lead).collect();
    let header = [
        "lead_id",
        "campaign_id",
        "domain",
        "page_title",
        "email",
        "status",
        "discovery_source",
        "created_at",
        "website_url",
        "quality_score",
        "relevance_score",
        "guest_post_likelihood",
    ];
    Ok(Out::Csv { filename: format!("leads_{id}.csv"), body: csv(&header, &rows) })
});

handler!(export_attempts, |r| {
    let id = campaign_id(r)?;
    let drafts = r.all("link_building.campaign.drafts", json!({ "id": id, "limit": 200 }), &[]).await?;
    let rows: Vec<Value> = drafts.iter().map(attempt_of_draft).collect();
    let header = ["attempt_id", "lead_id", "campaign_id", "sender_email", "subject", "status", "sent_at", "created_at"];
    Ok(Out::Csv { filename: format!("attempts_{id}.csv"), body: csv(&header, &rows) })
});

handler!(export_replies, |r| {
    let id = campaign_id(r)?;
    let rows = replies_of(r, &id).await?;
    let header = ["reply_id", "attempt_id", "from_email", "subject", "classification", "received_at"];
    Ok(Out::Csv { filename: format!("replies_{id}.csv"), body: csv(&header, &rows) })
});

// ---------------------------------------------------------------------------------------------
// Discovery

handler!(discover_deep, |r| {
    let mut input =
        json!({ "keyword": r.field("keyword"), "maxResults": r.field("max_results").cloned().unwrap_or(json!(20)) });
    if let Some(c) = r.str("campaign_id") {
        if !linkcrm_domain::id::is_id(IdKind::Campaign, c) {
            return Err(Detail::not_found());
        }
        input["campaignId"] = json!(c);
    }
    if let Some(s) = r.field("save_to_campaign") {
        input["save"] = s.clone();
    }
    let names: crate::wire::Names =
        &[("maxResults", "max_results"), ("campaignId", "campaign_id"), ("save", "save_to_campaign")];
    let out = r.op("research.opportunities", input, names).await?;
    let results: Vec<Value> = out["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            json!({
                "url": o["url"], "domain": o["domain"], "title": o["title"], "page_title": o["title"],
                "snippet": o["snippet"], "rank": o["rank"], "quality_score": o["qualityScore"],
                "relevance_score": o["relevanceScore"], "guest_post_likelihood": o["guestPostLikelihood"],
                "confidence_score": o["guestPostLikelihood"], "domain_rating": o["domainRating"],
                "organic_traffic": o["organicTraffic"], "signals": o["signals"],
                "has_guest_post_guidelines": o["signals"].as_array().is_some_and(|s| !s.is_empty()),
                "discovery_source": "serp", "account_id": o["accountId"],
            })
        })
        .collect();
    ok(json!({
        "keyword": out["keyword"], "source": "serp", "total_found": results.len(), "results": results,
        "saved_to_campaign": out["savedToCampaign"], "save_failed": out["saveFailed"],
        "cached": out["cached"], "credits_charged": out["creditsCharged"],
    }))
});
