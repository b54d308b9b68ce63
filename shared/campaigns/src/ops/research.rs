//! `research.serp` (`POST /v1/research/serp`, the anchor's Research · SERP API): the organic
//! results for a query from DataForSEO, through a 24-hour cache per (query, location, language,
//! device) that SERP campaigns share. 1 credit per query actually sent to the provider; an answer
//! from the cache is free. The same function serves the SERP campaign's research step.

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::App;
use axum::http::StatusCode;
use linkcrm_crm::records::{obj, str_of};
use linkcrm_providers::{SerpItem, SerpQuery};
use linkcrm_storage::TxOp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TAG: &str = "Research";
pub const SKILL: &str = "research.serp";
pub const COST_MILLI: i64 = 1000;
const CACHE_SECS: i64 = 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Desktop,
    Mobile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// A cached answer when one is at most `cacheMaxAgeMinutes` old (default).
    Cached,
    /// Ask the provider now (charged).
    Now,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SerpInput {
    #[schemars(length(min = 1, max = 700), pattern(linkcrm_core::rules::ONE_LINE))]
    pub query: String,
    /// Results wanted (default 20, at most 100).
    #[schemars(range(min = 1, max = 100))]
    pub top_n: Option<u32>,
    /// A location name as DataForSEO spells it (`United Kingdom`), or its numeric code; the
    /// workspace's `primaryLocation`, else the United States.
    #[schemars(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9 ,.'()-]{1,100}$"))]
    pub location: Option<String>,
    /// ISO 639-1 (`en`); the workspace's `primaryLanguage`, else English.
    #[schemars(pattern(r"^[a-z]{2}(-[A-Za-z]{2,4})?$"))]
    pub language: Option<String>,
    pub device: Option<Device>,
    pub freshness: Option<Freshness>,
    /// How old a cached answer may be (default and at most 1440).
    #[schemars(range(min = 1, max = 1440))]
    pub cache_max_age_minutes: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SerpResult {
    pub rank: u32,
    pub url: String,
    pub domain: String,
    pub title: Option<String>,
    /// The search engine's snippet for the page.
    #[serde(default)]
    pub snippet: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SerpOutput {
    pub query: String,
    pub location: Option<String>,
    pub language: Option<String>,
    pub device: Device,
    /// Whether the answer came from the 24-hour cache (then free).
    pub cached: bool,
    pub fetched_at: String,
    pub credits_charged: f64,
    /// Organic results, best first.
    pub results: Vec<SerpResult>,
}

/// What a research call is about, normalised (the cache key is made of it).
#[derive(Clone, Debug)]
pub struct Research {
    pub query: String,
    pub top_n: u32,
    pub location: Option<String>,
    pub language: Option<String>,
    pub device: Device,
}

impl Research {
    fn digest(&self) -> String {
        let d = match self.device {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
        };
        let key = json!([
            self.query.to_lowercase(),
            self.location.as_deref().map(str::to_lowercase),
            self.language.as_deref().map(str::to_lowercase),
            d
        ]);
        hex::encode(Sha256::digest(key.to_string().as_bytes()))
    }
}

/// The results for `r`: from the cache when at most `max_age_secs` old (`None` never), else from
/// DataForSEO (then cached). Returns (results, cached, fetchedAt). Charging is the caller's.
pub async fn fetch(
    app: &App,
    ws: &str,
    r: &Research,
    max_age_secs: Option<i64>,
) -> ApiResult<(Vec<SerpResult>, bool, String)> {
    let key = keys::serp_cache(&r.digest());
    if let Some(max_age) = max_age_secs {
        if let Some(hit) = app.store.get(&key).await? {
            let fetched = str_of(&hit, "fetchedAt").unwrap_or_default().to_owned();
            let depth = hit.get("depth").and_then(serde_json::Value::as_u64).unwrap_or(0) as u32;
            let fresh = chrono::DateTime::parse_from_rfc3339(&fetched)
                .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() <= max_age)
                .unwrap_or(false);
            if fresh && depth >= r.top_n {
                let results: Vec<SerpResult> =
                    serde_json::from_value(hit.get("results").cloned().unwrap_or_default()).unwrap_or_default();
                return Ok((results.into_iter().take(r.top_n as usize).collect(), true, fetched));
            }
        }
    }
    let (client, owner) = crate::providers::dataforseo(app, ws).await?;
    // Whole pages of ten: a later, deeper question can be answered from the same fetch.
    let depth = r.top_n.div_ceil(10) * 10;
    let q = SerpQuery {
        keyword: r.query.clone(),
        location: r.location.clone(),
        language: r.language.clone(),
        device: Some(match r.device {
            Device::Desktop => "desktop".into(),
            Device::Mobile => "mobile".into(),
        }),
        depth,
    };
    let fetched = client.serp(&q).await;
    linkcrm_core::health::observe(app, ws, "dataforseo", &fetched).await;
    let items: Vec<SerpItem> = fetched.map_err(|e| crate::providers::failed("dataforseo", owner, e))?;
    let results: Vec<SerpResult> = items
        .into_iter()
        .map(|i| SerpResult { rank: i.rank, url: i.url, domain: i.domain, title: i.title, snippet: i.snippet })
        .collect();
    let fetched = linkcrm_domain::time::now_string();
    let item = obj(json!({ "PK": key.pk, "SK": key.sk, "entity": "serpCache", "query": r.query, "depth": depth,
                           "results": results, "fetchedAt": fetched,
                           "ttl": linkcrm_storage::now_epoch() + CACHE_SECS }));
    app.store.transact(vec![TxOp::put(item)]).await?;
    Ok((results.into_iter().take(r.top_n as usize).collect(), false, fetched))
}

pub struct Serp;
impl Operation for Serp {
    const NAME: &'static str = "research.serp";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = COST_MILLI as u64;
    const SUMMARY: &'static str =
        "Organic search results for a query (DataForSEO), cached 24 hours per query, location, language and device; 1 credit when fetched, free from the cache";
    const TAG: &'static str = TAG;
    type Input = SerpInput;
    type Output = SerpOutput;

    async fn run(ctx: Ctx, input: SerpInput) -> ApiResult<Reply<SerpOutput>> {
        let query = linkcrm_core::validate::header_text("query", Some(input.query), 700)?
            .ok_or_else(|| ApiError::invalid_field("query", "invalid_request", "is required"))?;
        if input.top_n.is_some_and(|n| !(1..=100).contains(&n)) {
            return Err(ApiError::invalid_field("topN", "invalid_request", "must be 1 to 100"));
        }
        if input.cache_max_age_minutes.is_some_and(|n| !(1..=1440).contains(&n)) {
            return Err(ApiError::invalid_field("cacheMaxAgeMinutes", "invalid_request", "must be 1 to 1440"));
        }
        let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
        let r = Research {
            query,
            top_n: input.top_n.unwrap_or(20).clamp(1, 100),
            location: input.location.or(workspace.settings.primary_location.clone()),
            language: input.language.or(workspace.settings.primary_language.clone()),
            device: input.device.unwrap_or(Device::Desktop),
        };
        let max_age = match input.freshness.unwrap_or(Freshness::Cached) {
            Freshness::Now => None,
            Freshness::Cached => Some(input.cache_max_age_minutes.unwrap_or(1440).clamp(1, 1440) as i64 * 60),
        };
        let (results, cached, fetched_at, spend) = answer(&ctx, &r, max_age).await?;
        let out = SerpOutput {
            query: r.query.clone(),
            location: r.location.clone(),
            language: r.language.clone(),
            device: r.device,
            cached,
            fetched_at,
            credits_charged: if cached { 0.0 } else { 1.0 },
            results,
        };
        charged(&ctx, spend, Reply::ok(out)).await
    }
}

/// The results for `r` (the cache, or the provider after checking a fetch can be paid for), and
/// when fetched the credit spend to commit with the answer.
async fn answer(
    ctx: &Ctx,
    r: &Research,
    max_age: Option<i64>,
) -> ApiResult<(Vec<SerpResult>, bool, String, Option<(linkcrm_core::credits::Pool, Vec<TxOp>)>)> {
    let ws = ctx.workspace().to_owned();
    let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
    let pool = linkcrm_core::workspace::pool_of(&workspace);
    // A fetch is charged: refuse before calling the provider when the pool cannot cover it.
    if max_age.is_none() && !linkcrm_core::credits::covers(&ctx.app.store, &pool, COST_MILLI).await? {
        return Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, SKILL, COST_MILLI).await);
    }
    let (results, cached, fetched_at) = fetch(&ctx.app, &ws, r, max_age).await?;
    let spend = (!cached).then(|| {
        let reference = linkcrm_core::context::current_request_id();
        let ops = linkcrm_core::credits::spend(&pool, &ws, SKILL, &reference, COST_MILLI);
        (pool, ops)
    });
    Ok((results, cached, fetched_at, spend))
}

