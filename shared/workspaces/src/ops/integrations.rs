//! `workspaces.integrations.apollo.*`: a workspace's own Apollo key for contact discovery (billed
//! to the client's Apollo account instead of the platform's). The key is sealed at rest and never
//! returned; reads show whether one is set, its last four characters, and whether its quota is
//! known to be exhausted (`linkcrm_crm::apollo_keys`).

use crate::auth;
use crate::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::items::{self as records, obj};
use crate::outbox;
use axum::http::StatusCode;
use linkcrm_crm::apollo_keys::{self, Scope};
use linkcrm_storage::TxOp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

const TAG: &str = "Workspaces";

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApolloIntegration {
    pub workspace_id: String,
    pub provider: &'static str,
    /// Whether discovery in this workspace uses the workspace's own key (else the platform's).
    pub configured: bool,
    /// The key's last four characters.
    pub key_last4: Option<String>,
    pub updated_at: Option<String>,
    /// When Apollo last said the key in use is out of credits or quota, while that is what we know
    /// (new discoveries are refused with 422 `apollo_quota_exceeded` meanwhile).
    pub quota_exhausted_at: Option<String>,
}

async fn view(ctx: &Ctx, ws: &str) -> ApiResult<ApolloIntegration> {
    let state = apollo_keys::state(&ctx.app, ws).await?;
    let field = |k: &str| state.integration.as_ref().and_then(|i| records::str_of(i, k)).map(str::to_owned);
    Ok(ApolloIntegration {
        workspace_id: ws.to_owned(),
        provider: "apollo",
        configured: state.integration.is_some(),
        key_last4: field("keyLast4"),
        updated_at: field("updatedAt"),
        quota_exhausted_at: state.exhausted_at,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetApolloInput {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    /// The workspace's Apollo API key (write-only).
    #[schemars(pattern(crate::rules::SECRET))]
    pub api_key: String,
}

pub struct SetApollo;
impl Operation for SetApollo {
    const NAME: &'static str = "workspaces.integrations.apollo.set";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Use the workspace's own Apollo key for contact discovery (sealed, never returned)";
    const TAG: &'static str = TAG;
    type Input = SetApolloInput;
    type Output = ApolloIntegration;

    async fn run(ctx: Ctx, input: SetApolloInput) -> ApiResult<Reply<ApolloIntegration>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let key = input.api_key.trim();
        if key.len() < 8 || key.len() > 200 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::invalid_field("apiKey", "invalid_request", "must be 8 to 200 printable characters"));
        }
        let k = apollo_keys::integration_key(&input.id);
        let last4: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        let item = obj(json!({
            "PK": k.pk, "SK": k.sk, "entity": "integration", "provider": "apollo", "workspaceId": input.id,
            "apiKeySealed": ctx.app.seal(key), "keyLast4": last4,
            "updatedAt": linkcrm_domain::time::now_string(), "updatedBy": ctx.caller.key_id,
        }));
        let event = json!({ "provider": "apollo", "keyLast4": last4 });
        ctx.app
            .store
            .transact(vec![TxOp::put(item), outbox::event("workspace.integration.set", Some(&input.id), event)])
            .await?;
        Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(view(&ctx, &input.id).await?) })
    }
}

pub struct GetApollo;
impl Operation for GetApollo {
    const NAME: &'static str = "workspaces.integrations.apollo.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Whether the workspace uses its own Apollo key, and what is known of its quota";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Workspace>;
    type Output = ApolloIntegration;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<ApolloIntegration>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        Ok(Reply::ok(view(&ctx, &input.id).await?))
    }
}

pub struct RemoveApollo;
impl Operation for RemoveApollo {
    const NAME: &'static str = "workspaces.integrations.apollo.remove";
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = "Stop using the workspace's own Apollo key (discovery falls back to the platform's)";
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Workspace>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<()>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let ops = vec![
            TxOp::delete(apollo_keys::integration_key(&input.id)),
            TxOp::delete(apollo_keys::quota_key(&Scope::Workspace(input.id.to_string()))),
            outbox::event("workspace.integration.removed", Some(&input.id), json!({ "provider": "apollo" })),
        ];
        ctx.app.store.transact(ops).await?;
        Ok(Reply::no_content())
    }
}
