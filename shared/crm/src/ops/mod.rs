//! `link_building.crm.*`: accounts, contacts, relationships and events (seed 000), and contact
//! discovery.

pub mod accounts;
pub mod activities;
pub mod companies;
pub mod contacts;
pub mod dashboard;
pub mod discover;
pub mod events;
pub mod memberships;
pub mod pipeline;
pub mod relationships;
pub mod tasks;

use crate::catalogue::OpSpec;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Contact `id` exists (contacts are shared), or 404 `contact_not_found`.
pub(crate) async fn check_contact(ctx: &Ctx, id: &str) -> ApiResult<()> {
    match ctx.app.store.get(&crate::keys::contact(id)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("contact_not_found", "contact", id)),
    }
}

/// A schema-valid request a rule refuses: 422 naming the field.
pub(crate) fn unprocessable(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, code, message);
    e.status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    e
}

pub const TAG_ACCOUNTS: &str = "CRM: accounts";
pub const TAG_CONTACTS: &str = "CRM: contacts";
pub const TAG_RELATIONSHIPS: &str = "CRM: relationships";
pub const TAG_EVENTS: &str = "CRM: events";
pub const TAG_PIPELINE: &str = "CRM: pipeline";

pub fn catalogue() -> Vec<OpSpec> {
    let mut ops = Vec::new();
    ops.extend(accounts::ops());
    ops.extend(contacts::ops());
    ops.extend(discover::ops());
    ops.extend(relationships::ops());
    ops.extend(events::ops());
    ops.extend(pipeline::ops());
    ops.extend(companies::ops());
    ops.extend(memberships::ops());
    ops.extend(activities::ops());
    ops.extend(tasks::ops());
    ops.extend(dashboard::ops());
    ops
}

pub use linkcrm_core::validate::{header_text, text, time_param};
