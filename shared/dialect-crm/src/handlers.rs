//! One function per route: translate the dialect's fields and ids to an operation's input, call
//! it as the request's caller, and translate the answer back. No business rules live here.

use crate::ids::{to_ours, to_uuid, uuid_value};
use crate::{Error, Out, Req, Result};
use axum::http::StatusCode;
use linkcrm_domain::IdKind;
use serde_json::{json, Map, Value};

/// An id the client sent in `field`, as ours, or 400 naming the field.
fn id_in(kind: IdKind, field: &str, raw: &str) -> Result<String> {
    to_ours(kind, raw).ok_or_else(|| Error::bad(format!("{field} must be a UUID")))
}

/// The path's `{id}` as our id of `kind`; anything that is not a UUID is not found.
fn path_id(req: &Req, kind: IdKind, name: &str) -> Result<String> {
    to_ours(kind, req.param(name)).ok_or_else(Error::not_found)
}

/// A body field holding an id, as ours (`null` kept as null).
fn body_id(req: &Req, kind: IdKind, field: &str) -> Result<Option<Value>> {
    if !req.has(field) {
        return Ok(None);
    }
    match req.b(field) {
        None => Ok(Some(Value::Null)),
        Some(Value::String(s)) => Ok(Some(json!(id_in(kind, field, s)?))),
        Some(_) => Err(Error::bad(format!("{field} must be a UUID"))),
    }
}

/// Our problem message with our field names spelt the dialect's way.
fn renamed(e: Error, names: &[(&str, &str)]) -> Error {
    let mut message = e.message;
    for (ours, theirs) in names {
        message = message.replace(ours, theirs);
    }
    Error { status: e.status, message }
}

fn unprocessable(message: impl Into<String>) -> Error {
    Error::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, fields: &[&str]) {
    for f in fields {
        if let Some(v) = from.get(*f) {
            to.insert((*f).to_owned(), v.clone());
        }
    }
}

/// Fields that need parts of the core not built yet: refused clearly rather than dropped.
fn refuse_unbuilt(req: &Req, fields: &[(&str, &str)]) -> Result<()> {
    for (field, what) in fields {
        if req.b(field).is_some() {
            return Err(unprocessable(format!("{field}: {what} are not available in this API yet")));
        }
    }
    Ok(())
}

/// An owner the client sent (`UUID`, `me`, `unassigned`) as our filter value.
fn owner_param(raw: &str) -> Result<String> {
    match raw {
        "me" | "unassigned" => Ok(raw.to_owned()),
        other => id_in(IdKind::Member, "owner", other),
    }
}

fn company_out(c: &Value) -> Value {
    json!({ "id": uuid_value(&c["id"]), "name": c["name"], "domain": c["domain"],
            "relationshipType": c["relationshipType"], "lifecycle": c["lifecycle"],
            "ownerId": uuid_value(&c["ownerId"]), "accountId": uuid_value(&c["accountId"]),
            "createdAt": c["createdAt"], "updatedAt": c["updatedAt"] })
}

const COMPANY_NAMES: &[(&str, &str)] = &[("ownerId", "ownerId")];

fn company_input(req: &Req) -> Result<Map<String, Value>> {
    let mut input = Map::new();
    copy(&req.body, &mut input, &["name", "domain", "relationshipType", "lifecycle"]);
    if let Some(o) = body_id(req, IdKind::Member, "ownerId")? {
        input.insert("ownerId".into(), o);
    }
    Ok(input)
}

pub async fn companies_list(req: &Req) -> Result {
    let mut input = json!({});
    for f in ["relationshipType", "lifecycle", "search"] {
        if let Some(v) = req.q(f) {
            input[f] = json!(v);
        }
    }
    if let Some(o) = req.q("owner") {
        input["owner"] = json!(owner_param(o)?);
    }
    let all = req.all("link_building.crm.company.list", input).await.map_err(|e| renamed(e, COMPANY_NAMES))?;
    req.page("companies", all.iter().map(company_out).collect())
}

pub async fn company_create(req: &Req) -> Result {
    let c = req.op("link_building.crm.company.create", Value::Object(company_input(req)?)).await?;
    Ok(Out::Json(StatusCode::CREATED, company_out(&c)))
}

