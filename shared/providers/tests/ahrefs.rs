//! The Ahrefs v3 client against `FakeAhrefs` over real loopback HTTP: the parameters it sends (select, mode,
//! aggregation, history, date), what it maps, and how it behaves when Ahrefs throttles, fails or runs out of units.

use linkcrm_providers::ahrefs::{
    ALL_BACKLINKS_PATH, BACKLINKS_SELECT, BACKLINKS_STATS_PATH, DOMAIN_RATING_PATH, METRICS_PATH, REFDOMAINS_PATH,
    REFDOMAINS_SELECT,
};
use linkcrm_providers::{AhrefsClient, AhrefsMode, DomainMetrics, ProviderError, RetryPolicy};
use linkcrm_testkit::{AhrefsFault, FakeAhrefs};
use std::time::{Duration, Instant};

const TARGET: &str = "engineering-blog.com";

/// Retries in milliseconds so the failure paths run fast; `max_delay` still allows a 1 s `Retry-After`.
fn client(fake: &FakeAhrefs) -> AhrefsClient {
    let retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(2) };
    AhrefsClient::new(&fake.base_url, &fake.api_key).unwrap().with_retry(retry).with_timeout(Duration::from_secs(2))
}

async fn start_seeded() -> FakeAhrefs {
    let fake = FakeAhrefs::start().await;
    fake.set_refdomains(
        TARGET,
        [("smallblog.net", 12.0), ("bignews.com", 91.0), ("midmag.org", 55.5), ("tinysite.io", 3.0), ("dev.to", 88.0)],
    );
    fake.set_backlinks(
        TARGET,
        [
            ("https://midmag.org/roundup", "https://engineering-blog.com/pm-tools", "best PM tools", 55.5),
            ("https://bignews.com/a", "https://engineering-blog.com/", "Engineering Blog", 91.0),
            ("https://bignews.com/b", "https://engineering-blog.com/about", "", 91.0),
            ("https://smallblog.net/x", "https://engineering-blog.com/pm-tools", "this post", 12.0),
        ],
    );
    fake.set_metrics(TARGET, 47.0, 15_300, 2_210, 840, 12_900);
    fake
}

