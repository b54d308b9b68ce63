//! `link_building.inbound.settings.*` and the per-partner modes.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, Mode, Settings};
use crate::{keys, outbox};
use axum::http::StatusCode;
use linkcrm_core::items::obj;
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::{Condition, StoreError, TxOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TAG: &str = "Inbound negotiator";

/// The anchor's `connectedInbox`: a Gmail or Microsoft 365 mailbox to connect with OAuth.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectedInbox {
    /// `gmail` or `outlook`.
    pub r#type: linkcrm_outreach::oauth::Provider,
    #[schemars(pattern(linkcrm_core::rules::EMAIL))]
    pub address: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    pub enabled: Option<bool>,
    /// Turning this on needs a key with `workspaces:admin`.
    pub autonomous: Option<bool>,
    pub default_tone: Option<records::Tone>,
    /// At most 10, each cut to 200 characters on one line.
    #[schemars(length(max = 10))]
    pub angles: Option<Vec<String>>,
    /// Only requests arriving in these mailboxes (`[]`: all).
    #[schemars(length(max = 50))]
    pub mailbox_ids: Option<Vec<crate::ids::Id<crate::ids::Mailbox>>>,
    pub send_declines: Option<bool>,
    /// Connect a Gmail or Outlook mailbox (answers `connectedInbox.authorizationUrl`).
    pub connected_inbox: Option<ConnectedInbox>,
}

/// The settings, and the connection started by this request if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: Settings,
    /// `{type, address, mailboxId, status, authorizationUrl, expiresAt}` when this request
    /// started connecting a mailbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_inbox: Option<Value>,
}

/// No input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub struct GetSettings;
impl Operation for GetSettings {
    const NAME: &'static str = "link_building.inbound.settings.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "The inbound negotiator's settings (off until enabled)";
    const TAG: &'static str = TAG;
    type Input = Empty;
    type Output = SettingsView;

    async fn run(ctx: Ctx, _: Empty) -> ApiResult<Reply<SettingsView>> {
        let settings = records::load_settings(&ctx.app, ctx.workspace()).await?;
        Ok(Reply::ok(SettingsView { settings, connected_inbox: None }))
    }
}

pub struct UpdateSettings;
impl Operation for UpdateSettings {
    const NAME: &'static str = "link_building.inbound.settings.update";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Inbound;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Turn the inbound negotiator on or off, choose autonomy, tone, angles and mailboxes, or connect an inbox";
    const TAG: &'static str = TAG;
    type Input = UpdateInput;
    type Output = SettingsView;

