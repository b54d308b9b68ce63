//! SERP research and the LLM writing operations, black-box on both backends against fake DataForSEO
//! and chat-completions servers: results and the 24-hour cache, credits charged only for answers
//! given, providers missing, down or refusing, and workspaces' own keys.

mod common;
use common::{Backend, Env};
use linkcrm_testkit::{DataForSeoFault, FakeDataForSeo, FakeLlm, LlmFailure};
use serde_json::json;

each_backend!(serp_research_with_cache_and_credits, serp);
/// Calls the LLM client makes for one request when every attempt times out.
const LLM_ATTEMPTS: usize = 4;
each_backend!(writing_with_an_llm_and_without, writing);

async fn usage(env: &Env, ws: &str) -> f64 {
    env.agency().get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200)["creditsUsedThisCycle"].as_f64().unwrap()
}

async fn serp(backend: Backend) {
    let fake = FakeDataForSeo::start().await;
    fake.set_serp(
        "best pm software",
        [
            ("engineering-blog.com", "https://engineering-blog.com/best-pm-tools", "Best PM tools"),
            ("www.devleadweekly.com", "https://www.devleadweekly.com/pm", "PM for devs"),
            ("reviews.example.org", "https://reviews.example.org/pm", "PM reviews"),
        ],
    );
    // Without credentials: 503 naming the settings, nothing charged.
    let bare = Env::start(backend).await;
    let ws = bare.agency().create_workspace("Bare").await;
    let api = bare.agency().in_workspace(&ws);
    let r = api.post("/v1/research/serp", json!({ "query": "best pm software" })).await;
    let p = r.problem(503, "provider_unavailable");
    assert!(p["detail"].as_str().unwrap().contains("LINKCRM_DATAFORSEO_LOGIN"), "{p}");
    drop(bare);

    let env = Env::start_with(
        backend,
        &[
            ("LINKCRM_DATAFORSEO_BASE_URL", fake.base_url.as_str()),
            ("LINKCRM_DATAFORSEO_LOGIN", fake.login.as_str()),
            ("LINKCRM_DATAFORSEO_PASSWORD", fake.password.as_str()),
        ],
    )
    .await;
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    // No credits: 402 before the provider is asked.
    let r = api.post("/v1/research/serp", json!({ "query": "best pm software", "freshness": "now" })).await;
    r.problem(402, "insufficient_credits");
    assert_eq!(fake.call_count(), 0);
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 10 })).await.ok(201);

    let r = api.post("/v1/research/serp", json!({ "query": "best pm software", "topN": 2 })).await.ok(200).clone();
    assert_eq!(r["cached"], false);
    assert_eq!(r["creditsCharged"], 1.0);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{r}");
    assert_eq!(results[0]["domain"], "engineering-blog.com");
    assert_eq!(results[1]["domain"], "devleadweekly.com", "www. is not part of the domain");
    assert!(results[0]["rank"].as_u64().unwrap() < results[1]["rank"].as_u64().unwrap());
    assert_eq!(fake.call_count(), 1);
    // The same query again: from the cache, free; more results than fetched are asked for again.
    let again = api.post("/v1/research/serp", json!({ "query": "Best PM software", "topN": 2 })).await.ok(200).clone();
    assert_eq!((again["cached"].as_bool(), again["creditsCharged"].as_f64()), (Some(true), Some(0.0)));
    assert_eq!(again["results"], r["results"]);
    assert_eq!(fake.call_count(), 1);
    assert_eq!(usage(&env, &ws).await, 1.0);
    let other_device = api.post("/v1/research/serp", json!({ "query": "best pm software", "device": "mobile" })).await;
    assert_eq!(other_device.ok(200)["cached"], false, "the cache is per device");
    assert_eq!(other_device.body["results"].as_array().unwrap().len(), 3, "only organic results");
    let now = api.post("/v1/research/serp", json!({ "query": "best pm software", "freshness": "now" })).await;
    assert_eq!(now.ok(200)["cached"], false);
    assert_eq!(fake.call_count(), 3);
    assert_eq!(usage(&env, &ws).await, 3.0);

    // The provider down or refusing: an error that says so, nothing charged.
    fake.fail_next(4, DataForSeoFault::ServerError(500));
    let r = api.post("/v1/research/serp", json!({ "query": "pm tools", "freshness": "now" })).await;
    assert_eq!(r.problem(503, "provider_unavailable")["details"]["provider"], "dataforseo");
    fake.fail_next(1, DataForSeoFault::Malformed);
    api.post("/v1/research/serp", json!({ "query": "pm tools" })).await.problem(503, "provider_unavailable");
    fake.fail_next(1, DataForSeoFault::PaymentRequired);
    api.post("/v1/research/serp", json!({ "query": "pm tools" })).await.problem(422, "provider_quota_exceeded");
    assert_eq!(usage(&env, &ws).await, 3.0);
    // Bad input.
    api.post("/v1/research/serp", json!({ "query": "x", "topN": 101 })).await.problem(400, "invalid_request");
    api.post("/v1/research/serp", json!({ "query": "x", "device": "tablet" })).await.problem(400, "invalid_request");

    // A workspace's own login: used instead of the platform's, and a wrong one says so.
    let integ = format!("/v1/workspaces/{ws}/integrations/dataforseo");
    let r = agency.put(&integ, json!({ "login": "someone-else", "password": "wrong-password" })).await;
    assert_eq!((r.ok(200)["configured"].as_bool(), r.body["keyLast4"].as_str()), (Some(true), Some("else")));
    assert!(r.body.get("password").is_none() && !r.body.to_string().contains("wrong-password"));
    let r = api.post("/v1/research/serp", json!({ "query": "pm tools", "freshness": "now" })).await;
    r.problem(422, "provider_credentials_rejected");
    env.other_agency().get(&integ).await.problem(403, "workspace_forbidden");
    agency.delete(&integ).await.ok(204);
    assert_eq!(agency.get(&integ).await.ok(200)["configured"], false);
    assert_eq!(agency.get(&integ).await.ok(200)["platformConfigured"], true);
}

