//! `workspaces.integrations.dataforseo|ahrefs|llm.*`: a workspace's own keys for SERP research,
//! backlinks and metrics, and the LLM that writes drafts (billed to the client's account instead
//! of the platform's). Secrets are sealed at rest and never returned; reads show whether a key is
//! set and its last four characters. Which credentials a call uses: `linkcrm_core::provider_keys`.

use crate::auth;
use crate::catalogue::{Effect, Family, IdInput, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::items::{self as records, obj};
use crate::outbox;
use axum::http::StatusCode;
use linkcrm_storage::TxOp;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::marker::PhantomData;

const TAG: &str = "Workspaces";

/// A key's fields: the secret ones (sealed) and the plain ones.
pub type Parts = (Vec<(&'static str, String)>, Vec<(&'static str, String)>);

/// One provider's integration: its name, operation names and the fields its key is made of.
pub trait Provider: Send + Sync + 'static {
    const PROVIDER: &'static str;
    const SET: &'static str;
    const GET: &'static str;
    const REMOVE: &'static str;
    const SET_SUMMARY: &'static str;
    const GET_SUMMARY: &'static str;
    const REMOVE_SUMMARY: &'static str;
    /// The request's fields (besides the workspace id).
    type Fields: DeserializeOwned + JsonSchema + Send + 'static;
    /// The secret fields (sealed) and the plain ones, checked.
    fn split(f: Self::Fields) -> ApiResult<Parts>;
}

fn secret(field: &str, v: String) -> ApiResult<String> {
    let v = v.trim().to_owned();
    if v.len() < 4 || v.len() > 200 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid_field(field, "invalid_request", "must be 4 to 200 printable characters"));
    }
    Ok(v)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataForSeoFields {
    #[schemars(pattern(crate::rules::SECRET))]
    pub login: String,
    #[schemars(pattern(crate::rules::SECRET))]
    pub password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AhrefsFields {
    #[schemars(pattern(crate::rules::SECRET))]
    pub api_key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmFields {
    #[schemars(pattern(crate::rules::SECRET))]
    pub api_key: String,
    /// The model to ask (the platform's default when absent).
    #[schemars(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9._:/-]{1,100}$"))]
    pub model: Option<String>,
}

pub struct DataForSeo;
impl Provider for DataForSeo {
    const PROVIDER: &'static str = "dataforseo";
    const SET: &'static str = "workspaces.integrations.dataforseo.set";
    const GET: &'static str = "workspaces.integrations.dataforseo.get";
    const REMOVE: &'static str = "workspaces.integrations.dataforseo.remove";
    const SET_SUMMARY: &'static str =
        "Use the workspace's own DataForSEO login (SERP research), sealed and never returned";
    const GET_SUMMARY: &'static str = "Whether the workspace uses its own DataForSEO login (SERP research)";
    const REMOVE_SUMMARY: &'static str =
        "Stop using the workspace's own DataForSEO login (SERP research); the platform's is used";
    type Fields = DataForSeoFields;
    fn split(f: DataForSeoFields) -> ApiResult<Parts> {
        Ok((vec![("login", secret("login", f.login)?), ("password", secret("password", f.password)?)], vec![]))
    }
}

pub struct Ahrefs;
impl Provider for Ahrefs {
    const PROVIDER: &'static str = "ahrefs";
    const SET: &'static str = "workspaces.integrations.ahrefs.set";
    const GET: &'static str = "workspaces.integrations.ahrefs.get";
    const REMOVE: &'static str = "workspaces.integrations.ahrefs.remove";
    const SET_SUMMARY: &'static str =
        "Use the workspace's own Ahrefs API key (backlinks and domain metrics), sealed and never returned";
    const GET_SUMMARY: &'static str =
        "Whether the workspace uses its own Ahrefs API key (backlinks and domain metrics)";
    const REMOVE_SUMMARY: &'static str =
        "Stop using the workspace's own Ahrefs API key (backlinks and domain metrics); the platform's is used";
    type Fields = AhrefsFields;
    fn split(f: AhrefsFields) -> ApiResult<Parts> {
        Ok((vec![("apiKey", secret("apiKey", f.api_key)?)], vec![]))
    }
}

pub struct Llm;
impl Provider for Llm {
    const PROVIDER: &'static str = "llm";
    const SET: &'static str = "workspaces.integrations.llm.set";
    const GET: &'static str = "workspaces.integrations.llm.get";
    const REMOVE: &'static str = "workspaces.integrations.llm.remove";
    const SET_SUMMARY: &'static str =
        "Use the workspace's own LLM API key and model (drafting and writing), sealed and never returned";
    const GET_SUMMARY: &'static str = "Whether the workspace uses its own LLM API key and model (drafting and writing)";
    const REMOVE_SUMMARY: &'static str =
        "Stop using the workspace's own LLM API key and model (drafting and writing); the platform's is used";
    type Fields = LlmFields;
    fn split(f: LlmFields) -> ApiResult<Parts> {
        let plain = f.model.map(|m| vec![("model", m)]).unwrap_or_default();
        Ok((vec![("apiKey", secret("apiKey", f.api_key)?)], plain))
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub workspace_id: String,
    pub provider: String,
    /// Whether this workspace's calls use its own credentials.
    pub configured: bool,
    /// When not: whether the platform has credentials of its own for this provider.
    pub platform_configured: bool,
    /// The last four characters of the key (of the login for DataForSEO).
    pub key_last4: Option<String>,
    pub model: Option<String>,
    pub updated_at: Option<String>,
}

async fn view(ctx: &Ctx, ws: &str, provider: &str) -> ApiResult<Integration> {
    let item = ctx.app.store.get(&linkcrm_core::keys::provider_integration(ws, provider)).await?;
    let field = |k: &str| item.as_ref().and_then(|i| records::str_of(i, k)).map(str::to_owned);
    Ok(Integration {
        workspace_id: ws.to_owned(),
        provider: provider.to_owned(),
        configured: item.is_some(),
        platform_configured: linkcrm_core::provider_keys::platform(provider).is_some(),
        key_last4: field("keyLast4"),
        model: field("model"),
        updated_at: field("updatedAt"),
    })
}

/// The input of a set: the workspace (path) and the provider's fields.
#[derive(Debug, Deserialize)]
#[serde(bound = "")]
pub struct SetInput<P: Provider> {
    pub id: crate::ids::Id<crate::ids::Workspace>,
    #[serde(flatten)]
    pub fields: Value,
    #[serde(skip)]
    _p: PhantomData<P>,
}

impl<P: Provider> JsonSchema for SetInput<P> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("SetIntegration_{}", P::PROVIDER).into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut s = g.root_schema_for::<P::Fields>().to_value();
        s["properties"]["id"] = g.subschema_for::<crate::ids::Id<crate::ids::Workspace>>().to_value();
        if let Some(r) = s["required"].as_array_mut() {
            r.push(json!("id"));
        }
        if let Some(o) = s.as_object_mut() {
            o.remove("$schema");
            o.remove("title");
        }
        schemars::Schema::try_from(s).unwrap_or_default()
    }
}

pub struct Set<P>(PhantomData<P>);
impl<P: Provider> Operation for Set<P> {
    const NAME: &'static str = P::SET;
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = P::SET_SUMMARY;
    const TAG: &'static str = TAG;
    type Input = SetInput<P>;
    type Output = Integration;

    async fn run(ctx: Ctx, input: SetInput<P>) -> ApiResult<Reply<Integration>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let fields: P::Fields = crate::catalogue::parse_input(input.fields)?;
        let (secrets, plain) = P::split(fields)?;
        let k = linkcrm_core::keys::provider_integration(&input.id, P::PROVIDER);
        let first = secrets.first().map(|(_, v)| v.clone()).unwrap_or_default();
        let last4: String = first.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        let sealed: serde_json::Map<String, Value> =
            secrets.iter().map(|(k, v)| (k.to_string(), json!(ctx.app.seal(v)))).collect();
        let mut item = obj(json!({
            "PK": k.pk, "SK": k.sk, "entity": "integration", "provider": P::PROVIDER, "workspaceId": input.id,
            "sealed": sealed, "keyLast4": last4,
            "updatedAt": linkcrm_domain::time::now_string(), "updatedBy": ctx.caller.key_id,
        }));
        for (k, v) in plain {
            item.insert(k.into(), json!(v));
        }
        let event = json!({ "provider": P::PROVIDER, "keyLast4": last4 });
        ctx.app
            .store
            .transact(vec![TxOp::put(item), outbox::event("workspace.integration.set", Some(&input.id), event)])
            .await?;
        Ok(Reply { status: Some(StatusCode::OK), ..Reply::ok(view(&ctx, &input.id, P::PROVIDER).await?) })
    }
}

