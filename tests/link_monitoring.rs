//! Placed-link monitoring, black-box against the binary on both backends: a web server in this test
//! serves the pages holding the links and the test changes them between checks. Every check goes
//! through the real checker (SSRF guard, robots.txt, redirects, HTML parsing), the state rule, the
//! relationship's events and the webhooks (verified by the independent Standard Webhooks library).

mod common;
use common::{Api, Backend, Env};
use linkcrm_testkit::webhook_receiver::Receiver;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LINKS: &str = "/v1/link-building/links";
const EV: &str = "/v1/link-building/crm/event";
const TARGET: &str = "https://our-site.example/best-tools";

const CONFIRM_MS: i64 = 8000;

/// Checks only when asked (or to confirm a missing link, 8 s after), a fast dispatcher, a 1 s
/// page timeout.
const ENV: &[(&str, &str)] = &[
    ("LINKCRM_LINKCHECK_TICK_SECS", "0.3"),
    ("LINKCRM_LINKCHECK_CONFIRM_SECS", "8"),
    ("LINKCRM_LINKCHECK_INTERVAL_HOURS", "1000"),
    ("LINKCRM_LINKCHECK_TIMEOUT_SECS", "1"),
    ("LINKCRM_LINKCHECK_ROBOTS_TTL_SECS", "0"),
    ("LINKCRM_WEBHOOK_ALLOW_HTTP", "true"),
    ("LINKCRM_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
];

// ---------------------------------------------------------------------------------------------
// The pages.

#[derive(Clone)]
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Page {
    fn html(body: String) -> Page {
        Page {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body,
            delay: Duration::ZERO,
        }
    }
    fn status(status: u16) -> Page {
        Page { status, headers: vec![], body: String::new(), delay: Duration::ZERO }
    }
    fn redirect(to: &str) -> Page {
        Page { status: 302, headers: vec![("location".into(), to.into())], body: String::new(), delay: Duration::ZERO }
    }
    fn header(mut self, k: &str, v: &str) -> Page {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn slow(mut self, d: Duration) -> Page {
        self.delay = d;
        self
    }
}

/// An article with the link as given (`<a ...>anchor</a>`), and whatever else the head needs.
fn article(link: &str, head: &str) -> String {
    format!(
        "<!doctype html><html><head><title>Tools</title>{head}</head><body><article><p>Our picks.</p>\
         <p>Read {link} for more.</p></article></body></html>"
    )
}

fn anchor(rel: Option<&str>, text: &str) -> String {
    match rel {
        Some(r) => format!(r#"<a href="{TARGET}" rel="{r}">{text}</a>"#),
        None => format!(r#"<a href="{TARGET}?utm_source=partner">{text}</a>"#),
    }
}

#[derive(Clone, Default)]
struct Pages {
    pages: Arc<Mutex<HashMap<String, Page>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl Pages {
    fn set(&self, path: &str, page: Page) {
        self.pages.lock().unwrap().insert(path.into(), page);
    }
    fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// Serves `pages` on 127.0.0.1; `robots.txt` is 404 unless set.
async fn serve_pages(pages: Pages) -> String {
    use axum::response::IntoResponse;
    let handler = move |uri: axum::http::Uri| {
        let pages = pages.clone();
        async move {
            let path = uri.path().to_owned();
            *pages.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
            let page = pages.pages.lock().unwrap().get(&path).cloned();
            let Some(p) = page else { return (axum::http::StatusCode::NOT_FOUND, "no such page").into_response() };
            tokio::time::sleep(p.delay).await;
            let mut resp = (axum::http::StatusCode::from_u16(p.status).unwrap(), p.body).into_response();
            for (k, v) in p.headers {
                resp.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    axum::http::HeaderValue::from_str(&v).unwrap(),
                );
            }
            resp
        }
    };
    linkcrm_testkit::http::serve(axum::Router::new().fallback(handler)).await
}

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn relate(api: &Api, domain: &str) -> String {
    api.post("/v1/link-building/crm/relationship", json!({ "domain": domain })).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Records a LINK_PLACED and waits for its monitored link; returns the link.
async fn place(api: &Api, rel: &str, page: &str, anchor_text: Option<&str>) -> Value {
    let mut meta = json!({ "linkUrl": page, "targetUrl": TARGET });
    if let Some(a) = anchor_text {
        meta["anchorText"] = json!(a);
    }
    let e = api.post(EV, json!({ "relationshipId": rel, "type": "LINK_PLACED", "metadata": meta })).await;
    let evt = e.ok(201)["id"].as_str().unwrap().to_owned();
    let id = format!("lnk_{}", evt.strip_prefix("evt_").unwrap());
    wait_link(api, &id, Duration::from_secs(20), |_| true).await
}

/// Polls the link until `pred` holds.
async fn wait_link(api: &Api, id: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = api.get(&format!("{LINKS}/{id}")).await;
        if r.status == 200 && pred(&r.body) {
            return r.body.clone();
        }
        assert!(std::time::Instant::now() < deadline, "link {id} not as expected within {within:?}: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /links/{id}/check`, then the check it made.
async fn check_now(api: &Api, id: &str) -> Value {
    let r = api.post(&format!("{LINKS}/{id}/check"), json!({})).await;
    let inv = r.ok(202)["invocationId"].as_str().unwrap().to_owned();
    let done = api.wait_invocation(&inv, &["SUCCEEDED", "FAILED"], Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    done["result"]["check"].clone()
}

async fn link_events(api: &Api, rel: &str) -> Vec<Value> {
    let r = api.get(&format!("{EV}?relationshipId={rel}&type=LINK_LOST,LINK_RESTORED,LINK_CHANGED&limit=100")).await;
    let mut v = r.ok(200)["data"].as_array().unwrap().clone();
    v.reverse();
    v
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}>{}", e["type"].as_str().unwrap(), e["metadata"]["to"].as_str().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------

async fn checks_states_events_and_webhooks(backend: Backend) {
    let env = Env::start_with(backend, ENV).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Links").await;
    let api = agency.in_workspace(&ws);
    let rx = Receiver::start().expect("webhook receiver");
    let hook = api
        .post(
            "/v1/webhooks",
            json!({ "url": rx.url("/links"),
                    "events": ["link_building.link.lost", "link_building.link.restored", "link_building.link.changed"] }),
        )
        .await
        .ok(201)
        .clone();
    rx.secrets("/links", &[hook["secret"].as_str().unwrap()]).await;

    let pages = Pages::default();
    let base = serve_pages(pages.clone()).await;
    pages.set(
        "/robots.txt",
        Page::html("User-agent: *\nDisallow: /private/\n".into()).header("content-type", "text/plain"),
    );
    pages.set("/tools", Page::html(article(&anchor(None, "best   tools"), "")));
    let rel = relate(&api, "partner-blog.com").await;
    let link = place(&api, &rel, &format!("{base}/tools"), Some("Best Tools")).await;
    let id = link["id"].as_str().unwrap().to_owned();
    assert_eq!(link["expected"], json!({ "targetUrl": TARGET, "anchorText": "Best Tools", "rel": "follow" }));

    // Present: its first (scheduled) check finds it live: a LINK_CHANGED from pending.
    let l = wait_link(&api, &id, Duration::from_secs(20), |l| l["state"] == "live").await;
    assert_eq!(l["lastCheck"]["trigger"], "scheduled", "{l}");
    assert_eq!(l["lastCheck"]["found"]["anchor"], "best tools", "{l}");
    assert!(l["firstSeenAt"].is_string(), "{l}");
    let r = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200).clone();
    assert_eq!((r["status"].as_str(), r["linkStatus"].as_str()), (Some("LINK_PLACED"), Some("live")), "{r}");

    // Turned nofollow, sponsored, ugc: rel_changed, at risk (one LINK_CHANGED).
    for rel_value in ["nofollow", "sponsored noopener", "ugc"] {
        pages.set("/tools", Page::html(article(&anchor(Some(rel_value), "Best Tools"), "")));
        let c = check_now(&api, &id).await;
        assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("rel_changed"), Some("at_risk")), "{c}");
    }
    // The anchor changed (rel back to follow).
    pages.set("/tools", Page::html(article(&anchor(None, "click here"), "")));
    let c = check_now(&api, &id).await;
    assert_eq!(c["result"], "anchor_changed", "{c}");
    // A page-level nofollow counts as nofollow.
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), r#"<meta name="robots" content="nofollow">"#)));
    assert_eq!(check_now(&api, &id).await["result"], "rel_changed");
    // Fixed: live again.
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");
    // Noindex by meta, by header; canonical elsewhere: at risk.
    pages.set(
        "/tools",
        Page::html(article(&anchor(None, "Best Tools"), r#"<meta name="robots" content="noindex, follow">"#)),
    );
    assert_eq!(check_now(&api, &id).await["result"], "noindex");
    pages.set(
        "/tools",
        Page::html(article(&anchor(None, "Best Tools"), "")).header("x-robots-tag", "googlebot: noindex"),
    );
    assert_eq!(check_now(&api, &id).await["result"], "noindex");
    let canonical = format!(r#"<link rel="canonical" href="{base}/tools-v2">"#);
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), &canonical)));
    let c = check_now(&api, &id).await;
    assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("canonicalized"), Some("at_risk")), "{c}");
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");

    // Could not check: 500, 429, 403, a timeout, robots.txt disallowing our checker. Never lost.
    let before = link_events(&api, &rel).await.len();
    for page in [Page::status(500), Page::status(429), Page::status(403)] {
        pages.set("/tools", page);
        let c = check_now(&api, &id).await;
        assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("unreachable"), Some("live")), "{c}");
    }
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")).slow(Duration::from_secs(3)));
    let c = check_now(&api, &id).await;
    assert_eq!(c["result"], "unreachable", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("timed out"), "{c}");
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    pages.set(
        "/robots.txt",
        Page::html("User-agent: linkcrm-linkcheck\nDisallow: /tools\n".into()).header("content-type", "text/plain"),
    );
    let hits = pages.hits("/tools");
    let c = check_now(&api, &id).await;
    assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("unreachable"), Some("live")), "{c}");
    assert!(c["detail"].as_str().unwrap().contains("robots.txt"), "{c}");
    assert_eq!(pages.hits("/tools"), hits, "a page disallowed to us is not fetched");
    assert_eq!(link_events(&api, &rel).await.len(), before, "unreachable writes no event");
    // Disallowed to Googlebot only: the link is there, search engines do not count it.
    pages.set(
        "/robots.txt",
        Page::html("User-agent: Googlebot\nDisallow: /tools\n".into()).header("content-type", "text/plain"),
    );
    assert_eq!(check_now(&api, &id).await["result"], "noindex");
    // (robots.txt is read again on every check here: its TTL is 0.) A 404 allows everything.
    pages.set("/robots.txt", Page::status(404));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");

    // Removed (only a script inserts it): missing, still live until the confirming re-check an
    // hour (here 8 s) later, which the schedule makes by itself.
    let js = format!(
        r#"<div id="x"></div><script>document.getElementById("x").innerHTML = '<a href="{TARGET}">Best Tools</a>';</script>"#
    );
    pages.set("/tools", Page::html(article("our friends", &js)));
    let c = check_now(&api, &id).await;
    assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("missing"), Some("live")), "{c}");
    // A check on demand within the confirmation time does not confirm (on a loaded machine the
    // second check may come later than that: then it is the confirmation).
    let soon = check_now(&api, &id).await;
    let at = |c: &Value| chrono::DateTime::parse_from_rfc3339(c["checkedAt"].as_str().unwrap()).unwrap();
    let gap = (at(&soon) - at(&c)).num_milliseconds();
    let confirmed_by = if gap < CONFIRM_MS {
        assert_eq!(
            (soon["result"].as_str(), soon["stateAfter"].as_str()),
            (Some("missing"), Some("live")),
            "too soon: {soon}"
        );
        "confirm"
    } else {
        assert_eq!(soon["stateAfter"], "lost", "{gap} ms after the first: {soon}");
        "on_demand"
    };
    let l = wait_link(&api, &id, Duration::from_secs(30), |l| l["state"] == "lost").await;
    assert_eq!(
        (l["lastCheck"]["trigger"].as_str(), l["lastResult"].as_str()),
        (Some(confirmed_by), Some("missing")),
        "{l}"
    );
    let r = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200).clone();
    assert_eq!((r["status"].as_str(), r["linkStatus"].as_str()), (Some("LINK_PLACED"), Some("lost")), "{r}");
    // Back: restored.
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");

    // 404, then 410 on the confirming check: lost; back again.
    pages.set("/tools", Page::status(404));
    let c = check_now(&api, &id).await;
    assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("page_gone"), Some("live")), "{c}");
    pages.set("/tools", Page::status(410));
    let l = wait_link(&api, &id, Duration::from_secs(30), |l| l["state"] == "lost").await;
    assert_eq!(l["lastResult"], "page_gone", "{l}");
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");

    // A redirect chain to a page without the link.
    pages.set("/tools", Page::redirect("/r1"));
    pages.set("/r1", Page::redirect(&format!("{base}/r2")));
    pages.set("/r2", Page::redirect("/moved"));
    pages.set("/moved", Page::html(article("nothing here", "")));
    let c = check_now(&api, &id).await;
    assert_eq!(c["result"], "redirected", "{c}");
    assert_eq!(c["redirects"].as_array().map(Vec::len), Some(3), "{c}");
    assert!(c["finalUrl"].as_str().unwrap().ends_with("/moved"), "{c}");
    // Confirmed by the schedule: lost; back: restored.
    let l = wait_link(&api, &id, Duration::from_secs(30), |l| l["state"] == "lost").await;
    assert_eq!(l["lastResult"], "redirected", "{l}");
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    assert_eq!(check_now(&api, &id).await["stateAfter"], "live");

    // The relationship's events: every state change, once, in order.
    let events = link_events(&api, &rel).await;
    assert_eq!(
        kinds(&events),
        [
            "LINK_CHANGED>live",
            "LINK_CHANGED>at_risk",
            "LINK_CHANGED>live",
            "LINK_CHANGED>at_risk",
            "LINK_CHANGED>live",
            "LINK_CHANGED>at_risk",
            "LINK_CHANGED>live",
            "LINK_LOST>lost",
            "LINK_RESTORED>live",
            "LINK_LOST>lost",
            "LINK_RESTORED>live",
            "LINK_LOST>lost",
            "LINK_RESTORED>live",
        ]
    );
    for e in &events {
        assert_eq!(e["metadata"]["linkId"], id.as_str(), "{e}");
    }
    // The checks: newest first, each with what it found.
    let checks = api.get(&format!("{LINKS}/{id}/checks?limit=200")).await.ok(200).clone();
    let checks = checks["data"].as_array().unwrap();
    assert_eq!(checks[0]["result"], "live");
    assert_eq!(checks[1]["result"], "redirected");
    assert!(checks.iter().all(|c| c["id"].as_str().unwrap().starts_with("lchk_") && c["billed"] == "free"));
    let with_events = checks.iter().filter(|c| c["eventId"].is_string()).count();
    assert_eq!(with_events, events.len(), "one event per state change");

    // The webhooks: one delivery per event, verified, the same ids.
    let got = rx
        .wait_for("/links", Duration::from_secs(30), |got| {
            got.iter().filter(|r| r.answered == 200).count() >= events.len()
        })
        .await;
    assert!(got.iter().all(|r| r.verified), "{got:#?}");
    let mut types: Vec<String> = got.iter().map(|r| r.body["type"].as_str().unwrap().to_owned()).collect();
    types.sort();
    let mut want: Vec<String> = events
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "LINK_LOST" => "link_building.link.lost".to_owned(),
            "LINK_RESTORED" => "link_building.link.restored".to_owned(),
            _ => "link_building.link.changed".to_owned(),
        })
        .collect();
    want.sort();
    assert_eq!(types, want);
    let mut event_ids: Vec<&str> = got.iter().map(|r| r.body["data"]["eventId"].as_str().unwrap()).collect();
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(event_ids.len(), events.len(), "no event delivered as two");
    let lost = got.iter().find(|r| r.body["type"] == "link_building.link.lost").unwrap();
    assert_eq!(
        (lost.body["data"]["state"].as_str(), lost.body["data"]["previous"]["state"].as_str()),
        (Some("lost"), Some("live"))
    );
    assert_eq!(lost.body["data"]["linkId"], id.as_str());

    // A link never seen live stays pending, whatever its page says.
    let rel2 = relate(&api, "never-live.com").await;
    let never = place(&api, &rel2, &format!("{base}/gone"), None).await;
    let nid = never["id"].as_str().unwrap().to_owned();
    let n = wait_link(&api, &nid, Duration::from_secs(20), |l| l["lastResult"] == "page_gone").await;
    assert_eq!(n["state"], "pending", "{n}");
    tokio::time::sleep(Duration::from_millis(8500)).await;
    let c = check_now(&api, &nid).await;
    assert_eq!((c["result"].as_str(), c["stateAfter"].as_str()), (Some("page_gone"), Some("pending")), "{c}");
    let pending = api.get(&format!("{LINKS}?state=pending")).await.ok(200).clone();
    assert_eq!(
        pending["data"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect::<Vec<_>>(),
        [nid.as_str()]
    );
    assert!(link_events(&api, &rel2).await.is_empty());

    // Lists and the summary.
    let all = api.get(LINKS).await.ok(200).clone();
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2), "{all}");
    let by_rel = api.get(&format!("{LINKS}?relationshipId={rel}")).await.ok(200).clone();
    assert_eq!(by_rel["data"][0]["id"], id.as_str());
    let page1 = api.get(&format!("{LINKS}?limit=1")).await.ok(200).clone();
    let next = page1["nextCursor"].as_str().expect("a second page");
    let page2 = api.get(&format!("{LINKS}?limit=1&cursor={next}")).await.ok(200).clone();
    assert_ne!(page1["data"][0]["id"], page2["data"][0]["id"]);
    let later = api.get(&format!("{LINKS}?checkedBefore=2020-01-01")).await.ok(200).clone();
    assert_eq!(later["data"].as_array().map(Vec::len), Some(0), "{later}");
    let s = api.get(&format!("{LINKS}/summary")).await.ok(200).clone();
    assert_eq!(
        s["counts"],
        json!({ "pending": 1, "live": 1, "at_risk": 0, "lost": 0, "unknown": 0, "total": 2 }),
        "{s}"
    );
    assert_eq!(s["changes"], json!({ "lost": 3, "restored": 3, "changed": 7, "unknown": 0 }), "{s}");
    let empty = api.get(&format!("{LINKS}/summary?since=2020-01-01&until=2020-02-01")).await.ok(200).clone();
    assert_eq!(empty["changes"], json!({ "lost": 0, "restored": 0, "changed": 0, "unknown": 0 }), "{empty}");
    let reversed = api.get(&format!("{LINKS}/summary?since=2026-12-01&until=2020-01-01")).await.ok(200).clone();
    assert_eq!(reversed["changes"], json!({ "lost": 0, "restored": 0, "changed": 0, "unknown": 0 }), "{reversed}");
    assert_eq!(reversed["counts"]["total"], 2, "{reversed}");

    // A correction: the agreed rel is sponsored now; the next check judges against it.
    pages.set("/tools", Page::html(article(&anchor(Some("sponsored"), "Best Tools"), "")));
    let patched =
        api.patch(&format!("{LINKS}/{id}"), json!({ "rel": "sponsored", "anchorText": null })).await.ok(200).clone();
    assert_eq!(patched["expected"], json!({ "targetUrl": TARGET, "anchorText": null, "rel": "sponsored" }));
    assert_eq!(check_now(&api, &id).await["result"], "live");
    api.patch(&format!("{LINKS}/{id}"), json!({ "rel": "dofollow" })).await.problem(400, "invalid_request");

    // Private: another workspace sees none of it; the agency key lists across its workspaces.
    let other_ws = agency.create_workspace("Other").await;
    let other = agency.in_workspace(&other_ws);
    other.get(&format!("{LINKS}/{id}")).await.problem(404, "link_not_found");
    other.post(&format!("{LINKS}/{id}/check"), json!({})).await.problem(404, "link_not_found");
    other.get(&format!("{LINKS}/{id}/checks")).await.problem(404, "link_not_found");
    assert_eq!(other.get(LINKS).await.ok(200)["data"].as_array().map(Vec::len), Some(0));
    let across = agency.get(LINKS).await.ok(200).clone();
    assert_eq!(across["data"].as_array().map(Vec::len), Some(2), "{across}");
    assert_eq!(env.other_agency().get(LINKS).await.ok(200)["data"].as_array().map(Vec::len), Some(0));
    api.get(&format!("{LINKS}/lnk_nope")).await.problem(400, "invalid_request");

    // Replay agrees with every stored linkStatus.
    drop(env);
}