pub async fn company_get(req: &Req) -> Result {
    let id = path_id(req, IdKind::Company, "id")?;
    let c = req.op("link_building.crm.company.get", json!({ "id": id })).await?;
    Ok(Out::Json(StatusCode::OK, company_out(&c)))
}

pub async fn company_update(req: &Req) -> Result {
    let mut input = company_input(req)?;
    input.insert("id".into(), json!(path_id(req, IdKind::Company, "id")?));
    let c = req.op("link_building.crm.company.update", Value::Object(input)).await?;
    Ok(Out::Json(StatusCode::OK, company_out(&c)))
}

// ---- Contacts and memberships ---------------------------------------------------------------

fn contact_out(c: &Value) -> Value {
    json!({ "id": uuid_value(&c["id"]), "firstName": c["firstName"], "lastName": c["lastName"], "email": c["email"],
            "phone": c.get("phone").cloned().unwrap_or(Value::Null), "title": c["position"],
            "ownerId": uuid_value(c.get("ownerId").unwrap_or(&Value::Null)),
            "companyId": uuid_value(c.get("primaryCompanyId").unwrap_or(&Value::Null)), "createdAt": c["createdAt"] })
}

const CONTACT_NAMES: &[(&str, &str)] = &[("position", "title")];

/// A contact's fields in our names.
fn contact_fields(req: &Req, input: &mut Map<String, Value>) -> Result<()> {
    copy(&req.body, input, &["firstName", "lastName", "email", "phone"]);
    if req.has("title") {
        input.insert("position".into(), req.body["title"].clone());
    }
    if let Some(o) = body_id(req, IdKind::Member, "ownerId")? {
        input.insert("ownerId".into(), o);
    }
    Ok(())
}

