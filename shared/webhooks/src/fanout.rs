//! Fan-out: one committed domain event becomes one delivery per endpoint subscribed to it.
//!
//! The event arrives as a `domain_event` job: from the EventBridge rule's SQS queue in AWS, from
//! the in-process bus locally ([`EnqueueFanout`]). Each delivery is made once, keyed by endpoint
//! and event id, with its first attempt's job in the same transaction; a redelivered event finds
//! its deliveries made and adds nothing.

use crate::records::{Delivery, DeliveryStatus, Endpoint};
use crate::{deliver, keys};
use async_trait::async_trait;
use linkcrm_core::error::ApiResult;
use linkcrm_core::App;
use linkcrm_domain::event_types;
use linkcrm_domain::jobs::{JobKind, WEBHOOK_QUEUE};
use linkcrm_events::{BusError, DomainEvent, EventHandler};
use linkcrm_jobs::{HandlerError, Job, StoreQueue};
use linkcrm_storage::{Condition, DynStore, Query, StoreError, TxOp};
use serde_json::Value;
use std::time::Duration;

/// The job that fans `event` out (its id is the event's).
pub fn job(event: &DomainEvent) -> Job {
    Job {
        id: event.id.clone(),
        kind: JobKind::DomainEvent.as_str().to_owned(),
        payload: serde_json::to_value(event).expect("an envelope serialises"),
    }
}

/// The local binary's bus subscriber: commits each subscribable event's fan-out job to the
/// webhook store queue, where the same handler as in AWS runs it. A failure fails the publish, so
/// the relay keeps the event and tries again.
pub struct EnqueueFanout {
    pub store: DynStore,
}

#[async_trait]
impl EventHandler for EnqueueFanout {
    async fn handle(&self, event: &DomainEvent) -> Result<(), BusError> {
        if !event_types::is_subscribable(&event.r#type) {
            return Ok(());
        }
        let op = StoreQueue::enqueue_op(WEBHOOK_QUEUE, &job(event), Duration::ZERO)
            .map_err(|e| BusError::Refused { failed: 1, detail: e.to_string() })?;
        match self.store.transact(vec![op]).await {
            // The same event published again: its job is there already.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(BusError::Unavailable(format!("could not queue the webhook fan-out: {e}"))),
        }
    }
}

/// Runs a `domain_event` job.
pub async fn handle(app: &App, job: &Job) -> Result<(), HandlerError> {
    let event = match DomainEvent::from_value(job.payload.clone()) {
        Ok(e) => e,
        Err(e) => return Err(HandlerError::Fail(format!("not an event envelope: {e}"))),
    };
    fan_out(app, &event).await.map(|_| ()).map_err(|e| {
        tracing::warn!(event = %event.id, error = ?e, "webhook fan-out failed; retrying");
        HandlerError::Retry { after: Duration::from_secs(5) }
    })
}

/// Makes the deliveries of `event`; answers how many were new.
pub async fn fan_out(app: &App, event: &DomainEvent) -> ApiResult<usize> {
    if !event_types::is_subscribable(&event.r#type) {
        return Ok(0);
    }
    let mut made = 0;
    for ws in recipients(app, event).await? {
        let (agency, tags) = match &ws {
            Some(ws) => match app.store.get(&linkcrm_core::keys::workspace(ws)).await? {
                Some(item) => {
                    let agency = linkcrm_core::items::str_of(&item, "agencyId").unwrap_or_default().to_owned();
                    let tags: Vec<String> = item
                        .get("tags")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default();
                    (agency, tags)
                }
                None => continue,
            },
            None => match event.data.get("agencyId").and_then(Value::as_str) {
                Some(a) => (a.to_owned(), Vec::new()),
                None => continue,
            },
        };
        let mut endpoints = Vec::new();
        let owners = ws.iter().map(String::as_str).chain(std::iter::once(agency.as_str())).filter(|o| !o.is_empty());
        for owner in owners {
            endpoints.extend(owner_endpoints(app, owner).await?);
        }
        let body = match &ws {
            Some(w) if event.workspace_id.as_deref() != Some(w) => {
                DomainEvent { workspace_id: Some(w.clone()), ..event.clone() }.to_json()
            }
            _ => event.to_json(),
        };
        for e in endpoints.iter().filter(|e| e.wants(&event.r#type, ws.as_deref(), &tags)) {
            if make_delivery(app, e, event, ws.as_deref(), &body).await? {
                made += 1;
            }
        }
    }
    Ok(made)
}

/// The workspaces an event is delivered in: its own, or for a partner's DO_NOT_CONTACT every
/// workspace with a relationship to the account; `None` stands for an agency-level event
/// (`data.agencyId`, no workspace).
async fn recipients(app: &App, event: &DomainEvent) -> ApiResult<Vec<Option<String>>> {
    if event.r#type == "link_building.account.do_not_contact" {
        if let Some(acct) = event.data.get("accountId").and_then(Value::as_str) {
            let list = linkcrm_crm::metrics::workspaces_with_relationship(app, acct).await?;
            return Ok(list.into_iter().map(Some).collect());
        }
    }
    Ok(vec![event.workspace_id.clone()])
}

/// Every endpoint of an owner (at most `MAX_ENDPOINTS`: one page).
pub async fn owner_endpoints(app: &App, owner: &str) -> ApiResult<Vec<Endpoint>> {
    let page = app.store.query(Query::partition(keys::endpoints_pk(owner)).limit(100)).await?;
    page.items.iter().map(Endpoint::from_item).collect()
}

/// Makes one delivery and queues its first attempt, unless it exists; whether it was new.
async fn make_delivery(app: &App, e: &Endpoint, event: &DomainEvent, ws: Option<&str>, body: &str) -> ApiResult<bool> {
    let now = linkcrm_domain::time::now_string();
    let d = Delivery {
        id: linkcrm_domain::new_id(linkcrm_domain::IdKind::WebhookMessage),
        endpoint_id: e.id.clone(),
        owner: e.owner.clone(),
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        workspace_id: ws.map(str::to_owned),
        body: body.to_owned(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        manual: false,
        next_attempt_at: Some(now.clone()),
        last_status_code: None,
        last_error: None,
        created_at: now.clone(),
        updated_at: now,
        ttl: crate::records::retention_ttl(),
    };
    let ops = vec![
        TxOp::put_if(d.item(), Condition::NotExists),
        deliver::attempt_job_op(&d, 1, "scheduled", Duration::ZERO)?,
    ];
    match app.store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