pub struct Get<P>(PhantomData<P>);
impl<P: Provider> Operation for Get<P> {
    const NAME: &'static str = P::GET;
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = P::GET_SUMMARY;
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Workspace>;
    type Output = Integration;

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<Integration>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        Ok(Reply::ok(view(&ctx, &input.id, P::PROVIDER).await?))
    }
}

pub struct Remove<P>(PhantomData<P>);
impl<P: Provider> Operation for Remove<P> {
    const NAME: &'static str = P::REMOVE;
    const EFFECT: Effect = Effect::Delete;
    const FAMILY: Family = Family::Workspaces;
    const SCOPE: Option<&'static str> = Some("workspaces:admin");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::None;
    const SUMMARY: &'static str = P::REMOVE_SUMMARY;
    const TAG: &'static str = TAG;
    type Input = IdInput<crate::ids::Workspace>;
    type Output = ();

    async fn run(ctx: Ctx, input: IdInput<crate::ids::Workspace>) -> ApiResult<Reply<()>> {
        auth::authorize_workspace(&ctx.app, &ctx.caller, &input.id).await?;
        let ops = vec![
            TxOp::delete(linkcrm_core::keys::provider_integration(&input.id, P::PROVIDER)),
            outbox::event("workspace.integration.removed", Some(&input.id), json!({ "provider": P::PROVIDER })),
        ];
        ctx.app.store.transact(ops).await?;
        Ok(Reply::no_content())
    }
}
