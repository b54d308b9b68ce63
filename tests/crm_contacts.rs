//! CRM contacts: create (by account id or by domain), get, list (by account, by email, all, with
//! paging across shards), patch (email moves, If-Match, nulls, races) and delete.
//! References from other workspaces' events (409 `contact_in_use`) are made through the real
//! relationship and event endpoints.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;

const CONTACTS: &str = "/v1/link-building/crm/contact";

fn contact_path(id: &str) -> String {
    format!("{CONTACTS}/{id}")
}

/// A workspace and a client holding its default key (crm:read and crm:write).
async fn workspace(env: &Env, name: &str) -> (String, Api) {
    let agency = env.agency();
    let ws = agency.create_workspace(name).await;
    let key = agency.create_key(&ws, None).await;
    (ws, agency.with_key(&key))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(id_of).collect()
}

/// Every id of a list, following `nextCursor` with pages of `limit`.
async fn all_pages(api: &Api, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("{CONTACTS}?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await;
        let body = page.ok(200);
        let got = ids(body);
        assert!(got.len() <= limit, "a page holds at most `limit` items: {}", page.text);
        seen.extend(got);
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("the list never ended");
}

on_both_backends!(create_by_domain_and_by_account, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let body = json!({
        "domain": "https://www.Engineering-Blog.com/best-pm-tools?ref=x",
        "firstName": "  Marina ", "lastName": "Olafsson", "email": "marina@Engineering-Blog.COM",
        "position": "Senior Editor", "seniority": "manager",
        "linkedinUrl": "https://linkedin.com/in/marinaolafsson", "twitterHandle": "@marolafsson",
        "notes": "Prefers email; doesn't read DMs", "apolloPersonId": "5f3c1b18-7d8b-4f3e-9c4b-2c1a3e0a9b8f"
    });
    let r = api.post(CONTACTS, body).await;
    let marina = r.ok(201).clone();
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert!(marina["id"].as_str().unwrap().starts_with("ct_"));
    let acct = marina["accountId"].as_str().unwrap().to_owned();
    assert!(acct.starts_with("acct_"), "an account was created for the domain");
    // Every field of seed 002's contact, in its spelling, and nothing of the storage layout.
    let mut keys: Vec<&str> = marina.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accountId",
            "apolloPersonId",
            "createdAt",
            "email",
            "firstName",
            "id",
            "lastName",
            "linkedinUrl",
            "notes",
            "position",
            "seniority",
            "twitterHandle",
            "updatedAt"
        ]
    );
    assert_eq!(marina["firstName"], "Marina", "single-line fields are trimmed");
    assert_eq!(marina["email"], "marina@engineering-blog.com", "the email's domain is normalised");
    assert_eq!(marina["twitterHandle"], "@marolafsson");
    assert_eq!(marina["notes"], "Prefers email; doesn't read DMs");
    assert!(marina["createdAt"].as_str().unwrap().ends_with('Z'));

    // The same domain, spelt differently, is the same account.
    let r = api.post(CONTACTS, json!({"domain": "engineering-blog.com", "firstName": "Ola"})).await;
    let ola = r.ok(201).clone();
    assert_eq!(ola["accountId"], acct.as_str());
    assert_eq!(ola["email"], Value::Null);
    assert_eq!(ola["lastName"], Value::Null);
    // By account id.
    let r = api.post(CONTACTS, json!({"accountId": acct, "email": "editor@engineering-blog.com"})).await;
    let editor = r.ok(201).clone();
    assert_eq!(editor["accountId"], acct.as_str());
    // A subdomain is another account.
    let r = api.post(CONTACTS, json!({"domain": "blog.engineering-blog.com"})).await;
    assert_ne!(r.ok(201)["accountId"], acct.as_str());

    let got = api.get(&contact_path(&id_of(&marina))).await;
    assert_eq!(got.ok(200), &marina);
    assert_eq!(got.header("etag"), Some("\"1\""));
    let listed = api.get(&format!("{CONTACTS}?accountId={acct}")).await;
    assert_eq!(ids(listed.ok(200)), vec![id_of(&editor), id_of(&ola), id_of(&marina)], "newest first");
    assert_eq!(listed.body["nextCursor"], Value::Null);

    // Contacts are shared: another workspace (of another agency, even) reads the same record.
    let other_ws = env.other_agency().create_workspace("Elsewhere").await;
    let other = env.other_agency().in_workspace(&other_ws);
    // Only its notes are each workspace's own.
    let mut seen_elsewhere = marina.clone();
    seen_elsewhere["notes"] = Value::Null;
    assert_eq!(other.get(&contact_path(&id_of(&marina))).await.ok(200), &seen_elsewhere);
    // An agency key must say which workspace it acts in.
    env.agency().get(CONTACTS).await.problem(400, "workspace_required");
});

