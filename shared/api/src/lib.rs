//! The composition: every context's operations in one catalogue, the application over a store, and
//! the job handlers by kind. The local binary, the Lambda functions and the tests build from here;
//! the modules of the layers below are re-exported under the names they have always had.

#![allow(clippy::result_large_err)]

pub mod jobs;

pub use linkcrm_agency as agency;
pub use linkcrm_campaigns::metrics as account_metrics;
pub use linkcrm_core::{
    approval_expiry, auth, catalogue, context, credits, error, executor, idempotency, ids, invocations, items,
    jobkinds, keys, lenient, list, outbox, platform, ratelimit, rules, secrets, validate, workspace, App, Config,
};
pub use linkcrm_crm as crm;
pub use linkcrm_crm::{apollo_keys, discovery};
pub use linkcrm_http::{edge, openapi, rest, routes};
pub use linkcrm_inbound as inbound;
pub use linkcrm_monitoring as monitoring;
pub use linkcrm_outreach::{platform_mailbox, polling, secret_refs, sending, suppression};
pub use linkcrm_webhooks as webhooks;

use catalogue::OpSpec;
use linkcrm_storage::DynStore;
use std::sync::Arc;

/// Every operation, by context.
pub mod ops {
    pub use linkcrm_core::ops::{approvals, invocations};
    pub use linkcrm_outreach::ops::{inbound, mailboxes, policy, suppression};
    pub use linkcrm_workspaces::ops::{api_keys, credits, integrations, workspaces};

    /// The CRM operations, and sending (an outreach operation on a relationship).
    pub mod crm {
        pub use linkcrm_crm::ops::*;
        pub use linkcrm_outreach::ops::send_email;
    }
}

/// The whole catalogue: every context's operations.
pub fn catalogue() -> Vec<OpSpec> {
    let mut ops = linkcrm_workspaces::ops::catalogue();
    ops.extend(linkcrm_campaigns::ops::catalogue());
    ops.extend(linkcrm_inbound::ops::catalogue());
    ops.extend(linkcrm_webhooks::ops::catalogue());
    ops.extend(linkcrm_agency::ops::catalogue());
    ops.extend(linkcrm_monitoring::ops::catalogue());
    ops.extend(linkcrm_outreach::ops::catalogue());
    ops.extend(linkcrm_crm::ops::catalogue());
    ops.extend(linkcrm_core::ops::catalogue());
    ops
}

/// The application over `store` with every operation.
pub async fn app(store: DynStore, config: Config) -> anyhow::Result<Arc<App>> {
    App::new(store, config, catalogue()).await
}

/// The whole `/v1` API, every family, with outreach's pages, the MCP door at `/mcp` and the seed
/// 003 dialect at `/api/v1/backlink-outreach` and the seed 004 dialect at `/api/crm` (the local binary).
pub fn router(app: &Arc<App>) -> axum::Router {
    let extras = linkcrm_http::Extras { pages: Some(linkcrm_outreach::pages::router()), openapi: None };
    linkcrm_http::router_with(app.clone(), &catalogue::Family::ALL, extras)
        .merge(linkcrm_mcp::router(app.clone(), linkcrm_mcp::McpConfig::local()))
        .merge(linkcrm_dialect_backlink::router(app.clone()))
        .merge(linkcrm_dialect_crm::router(app.clone()))
}
