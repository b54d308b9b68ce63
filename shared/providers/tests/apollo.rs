//! The Apollo client against `FakeApollo` over real loopback HTTP: what it sends, what it maps, and how it
//! behaves when Apollo throttles, fails, runs out of credits or goes away.

use linkcrm_providers::apollo::{BULK_MATCH_PATH, SEARCH_PATH};
use linkcrm_providers::{ApolloClient, ContactFinder, ProviderError, RetryPolicy};
use linkcrm_testkit::{FakeApollo, FakePerson, Fault};
use std::time::{Duration, Instant};

const BLOG: &str = "engineering-blog.com";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn person(id: &str, first: &str, last: &str, title: &str, seniority: &str) -> FakePerson {
    FakePerson {
        id: id.into(),
        first_name: first.into(),
        last_name: last.into(),
        title: title.into(),
        seniority: seniority.into(),
        email: Some(format!("{}@{BLOG}", first.to_lowercase())),
        email_status: "verified".into(),
        ..FakePerson::default()
    }
}

fn marina() -> FakePerson {
    FakePerson {
        linkedin_url: Some("https://linkedin.com/in/marinaolafsson".into()),
        twitter_url: Some("https://twitter.com/marolafsson".into()),
        ..person("5f3c1b18aa", "Marina", "Olafsson", "Senior Editor", "manager")
    }
}

/// Retries in milliseconds so the failure paths run fast; `max_delay` still allows a 1 s `Retry-After`.
fn client(fake: &FakeApollo) -> ApolloClient {
    let retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(2) };
    ApolloClient::new(&fake.base_url, &fake.api_key).unwrap().with_retry(retry).with_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn search_then_enrich_maps_apollo_people_to_contacts() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.add_person(BLOG, person("eng1", "Sam", "Coder", "Software Engineer", "senior"));
    fake.add_person("elsewhere.com", person("other1", "Olga", "Other", "Editor", "manager"));

    // Through the port the discover job uses, to prove the client fits it.
    let finder: Box<dyn ContactFinder> = Box::new(client(&fake));
    let contacts = finder.find_contacts(BLOG, &strings(&["Editor"]), &strings(&["manager"])).await.unwrap();

    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let json = serde_json::to_value(&contacts[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apolloPersonId": "5f3c1b18aa",
            "firstName": "Marina",
            "lastName": "Olafsson",
            "email": "marina@engineering-blog.com",
            "position": "Senior Editor",
            "seniority": "manager",
            "linkedinUrl": "https://linkedin.com/in/marinaolafsson",
            "twitterHandle": "@marolafsson",
        })
    );
}

#[tokio::test]
async fn filters_and_key_are_sent_the_way_apollo_documents_them() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    let roles = strings(&["Editor", "Head of Content", "Marketing Manager"]);
    let seniority = strings(&["manager", "director", "vp"]);

    client(&fake).find_contacts("https://www.Engineering-Blog.com/", &roles, &seniority).await.unwrap();

    let searches = fake.calls_to(SEARCH_PATH);
    assert_eq!(searches.len(), 1);
    let s = &searches[0];
    assert_eq!(s.api_key.as_deref(), Some(fake.api_key.as_str()));
    assert_eq!(s.query_values("q_organization_domains_list[]"), vec![BLOG], "bare domain, as Apollo asks");
    assert_eq!(s.query_values("person_titles[]"), vec!["Editor", "Head of Content", "Marketing Manager"]);
    assert_eq!(s.query_values("person_seniorities[]"), vec!["manager", "director", "vp"]);
    assert_eq!(s.query_values("page"), vec!["1"]);
    assert_eq!(s.query_values("per_page"), vec!["25"]);
    assert!(s.body.get("api_key").is_none(), "the key goes in the header only");

    let enrich = fake.calls_to(BULK_MATCH_PATH);
    assert_eq!(enrich.len(), 1);
    assert_eq!(enrich[0].body, serde_json::json!({ "details": [{ "id": "5f3c1b18aa" }] }));
    assert_eq!(enrich[0].query_values("reveal_personal_emails"), vec!["false"]);
}

