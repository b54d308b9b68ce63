//! The discovery job against a real store with a stand-in contact finder: a redelivered job never
//! runs or charges twice, a run resumed after a stopped worker finishes once, and a provider
//! outage charges only the accounts already searched.

use linkcrm_api::credits::{self, Pool};
use linkcrm_api::crm::write;
use linkcrm_api::discovery::{self, SKILL};
use linkcrm_api::invocations as inv;
use linkcrm_api::{App, Config};
use linkcrm_domain::enums::Source;
use linkcrm_jobs::Job;
use linkcrm_providers::{ContactFinder, FoundContact, ProviderError};
use linkcrm_storage::DynStore;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Finds one person per domain; fails with `Unavailable` from call number `fail_from` on.
struct Stub {
    calls: AtomicUsize,
    fail_from: usize,
}

#[async_trait::async_trait]
impl ContactFinder for Stub {
    async fn find_contacts(
        &self,
        domain: &str,
        _: &[String],
        _: &[String],
    ) -> Result<Vec<FoundContact>, ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from {
            return Err(ProviderError::Unavailable("503 from the stub".into()));
        }
        Ok(vec![FoundContact {
            apollo_person_id: format!("ap_{domain}"),
            first_name: Some("Ed".into()),
            last_name: Some("Itor".into()),
            email: Some(format!("ed@{domain}")),
            position: Some("Editor".into()),
            seniority: Some("manager".into()),
            linkedin_url: None,
            twitter_handle: None,
        }])
    }
}

async fn setup(domains: &[&str]) -> (tempfile::TempDir, Arc<App>, Pool, String, Job) {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let app = linkcrm_api::app(store, Config::default()).await.unwrap();
    let pool = Pool::Workspace("ws_1".into());
    app.store.transact(credits::grant(&pool, "ws_1", 10_000, None)).await.unwrap();
    let mut ids = Vec::new();
    for d in domains {
        ids.push(write::ensure_account(&app, d, Source::Manual).await.unwrap().id().to_owned());
    }
    let id = inv::new_id();
    let (reserved, secs) = discovery::estimate(ids.len());
    let item = inv::new_item(&inv::NewInvocation {
        id: &id,
        ws: "ws_1",
        skill: SKILL,
        input: json!({ "accountIds": ids, "roles": ["editor"], "seniority": [] }),
        pool: &pool,
        reserved_milli: reserved,
        duration_seconds: secs,
    });
    let mut ops = vec![linkcrm_storage::TxOp::put(item)];
    ops.extend(credits::reserve(&pool, "ws_1", SKILL, &id, reserved));
    app.store.transact(ops).await.unwrap();
    let job = Job::new(discovery::JOB_KIND, json!({ "invocationId": id }));
    (dir, app, pool, id, job)
}

async fn balance(app: &App, pool: &Pool) -> (i64, i64, i64) {
    let item = app.store.get(&pool.key()).await.unwrap().unwrap();
    let n = |k: &str| item.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    (n("available"), n("reserved"), n("used"))
}

#[tokio::test]
async fn a_redelivered_job_runs_and_charges_once() {
    let (_dir, app, pool, id, job) = setup(&["a.com", "b.com"]).await;
    let stub = Stub { calls: AtomicUsize::new(0), fail_from: usize::MAX };
    discovery::handle(&app, Some(&stub), &job).await.unwrap();
    discovery::handle(&app, Some(&stub), &job).await.unwrap();
    assert_eq!(stub.calls.load(Ordering::SeqCst), 2, "the second delivery found it finished");
    let item = inv::load(&app.store, None, &id).await.unwrap();
    assert_eq!(inv::status(&item), inv::Status::Succeeded);
    assert_eq!(item["creditsUsed"], 0.8);
    assert_eq!(balance(&app, &pool).await, (9_200, 0, 800));
}

#[tokio::test]
async fn a_run_found_running_after_a_stopped_worker_is_finished_once() {
    let (_dir, app, pool, id, job) = setup(&["a.com"]).await;
    // A worker claimed it and stopped before finishing.
    let item = inv::load(&app.store, None, &id).await.unwrap();
    app.store.transact(vec![inv::transition(&item, inv::Status::Running, vec![])]).await.unwrap();
    let stub = Stub { calls: AtomicUsize::new(0), fail_from: usize::MAX };
    discovery::handle(&app, Some(&stub), &job).await.unwrap();
    let item = inv::load(&app.store, None, &id).await.unwrap();
    assert_eq!(inv::status(&item), inv::Status::Succeeded);
    assert_eq!(balance(&app, &pool).await, (9_600, 0, 400));
    // Running it again (the same contact) files no duplicate.
    assert_eq!(item["result"]["perAccount"][0]["contactsFound"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_outage_fails_the_invocation_and_charges_only_searched_accounts() {
    let (_dir, app, pool, id, job) = setup(&["a.com", "b.com", "c.com"]).await;
    let stub = Stub { calls: AtomicUsize::new(0), fail_from: 2 };
    discovery::handle(&app, Some(&stub), &job).await.unwrap();
    let item = inv::load(&app.store, None, &id).await.unwrap();
    assert_eq!(inv::status(&item), inv::Status::Failed);
    assert_eq!(item["error"]["code"], "provider_unavailable");
    assert_eq!(item["error"]["status"], 503);
    assert_eq!(item["creditsUsed"], 0.4);
    assert_eq!(balance(&app, &pool).await, (9_600, 0, 400));
}

#[tokio::test]
async fn a_cancelled_invocation_is_not_run() {
    let (_dir, app, pool, id, job) = setup(&["a.com"]).await;
    let item = inv::load(&app.store, None, &id).await.unwrap();
    app.store.transact(inv::cancel_ops(&item).unwrap()).await.unwrap();
    let stub = Stub { calls: AtomicUsize::new(0), fail_from: usize::MAX };
    discovery::handle(&app, Some(&stub), &job).await.unwrap();
    assert_eq!(stub.calls.load(Ordering::SeqCst), 0);
    assert_eq!(balance(&app, &pool).await, (10_000, 0, 0));
}
