//! Sending mailboxes, black-box on both backends: the password never comes back.

mod common;
use serde_json::json;

on_both_backends!(mailboxes_keep_their_password_to_themselves, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let other_ws = agency.create_workspace("Beta").await;
    let api = agency.with_key(&agency.create_key(&ws, None).await);
    let other = agency.with_key(&agency.create_key(&other_ws, None).await);
    let body = json!({"fromName": "Maya at Acme", "fromAddress": "Maya@Acme.com", "smtpHost": "smtp.acme.com",
        "smtpUsername": "maya@acme.com", "password": "s3cret-pass", "dailyCap": 40});
    let r = api.post("/v1/mailboxes", body).await;
    let m = r.ok(201).clone();
    assert!(!r.text.contains("s3cret-pass"), "the password is never returned");
    assert_eq!(
        (m["fromAddress"].as_str(), m["smtpPort"].as_u64(), m["security"].as_str()),
        (Some("maya@acme.com"), Some(587), Some("starttls"))
    );
    assert_eq!((m["hasPassword"].as_bool(), m["dailyCap"].as_u64()), (Some(true), Some(40)));
    let id = m["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mbx_"));
    let got = api.get(&format!("/v1/mailboxes/{id}")).await;
    assert!(!got.text.contains("s3cret") && !got.text.contains("passwordSealed"));
    assert_eq!(got.ok(200)["fromName"], "Maya at Acme");
    let listed = api.get("/v1/mailboxes").await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains("s3cret"));
    // Another workspace sees none of it.
    other.get(&format!("/v1/mailboxes/{id}")).await.problem(404, "mailbox_not_found");
    assert_eq!(other.get("/v1/mailboxes").await.ok(200)["data"].as_array().unwrap().len(), 0);
    // Switch to a secret reference, then deactivate.
    let r = api
        .patch(&format!("/v1/mailboxes/{id}"), json!({"passwordRef": "env:ACME_SMTP_PASSWORD", "dailyCap": 80}))
        .await;
    let p = r.ok(200).clone();
    assert_eq!(
        (p["hasPassword"].as_bool(), p["passwordRef"].as_str(), p["dailyCap"].as_u64()),
        (Some(false), Some("env:ACME_SMTP_PASSWORD"), Some(80))
    );
    api.with_header("If-Match", "\"1\"")
        .patch(&format!("/v1/mailboxes/{id}"), json!({"active": false}))
        .await
        .problem(412, "precondition_failed");
    assert_eq!(api.patch(&format!("/v1/mailboxes/{id}"), json!({"active": false})).await.ok(200)["active"], false);
    // Bad input.
    for (bad, field) in [
        (json!({"fromName": "x", "fromAddress": "nope", "smtpHost": "smtp.acme.com"}), "fromAddress"),
        (json!({"fromName": "x", "fromAddress": "a@acme.com", "smtpHost": "not a host"}), "smtpHost"),
        (json!({"fromName": "x", "fromAddress": "a@acme.com", "smtpHost": "smtp.acme.com", "dailyCap": 0}), "dailyCap"),
        (
            json!({"fromName": "x", "fromAddress": "a@acme.com", "smtpHost": "smtp.acme.com", "passwordRef": "file:/etc/shadow"}),
            "passwordRef",
        ),
        (
            json!({"fromName": "x", "fromAddress": "a@acme.com", "smtpHost": "smtp.acme.com", "password": "p", "passwordRef": "env:X"}),
            "passwordRef",
        ),
    ] {
        let r = api.post("/v1/mailboxes", bad).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let crm_only = agency.with_key(&agency.create_key(&ws, Some(&["crm:read", "crm:write"])).await);
    crm_only.get("/v1/mailboxes").await.problem(403, "insufficient_scope");
    api.delete(&format!("/v1/mailboxes/{id}")).await.ok(204);
    api.get(&format!("/v1/mailboxes/{id}")).await.problem(404, "mailbox_not_found");
});
