//! `link_building.crm.contact.discover`: Apollo contact discovery. The queued-work machinery it
//! needs (invocations, credits, the discovery worker) is not built yet, so the endpoint exists,
//! validates its input, and says plainly that it is not available.

use super::TAG_CONTACTS;
use crate::catalogue::{OpSpec, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use axum::http::{Method, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;

pub fn ops() -> Vec<OpSpec> {
    vec![OpSpec::of::<Discover>()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoverInput {
    pub account_ids: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub seniority: Vec<String>,
}

pub struct Discover;
impl Operation for Discover {
    const NAME: &'static str = "link_building.crm.contact.discover";
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1/link-building/crm/contact/discover";
    const SCOPE: Option<&'static str> = Some("crm:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = 400;
    const SUMMARY: &'static str = "Discover contacts via Apollo (not available yet: answers 501)";
    const TAG: &'static str = TAG_CONTACTS;
    type Input = DiscoverInput;
    type Output = ();

    async fn run(_ctx: Ctx, _input: DiscoverInput) -> ApiResult<Reply<()>> {
        Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "Contact discovery (Apollo) is not available yet on this server.",
        ))
    }
}
