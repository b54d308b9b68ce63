//! The LLM client against `FakeLlm` over real loopback HTTP: what it sends, what the helpers check, and how
//! it behaves when the API throttles, runs out of quota, fails, hangs or answers nonsense.

use linkcrm_providers::llm::CHAT_COMPLETIONS_PATH;
use linkcrm_providers::{EmailBrief, LlmClient, ProviderError, RetryPolicy, Tone, WrittenEmail};
use linkcrm_testkit::fake_llm::Failure;
use linkcrm_testkit::FakeLlm;
use serde_json::json;
use std::time::{Duration, Instant};

const MODEL: &str = "gpt-4o-mini";

/// Retries in milliseconds so the failure paths run fast; `max_delay` still allows a 1 s `Retry-After`.
fn client(fake: &FakeLlm) -> LlmClient {
    let retry =
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(2) };
    LlmClient::new(&fake.base_url, &fake.api_key, MODEL).unwrap().with_retry(retry).with_timeout(Duration::from_secs(2))
}

fn brief() -> EmailBrief {
    EmailBrief {
        topic: "Kubernetes cost monitoring".into(),
        tone: Tone::Friendly,
        angle: Some("your cluster autoscaling guide links to a dead tool".into()),
        recipient_name: Some("Marina".into()),
        recipient_site: Some("engineering-blog.com".into()),
        target_post: Some("https://engineering-blog.com/autoscaling-guide".into()),
        our_content: Some("https://ourtool.io/k8s-cost-report".into()),
        sender_name: Some("Sam".into()),
        template: None,
    }
}

#[tokio::test]
async fn the_request_carries_model_key_json_mode_and_both_messages() {
    let fake = FakeLlm::start().await;

    client(&fake).complete_json("You answer in JSON.", "Say hello.").await.unwrap();

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, format!("/v1{CHAT_COMPLETIONS_PATH}"), "the base URL's /v1 is kept");
    assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {}", fake.api_key).as_str()));
    assert_eq!(r.body["model"], MODEL);
    assert_eq!(r.body["response_format"], json!({ "type": "json_object" }));
    assert!(r.body["temperature"].is_number(), "{}", r.body);
    let roles: Vec<&str> = r.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["system", "user"]);
    assert_eq!(r.system(), Some("You answer in JSON."));
    assert_eq!(r.user(), Some("Say hello."));
}

#[tokio::test]
async fn complete_json_returns_the_object_and_mentions_json_when_the_caller_did_not() {
    let fake = FakeLlm::start().await;
    fake.set_reply(json!({ "answer": 42 }));

    // Without the word, OpenAI (and the fake) answer 400 to JSON mode; the client adds it.
    let v = client(&fake).complete_json("Be terse.", "What is six times seven?").await.unwrap();

    assert_eq!(v, json!({ "answer": 42 }));
    assert!(fake.requests()[0].system().unwrap().contains("JSON"));
}

#[tokio::test]
async fn write_email_sends_the_brief_and_returns_a_checked_email() {
    let fake = FakeLlm::start().await;

    let email = client(&fake).write_email(&brief()).await.unwrap();

    assert!(email.subject.contains("Kubernetes cost monitoring"), "{email:?}");
    assert!(!email.subject.contains('\n'));
    for fact in
        ["Marina", "engineering-blog.com", "autoscaling-guide", "ourtool.io/k8s-cost-report", "Sam", "dead tool"]
    {
        assert!(email.body.contains(fact), "{fact} did not reach the model: {email:?}");
    }
    let user = fake.requests()[0].user().unwrap().to_string();
    assert!(user.contains("Tone: friendly"), "{user}");
    assert!(fake.requests()[0].system().unwrap().contains("\"subject\""));
}

#[tokio::test]
async fn write_email_from_a_template_passes_the_template_and_leaves_no_placeholders() {
    let fake = FakeLlm::start().await;
    let with_template = EmailBrief {
        template: Some((
            "Your {targetBlogPost} guide".into(),
            "Hi {firstName},\n\nI loved your guide. Would {ourContent} fit?\n\n{senderName}".into(),
        )),
        ..brief()
    };

    let email = client(&fake).write_email(&with_template).await.unwrap();

    let user = fake.requests()[0].user().unwrap().to_string();
    assert!(user.contains("Hi {firstName},") && user.contains("Your {targetBlogPost} guide"), "{user}");
    assert!(!email.body.contains('{') && !email.subject.contains('{'), "{email:?}");
}

#[tokio::test]
async fn a_draft_with_a_placeholder_left_in_is_a_bad_response() {
    let fake = FakeLlm::start().await;
    fake.set_reply(json!({ "subject": "Quick idea", "body": "Hi {firstName},\n\nA link idea." }));

    let err = client(&fake).write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::BadResponse(ref m) if m.contains("{firstName}")), "{err:?}");
    assert_eq!(fake.calls(), 1, "a bad draft is not retried");
}

