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
use serde_json::json;
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
    let results: Vec<SerpResult> =
        items.into_iter().map(|i| SerpResult { rank: i.rank, url: i.url, domain: i.domain, title: i.title }).collect();
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
        let ws = ctx.workspace().to_owned();
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
        let pool = linkcrm_core::workspace::pool_of(&workspace);
        // A fetch is charged: refuse before calling the provider when the pool cannot cover it.
        if max_age.is_none() && !linkcrm_core::credits::covers(&ctx.app.store, &pool, COST_MILLI).await? {
            return Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, SKILL, COST_MILLI).await);
        }
        let (results, cached, fetched_at) = fetch(&ctx.app, &ws, &r, max_age).await?;
        if !cached {
            let reference = linkcrm_core::context::current_request_id();
            let out = SerpOutput {
                query: r.query.clone(),
                location: r.location.clone(),
                language: r.language.clone(),
                device: r.device,
                cached,
                fetched_at: fetched_at.clone(),
                credits_charged: 1.0,
                results: results.clone(),
            };
            let reply = Reply::ok(out);
            match ctx.commit(linkcrm_core::credits::spend(&pool, &ws, SKILL, &reference, COST_MILLI), &reply).await {
                Ok(()) => return Ok(reply),
                Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => {
                    return Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, SKILL, COST_MILLI).await)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Reply::ok(SerpOutput {
            query: r.query,
            location: r.location,
            language: r.language,
            device: r.device,
            cached,
            fetched_at,
            credits_charged: 0.0,
            results,
        }))
    }
}