pub async fn contacts_list(req: &Req) -> Result {
    let all = match req.q("companyId") {
        Some(c) => {
            let id = id_in(IdKind::Company, "companyId", c)?;
            req.op("link_building.crm.company.contacts", json!({ "id": id })).await?["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
        None => req.all("link_building.crm.contact.list", json!({ "inWorkspace": true })).await?,
    };
    let owner = match req.q("ownerId") {
        None => None,
        Some("me") => Some(
            req.caller
                .member_id
                .clone()
                .ok_or_else(|| Error::bad("this key acts for no member: create it with memberId to use me"))?,
        ),
        Some(o) => Some(id_in(IdKind::Member, "ownerId", o)?),
    };
    let list: Vec<Value> = all
        .iter()
        .filter(|c| owner.as_ref().is_none_or(|o| c["ownerId"].as_str() == Some(o.as_str())))
        .map(contact_out)
        .collect();
    req.page("contacts", list)
}

pub async fn company_contacts(req: &Req) -> Result {
    let id = path_id(req, IdKind::Company, "id")?;
    let all = req.op("link_building.crm.company.contacts", json!({ "id": id })).await?;
    let list: Vec<Value> = all["data"].as_array().map(|a| a.iter().map(contact_out).collect()).unwrap_or_default();
    req.page("contacts", list)
}

pub async fn contact_create(req: &Req) -> Result {
    let mut input = Map::new();
    contact_fields(req, &mut input)?;
    let company = match req.b_str("companyId")? {
        Some(c) => Some(
            req.op("link_building.crm.company.get", json!({ "id": id_in(IdKind::Company, "companyId", c)? })).await?,
        ),
        None => None,
    };
    // The shared contact's account: its company's partner, else its work email's domain.
    match company.as_ref().and_then(|c| c["accountId"].as_str()) {
        Some(acct) => {
            input.insert("accountId".into(), json!(acct));
        }
        None => {
            let domain = req
                .b_str("email")?
                .and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
                .filter(|d| !linkcrm_domain::gates::is_free_mail(d))
                .ok_or_else(|| unprocessable("a contact needs a company with a domain, or a work email address"))?;
            input.insert("domain".into(), json!(domain));
        }
    }
    let c = req
        .op("link_building.crm.contact.create", Value::Object(input))
        .await
        .map_err(|e| renamed(e, CONTACT_NAMES))?;
    let id = c["id"].as_str().unwrap_or_default().to_owned();
    if let Some(co) = &company {
        req.op(
            "link_building.crm.contact.membership.create",
            json!({ "id": id, "companyId": co["id"], "isPrimary": true }),
        )
        .await?;
    }
    let c = req.op("link_building.crm.contact.get", json!({ "id": id })).await?;
    Ok(Out::Json(StatusCode::CREATED, contact_out(&c)))
}

pub async fn contact_get(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    let c = req.op("link_building.crm.contact.get", json!({ "id": id })).await?;
    Ok(Out::Json(StatusCode::OK, contact_out(&c)))
}

pub async fn contact_update(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    refuse_unbuilt(req, &[("companyId", "a contact's primary company is set through its memberships; changes of it")])?;
    let mut input = Map::new();
    contact_fields(req, &mut input)?;
    input.insert("id".into(), json!(id));
    let c = req
        .op("link_building.crm.contact.update", Value::Object(input))
        .await
        .map_err(|e| renamed(e, CONTACT_NAMES))?;
    Ok(Out::Json(StatusCode::OK, contact_out(&c)))
}

/// Removes the contact from this workspace: its memberships and this workspace's fields, then the
/// shared contact unless another workspace's history names it (then it stays for them).
pub async fn contact_delete(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    req.op("link_building.crm.contact.forget", json!({ "id": id })).await?;
    match req.op("link_building.crm.contact.delete", json!({ "id": id })).await {
        // Another workspace's history names the contact: it stays for them.
        Ok(_) | Err(Error { status: StatusCode::CONFLICT, .. }) => Ok(Out::Empty(StatusCode::NO_CONTENT)),
        Err(e) => Err(e),
    }
}

fn membership_out(m: &Value) -> Value {
    json!({ "id": uuid_value(&m["id"]), "contactId": uuid_value(&m["contactId"]), "companyId": uuid_value(&m["companyId"]),
            "role": m["role"], "isPrimary": m["isPrimary"] })
}

pub async fn memberships_list(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    let ms = req.op("link_building.crm.contact.membership.list", json!({ "id": id })).await?;
    let list: Vec<Value> = ms["data"].as_array().map(|a| a.iter().map(membership_out).collect()).unwrap_or_default();
    Ok(Out::Json(StatusCode::OK, json!({ "memberships": list })))
}

pub async fn membership_create(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    let Some(Value::String(company)) = body_id(req, IdKind::Company, "companyId")? else {
        return Err(Error::bad("companyId is required"));
    };
    let mut input = json!({ "id": id, "companyId": company });
    for f in ["role", "isPrimary"] {
        if let Some(v) = req.b(f) {
            input[f] = v.clone();
        }
    }
    let m = req.op("link_building.crm.contact.membership.create", input).await?;
    Ok(Out::Json(StatusCode::CREATED, membership_out(&m)))
}

pub async fn membership_update(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    let ms = path_id(req, IdKind::Membership, "membershipId")?;
    let mut input = json!({ "id": id, "membershipId": ms });
    for f in ["role", "isPrimary"] {
        if req.has(f) {
            input[f] = req.body[f].clone();
        }
    }
    let m = req.op("link_building.crm.contact.membership.update", input).await?;
    Ok(Out::Json(StatusCode::OK, membership_out(&m)))
}

pub async fn membership_delete(req: &Req) -> Result {
    let id = path_id(req, IdKind::Contact, "id")?;
    let ms = path_id(req, IdKind::Membership, "membershipId")?;
    req.op("link_building.crm.contact.membership.delete", json!({ "id": id, "membershipId": ms })).await?;
    Ok(Out::Json(StatusCode::OK, json!({ "success": true })))
}

pub async fn add_to_marketing_list(req: &Req) -> Result {
    let Some(Value::String(list)) = body_id(req, IdKind::MarketingList, "listId")? else {
        return Err(Error::bad("listId is required"));
    };
    let ids = |field: &str, kind: IdKind| -> Result<Option<Vec<String>>> {
        match req.b(field) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| Error::bad(format!("{field} must be a list of UUIDs")))
                        .and_then(|s| id_in(kind, field, s))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(Error::bad(format!("{field} must be a list of UUIDs"))),
        }
    };
    let mut input = json!({ "id": list });
    if let Some(c) = ids("contactIds", IdKind::Contact)? {
        input["contactIds"] = json!(c);
    }
    if let Some(c) = ids("companyIds", IdKind::Company)? {
        input["companyIds"] = json!(c);
    }
    let r = req.op("link_building.crm.marketing_list.add", input).await?;
    Ok(Out::Json(
        StatusCode::OK,
        json!({ "listId": uuid_value(&r["listId"]), "added": r["added"], "skipped": r["skipped"], "memberCount": r["memberCount"] }),
    ))
}