on_both_backends!(create_refuses_bad_input, |env| {
    let (ws, api) = workspace(&env, "Acme").await;
    let acct = api.post(CONTACTS, json!({"domain": "known.com"})).await.ok(201)["accountId"].clone();
    let long = "x".repeat(201);
    let cases = [
        (json!({}), 400, "invalid_request", "accountId"),
        (json!({"accountId": acct, "domain": "known.com"}), 400, "invalid_request", "domain"),
        (json!({"domain": "not a domain"}), 400, "invalid_domain", "domain"),
        (json!({"domain": "localhost"}), 400, "invalid_domain", "domain"),
        (json!({"accountId": "ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"}), 400, "invalid_request", "accountId"),
        (json!({"accountId": "nonsense"}), 400, "invalid_request", "accountId"),
        (json!({"domain": "known.com", "email": "not-an-email"}), 400, "invalid_email", "email"),
        (json!({"domain": "known.com", "email": "a@b"}), 400, "invalid_email", "email"),
        (json!({"domain": "known.com", "firstName": long}), 400, "invalid_request", "firstName"),
        (json!({"domain": "known.com", "position": "y".repeat(201)}), 400, "invalid_request", "position"),
        (json!({"domain": "known.com", "notes": "n".repeat(10_001)}), 400, "invalid_request", "notes"),
        (
            json!({"domain": "known.com", "linkedinUrl": "ftp://linkedin.com/in/x"}),
            400,
            "invalid_request",
            "linkedinUrl",
        ),
        (json!({"domain": "known.com", "linkedinUrl": "linkedin.com/in/x"}), 400, "invalid_request", "linkedinUrl"),
        (
            json!({"domain": "known.com", "linkedinUrl": format!("https://linkedin.com/{}", "p".repeat(2_000))}),
            400,
            "invalid_request",
            "linkedinUrl",
        ),
        (json!({"domain": "known.com", "company": "Acme"}), 400, "invalid_request", "company"),
        (json!({"domain": "known.com", "firstName": 7}), 400, "invalid_request", "firstName"),
    ];
    for (body, status, code, field) in cases {
        let r = api.post(CONTACTS, body.clone()).await;
        let p = r.problem(status, code);
        assert_eq!(p["errors"][0]["field"], field, "for {body}: {}", r.text);
    }
    // Long text within its bound is fine.
    let r = api
        .post(CONTACTS, json!({"domain": "known.com", "notes": "n".repeat(10_000), "firstName": "f".repeat(200)}))
        .await;
    r.ok(201);
    // A well-formed id of no account.
    let r = api.post(CONTACTS, json!({"accountId": "acct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"})).await;
    r.problem(404, "account_not_found");
    // A read-only key cannot write.
    let reader = env.agency().with_key(&env.agency().create_key(&ws, Some(&["crm:read"])).await);
    let p = reader.post(CONTACTS, json!({"domain": "known.com"})).await;
    assert_eq!(p.problem(403, "insufficient_scope")["details"]["requiredScope"], "crm:write");
    reader.get(CONTACTS).await.ok(200);
    // A key without crm scopes cannot read either.
    let campaigns = env.agency().with_key(&env.agency().create_key(&ws, Some(&["campaigns:read"])).await);
    campaigns.get(CONTACTS).await.problem(403, "insufficient_scope");
    // Nothing half-written: the first contact and the one at the bounds, nothing else.
    assert_eq!(api.get(CONTACTS).await.ok(200)["data"].as_array().unwrap().len(), 2);
});

