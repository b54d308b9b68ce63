//! SERP and competitor campaigns end to end on both backends, against fake DataForSEO, Ahrefs,
//! Apollo and chat-completions servers and aiosmtpd: keyword → screened domains → relationships →
//! contacts → drafts → bulk approval → emails that arrive rendered with RFC 8058 headers → the
//! campaign completing by rule; a competitor campaign drafted by the LLM and cancelled with its
//! credits released; and the process killed mid-pipeline resuming with nothing made or charged
//! twice.

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::fake_ahrefs::AhrefsFault;
use linkcrm_testkit::smtp::SmtpServer;
use linkcrm_testkit::{FakeAhrefs, FakeApollo, FakeDataForSeo, FakeLlm, FakePerson};
use serde_json::{json, Value};
use std::time::Duration;

const SERP: &str = "/v1/link-building/serp-outreach";
const COMP: &str = "/v1/link-building/competitor-outreach";
const DR_PATH: &str = "/v3/site-explorer/domain-rating";

struct Fakes {
    dfs: FakeDataForSeo,
    ahrefs: FakeAhrefs,
    apollo: FakeApollo,
    llm: FakeLlm,
}

impl Fakes {
    async fn start() -> Fakes {
        Fakes {
            dfs: FakeDataForSeo::start().await,
            ahrefs: FakeAhrefs::start().await,
            apollo: FakeApollo::start().await,
            llm: FakeLlm::start().await,
        }
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LINKCRM_DATAFORSEO_BASE_URL", self.dfs.base_url.clone()),
            ("LINKCRM_DATAFORSEO_LOGIN", self.dfs.login.clone()),
            ("LINKCRM_DATAFORSEO_PASSWORD", self.dfs.password.clone()),
            ("LINKCRM_AHREFS_BASE_URL", self.ahrefs.base_url.clone()),
            ("LINKCRM_AHREFS_API_KEY", self.ahrefs.api_key.clone()),
            ("LINKCRM_APOLLO_BASE_URL", self.apollo.base_url.clone()),
            ("LINKCRM_APOLLO_API_KEY", self.apollo.api_key.clone()),
            ("LINKCRM_LLM_BASE_URL", self.llm.base_url.clone()),
            ("LINKCRM_LLM_API_KEY", self.llm.api_key.clone()),
        ]
    }

    async fn env(&self, backend: Backend, extra: &[(&'static str, &str)]) -> Env {
        let mut vars = self.vars();
        vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Env::start_with(backend, &refs).await
    }

    fn editor(&self, domain: &str, first: &str) {
        self.apollo.add_person(
            domain,
            FakePerson {
                id: format!("p-{domain}"),
                first_name: first.into(),
                last_name: "Editor".into(),
                title: "Managing Editor".into(),
                seniority: "manager".into(),
                email: Some(format!("{}@{domain}", first.to_lowercase())),
                email_status: "verified".into(),
                ..FakePerson::default()
            },
        );
    }
}

async fn workspace(env: &Env, name: &str, credits: u32) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": credits })).await.ok(201);
    (ws.clone(), agency.in_workspace(&ws))
}

async fn mailbox(api: &Api, smtp: &SmtpServer) -> String {
    let body = json!({ "fromName": "Dana", "fromAddress": "dana@outreach.example.com", "smtpHost": "127.0.0.1",
                       "smtpPort": smtp.port, "security": "none" });
    api.post("/v1/mailboxes", body).await.ok(201)["id"].as_str().unwrap().to_owned()
}

/// `(reserved, remaining)` of the workspace's pool.
async fn credits(env: &Env, ws: &str) -> (f64, f64) {
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    (u["creditsReserved"].as_f64().unwrap(), u["creditsRemaining"].as_f64().unwrap())
}

async fn used(env: &Env, ws: &str) -> f64 {
    env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200)["creditsUsedThisCycle"].as_f64().unwrap()
}