each_backend!(checks_states_events_and_webhooks_, checks_states_events_and_webhooks);

// ---------------------------------------------------------------------------------------------

/// The SSRF guard on (as deployed), two free checks a month, scheduled checks every ~2 s.
const STRICT: &[(&str, &str)] = &[
    ("LINKCRM_ALLOW_PRIVATE_TARGETS", "false"),
    ("LINKCRM_LINKCHECK_FREE_PER_MONTH", "2"),
    ("LINKCRM_LINKCHECK_INTERVAL_HOURS", "0.0006"),
    ("LINKCRM_LINKCHECK_TICK_SECS", "0.3"),
];

async fn the_guard_the_allowance_and_credits(backend: Backend) {
    let env = Env::start_with(backend, STRICT).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Strict").await;
    let api = agency.in_workspace(&ws);
    let pages = Pages::default();
    let base = serve_pages(pages.clone()).await;
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    let rel = relate(&api, "internal-blog.com").await;
    let link = place(&api, &rel, &format!("{base}/tools"), None).await;
    let id = link["id"].as_str().unwrap().to_owned();

    // An internal address: refused by the guard before any connection; could not check, pending.
    let l = wait_link(&api, &id, Duration::from_secs(20), |l| l["lastResult"].is_string()).await;
    assert_eq!((l["lastResult"].as_str(), l["state"].as_str()), (Some("unreachable"), Some("pending")), "{l}");
    let detail = l["lastCheck"]["detail"].as_str().unwrap();
    assert!(!detail.contains("127.0.0.1"), "the tenant is not told what the name resolved to: {detail}");
    assert_eq!(pages.hits("/tools") + pages.hits("/robots.txt"), 0, "nothing was fetched");

    // The month's two free checks are used (the first scheduled, one on demand, or two scheduled);
    // then with no credits a check on demand is 402 and scheduled checks pause.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = api.post(&format!("{LINKS}/{id}/check"), json!({})).await;
        if r.status == 402 {
            assert_eq!(r.body["code"], "insufficient_credits", "{}", r.body);
            break;
        }
        assert!(r.status == 202 || r.status == 409, "{}: {}", r.status, r.body);
        assert!(std::time::Instant::now() < deadline, "the allowance never ran out");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let l = wait_link(&api, &id, Duration::from_secs(20), |l| l["checksPausedAt"].is_string()).await;
    assert_eq!(l["state"], "pending", "nothing is marked lost or changed while paused: {l}");
    let checks = api.get(&format!("{LINKS}/{id}/checks?limit=200")).await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(checks.len(), 2, "two free checks, no more: {checks:#?}");
    assert!(checks.iter().all(|c| c["billed"] == "free"));
    let s = api.get(&format!("{LINKS}/summary")).await.ok(200).clone();
    assert_eq!(s["checksThisMonth"]["used"], 2, "{s}");

    // Credits added: checks resume, each billed 0.05 credits exactly once.
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": 1 })).await.ok(201);
    let r = api.post(&format!("{LINKS}/{id}/check"), json!({})).await.ok(202).clone();
    assert_eq!(r["billed"], "credits", "{r}");
    let inv = r["invocationId"].as_str().unwrap();
    api.wait_invocation(inv, &["SUCCEEDED"], Duration::from_secs(30)).await;
    let l = wait_link(&api, &id, Duration::from_secs(30), |l| l["checksPausedAt"].is_null()).await;
    assert_eq!(l["state"], "pending", "{l}");
    // Let a few scheduled checks run, then count what they cost.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let checks = api.get(&format!("{LINKS}/{id}/checks?limit=200")).await.ok(200)["data"].as_array().unwrap().clone();
    let paid = checks.iter().filter(|c| c["billed"] == "credits").count();
    assert!(paid >= 2, "scheduled checks resumed: {checks:#?}");
    // Read the balance after the checks counted (one may commit in between: count again).
    let (paid, remaining) = loop {
        let before =
            api.get(&format!("{LINKS}/{id}/checks?limit=200")).await.ok(200)["data"].as_array().unwrap().clone();
        let u = agency.get(&format!("/v1/workspaces/{ws}/usage")).await.ok(200).clone();
        let after =
            api.get(&format!("{LINKS}/{id}/checks?limit=200")).await.ok(200)["data"].as_array().unwrap().clone();
        if before.len() == after.len() {
            break (after.iter().filter(|c| c["billed"] == "credits").count(), u["creditsRemaining"].as_f64().unwrap());
        }
    };
    assert!((remaining - (1.0 - 0.05 * paid as f64)).abs() < 1e-9, "{paid} paid checks, {remaining} credits left");
}