on_both_backends!(one_contact_per_email, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let first = api.post(CONTACTS, json!({"domain": "blog.com", "email": "marina@blog.com"})).await.ok(201).clone();
    // The same address, its domain spelt in capitals, from another domain's account.
    let r = api.post(CONTACTS, json!({"domain": "other.com", "email": "marina@BLOG.com"})).await;
    assert_eq!(r.problem(409, "contact_exists")["details"]["contactId"], first["id"]);
    // Only one of many concurrent creators of one email wins; the others are told who did.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let r = api.post(CONTACTS, json!({"domain": format!("race{i}.com"), "email": "race@race.com"})).await;
            (r.status.as_u16(), r.body)
        }));
    }
    let mut winners = Vec::new();
    let mut named = HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => winners.push(id_of(&body)),
            409 => {
                assert_eq!(body["code"], "contact_exists", "{body}");
                named.insert(body["details"]["contactId"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one contact holds the email");
    assert!(named.iter().all(|n| *n == winners[0]), "refusals name the winner");
    let found = api.get(&format!("{CONTACTS}?email=race@race.com")).await;
    assert_eq!(ids(found.ok(200)), winners);
});

on_both_backends!(get_refuses_unknown_and_malformed_ids, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let p = api.get(&contact_path("ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B")).await;
    assert_eq!(p.problem(404, "contact_not_found")["details"]["id"], "ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B");
    api.get(&contact_path("acct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B")).await.problem(400, "invalid_request");
    api.get(&contact_path("nope")).await.problem(400, "invalid_request");
    api.get(&format!("{}?expand=all", contact_path("ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B")))
        .await
        .problem(400, "invalid_request");
});

