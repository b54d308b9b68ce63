//! CRM accounts as each workspace reads them: the shared list (relationship attached, rating /
//! domain / prefix / status filters, paging across shards) and the detail with shared contacts and
//! this workspace's events only. Changes (prices, DO_NOT_CONTACT) are in crm_account_changes.rs.

mod common;
use common::{Api, Env};
use serde_json::{json, Value};

const ACCOUNTS: &str = "/v1/link-building/crm/account";

/// Starts a relationship in the workspace `api` acts in; a new domain creates its account.
/// Returns (relationship id, account id).
async fn relate(api: &Api, domain: &str) -> (String, String) {
    let r = api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await;
    let b = r.ok(201);
    (b["id"].as_str().unwrap().to_owned(), b["accountId"].as_str().unwrap().to_owned())
}

async fn record(api: &Api, rel: &str, r#type: &str) -> Value {
    let r = api.post("/v1/link-building/crm/event", json!({ "relationshipId": rel, "type": r#type })).await;
    r.ok(201).clone()
}

/// Gives domains ratings (and traffic) through the operator CLI, which needs the embedded store
/// to itself: stop the server, run it, start the server again.
fn set_metrics(env: &mut Env, ratings: &[(&str, i64, i64)]) {
    tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        for (domain, dr, traffic) in ratings {
            let (rating, traffic_text) = (dr.to_string(), traffic.to_string());
            let args = [
                "account",
                "set-metrics",
                "--domain",
                domain,
                "--domain-rating",
                &rating,
                "--organic-traffic",
                &traffic_text,
            ];
            let out = common::cli(&env.opts, &args);
            let printed: Value = serde_json::from_str(out.trim()).expect("the CLI prints the account");
            assert_eq!(printed["domainRating"], *dr);
            assert_eq!(printed["organicTraffic"], *traffic);
        }
        env.restart();
    });
}

fn domains(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|a| a["domain"].as_str().unwrap().to_owned()).collect()
}

