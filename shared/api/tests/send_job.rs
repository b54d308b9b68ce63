//! The send job against a real store with a stand-in mailer: the at-most-once properties the
//! black-box tests cannot time. A redelivered job never sends twice; a claim found without a result
//! becomes SEND_UNCERTAIN and is not resent; a deferral gives the send back to the queue; a
//! connection lost after DATA is uncertain too.

use linkcrm_api::credits::{self, Pool};
use linkcrm_api::crm::records::{self, obj};
use linkcrm_api::crm::{keys, write};
use linkcrm_api::invocations as inv;
use linkcrm_api::sending::{self, SKILL};
use linkcrm_api::{App, Config};
use linkcrm_domain::derive::RelationshipState;
use linkcrm_domain::enums::{PipelineStatus, Source};
use linkcrm_jobs::{HandlerError, Job};
use linkcrm_mail::{Accepted, MailError, Mailer, OutgoingEmail, SmtpSettings};
use linkcrm_storage::{DynStore, Key, TxOp};
use linkcrm_testkit::mail::hard_bounce;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Answers each send with the next scripted outcome (then accepts), recording what it was given.
#[derive(Default)]
struct Stub {
    script: Mutex<Vec<MailError>>,
    sent: Mutex<Vec<OutgoingEmail>>,
}

#[async_trait::async_trait]
impl Mailer for Stub {
    async fn verify(&self, _: &SmtpSettings) -> Result<(), MailError> {
        Ok(())
    }
    async fn send(&self, _: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError> {
        self.sent.lock().unwrap().push(email.clone());
        let mut s = self.script.lock().unwrap();
        if !s.is_empty() {
            return Err(s.remove(0));
        }
        Ok(Accepted { message_id: email.message_id.clone(), server_response: "250 ok".into() })
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    app: Arc<App>,
    pool: Pool,
    id: String,
    rel: String,
    job: Job,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
    let app = linkcrm_api::app(store, Config::default()).await.unwrap();
    let ws = "ws_1";
    let pool = Pool::Workspace(ws.into());
    app.store.transact(credits::grant(&pool, ws, 10_000, None)).await.unwrap();
    let account = write::ensure_account(&app, "blog.com", Source::Manual).await.unwrap();
    let now = linkcrm_domain::time::now_string();
    let rel = linkcrm_domain::new_id(linkcrm_domain::IdKind::Relationship);
    let state = RelationshipState::new(PipelineStatus::Prospecting, &now);
    let item = records::new_relationship_item(
        &rel,
        ws,
        &account,
        Source::Manual,
        None,
        None,
        [None, None, None],
        &state,
        &now,
    );
    let guard = keys::workspace_account(ws, account.id());
    let contact = linkcrm_domain::new_id(linkcrm_domain::IdKind::Contact);
    let ck = keys::contact(&contact);
    let mut contact_item = obj(json!({
        "id": contact, "accountId": account.id(), "firstName": "Ed", "lastName": null, "email": "ed@blog.com",
        "position": null, "seniority": null, "linkedinUrl": null, "twitterHandle": null, "notes": null,
        "apolloPersonId": null, "createdAt": now, "updatedAt": now,
    }));
    contact_item.extend(obj(json!({ "PK": ck.pk, "SK": ck.sk, "entity": "contact", "version": 1 })));
    let mailbox = obj(json!({
        "PK": format!("WS#{ws}#MBXS"), "SK": "mbx_1", "entity": "mailbox", "id": "mbx_1", "workspaceId": ws,
        "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1", "smtpPort": 2525,
        "smtpUsername": null, "security": "none", "hasPassword": false, "passwordRef": null, "dailyCap": 50,
        "active": true, "createdAt": now, "updatedAt": now, "version": 1,
    }));
    let id = inv::new_id();
    let inv_item = inv::new_item(&inv::NewInvocation {
        id: &id,
        ws,
        skill: SKILL,
        input: json!({ "relationshipId": rel, "contactId": contact, "to": "ed@blog.com", "subject": "Hello",
                       "body": "Hi Ed", "scheduleAt": null, "mailboxId": "mbx_1" }),
        pool: &pool,
        reserved_milli: sending::COST_MILLI,
        duration_seconds: 5,
    });
    let mut ops = vec![
        TxOp::put(obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "workspaceAccount", "relationshipId": rel,
                              "status": "PROSPECTING", "lastContactedByUsAt": null, "archived": false }))),
        TxOp::put(item),
        TxOp::put(contact_item),
        TxOp::put(mailbox),
        TxOp::put(inv_item),
    ];
    ops.extend(credits::reserve(&pool, ws, SKILL, &id, sending::COST_MILLI));
    app.store.transact(ops).await.unwrap();
    let job = Job::new(sending::JOB_KIND, json!({ "invocationId": id }));
    Setup { _dir: dir, app, pool, id, rel, job }
}