// ---- Stages -------------------------------------------------------------------------------

fn stage_out(s: &Value) -> Value {
    json!({ "id": uuid_value(&s["id"]), "name": s["name"], "kind": s["kind"], "sortOrder": s["sortOrder"],
            "defaultProbabilityPct": s["defaultProbabilityPct"], "colorKey": s["colorKey"],
            "systemKey": s["systemKey"], "leadCount": s["leadCount"] })
}

fn stages_out(list: &Value) -> Value {
    let stages: Vec<Value> = list["data"].as_array().map(|a| a.iter().map(stage_out).collect()).unwrap_or_default();
    json!({ "stages": stages })
}

pub async fn stages_list(req: &Req) -> Result {
    let list = req.op("link_building.crm.stage.list", json!({})).await?;
    Ok(Out::Json(StatusCode::OK, stages_out(&list)))
}

fn stage_input(req: &Req) -> Map<String, Value> {
    let mut input = Map::new();
    copy(&req.body, &mut input, &["name", "kind", "systemKey", "defaultProbabilityPct", "colorKey"]);
    input
}

pub async fn stage_create(req: &Req) -> Result {
    let s = req.op("link_building.crm.stage.create", Value::Object(stage_input(req))).await?;
    Ok(Out::Json(StatusCode::CREATED, stage_out(&s)))
}

pub async fn stage_update(req: &Req) -> Result {
    let mut input = stage_input(req);
    input.insert("id".into(), json!(path_id(req, IdKind::Stage, "id")?));
    let s = req.op("link_building.crm.stage.update", Value::Object(input)).await?;
    Ok(Out::Json(StatusCode::OK, stage_out(&s)))
}

pub async fn stages_reorder(req: &Req) -> Result {
    let ids =
        req.b("stageIds").and_then(Value::as_array).ok_or_else(|| Error::bad("stageIds must be a list of UUIDs"))?;
    let ours = ids
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| Error::bad("stageIds must be a list of UUIDs"))
                .and_then(|s| id_in(IdKind::Stage, "stageIds", s))
        })
        .collect::<Result<Vec<_>>>()?;
    let list =
        req.op("link_building.crm.stage.reorder", json!({ "stageIds": ours })).await.map_err(|e| renamed(e, &[]))?;
    Ok(Out::Json(StatusCode::OK, stages_out(&list)))
}

pub async fn stage_delete(req: &Req) -> Result {
    let mut input = json!({ "id": path_id(req, IdKind::Stage, "id")? });
    if let Some(Value::String(t)) = body_id(req, IdKind::Stage, "moveLeadsTo")? {
        input["moveLeadsTo"] = json!(t);
    }
    // With leads, 202: they move in a job and the stage goes after them.
    let (status, r) = req.op_status("link_building.crm.stage.delete", input).await?;
    Ok(Out::Json(
        status,
        json!({ "success": true, "id": to_uuid(r["id"].as_str().unwrap_or_default()), "deleted": r["deleted"],
                "movingLeads": r["movingLeads"] }),
    ))
}

// ---- Leads --------------------------------------------------------------------------------

fn lead_out(o: &Value) -> Value {
    json!({ "id": uuid_value(&o["id"]), "title": o["title"], "companyId": uuid_value(&o["companyId"]),
            "contactId": uuid_value(&o["contactId"]),
            "stageId": uuid_value(&o["stageId"]), "stage": o["stage"], "value": o["value"],
            "probabilityPct": o["probabilityPct"], "ownerId": uuid_value(&o["ownerId"]),
            "expectedCloseDate": o["expectedCloseDate"],
            "status": o["status"], "createdAt": o["createdAt"], "updatedAt": o["updatedAt"] })
}

const LEAD_NAMES: &[(&str, &str)] = &[("opportunity", "lead")];

