//! What a fetched page says about one placed link: whether it is there, with which rel and
//! anchor, and whether search engines are told to ignore the page. Pure: the fetcher hands in
//! the HTML and headers, this reads them.
//!
//! The HTML goes through html5ever (via `scraper`), as a browser would parse it, without running
//! scripts: a link a `<script>` writes into the page reads as missing. So do links inside
//! `<noscript>`, which a parser with scripting on (a browser, Google's renderer) treats as text.

use super::urlnorm::same;
use linkcrm_domain::links::CheckResult;
use scraper::{ElementRef, Html, Selector};
use serde::Serialize;
use url::Url;

/// The link as agreed with the publisher.
#[derive(Debug, Clone)]
pub struct Expected {
    pub target: Url,
    pub anchor: Option<String>,
    /// From `rel_tokens`: empty = follow.
    pub rel: Vec<String>,
}

/// A link on the page that points at the expected target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundLink {
    /// Resolved absolute.
    pub href: String,
    /// Lower-case tokens.
    pub rel: Vec<String>,
    /// The collapsed text, or the image's `alt` when the text is empty.
    pub anchor: String,
}

/// What [`parse`] read from a page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Only the links that point at the expected target, in document order.
    pub links: Vec<FoundLink>,
    /// Lower-case tokens from `<meta name=robots>` and `<meta name=googlebot>`.
    pub robots: Vec<String>,
    pub canonical: Option<Url>,
    /// What relative URLs resolve against: the first `<base href>`, else the page's URL.
    pub base: Url,
    /// The link looked for (so [`judge`] can weigh rel and anchor).
    pub expected: Expected,
}

/// What one check concluded.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub result: CheckResult,
    /// The link judged (the best match when the page has several).
    pub link: Option<FoundLink>,
    /// Why, in a few words, when anything is off.
    pub detail: Option<String>,
}

fn selector(s: &str) -> Selector {
    Selector::parse(s).expect("static selectors parse")
}

/// Whitespace runs as one space, ends trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn anchor_of(el: ElementRef<'_>, img: &Selector) -> String {
    let text = collapse(&el.text().collect::<String>());
    if !text.is_empty() {
        return text;
    }
    // An image link's anchor is its alt text; an `<area>` carries its own.
    el.select(img)
        .filter_map(|i| i.attr("alt"))
        .chain(el.attr("alt"))
        .map(collapse)
        .find(|a| !a.is_empty())
        .unwrap_or_default()
}

fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        // An empty href is the page itself: not a link anywhere else.
        return Some(base.clone());
    }
    base.join(href).ok()
}

/// Reads the page at `final_url` (where the fetch ended, after redirects).
pub fn parse(html: &str, final_url: &Url, expected: &Expected) -> Page {
    let doc = Html::parse_document(html);
    let base = doc
        .select(&selector("base[href]"))
        .next()
        .and_then(|b| b.attr("href"))
        .and_then(|h| final_url.join(h.trim()).ok())
        .unwrap_or_else(|| final_url.clone());

    let img = selector("img[alt]");
    let links = doc
        .select(&selector("a[href], area[href]"))
        .filter_map(|el| {
            let url = resolve(&base, el.attr("href")?)?;
            if !same(&url, &expected.target) {
                return None;
            }
            let rel = el.attr("rel").unwrap_or("").split_ascii_whitespace().map(|t| t.to_ascii_lowercase()).collect();
            Some(FoundLink { href: url.to_string(), rel, anchor: anchor_of(el, &img) })
        })
        .collect();

    let robots = doc
        .select(&selector("meta[name][content]"))
        .filter(|m| {
            m.attr("name").is_some_and(|n| matches!(n.trim().to_ascii_lowercase().as_str(), "robots" | "googlebot"))
        })
        .flat_map(|m| directives(m.attr("content").unwrap_or("")))
        .collect();

    let canonical = doc
        .select(&selector("link[rel][href]"))
        .find(|l| {
            l.attr("rel").is_some_and(|r| r.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("canonical")))
        })
        .and_then(|l| resolve(&base, l.attr("href")?));

    Page { links, robots, canonical, base, expected: expected.clone() }
}