on_both_backends!(list_all_by_account_and_by_email, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let mut created = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..12 {
        let domain = format!("site{}.com", i % 3);
        let r = api.post(CONTACTS, json!({"domain": domain, "email": format!("p{i}@{domain}")})).await;
        let c = r.ok(201).clone();
        if i < 3 {
            accounts.push(c["accountId"].as_str().unwrap().to_owned());
        }
        created.push(id_of(&c));
    }
    let mut newest_first = created.clone();
    newest_first.reverse();
    // Unfiltered, five at a time: every contact once, newest first.
    assert_eq!(all_pages(&api, "", 5).await, newest_first);
    assert_eq!(all_pages(&api, "", 1).await, newest_first);
    assert_eq!(all_pages(&api, "", 200).await, newest_first);
    let first = api.get(&format!("{CONTACTS}?limit=5")).await;
    assert_eq!(first.ok(200)["data"].as_array().unwrap().len(), 5);
    assert!(first.body.get("total").is_none(), "no total where it is not cheap");

    // One account's, two at a time.
    let of_site1: Vec<String> =
        newest_first.iter().enumerate().filter(|(i, _)| (11 - i) % 3 == 1).map(|(_, id)| id.clone()).collect();
    assert_eq!(of_site1.len(), 4);
    assert_eq!(all_pages(&api, &format!("accountId={}", accounts[1]), 2).await, of_site1);
    // An account with no contacts (well-formed id, nobody's) lists nothing.
    let none = api.get(&format!("{CONTACTS}?accountId=acct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B")).await;
    assert_eq!(none.ok(200)["data"], json!([]));

    // By email: the one contact, whatever the case of the domain; none for an unknown address.
    let by_email = api.get(&format!("{CONTACTS}?email=p4@SITE1.com")).await;
    assert_eq!(ids(by_email.ok(200)), vec![created[4].clone()]);
    assert_eq!(by_email.body["nextCursor"], Value::Null);
    let with_account = api.get(&format!("{CONTACTS}?email=p4@site1.com&accountId={}", accounts[1])).await;
    assert_eq!(ids(with_account.ok(200)), vec![created[4].clone()]);
    let wrong_account = api.get(&format!("{CONTACTS}?email=p4@site1.com&accountId={}", accounts[0])).await;
    assert_eq!(wrong_account.ok(200)["data"], json!([]));
    assert_eq!(api.get(&format!("{CONTACTS}?email=nobody@site1.com")).await.ok(200)["data"], json!([]));

    // Bad arguments.
    api.get(&format!("{CONTACTS}?email=nonsense")).await.problem(400, "invalid_email");
    api.get(&format!("{CONTACTS}?accountId=nonsense")).await.problem(400, "invalid_request");
    api.get(&format!("{CONTACTS}?limit=0")).await.problem(400, "invalid_request");
    api.get(&format!("{CONTACTS}?limit=201")).await.problem(400, "invalid_request");
    api.get(&format!("{CONTACTS}?sort=name")).await.problem(400, "invalid_request");
    api.get(&format!("{CONTACTS}?cursor=forged")).await.problem(400, "invalid_cursor");
    api.get(&format!("{CONTACTS}?cursor=forged&accountId={}", accounts[0])).await.problem(400, "invalid_cursor");
    api.get(&format!("{CONTACTS}?cursor=forged&email=p4@site1.com")).await.problem(400, "invalid_cursor");
    // A cursor belongs to the list that returned it: not another filter, not another workspace.
    let all_cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    let by_acct = api.get(&format!("{CONTACTS}?limit=1&accountId={}", accounts[0])).await;
    let acct_cursor = by_acct.ok(200)["nextCursor"].as_str().unwrap().to_owned();
    api.get(&format!("{CONTACTS}?cursor={acct_cursor}")).await.problem(400, "invalid_cursor");
    api.get(&format!("{CONTACTS}?cursor={all_cursor}&accountId={}", accounts[0])).await.problem(400, "invalid_cursor");
    api.get(&format!("{CONTACTS}?cursor={acct_cursor}&accountId={}", accounts[2])).await.problem(400, "invalid_cursor");
    let (_, other) = workspace(&env, "Other").await;
    other.get(&format!("{CONTACTS}?cursor={all_cursor}")).await.problem(400, "invalid_cursor");
    // The genuine ones still work.
    api.get(&format!("{CONTACTS}?limit=5&cursor={all_cursor}")).await.ok(200);
});