#[tokio::test]
async fn a_multi_line_subject_or_missing_field_is_a_bad_response() {
    let fake = FakeLlm::start().await;
    fake.set_reply(json!({ "subject": "Line one\nLine two", "body": "Hello." }));
    fake.set_reply(json!({ "subject": "Hello" }));
    fake.set_reply(json!({ "subject": "x".repeat(999), "body": "Hello." }));
    let c = client(&fake);

    for _ in 0..3 {
        let err = c.write_email(&brief()).await.unwrap_err();
        assert!(matches!(err, ProviderError::BadResponse(_)), "{err:?}");
    }
}

#[tokio::test]
async fn personalize_reaches_the_model_with_the_lead_and_base_email() {
    let fake = FakeLlm::start().await;
    let base = "Hi {firstName},\n\nWe wrote a report on Kubernetes costs your readers may like.\n\nSam";

    let email = client(&fake)
        .personalize(base, Some("Marina Olafsson"), Some("engineering-blog.com"), Some("platform engineering"))
        .await
        .unwrap();

    for fact in ["Marina Olafsson", "engineering-blog.com", "Kubernetes costs"] {
        assert!(email.body.contains(fact), "{fact} missing: {email:?}");
    }
    assert!(email.subject.contains("platform engineering"), "{email:?}");
    let user = fake.requests()[0].user().unwrap().to_string();
    assert!(user.contains("Recipient name: Marina Olafsson") && user.contains(base), "{user}");
}

#[tokio::test]
async fn subject_suggestions_returns_n_distinct_lines_about_the_topic() {
    let fake = FakeLlm::start().await;

    let s = client(&fake).subject_suggestions("Link building for SaaS", Tone::Casual, 4).await.unwrap();

    assert_eq!(s.len(), 4, "{s:?}");
    assert!(s.iter().all(|x| x.contains("Link building for SaaS")), "{s:?}");
    let user = fake.requests()[0].user().unwrap().to_string();
    assert!(user.contains("Number of suggestions: 4") && user.contains("casual"), "{user}");
}

#[tokio::test]
async fn subject_suggestions_are_deduplicated_cleaned_and_capped() {
    let fake = FakeLlm::start().await;
    let c = client(&fake);
    fake.set_reply(json!({ "suggestions": [
        "Quick question", "quick  QUESTION ", "Two\nlines", "", "For {firstName}", 7, "An idea for your guide", "Third",
    ] }));

    let s = c.subject_suggestions("guides", Tone::Professional, 10).await.unwrap();
    assert_eq!(s, vec!["Quick question", "An idea for your guide", "Third"]);

    // At most ten are asked for and returned, however many the caller wants.
    let many = c.subject_suggestions("guides", Tone::Professional, 50).await.unwrap();
    assert_eq!(many.len(), 10);
    assert!(fake.requests()[1].user().unwrap().contains("Number of suggestions: 10"));
    // At least one.
    assert_eq!(c.subject_suggestions("guides", Tone::Formal, 0).await.unwrap().len(), 1);

    fake.set_reply(json!({ "suggestions": ["", "Line\nbreak"] }));
    let err = c.subject_suggestions("guides", Tone::Formal, 3).await.unwrap_err();
    assert!(matches!(err, ProviderError::BadResponse(_)), "{err:?}");
    fake.set_reply(json!({ "ideas": ["A"] }));
    assert!(matches!(c.subject_suggestions("guides", Tone::Formal, 3).await, Err(ProviderError::BadResponse(_))));
}

