//! The contact-discovery job: runs one `link_building.crm.contact.discover` invocation.
//!
//! The API commits the invocation (PENDING), its credit reservation and the job in one
//! transaction (see `ops::crm::discover`); this handler claims the invocation (PENDING → RUNNING,
//! conditional on its version, so a redelivered job that finds it already claimed by a live run
//! does not start a second one), asks Apollo for each account, upserts the contacts, records a
//! CONTACT_RESEARCH event where the workspace has a relationship with the account, and finishes
//! the invocation together with the credit charge in one transaction.
//!
//! A job that finds its invocation RUNNING was delivered again after a worker stopped mid-run
//! (a crash, or a visibility timeout). CONTRACT says such a run is resumed only when repeating it
//! is safe; here it is: each account finished commits a checkpoint (`DISCDONE#<invocation>`) in
//! the transaction of its CONTACT_RESEARCH event, and the resumed run skips those accounts, so no
//! account is searched or recorded twice; an account cut off mid-search is searched again (its
//! contacts are deduplicated on Apollo's person id and on email, nothing was recorded for it);
//! and the finish (with its charge for every account searched) is conditional on the version, so
//! it happens once.

use crate::invocations::{self as inv};
use crate::records::{self, obj};
use crate::records::{contact_item, email_guard_item};
use crate::{keys, write};
use crate::{outbox, App};
use linkcrm_domain::crm::Contact;
use linkcrm_domain::enums::EventType;
use linkcrm_domain::normalize::normalize_email;
use linkcrm_domain::{time, IdKind};
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_providers::{ContactFinder, FoundContact, ProviderError};
use linkcrm_storage::{Condition, Item, Key, StoreError, TxOp};
use serde_json::{json, Value};
use std::time::Duration;

/// The store queue the local binary's worker consumes.
pub const QUEUE: &str = linkcrm_domain::jobs::WORK_QUEUE;
pub const JOB_KIND: &str = linkcrm_domain::jobs::JobKind::Discover.as_str();
pub const SKILL: &str = "link_building.crm.contact.discover";
/// 0.4 credits per account searched.
pub const PER_ACCOUNT_MILLI: i64 = 400;
/// What the estimate promises per account, in seconds.
pub const SECONDS_PER_ACCOUNT: i64 = 3;
pub const NO_CONTACTS_REASON: &str = "Apollo returned no contacts matching the role filter";

/// One contact per Apollo person: the guard every discovery that finds them must pass.
pub use crate::keys::apollo_guard;