each_backend!(the_guard_the_allowance_and_credits_, the_guard_the_allowance_and_credits);

// ---------------------------------------------------------------------------------------------

/// Scheduled checks about every second; 3 s of nothing but `unreachable` make a link `unknown`.
const FLAKY: &[(&str, &str)] = &[
    ("LINKCRM_LINKCHECK_INTERVAL_HOURS", "0.0003"),
    ("LINKCRM_LINKCHECK_TICK_SECS", "0.3"),
    ("LINKCRM_LINKCHECK_UNKNOWN_AFTER_SECS", "3"),
];

async fn unreachable_for_long_is_unknown(backend: Backend) {
    let env = Env::start_with(backend, FLAKY).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Flaky").await;
    let api = agency.in_workspace(&ws);
    let pages = Pages::default();
    let base = serve_pages(pages.clone()).await;
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    let rel = relate(&api, "flaky-blog.com").await;
    let id = place(&api, &rel, &format!("{base}/tools"), None).await["id"].as_str().unwrap().to_owned();
    wait_link(&api, &id, Duration::from_secs(20), |l| l["state"] == "live").await;
    // The server fails from now on: unreachable, still live, then unknown (no event).
    pages.set("/tools", Page::status(503));
    let l = wait_link(&api, &id, Duration::from_secs(30), |l| l["state"] == "unknown").await;
    assert!(l["unreachableSince"].is_string(), "{l}");
    let s = api.get(&format!("{LINKS}/summary")).await.ok(200).clone();
    assert_eq!((s["counts"]["unknown"].as_i64(), s["changes"]["unknown"].as_i64()), (Some(1), Some(1)), "{s}");
    // Back: live again, judged against the state before unknown (live), so no event either.
    pages.set("/tools", Page::html(article(&anchor(None, "Best Tools"), "")));
    wait_link(&api, &id, Duration::from_secs(20), |l| l["state"] == "live").await;
    assert_eq!(kinds(&link_events(&api, &rel).await), ["LINK_CHANGED>live"]);
}

