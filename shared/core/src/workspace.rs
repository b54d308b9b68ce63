//! A workspace as the operations see it: the stored record parsed, and whose credits it spends.

use crate::auth::WorkspaceRecord;
use crate::credits::Pool;
use crate::error::{ApiError, ApiResult};
use linkcrm_domain::platform::{CreditPool, Workspace};

pub fn from_record(record: &WorkspaceRecord) -> ApiResult<Workspace> {
    <Workspace as serde::Deserialize>::deserialize(&record.item).map_err(|e| {
        tracing::error!(error = %e, "stored workspace does not parse");
        ApiError::internal()
    })
}

pub fn pool_of(ws: &Workspace) -> Pool {
    match ws.settings.credit_pool {
        CreditPool::Workspace => Pool::Workspace(ws.id.clone()),
        CreditPool::Agency => Pool::Agency(ws.agency_id.clone()),
    }
}