fn text_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Handles one `discover` job. `finder` is the platform's Apollo client (`None` when no platform
/// key is configured); a workspace that brought its own key is served with that one instead.
pub async fn handle(app: &App, finder: Option<&dyn ContactFinder>, job: &Job) -> Result<(), HandlerError> {
    let retry = |e: &dyn std::fmt::Display| {
        tracing::warn!(job = %job.id, error = %e, "discovery job will be retried");
        HandlerError::Retry { after: Duration::from_secs(2) }
    };
    let Some(id) = job.payload.get("invocationId").and_then(Value::as_str) else {
        return Err(HandlerError::Fail("discover job without invocationId".into()));
    };
    let item = match app.store.get(&inv::key(id)).await {
        Ok(Some(item)) => item,
        // The invocation is committed with its job, so a missing one is a stray job: drop it.
        Ok(None) => return Ok(()),
        Err(e) => return Err(retry(&e)),
    };
    let item = match inv::status(&item) {
        inv::Status::Pending => {
            match app.store.transact(vec![inv::transition(&item, inv::Status::Running, vec![])]).await {
                Ok(()) => {}
                // Cancelled or claimed meanwhile: look again on the next delivery.
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    return Err(HandlerError::Retry { after: Duration::from_millis(200) })
                }
                Err(e) => return Err(retry(&e)),
            }
            match app.store.get(&inv::key(id)).await {
                Ok(Some(i)) => i,
                Ok(None) => return Ok(()),
                Err(e) => return Err(retry(&e)),
            }
        }
        // Resumed after a stopped worker: safe to repeat (see the module docs).
        inv::Status::Running => item,
        // Finished or cancelled: a redelivery has nothing to do.
        _ => return Ok(()),
    };
    let ws = records::str_of(&item, "workspaceId").unwrap_or_default().to_owned();
    let (scope, own_key) = crate::apollo_keys::resolve(app, &ws).await.map_err(|e| retry(&e.message))?;
    let own: Option<Box<dyn ContactFinder>> = match own_key {
        Some(key) => {
            let base = std::env::var("LINKCRM_APOLLO_BASE_URL")
                .unwrap_or_else(|_| linkcrm_providers::apollo::DEFAULT_BASE_URL.to_owned());
            match linkcrm_providers::ApolloClient::new(base, key) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => return Err(HandlerError::Fail(format!("cannot build the workspace's Apollo client: {e}"))),
            }
        }
        None => None,
    };
    let finder = match &own {
        Some(f) => Some(f.as_ref()),
        None => finder,
    };
    let outcome = run(app, finder, &item).await;
    // What this run learnt about the key's quota goes in with the finish.
    let mut quota = Vec::new();
    let (status, used, result, error) = match outcome {
        Ok(run) => {
            if run.searched > 0 {
                quota.push(crate::apollo_keys::clear_op(&scope));
            }
            (
                inv::Status::Succeeded,
                run.searched * PER_ACCOUNT_MILLI,
                json!({ "perAccount": run.per_account }),
                Value::Null,
            )
        }
        Err(Failure::Store(e)) => return Err(retry(&e)),
        Err(Failure::RateLimited(after)) => {
            let after = after.unwrap_or(Duration::from_secs(30)).clamp(Duration::from_secs(1), linkcrm_jobs::MAX_DELAY);
            tracing::warn!(job = %job.id, ?after, "Apollo is rate limiting; the discovery is rescheduled");
            return Err(HandlerError::Retry { after });
        }
        Err(Failure::Provider { searched, per_account, status, code, message }) => {
            if code == "apollo_quota_exceeded" {
                quota.push(crate::apollo_keys::mark_exhausted_op(&scope));
            }
            (
                inv::Status::Failed,
                searched * PER_ACCOUNT_MILLI,
                json!({ "perAccount": per_account }),
                inv::problem(status, code, &message),
            )
        }
    };
    // Another run may have finished it first: its charge is the one that counts.
    inv::commit_finish(app, &item, inv::Outcome { status, used, result, error }, quota).await
}

struct Run {
    searched: i64,
    per_account: Vec<Value>,
}

/// Why a found person could not be filed as a contact.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("a stored contact does not parse: {0}")]
    Corrupt(String),
    #[error("could not file the contact: it kept changing")]
    KeptChanging,
}

enum Failure {
    Store(String),
    /// Apollo's `Retry-After`, when it gave one.
    RateLimited(Option<Duration>),
    Provider {
        searched: i64,
        per_account: Vec<Value>,
        status: u16,
        code: &'static str,
        message: String,
    },
}