    async fn run(ctx: Ctx, input: UpdateInput) -> ApiResult<Reply<SettingsView>> {
        let ws = ctx.workspace().to_owned();
        let before = ctx.app.store.get(&keys::settings(&ws)).await?;
        let version = before.as_ref().and_then(|i| i.get("version")).and_then(Value::as_i64).unwrap_or(0);
        let mut s = match &before {
            Some(item) => linkcrm_core::items::parse::<Settings>("inbound settings", item)?,
            None => records::defaults(),
        };
        let previous = before.as_ref().map(|_| s.clone());
        if let Some(a) = input.autonomous {
            if a && !ctx.caller.has_scope("workspaces:admin") {
                return Err(ApiError::insufficient_scope("workspaces:admin"));
            }
            s.autonomous = a;
        }
        if let Some(t) = input.default_tone {
            s.default_tone = t.as_str().to_owned();
        }
        if let Some(angles) = input.angles {
            // Lenient: each on one line, at most 200 characters, empty ones dropped.
            s.angles = angles
                .into_iter()
                .map(|a| a.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect::<String>())
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
        }
        if let Some(ids) = input.mailbox_ids {
            for id in &ids {
                linkcrm_outreach::ops::send_email::resolve_mailbox(&ctx.app, &ws, Some(id.as_str())).await?;
            }
            s.mailbox_ids = ids.into_iter().map(|i| i.into_string()).collect();
        }
        if let Some(d) = input.send_declines {
            s.send_declines = d;
        }
        let mut ops = Vec::new();
        if let Some(e) = input.enabled {
            s.enabled = e;
            if e && s.campaign_id.is_none() {
                let id = linkcrm_domain::new_id(IdKind::InboundCampaign);
                ops.extend(linkcrm_campaigns::ops::campaigns::inbound_campaign_ops(&ws, &ctx.caller.agency_id, &id));
                s.campaign_id = Some(id);
            }
        }
        if s.default_tone.is_empty() {
            s.default_tone = "professional".into();
        }
        s.updated_at = Some(time::now_string());
        let cond = match &before {
            Some(_) => Condition::VersionEquals(version),
            None => Condition::NotExists,
        };
        ops.insert(0, TxOp::put_if(records::settings_item(&ws, &s, version + 1), cond));
        ops.push(outbox::event(
            "link_building.inbound.settings.updated",
            Some(&ws),
            json!({ "enabled": s.enabled, "autonomous": s.autonomous, "campaignId": s.campaign_id,
                    "settings": s, "previous": previous, "version": version + 1 }),
        ));
        match ctx.app.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                return Err(ApiError::conflict("conflict", "The settings changed while this request ran; try again."))
            }
            Err(e) => return Err(e.into()),
        }
        let connected_inbox = match input.connected_inbox {
            None => None,
            Some(c) => {
                let started = linkcrm_outreach::ops::mailboxes::connect(
                    &ctx,
                    linkcrm_outreach::ops::mailboxes::ConnectInput::provider(c.r#type, c.address),
                )
                .await?
                .body
                .ok_or_else(ApiError::internal)?;
                Some(json!({
                    "type": c.r#type, "address": started.mailbox.from_address, "mailboxId": started.mailbox.id,
                    "status": "pending_authorization", "authorizationUrl": started.authorization_url,
                    "expiresAt": started.expires_at,
                }))
            }
        };
        Ok(Reply::ok(SettingsView { settings: s, connected_inbox }).with_version(version + 1))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModeInput {
    /// The account (path).
    pub id: crate::ids::Id<crate::ids::Account>,
    /// `auto_respond`, `always_escalate` or `decline_by_default`; `null` returns the partner to
    /// the workspace's default (autonomous on: auto_respond; off: always_escalate); left out,
    /// nothing changes.
    #[serde(default, deserialize_with = "crate::lenient::nullable")]
    #[schemars(with = "Option<Mode>")]
    pub mode: Option<Option<Mode>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountInput {
    /// The account (path).
    pub id: crate::ids::Id<crate::ids::Account>,
}

/// A partner's mode for this workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModeView {
    pub account_id: String,
    /// The partner's own mode, if set.
    pub mode: Option<Mode>,
    /// What applies now: the partner's mode, else the workspace's default.
    pub effective_mode: Mode,
}

fn effective(own: Option<Mode>, s: &Settings) -> Mode {
    own.unwrap_or(if s.autonomous { Mode::AutoRespond } else { Mode::AlwaysEscalate })
}

/// The partner's mode as it stands.
async fn mode_view(ctx: &Ctx, account: &str) -> ApiResult<ModeView> {
    let s = records::load_settings(&ctx.app, ctx.workspace()).await?;
    let own = records::account_mode(&ctx.app, ctx.workspace(), account).await?;
    Ok(ModeView { account_id: account.to_owned(), mode: own, effective_mode: effective(own, &s) })
}

pub struct GetMode;
impl Operation for GetMode {
    const NAME: &'static str = "link_building.inbound.account_settings.get";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Inbound;
    const SCOPE: Option<&'static str> = Some("campaigns:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "How the negotiator treats this partner's requests, for this workspace";
    const TAG: &'static str = TAG;
    type Input = AccountInput;
    type Output = ModeView;

    async fn run(ctx: Ctx, input: AccountInput) -> ApiResult<Reply<ModeView>> {
        let account = linkcrm_crm::write::load_account(&ctx.app, &input.id).await?;
        Ok(Reply::ok(mode_view(&ctx, account.id()).await?))
    }
}

pub struct SetMode;
impl Operation for SetMode {
    const NAME: &'static str = "link_building.inbound.account_settings.set";
    const EFFECT: Effect = Effect::Update;
    const FAMILY: Family = Family::Inbound;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str =
        "Set how the negotiator treats this partner: auto_respond, always_escalate or decline_by_default";
    const TAG: &'static str = TAG;
    type Input = ModeInput;
    type Output = ModeView;

    async fn run(ctx: Ctx, input: ModeInput) -> ApiResult<Reply<ModeView>> {
        let ws = ctx.workspace().to_owned();
        let account = linkcrm_crm::write::load_account(&ctx.app, &input.id).await?;
        let k = keys::account_mode(&ws, account.id());
        let Some(mode) = input.mode else {
            // Nothing to change: the mode as it is.
            return Ok(Reply::ok(mode_view(&ctx, account.id()).await?));
        };
        match mode {
            Some(m) => {
                let item = obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "inboundAccountMode", "workspaceId": ws,
                                        "accountId": account.id(), "mode": m, "updatedAt": time::now_string() }));
                ctx.app.store.transact(vec![TxOp::put(item)]).await?;
            }
            None => ctx.app.store.transact(vec![TxOp::delete(k)]).await?,
        }
        let s = records::load_settings(&ctx.app, &ws).await?;
        Ok(Reply::ok(ModeView { account_id: account.id().to_owned(), mode, effective_mode: effective(mode, &s) }))
    }
}