/// Robots directives in a `content` attribute or header value, lower-case.
fn directives(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// Directives whose value follows a colon; any other `word:` before a rule names a user agent.
const VALUED: &[&str] = &["unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"];

/// The `X-Robots-Tag` directives that apply to Google: unprefixed, or after `googlebot:` or
/// `robots:`. A prefix applies to the rules after it in the same value
/// (`googlebot: noindex, nofollow`), until the next prefix.
fn header_directives(values: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        let mut applies = true;
        for part in value.split(',') {
            let mut part = part.trim();
            if let Some((agent, rest)) = part.split_once(':') {
                let agent = agent.trim().to_ascii_lowercase();
                if !agent.is_empty() && !agent.contains(char::is_whitespace) && !VALUED.contains(&agent.as_str()) {
                    applies = matches!(agent.as_str(), "googlebot" | "robots");
                    part = rest.trim();
                }
            }
            if applies {
                out.extend(directives(part));
            }
        }
    }
    out
}

fn has_any(tokens: &[String], wanted: &[&str]) -> bool {
    tokens.iter().any(|t| wanted.contains(&t.as_str()))
}

/// The rel tokens that decide whether a link passes value.
const NOT_FOLLOW: &[&str] = &["nofollow", "sponsored", "ugc"];

/// Whether `link`'s rel is the expected one; `page_nofollow` (robots `nofollow`) makes every link
/// count as nofollow.
fn rel_ok(link: &FoundLink, expected: &[String], page_nofollow: bool) -> bool {
    let has = |t: &str| link.rel.iter().any(|r| r == t) || (page_nofollow && t == "nofollow");
    if expected.is_empty() {
        !NOT_FOLLOW.iter().any(|t| has(t))
    } else {
        expected.iter().all(|t| has(t))
    }
}

fn anchor_ok(link: &FoundLink, expected: Option<&str>) -> bool {
    match expected.map(collapse).filter(|a| !a.is_empty()) {
        None => true,
        Some(want) => want.to_lowercase() == collapse(&link.anchor).to_lowercase(),
    }
}

/// The link's rel as shown to a tenant: its value-deciding tokens, or "follow".
fn rel_shown(link: &FoundLink) -> String {
    let tokens: Vec<&str> = link.rel.iter().map(String::as_str).filter(|t| NOT_FOLLOW.contains(t)).collect();
    if tokens.is_empty() {
        "follow".to_owned()
    } else {
        tokens.join(" ")
    }
}