#[tokio::test]
async fn refdomains_are_read_with_select_live_history_and_the_limit() {
    let fake = start_seeded().await;

    let domains = client(&fake).refdomains(TARGET, AhrefsMode::Subdomains, 3).await.unwrap();

    let got: Vec<(&str, Option<f64>)> = domains.iter().map(|d| (d.domain.as_str(), d.domain_rating)).collect();
    assert_eq!(got, vec![("bignews.com", Some(91.0)), ("dev.to", Some(88.0)), ("midmag.org", Some(55.5))]);
    assert!(domains.iter().all(|d| d.dofollow_links.is_some() && d.first_seen.is_some() && d.is_spam == Some(false)));
    let call = fake.last_call().unwrap();
    assert_eq!(call.path, REFDOMAINS_PATH);
    assert_eq!(call.api_key.as_deref(), Some(fake.api_key.as_str()));
    assert_eq!(call.param("target"), Some(TARGET));
    assert_eq!(call.param("mode"), Some("subdomains"));
    assert_eq!(call.param("select"), Some(REFDOMAINS_SELECT));
    assert_eq!(call.param("history"), Some("live"));
    assert_eq!(call.param("order_by"), Some("domain_rating:desc"));
    assert_eq!(call.param("limit"), Some("3"));
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn backlinks_are_live_and_one_per_linking_domain() {
    let fake = start_seeded().await;

    let links = client(&fake).backlinks(TARGET, AhrefsMode::Domain, 10).await.unwrap();

    let got: Vec<(&str, &str, Option<f64>)> =
        links.iter().map(|l| (l.url_from.as_str(), l.anchor.as_str(), l.domain_rating_source)).collect();
    assert_eq!(
        got,
        vec![
            ("https://bignews.com/a", "Engineering Blog", Some(91.0)),
            ("https://midmag.org/roundup", "best PM tools", Some(55.5)),
            ("https://smallblog.net/x", "this post", Some(12.0)),
        ]
    );
    assert_eq!(links[1].url_to, "https://engineering-blog.com/pm-tools");
    assert_eq!(links[1].title.as_deref(), Some("A page on midmag.org"));
    assert_eq!(links[1].is_dofollow, Some(true));
    let call = fake.last_call().unwrap();
    assert_eq!(call.path, ALL_BACKLINKS_PATH);
    assert_eq!(call.param("aggregation"), Some("1_per_domain"));
    assert_eq!(call.param("history"), Some("live"));
    assert_eq!(call.param("select"), Some(BACKLINKS_SELECT));
    assert_eq!(call.param("mode"), Some("domain"));
    assert_eq!(call.param("limit"), Some("10"));

    let two = client(&fake).backlinks(TARGET, AhrefsMode::Domain, 2).await.unwrap();
    assert_eq!(two.len(), 2, "limit honoured");
}

#[tokio::test]
async fn metrics_combine_three_calls_each_dated_today() {
    let fake = start_seeded().await;
    let before = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();

    let metrics = client(&fake).metrics(TARGET).await.unwrap();

    let after = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();
    assert_eq!(
        metrics,
        DomainMetrics {
            domain_rating: Some(47.0),
            ahrefs_rank: Some(530_001),
            org_traffic: Some(15_300),
            org_keywords: Some(2_210),
            live_refdomains: Some(840),
            live_backlinks: Some(12_900),
        }
    );
    assert_eq!(fake.call_count(), 3);
    for path in [DOMAIN_RATING_PATH, METRICS_PATH, BACKLINKS_STATS_PATH] {
        let calls = fake.calls_to(path);
        assert_eq!(calls.len(), 1, "{path}");
        let date = calls[0].param("date").unwrap_or_else(|| panic!("{path} without date"));
        assert!(date == before || date == after, "{path}: date {date}, today is {before}");
        assert_eq!(calls[0].param("target"), Some(TARGET));
    }
}

#[tokio::test]
async fn metrics_on_a_date_send_that_date() {
    let fake = start_seeded().await;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();

    client(&fake).metrics_on(TARGET, date).await.unwrap();

    assert!(fake.calls().iter().all(|c| c.param("date") == Some("2026-01-31")));
}

#[tokio::test]
async fn an_unknown_domain_has_empty_metrics_and_no_links() {
    let fake = start_seeded().await;

    let metrics = client(&fake).metrics("nobody-links-here.com").await.unwrap();
    let domains = client(&fake).refdomains("nobody-links-here.com", AhrefsMode::Subdomains, 50).await.unwrap();

    assert_eq!(metrics.domain_rating, Some(0.0));
    assert_eq!(metrics.ahrefs_rank, None);
    assert_eq!(metrics.live_refdomains, Some(0));
    assert!(domains.is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_not_retried() {
    let fake = start_seeded().await;

    let err = AhrefsClient::new(&fake.base_url, "not-the-key").unwrap().refdomains(TARGET, AhrefsMode::Domain, 5).await;

    assert!(matches!(err, Err(ProviderError::Unauthorized)), "{err:?}");
    assert_eq!(fake.call_count(), 1);
    assert_eq!(fake.last_call().unwrap().api_key.as_deref(), Some("not-the-key"), "sent as a Bearer token");
}

#[tokio::test]
async fn payment_required_and_spent_units_are_quota_exceeded_without_retrying() {
    let fake = start_seeded().await;
    fake.fail_next(1, AhrefsFault::PaymentRequired);
    fake.fail_next(1, AhrefsFault::InsufficientUnits);

    let paid = client(&fake).refdomains(TARGET, AhrefsMode::Subdomains, 5).await.unwrap_err();
    let units = client(&fake).backlinks(TARGET, AhrefsMode::Subdomains, 5).await.unwrap_err();

    assert!(matches!(paid, ProviderError::QuotaExceeded), "{paid:?}");
    assert!(matches!(units, ProviderError::QuotaExceeded), "{units:?}");
    assert_eq!(fake.call_count(), 2);
    assert!(!units.is_transient());
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_ahrefs_asks_for_and_then_succeeds() {
    let fake = start_seeded().await;
    fake.fail_next(1, AhrefsFault::RateLimited { retry_after_secs: 1 });

    let started = Instant::now();
    let domains = client(&fake).refdomains(TARGET, AhrefsMode::Subdomains, 2).await.unwrap();

    assert_eq!(domains.len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not honoured: {:?}", started.elapsed());
    assert_eq!(fake.calls_to(REFDOMAINS_PATH).len(), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_at_once_with_the_hint() {
    let fake = start_seeded().await;
    fake.fail_next(1, AhrefsFault::RateLimited { retry_after_secs: 3600 });

    let err = client(&fake).refdomains(TARGET, AhrefsMode::Subdomains, 2).await.unwrap_err();

    assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600)));
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn persistent_server_errors_make_ahrefs_unavailable() {
    let fake = start_seeded().await;
    fake.fail_next(10, AhrefsFault::ServerError(500));

    let err = client(&fake).backlinks(TARGET, AhrefsMode::Subdomains, 5).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("500")), "{err:?}");
    assert_eq!(fake.call_count(), 4, "four attempts, then give up");
}

#[tokio::test]
async fn one_failing_metrics_call_fails_the_whole_metrics() {
    let fake = start_seeded().await;
    fake.fail_next_on(METRICS_PATH, 10, AhrefsFault::ServerError(503));

    let err = client(&fake).metrics(TARGET).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("503")), "{err:?}");
    assert_eq!(fake.calls_to(METRICS_PATH).len(), 4);
}

#[tokio::test]
async fn a_transient_failure_of_one_metrics_call_is_retried_alone() {
    let fake = start_seeded().await;
    fake.fail_next_on(BACKLINKS_STATS_PATH, 1, AhrefsFault::ServerError(502));

    let metrics = client(&fake).metrics(TARGET).await.unwrap();

    assert_eq!(metrics.live_backlinks, Some(12_900));
    assert_eq!(fake.calls_to(BACKLINKS_STATS_PATH).len(), 2);
    assert_eq!(fake.calls_to(DOMAIN_RATING_PATH).len(), 1);
    assert_eq!(fake.call_count(), 4);
}

#[tokio::test]
async fn malformed_json_is_a_bad_response_and_not_retried() {
    let fake = start_seeded().await;
    fake.fail_next(3, AhrefsFault::Malformed);

    let err = client(&fake).refdomains(TARGET, AhrefsMode::Subdomains, 5).await.unwrap_err();

    assert!(matches!(err, ProviderError::BadResponse(_)), "{err:?}");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_as_unavailable_without_a_retry() {
    let fake = start_seeded().await;
    fake.fail_next(1, AhrefsFault::Slow(Duration::from_secs(3)));

    let started = Instant::now();
    let err = client(&fake)
        .with_timeout(Duration::from_millis(200))
        .refdomains(TARGET, AhrefsMode::Subdomains, 5)
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("within")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(fake.call_count(), 1);
}

/// Guards the fake itself: it must refuse what Ahrefs refuses and answer in Ahrefs' shape.
#[tokio::test]
async fn the_fake_enforces_ahrefs_required_parameters_and_select() {
    let fake = start_seeded().await;
    let http = reqwest::Client::new();
    let get = |path: &str, query: &str| {
        http.get(format!("{}{path}?{query}", fake.base_url)).bearer_auth(&fake.api_key).send()
    };

    let no_date = get(DOMAIN_RATING_PATH, &format!("target={TARGET}")).await.unwrap();
    assert_eq!(no_date.status(), 400);
    assert!(no_date.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().contains("date"));
    let no_select = get(REFDOMAINS_PATH, &format!("target={TARGET}")).await.unwrap();
    assert_eq!(no_select.status(), 400);
    let unknown = get(REFDOMAINS_PATH, &format!("target={TARGET}&select=domain,made_up")).await.unwrap();
    assert_eq!(unknown.status(), 400);
    let bad_mode = get(ALL_BACKLINKS_PATH, &format!("target={TARGET}&select=url_from&mode=all")).await.unwrap();
    assert_eq!(bad_mode.status(), 400);

    let rows = get(REFDOMAINS_PATH, &format!("target={TARGET}&select=domain&limit=2")).await.unwrap();
    assert_eq!(rows.status(), 200);
    let body: serde_json::Value = rows.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "refdomains": [{ "domain": "smallblog.net" }, { "domain": "bignews.com" }] }));

    let dr = get(DOMAIN_RATING_PATH, &format!("target={TARGET}&date=2026-05-01")).await.unwrap();
    let body: serde_json::Value = dr.json().await.unwrap();
    assert_eq!(body["domain_rating"]["domain_rating"], 47.0);
    let anonymous = http.get(format!("{}{METRICS_PATH}?target={TARGET}&date=2026-05-01", fake.base_url));
    assert_eq!(anonymous.send().await.unwrap().status(), 401);
}
