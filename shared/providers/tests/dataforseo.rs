//! The DataForSEO client against `FakeDataForSeo` over real loopback HTTP: what it sends, what it keeps, and how it
//! maps DataForSEO's two levels of status codes and its HTTP errors.

use linkcrm_providers::{DataForSeoClient, ProviderError, RetryPolicy, SerpItem, SerpQuery};
use linkcrm_testkit::{DataForSeoFault, FakeDataForSeo};
use serde_json::json;
use std::time::{Duration, Instant};

const KEYWORD: &str = "best project management tools";

/// Retries in milliseconds so the failure paths run fast; `max_delay` still allows a 1 s `Retry-After`.
fn client(fake: &FakeDataForSeo) -> DataForSeoClient {
    let retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(2) };
    DataForSeoClient::new(&fake.base_url, &fake.login, &fake.password)
        .unwrap()
        .with_retry(retry)
        .with_timeout(Duration::from_secs(2))
}

async fn start_seeded() -> FakeDataForSeo {
    let fake = FakeDataForSeo::start().await;
    fake.set_serp(
        KEYWORD,
        [
            ("www.engineering-blog.com", "https://www.engineering-blog.com/best-pm-tools", "The 12 best PM tools"),
            ("pmreview.io", "https://pmreview.io/roundup", "PM tools, reviewed"),
            ("Blog.Example.org", "https://blog.example.org/tools?ref=serp", "Tools we use"),
            ("news.site.com", "https://news.site.com/pm", ""),
        ],
    );
    fake
}

fn ranks_and_domains(items: &[SerpItem]) -> Vec<(u32, &str)> {
    items.iter().map(|i| (i.rank, i.domain.as_str())).collect()
}

