//! How a search result is scored as an outreach opportunity (seed 003's deep discovery), from
//! what we know without fetching the page: the site's Ahrefs metrics, and the search engine's
//! title, snippet and URL. Every score is in [0, 1], two decimals.
//!
//! - **quality** = 0.6 × DR/100 + 0.4 × traffic, traffic = log10(monthly organic visits + 1) / 6
//!   capped at 1 (a million visits a month scores 1). An unknown DR or traffic counts as 0.3:
//!   most sites we know nothing of are small.
//! - **relevance** = 0.8 × the share of the keyword's words (two letters or more, common English
//!   stop words aside) found in the title, snippet or URL + 0.2 when the whole keyword appears in
//!   the title or snippet.
//! - **guest post likelihood** = 0.1, + 0.45 for the first guest-post cue found in the title,
//!   snippet or URL ("write for us", "guest post", "contribute", ...), + 0.15 for each further
//!   distinct cue, + 0.1 when the URL's path is a submission page (`write-for-us`, `guest-post`,
//!   `contribute`, `submit`), capped at 1.

/// What a score is made from.
#[derive(Clone, Debug, Default)]
pub struct Page<'a> {
    pub url: &'a str,
    pub title: Option<&'a str>,
    pub snippet: Option<&'a str>,
    pub domain_rating: Option<f64>,
    pub organic_traffic: Option<f64>,
}

/// The three scores and the cues that moved the guest-post likelihood.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    pub quality: f64,
    pub relevance: f64,
    pub guest_post_likelihood: f64,
    pub signals: Vec<&'static str>,
}

const UNKNOWN_METRIC: f64 = 0.3;

/// Phrases that say a site takes guest posts.
pub const GUEST_POST_CUES: &[&str] = &[
    "write for us",
    "guest post",
    "guest author",
    "guest blogger",
    "guest contributor",
    "contribute",
    "contributor guidelines",
    "submission guidelines",
    "submit an article",
    "submit a post",
    "become a contributor",
    "sponsored post",
];

const SUBMISSION_PATHS: &[&str] = &["write-for-us", "guest-post", "contribute", "submit"];

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "of", "on", "or", "the",
    "to", "what", "with", "your",
];

fn round2(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2 && !STOP_WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

pub fn quality(domain_rating: Option<f64>, organic_traffic: Option<f64>) -> f64 {
    let dr = domain_rating.map(|d| (d / 100.0).clamp(0.0, 1.0)).unwrap_or(UNKNOWN_METRIC);
    let traffic = organic_traffic.map(|t| ((t.max(0.0) + 1.0).log10() / 6.0).min(1.0)).unwrap_or(UNKNOWN_METRIC);
    round2(0.6 * dr + 0.4 * traffic)
}

pub fn relevance(keyword: &str, page: &Page<'_>) -> f64 {
    let wanted = words(keyword);
    if wanted.is_empty() {
        return 0.0;
    }
    let text = format!("{} {} {}", page.title.unwrap_or(""), page.snippet.unwrap_or(""), page.url);
    let have = words(&text);
    let found = wanted.iter().filter(|w| have.contains(w)).count() as f64;
    let phrase = keyword.trim().to_lowercase();
    let whole = [page.title, page.snippet].into_iter().flatten().any(|t| t.to_lowercase().contains(&phrase));
    round2(0.8 * found / wanted.len() as f64 + if whole { 0.2 } else { 0.0 })
}

pub fn guest_post(page: &Page<'_>) -> (f64, Vec<&'static str>) {
    let url = page.url.to_lowercase();
    let text = format!(
        "{} {} {}",
        page.title.unwrap_or("").to_lowercase(),
        page.snippet.unwrap_or("").to_lowercase(),
        url.replace(['-', '_', '/'], " ")
    );
    let signals: Vec<&'static str> = GUEST_POST_CUES.iter().copied().filter(|c| text.contains(c)).collect();
    let path = url.split_once("://").map(|(_, rest)| rest).unwrap_or(&url);
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or("");
    let submission_page = SUBMISSION_PATHS.iter().any(|p| path.contains(p));
    let mut score = 0.1;
    if !signals.is_empty() {
        score += 0.45 + 0.15 * (signals.len() - 1) as f64;
    }
    if submission_page {
        score += 0.1;
    }
    (round2(score), signals)
}

pub fn score(keyword: &str, page: &Page<'_>) -> Scores {
    let (guest_post_likelihood, signals) = guest_post(page);
    Scores {
        quality: quality(page.domain_rating, page.organic_traffic),
        relevance: relevance(keyword, page),
        guest_post_likelihood,
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_from_dr_and_traffic() {
        assert_eq!(quality(Some(80.0), Some(999_999.0)), 0.88);
        assert_eq!(quality(None, None), 0.3);
        assert_eq!(quality(Some(0.0), Some(0.0)), 0.0);
        assert_eq!(quality(Some(100.0), Some(1e9)), 1.0);
    }

    #[test]
    fn relevance_from_the_keyword_in_title_snippet_and_url() {
        let page = Page {
            url: "https://blog.example.com/pm-tools",
            title: Some("The best PM tools for engineers"),
            snippet: Some("We compare project management software."),
            ..Default::default()
        };
        assert_eq!(relevance("pm tools", &page), 1.0);
        assert_eq!(relevance("project management tools", &page), 0.8);
        assert_eq!(relevance("gardening", &page), 0.0);
        assert_eq!(relevance("the", &page), 0.0, "stop words alone say nothing");
    }

    #[test]
    fn guest_post_cues_from_the_page_signals() {
        let plain = Page { url: "https://example.com/blog/pm", title: Some("PM tools"), ..Default::default() };
        assert_eq!(guest_post(&plain), (0.1, vec![]));
        let page = Page {
            url: "https://example.com/write-for-us",
            title: Some("Write for us"),
            snippet: Some("Read our contributor guidelines before you submit a guest post."),
            ..Default::default()
        };
        let (score, signals) = guest_post(&page);
        assert_eq!(signals, vec!["write for us", "guest post", "contributor guidelines"]);
        assert_eq!(score, 0.95, "0.1 + 0.45 + 2 × 0.15 + 0.1 for the submission page");
    }
}