async fn run(app: &App, finder: Option<&dyn ContactFinder>, item: &Item) -> Result<Run, Failure> {
    let input = item.get("input").cloned().unwrap_or_default();
    let accounts = text_list(input.get("accountIds"));
    let roles = text_list(input.get("roles"));
    let seniority = text_list(input.get("seniority"));
    let ws = records::str_of(item, "workspaceId").unwrap_or_default().to_owned();
    let agency = records::str_of(item, "agencyId").unwrap_or_default().to_owned();
    let Some(finder) = finder else {
        return Err(Failure::Provider {
            searched: 0,
            per_account: vec![],
            status: 503,
            code: "provider_unavailable",
            message: "Contact discovery is not configured on this server: set LINKCRM_APOLLO_API_KEY.".into(),
        });
    };
    let inv_id = records::str_of(item, "invocationId").unwrap_or_default().to_owned();
    let mut done = checkpoints(app, &inv_id).await.map_err(|e| Failure::Store(e.to_string()))?;
    let mut per_account = Vec::new();
    let mut searched = 0;
    for account_id in accounts {
        // Finished by an earlier run of this invocation (a worker stopped mid-run): reuse it.
        if let Some(entry) = done.remove(&account_id) {
            searched += 1;
            per_account.push(entry);
            continue;
        }
        let account = match write::load_account(app, &account_id).await {
            Ok(a) => a,
            Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
                per_account.push(
                    json!({ "accountId": account_id, "contactsFound": [], "reason": "The account no longer exists" }),
                );
                continue;
            }
            Err(e) => return Err(Failure::Store(e.message)),
        };
        let called = finder.find_contacts(account.domain(), &roles, &seniority).await;
        linkcrm_core::health::observe(app, &ws, "apollo", &called).await;
        let found = match called {
            Ok(found) => found,
            // Rate limited for longer than the client waits in place: reschedule the job rather
            // than hold the worker (the run resumes after the accounts it finished).
            Err(ProviderError::RateLimited { retry_after }) => return Err(Failure::RateLimited(retry_after)),
            Err(e) => {
                let (status, code, message) = match &e {
                    ProviderError::QuotaExceeded => {
                        (422, "apollo_quota_exceeded", "Apollo's credits or plan quota are exhausted.".to_owned())
                    }
                    other => (503, "provider_unavailable", format!("Apollo could not be used: {other}")),
                };
                return Err(Failure::Provider { searched, per_account, status, code, message });
            }
        };
        searched += 1;
        let mut contacts = Vec::new();
        for person in &found {
            let c = upsert_contact(app, &ws, account.id(), person).await.map_err(|e| Failure::Store(e.to_string()))?;
            contacts.push(json!({
                "id": c.id, "firstName": c.first_name, "lastName": c.last_name,
                "position": c.position, "email": c.email,
            }));
        }
        let mut entry = json!({ "accountId": account.id(), "contactsFound": contacts });
        if found.is_empty() {
            entry["reason"] = json!(NO_CONTACTS_REASON);
        }
        let checkpoint = checkpoint_op(&inv_id, account.id(), &entry);
        let recorded =
            research_event(app, &agency, &ws, account.id(), &roles, &seniority, contacts.len(), checkpoint).await?;
        // Another run of this invocation finished this account first: its entry is the one that counts.
        if !recorded {
            if let Some(entry) = checkpoints(app, &inv_id).await.map_err(Failure::Store)?.remove(account.id()) {
                per_account.push(entry);
                continue;
            }
        }
        per_account.push(entry);
    }
    Ok(Run { searched, per_account })
}

/// `DISCDONE#<invocation>` / `<account>`: an account this invocation finished, with its
/// `perAccount` entry, committed with the account's CONTACT_RESEARCH event. A run resumed after a
/// worker stopped skips these accounts, so neither Apollo nor the event log sees them twice.
fn checkpoint_key(invocation: &str, account: &str) -> Key {
    keys::discovery_done(invocation, account)
}

fn checkpoint_op(invocation: &str, account: &str, entry: &Value) -> TxOp {
    let k = checkpoint_key(invocation, account);
    let ttl = linkcrm_storage::now_epoch() + 14 * 24 * 3600;
    TxOp::put_if(
        obj(json!({ "PK": k.pk, "SK": k.sk, "entity": "discoveryCheckpoint", "entry": entry, "ttl": ttl })),
        Condition::NotExists,
    )
}