async fn balance(app: &App, pool: &Pool) -> (i64, i64) {
    let item = app.store.get(&pool.key()).await.unwrap().unwrap();
    let n = |k: &str| item.get(k).and_then(Value::as_i64).unwrap_or(0);
    (n("reserved"), n("used"))
}

async fn invocation(s: &Setup) -> Value {
    inv::view(&app_get(&s.app, &inv::key(&s.id)).await)
}

async fn app_get(app: &App, key: &linkcrm_storage::Key) -> linkcrm_storage::Item {
    app.store.get(key).await.unwrap().expect("item exists")
}

#[tokio::test]
async fn a_redelivered_job_sends_once() {
    let s = setup().await;
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 1).await.unwrap();
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert_eq!(stub.sent.lock().unwrap().len(), 1);
    let v = invocation(&s).await;
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    let message_id = v["result"]["messageId"].as_str().unwrap();
    let sent = stub.sent.lock().unwrap()[0].clone();
    assert_eq!(sent.message_id, message_id);
    assert!(sent.unsubscribe_url.starts_with("http://127.0.0.1:3000/v1/unsubscribe/"));
    let m = app_get(&s.app, &sending::message_key(message_id)).await;
    assert_eq!(records::str_of(&m, "relationshipId"), Some(s.rel.as_str()));
    assert_eq!(records::str_of(&m, "workspaceId"), Some("ws_1"));
    assert_eq!(records::str_of(&m, "eventId"), v["result"]["eventId"].as_str());
    assert_eq!(records::str_of(&m, "mailboxId"), Some("mbx_1"));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 2000));
}

#[tokio::test]
async fn a_claim_without_a_result_is_uncertain_and_never_resent() {
    let s = setup().await;
    // A worker claimed the send and stopped before recording its outcome.
    let item = app_get(&s.app, &inv::key(&s.id)).await;
    let claim = sending::claim_key(&s.id);
    s.app
        .store
        .transact(vec![
            inv::transition(&item, inv::Status::Running, vec![]),
            TxOp::put(obj(json!({ "PK": claim.pk, "SK": claim.sk, "messageId": "m1@outreach.example.com" }))),
        ])
        .await
        .unwrap();
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert!(stub.sent.lock().unwrap().is_empty());
    let v = invocation(&s).await;
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("FAILED"), Some("send_uncertain")));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 0));
}

#[tokio::test]
async fn a_claim_whose_lease_runs_waits_for_its_claimer() {
    let s = setup().await;
    // A duplicate delivery claimed the send a moment ago and may still be talking SMTP.
    let item = app_get(&s.app, &inv::key(&s.id)).await;
    let claim = sending::claim_key(&s.id);
    let lease = linkcrm_storage::now_epoch() + 60;
    s.app
        .store
        .transact(vec![
            inv::transition(&item, inv::Status::Running, vec![]),
            TxOp::put(obj(json!({ "PK": claim.pk, "SK": claim.sk, "messageId": "m1@outreach.example.com",
                                  "leaseUntil": lease }))),
        ])
        .await
        .unwrap();
    let stub = Stub::default();
    let r = sending::handle(&s.app, &stub, &s.job, 2).await;
    assert!(matches!(r, Err(HandlerError::Retry { after }) if after.as_secs() >= 55), "{r:?}");
    assert!(stub.sent.lock().unwrap().is_empty());
    assert_eq!(invocation(&s).await["status"], "RUNNING", "not judged while the claimer may be sending");
}

#[tokio::test]
async fn a_connection_lost_after_data_is_uncertain() {
    let s = setup().await;
    let stub = Stub { script: Mutex::new(vec![MailError::Uncertain("reset after DATA".into())]), ..Stub::default() };
    sending::handle(&s.app, &stub, &s.job, 1).await.unwrap();
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert_eq!(stub.sent.lock().unwrap().len(), 1);
    let v = invocation(&s).await;
    assert_eq!(v["error"]["code"], "send_uncertain", "{v}");
}