#[tokio::test]
async fn only_organic_results_are_kept_with_their_absolute_ranks() {
    let fake = start_seeded().await;

    let items = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();

    // Rank 1 is a featured snippet and rank 4 a "people also ask" box: both dropped, their positions still counted.
    assert_eq!(
        ranks_and_domains(&items),
        vec![(2, "engineering-blog.com"), (3, "pmreview.io"), (5, "blog.example.org"), (6, "news.site.com")]
    );
    assert_eq!(
        items[0],
        SerpItem {
            rank: 2,
            url: "https://www.engineering-blog.com/best-pm-tools".into(),
            domain: "engineering-blog.com".into(),
            title: Some("The 12 best PM tools".into()),
            snippet: Some(format!("The 12 best PM tools: everything about {KEYWORD}.")),
        }
    );
    assert_eq!(items[3].title, None, "an empty title is no title");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn the_request_is_one_task_with_basic_auth_as_documented() {
    let fake = start_seeded().await;
    let query = SerpQuery {
        keyword: KEYWORD.into(),
        location: Some("London,England,United Kingdom".into()),
        language: Some("en".into()),
        device: Some("mobile".into()),
        depth: 20,
    };

    client(&fake).serp(&query).await.unwrap();

    let call = fake.last_call().unwrap();
    assert_eq!(
        call.body,
        json!([{ "keyword": KEYWORD, "location_name": "London,England,United Kingdom", "language_code": "en",
            "device": "mobile", "depth": 20 }])
    );
    let auth = call.authorization.unwrap();
    assert!(auth.starts_with("Basic "), "{auth}");
    assert!(!auth.contains(&fake.password), "credentials are encoded, not sent as text");

    // A numeric location is a location code; no location at all means the United States.
    let coded = SerpQuery { location: Some("2826".into()), ..SerpQuery::new(KEYWORD) };
    client(&fake).serp(&coded).await.unwrap();
    assert_eq!(fake.last_call().unwrap().task()["location_code"], 2826);
    client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();
    let task = fake.last_call().unwrap().task().clone();
    assert_eq!(
        (task["location_code"].as_u64(), task["language_code"].as_str(), task["depth"].as_u64()),
        (Some(2840), Some("en"), Some(100))
    );
    assert!(task.get("device").is_none(), "DataForSEO's default device when none is asked for");
}

#[tokio::test]
async fn depth_bounds_the_results_and_an_unknown_keyword_has_none() {
    let fake = start_seeded().await;

    let two = client(&fake).serp(&SerpQuery { depth: 2, ..SerpQuery::new(KEYWORD) }).await.unwrap();
    assert_eq!(ranks_and_domains(&two), vec![(2, "engineering-blog.com"), (3, "pmreview.io")]);

    let none = client(&fake).serp(&SerpQuery::new("a keyword nobody searches")).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_invalid_query_fails_without_a_call() {
    let fake = start_seeded().await;

    let empty = client(&fake).serp(&SerpQuery::new("   ")).await.unwrap_err();
    let tablet = client(&fake).serp(&SerpQuery { device: Some("tablet".into()), ..SerpQuery::new(KEYWORD) }).await;

    assert!(matches!(empty, ProviderError::BadResponse(ref m) if m.contains("keyword")), "{empty:?}");
    assert!(matches!(tablet, Err(ProviderError::BadResponse(ref m)) if m.contains("device")), "{tablet:?}");
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_not_retried() {
    let fake = start_seeded().await;

    let err = DataForSeoClient::new(&fake.base_url, &fake.login, "not-the-password")
        .unwrap()
        .serp(&SerpQuery::new(KEYWORD))
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert_eq!(fake.call_count(), 1);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn http_402_is_quota_exceeded_without_retrying() {
    let fake = start_seeded().await;
    fake.fail_next(5, DataForSeoFault::PaymentRequired);

    let err = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(err, ProviderError::QuotaExceeded), "{err:?}");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_asked_for_and_then_succeeds() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::RateLimited { retry_after_secs: 1 });

    let started = Instant::now();
    let items = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();

    assert_eq!(items.len(), 4);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not honoured: {:?}", started.elapsed());
    assert_eq!(fake.call_count(), 2);
}

#[tokio::test]
async fn the_rate_limit_status_code_is_retried_too() {
    let fake = start_seeded().await;
    fake.fail_next(2, DataForSeoFault::task(40202, "Rate-limit per minute exceeded."));

    let items = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();

    assert_eq!(items.len(), 4);
    assert_eq!(fake.call_count(), 3);
}

#[tokio::test]
async fn persistent_server_errors_make_dataforseo_unavailable() {
    let fake = start_seeded().await;
    fake.fail_next(10, DataForSeoFault::ServerError(500));

    let err = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("500")), "{err:?}");
    assert_eq!(fake.call_count(), 4, "four attempts, then give up");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_response_level_internal_error_is_retried_until_it_clears() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::response(50000, "Internal Error."));

    let items = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();

    assert_eq!(items.len(), 4);
    assert_eq!(fake.call_count(), 2);
}

#[tokio::test]
async fn response_level_errors_map_to_what_the_caller_should_do() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::response(40100, "You are not authorized to access this resource."));
    fake.fail_next(1, DataForSeoFault::response(40210, "Insufficient funds. Please, check your account's balance."));
    fake.fail_next(1, DataForSeoFault::response(40000, "You can set only one task at a time."));

    let auth = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();
    let money = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();
    let ours = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(auth, ProviderError::Unauthorized), "{auth:?}");
    assert!(matches!(money, ProviderError::QuotaExceeded), "{money:?}");
    assert!(matches!(ours, ProviderError::BadResponse(ref m) if m.contains("40000")), "{ours:?}");
    assert_eq!(fake.call_count(), 3, "none of these is retried");
}