#[tokio::test]
async fn follow_up_sends_the_original_and_answers_a_reply_subject() {
    let fake = FakeLlm::start().await;

    let email: WrittenEmail = client(&fake)
        .follow_up(
            "A dead link in your autoscaling guide",
            "Hi Marina,\n\nOne of your links is dead.\n\nSam",
            Tone::Formal,
        )
        .await
        .unwrap();

    assert_eq!(email.subject, "Re: A dead link in your autoscaling guide");
    assert!(email.body.contains("One of your links is dead."), "{email:?}");
    assert!(fake.requests()[0].user().unwrap().contains("formal"));
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_api_asks_for() {
    let fake = FakeLlm::start().await;
    fake.fail_next(1, Failure::RateLimited { retry_after_secs: 1 });

    let started = Instant::now();
    let email = client(&fake).write_email(&brief()).await.unwrap();

    assert!(email.body.contains("Marina"));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not honoured: {:?}", started.elapsed());
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let fake = FakeLlm::start().await;
    fake.fail_next(1, Failure::RateLimitedMs { retry_after_ms: 300 });

    let started = Instant::now();
    client(&fake).complete_json("json", "hi").await.unwrap();

    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn rate_limiting_beyond_the_attempt_limit_is_reported_with_the_hint() {
    let fake = FakeLlm::start().await;
    fake.fail_next(10, Failure::RateLimited { retry_after_secs: 0 });

    let err = client(&fake).complete_json("json", "hi").await.unwrap_err();

    assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d.is_zero()), "{err:?}");
    assert_eq!(fake.calls(), 3, "three attempts, then give up");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_at_once() {
    let fake = FakeLlm::start().await;
    fake.fail_next(1, Failure::RateLimited { retry_after_secs: 3600 });

    let started = Instant::now();
    let err = client(&fake).complete_json("json", "hi").await.unwrap_err();

    assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_quota_exceeded_after_exactly_one_call() {
    let fake = FakeLlm::start().await;
    fake.fail_next(5, Failure::InsufficientQuota);

    let err = client(&fake).write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::QuotaExceeded), "{err:?}");
    assert_eq!(fake.calls(), 1, "quota is never retried");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn server_errors_are_retried_until_the_api_recovers() {
    let fake = FakeLlm::start().await;
    fake.fail_next(2, Failure::ServerError);

    let s = client(&fake).subject_suggestions("SEO audits", Tone::Friendly, 2).await.unwrap();

    assert_eq!(s.len(), 2);
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn server_errors_that_persist_are_unavailable() {
    let fake = FakeLlm::start().await;
    fake.fail_next(10, Failure::ServerError);

    let err = client(&fake).write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("500")), "{err:?}");
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn a_timeout_is_retried_and_then_unavailable() {
    let fake = FakeLlm::start().await;
    fake.fail_next(3, Failure::Timeout);

    let started = Instant::now();
    let err = client(&fake).with_timeout(Duration::from_millis(200)).write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(ref m) if m.contains("within")), "{err:?}");
    assert_eq!(fake.calls(), 3);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn one_timeout_then_an_answer_succeeds() {
    let fake = FakeLlm::start().await;
    fake.fail_next(1, Failure::Timeout);

    let email = client(&fake).with_timeout(Duration::from_millis(200)).write_email(&brief()).await.unwrap();

    assert!(email.body.contains("Marina"));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn malformed_truncated_and_refused_answers_are_bad_responses_without_retry() {
    for failure in [Failure::Malformed, Failure::Truncated, Failure::Refusal] {
        let fake = FakeLlm::start().await;
        fake.fail_next(1, failure.clone());

        let err = client(&fake).write_email(&brief()).await.unwrap_err();

        assert!(matches!(err, ProviderError::BadResponse(_)), "{failure:?}: {err:?}");
        assert_eq!(fake.calls(), 1, "{failure:?}");
    }
    let fake = FakeLlm::start().await;
    fake.set_reply_text("[\"not\", \"an object\"]");
    let err = client(&fake).complete_json("json", "hi").await.unwrap_err();
    assert!(matches!(err, ProviderError::BadResponse(ref m) if m.contains("not an object")), "{err:?}");
}

#[tokio::test]
async fn a_400_is_a_bad_response_and_not_retried() {
    let fake = FakeLlm::start().await;
    fake.fail_next(3, Failure::BadRequest);

    let err = client(&fake).write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::BadResponse(ref m) if m.contains("context_length_exceeded")), "{err:?}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_not_retried() {
    let fake = FakeLlm::start().await;

    let err = LlmClient::new(&fake.base_url, "sk-wrong", MODEL).unwrap().write_email(&brief()).await.unwrap_err();

    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert_eq!(fake.calls(), 1);
    assert_eq!(fake.requests()[0].bearer(), Some("sk-wrong"));
}

#[tokio::test]
async fn the_api_down_is_unavailable() {
    let fake = FakeLlm::start().await;
    let key = fake.api_key.clone();
    let base_url = fake.stop().await;
    let retry =
        RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_secs(1) };

    let err =
        LlmClient::new(base_url, key, MODEL).unwrap().with_retry(retry).complete_json("json", "hi").await.unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

/// Guards the fake itself: its answers and errors must look like OpenAI's, or the tests above prove little.
#[tokio::test]
async fn the_fake_speaks_openai_shapes() {
    let fake = FakeLlm::start().await;
    let url = format!("{}/chat/completions", fake.base_url);
    let http = reqwest::Client::new();
    let body = json!({
        "model": MODEL,
        "messages": [{ "role": "system", "content": "Answer in JSON." }, { "role": "user", "content": "Topic: tea" }],
        "response_format": { "type": "json_object" },
    });

    let resp = http.post(&url).bearer_auth(&fake.api_key).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let content: serde_json::Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["subject"], "About tea");

    let unauthorized = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let e: serde_json::Value = unauthorized.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("API key"));

    let mut no_json_word = body.clone();
    no_json_word["messages"][0]["content"] = json!("Be terse.");
    let resp = http.post(&url).bearer_auth(&fake.api_key).json(&no_json_word).send().await.unwrap();
    assert_eq!(resp.status(), 400);

    fake.fail_next(1, Failure::InsufficientQuota);
    let quota = http.post(&url).bearer_auth(&fake.api_key).json(&body).send().await.unwrap();
    assert_eq!(quota.status(), 429);
    let e: serde_json::Value = quota.json().await.unwrap();
    assert_eq!(
        (e["error"]["type"].as_str(), e["error"]["code"].as_str()),
        (Some("insufficient_quota"), Some("insufficient_quota"))
    );
    assert_eq!(fake.calls(), 4);
}