async fn history_types(api: &Api, acct: &str) -> Vec<String> {
    let r = api.get(&format!("{ACCOUNTS}/{acct}/history")).await;
    r.ok(200)["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

on_both_backends!(unfiltered_list_pages_across_shards_with_total, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let a = agency.in_workspace(&ws);
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(relate(&a, &format!("https://www.site{i}.example.com/some/post")).await.1);
    }
    // Unrated accounts tie on rating; within it, newest account first. Pages of 2, each a merge
    // of the four shards: nothing skipped, nothing repeated.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{ACCOUNTS}?limit=2&cursor={c}"),
            None => format!("{ACCOUNTS}?limit=2"),
        };
        let page = a.get(&path).await;
        let body = page.ok(200);
        assert_eq!(body["total"], 9, "the maintained counter, on every page");
        assert!(body["data"].as_array().unwrap().len() <= 2);
        seen.extend(body["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()));
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    // One domain, normalised like stored ones; with its relationship attached.
    let one = a.get(&format!("{ACCOUNTS}?domain=HTTPS://site3.example.com/x")).await;
    let body = one.ok(200);
    assert_eq!(domains(body), vec!["site3.example.com"]);
    assert!(body.get("total").is_none(), "filtered lists carry no total");
    assert_eq!(body["nextCursor"], Value::Null);
    assert!(body["data"][0]["relationshipInThisWorkspace"]["id"].as_str().unwrap().starts_with("rel_"));
    assert_eq!(a.get(&format!("{ACCOUNTS}?domain=unknown.example.org")).await.ok(200)["data"], json!([]));

    // Argument errors.
    a.get(&format!("{ACCOUNTS}?domain=not%20a%20domain")).await.problem(400, "invalid_domain");
    // Filters combine: a domain that does not start with the prefix, or an empty rating range,
    // simply finds nothing.
    assert_eq!(a.get(&format!("{ACCOUNTS}?domain=a.com&domainContains=b")).await.ok(200)["data"], json!([]));
    assert_eq!(a.get(&format!("{ACCOUNTS}?minDR=50&maxDR=40")).await.ok(200)["data"], json!([]));
    a.get(&format!("{ACCOUNTS}?status=NEVER_CONTACTED,SLEEPING")).await.problem(400, "invalid_request");
    a.get(&format!("{ACCOUNTS}?minDR=101")).await.problem(400, "invalid_request");
    a.get(&format!("{ACCOUNTS}?hasRelationship=maybe")).await.problem(400, "invalid_request");
    a.get(&format!("{ACCOUNTS}?limit=201")).await.problem(400, "invalid_request");
    a.get(&format!("{ACCOUNTS}?cursor=forged")).await.problem(400, "invalid_cursor");
    a.get(&format!("{ACCOUNTS}?sort=domain")).await.problem(400, "invalid_request");
    // A cursor of the rating list is not one of a prefix list.
    let c = a.get(&format!("{ACCOUNTS}?limit=2")).await.ok(200)["nextCursor"].as_str().unwrap().to_owned();
    a.get(&format!("{ACCOUNTS}?domainContains=site&cursor={c}")).await.problem(400, "invalid_cursor");
});

on_both_backends!(domain_contains_is_a_prefix_match_in_domain_order, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let a = agency.in_workspace(&ws);
    for d in ["alpha-two.com", "beta-alpha.com", "alpha-one.com", "alphabet.io", "gamma.com"] {
        relate(&a, d).await;
    }
    let r = a.get(&format!("{ACCOUNTS}?domainContains=www.ALPHA")).await;
    assert_eq!(domains(r.ok(200)), vec!["alpha-one.com", "alpha-two.com", "alphabet.io"], "not beta-alpha.com");
    // Paged: one at a time, continued by the cursor.
    let mut seen = Vec::new();
    let mut path = format!("{ACCOUNTS}?domainContains=alpha-&limit=1");
    loop {
        let body = a.get(&path).await.ok(200).clone();
        seen.extend(domains(&body));
        match body["nextCursor"].as_str() {
            Some(c) => path = format!("{ACCOUNTS}?domainContains=alpha-&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["alpha-one.com", "alpha-two.com"]);
    a.get(&format!("{ACCOUNTS}?domainContains=al%20pha")).await.problem(400, "invalid_request");
});

on_both_backends!(ratings_filter_and_the_seed_example_request, |env| {
    let agency = env.agency();
    let ws = agency.create_workspace("Acme").await;
    let a = agency.in_workspace(&ws);
    let (_, top) = relate(&a, "top.example.com").await;
    let (talk_rel, talk) = relate(&a, "talking.example.com").await;
    relate(&a, "mid.example.com").await;
    relate(&a, "low.example.com").await;
    relate(&a, "unrated.example.com").await;
    let (_, priced) = relate(&a, "priced.example.com").await;
    set_metrics(
        &mut env,
        &[
            ("top.example.com", 70, 90_000),
            ("talking.example.com", 62, 48_500),
            ("priced.example.com", 80, 1_000),
            ("mid.example.com", 45, 5_000),
            ("low.example.com", 30, 100),
        ],
    );
    let a = env.agency().in_workspace(&ws);
    let all = a.get(ACCOUNTS).await;
    assert_eq!(
        domains(all.ok(200)),
        vec![
            "priced.example.com",
            "top.example.com",
            "talking.example.com",
            "mid.example.com",
            "low.example.com",
            "unrated.example.com"
        ],
        "highest rating first, unrated last"
    );
    assert_eq!(
        domains(a.get(&format!("{ACCOUNTS}?minDR=45&maxDR=70")).await.ok(200)),
        vec!["top.example.com", "talking.example.com", "mid.example.com"]
    );
    assert_eq!(
        domains(a.get(&format!("{ACCOUNTS}?maxDR=45")).await.ok(200)),
        vec!["mid.example.com", "low.example.com"],
        "a rating bound keeps only rated accounts"
    );
    // Paging a rating range across shards.
    let first = a.get(&format!("{ACCOUNTS}?minDR=40&limit=2")).await.ok(200).clone();
    let c = first["nextCursor"].as_str().unwrap();
    let second = a.get(&format!("{ACCOUNTS}?minDR=40&limit=2&cursor={c}")).await.ok(200).clone();
    let mut both = domains(&first);
    both.extend(domains(&second));
    assert_eq!(both, vec!["priced.example.com", "top.example.com", "talking.example.com", "mid.example.com"]);
    // A prefix list filtered by rating.
    assert_eq!(domains(a.get(&format!("{ACCOUNTS}?domainContains=t&minDR=65")).await.ok(200)), vec!["top.example.com"]);
    // Metrics changes are in the shared log.
    assert_eq!(history_types(&a, &top).await, vec!["METRICS_REFRESHED"]);

    // Seed 000's example: minDR=40, NEVER_CONTACTED or IN_DISCUSSION.
    record(&a, &talk_rel, "EMAIL_SENT").await;
    record(&a, &talk_rel, "EMAIL_RECEIVED").await;
    a.patch(&format!("{ACCOUNTS}/{priced}"), json!({ "priceLinkInsertion": 350, "priceGuestPost": 900 })).await.ok(200);
    let r = a.get(&format!("{ACCOUNTS}?minDR=40&status=NEVER_CONTACTED,IN_DISCUSSION&limit=50")).await;
    let body = r.ok(200);
    assert_eq!(domains(body), vec!["top.example.com", "talking.example.com", "mid.example.com"]);
    let item = &body["data"][1];
    assert_eq!(item["id"], talk.as_str());
    for field in [
        "id",
        "domain",
        "name",
        "source",
        "systemContactStatus",
        "priceLinkInsertion",
        "priceGuestPost",
        "domainRating",
        "organicTraffic",
    ] {
        assert!(item.get(field).is_some(), "{field} missing from {item}");
    }
    assert_eq!(item["systemContactStatus"], "IN_DISCUSSION");
    assert_eq!(item["domainRating"], 62);
    assert_eq!(item["organicTraffic"], 48_500);
    let rel = &item["relationshipInThisWorkspace"];
    assert_eq!(rel["id"], talk_rel.as_str());
    assert_eq!(rel["status"], "ACTIVELY_ENGAGED");
    assert!(rel["lastContactedByUsAt"].as_str().is_some());
    let rated = a.get(&format!("{ACCOUNTS}?status=RATE_ESTABLISHED")).await;
    assert_eq!(domains(rated.ok(200)), vec!["priced.example.com"]);
});

on_both_backends!(each_workspace_sees_only_its_own_relationship_and_events, |env| {
    let agency = env.agency();
    let (ws_a, ws_b) = (agency.create_workspace("A").await, agency.create_workspace("B").await);
    let (a, b) = (agency.in_workspace(&ws_a), agency.in_workspace(&ws_b));
    let (rel_a, acct) = relate(&a, "shared-partner.com").await;
    let sent = record(&a, &rel_a, "EMAIL_SENT").await;
    relate(&b, "only-b.com").await;

    // A: the relationship is attached; B: the same account has none.
    let mine = a.get(&format!("{ACCOUNTS}?hasRelationship=true")).await;
    assert_eq!(domains(mine.ok(200)), vec!["shared-partner.com"]);
    let summary = &mine.body["data"][0]["relationshipInThisWorkspace"];
    assert_eq!(summary["id"], rel_a.as_str());
    assert_eq!(summary["status"], "CONTACTED_BY_US");
    assert_eq!(summary["lastContactedByUsAt"], sent["occurredAt"]);
    let theirs = b.get(&format!("{ACCOUNTS}?hasRelationship=false")).await;
    assert_eq!(domains(theirs.ok(200)), vec!["shared-partner.com"]);
    assert_eq!(theirs.body["data"][0]["relationshipInThisWorkspace"], Value::Null);
    assert_eq!(domains(b.get(&format!("{ACCOUNTS}?hasRelationship=true")).await.ok(200)), vec!["only-b.com"]);
    // The shared facts are shared.
    assert_eq!(theirs.body["data"][0]["systemContactStatus"], "CONTACTED");
    assert_eq!(domains(b.get(&format!("{ACCOUNTS}?status=NEVER_CONTACTED")).await.ok(200)), vec!["only-b.com"]);

    // The detail: A sees its event, B sees neither A's relationship nor A's events.
    let got_a = a.get(&format!("{ACCOUNTS}/{acct}")).await;
    let d = got_a.ok(200);
    assert_eq!(got_a.header("etag"), Some("\"1\""));
    assert_eq!(d["domain"], "shared-partner.com");
    assert_eq!(d["contactAttemptCount"], 1);
    assert_eq!(d["relationshipInThisWorkspace"]["id"], rel_a.as_str());
    assert_eq!(d["recentEvents"].as_array().unwrap().len(), 1);
    assert_eq!(d["recentEvents"][0]["id"], sent["id"]);
    assert_eq!(d["contacts"], json!([]));
    let got_b = b.get(&format!("{ACCOUNTS}/{acct}")).await;
    assert_eq!(got_b.ok(200)["relationshipInThisWorkspace"], Value::Null);
    assert_eq!(got_b.body["recentEvents"], json!([]));

    // Contacts are shared like their account: both workspaces see both, oldest first.
    let contact = "/v1/link-building/crm/contact";
    let marina = a
        .post(contact, json!({ "accountId": acct, "firstName": "Marina", "email": "marina@shared-partner.com" }))
        .await;
    let marina = marina.ok(201)["id"].clone();
    let bob =
        b.post(contact, json!({ "accountId": acct, "firstName": "Bob", "email": "bob@shared-partner.com" })).await;
    let bob = bob.ok(201)["id"].clone();
    for api in [&a, &b] {
        let d = api.get(&format!("{ACCOUNTS}/{acct}")).await.ok(200).clone();
        let ids: Vec<&Value> = d["contacts"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
        assert_eq!(ids, vec![&marina, &bob]);
        assert_eq!(d["contacts"][0]["firstName"], "Marina");
        assert_eq!(d["contacts"][0]["accountId"], acct.as_str());
    }
    // A contact at a new domain brings its account into being, with no relationship anywhere.
    a.post(contact, json!({ "domain": "contact-only.com", "email": "ed@contact-only.com" })).await.ok(201);
    let others = a.get(&format!("{ACCOUNTS}?hasRelationship=false")).await;
    assert_eq!(domains(others.ok(200)), vec!["contact-only.com", "only-b.com"]);
    assert!(others.body["data"].as_array().unwrap().iter().all(|x| x["relationshipInThisWorkspace"].is_null()));

    // B starts its own: B sees its own events only, and A's recent send as CONTACTED_BY_OTHER_ORG.
    let (rel_b, _) = relate(&b, "shared-partner.com").await;
    let note = record(&b, &rel_b, "NOTE_ADDED").await;
    let got_b = b.get(&format!("{ACCOUNTS}/{acct}")).await;
    let d = got_b.ok(200);
    assert_eq!(d["relationshipInThisWorkspace"]["id"], rel_b.as_str());
    assert_eq!(d["relationshipInThisWorkspace"]["status"], "CONTACTED_BY_OTHER_ORG");
    let events: Vec<&Value> = d["recentEvents"].as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert_eq!(events, vec![&note["id"]]);
    assert_eq!(a.get(&format!("{ACCOUNTS}/{acct}")).await.ok(200)["recentEvents"].as_array().unwrap().len(), 1);

    // An archived relationship is still the workspace's relationship.
    a.delete(&format!("/v1/link-building/crm/relationship/{rel_a}")).await.ok(204);
    let mine = a.get(&format!("{ACCOUNTS}?hasRelationship=true")).await;
    assert_eq!(domains(mine.ok(200)), vec!["shared-partner.com"]);
    assert_eq!(mine.body["data"][0]["relationshipInThisWorkspace"]["archived"], true);

    a.get(&format!("{ACCOUNTS}/acct_00000000000000000000000000")).await.problem(404, "account_not_found");
    a.get(&format!("{ACCOUNTS}/not-an-id")).await.problem(400, "invalid_request");
    a.get(&format!("{ACCOUNTS}/{rel_a}")).await.problem(400, "invalid_request");
});
