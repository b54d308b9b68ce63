//! `workspaces.health`: `GET /v1/workspaces/{id}/health`.

use super::{SCOPE, TAG};
use crate::health::{of_workspace, WorkspaceHealth};
use linkcrm_core::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use linkcrm_core::context::Ctx;
use linkcrm_core::error::ApiResult;
use linkcrm_core::{auth, ids};

pub struct GetHealth;
impl Operation for GetHealth {
    const NAME: &'static str = "workspaces.health";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Agency;
    const SCOPE: Option<&'static str> = SCOPE;
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Integration health of a workspace (apollo, ahrefs, dataforseo, llm, each mailbox's SMTP and IMAP, webhooks): healthy, warning, error or not_connected, from what real calls did, probing a connected provider unchecked for an hour (LINKCRM_HEALTH_PROBE_AFTER_SECS) with a free call";
    const TAG: &'static str = TAG;
    type Input = IdInput<ids::Workspace>;
    type Output = WorkspaceHealth;

    async fn run(ctx: Ctx, input: IdInput<ids::Workspace>) -> ApiResult<Reply<WorkspaceHealth>> {
        let record = auth::authorize_workspace(&ctx.app, &ctx.caller, input.id.as_str()).await?;
        Ok(Reply::ok(of_workspace(&ctx.app, record.id(), true).await?))
    }
}
