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

handler!(
    /// The parts of the seed not built yet answer so, with 501.
    not_built,
    |_r| {
        Err(Detail::new(
            StatusCode::NOT_IMPLEMENTED,
            "This endpoint of the backlink-outreach API is not available in linkcrm yet; use /v1 (see /openapi.json).",
        ))
    }
);

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
