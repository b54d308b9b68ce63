//! `PATCH /account/{id}` (the fields a workspace may set: notes and prices) and
//! `POST /account/{id}/do-not-contact` (the one explicit way to the DO_NOT_CONTACT status).
//!
//! Both change the shared account with Update actions guarded by its `version`, never a
//! whole-item put: the event write path adds to the same item's contact counters concurrently,
//! and a put would lose those additions.

use super::TAG_ACCOUNTS;
use crate::catalogue::{parse_input, Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::ops::text;
use crate::outbox;
use crate::records::{int_of, AccountRecord};
use crate::write::{account_event_item, load_account};
use axum::http::StatusCode;
use linkcrm_domain::crm::Account;
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_domain::enums::EventType;
use linkcrm_domain::time;
use linkcrm_storage::{Condition, StoreError, TxOp, Update};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const MAX_NOTES: usize = 10_000;
const MAX_PRICE_CONTEXT: usize = 2_000;
const MAX_REASON: usize = 2_000;
/// Prices are whole USD; anything above this is a typo, not a rate.
const MAX_PRICE: i64 = 10_000_000;
/// DO_NOT_CONTACT retries when a concurrent PATCH moved the version between read and write.
const DNC_ATTEMPTS: usize = 5;

/// The body of `PATCH /account/{id}`: only what a workspace may set. The derived and
/// system-maintained fields (status, contact facts, ratings) are not accepted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchFields {
    pub id: crate::ids::Id<crate::ids::Account>,
    /// Shared notes about the partner (every workspace reads them); null clears them.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 10000))]
    pub raw_notes: Option<Option<String>>,
    /// USD per link insertion, a whole non-negative number; null clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<u32>", range(max = 10_000_000))]
    pub price_link_insertion: Option<Option<i64>>,
    /// USD per guest post, a whole non-negative number; null clears it.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<u32>", range(max = 10_000_000))]
    pub price_guest_post: Option<Option<i64>>,
    /// What the prices cover, e.g. "Asking $450 for editorial insertions in 2026".
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<String>")]
    #[schemars(length(max = 2000))]
    pub price_context: Option<Option<String>>,
}

/// The raw body, so that `systemContactStatus` is refused with 403 before the field list is
/// checked (an unknown field is only a 400).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct PatchInput(pub Map<String, Value>);

/// Documented as the fields it accepts (the OpenAPI body then drops the path's `id` from them).
impl JsonSchema for PatchInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AccountPatch".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        PatchFields::json_schema(generator)
    }
}

fn check_price(field: &str, v: Option<i64>) -> ApiResult<Option<i64>> {
    match v {
        Some(p) if !(0..=MAX_PRICE).contains(&p) => Err(ApiError::invalid_field(
            field,
            "invalid_request",
            format!("must be a whole number of USD from 0 to {MAX_PRICE}"),
        )),
        v => Ok(v),
    }
}

pub struct Patch;
impl Operation for Patch {
    const NAME: &'static str = "link_building.crm.account.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "Update an account's notes and prices (a price change is logged as PRICE_UPDATED)";
    const TAG: &'static str = TAG_ACCOUNTS;
    type Input = PatchInput;
    type Output = Account;