#[tokio::test]
async fn a_deferral_goes_back_to_the_queue_then_sends_once() {
    let s = setup().await;
    let deferred = MailError::Deferred { code: 451, message: "try later".into() };
    let stub = Stub { script: Mutex::new(vec![deferred]), ..Stub::default() };
    let r = sending::handle(&s.app, &stub, &s.job, 1).await;
    assert!(matches!(r, Err(HandlerError::Retry { .. })), "{r:?}");
    assert_eq!(invocation(&s).await["status"], "PENDING");
    assert!(s.app.store.get(&sending::claim_key(&s.id)).await.unwrap().is_none());
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert_eq!(stub.sent.lock().unwrap().len(), 2);
    assert_eq!(invocation(&s).await["status"], "SUCCEEDED");
    assert_eq!(balance(&s.app, &s.pool).await, (0, 2000));
}

#[tokio::test]
async fn deferrals_until_the_last_attempt_fail_as_provider_unavailable() {
    let s = setup().await;
    let stub = Stub { script: Mutex::new(vec![MailError::Unavailable("refused".into())]), ..Stub::default() };
    sending::handle(&s.app, &stub, &s.job, sending::MAX_ATTEMPTS).await.unwrap();
    let v = invocation(&s).await;
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("FAILED"), Some("provider_unavailable")));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 0));
}

#[tokio::test]
async fn a_full_day_for_the_recipient_domain_blocks_without_sending() {
    let s = setup().await;
    let day: String = linkcrm_domain::time::now_string().chars().take(10).collect();
    let k = Key::new(sending::cap_pk("ws_1"), format!("dom#blog.com#{day}"));
    let cap = sending::domain_daily_cap();
    s.app.store.transact(vec![TxOp::put(obj(json!({ "PK": k.pk, "SK": k.sk, "count": cap })))]).await.unwrap();
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 1).await.unwrap();
    assert!(stub.sent.lock().unwrap().is_empty());
    let v = invocation(&s).await;
    assert_eq!(v["error"]["code"], "send_blocked", "{v}");
    assert_eq!(v["error"]["details"]["reasons"][0]["code"], "domain_daily_cap");
    assert_eq!(balance(&s.app, &s.pool).await, (0, 0));
    let r = app_get(&s.app, &keys::relationship(&s.rel)).await;
    assert_ne!(records::str_of(&r, "status"), Some("CONTACTED_BY_US"));
}

#[test]
fn a_send_scheduled_beyond_the_queue_delay_is_stored_visible_later() {
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let op = linkcrm_api::ops::crm::send_email::job_op("inv_x", Some(&later.to_rfc3339())).unwrap();
    let TxOp::Put { item, .. } = op else { panic!("a put") };
    let sk = records::str_of(&item, "SK").unwrap().to_owned();
    let visible = chrono::DateTime::parse_from_rfc3339(sk.split('#').next().unwrap()).unwrap();
    assert!((visible.with_timezone(&chrono::Utc) - later).num_seconds().abs() <= 2, "{sk}");
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    let TxOp::Put { item, .. } = linkcrm_api::ops::crm::send_email::job_op("inv_y", Some(&soon.to_rfc3339())).unwrap()
    else {
        panic!("a put")
    };
    let sk = records::str_of(&item, "SK").unwrap().to_owned();
    let visible = chrono::DateTime::parse_from_rfc3339(sk.split('#').next().unwrap()).unwrap();
    assert!((visible.with_timezone(&chrono::Utc) - soon).num_seconds().abs() <= 2, "{sk}");
}

#[tokio::test]
async fn a_claim_with_its_result_is_finished_not_doubted() {
    let s = setup().await;
    let item = app_get(&s.app, &inv::key(&s.id)).await;
    let claim = sending::claim_key(&s.id);
    s.app
        .store
        .transact(vec![
            inv::transition(&item, inv::Status::Running, vec![]),
            TxOp::put(obj(json!({ "PK": claim.pk, "SK": claim.sk, "messageId": "m2@outreach.example.com",
                                  "eventId": "evt_1" }))),
        ])
        .await
        .unwrap();
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert!(stub.sent.lock().unwrap().is_empty());
    let v = invocation(&s).await;
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["result"], json!({ "eventId": "evt_1", "messageId": "m2@outreach.example.com" }));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 2000));
}

