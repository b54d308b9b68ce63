//! Apollo's JSON shapes as we read them, and how they become our contact fields.
//!
//! Every field is optional on purpose: Apollo documents that response shapes vary by endpoint and plan
//! (the current People API Search returns `last_name_obfuscated` and no social links; the legacy search
//! returned full people), so a missing field must not fail a whole discovery.

use serde::{Deserialize, Serialize};

/// One person as People API Search returns them: enough to decide whom to enrich, never an email.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ApolloPerson {
    pub id: String,
    #[serde(default)]
    pub first_name: Option<String>,
    /// Only the legacy search (and enrichment) gives the full last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Current search: first two letters, asterisks, last letter (`Ol***n`). Never stored as a name.
    #[serde(default)]
    pub last_name_obfuscated: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub seniority: Option<String>,
    #[serde(default)]
    pub linkedin_url: Option<String>,
    #[serde(default)]
    pub twitter_url: Option<String>,
    /// Whether enriching this person can reveal an email (and so spend a credit on one).
    #[serde(default)]
    pub has_email: Option<bool>,
    #[serde(default)]
    pub organization: Option<ApolloOrganization>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ApolloOrganization {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub primary_domain: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchResponse {
    #[serde(default)]
    pub people: Vec<ApolloPerson>,
    /// Current search puts the count at the top level...
    #[serde(default)]
    pub total_entries: Option<u64>,
    /// ...the legacy search nested it in `pagination`.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub total_entries: Option<u64>,
}

impl SearchResponse {
    pub fn total(&self) -> Option<u64> {
        self.total_entries.or(self.pagination.as_ref().and_then(|p| p.total_entries))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BulkMatchResponse {
    #[serde(default)]
    pub error_code: Option<serde_json::Value>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// One entry per requested person, `null` where Apollo found no match (and charged nothing).
    #[serde(default)]
    pub matches: Vec<Option<MatchedPerson>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct MatchedPerson {
    pub id: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub seniority: Option<String>,
    #[serde(default)]
    pub linkedin_url: Option<String>,
    #[serde(default)]
    pub twitter_url: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_status: Option<String>,
    #[serde(default)]
    pub organization: Option<ApolloOrganization>,
}

/// A person after Bulk People Enrichment: full name, social links and, when Apollo vouches for it, email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrichedPerson {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub seniority: Option<String>,
    pub linkedin_url: Option<String>,
    pub twitter_url: Option<String>,
    /// Set only when `email_status` is `verified`: outreach to guessed or unverified addresses bounces,
    /// and bounces hurt the sending domain for every later campaign.
    pub email: Option<String>,
    /// Apollo's status as given (`verified`, `unverified`, `extrapolated`, `unavailable`, ...), kept so a
    /// caller can tell "no email" from "email withheld as unverified".
    pub email_status: Option<String>,
    /// The current employer's domain, when Apollo gave one.
    pub organization_domain: Option<String>,
}

impl From<MatchedPerson> for EnrichedPerson {
    fn from(m: MatchedPerson) -> Self {
        let email = deliverable_email(m.email.as_deref(), m.email_status.as_deref());
        EnrichedPerson {
            id: m.id,
            first_name: non_empty(m.first_name),
            last_name: non_empty(m.last_name),
            title: non_empty(m.title),
            seniority: non_empty(m.seniority),
            linkedin_url: non_empty(m.linkedin_url),
            twitter_url: non_empty(m.twitter_url),
            email,
            email_status: m.email_status,
            organization_domain: m.organization.and_then(|o| non_empty(o.primary_domain)),
        }
    }
}

/// A discovered contact, in the CRM's Contact field names (seed 002) so the discover job can store it as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundContact {
    pub apollo_person_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub position: Option<String>,
    pub seniority: Option<String>,
    pub linkedin_url: Option<String>,
    pub twitter_handle: Option<String>,
}

impl FoundContact {
    /// Enrichment wins where it has data; the search result fills gaps (enrichment sometimes omits a title).
    pub(crate) fn from_parts(enriched: EnrichedPerson, searched: Option<&ApolloPerson>) -> Self {
        let or_search = |mine: Option<String>, f: fn(&ApolloPerson) -> &Option<String>| {
            mine.or_else(|| searched.and_then(|s| non_empty(f(s).clone())))
        };
        FoundContact {
            first_name: or_search(enriched.first_name, |s| &s.first_name),
            // Not the obfuscated one: a name like "Ol***n" must never reach an outreach email.
            last_name: or_search(enriched.last_name, |s| &s.last_name),
            position: or_search(enriched.title, |s| &s.title),
            seniority: or_search(enriched.seniority, |s| &s.seniority),
            linkedin_url: or_search(enriched.linkedin_url, |s| &s.linkedin_url),
            twitter_handle: or_search(enriched.twitter_url, |s| &s.twitter_url).as_deref().and_then(twitter_handle),
            email: enriched.email,
            apollo_person_id: enriched.id,
        }
    }
}

/// Apollo puts a placeholder address in `email` when the email exists but was not revealed.
const LOCKED_EMAIL_MARK: &str = "email_not_unlocked";

pub(crate) fn deliverable_email(email: Option<&str>, status: Option<&str>) -> Option<String> {
    let email = email?.trim();
    let verified = status.is_some_and(|s| s.eq_ignore_ascii_case("verified"));
    (verified && email.contains('@') && !email.contains(LOCKED_EMAIL_MARK)).then(|| email.to_ascii_lowercase())
}

/// `https://twitter.com/marolafsson` (or x.com, with or without www, query or trailing slash) → `@marolafsson`.
pub(crate) fn twitter_handle(url: &str) -> Option<String> {
    let rest = url.trim().trim_start_matches("https://").trim_start_matches("http://").trim_start_matches("www.");
    let path = rest.strip_prefix("twitter.com/").or_else(|| rest.strip_prefix("x.com/"))?;
    let handle = path.split(['/', '?', '#']).next()?.trim_start_matches('@');
    let valid = !handle.is_empty() && handle.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| format!("@{handle}"))
}

/// Apollo wants bare domains ("no `www.`, `@` or similar"); people paste URLs.
pub(crate) fn normalize_domain(input: &str) -> String {
    let d = input.trim().to_ascii_lowercase();
    let d = d.trim_start_matches("https://").trim_start_matches("http://").trim_start_matches('@');
    let d = d.split(['/', '?', '#']).next().unwrap_or("");
    d.trim_start_matches("www.").trim_end_matches('.').to_string()
}

/// Whether an employer domain is the target (or a subdomain of it, or the other way round).
pub(crate) fn same_organization(employer: &str, target: &str) -> bool {
    let (a, b) = (normalize_domain(employer), normalize_domain(target));
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twitter_urls_become_handles() {
        assert_eq!(twitter_handle("https://twitter.com/marolafsson").as_deref(), Some("@marolafsson"));
        assert_eq!(twitter_handle("http://www.twitter.com/mar_ol/?lang=en").as_deref(), Some("@mar_ol"));
        assert_eq!(twitter_handle("https://x.com/@someone").as_deref(), Some("@someone"));
        assert_eq!(twitter_handle("https://linkedin.com/in/x"), None);
        assert_eq!(twitter_handle("https://twitter.com/"), None);
    }

    #[test]
    fn only_verified_unlocked_emails_are_kept() {
        assert_eq!(deliverable_email(Some("A@b.com"), Some("verified")).as_deref(), Some("a@b.com"));
        assert_eq!(deliverable_email(Some("a@b.com"), Some("unverified")), None);
        assert_eq!(deliverable_email(Some("a@b.com"), Some("extrapolated")), None);
        assert_eq!(deliverable_email(Some("email_not_unlocked@domain.com"), Some("verified")), None);
        assert_eq!(deliverable_email(None, Some("verified")), None);
    }

    #[test]
    fn domains_are_normalized_for_apollo() {
        assert_eq!(normalize_domain(" https://www.Engineering-Blog.com/best-pm-tools "), "engineering-blog.com");
        assert!(same_organization("blog.example.com", "example.com"));
        assert!(!same_organization("other.com", "example.com"));
    }
}