async fn checkpoints(app: &App, invocation: &str) -> Result<std::collections::HashMap<String, Value>, String> {
    let mut out = std::collections::HashMap::new();
    let mut cursor = None;
    loop {
        let q = linkcrm_storage::Query::partition(keys::discovery_done_pk(invocation)).limit(100).after(cursor.take());
        let page = app.store.query(q).await.map_err(|e| e.to_string())?;
        for item in page.items {
            if let (Some(sk), Some(entry)) = (records::str_of(&item, "SK"), item.get("entry")) {
                out.insert(sk.to_owned(), entry.clone());
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Records CONTACT_RESEARCH where the workspace has a relationship with the account, and the
/// account's checkpoint, in one transaction (the checkpoint alone when there is no relationship).
/// `false` when the checkpoint already existed (another run finished the account).
#[allow(clippy::too_many_arguments)]
async fn research_event(
    app: &App,
    agency: &str,
    ws: &str,
    account: &str,
    roles: &[String],
    seniority: &[String],
    found: usize,
    checkpoint: TxOp,
) -> Result<bool, Failure> {
    let guard =
        app.store.get(&keys::workspace_account(ws, account)).await.map_err(|e| Failure::Store(e.to_string()))?;
    let Some(rel_id) = guard.as_ref().and_then(|g| records::str_of(g, "relationshipId")) else {
        return match app.store.transact(vec![checkpoint]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(Failure::Store(e.to_string())),
        };
    };
    let new = write::NewEvent {
        r#type: EventType::ContactResearch,
        contact_id: None,
        subject: Some("Contact discovery (Apollo)".into()),
        content: None,
        metadata: Some(json!({ "roles": roles, "seniority": seniority, "found": found, "provider": "apollo" })),
        occurred_at: None,
    };
    let ride = write::Ride { ops: Some(Box::new(move |_| Ok(vec![checkpoint.clone()]))), ..write::Ride::default() };
    match write::record_event(app, agency, ws, rel_id, new, ride, None).await {
        Ok(_) => Ok(true),
        Err(write::EventError::RideConditionFailed) => Ok(false),
        Err(e) => Err(Failure::Store(e.to_string())),
    }
}

/// The contact for an Apollo person: the one already filed under their Apollo id or email, or a
/// new one guarded by both.
async fn upsert_contact(app: &App, ws: &str, account: &str, p: &FoundContact) -> Result<Contact, FileError> {
    let email = p.email.as_deref().and_then(normalize_email);
    for _ in 0..5 {
        if let Some(existing) = existing_contact(app, &p.apollo_person_id, email.as_deref()).await? {
            return Ok(existing);
        }
        let now = time::now_string();
        let contact = Contact {
            id: linkcrm_domain::new_id(IdKind::Contact),
            account_id: account.to_owned(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            email: email.clone(),
            position: p.position.clone(),
            seniority: p.seniority.clone(),
            linkedin_url: p.linkedin_url.clone(),
            twitter_handle: p.twitter_handle.clone(),
            notes: None,
            apollo_person_id: Some(p.apollo_person_id.clone()),
            phone: None,
            owner_id: None,
            primary_company_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let g = apollo_guard(&p.apollo_person_id);
        let mut ops = vec![
            TxOp::put_if(contact_item(&contact, 1), Condition::NotExists),
            // Unconditional: the look above found no live contact behind it, and a guard left by a
            // deleted contact must not block filing the person again. The email guard is the one
            // that refuses a concurrent duplicate.
            TxOp::put(obj(
                json!({ "PK": g.pk, "SK": g.sk, "entity": "apolloGuard", "contactId": contact.id, "accountId": account }),
            )),
        ];
        if let Some(e) = &contact.email {
            ops.push(TxOp::put_if(email_guard_item(e, &contact.id, account), Condition::NotExists));
        }
        ops.push(outbox::event("link_building.contact.created", Some(ws), json!(contact)));
        match app.store.transact(ops).await {
            Ok(()) => return Ok(contact),
            // Someone filed them meanwhile: the next look finds that contact.
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(FileError::KeptChanging)
}

async fn existing_contact(app: &App, person: &str, email: Option<&str>) -> Result<Option<Contact>, FileError> {
    let mut guards = vec![apollo_guard(person)];
    if let Some(e) = email {
        guards.push(keys::email_guard(e));
    }
    for g in guards {
        let Some(guard) = app.store.get(&g).await? else { continue };
        let Some(id) = records::str_of(&guard, "contactId") else { continue };
        if let Some(item) = app.store.get(&keys::contact(id)).await? {
            return records::contact_view(&item).map(Some).map_err(|e| FileError::Corrupt(e.to_string()));
        }
    }
    Ok(None)
}

pub fn estimate(accounts: usize) -> (i64, i64) {
    (accounts as i64 * PER_ACCOUNT_MILLI, accounts as i64 * SECONDS_PER_ACCOUNT)
}