on_both_backends!(patch_moves_emails_clears_fields_and_honours_if_match, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let c = api
        .post(
            CONTACTS,
            json!({"domain": "blog.com", "email": "old@blog.com", "firstName": "Marina", "position": "Editor"}),
        )
        .await
        .ok(201)
        .clone();
    let path = contact_path(&id_of(&c));
    let other = api.post(CONTACTS, json!({"domain": "blog.com", "email": "taken@blog.com"})).await.ok(201).clone();

    // Move the email: the old address is free for someone else, the new one finds this contact.
    let r = api.patch(&path, json!({"email": "New@Blog.com", "position": "Senior Editor"})).await;
    let moved = r.ok(200).clone();
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(moved["email"], "new@blog.com", "addresses are stored lowercased");
    assert_eq!(moved["position"], "Senior Editor");
    assert_eq!(moved["firstName"], "Marina", "fields not sent stay");
    assert_eq!(moved["createdAt"], c["createdAt"]);
    assert!(moved["updatedAt"].as_str().unwrap() >= c["updatedAt"].as_str().unwrap());
    assert_eq!(api.get(&path).await.ok(200), &moved);
    assert_eq!(ids(api.get(&format!("{CONTACTS}?email=New@blog.com")).await.ok(200)), vec![id_of(&c)]);
    assert_eq!(api.get(&format!("{CONTACTS}?email=old@blog.com")).await.ok(200)["data"], json!([]));
    let reuse = api.post(CONTACTS, json!({"domain": "blog.com", "email": "old@blog.com"})).await;
    let reuser = id_of(reuse.ok(201));
    assert_eq!(ids(api.get(&format!("{CONTACTS}?email=old@blog.com")).await.ok(200)), vec![reuser]);

    // Another contact's email is refused and names it; nothing changes.
    let r = api.patch(&path, json!({"email": "taken@blog.com", "notes": "lost"})).await;
    assert_eq!(r.problem(409, "contact_exists")["details"]["contactId"], other["id"]);
    let now = api.get(&path).await;
    assert_eq!(now.ok(200), &moved);
    assert_eq!(now.header("etag"), Some("\"2\""));

    // If-Match: a stale ETag is refused, the current one passes.
    let stale = api.with_header("If-Match", "\"1\"").patch(&path, json!({"notes": "stale"})).await;
    assert_eq!(stale.problem(412, "precondition_failed")["details"]["currentETag"], "\"2\"");
    // null clears a field; clearing the email frees it too.
    let r = api.with_header("If-Match", "\"2\"").patch(&path, json!({"position": null, "email": null})).await;
    let cleared = r.ok(200).clone();
    assert_eq!(r.header("etag"), Some("\"3\""));
    assert_eq!(cleared["position"], Value::Null);
    assert_eq!(cleared["email"], Value::Null);
    assert_eq!(cleared["firstName"], "Marina");
    api.post(CONTACTS, json!({"domain": "blog.com", "email": "New@blog.com"})).await.ok(201);
    // Sending what is already there changes nothing, not even the version.
    let same = api.patch(&path, json!({"firstName": "Marina"})).await;
    assert_eq!(same.ok(200), &cleared);
    assert_eq!(same.header("etag"), Some("\"3\""));

    // Contacts do not move between accounts; their own account id is accepted as a no-op.
    let r = api.patch(&path, json!({"accountId": "acct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"})).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], "accountId");
    let r = api.patch(&path, json!({"domain": "elsewhere.com"})).await;
    assert_eq!(r.problem(400, "invalid_request")["errors"][0]["field"], "domain");
    api.patch(&path, json!({"accountId": c["accountId"]})).await.ok(200);
    // Bad values, unknown fields, unknown and malformed ids.
    let r = api.patch(&path, json!({"email": "nope"})).await;
    assert_eq!(r.problem(400, "invalid_email")["errors"][0]["field"], "email");
    api.patch(&path, json!({"linkedinUrl": "javascript:alert(1)"})).await.problem(400, "invalid_request");
    api.patch(&path, json!({"lastName": "l".repeat(201)})).await.problem(400, "invalid_request");
    api.patch(&path, json!({"id": "ct_other"})).await.problem(400, "invalid_request");
    api.patch(&path, json!({"colour": "red"})).await.problem(400, "invalid_request");
    api.patch(&contact_path("ct_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"), json!({"notes": "x"}))
        .await
        .problem(404, "contact_not_found");
    api.patch(&contact_path("bad"), json!({"notes": "x"})).await.problem(400, "invalid_request");
    assert_eq!(api.get(&path).await.header("etag"), Some("\"3\""), "refused patches changed nothing");
});

