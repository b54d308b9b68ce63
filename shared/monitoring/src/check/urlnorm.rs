//! URLs in the form that compares: a link target written `https://Example.com/page/?utm_source=x#top`
//! points at the same page as `https://example.com/page`, and a page that redirects to itself
//! with a tracking parameter added has not moved.
//!
//! The url crate already lower-cases scheme and host, drops a default port and resolves dot
//! segments; here the fragment, a trailing slash, tracking parameters and parameter order go too.
//! Percent-encoding is left as the url crate leaves it (`%7e` and `~` stay different: rare, and
//! decoding would be a guess about what the server treats as equal).

use url::Url;

/// Query parameters that say where a visitor came from, not which page they get.
const TRACKING: &[&str] =
    &["gclid", "fbclid", "msclkid", "dclid", "yclid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "igshid", "ref_src"];

fn is_tracking(pair: &str) -> bool {
    let key = pair.split('=').next().unwrap_or("");
    let key = key.to_ascii_lowercase();
    key.starts_with("utm_") || TRACKING.contains(&key.as_str())
}

/// `u` without fragment, trailing slash (the root keeps its `/`), tracking parameters or an empty
/// query, and with the remaining parameters sorted.
pub fn normalize(u: &Url) -> String {
    let mut u = u.clone();
    u.set_fragment(None);
    if u.cannot_be_a_base() {
        // `mailto:`, `javascript:` and the like: nothing path-like to tidy.
        return u.to_string();
    }
    let trimmed = u.path().trim_end_matches('/');
    let path = if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() };
    u.set_path(&path);
    let query = u.query().map(|q| {
        let mut pairs: Vec<&str> = q.split('&').filter(|p| !p.is_empty() && !is_tracking(p)).collect();
        pairs.sort_unstable();
        pairs.join("&")
    });
    u.set_query(query.as_deref().filter(|q| !q.is_empty()));
    u.to_string()
}

/// Whether `a` and `b` name the same page: equal once normalised, with `http` and `https` taken
/// as one (a link to the `http://` address still reaches the page). `www.` is a different host.
pub fn same(a: &Url, b: &Url) -> bool {
    let (na, nb) = (normalize(a), normalize(b));
    let web = |u: &Url| matches!(u.scheme(), "http" | "https");
    if web(a) && web(b) {
        // Only the scheme differs between the two forms; `https` and `http` are followed by `://`.
        let rest = |n: &str| n.split_once("://").map(|(_, r)| r.to_owned()).unwrap_or_default();
        return rest(&na) == rest(&nb);
    }
    na == nb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(&Url::parse(s).unwrap())
    }

    fn s(a: &str, b: &str) -> bool {
        same(&Url::parse(a).unwrap(), &Url::parse(b).unwrap())
    }

    #[test]
    fn scheme_and_host_lower_case() {
        assert_eq!(n("HTTPS://Example.COM/Path"), "https://example.com/Path");
    }

    #[test]
    fn default_port_dropped_other_kept() {
        assert_eq!(n("https://example.com:443/a"), "https://example.com/a");
        assert_eq!(n("http://example.com:80/a"), "http://example.com/a");
        assert_eq!(n("http://example.com:8080/a"), "http://example.com:8080/a");
    }

    #[test]
    fn fragment_dropped() {
        assert_eq!(n("https://example.com/a#top"), "https://example.com/a");
        assert_eq!(n("https://example.com/#"), "https://example.com/");
    }

    #[test]
    fn trailing_slash_dropped_root_kept() {
        assert_eq!(n("https://example.com/a/"), "https://example.com/a");
        assert_eq!(n("https://example.com/a/b//"), "https://example.com/a/b");
        assert_eq!(n("https://example.com/"), "https://example.com/");
        assert_eq!(n("https://example.com"), "https://example.com/");
    }

    #[test]
    fn percent_encoding_left_alone() {
        assert_eq!(n("https://example.com/caf%C3%A9"), "https://example.com/caf%C3%A9");
        assert_eq!(n("https://example.com/café"), "https://example.com/caf%C3%A9");
        assert_ne!(n("https://example.com/%7Ea"), n("https://example.com/~a"));
    }

    #[test]
    fn tracking_parameters_removed() {
        assert_eq!(n("https://example.com/a?utm_source=x&utm_medium=y&UTM_Campaign=z"), "https://example.com/a");
        assert_eq!(
            n("https://example.com/a?gclid=1&fbclid=2&msclkid=3&dclid=4&yclid=5&mc_cid=6&mc_eid=7&id=9"),
            "https://example.com/a?id=9"
        );
        assert_eq!(n("https://example.com/a?_hsenc=1&_hsmi=2&igshid=3&ref_src=4&ref=5"), "https://example.com/a?ref=5");
    }

    #[test]
    fn parameters_sorted() {
        assert_eq!(n("https://example.com/a?b=2&a=1&c"), "https://example.com/a?a=1&b=2&c");
        assert_eq!(n("https://example.com/a?b=2&a=1"), n("https://example.com/a?a=1&b=2"));
    }

    #[test]
    fn empty_query_dropped() {
        assert_eq!(n("https://example.com/a?"), "https://example.com/a");
        assert_eq!(n("https://example.com/a?&&"), "https://example.com/a");
        assert_eq!(n("https://example.com/a/?utm_source=x#f"), "https://example.com/a");
    }

    #[test]
    fn non_hierarchical_urls_kept() {
        assert_eq!(n("mailto:someone@example.com"), "mailto:someone@example.com");
    }

    #[test]
    fn same_ignores_scheme_between_http_and_https() {
        assert!(s("http://example.com/a/", "https://example.com/a"));
        assert!(s("https://example.com/a?utm_source=x", "https://example.com/a#x"));
        assert!(!s("ftp://example.com/a", "https://example.com/a"));
    }

    #[test]
    fn same_keeps_www_and_ports_apart() {
        assert!(!s("https://www.example.com/a", "https://example.com/a"));
        assert!(!s("https://example.com:8443/a", "https://example.com/a"));
        assert!(!s("https://example.com/a", "https://example.com/b"));
        assert!(!s("https://example.com/a?id=1", "https://example.com/a?id=2"));
    }
}