/// Decides the check from what [`parse`] read. `final_url` is where the fetch ended, `original`
/// the page URL as monitored, `x_robots` the `X-Robots-Tag` header values, `googlebot_disallowed`
/// whether robots.txt keeps Googlebot from the page.
///
/// Precedence once the link is found: noindex, canonical elsewhere, rel, anchor, live: the
/// first that makes the link worthless to search engines is what the tenant needs to hear.
pub fn judge(page: &Page, final_url: &Url, original: &Url, x_robots: &[String], googlebot_disallowed: bool) -> Verdict {
    let expected = &page.expected;
    if page.links.is_empty() {
        return if same(final_url, original) {
            Verdict {
                result: CheckResult::Missing,
                link: None,
                detail: Some(format!("no link to {}", expected.target)),
            }
        } else {
            let detail = format!("redirected to {final_url}, which has no link to {}", expected.target);
            Verdict { result: CheckResult::Redirected, link: None, detail: Some(detail) }
        };
    }

    let header = header_directives(x_robots);
    let meta_nofollow = has_any(&page.robots, &["nofollow", "none"]);
    let header_nofollow = has_any(&header, &["nofollow", "none"]);
    let page_nofollow = meta_nofollow || header_nofollow;

    let anchor = expected.anchor.as_deref();
    let (_, link) = page
        .links
        .iter()
        .enumerate()
        .max_by_key(|(i, l)| {
            let (r, a) = (rel_ok(l, &expected.rel, page_nofollow), anchor_ok(l, anchor));
            // `max_by_key` keeps the last of equals; the reversed index makes it the first.
            (r && a, r, a, std::cmp::Reverse(*i))
        })
        .expect("links is not empty");
    let link = link.clone();
    let verdict = |result, detail: String| Verdict { result, link: Some(link.clone()), detail: Some(detail) };

    if has_any(&page.robots, &["noindex", "none"]) {
        return verdict(CheckResult::Noindex, "meta robots noindex".into());
    }
    if has_any(&header, &["noindex", "none"]) {
        return verdict(CheckResult::Noindex, "X-Robots-Tag noindex".into());
    }
    if googlebot_disallowed {
        return verdict(CheckResult::Noindex, "robots.txt disallows Googlebot".into());
    }
    if let Some(c) = page.canonical.as_ref().filter(|c| !same(c, final_url)) {
        return verdict(CheckResult::Canonicalized, format!("canonical is {c}"));
    }
    if !rel_ok(&link, &expected.rel, page_nofollow) {
        let mut detail = format!("rel is {}", rel_shown(&link));
        if !expected.rel.is_empty() {
            detail.push_str(&format!(", expected {}", expected.rel.join(" ")));
        }
        if meta_nofollow {
            detail.push_str(" (meta robots nofollow)");
        } else if header_nofollow {
            detail.push_str(" (X-Robots-Tag nofollow)");
        }
        return verdict(CheckResult::RelChanged, detail);
    }
    if !anchor_ok(&link, anchor) {
        let detail = format!("anchor is '{}', expected '{}'", link.anchor, collapse(anchor.unwrap_or("")));
        return verdict(CheckResult::AnchorChanged, detail);
    }
    Verdict { result: CheckResult::Live, link: Some(link), detail: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckResult::*;

    const PAGE: &str = "https://blog.example.org/post/1";
    const TARGET: &str = "https://shop.example.com/widgets";

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn expected(anchor: Option<&str>, rel: &[&str]) -> Expected {
        Expected {
            target: url(TARGET),
            anchor: anchor.map(str::to_owned),
            rel: rel.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn follow() -> Expected {
        expected(Some("Best Widgets"), &[])
    }

    fn page(body: &str, ex: &Expected) -> Page {
        parse(&format!("<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"), &url(PAGE), ex)
    }

    fn check(html: &str, ex: &Expected) -> Verdict {
        let p = parse(html, &url(PAGE), ex);
        judge(&p, &url(PAGE), &url(PAGE), &[], false)
    }

    fn body(b: &str, ex: &Expected) -> Verdict {
        let p = page(b, ex);
        judge(&p, &url(PAGE), &url(PAGE), &[], false)
    }

    #[test]
    fn live_link() {
        let v = body(r#"<p>See <a href="https://shop.example.com/widgets">Best   Widgets</a></p>"#, &follow());
        assert_eq!(v.result, Live);
        assert_eq!(v.detail, None);
        let link = v.link.unwrap();
        assert_eq!(link.href, TARGET);
        assert_eq!(link.anchor, "Best Widgets");
        assert!(link.rel.is_empty());
    }

    #[test]
    fn other_links_are_ignored() {
        let p = page(r#"<a href="https://shop.example.com/gadgets">x</a><a href="/widgets">y</a>"#, &follow());
        assert!(p.links.is_empty());
    }

    #[test]
    fn target_compared_normalised() {
        let v = body(r#"<a href="http://SHOP.example.com/widgets/?utm_source=blog#buy">Best Widgets</a>"#, &follow());
        assert_eq!(v.result, Live);
        let v = body(r#"<a href="https://www.shop.example.com/widgets">Best Widgets</a>"#, &follow());
        assert_eq!(v.result, Missing);
    }

    #[test]
    fn relative_href_resolves_against_page() {
        let ex = Expected { target: url("https://blog.example.org/shop/widgets"), ..follow() };
        let p = page(r#"<a href="../shop/widgets">Best Widgets</a>"#, &ex);
        assert_eq!(p.links.len(), 1);
        assert_eq!(p.links[0].href, "https://blog.example.org/shop/widgets");
    }

    #[test]
    fn base_href_is_used() {
        let html = r#"<html><head><base href="https://shop.example.com/"><base href="https://other.example/">
            <link rel="canonical" href="/post"></head>
            <body><a href="widgets">Best Widgets</a></body></html>"#;
        let p = parse(html, &url(PAGE), &follow());
        assert_eq!(p.base.as_str(), "https://shop.example.com/");
        assert_eq!(p.links.len(), 1);
        assert_eq!(p.canonical.unwrap().as_str(), "https://shop.example.com/post");
    }

    #[test]
    fn relative_base_resolves_against_page() {
        let html = r#"<head><base href="/x/"></head><a href="y">z</a>"#;
        let ex = Expected { target: url("https://blog.example.org/x/y"), ..follow() };
        let p = parse(html, &url(PAGE), &ex);
        assert_eq!(p.base.as_str(), "https://blog.example.org/x/");
        assert_eq!(p.links.len(), 1);
    }

    #[test]
    fn area_counts() {
        let v =
            body(r#"<map name="m"><area href="https://shop.example.com/widgets" alt="Best Widgets"></map>"#, &follow());
        assert_eq!(v.result, Live);
        assert_eq!(v.link.unwrap().anchor, "Best Widgets");
    }

    #[test]
    fn img_alt_is_the_anchor_when_no_text() {
        let v = body(
            r#"<a href="https://shop.example.com/widgets"> <img src="w.png" alt=" best  widgets "> </a>"#,
            &follow(),
        );
        assert_eq!(v.result, Live);
        assert_eq!(v.link.unwrap().anchor, "best widgets");
        // Text wins over alt.
        let v = body(r#"<a href="https://shop.example.com/widgets"><img alt="Best Widgets">Shop</a>"#, &follow());
        assert_eq!(v.result, AnchorChanged);
        assert_eq!(v.link.unwrap().anchor, "Shop");
    }

    #[test]
    fn anchor_compared_case_insensitively_with_whitespace_collapsed() {
        let v = body("<a href=\"https://shop.example.com/widgets\">\n  BEST\twidgets </a>", &follow());
        assert_eq!(v.result, Live);
    }

    #[test]
    fn anchor_changed() {
        let v = body(r#"<a href="https://shop.example.com/widgets">click here</a>"#, &follow());
        assert_eq!(v.result, AnchorChanged);
        assert_eq!(v.detail.as_deref(), Some("anchor is 'click here', expected 'Best Widgets'"));
    }

    #[test]
    fn no_expected_anchor_means_any_anchor() {
        let v = body(r#"<a href="https://shop.example.com/widgets">click here</a>"#, &expected(None, &[]));
        assert_eq!(v.result, Live);
        let v = body(r#"<a href="https://shop.example.com/widgets">click here</a>"#, &expected(Some("  "), &[]));
        assert_eq!(v.result, Live);
    }

    #[test]
    fn expected_follow_but_nofollow_sponsored_or_ugc() {
        for rel in ["nofollow", "SPONSORED", "ugc noopener"] {
            let v =
                body(&format!(r#"<a rel="{rel}" href="https://shop.example.com/widgets">Best Widgets</a>"#), &follow());
            assert_eq!(v.result, RelChanged, "{rel}");
        }
        let v = body(
            r#"<a rel="Nofollow  sponsored noopener" href="https://shop.example.com/widgets">Best Widgets</a>"#,
            &follow(),
        );
        assert_eq!(v.detail.as_deref(), Some("rel is nofollow sponsored"));
        assert_eq!(v.link.unwrap().rel, vec!["nofollow", "sponsored", "noopener"]);
        let v =
            body(r#"<a rel="noopener noreferrer" href="https://shop.example.com/widgets">Best Widgets</a>"#, &follow());
        assert_eq!(v.result, Live);
    }

    #[test]
    fn expected_tokens_must_all_be_present() {
        let ex = expected(Some("Best Widgets"), &["nofollow", "sponsored"]);
        let v = body(r#"<a rel="sponsored nofollow" href="https://shop.example.com/widgets">Best Widgets</a>"#, &ex);
        assert_eq!(v.result, Live);
        let v = body(r#"<a rel="sponsored" href="https://shop.example.com/widgets">Best Widgets</a>"#, &ex);
        assert_eq!(v.result, RelChanged);
        assert_eq!(v.detail.as_deref(), Some("rel is sponsored, expected nofollow sponsored"));
        let v = body(r#"<a href="https://shop.example.com/widgets">Best Widgets</a>"#, &ex);
        assert_eq!(v.detail.as_deref(), Some("rel is follow, expected nofollow sponsored"));
    }

    #[test]
    fn page_nofollow_makes_links_nofollow() {
        let html = r#"<head><meta name="robots" content="NOFOLLOW"></head><a href="https://shop.example.com/widgets">Best Widgets</a>"#;
        let v = check(html, &follow());
        assert_eq!(v.result, RelChanged);
        assert_eq!(v.detail.as_deref(), Some("rel is follow (meta robots nofollow)"));
        // ... and satisfies an expected nofollow.
        assert_eq!(check(html, &expected(Some("Best Widgets"), &["nofollow"])).result, Live);
    }

    #[test]
    fn meta_noindex_and_none() {
        for content in ["noindex", "noindex, nofollow", "none", "max-snippet:-1 NoIndex"] {
            for name in ["robots", "Googlebot"] {
                let html = format!(
                    r#"<head><meta name="{name}" content="{content}"></head><a href="https://shop.example.com/widgets">Best Widgets</a>"#
                );
                let v = check(&html, &follow());
                assert_eq!(v.result, Noindex, "{name} {content}");
                assert_eq!(v.detail.as_deref(), Some("meta robots noindex"));
                assert!(v.link.is_some());
            }
        }
        let html =
            r#"<meta name="bingbot" content="noindex"><a href="https://shop.example.com/widgets">Best Widgets</a>"#;
        assert_eq!(check(html, &follow()).result, Live);
    }

    fn with_header(values: &[&str]) -> Verdict {
        let p = page(r#"<a href="https://shop.example.com/widgets">Best Widgets</a>"#, &follow());
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        judge(&p, &url(PAGE), &url(PAGE), &values, false)
    }

    #[test]
    fn x_robots_tag_noindex() {
        let v = with_header(&["noindex"]);
        assert_eq!(v.result, Noindex);
        assert_eq!(v.detail.as_deref(), Some("X-Robots-Tag noindex"));
        assert_eq!(with_header(&["NONE"]).result, Noindex);
        assert_eq!(with_header(&["googlebot: noindex"]).result, Noindex);
        assert_eq!(with_header(&["robots: noindex"]).result, Noindex);
        assert_eq!(with_header(&["otherbot: noindex, nofollow"]).result, Live);
        assert_eq!(with_header(&["otherbot: nofollow", "googlebot: noarchive, noindex"]).result, Noindex);
        assert_eq!(with_header(&["googlebot: noarchive, otherbot: noindex"]).result, Live);
        assert_eq!(with_header(&["unavailable_after: 25 Jun 2010 15:00:00 PST, noindex"]).result, Noindex);
        assert_eq!(with_header(&["max-snippet: 10"]).result, Live);
    }

    #[test]
    fn x_robots_tag_nofollow() {
        let v = with_header(&["nofollow"]);
        assert_eq!(v.result, RelChanged);
        assert_eq!(v.detail.as_deref(), Some("rel is follow (X-Robots-Tag nofollow)"));
        assert_eq!(with_header(&["bingbot: nofollow"]).result, Live);
    }

    #[test]
    fn googlebot_disallowed_is_noindex() {
        let p = page(r#"<a href="https://shop.example.com/widgets">Best Widgets</a>"#, &follow());
        let v = judge(&p, &url(PAGE), &url(PAGE), &[], true);
        assert_eq!(v.result, Noindex);
        assert_eq!(v.detail.as_deref(), Some("robots.txt disallows Googlebot"));
    }

    #[test]
    fn canonical_elsewhere() {
        let html = r#"<head><link rel="Canonical" href="https://blog.example.org/other"></head><a href="https://shop.example.com/widgets">Best Widgets</a>"#;
        let v = check(html, &follow());
        assert_eq!(v.result, Canonicalized);
        assert_eq!(v.detail.as_deref(), Some("canonical is https://blog.example.org/other"));
    }

    #[test]
    fn canonical_to_itself_is_fine() {
        for href in ["https://blog.example.org/post/1/", "http://blog.example.org/post/1?utm_source=x", "/post/1", ""] {
            let html = format!(
                r#"<head><link rel="canonical" href="{href}"></head><a href="https://shop.example.com/widgets">Best Widgets</a>"#
            );
            assert_eq!(check(&html, &follow()).result, Live, "{href}");
        }
    }

    #[test]
    fn precedence() {
        let all = r#"<head><meta name="robots" content="noindex"><link rel="canonical" href="/x"></head>
            <a rel="nofollow" href="https://shop.example.com/widgets">nope</a>"#;
        assert_eq!(check(all, &follow()).result, Noindex);
        let canon_rel_anchor = r#"<head><link rel="canonical" href="/x"></head>
            <a rel="nofollow" href="https://shop.example.com/widgets">nope</a>"#;
        assert_eq!(check(canon_rel_anchor, &follow()).result, Canonicalized);
        let rel_anchor = r#"<a rel="nofollow" href="https://shop.example.com/widgets">nope</a>"#;
        assert_eq!(check(rel_anchor, &follow()).result, RelChanged);
    }

    #[test]
    fn best_link_is_chosen() {
        let ex = follow();
        // Both match beats rel only beats anchor only.
        let html = r#"<a rel="nofollow" href="https://shop.example.com/widgets">Best Widgets</a>
            <a href="https://shop.example.com/widgets">other</a>
            <a href="https://shop.example.com/widgets">best widgets</a>"#;
        let v = body(html, &ex);
        assert_eq!(v.result, Live);
        assert_eq!(v.link.unwrap().anchor, "best widgets");
        let html = r#"<a rel="nofollow" href="https://shop.example.com/widgets">Best Widgets</a>
            <a href="https://shop.example.com/widgets">other</a>"#;
        let v = body(html, &ex);
        assert_eq!(v.result, AnchorChanged);
        assert_eq!(v.link.unwrap().anchor, "other");
        // Equals: the first in the document.
        let html =
            r#"<a href="https://shop.example.com/widgets">one</a><a href="https://shop.example.com/widgets">two</a>"#;
        assert_eq!(body(html, &ex).link.unwrap().anchor, "one");
    }

    #[test]
    fn missing_and_redirected() {
        let ex = follow();
        let p = page("<p>nothing here</p>", &ex);
        let v = judge(&p, &url(PAGE), &url(PAGE), &[], false);
        assert_eq!(v.result, Missing);
        assert!(v.link.is_none());
        // A redirect to the same page in another form is not a move.
        let v = judge(&p, &url("http://blog.example.org/post/1/"), &url(PAGE), &[], false);
        assert_eq!(v.result, Missing);
        let v = judge(&p, &url("https://blog.example.org/"), &url(PAGE), &[], false);
        assert_eq!(v.result, Redirected);
        assert!(v.detail.unwrap().contains("redirected to https://blog.example.org/"));
    }

    #[test]
    fn found_after_redirect_is_judged_normally() {
        let p = page(r#"<a href="https://shop.example.com/widgets">Best Widgets</a>"#, &follow());
        let v = judge(&p, &url("https://blog.example.org/new"), &url(PAGE), &[], false);
        assert_eq!(v.result, Live);
    }

    #[test]
    fn script_inserted_link_reads_as_missing() {
        let html = r#"<body><script>document.write('<a href="https://shop.example.com/widgets">Best Widgets</a>');</script>
            <noscript><a href="https://shop.example.com/widgets">Best Widgets</a></noscript></body>"#;
        let v = check(html, &follow());
        assert_eq!(v.result, Missing);
    }

    #[test]
    fn broken_html_still_parses() {
        let html = r#"<div><p><a href="https://shop.example.com/widgets">Best <b>Widgets</a></div><a href="#;
        assert_eq!(check(html, &follow()).result, Live);
        assert_eq!(check("", &follow()).result, Missing);
    }

    #[test]
    fn found_link_serialises_camel_case() {
        let l = FoundLink { href: TARGET.into(), rel: vec!["nofollow".into()], anchor: "a".into() };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v, serde_json::json!({"href": TARGET, "rel": ["nofollow"], "anchor": "a"}));
    }
}