#[tokio::test]
async fn titles_match_loosely_and_seniority_filters() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, person("a", "Ann", "Alpha", "Content Marketing Manager", "manager"));
    fake.add_person(BLOG, person("b", "Ben", "Beta", "Marketing Manager", "director"));
    fake.add_person(BLOG, person("c", "Cat", "Gamma", "Sales Manager", "manager"));

    let found =
        client(&fake).search_people(BLOG, &strings(&["marketing manager"]), &strings(&["Manager"]), 10).await.unwrap();

    let ids: Vec<&str> = found.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["a"]);
    assert_eq!(found[0].last_name, None, "search never reveals the full last name");
    assert_eq!(found[0].last_name_obfuscated.as_deref(), Some("Al***a"));
}

#[tokio::test]
async fn a_domain_with_no_match_is_empty_and_spends_no_enrichment() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());

    let contacts = client(&fake).find_contacts("nobody-here.com", &strings(&["Editor"]), &[]).await.unwrap();

    assert!(contacts.is_empty());
    assert_eq!(fake.calls_to(SEARCH_PATH).len(), 1);
    assert!(fake.calls_to(BULK_MATCH_PATH).is_empty(), "no bulk_match without people");
}

#[tokio::test]
async fn only_verified_emails_are_returned_and_former_staff_are_dropped() {
    let fake = FakeApollo::start().await;
    fake.add_person(
        BLOG,
        FakePerson { email_status: "unverified".into(), ..person("u", "Una", "Unver", "Editor", "manager") },
    );
    fake.add_person(
        BLOG,
        FakePerson { email_status: "unavailable".into(), ..person("n", "Ned", "None", "Editor", "manager") },
    );
    fake.add_person(
        BLOG,
        FakePerson { current_domain: Some("newjob.com".into()), ..person("f", "Fay", "Former", "Editor", "manager") },
    );
    fake.add_person(BLOG, person("v", "Vic", "Verified", "Editor", "manager"));

    let contacts = client(&fake).find_contacts(BLOG, &strings(&["editor"]), &[]).await.unwrap();

    let got: Vec<(&str, Option<&str>)> =
        contacts.iter().map(|c| (c.apollo_person_id.as_str(), c.email.as_deref())).collect();
    assert_eq!(got, vec![("u", None), ("n", None), ("v", Some("vic@engineering-blog.com"))]);
}

#[tokio::test]
async fn enrichment_goes_ten_at_a_time_and_pages_are_followed_up_to_the_cap() {
    let fake = FakeApollo::start().await;
    for i in 0..23 {
        fake.add_person(BLOG, person(&format!("p{i:02}"), &format!("N{i}"), "Writer", "Editor", "manager"));
    }
    let client = client(&fake).with_max_pages(2);

    let found = client.search_people(BLOG, &strings(&["editor"]), &[], 10).await.unwrap();
    assert_eq!(found.len(), 20, "two pages of ten, then the cap");
    let pages: Vec<_> = fake.calls_to(SEARCH_PATH).iter().map(|c| c.query_values("page")[0].to_string()).collect();
    assert_eq!(pages, vec!["1", "2"]);

    let enriched = client.enrich(&found).await.unwrap();
    assert_eq!(enriched.len(), 20);
    let sizes: Vec<usize> =
        fake.calls_to(BULK_MATCH_PATH).iter().map(|c| c.body["details"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![10, 10]);
}

#[tokio::test]
async fn duplicate_people_collapse_by_apollo_id_and_by_email() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.add_person(BLOG, marina()); // Apollo returns the same record twice
    fake.add_person(
        BLOG,
        FakePerson {
            email: Some("Marina@engineering-blog.com".into()),
            ..person("dup2", "Marina", "O.", "Editor", "manager")
        },
    );

    let contacts = client(&fake).find_contacts(BLOG, &strings(&["editor"]), &[]).await.unwrap();

    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].apollo_person_id, "5f3c1b18aa");
    let details = &fake.calls_to(BULK_MATCH_PATH)[0].body["details"];
    assert_eq!(details.as_array().unwrap().len(), 2, "each id enriched once: {details}");
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_apollo_asks_for() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.fail_next_on(SEARCH_PATH, 1, Fault::RateLimited { retry_after_secs: 1 });

    let started = Instant::now();
    let contacts = client(&fake).find_contacts(BLOG, &strings(&["editor"]), &[]).await.unwrap();

    assert_eq!(contacts.len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not honoured: {:?}", started.elapsed());
    assert_eq!(fake.calls_to(SEARCH_PATH).len(), 2);
}

