//! Normalising what users type: partner domains and email addresses.

/// Why a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDomain(pub String);

/// A partner domain as CONTRACT.md defines it: the lowercase ASCII (punycode) host, without
/// scheme, credentials, port, path, query or a leading `www.`. Subdomains stay distinct.
pub fn normalize_domain(input: &str) -> Result<String, InvalidDomain> {
    let bad = |why: &str| InvalidDomain(format!("'{input}' is not a domain: {why}"));
    let mut s = input.trim();
    if let Some(i) = s.find("://") {
        s = &s[i + 3..];
    } else if let Some(rest) = s.strip_prefix("//") {
        s = rest;
    }
    let end = s.find(['/', '?', '#']).unwrap_or(s.len());
    s = &s[..end];
    if let Some(at) = s.rfind('@') {
        s = &s[at + 1..];
    }
    if let Some(colon) = s.rfind(':') {
        if s[colon + 1..].chars().all(|c| c.is_ascii_digit()) {
            s = &s[..colon];
        } else {
            return Err(bad("unexpected ':'"));
        }
    }
    let s = s.trim_end_matches('.');
    if s.is_empty() {
        return Err(bad("empty host"));
    }
    let ascii = idna::domain_to_ascii(s).map_err(|_| bad("not a valid internationalised name"))?;
    let ascii = ascii.strip_prefix("www.").unwrap_or(&ascii).to_owned();
    if ascii.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels, like example.com"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad("labels are letters, digits and inner hyphens"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(bad("an IP address is not a partner domain"));
    }
    Ok(ascii)
}

/// A plausible mailbox address (`local@domain`), lowercased.
pub fn normalize_email(input: &str) -> Option<String> {
    let s = input.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if !local_ok || s.len() > 254 {
        return None;
    }
    let domain = idna::domain_to_ascii(domain).ok()?;
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    // Mailboxes are case-insensitive in practice: one contact per address, whatever its case.
    domain_ok.then(|| format!("{}@{domain}", local.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalise_to_the_bare_host() {
        for (input, want) in [
            ("engineering-blog.com", "engineering-blog.com"),
            ("https://www.Engineering-Blog.com/best-pm-tools?x=1", "engineering-blog.com"),
            ("http://user:pw@blog.example.co.uk:8080/path", "blog.example.co.uk"),
            ("WWW.EXAMPLE.COM.", "example.com"),
            ("//cdn.example.org/a", "cdn.example.org"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("news.example.com", "news.example.com"),
        ] {
            assert_eq!(normalize_domain(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["", "localhost", "not a domain", "-bad-.com", "192.168.0.1", "exa_mple.com", "http://", "a..b.com"]
        {
            assert!(normalize_domain(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(normalize_email(" marina@Engineering-Blog.com ").as_deref(), Some("marina@engineering-blog.com"));
        assert_eq!(normalize_email("a.b+tag@x.io").as_deref(), Some("a.b+tag@x.io"));
        assert_eq!(normalize_email("Marina@X.io").as_deref(), Some("marina@x.io"));
        for bad in ["marina", "@x.com", "a@b", "a..b@x.com", "a b@x.com", "a@-x.com"] {
            assert!(normalize_email(bad).is_none(), "{bad}");
        }
    }
}