#[tokio::test]
async fn an_account_cooling_off_blocks_even_its_last_sender() {
    let s = setup().await;
    // Three sends, no reply, the last one yesterday: the account cools off for 30 days.
    let yesterday = linkcrm_domain::time::format(linkcrm_domain::time::now() - chrono::Duration::days(1));
    let account = records::str_of(&app_get(&s.app, &keys::relationship(&s.rel)).await, "accountId").unwrap().to_owned();
    let sends = json!([yesterday.clone(), yesterday.clone(), yesterday]);
    let update = linkcrm_storage::Update::new().set("recentSends", sends).set("contactAttemptCount", 3);
    s.app.store.update(&keys::account(&account), update, None).await.unwrap();
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 1).await.unwrap();
    assert!(stub.sent.lock().unwrap().is_empty(), "nothing is sent to a cooling account");
    let v = invocation(&s).await;
    assert_eq!(v["error"]["code"], "send_blocked", "{v}");
    assert_eq!(v["error"]["details"]["reasons"][0]["code"], "cooling_off");
    assert_eq!(balance(&s.app, &s.pool).await, (0, 0), "blocked work is not charged");
}

/// Every item of a query, for before/after comparisons.
async fn partition(app: &App, pk: String) -> Vec<linkcrm_storage::Item> {
    app.store.query(linkcrm_storage::Query::partition(pk).limit(100)).await.unwrap().items
}

#[tokio::test]
async fn a_send_completes_in_one_commit_and_a_redelivery_changes_nothing() {
    let s = setup().await;
    let stub = Stub::default();
    sending::handle(&s.app, &stub, &s.job, 1).await.unwrap();
    let v = invocation(&s).await;
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["creditsUsed"], 2.0);
    let (event_id, message_id) =
        (v["result"]["eventId"].as_str().unwrap().to_owned(), v["result"]["messageId"].as_str().unwrap().to_owned());
    // The event, the reply key and the claim's result all name the same event.
    let ev = app_get(&s.app, &keys::event(&event_id)).await;
    assert_eq!(records::str_of(&ev, "type"), Some("EMAIL_SENT"));
    let m = app_get(&s.app, &sending::message_key(&message_id)).await;
    assert_eq!(records::str_of(&m, "eventId"), Some(event_id.as_str()));
    assert_eq!(records::str_of(&m, "invocationId"), Some(s.id.as_str()));
    let claim = app_get(&s.app, &sending::claim_key(&s.id)).await;
    assert_eq!(records::str_of(&claim, "eventId"), Some(event_id.as_str()));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 2000));
    let ledger = partition(&s.app, credits::ledger_pk("ws_1")).await;
    assert_eq!(ledger.iter().filter(|e| records::str_of(e, "kind") == Some("charge")).count(), 1);

    // A forced redelivery of the same job: no send, no write.
    let before = (
        app_get(&s.app, &inv::key(&s.id)).await,
        app_get(&s.app, &sending::claim_key(&s.id)).await,
        app_get(&s.app, &keys::relationship(&s.rel)).await,
        partition(&s.app, credits::ledger_pk("ws_1")).await.len(),
        app_get(&s.app, &s.pool.key()).await,
    );
    sending::handle(&s.app, &stub, &s.job, 2).await.unwrap();
    assert_eq!(stub.sent.lock().unwrap().len(), 1, "sent once");
    let after = (
        app_get(&s.app, &inv::key(&s.id)).await,
        app_get(&s.app, &sending::claim_key(&s.id)).await,
        app_get(&s.app, &keys::relationship(&s.rel)).await,
        partition(&s.app, credits::ledger_pk("ws_1")).await.len(),
        app_get(&s.app, &s.pool.key()).await,
    );
    assert_eq!(before, after, "a redelivery after the completion changes nothing");
}

#[tokio::test]
async fn a_completion_that_loses_the_invocation_still_records_the_send_uncharged() {
    // The known limit: the invocation moved (a redelivery judged it uncertain) while the first run
    // talked SMTP. The completion cannot finish it, but EMAIL_SENT and the claim's result stay true.
    struct Racing {
        app: Arc<App>,
        id: String,
    }
    #[async_trait::async_trait]
    impl Mailer for Racing {
        async fn verify(&self, _: &SmtpSettings) -> Result<(), MailError> {
            Ok(())
        }
        async fn send(&self, _: &SmtpSettings, email: &OutgoingEmail) -> Result<Accepted, MailError> {
            let item = self.app.store.get(&inv::key(&self.id)).await.unwrap().unwrap();
            let ops =
                inv::finish_ops(&item, inv::Status::Failed, 0, Value::Null, inv::problem(502, "send_uncertain", "x"));
            self.app.store.transact(ops.unwrap()).await.unwrap();
            Ok(Accepted { message_id: email.message_id.clone(), server_response: "250 ok".into() })
        }
    }
    let s = setup().await;
    let racing = Racing { app: s.app.clone(), id: s.id.clone() };
    sending::handle(&s.app, &racing, &s.job, 1).await.unwrap();
    let v = invocation(&s).await;
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("FAILED"), Some("send_uncertain")));
    assert_eq!(balance(&s.app, &s.pool).await, (0, 0));
    let claim = app_get(&s.app, &sending::claim_key(&s.id)).await;
    let event_id = records::str_of(&claim, "eventId").expect("the claim has its result").to_owned();
    assert_eq!(records::str_of(&app_get(&s.app, &keys::event(&event_id)).await, "type"), Some("EMAIL_SENT"));
}