#[tokio::test]
async fn rate_limiting_beyond_the_attempt_limit_is_reported() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.fail_next(10, Fault::RateLimited { retry_after_secs: 0 });

    let err = client(&fake).find_contacts(BLOG, &[], &[]).await.unwrap_err();

    assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d.is_zero()), "{err:?}");
    assert_eq!(fake.calls().len(), 4, "four attempts, then give up");
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_at_once_with_the_hint() {
    let fake = FakeApollo::start().await;
    fake.fail_next(1, Fault::RateLimited { retry_after_secs: 3600 });

    let started = Instant::now();
    let err = client(&fake).search_people(BLOG, &[], &[], 10).await.unwrap_err();

    assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.calls().len(), 1);
    assert!(err.is_transient());
}

#[tokio::test]
async fn exhausted_credits_stop_without_retrying() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.fail_next_on(BULK_MATCH_PATH, 5, Fault::QuotaExhausted);

    let err = client(&fake).find_contacts(BLOG, &[], &[]).await.unwrap_err();

    assert!(matches!(err, ProviderError::QuotaExceeded), "{err:?}");
    assert_eq!(fake.calls_to(BULK_MATCH_PATH).len(), 1);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn server_errors_are_retried_until_apollo_recovers() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    fake.fail_next_on(SEARCH_PATH, 1, Fault::ServerError(500));
    fake.fail_next_on(SEARCH_PATH, 1, Fault::ServerError(503));

    let contacts = client(&fake).find_contacts(BLOG, &[], &[]).await.unwrap();

    assert_eq!(contacts.len(), 1);
    assert_eq!(fake.calls_to(SEARCH_PATH).len(), 3);
}

#[tokio::test]
async fn server_errors_that_persist_make_apollo_unavailable() {
    let fake = FakeApollo::start().await;
    fake.fail_next(10, Fault::ServerError(502));

    let err = client(&fake).search_people(BLOG, &[], &[], 10).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("502")), "{err:?}");
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn apollo_down_is_unavailable() {
    let fake = FakeApollo::start().await;
    let key = fake.api_key.clone();
    let base_url = fake.stop().await;
    let retry =
        RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(1) };

    let err = ApolloClient::new(base_url, key)
        .unwrap()
        .with_retry(retry)
        .search_people(BLOG, &[], &[], 10)
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_slow_answer_times_out_as_unavailable_without_a_retry() {
    let fake = FakeApollo::start().await;
    fake.fail_next(1, Fault::Slow(Duration::from_secs(3)));

    let started = Instant::now();
    let err =
        client(&fake).with_timeout(Duration::from_millis(200)).search_people(BLOG, &[], &[], 10).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("within")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_not_retried() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());

    let err =
        ApolloClient::new(&fake.base_url, "not-the-key").unwrap().find_contacts(BLOG, &[], &[]).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert_eq!(fake.calls().len(), 1);
}

/// Guards the fake itself: its search answer must look like Apollo's, or the tests above prove little.
#[tokio::test]
async fn the_fake_answers_search_in_apollos_shape_without_emails() {
    let fake = FakeApollo::start().await;
    fake.add_person(BLOG, marina());
    let url = format!("{}{SEARCH_PATH}?q_organization_domains_list[]={BLOG}&per_page=5", fake.base_url);

    let resp = reqwest::Client::new().post(&url).header("x-api-key", &fake.api_key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();

    assert_eq!(body["total_entries"], 1);
    let p = &body["people"][0];
    assert_eq!(
        (p["id"].as_str(), p["first_name"].as_str(), p["title"].as_str()),
        (Some("5f3c1b18aa"), Some("Marina"), Some("Senior Editor"))
    );
    assert_eq!(p["last_name_obfuscated"], "Ol***n");
    assert_eq!(p["has_email"], true);
    for hidden in ["email", "last_name", "linkedin_url", "phone_numbers"] {
        assert!(p.get(hidden).is_none(), "search must not reveal {hidden}: {p}");
    }
    let too_many = format!("{}{SEARCH_PATH}?per_page=101", fake.base_url);
    let resp = reqwest::Client::new().post(&too_many).header("x-api-key", &fake.api_key).send().await.unwrap();
    assert_eq!(resp.status(), 422);
}