/// The stage a lead's `stage` (a name, or a legacy system key) names, as our id.
async fn stage_by_name(req: &Req, name: &str) -> Result<Vec<String>> {
    let list = req.op("link_building.crm.stage.list", json!({})).await?;
    let stages = list["data"].as_array().cloned().unwrap_or_default();
    let by_name: Vec<String> = stages
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    if !by_name.is_empty() {
        return Ok(by_name);
    }
    Ok(stages
        .iter()
        .filter(|s| s["systemKey"].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect())
}

pub async fn leads_list(req: &Req) -> Result {
    let mut input = json!({});
    if let Some(s) = req.q("stageId") {
        input["stageId"] = json!(id_in(IdKind::Stage, "stageId", s)?);
    }
    let stage_ids = match req.q("stage") {
        Some(name) => Some(stage_by_name(req, name).await?),
        None => None,
    };
    let contact = req.q("contactId").map(|c| id_in(IdKind::Contact, "contactId", c)).transpose()?;
    if let Some(c) = req.q("companyId") {
        if input.get("stageId").is_some() {
            return Err(Error::bad("filter by stageId or companyId, not both"));
        }
        input["companyId"] = json!(id_in(IdKind::Company, "companyId", c)?);
    }
    if let Some(o) = req.q("ownerId") {
        input["owner"] = json!(owner_param(o).map_err(|_| Error::bad("ownerId must be a UUID, me, or unassigned"))?);
    }
    let all = req
        .all("link_building.crm.opportunity.list", input)
        .await
        .map_err(|e| renamed(e, &[("opportunity", "lead"), ("owner:", "ownerId:")]))?;
    let leads: Vec<Value> = all
        .iter()
        .filter(|o| {
            stage_ids.as_ref().is_none_or(|ids| o["stageId"].as_str().is_some_and(|s| ids.iter().any(|i| i == s)))
        })
        .filter(|o| contact.as_ref().is_none_or(|c| o["contactId"].as_str() == Some(c.as_str())))
        .map(lead_out)
        .collect();
    req.page("leads", leads)
}

fn lead_input(req: &Req, input: &mut Map<String, Value>) -> Result<()> {
    copy(&req.body, input, &["title", "value", "probabilityPct", "expectedCloseDate"]);
    if let Some(o) = body_id(req, IdKind::Member, "ownerId")? {
        input.insert("ownerId".into(), o);
    }
    if let Some(c) = body_id(req, IdKind::Contact, "contactId")? {
        input.insert("contactId".into(), c);
    }
    Ok(())
}

pub async fn lead_create(req: &Req) -> Result {
    let mut input = Map::new();
    lead_input(req, &mut input)?;
    copy(&req.body, &mut input, &["domain"]);
    if let Some(Value::String(c)) = body_id(req, IdKind::Company, "companyId")? {
        input.insert("companyId".into(), json!(c));
    }
    match (body_id(req, IdKind::Stage, "stageId")?, req.b_str("stage")?) {
        (Some(Value::String(s)), _) => {
            input.insert("stageId".into(), json!(s));
        }
        (_, Some(name)) => {
            let ids = stage_by_name(req, name).await?;
            let id = ids.first().ok_or_else(|| unprocessable(format!("stage: no stage is named {name:?}")))?;
            input.insert("stageId".into(), json!(id));
        }
        _ => {}
    }
    let o = req
        .op("link_building.crm.opportunity.create", Value::Object(input))
        .await
        .map_err(|e| renamed(e, LEAD_NAMES))?;
    Ok(Out::Json(StatusCode::CREATED, lead_out(&o)))
}

pub async fn lead_get(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    let o =
        req.op("link_building.crm.opportunity.get", json!({ "id": id })).await.map_err(|e| renamed(e, LEAD_NAMES))?;
    Ok(Out::Json(StatusCode::OK, lead_out(&o)))
}

pub async fn lead_update(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    let mut input = Map::new();
    lead_input(req, &mut input)?;
    refuse_unbuilt(req, &[("companyId", "a lead's company changes")])?;
    let stage = body_id(req, IdKind::Stage, "stageId")?;
    let mut o = Value::Null;
    if !input.is_empty() || stage.is_none() {
        input.insert("id".into(), json!(id));
        o = req
            .op("link_building.crm.opportunity.update", Value::Object(input))
            .await
            .map_err(|e| renamed(e, LEAD_NAMES))?;
    }
    if let Some(Value::String(s)) = stage {
        o = req
            .op("link_building.crm.opportunity.move", json!({ "id": id, "stageId": s }))
            .await
            .map_err(|e| renamed(e, LEAD_NAMES))?;
    }
    Ok(Out::Json(StatusCode::OK, lead_out(&o)))
}

pub async fn lead_delete(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    req.op("link_building.crm.opportunity.delete", json!({ "id": id })).await.map_err(|e| renamed(e, LEAD_NAMES))?;
    Ok(Out::Json(StatusCode::OK, json!({ "success": true })))
}

pub async fn lead_stage(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    let Some(Value::String(stage)) = body_id(req, IdKind::Stage, "stageId")? else {
        return Err(Error::bad("stageId is required"));
    };
    let o = req
        .op("link_building.crm.opportunity.move", json!({ "id": id, "stageId": stage }))
        .await
        .map_err(|e| renamed(e, LEAD_NAMES))?;
    Ok(Out::Json(StatusCode::OK, lead_out(&o)))
}

/// A lead's history: for a lead linked to a partner, its relationship's events (its own stage
/// moves and activities, and the mail with the partner); otherwise its logged activities.
pub async fn lead_timeline(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    let o =
        req.op("link_building.crm.opportunity.get", json!({ "id": id })).await.map_err(|e| renamed(e, LEAD_NAMES))?;
    let items: Vec<Value> = match o["relationshipId"].as_str() {
        Some(rel) => req
            .all("link_building.crm.event.list", json!({ "relationshipId": rel }))
            .await?
            .into_iter()
            .filter(|e| {
                let other_lead = e["metadata"]["opportunityId"].as_str().is_some_and(|x| x != id);
                !other_lead
            })
            .map(|e| {
                json!({ "id": to_uuid(e["id"].as_str().unwrap_or_default()), "type": e["type"],
                        "subject": e["subject"], "body": e["content"], "occurredAt": e["occurredAt"],
                        "metadata": ids_in_metadata(&e["metadata"]) })
            })
            .collect(),
        None => req
            .all("link_building.crm.activity.list", json!({ "opportunityId": id }))
            .await?
            .iter()
            .map(|a| {
                json!({ "id": to_uuid(a["id"].as_str().unwrap_or_default()), "type": "ACTIVITY_LOGGED",
                        "subject": a["subject"], "body": a["body"], "occurredAt": a["occurredAt"],
                        "metadata": { "kind": a["type"] } })
            })
            .collect(),
    };
    let mut items = items;
    items.sort_by(|a, b| b["occurredAt"].as_str().cmp(&a["occurredAt"].as_str()));
    Ok(Out::Json(StatusCode::OK, json!({ "timeline": items })))
}

/// Ids of ours inside an event's metadata, as UUIDs.
fn ids_in_metadata(m: &Value) -> Value {
    match m {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = k.replace("opportunityId", "leadId");
                    let v = if k.ends_with("Id") { uuid_value(v) } else { v.clone() };
                    (key, v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

// ---- Activities and tasks -------------------------------------------------------------------

fn activity_out(a: &Value) -> Value {
    json!({ "id": uuid_value(&a["id"]), "type": a["type"], "subject": a["subject"], "body": a["body"],
            "occurredAt": a["occurredAt"], "leadId": uuid_value(&a["opportunityId"]), "companyId": uuid_value(&a["companyId"]),
            "contactId": uuid_value(&a["contactId"]), "ownerId": null })
}

const ACTIVITY_NAMES: &[(&str, &str)] = &[("opportunityId", "leadId"), ("opportunity", "lead")];

async fn create_activity(req: &Req, lead: Option<String>) -> Result {
    refuse_unbuilt(req, &[("ownerId", "an activity's owners")])?;
    let mut input = Map::new();
    copy(&req.body, &mut input, &["type", "subject", "body", "occurredAt"]);
    let lead = match lead {
        Some(l) => Some(json!(l)),
        None => body_id(req, IdKind::Opportunity, "leadId")?.filter(|v| !v.is_null()),
    };
    let company = body_id(req, IdKind::Company, "companyId")?.filter(|v| !v.is_null());
    match (lead, company) {
        (None, None) => return Err(Error::bad("name leadId or companyId")),
        (l, c) => {
            if let Some(l) = l {
                input.insert("opportunityId".into(), l);
            }
            if let Some(c) = c {
                input.insert("companyId".into(), c);
            }
        }
    };
    if let Some(c) = body_id(req, IdKind::Contact, "contactId")?.filter(|v| !v.is_null()) {
        input.insert("contactId".into(), c);
    }
    let a = req
        .op("link_building.crm.activity.create", Value::Object(input))
        .await
        .map_err(|e| renamed(e, ACTIVITY_NAMES))?;
    Ok(Out::Json(StatusCode::CREATED, activity_out(&a)))
}

pub async fn lead_activity(req: &Req) -> Result {
    let id = path_id(req, IdKind::Opportunity, "id")?;
    create_activity(req, Some(id)).await
}

pub async fn activity_create(req: &Req) -> Result {
    create_activity(req, None).await
}

pub async fn activities_list(req: &Req) -> Result {
    let mut input = json!({});
    if let Some(l) = req.q("leadId") {
        input["opportunityId"] = json!(id_in(IdKind::Opportunity, "leadId", l)?);
    }
    if let Some(c) = req.q("contactId") {
        input["contactId"] = json!(id_in(IdKind::Contact, "contactId", c)?);
    }
    if let Some(c) = req.q("companyId") {
        input["companyId"] = json!(id_in(IdKind::Company, "companyId", c)?);
    }
    let all = req.all("link_building.crm.activity.list", input).await.map_err(|e| renamed(e, ACTIVITY_NAMES))?;
    req.page("activities", all.iter().map(activity_out).collect())
}

fn task_out(t: &Value) -> Value {
    json!({ "id": uuid_value(&t["id"]), "title": t["title"], "dueAt": t["dueAt"], "status": t["status"],
            "assigneeId": uuid_value(&t["assigneeId"]), "leadId": uuid_value(&t["opportunityId"]),
            "companyId": uuid_value(&t["companyId"]),
            "contactId": uuid_value(&t["contactId"]), "completedAt": t["completedAt"], "notes": t["notes"] })
}

pub async fn tasks_list(req: &Req) -> Result {
    let mut input = json!({});
    if let Some(l) = req.q("leadId") {
        input["opportunityId"] = json!(id_in(IdKind::Opportunity, "leadId", l)?);
    }
    if let Some(a) = req.q("assigneeId") {
        input["assignee"] = json!(owner_param(a).map_err(|_| Error::bad("assigneeId must be a UUID or me"))?);
    }
    let all = req.all("link_building.crm.task.list", input).await.map_err(|e| renamed(e, ACTIVITY_NAMES))?;
    req.page("tasks", all.iter().map(task_out).collect())
}

fn task_input(req: &Req) -> Result<Map<String, Value>> {
    let mut input = Map::new();
    copy(&req.body, &mut input, &["title", "dueAt", "notes", "status"]);
    if let Some(a) = body_id(req, IdKind::Member, "assigneeId")? {
        input.insert("assigneeId".into(), a);
    }
    Ok(input)
}

pub async fn task_create(req: &Req) -> Result {
    let mut input = task_input(req)?;
    input.remove("status");
    if let Some(l) = body_id(req, IdKind::Opportunity, "leadId")?.filter(|v| !v.is_null()) {
        input.insert("opportunityId".into(), l);
    }
    if let Some(c) = body_id(req, IdKind::Contact, "contactId")?.filter(|v| !v.is_null()) {
        input.insert("contactId".into(), c);
    }
    if let Some(c) = body_id(req, IdKind::Company, "companyId")?.filter(|v| !v.is_null()) {
        input.insert("companyId".into(), c);
    }
    let t =
        req.op("link_building.crm.task.create", Value::Object(input)).await.map_err(|e| renamed(e, ACTIVITY_NAMES))?;
    Ok(Out::Json(StatusCode::CREATED, task_out(&t)))
}

pub async fn task_update(req: &Req) -> Result {
    let mut input = task_input(req)?;
    input.insert("id".into(), json!(path_id(req, IdKind::Task, "id")?));
    let t = req.op("link_building.crm.task.update", Value::Object(input)).await?;
    Ok(Out::Json(StatusCode::OK, task_out(&t)))
}

pub async fn task_complete(req: &Req) -> Result {
    let id = path_id(req, IdKind::Task, "id")?;
    let t = req.op("link_building.crm.task.complete", json!({ "id": id })).await?;
    Ok(Out::Json(StatusCode::OK, task_out(&t)))
}

// ---- Outbound email, connections, dashboard ---------------------------------------------------

fn channel_of(m: &Value) -> &str {
    m["imap"]["oauthProvider"].as_str().unwrap_or("smtp")
}

pub async fn connections(req: &Req) -> Result {
    let all = req.all("mailboxes.list", json!({})).await?;
    let list: Vec<Value> = all
        .iter()
        .filter(|m| m["active"].as_bool().unwrap_or(true))
        .map(|m| {
            json!({ "id": uuid_value(&m["id"]), "channel": channel_of(m), "address": m["fromAddress"],
                         "displayName": m["fromName"] })
        })
        .collect();
    Ok(Out::Json(StatusCode::OK, json!({ "connections": list })))
}

pub async fn outbound_email(req: &Req) -> Result {
    let lead = match req.b_str("leadId")? {
        Some(l) => id_in(IdKind::Opportunity, "leadId", l)?,
        None => return Err(Error::bad("leadId is required")),
    };
    let connection = match req.b_str("connectionId")? {
        Some(c) => id_in(IdKind::Mailbox, "connectionId", c)?,
        None => return Err(Error::bad("connectionId is required")),
    };
    let subject = req.b_str("subject")?.ok_or_else(|| Error::bad("subject is required"))?;
    let html =
        req.b_str("htmlBody")?.filter(|h| !h.trim().is_empty()).ok_or_else(|| Error::bad("htmlBody is required"))?;
    let channel = req.b_str("channel")?;
    if let Some(c) = channel {
        if !["gmail", "outlook", "smtp"].contains(&c) {
            return Err(Error::bad("channel must be gmail, outlook or smtp"));
        }
    }
    let o =
        req.op("link_building.crm.opportunity.get", json!({ "id": lead })).await.map_err(|e| renamed(e, LEAD_NAMES))?;
    let Some(rel) = o["relationshipId"].as_str() else {
        return Err(unprocessable("leadId: the lead is not linked to a partner site; create it with a domain"));
    };
    let contact = match body_id(req, IdKind::Contact, "contactId")?.filter(|v| !v.is_null()) {
        Some(c) => c,
        None => match o["contactId"].as_str() {
            Some(c) => json!(c),
            None => return Err(unprocessable("contactId: the lead has no contact; name one")),
        },
    };
    if let Some(c) = channel {
        let m = req.op("mailboxes.get", json!({ "id": connection })).await?;
        if channel_of(&m) != c {
            return Err(unprocessable(format!("channel: the connection is {}, not {c}", channel_of(&m))));
        }
    }
    let text = mail_parser::decoders::html::html_to_text(html);
    let text = if text.trim().is_empty() { subject.to_owned() } else { text };
    let (status, inv) = req
        .op_status(
            "link_building.crm.relationship.send_email",
            json!({ "id": rel, "contactId": contact, "subject": subject, "body": text, "htmlBody": html,
                    "mailboxId": connection }),
        )
        .await
        .map_err(|e| renamed(e, &[("mailboxId", "connectionId"), ("mailbox", "connection")]))?;
    Ok(Out::Json(
        status,
        json!({ "id": uuid_value(&inv["invocationId"]), "status": inv["status"], "leadId": to_uuid(&lead),
                "connectionId": to_uuid(&connection), "subject": subject }),
    ))
}

pub async fn dashboard(req: &Req) -> Result {
    let d = req.op("link_building.crm.dashboard", json!({})).await?;
    let by_stage: Vec<Value> = d["leadsByStage"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    json!({ "stageId": uuid_value(&s["stageId"]), "name": s["name"], "count": s["count"],
                                 "value": s["value"] })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Out::Json(
        StatusCode::OK,
        json!({ "leadsByStage": by_stage, "openPipelineValue": d["openPipelineValue"],
                "activitiesThisWeek": d["activitiesThisWeek"], "tasksDue": d["tasksDue"],
                "tasksOverdue": d["tasksOverdue"], "sendsThisWeek": d["sendsThisWeek"],
                "repliesThisWeek": d["repliesThisWeek"] }),
    ))
}