each_backend!(unreachable_for_long_is_unknown_, unreachable_for_long_is_unknown);

// ---------------------------------------------------------------------------------------------

/// No link-check worker at first (`LINKCRM_LINKCHECK_JOBS=0`): the links are made by the backfill.
const BATCH: &[(&str, &str)] = &[
    ("LINKCRM_LINKCHECK_JOBS", "0"),
    ("LINKCRM_LINKCHECK_TICK_SECS", "0.3"),
    ("LINKCRM_LINKCHECK_INTERVAL_HOURS", "1000"),
    ("LINKCRM_JOB_VISIBILITY_SECS", "3"),
];

async fn backfill_and_a_killed_checker(backend: Backend) {
    let mut env = Env::start_with(backend, BATCH).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Batch").await;
    let api = agency.in_workspace(&ws);
    let pages = Pages::default();
    let base = serve_pages(pages.clone()).await;
    // One host, one request at a time, each page 700 ms: the batch takes a while.
    pages.set("/post", Page::html(article(&anchor(None, "Best Tools"), "")).slow(Duration::from_millis(700)));
    let mut rels = Vec::new();
    for i in 0..10 {
        let rel = relate(&api, &format!("batch-{i}.com")).await;
        let meta = json!({ "linkUrl": format!("{base}/post?i={i}"), "targetUrl": TARGET });
        api.post(EV, json!({ "relationshipId": rel, "type": "LINK_PLACED", "metadata": meta })).await.ok(201);
        rels.push(rel);
    }
    // Nobody runs the link jobs here: no link yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.get(LINKS).await.ok(200)["data"].as_array().map(Vec::len), Some(0));

    // The backfill makes them (and a second one finds them made).
    let (first, second) = tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        let first = common::cli(&env.opts, &["links", "backfill", "--spread-hours", "0"]);
        let second = common::cli(&env.opts, &["links", "backfill", "--spread-hours", "0"]);
        (first, second)
    });
    let first: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let second: Value = serde_json::from_str(&second).unwrap_or_else(|e| panic!("{e}: {second}"));
    assert_eq!((first["linkPlacedEvents"].as_i64(), first["started"].as_i64()), (Some(10), Some(10)), "{first}");
    assert_eq!((second["started"].as_i64(), second["alreadyMonitored"].as_i64()), (Some(0), Some(10)), "{second}");

    // The checker runs now (the queued track jobs find their links made), and is killed mid-batch.
    env.opts.env.push(("LINKCRM_LINKCHECK_JOBS".into(), "64".into()));
    env.restart();
    let api = env.agency().in_workspace(&ws);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let live = api.get(&format!("{LINKS}?state=live")).await.ok(200)["data"].as_array().map(Vec::len).unwrap_or(0);
        if live >= 3 {
            assert!(live < 10, "the batch finished before the kill");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no check finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.server.kill_hard();
    env.restart();
    let api = env.agency().in_workspace(&ws);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = api.get(&format!("{LINKS}?state=live")).await.ok(200)["data"].as_array().map(Vec::len).unwrap_or(0);
        if live == 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{live} of 10 links live after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // No check lost, none written, billed or recorded twice.
    let links = api.get(LINKS).await.ok(200)["data"].as_array().unwrap().clone();
    for l in &links {
        let id = l["id"].as_str().unwrap();
        let checks = api.get(&format!("{LINKS}/{id}/checks")).await.ok(200)["data"].as_array().unwrap().clone();
        assert_eq!(checks.len(), 1, "{id}: {checks:#?}");
    }
    for rel in &rels {
        assert_eq!(kinds(&link_events(&api, rel).await), ["LINK_CHANGED>live"], "{rel}");
        let r = api.get(&format!("/v1/link-building/crm/relationship/{rel}")).await.ok(200).clone();
        assert_eq!(r["linkStatus"], "live", "{r}");
    }
    let s = api.get(&format!("{LINKS}/summary")).await.ok(200).clone();
    assert_eq!(s["counts"]["live"], 10, "{s}");
    assert_eq!(s["checksThisMonth"]["used"], 10, "{s}");

    // Replay derives every relationship's linkStatus from its events alone.
    let report = tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        common::cli(&env.opts, &["replay"])
    });
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(report["mismatches"], json!([]), "{report}");
}