#[tokio::test]
async fn only_a_bounce_the_platform_read_about_its_own_send_suppresses_for_everyone() {
    use linkcrm_api::context::{Caller, Ctx};
    use linkcrm_api::ops::inbound::{receive, Source};
    use linkcrm_api::suppression::{self, Channel, Kind};
    let s = setup().await;
    sending::handle(&s.app, &Stub::default(), &s.job, 1).await.unwrap();
    let sent = invocation(&s).await["result"]["messageId"].as_str().unwrap().to_owned();
    let caller = Caller {
        key_id: "key_1".into(),
        agency_id: "ag_1".into(),
        key_workspace: Some("ws_1".into()),
        scopes: vec!["crm:read".into(), "crm:write".into()],
        key_hash: String::new(),
        member_id: None,
    };
    let ctx = Ctx {
        app: s.app.clone(),
        caller,
        workspace_id: Some("ws_1".into()),
        workspace_record: None,
        if_match: None,
        idempotency: None,
    };
    let platform = suppression::key(None, Kind::Email, "ed@blog.com");
    let mine = suppression::key(Some("ws_1"), Kind::Email, "ed@blog.com");

    // Posted by the workspace, even about our own send: its word, its list only.
    receive(&ctx, &hard_bounce("d1@mx", "ed@blog.com", &sent), Source::api()).await.unwrap();
    assert!(s.app.store.get(&platform).await.unwrap().is_none());
    assert!(s.app.store.get(&mine).await.unwrap().is_some());
    // Read by the platform, but about a message it never sent, or sent to someone else.
    receive(&ctx, &hard_bounce("d2@mx", "ed@blog.com", "made-up@x"), Source::of(Channel::PlatformMailbox))
        .await
        .unwrap();
    receive(&ctx, &hard_bounce("d3@mx", "other@blog.com", &sent), Source::of(Channel::PlatformMailbox)).await.unwrap();
    assert!(s.app.store.get(&platform).await.unwrap().is_none());
    // Read by the platform, about its own message to that address: everyone's list, with provenance.
    let msg =
        receive(&ctx, &hard_bounce("d4@mx", "ed@blog.com", &sent), Source::of(Channel::PlatformMailbox)).await.unwrap();
    let entry = s.app.store.get(&platform).await.unwrap().expect("suppressed platform-wide");
    let shown = suppression::view(&entry, "ag_other").unwrap();
    let p = shown.provenance.expect("provenance");
    assert_eq!((p.channel, p.message_id.as_deref()), (Channel::PlatformMailbox, Some("d4@mx")));
    assert_eq!(p.inbound_message_id.as_deref(), Some(msg.body.unwrap().id.as_str()));
    assert_eq!(p.workspace_id, None, "another agency does not learn which workspace it was");
    let own = suppression::view(&entry, "ag_1").unwrap().provenance.unwrap();
    assert_eq!(own.workspace_id.as_deref(), Some("ws_1"));

    // The operator lifts it, with an audit line; lifting again finds nothing.
    let audit = suppression::lift_platform(&s.app.store, "Ed@Blog.com", "mailbox restored", "ops@example")
        .await
        .unwrap()
        .expect("lifted");
    assert!(s.app.store.get(&platform).await.unwrap().is_none());
    let logged = s.app.store.get(&suppression::audit_key(&audit.at, &audit.id)).await.unwrap().expect("audit line");
    assert_eq!(records::str_of(&logged, "reason"), Some("mailbox restored"));
    assert_eq!(records::str_of(&logged, "actor"), Some("ops@example"));
    assert_eq!(logged["before"]["provenance"]["channel"], "platform_mailbox");
    assert!(suppression::lift_platform(&s.app.store, "ed@blog.com", "again", "ops").await.unwrap().is_none());
    assert!(s.app.store.get(&mine).await.unwrap().is_some(), "the workspace's own entry is its own to lift");
}