/// Commits the answer with its credit spend (a pool emptied meanwhile is 402), or just answers.
async fn charged<T: Serialize + Clone>(
    ctx: &Ctx,
    spend: Option<(linkcrm_core::credits::Pool, Vec<TxOp>)>,
    reply: Reply<T>,
) -> ApiResult<Reply<T>> {
    let Some((pool, ops)) = spend else { return Ok(reply) };
    match ctx.commit(ops, &reply).await {
        Ok(()) => Ok(reply),
        Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => {
            Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, SKILL, COST_MILLI).await)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Opportunities: the research, scored, and saved as leads when asked

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpportunitiesInput {
    #[schemars(length(min = 1, max = 700), pattern(linkcrm_core::rules::ONE_LINE))]
    pub keyword: String,
    /// Results wanted (default 20, at most 100).
    #[schemars(range(min = 1, max = 100))]
    pub max_results: Option<u32>,
    /// A custom campaign to save the results to, as leads.
    pub campaign_id: Option<crate::ids::Id<crate::ids::Campaign>>,
    /// Save the results to `campaignId` (default: true when a campaign is named).
    pub save: Option<bool>,
    #[schemars(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9 ,.'()-]{1,100}$"))]
    pub location: Option<String>,
    #[schemars(pattern(r"^[a-z]{2}(-[A-Za-z]{2,4})?$"))]
    pub language: Option<String>,
}

/// A search result scored as an outreach opportunity (`linkcrm_domain::scores` says how).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    pub rank: u32,
    pub url: String,
    pub domain: String,
    pub title: Option<String>,
    pub snippet: Option<String>,
    /// The site's account, when we know it, and its Ahrefs metrics.
    pub account_id: Option<String>,
    pub domain_rating: Option<f64>,
    pub organic_traffic: Option<f64>,
    pub quality_score: f64,
    pub relevance_score: f64,
    pub guest_post_likelihood: f64,
    /// The guest-post cues found in the title, snippet or URL.
    pub signals: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpportunitiesOutput {
    pub keyword: String,
    pub cached: bool,
    pub fetched_at: String,
    pub credits_charged: f64,
    /// Best first: by guest-post likelihood, then quality, then rank.
    pub results: Vec<Opportunity>,
    /// Results that are leads of the campaign now (added, or already there).
    pub saved_to_campaign: u32,
    pub save_failed: u32,
    /// What saving did, lead by lead (null when nothing was saved).
    pub saved: Option<Value>,
}

pub struct Opportunities;
impl Operation for Opportunities {
    const NAME: &'static str = "research.opportunities";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = COST_MILLI as u64;
    const SUMMARY: &'static str =
        "Find link opportunities for a keyword: SERP research (1 credit when fetched), each result scored for quality, relevance and guest-post likelihood, optionally saved as leads of a campaign";
    const TAG: &'static str = TAG;
    type Input = OpportunitiesInput;
    type Output = OpportunitiesOutput;

    async fn run(ctx: Ctx, input: OpportunitiesInput) -> ApiResult<Reply<OpportunitiesOutput>> {
        let keyword = linkcrm_core::validate::header_text("keyword", Some(input.keyword), 700)?
            .ok_or_else(|| ApiError::invalid_field("keyword", "invalid_request", "is required"))?;
        if input.max_results.is_some_and(|n| !(1..=100).contains(&n)) {
            return Err(ApiError::invalid_field("maxResults", "invalid_request", "must be 1 to 100"));
        }
        let save = input.save.unwrap_or(input.campaign_id.is_some());
        if save && input.campaign_id.is_none() {
            return Err(ApiError::invalid_field("campaignId", "invalid_request", "is required to save the results"));
        }
        // The campaign is checked before anything is searched or charged.
        if let (true, Some(c)) = (save, &input.campaign_id) {
            super::leads::open_campaign(&ctx, c, true).await?;
        }
        let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
        let r = Research {
            query: keyword.clone(),
            top_n: input.max_results.unwrap_or(20),
            location: input.location.or(workspace.settings.primary_location.clone()),
            language: input.language.or(workspace.settings.primary_language.clone()),
            device: Device::Desktop,
        };
        let (results, cached, fetched_at, spend) = answer(&ctx, &r, Some(CACHE_SECS)).await?;
        // The sites we know: one BatchGetItem of domain guards, one of their accounts (by domain).
        let guards: Vec<_> = results.iter().map(|x| linkcrm_crm::keys::domain_guard(&x.domain)).collect();
        let wanted: Vec<_> = ctx
            .app
            .store
            .batch_get(&guards)
            .await?
            .iter()
            .filter_map(|g| str_of(g, "accountId").map(linkcrm_crm::keys::account))
            .collect();
        let accounts: std::collections::HashMap<String, linkcrm_storage::Item> = ctx
            .app
            .store
            .batch_get(&wanted)
            .await?
            .into_iter()
            .filter_map(|a| Some((str_of(&a, "domain")?.to_owned(), a)))
            .collect();
        let mut out: Vec<Opportunity> = results
            .into_iter()
            .map(|x| {
                let account = accounts.get(&x.domain);
                let metric = |k: &str| account.and_then(|a| a.get(k)).and_then(Value::as_f64);
                let (dr, traffic) = (metric("domainRating"), metric("organicTraffic"));
                let page = linkcrm_domain::scores::Page {
                    url: &x.url,
                    title: x.title.as_deref(),
                    snippet: x.snippet.as_deref(),
                    domain_rating: dr,
                    organic_traffic: traffic,
                };
                let s = linkcrm_domain::scores::score(&keyword, &page);
                Opportunity {
                    rank: x.rank,
                    account_id: account.and_then(|a| str_of(a, "id")).map(str::to_owned),
                    url: x.url,
                    domain: x.domain,
                    title: x.title,
                    snippet: x.snippet,
                    domain_rating: dr,
                    organic_traffic: traffic,
                    quality_score: s.quality,
                    relevance_score: s.relevance,
                    guest_post_likelihood: s.guest_post_likelihood,
                    signals: s.signals.into_iter().map(str::to_owned).collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.guest_post_likelihood
                .total_cmp(&a.guest_post_likelihood)
                .then(b.quality_score.total_cmp(&a.quality_score))
                .then(a.rank.cmp(&b.rank))
        });
        let (mut saved_to_campaign, mut save_failed, mut saved) = (0, 0, None);
        if let (true, Some(c)) = (save, &input.campaign_id) {
            let leads: Vec<super::leads::LeadInput> = out
                .iter()
                .map(|o| super::leads::LeadInput {
                    website_url: o.url.clone(),
                    website_title: o.title.clone(),
                    contact_email: None,
                    quality_score: Some(o.quality_score),
                    relevance_score: Some(o.relevance_score),
                    guest_post_likelihood: Some(o.guest_post_likelihood),
                    source: Some("serp".into()),
                    snippet: o.snippet.clone(),
                })
                .collect();
            let added = super::leads::add(&ctx, c, leads).await?;
            saved_to_campaign = (added.added.len() + added.skipped.len()) as u32;
            save_failed = added.failed.len() as u32;
            saved = Some(serde_json::to_value(&added).unwrap_or(Value::Null));
        }
        let reply = Reply::ok(OpportunitiesOutput {
            keyword,
            cached,
            fetched_at,
            credits_charged: if cached { 0.0 } else { 1.0 },
            results: out,
            saved_to_campaign,
            save_failed,
            saved,
        });
        charged(&ctx, spend, reply).await
    }
}