on_both_backends!(concurrent_patches_never_lose_an_update, |env| {
    let (_, api) = workspace(&env, "Acme").await;
    let c = api.post(CONTACTS, json!({"domain": "blog.com"})).await.ok(201).clone();
    let path = contact_path(&id_of(&c));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (a, p) = (api.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let r = a.patch(&p, json!({"position": format!("note {i}")})).await;
            (r.status.as_u16(), r.body["code"].clone(), i)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (200, _, i) => won.push(i),
            (409, code, _) => assert_eq!(code, "conflict"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(!won.is_empty());
    let r = api.get(&path).await;
    // Every success is one version: none was overwritten without a trace.
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", 1 + won.len()).as_str()));
    let last = r.body["position"].as_str().unwrap().strip_prefix("note ").unwrap().parse::<i32>().unwrap();
    assert!(won.contains(&last));

    // Two contacts racing for one email: at most one gets it, and the email finds that one.
    let a = id_of(api.post(CONTACTS, json!({"domain": "blog.com"})).await.ok(201));
    let b = id_of(api.post(CONTACTS, json!({"domain": "blog.com"})).await.ok(201));
    let (path_a, path_b) = (contact_path(&a), contact_path(&b));
    let pa = api.patch(&path_a, json!({"email": "both@blog.com"}));
    let pb = api.patch(&path_b, json!({"email": "both@blog.com"}));
    let (ra, rb) = futures::join!(pa, pb);
    let winners: Vec<&String> =
        [(&ra, &a), (&rb, &b)].into_iter().filter(|(r, _)| r.status == 200).map(|(_, id)| id).collect();
    assert_eq!(winners.len(), 1, "{} / {}", ra.text, rb.text);
    let loser = if ra.status == 200 { &rb } else { &ra };
    loser.problem(409, "contact_exists");
    assert_eq!(ids(api.get(&format!("{CONTACTS}?email=both@blog.com")).await.ok(200)), vec![winners[0].clone()]);
});

on_both_backends!(delete_removes_the_contact_and_frees_its_email, |env| {
    let (ws, api) = workspace(&env, "Acme").await;
    let c = api.post(CONTACTS, json!({"domain": "blog.com", "email": "gone@blog.com"})).await.ok(201).clone();
    let keep = api.post(CONTACTS, json!({"domain": "blog.com", "email": "keep@blog.com"})).await.ok(201).clone();
    let path = contact_path(&id_of(&c));
    // Read-only keys cannot delete.
    let reader = env.agency().with_key(&env.agency().create_key(&ws, Some(&["crm:read"])).await);
    reader.delete(&path).await.problem(403, "insufficient_scope");

    let r = api.delete(&path).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert!(r.text.is_empty());
    api.get(&path).await.problem(404, "contact_not_found");
    api.delete(&path).await.problem(404, "contact_not_found");
    api.patch(&path, json!({"notes": "x"})).await.problem(404, "contact_not_found");
    api.delete(&contact_path("nope")).await.problem(400, "invalid_request");
    // Gone from every list, and its email is free again.
    let acct = c["accountId"].as_str().unwrap();
    assert_eq!(ids(api.get(&format!("{CONTACTS}?accountId={acct}")).await.ok(200)), vec![id_of(&keep)]);
    assert_eq!(ids(api.get(CONTACTS).await.ok(200)), vec![id_of(&keep)]);
    assert_eq!(api.get(&format!("{CONTACTS}?email=gone@blog.com")).await.ok(200)["data"], json!([]));
    api.post(CONTACTS, json!({"domain": "blog.com", "email": "gone@blog.com"})).await.ok(201);
    // The other contact is untouched.
    assert_eq!(api.get(&contact_path(&id_of(&keep))).await.ok(200), &keep);
});

on_both_backends!(delete_refuses_a_contact_another_workspaces_events_reference, |env| {
    let (_, a) = workspace(&env, "Acme").await;
    let (ws_b, b) = workspace(&env, "Globex").await;
    let marina = a.post(CONTACTS, json!({"domain": "blog.com", "email": "marina@blog.com"})).await.ok(201).clone();
    let ola = a.post(CONTACTS, json!({"domain": "blog.com", "email": "ola@blog.com"})).await.ok(201).clone();
    // Each workspace's relationship with the account, and an event that names a contact.
    let note = |api: Api, contact: String| async move {
        let rel = api.post("/v1/link-building/crm/relationship", json!({"domain": "blog.com"})).await;
        let rel = id_of(rel.ok(201));
        let body =
            json!({"relationshipId": rel, "type": "NOTE_ADDED", "content": "spoke to them", "contactId": contact});
        api.post("/v1/link-building/crm/event", body).await.ok(201);
    };
    note(b.clone(), id_of(&marina)).await;
    note(a.clone(), id_of(&ola)).await;

    // Globex's history names Marina: Acme may not delete her, and learns only how many others.
    let r = a.delete(&contact_path(&id_of(&marina))).await;
    assert_eq!(r.problem(409, "contact_in_use")["details"], json!({"workspaces": 1}));
    assert!(!r.text.contains(&ws_b), "another workspace's id is not disclosed: {}", r.text);
    let still = a.get(&contact_path(&id_of(&marina))).await;
    assert_eq!(still.ok(200), &marina, "the reference is not a visible change");
    assert_eq!(still.header("etag"), Some("\"1\""));
    assert_eq!(ids(a.get(&format!("{CONTACTS}?email=marina@blog.com")).await.ok(200)), vec![id_of(&marina)]);

    // Our own events do not hold a contact back.
    a.delete(&contact_path(&id_of(&ola))).await.ok(204);
    a.get(&contact_path(&id_of(&ola))).await.problem(404, "contact_not_found");
    // Nor do Globex's own hold it back from Globex, since nobody else references Marina.
    b.delete(&contact_path(&id_of(&marina))).await.ok(204);
    a.get(&contact_path(&id_of(&marina))).await.problem(404, "contact_not_found");
});

/// Every change to a contact is published from the outbox, in the workspace that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_changes_are_published() {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = got.clone();
    let sink = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move { keep.lock().unwrap().push(serde_json::from_str(&body).unwrap()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sink).await.unwrap() });
    let env = Env::start_with(Backend::Embedded, &[("LINKCRM_EVENT_SINK_URL", url.as_str())]).await;

    let (ws, api) = workspace(&env, "Acme").await;
    let c = api.post(CONTACTS, json!({"domain": "blog.com", "email": "m@blog.com"})).await.ok(201).clone();
    let path = contact_path(&id_of(&c));
    api.patch(&path, json!({"notes": "Prefers Mondays"})).await.ok(200);
    api.delete(&path).await.ok(204);

    let arrival = |t: &'static str| {
        let got = got.clone();
        let id = id_of(&c);
        async move {
            for _ in 0..1500 {
                if let Some(e) = got.lock().unwrap().iter().find(|e| e["type"] == t && e["data"]["id"] == id.as_str()) {
                    return e.clone();
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("no {t} event arrived");
        }
    };
    let created = arrival("link_building.contact.created").await;
    assert_eq!(created["workspaceId"], ws.as_str());
    assert_eq!(created["data"], c);
    let updated = arrival("link_building.contact.updated").await;
    assert_eq!(updated["data"]["notes"], "Prefers Mondays");
    let deleted = arrival("link_building.contact.deleted").await;
    assert_eq!(deleted["workspaceId"], ws.as_str());
    assert_eq!(deleted["data"]["email"], "m@blog.com");
}

#[tokio::test]
async fn openapi_documents_the_contact_endpoints() {
    let env = Env::start(Backend::Embedded).await;
    let doc = env.anonymous().get("/openapi.json").await;
    let doc = doc.ok(200);
    let expected = [
        ("get", CONTACTS, "link_building.crm.contact.list"),
        ("post", CONTACTS, "link_building.crm.contact.create"),
        ("get", "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.get"),
        ("patch", "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.update"),
        ("delete", "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.delete"),
    ];
    for (method, path, name) in expected {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], name, "{method} {path}");
    }
    let params = doc["paths"][CONTACTS]["get"]["parameters"].as_array().unwrap();
    for p in ["accountId", "email", "limit", "cursor"] {
        assert!(params.iter().any(|x| x["name"] == p && x["in"] == "query"), "{p}");
    }
    // The PATCH body offers the contact's fields, not the account it cannot move to.
    let body_ref = doc["paths"]["/v1/link-building/crm/contact/{id}"]["patch"]["requestBody"]["content"]
        ["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    let schema = &doc["components"]["schemas"][body_ref.rsplit('/').next().unwrap()];
    assert!(schema["properties"]["email"].is_object());
    assert!(schema["properties"].get("accountId").is_none());
    assert!(schema["properties"].get("domain").is_none());
}