    async fn run(ctx: Ctx, input: PatchInput) -> ApiResult<Reply<Account>> {
        if input.0.contains_key("systemContactStatus") {
            return Err(ApiError::forbidden(
                "system_field_protected",
                "systemContactStatus is derived by the system from events; mark an account DO_NOT_CONTACT with POST /v1/link-building/crm/account/{id}/do-not-contact.",
            )
            .with_details(json!({ "field": "systemContactStatus" })));
        }
        let fields: PatchFields = parse_input(Value::Object(input.0))?;
        let record = load_account(&ctx.app, &fields.id).await?;
        let version = record.version();
        if ctx.if_match.is_some_and(|v| v != version) {
            return Err(ApiError::precondition_failed(version));
        }

        // What differs from the stored account; unchanged values write nothing.
        let mut sets: Vec<(&'static str, Value)> = Vec::new();
        let mut price_changes = Map::new();
        if let Some(notes) = fields.raw_notes {
            sets.push(("rawNotes", json!(text("rawNotes", notes, MAX_NOTES)?)));
        }
        if let Some(context) = fields.price_context {
            sets.push(("priceContext", json!(text("priceContext", context, MAX_PRICE_CONTEXT)?)));
        }
        for (field, value) in
            [("priceLinkInsertion", fields.price_link_insertion), ("priceGuestPost", fields.price_guest_post)]
        {
            let Some(value) = value else { continue };
            let new = check_price(field, value)?;
            let old = int_of(&record.0, field);
            if old != new {
                price_changes.insert(field.into(), json!({ "from": old, "to": new }));
                sets.push((field, json!(new)));
            }
        }
        sets.retain(|(k, v)| record.0.get(*k).unwrap_or(&Value::Null) != v);
        let policy = CoolingPolicy::from_env();
        if sets.is_empty() {
            return Ok(Reply::ok(record.view(policy)?).with_version(version));
        }

        let now = time::now_string();
        let mut update = Update::new().set("updatedAt", now.clone()).add("version", 1);
        for (k, v) in sets {
            update = update.set(k, v);
        }
        let mut ops = Vec::new();
        if !price_changes.is_empty() {
            // priceSeq orders the account's price events for replay (the last one holds the prices).
            let seq = int_of(&record.0, "priceSeq").unwrap_or(0) + 1;
            let changes = Value::Object(price_changes);
            let event = account_event_item(
                record.id(),
                EventType::PriceUpdated,
                Some(ctx.workspace()),
                &ctx.caller.key_id,
                changes.clone(),
                seq,
            );
            // The same instant as the event, so replay gives back exactly what is stored.
            update = update.set("pricesUpdatedAt", event["occurredAt"].clone()).set("priceSeq", seq);
            ops.push(outbox::event(
                "link_building.account.price_updated",
                Some(ctx.workspace()),
                json!({ "accountId": record.id(), "domain": record.domain(), "eventId": event["id"], "changes": changes }),
            ));
            ops.push(TxOp::put_if(event, Condition::NotExists));
        }
        ops.insert(0, TxOp::update_if(keys::account(record.id()), update.clone(), Condition::VersionEquals(version)));
        match ctx.app.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => {
                // The caller named the version it read and it is gone: that is If-Match failing.
                return Err(match ctx.if_match {
                    Some(_) => ApiError::precondition_failed(load_account(&ctx.app, record.id()).await?.version()),
                    None => ApiError::conflict(
                        "conflict",
                        "The account changed while this request ran; read it again and retry.",
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Reply::ok(applied(record, &update)?.view(policy)?).with_version(version + 1))
    }
}

/// The account as the committed update left it (counters may have moved since; they are not
/// this request's to report).
fn applied(mut record: AccountRecord, update: &Update) -> ApiResult<AccountRecord> {
    update.apply(&mut record.0).map_err(|e| {
        tracing::error!(error = %e, "account update does not apply to the item it was read from");
        ApiError::internal()
    })?;
    Ok(record)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DoNotContactInput {
    pub id: crate::ids::Id<crate::ids::Account>,
    /// Why nobody may contact the partner (1 to 2000 characters), e.g. "Asked to be removed".
    #[schemars(length(max = 2000), pattern(crate::rules::NOT_BLANK))]
    pub reason: String,
}

pub struct DoNotContact;
impl Operation for DoNotContact {
    const NAME: &'static str = "link_building.crm.account.do_not_contact";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Crm;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Mark an account DO_NOT_CONTACT for every workspace (sticky; repeating it changes nothing)";
    const TAG: &'static str = TAG_ACCOUNTS;
    type Input = DoNotContactInput;
    type Output = Account;

    async fn run(ctx: Ctx, input: DoNotContactInput) -> ApiResult<Reply<Account>> {
        let reason = text("reason", Some(input.reason), MAX_REASON)?
            .ok_or_else(|| ApiError::invalid_field("reason", "invalid_request", "must not be empty"))?;
        let policy = CoolingPolicy::from_env();
        let ok = |record: AccountRecord| -> ApiResult<Reply<Account>> {
            let version = record.version();
            Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(record.view(policy)?) }.with_version(version))
        };
        for _ in 0..DNC_ATTEMPTS {
            let record = load_account(&ctx.app, &input.id).await?;
            // Sticky and idempotent: the first reason stands and nothing new is written.
            if record.do_not_contact() {
                return ok(record);
            }
            let version = record.version();
            let now = time::now_string();
            let update = Update::new()
                .set("doNotContact", true)
                .set("doNotContactReason", reason.clone())
                .set("doNotContactAt", now.clone())
                .set("updatedAt", now)
                .add("version", 1);
            let event = account_event_item(
                record.id(),
                EventType::DoNotContactSet,
                Some(ctx.workspace()),
                &ctx.caller.key_id,
                json!({ "reason": reason }),
                1,
            );
            let ops = vec![
                TxOp::update_if(keys::account(record.id()), update.clone(), Condition::VersionEquals(version)),
                outbox::event(
                    "link_building.account.do_not_contact",
                    Some(ctx.workspace()),
                    json!({ "accountId": record.id(), "domain": record.domain(), "eventId": event["id"], "reason": reason }),
                ),
                TxOp::put_if(event, Condition::NotExists),
            ];
            match ctx.app.store.transact(ops).await {
                Ok(()) => return ok(applied(record, &update)?),
                // Someone changed the account (or marked it first): read again and decide again.
                Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict("conflict", "The account changed concurrently too often; retry."))
    }
}