async fn writing(backend: Backend) {
    // Without an LLM: 503 naming the setting, never a canned text.
    let bare = Env::start(backend).await;
    let ws = bare.agency().create_workspace("Bare").await;
    let api = bare.agency().in_workspace(&ws);
    let r = api.post("/v1/link-building/emails/generate", json!({ "topic": "PM tools for engineers" })).await;
    assert!(r.problem(503, "provider_unavailable")["detail"].as_str().unwrap().contains("LINKCRM_LLM_API_KEY"));
    drop(bare);

    let llm = FakeLlm::start().await;
    let env = Env::start_with(
        backend,
        &[
            ("LINKCRM_LLM_BASE_URL", llm.base_url.as_str()),
            ("LINKCRM_LLM_API_KEY", llm.api_key.as_str()),
            ("LINKCRM_LLM_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let api = agency.in_workspace(&ws);
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 20 })).await.ok(201);

    let g = api
        .post(
            "/v1/link-building/emails/generate",
            json!({ "topic": "PM tools for engineers", "tone": "friendly", "angle": "their 2026 survey" }),
        )
        .await
        .ok(200)
        .clone();
    assert!(!g["subject"].as_str().unwrap().is_empty() && g["body"].as_str().unwrap().contains("2026 survey"), "{g}");
    assert_eq!(g["creditsCharged"], 3.0);
    let s = api.post("/v1/link-building/emails/subject-suggestions", json!({ "topic": "PM tools", "count": 3 })).await;
    assert_eq!(s.ok(200)["suggestions"].as_array().unwrap().len(), 3, "{}", s.body);
    let p = api
        .post("/v1/link-building/emails/personalize", json!({ "baseEmail": "Hi, we wrote a guide.", "leadName": "Marina", "leadWebsite": "engineering-blog.com" }))
        .await;
    assert!(p.ok(200)["body"].as_str().unwrap().contains("Marina"), "{}", p.body);
    let f = api
        .post(
            "/v1/link-building/emails/follow-up",
            json!({ "originalSubject": "A guest post", "originalBody": "Hi Marina" }),
        )
        .await;
    assert!(f.ok(200)["subject"].as_str().unwrap().starts_with("Re:"), "{}", f.body);
    assert_eq!(usage(&env, &ws).await, 10.0);
    assert_eq!(llm.calls(), 4);

    // Failures leave nothing made and nothing charged.
    for (failure, attempts) in
        [(LlmFailure::Malformed, 1), (LlmFailure::Truncated, 1), (LlmFailure::Timeout, LLM_ATTEMPTS)]
    {
        let before = llm.calls();
        llm.fail_next(attempts, failure);
        let r = api.post("/v1/link-building/emails/generate", json!({ "topic": "x" })).await;
        r.problem(503, "provider_unavailable");
        assert_eq!(llm.calls() - before, attempts);
    }
    llm.fail_next(1, LlmFailure::InsufficientQuota);
    api.post("/v1/link-building/emails/generate", json!({ "topic": "x" }))
        .await
        .problem(422, "provider_quota_exceeded");
    llm.fail_next(1, LlmFailure::RateLimited { retry_after_secs: 1 });
    api.post("/v1/link-building/emails/subject-suggestions", json!({ "topic": "x" })).await.ok(200);
    assert_eq!(usage(&env, &ws).await, 11.0);
    // Bad input, and a template of another workspace.
    api.post("/v1/link-building/emails/generate", json!({ "topic": "x", "tone": "angry" }))
        .await
        .problem(400, "invalid_request");
    let other = agency.in_workspace(&agency.create_workspace("Other").await);
    let tpl = other.post("/v1/link-building/templates", json!({ "name": "t", "subject": "s", "body": "b" })).await;
    let tpl = tpl.ok(201)["id"].as_str().unwrap().to_owned();
    api.post("/v1/link-building/emails/generate", json!({ "topic": "x", "templateId": tpl }))
        .await
        .problem(404, "template_not_found");
}