each_backend!(backfill_and_a_killed_checker_, backfill_and_a_killed_checker);

// ---------------------------------------------------------------------------------------------

/// Benchmark (ignored; BENCHMARKS.md): checks per second, `BENCH_LINKS` links (10,000) over
/// `BENCH_HOSTS` hosts (500: the loopback addresses 127.0.1.1 onwards), one request per host at a
/// time. The links are made by the backfill with the checker off, then the binary starts with
/// the checker on and every link due: the figure is links checked over the time from the first
/// check to the last.
/// `LINKCRM_TEST_BIN=<release linkcrm> cargo test --release --test link_monitoring -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_link_checks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n: usize = std::env::var("BENCH_LINKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let hosts: usize = std::env::var("BENCH_HOSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    // A 20 KB article with 60 links, the placed one near the end.
    let filler: String = (0..60)
        .map(|i| {
            format!(
                "<p>Paragraph {i} about tools, with <a href=\"https://elsewhere.example/{i}\">a link</a>. {}</p>",
                "Lorem ipsum dolor sit amet. ".repeat(8)
            )
        })
        .collect();
    let page = Arc::new(article(&format!("{filler}{}", anchor(None, "Best Tools")), ""));
    // One server per loopback address; each counts its requests in flight (the most at once).
    let most = Arc::new((0..hosts).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let now_in = Arc::new((0..hosts).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let mut bases = Vec::new();
    for h in 0..hosts {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 0, 1, 1)) + h as u32);
        let (page, most, now_in) = (page.clone(), most.clone(), now_in.clone());
        let handler = move |uri: axum::http::Uri| {
            let (page, most, now_in) = (page.clone(), most.clone(), now_in.clone());
            async move {
                if uri.path() == "/robots.txt" {
                    return (
                        axum::http::StatusCode::OK,
                        [("content-type", "text/plain")],
                        "User-agent: *\nAllow: /\n".to_owned(),
                    );
                }
                let c = now_in[h].fetch_add(1, Ordering::SeqCst) + 1;
                most[h].fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now_in[h].fetch_sub(1, Ordering::SeqCst);
                (axum::http::StatusCode::OK, [("content-type", "text/html")], (*page).clone())
            }
        };
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("a loopback address");
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(handler)).await.unwrap() });
        bases.push(format!("http://{ip}:{port}"));
    }
    let free = (n * 2).to_string();
    let settings: Vec<(&str, &str)> = vec![
        ("LINKCRM_LINKCHECK_JOBS", "0"),
        ("LINKCRM_RATE_LIMIT", "0"),
        ("LINKCRM_LINKCHECK_INTERVAL_HOURS", "1000"),
        ("LINKCRM_LINKCHECK_TICK_SECS", "0.2"),
        ("LINKCRM_LINKCHECK_FREE_PER_MONTH", &free),
    ];
    let mut env = Env::start_with(Backend::Embedded, &settings).await;
    let agency = env.agency();
    let ws = agency.create_workspace("Bench").await;
    let api = agency.in_workspace(&ws);
    let started = std::time::Instant::now();
    let rels: Vec<String> = {
        let mut out = Vec::new();
        for h in 0..hosts {
            out.push(relate(&api, &format!("bench-host-{h}.example.com")).await);
        }
        out
    };
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (api, next, rels, bases) = (api.clone(), next.clone(), rels.clone(), bases.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let h = i % rels.len();
                let meta = json!({ "linkUrl": format!("{}/post/{i}", bases[h]), "targetUrl": TARGET });
                let r =
                    api.post(EV, json!({ "relationshipId": rels[h], "type": "LINK_PLACED", "metadata": meta })).await;
                assert_eq!(r.status, 201, "{}", r.body);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("bench: {n} LINK_PLACED over {hosts} hosts recorded in {:.1} s", started.elapsed().as_secs_f64());
    let report = tokio::task::block_in_place(|| {
        env.server.terminate().expect("server stops");
        common::cli(&env.opts, &["links", "backfill", "--spread-hours", "0"])
    });
    println!("bench: backfill {report}");
    env.opts.env.push(("LINKCRM_LINKCHECK_JOBS".into(), "64".into()));
    let restarted = std::time::Instant::now();
    env.restart();
    let api = env.agency().in_workspace(&ws);
    loop {
        let s = api.get(&format!("{LINKS}/summary")).await.ok(200).clone();
        let live = s["counts"]["live"].as_u64().unwrap_or(0) as usize;
        if live >= n {
            break;
        }
        assert!(restarted.elapsed() < Duration::from_secs(900), "checks stalled at {live}: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = restarted.elapsed();
    // First and last check, from the links themselves.
    let (mut first, mut last) = (String::from("~"), String::new());
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{LINKS}?limit=200&cursor={c}"),
            None => format!("{LINKS}?limit=200"),
        };
        let page = api.get(&path).await.ok(200).clone();
        for l in page["data"].as_array().unwrap() {
            let at = l["lastCheckedAt"].as_str().unwrap().to_owned();
            first = first.min(at.clone());
            last = last.max(at);
            seen += 1;
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, n);
    let span = (chrono::DateTime::parse_from_rfc3339(&last).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&first).unwrap())
    .num_milliseconds() as f64
        / 1000.0;
    let per_host = most.iter().map(|m| m.load(Ordering::SeqCst)).max().unwrap_or(0);
    println!(
        "bench: {n} links checked in {span:.2} s from the first check to the last = {:.0} checks/s; \
         {:.1} s from the restart; at most {per_host} request(s) at once per host",
        n as f64 / span,
        all.as_secs_f64()
    );
    assert_eq!(per_host, 1, "one request per host at a time");
}