#[tokio::test]
async fn a_task_level_invalid_field_is_our_bug_and_not_retried() {
    let fake = start_seeded().await;
    fake.fail_next(3, DataForSeoFault::task(40501, "Invalid Field: 'language_code'."));

    let err = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(err, ProviderError::BadResponse(ref m) if m.contains("40501")), "{err:?}");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn task_level_cost_limit_and_search_engine_errors_stop_without_spending_again() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::task(40203, "The cost limit has been exceeded."));
    fake.fail_next(1, DataForSeoFault::task(40101, "Internal SE Server Error."));

    let cost = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();
    let engine = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(cost, ProviderError::QuotaExceeded), "{cost:?}");
    // 40101 is billed: reported as transient for the job queue to reschedule, not retried on the spot.
    assert!(matches!(engine, ProviderError::Unavailable(ref m) if m.contains("40101")), "{engine:?}");
    assert!(engine.is_transient());
    assert_eq!(fake.call_count(), 2);
}

#[tokio::test]
async fn no_search_results_is_an_empty_list() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::task(40102, "No Search Results."));

    let items = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap();

    assert!(items.is_empty());
}

#[tokio::test]
async fn malformed_json_is_a_bad_response_and_not_retried() {
    let fake = start_seeded().await;
    fake.fail_next(3, DataForSeoFault::Malformed);

    let err = client(&fake).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(err, ProviderError::BadResponse(_)), "{err:?}");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_as_unavailable_without_a_retry() {
    let fake = start_seeded().await;
    fake.fail_next(1, DataForSeoFault::Slow(Duration::from_secs(3)));

    let started = Instant::now();
    let err = client(&fake).with_timeout(Duration::from_millis(200)).serp(&SerpQuery::new(KEYWORD)).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("within")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(fake.call_count(), 1, "a live task that timed out may have been billed");
}

#[tokio::test]
async fn dataforseo_down_is_unavailable() {
    let fake = FakeDataForSeo::start().await;
    let (login, password) = (fake.login.clone(), fake.password.clone());
    let base_url = fake.stop().await;
    let retry =
        RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(1) };

    let err = DataForSeoClient::new(base_url, login, password)
        .unwrap()
        .with_retry(retry)
        .serp(&SerpQuery::new(KEYWORD))
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

/// Guards the fake itself: its answers must look like DataForSEO's, or the tests above prove little.
#[tokio::test]
async fn the_fake_answers_in_dataforseos_shape() {
    let fake = start_seeded().await;
    let url = format!("{}{}", fake.base_url, linkcrm_providers::dataforseo::SERP_PATH);
    let http = reqwest::Client::new();
    let task = json!([{ "keyword": KEYWORD, "location_code": 2840, "language_code": "en", "depth": 3 }]);

    let resp = http.post(&url).basic_auth(&fake.login, Some(&fake.password)).json(&task).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((body["status_code"].as_u64(), body["tasks_count"].as_u64()), (Some(20000), Some(1)));
    let t = &body["tasks"][0];
    assert_eq!(t["status_code"], 20000);
    assert_eq!(t["data"]["keyword"], KEYWORD);
    let result = &t["result"][0];
    let types: Vec<&str> = result["items"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["featured_snippet", "organic", "organic", "people_also_ask", "organic", "related_searches"]);
    assert_eq!(result["item_types"], json!(["featured_snippet", "organic", "people_also_ask", "related_searches"]));
    let organic = &result["items"][1];
    assert_eq!((organic["rank_group"].as_u64(), organic["rank_absolute"].as_u64()), (Some(1), Some(2)));

    // No credentials: HTTP 401. Two tasks: refused at the response level. No keyword: 40501 on the task.
    let anonymous = http.post(&url).json(&task).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let two = json!([task[0].clone(), task[0].clone()]);
    let resp = http.post(&url).basic_auth(&fake.login, Some(&fake.password)).json(&two).send().await.unwrap();
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["status_code"], 40000);
    let nameless = json!([{ "location_code": 2840, "language_code": "en" }]);
    let resp = http.post(&url).basic_auth(&fake.login, Some(&fake.password)).json(&nameless).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((body["status_code"].as_u64(), body["tasks"][0]["status_code"].as_u64()), (Some(20000), Some(40501)));
    assert_eq!(fake.call_count(), 4);
}
