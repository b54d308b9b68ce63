//! The webhooks operations (`/v1/webhooks...`).

pub mod deliveries;
pub mod endpoints;
pub mod event_types;

use linkcrm_core::catalogue::OpSpec;
use linkcrm_core::context::Ctx;

pub(crate) const TAG: &str = "Webhooks";
pub(crate) const SCOPE: Option<&str> = Some("webhooks:manage");

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<endpoints::Create>(),
        OpSpec::of::<endpoints::List>(),
        OpSpec::of::<endpoints::Get>(),
        OpSpec::of::<endpoints::Update>(),
        OpSpec::of::<endpoints::Delete>(),
        OpSpec::of::<endpoints::RotateSecret>(),
        OpSpec::of::<deliveries::Test>(),
        OpSpec::of::<deliveries::Deliveries>(),
        OpSpec::of::<deliveries::Recover>(),
        OpSpec::of::<deliveries::DeadLetters>(),
        OpSpec::of::<deliveries::Replay>(),
        OpSpec::of::<event_types::ListEventTypes>(),
    ]
}

/// Whose endpoints a request sees: the workspace's (a workspace key, or an agency key with
/// `X-Workspace-Id`), or the agency's own (an agency key without it).
pub(crate) fn owner(ctx: &Ctx) -> (String, Option<String>) {
    match &ctx.workspace_id {
        Some(ws) => (ws.clone(), Some(ws.clone())),
        None => (ctx.caller.agency_id.clone(), None),
    }
}

/// The endpoint `id` of the caller's owner, or 404.
pub(crate) async fn load(ctx: &Ctx, id: &str) -> linkcrm_core::error::ApiResult<crate::records::Endpoint> {
    let (owner, _) = owner(ctx);
    match ctx.app.store.get(&crate::keys::endpoint(&owner, id)).await? {
        Some(item) => crate::records::Endpoint::from_item(&item),
        None => Err(crate::records::not_found(id)),
    }
}
