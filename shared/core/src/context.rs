//! Who is calling, in which workspace, under which request id.

use crate::auth::WorkspaceRecord;
use crate::App;
use std::sync::Arc;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` with `id` as the request id seen by errors and logs.
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "req_unknown".to_owned())
}

/// The authenticated key behind a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub agency_id: String,
    /// The key's own workspace; `None` for an agency key.
    pub key_workspace: Option<String>,
    pub scopes: Vec<String>,
    /// The SHA-256 of the key's secret (what the key is stored under): work that runs later on
    /// the caller's behalf (a bulk action's children) authenticates with it again, so a key
    /// revoked meanwhile stops it. Empty for the platform's own work.
    pub key_hash: String,
    /// The workspace member the key belongs to, if any (`me`).
    pub member_id: Option<String>,
}

impl Caller {
    pub fn is_agency(&self) -> bool {
        self.key_workspace.is_none()
    }

    /// Whether the key holds `scope`, directly or through a seed 004 scope that grants it
    /// (`crate::auth::AK_SCOPES`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.is_agency()
            || self.scopes.iter().any(|s| {
                s == scope || crate::auth::AK_SCOPES.iter().any(|(name, grants)| name == s && grants.contains(&scope))
            })
    }
}

/// Everything an operation needs besides its input.
#[derive(Clone)]
pub struct Ctx {
    pub app: Arc<App>,
    pub caller: Caller,
    /// The workspace the request acts in, when the operation is workspace-scoped (or the agency
    /// named one with `X-Workspace-Id`).
    pub workspace_id: Option<String>,
    /// That workspace as loaded when the request was admitted (active, and the caller's).
    pub workspace_record: Option<Arc<WorkspaceRecord>>,
    /// `If-Match` as a version number, when sent.
    pub if_match: Option<i64>,
    /// The request's `Idempotency-Key` record, when it has one (see [`Ctx::commit`]).
    pub idempotency: Option<Arc<crate::idempotency::Pending>>,
}

impl Ctx {
    /// A context for work the platform does on a workspace's behalf outside any request (the
    /// mailbox poller, background jobs): the workspace's own agency, acting as `actor` (shown as
    /// the key id in audit records). `None` when the workspace is gone or archived.
    pub async fn for_workspace(
        app: &Arc<App>,
        workspace: &str,
        actor: &str,
    ) -> Result<Option<Ctx>, linkcrm_storage::StoreError> {
        let Some(item) = app.store.get(&crate::keys::workspace(workspace)).await? else { return Ok(None) };
        let record = WorkspaceRecord { item };
        if !record.active() {
            return Ok(None);
        }
        let caller = Caller {
            key_id: actor.to_owned(),
            agency_id: record.agency_id().to_owned(),
            key_workspace: Some(workspace.to_owned()),
            scopes: vec![],
            key_hash: String::new(),
            member_id: None,
        };
        Ok(Some(Ctx {
            app: app.clone(),
            caller,
            workspace_id: Some(workspace.to_owned()),
            workspace_record: Some(Arc::new(record)),
            if_match: None,
            idempotency: None,
        }))
    }

    /// The workspace id of a workspace-scoped operation (resolved before the operation runs).
    pub fn workspace(&self) -> &str {
        self.workspace_id.as_deref().expect("workspace-scoped operation without a resolved workspace")
    }

    /// The record of the workspace the request acts in, loaded once when it was admitted.
    pub fn workspace_record(&self) -> &WorkspaceRecord {
        self.workspace_record.as_deref().expect("workspace-scoped operation without a loaded workspace")
    }

    /// Commits `ops` (an operation's change) in one transaction and, for a request with an
    /// `Idempotency-Key`, `reply` as its recorded answer in the same transaction: a process that
    /// dies after the commit leaves an answer a retry replays, instead of a window in which the
    /// retry runs the operation again (ADR 0004). The executor then writes no record of its own.
    /// Use it for the transaction whose success means the operation answers `reply`.
    pub async fn commit<T: serde::Serialize>(
        &self,
        mut ops: Vec<linkcrm_storage::TxOp>,
        reply: &crate::catalogue::Reply<T>,
    ) -> Result<(), linkcrm_storage::StoreError> {
        let Some(pending) = &self.idempotency else { return self.app.store.transact(ops).await };
        let body = match &reply.body {
            Some(b) => Some(serde_json::to_value(b).map_err(|e| linkcrm_storage::StoreError::Internal(e.to_string()))?),
            None => None,
        };
        ops.push(pending.done_part(reply.status, body, reply.version));
        self.app.store.transact(ops).await?;
        pending.mark_committed();
        Ok(())
    }
}