/// Polls `base/{id}` until its pipeline is `ready` (and its invocation finished).
async fn wait_ready(env: &Env, api: &Api, base: &str, id: &str) -> Value {
    for _ in 0..600 {
        let c = api.get(&format!("{base}/{id}")).await.ok(200).clone();
        if c["stage"] == "ready" {
            let inv = c["invocationId"].as_str().unwrap();
            let i = api.get(&format!("/v1/agent/invocations/{inv}")).await.ok(200).clone();
            if i["status"] != "RUNNING" && i["status"] != "PENDING" {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dump_logs(env);
    panic!("campaign {id} never became ready: {}", api.get(&format!("{base}/{id}")).await.body);
}

fn dump_logs(env: &Env) {
    for l in env.server.logs().iter().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("campaign")) {
        eprintln!("{l}");
    }
}

async fn wait_status(api: &Api, base: &str, id: &str, status: &str) -> Value {
    for _ in 0..600 {
        let c = api.get(&format!("{base}/{id}")).await.ok(200).clone();
        if c["status"] == status {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} never became {status}: {}", api.get(&format!("{base}/{id}")).await.body);
}

fn result_of<'a>(inv: &'a Value, domain: &str) -> &'a Value {
    inv["result"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("no result for {domain} in {inv}"))
}

each_backend!(serp_campaign_from_keyword_to_sent_emails, serp_campaign);
each_backend!(competitor_campaign_drafted_by_the_llm, competitor_campaign);
each_backend!(campaign_killed_mid_pipeline_resumes, killed_mid_pipeline);
each_backend!(the_schedule_refreshes_due_accounts_metrics, metrics_schedule);

async fn serp_campaign(backend: Backend) {
    let f = Fakes::start().await;
    f.dfs.set_serp(
        "best pm software",
        [
            ("engineering-blog.com", "https://engineering-blog.com/best-pm-tools", "Best PM tools"),
            ("acme-own.com", "https://acme-own.com/pm", "Our own page"),
            ("excluded.example", "https://excluded.example/pm", "Excluded"),
            ("lowdr.example", "https://lowdr.example/pm", "Weak site"),
            ("www.devleadweekly.com", "https://www.devleadweekly.com/pm", "PM for devs"),
            ("nocontact.example", "https://nocontact.example/pm", "Nobody home"),
        ],
    );
    for (d, dr) in [
        ("engineering-blog.com", 55.0),
        ("lowdr.example", 10.0),
        ("devleadweekly.com", 48.0),
        ("nocontact.example", 40.0),
    ] {
        f.ahrefs.set_metrics(d, dr, 1000, 100, 50, 500);
    }
    f.editor("engineering-blog.com", "Marina");
    let smtp = SmtpServer::start().unwrap();
    let env = f.env(backend, &[]).await;
    let (ws, api) = workspace(&env, "Acme", 20).await;
    env.agency().patch(&format!("/v1/workspaces/{ws}"), json!({ "primaryDomain": "acme-own.com" })).await.ok(200);
    let mb = mailbox(&api, &smtp).await;
    // A partner the workspace already knows, with its editor on file: no discovery for it.
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": "devleadweekly.com" })).await;
    let (known_rel, known_acct) =
        (r.ok(201)["id"].as_str().unwrap().to_owned(), r.body["accountId"].as_str().unwrap().to_owned());
    let c =
        json!({ "accountId": known_acct, "email": "lee@devleadweekly.com", "firstName": "Lee", "position": "Editor" });
    api.post("/v1/link-building/crm/contact", c).await.ok(201);

    // Bad input, and nothing to write with.
    api.post(SERP, json!({ "keyword": "x", "topN": 101, "subject": "s", "body": "b" }))
        .await
        .problem(400, "invalid_request");
    api.post(SERP, json!({ "keyword": "x" })).await.problem(400, "invalid_request");
    api.post(SERP, json!({ "keyword": "x", "subject": "s", "body": "{nope}" })).await.problem(400, "invalid_template");
    // More than the pool holds: 402 at the start, nothing made.
    let r = api.post(SERP, json!({ "keyword": "best pm software", "topN": 100, "drafting": "llm" })).await;
    assert_eq!(r.problem(402, "insufficient_credits")["details"]["required"], 1.0 + 100.0 * 3.4);
    assert_eq!(api.get(SERP).await.ok(200)["data"].as_array().unwrap().len(), 0);

    let start = json!({
        "keyword": "best pm software", "topN": 10,
        "filters": { "minDR": 30, "excludeDomains": ["excluded.example"] },
        "contactRoles": ["editor"],
        "subject": "{keyword}: a resource for {domain}",
        "body": "Hi {firstName|there},\n\nYour list on {domain} ranks for {keyword}; ours might fit.\n\n{senderName}",
        "mailboxId": mb,
    });
    let r = api.post(SERP, start).await;
    let started = r.ok(202).clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("scmp_"), "{started}");
    assert_eq!(started["type"], "serp");
    assert_eq!(started["name"], "SERP: best pm software");
    assert_eq!(started["invocation"]["skill"], "link_building.serp_outreach");
    // Research 1 + (discovery 0.4 + metrics 0.1) per result asked for.
    assert_eq!(started["invocation"]["estimatedCost"]["credits"], 6.0);
    assert_eq!(credits(&env, &ws).await.0, 6.0);

    let c = wait_ready(&env, &api, SERP, &id).await;
    assert_eq!(c["candidatesCount"], 6);
    let inv = api.get(&format!("/v1/agent/invocations/{}", c["invocationId"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!(inv["status"], "SUCCEEDED", "{inv}");
    assert_eq!(result_of(&inv, "acme-own.com")["reason"]["code"], "own_domain");
    assert_eq!(result_of(&inv, "excluded.example")["reason"]["code"], "excluded_domain");
    assert_eq!(result_of(&inv, "lowdr.example")["reason"]["code"], "dr_out_of_range");
    assert_eq!(result_of(&inv, "nocontact.example")["reason"]["code"], "no_contact");
    assert_eq!(result_of(&inv, "engineering-blog.com")["status"], "drafted");
    assert_eq!(result_of(&inv, "devleadweekly.com")["status"], "drafted");
    let rank = result_of(&inv, "engineering-blog.com")["rank"].as_u64().unwrap();
    assert!(rank < result_of(&inv, "devleadweekly.com")["rank"].as_u64().unwrap());
    // Used: research 1 and metrics for the four domains the filter needed (0.4) by the campaign's
    // invocation, discovery for the two with nobody on file (0.8) by its child discoveries; the
    // rest of the reservation is back (what stays reserved is the two drafts' sends).
    assert_eq!(inv["creditsUsed"], 1.4, "{inv}");
    assert!((used(&env, &ws).await - 2.2).abs() < 1e-9);
    assert_eq!(credits(&env, &ws).await.0, 4.0);
    // Apollo was asked only about the partners without a contact.
    let asked: Vec<String> = f
        .apollo
        .calls_to(linkcrm_testkit::fake_apollo::SEARCH_PATH)
        .iter()
        .flat_map(|c| {
            c.query_values("q_organization_domains_list[]").into_iter().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    assert!(!asked.iter().any(|d| d == "devleadweekly.com"), "{asked:?}");
    assert_eq!(f.dfs.call_count(), 1);

    // The new partner's relationship says where it came from; the known one is reused.
    let rels = api.get("/v1/link-building/crm/relationship?limit=50").await.ok(200)["data"].as_array().unwrap().clone();
    let eb = rels.iter().find(|r| r["accountDomain"] == "engineering-blog.com").unwrap();
    assert_eq!(eb["source"], "SEARCH");
    assert_eq!(eb["sourceDetails"]["campaignId"], id.as_str());
    assert_eq!(eb["sourceDetails"]["serpRank"], rank);
    assert_eq!(rels.iter().filter(|r| r["accountDomain"] == "devleadweekly.com").count(), 1);
    assert!(!rels.iter().any(|r| r["accountDomain"] == "lowdr.example" || r["accountDomain"] == "acme-own.com"));

    let drafts = api.get(&format!("{SERP}/{id}/drafts")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(drafts.len(), 2, "{drafts:?}");
    assert!(drafts.iter().all(|d| d["status"] == "awaiting_approval"));
    let marina = drafts.iter().find(|d| d["to"] == "marina@engineering-blog.com").unwrap();
    assert_eq!(marina["subject"], "best pm software: a resource for engineering-blog.com");
    assert!(marina["body"].as_str().unwrap().starts_with("Hi Marina,"));
    assert!(drafts.iter().any(|d| d["to"] == "lee@devleadweekly.com" && d["relationshipId"] == known_rel.as_str()));
    // The discovered editor became the account's best contact.
    let acct = api.get(&format!("/v1/link-building/crm/relationship/{}", eb["id"].as_str().unwrap())).await.ok(200)
        ["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = api.get(&format!("/v1/link-building/crm/account/{acct}")).await.ok(200).clone();
    assert_eq!(a["bestContactId"], marina["contactId"]);
    assert_eq!(a["domainRating"], 55);

    // Another type's endpoint, and another workspace, see nothing of it.
    api.get(&format!("{COMP}/{id}")).await.problem(404, "campaign_not_found");
    let (_, other) = workspace(&env, "Other", 1).await;
    other.get(&format!("{SERP}/{id}")).await.problem(404, "campaign_not_found");
    assert_eq!(other.get(SERP).await.ok(200)["data"].as_array().unwrap().len(), 0);
    let list = api.get(SERP).await.ok(200).clone();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(api.get(COMP).await.ok(200)["data"].as_array().unwrap().len(), 0);

    // Bulk approval: both emails go out, rendered, with one-click unsubscribe.
    let r = api.post(&format!("{SERP}/{id}/approve"), json!({})).await;
    assert_eq!(r.ok(200)["decided"].as_array().unwrap().len(), 2);
    for _ in 0..400 {
        if smtp.received().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    let m = got.iter().find(|m| m.rcpt_tos == ["marina@engineering-blog.com"]).unwrap();
    assert_eq!(m.header("Subject").as_deref(), Some("best pm software: a resource for engineering-blog.com"));
    assert_eq!(m.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert!(m.text().contains("ranks for best pm software"));
    // Research done and nothing pending (no follow-ups): completed by rule.
    let done = wait_status(&api, SERP, &id, "completed").await;
    assert_eq!(done["sentCount"], 2);
    let metrics = api.get(&format!("/v1/link-building/campaign/{id}/metrics")).await.ok(200).clone();
    assert!(metrics["timeline"].as_array().unwrap().iter().any(|e| e["event"] == "completed"), "{metrics}");
    let ev = api.get(&format!("/v1/link-building/crm/event?relationshipId={known_rel}")).await.ok(200)["data"].clone();
    let types: Vec<&str> = ev.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"DRAFT_APPROVED") && types.contains(&"SEND_QUEUED") && types.contains(&"EMAIL_SENT"),
        "{types:?}"
    );

    // The same keyword again: the SERP comes from the cache (free) and the partners emailed
    // moments ago are skipped; with nothing to draft, the campaign completes at once.
    let again = json!({ "keyword": "best pm software", "topN": 10, "subject": "Hi", "body": "Hello {domain}", "mailboxId": mb });
    let id2 = api.post(SERP, again).await.ok(202)["id"].as_str().unwrap().to_owned();
    let c2 = wait_ready(&env, &api, SERP, &id2).await;
    let inv2 =
        api.get(&format!("/v1/agent/invocations/{}", c2["invocationId"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!(result_of(&inv2, "engineering-blog.com")["reason"]["code"], "contacted_recently");
    assert_eq!(f.dfs.call_count(), 1, "served from the 24-hour cache");
    wait_status(&api, SERP, &id2, "completed").await;
}

async fn competitor_campaign(backend: Backend) {
    let f = Fakes::start().await;
    f.ahrefs.set_backlinks(
        "competitor.com",
        [
            ("https://blog-a.example/review", "https://competitor.com/", "best tool", 45.0),
            ("https://www.blog-b.example/x", "https://competitor.com/pricing", "pricing", 20.0),
            ("https://blog-c.example/list", "https://competitor.com/", "alternatives", 61.0),
        ],
    );
    f.editor("blog-a.example", "Ana");
    f.editor("blog-c.example", "Cyd");
    let smtp = SmtpServer::start().unwrap();
    let env = f.env(backend, &[]).await;
    let (ws, api) = workspace(&env, "Acme", 30).await;
    let mb = mailbox(&api, &smtp).await;
    api.post(COMP, json!({ "competitorDomain": "competitor.com", "limit": 1001, "drafting": "llm" }))
        .await
        .problem(400, "invalid_request");
    let start = json!({
        "competitorDomain": "competitor.com", "limit": 5, "filters": { "minDR": 30 },
        "drafting": "llm", "tone": "friendly", "angle": "our comparison is more current", "mailboxId": mb,
    });
    let started = api.post(COMP, start).await.ok(202).clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ccmp_"));
    assert_eq!(started["name"], "vs competitor.com");
    // Backlinks pull 2 + 5 × (discovery 0.4 + metrics 0.1 + LLM draft 3).
    assert_eq!(started["invocation"]["estimatedCost"]["credits"], 19.5);
    let c = wait_ready(&env, &api, COMP, &id).await;
    let inv = api.get(&format!("/v1/agent/invocations/{}", c["invocationId"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!(result_of(&inv, "blog-b.example")["reason"]["code"], "dr_out_of_range", "DR from the backlink row");
    assert!(f.ahrefs.calls_to(DR_PATH).is_empty(), "no metrics call: the research carried DR");
    let drafts = api.get(&format!("{COMP}/{id}/drafts")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(drafts.len(), 2);
    // Written by the model from the facts it was given.
    let ana = drafts.iter().find(|d| d["to"] == "ana@blog-a.example").unwrap();
    assert!(ana["body"].as_str().unwrap().contains("our comparison is more current"), "{ana}");
    let req = f.llm.requests();
    assert!(req.iter().any(|r| r.body.to_string().contains("blog-a.example")));
    // The drafts' LLM calls are the workspace's `llm` health (read without a probe of the model list).
    let h = env.agency().get(&format!("/v1/workspaces/{ws}/health")).await.ok(200).clone();
    assert_eq!(h["integrations"]["llm"]["status"], "healthy", "{h}");
    assert!(h["integrations"]["llm"]["lastCheckedAt"].is_string(), "{h}");
    assert!(!f.llm.requests().iter().any(|r| r.path == linkcrm_testkit::fake_llm::MODELS_PATH));
    // Used: pull 2 and two LLM drafts 6 (and two discoveries 0.8, by the child invocations).
    assert_eq!(inv["creditsUsed"], 8.0, "{inv}");
    let rels = api.get("/v1/link-building/crm/relationship?limit=50").await.ok(200)["data"].as_array().unwrap().clone();
    let a = rels.iter().find(|r| r["accountDomain"] == "blog-a.example").unwrap();
    assert_eq!(a["source"], "COMPETITOR");
    assert_eq!(a["sourceDetails"]["competitorDomain"], "competitor.com");
    assert_eq!(a["sourceDetails"]["urlFrom"], "https://blog-a.example/review");
    assert_eq!(a["sourceDetails"]["anchor"], "best tool");
    // PATCH: filters for what is left, name.
    let p = api.patch(&format!("{COMP}/{id}"), json!({ "name": "vs competitor", "filters": { "minDR": 50 } })).await;
    assert_eq!(p.ok(200)["settings"]["filters"]["minDR"], 50.0);
    api.patch(&format!("{COMP}/{id}"), json!({ "filters": { "minDR": 80, "maxDR": 20 } }))
        .await
        .problem(422, "invalid_filters");

    // Cancel: the waiting drafts are cancelled and every reserved credit is back.
    let before = used(&env, &ws).await;
    assert!((before - 8.8).abs() < 1e-9, "{before}");
    let r = api.delete(&format!("{COMP}/{id}")).await;
    assert_eq!(r.ok(200)["status"], "cancelled");
    for _ in 0..200 {
        if credits(&env, &ws).await.0 == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (reserved, remaining) = credits(&env, &ws).await;
    assert_eq!(reserved, 0.0);
    assert!((remaining - (30.0 - 8.8)).abs() < 1e-9, "{remaining}");
    let d = api.get(&format!("{COMP}/{id}/drafts")).await.ok(200)["data"].as_array().unwrap().clone();
    assert!(d.iter().all(|d| d["status"] == "cancelled"), "{d:?}");
    assert!(smtp.received().is_empty());
    api.post(&format!("{COMP}/{id}/approve"), json!({})).await.problem(422, "invalid_state");
}

async fn killed_mid_pipeline(backend: Backend) {
    let f = Fakes::start().await;
    f.dfs.set_serp(
        "crash keyword",
        [
            ("alpha.example", "https://alpha.example/a", "A"),
            ("beta.example", "https://beta.example/b", "B"),
            ("gamma.example", "https://gamma.example/c", "C"),
        ],
    );
    for d in ["alpha.example", "beta.example", "gamma.example"] {
        f.ahrefs.set_metrics(d, 50.0, 10, 10, 10, 10);
        f.editor(d, "Sam");
    }
    // The first metrics call hangs: the process is killed while it is in flight.
    f.ahrefs.fail_next_on(DR_PATH, 1, AhrefsFault::Slow(Duration::from_secs(20)));
    let mut env = f.env(backend, &[("LINKCRM_JOB_VISIBILITY_SECS", "5")]).await;
    let (ws, api) = workspace(&env, "Crash", 20).await;
    let mb = mailbox(&api, &SmtpServer::start().unwrap()).await;
    let start = json!({ "keyword": "crash keyword", "topN": 3, "filters": { "minDR": 30 },
                        "subject": "Hi {firstName}", "body": "About {domain}", "mailboxId": mb });
    let id = api.post(SERP, start).await.ok(202)["id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        if !f.ahrefs.calls_to(DR_PATH).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(f.ahrefs.calls_to(DR_PATH).len(), 1, "killed while the first metrics call is in flight");
    tokio::task::block_in_place(|| env.server.kill_hard());
    tokio::task::block_in_place(|| env.restart());
    let api = env.agency().in_workspace(&ws);
    let c = wait_ready(&env, &api, SERP, &id).await;
    let drafts = api.get(&format!("{SERP}/{id}/drafts")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(drafts.len(), 3, "one draft per partner: {drafts:?}");
    let rels = api.get("/v1/link-building/crm/relationship?limit=50").await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(rels.len(), 3, "no duplicate relationship: {rels:?}");
    assert_eq!(c["membersCount"], 3);
    assert_eq!(f.dfs.call_count(), 1, "the research ran once");
    // The call in flight was repeated (at most that one); every charge happened once:
    // research 1 + metrics 3 × 0.1 on the campaign, discovery 3 × 0.4 on its child.
    assert_eq!(f.ahrefs.calls_to(DR_PATH).len(), 4);
    let inv = api.get(&format!("/v1/agent/invocations/{}", c["invocationId"].as_str().unwrap())).await.ok(200).clone();
    assert_eq!(inv["creditsUsed"], 1.3, "{inv}");
    assert!((used(&env, &ws).await - 2.5).abs() < 1e-9);
    assert_eq!(credits(&env, &ws).await.0, 6.0, "only the three drafts' sends stay reserved");
}

/// The metrics schedule (a one-second timer here): accounts a workspace works with and whose
/// metrics were never fetched are refreshed once from Ahrefs with a METRICS_REFRESHED event, on the
/// platform's key (nobody charged); an account whose only relationship is archived is not asked
/// about; a refreshed account is not due again within the max age.
async fn metrics_schedule(backend: Backend) {
    let f = Fakes::start().await;
    f.ahrefs.set_metrics("active-site.example", 42.0, 1200, 300, 80, 900);
    f.ahrefs.set_metrics("archived-site.example", 10.0, 1, 1, 1, 1);
    let env = f.env(backend, &[("LINKCRM_METRICS_REFRESH_SECS", "1")]).await;
    let (ws, api) = workspace(&env, "Metrics", 1).await;
    let rel = "/v1/link-building/crm/relationship";
    let a = api.post(rel, json!({ "domain": "active-site.example" })).await.ok(201)["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api.post(rel, json!({ "domain": "archived-site.example" })).await;
    let archived = r.ok(201)["id"].as_str().unwrap().to_owned();
    api.delete(&format!("{rel}/{archived}")).await;
    let asked = |domain: &str| f.ahrefs.calls_to(DR_PATH).iter().filter(|c| c.param("target") == Some(domain)).count();
    let mut acct = Value::Null;
    for _ in 0..300 {
        acct = api.get(&format!("/v1/link-building/crm/account/{a}")).await.ok(200).clone();
        if acct["domainRating"] == 42 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        json!([
            acct["domainRating"],
            acct["organicTraffic"],
            acct["organicKeywords"],
            acct["referringDomains"],
            acct["backlinks"]
        ]),
        json!([42, 1200, 300, 80, 900]),
        "{acct}"
    );
    assert!(acct["ahrefStatsUpdatedAt"].is_string());
    let history = api.get(&format!("/v1/link-building/crm/account/{a}/history")).await.ok(200).clone();
    let refreshed: Vec<&Value> =
        history["data"].as_array().unwrap().iter().filter(|e| e["type"] == "METRICS_REFRESHED").collect();
    assert_eq!(refreshed.len(), 1, "{history}");
    // More ticks: nothing is due any more. (A tick may have caught the archived site in the moment
    // between its creation and its archiving; none asks about it after.)
    let archived_asked = asked("archived-site.example");
    assert!(archived_asked <= 1, "{archived_asked}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(asked("active-site.example"), 1, "refreshed once within the max age");
    assert_eq!(asked("archived-site.example"), archived_asked, "nobody works with it");
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    assert_eq!(u["creditsUsedThisCycle"], 0.0, "the platform pays for scheduled refreshes");
}

/// The benchmark of BENCHMARKS.md ("competitor campaign, 1,000 referring domains"): a competitor
/// campaign through fake Ahrefs and Apollo to 1,000 template drafts, timed from the start to every
/// draft made. `cargo test --release --test outreach_campaigns bench_ -- --ignored --nocapture`
/// (`LINKCRM_BENCH_BACKEND=dynamodb` for the emulator, `LINKCRM_BENCH_DOMAINS` for another size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand, figures in BENCHMARKS.md"]
async fn bench_competitor_campaign_of_1000_domains() {
    let backend = match std::env::var("LINKCRM_BENCH_BACKEND").as_deref() {
        Ok("dynamodb") => Backend::Dynamo,
        _ => Backend::Embedded,
    };
    let n: usize = std::env::var("LINKCRM_BENCH_DOMAINS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let f = Fakes::start().await;
    let domains: Vec<String> = (0..n).map(|i| format!("site{i:04}.example")).collect();
    let rows: Vec<(String, String)> =
        domains.iter().map(|d| (format!("https://{d}/post"), "https://bench-rival.com/".to_owned())).collect();
    f.ahrefs.set_backlinks("bench-rival.com", rows.iter().map(|(a, b)| (a.as_str(), b.as_str(), "anchor", 50.0)));
    for d in &domains {
        f.editor(d, "Kim");
    }
    let env = f.env(backend, &[]).await;
    let (ws, api) = workspace(&env, "Bench", 5000).await;
    let mb = mailbox(&api, &SmtpServer::start().unwrap()).await;
    let start = json!({ "competitorDomain": "bench-rival.com", "limit": n, "subject": "Hi {firstName}",
                        "body": "About {domain}", "mailboxId": mb });
    let t0 = std::time::Instant::now();
    let id = api.post(COMP, start).await.ok(202)["id"].as_str().unwrap().to_owned();
    // Polled with a patient client: on the emulator a read may wait long behind the workers.
    let patient = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    let url = format!("{}{COMP}/{id}", env.server.base_url);
    let mut c = Value::Null;
    for _ in 0..36_000 {
        let r = patient
            .get(&url)
            .bearer_auth(&env.opts.admin_key)
            .header("X-Workspace-Id", &ws)
            .send()
            .await
            .expect("answered");
        c = r.json().await.unwrap();
        if c["stage"] == "ready" && c["draftsCount"] == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(c["draftsCount"], n, "{c}");
    let u = env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
    println!(
        "{}",
        json!({ "bench": "competitor_campaign", "backend": format!("{backend:?}"), "domains": n,
                "secondsToDrafts": (secs * 10.0).round() / 10.0, "domainsPerSecond": (n as f64 / secs * 10.0).round() / 10.0,
                "apolloCalls": f.apollo.calls().len(), "ahrefsCalls": f.ahrefs.call_count(),
                "creditsUsed": u["creditsUsedThisCycle"], "creditsReserved": u["creditsReserved"] })
    );
}
