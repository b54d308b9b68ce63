//! `GET /account`: accounts by domain, by domain prefix, or by domain rating (highest first),
//! with this workspace's relationship attached. Every path reads index partitions page by page;
//! nothing scans the table or reads a whole collection.

use super::{relationship_summaries, AccountItem, TAG_ACCOUNTS};
use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::lenient;
use crate::list::{self, ListResponse};
use crate::listing::merged_page;
use crate::records::{int_of, AccountRecord};
use crate::{keys, write};
use linkcrm_domain::derive::CoolingPolicy;
use linkcrm_domain::enums::SystemContactStatus;
use linkcrm_storage::{Index, Item, Query, SortKey};
use schemars::JsonSchema;
use serde::Deserialize;

/// Domain ratings are Ahrefs' 0–100 scale.
pub const MAX_DR: u32 = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    /// Exactly this domain, normalised as stored (`https://www.Example.com/x` finds `example.com`).
    #[schemars(pattern(crate::rules::DOMAIN))]
    pub domain: Option<String>,
    /// Domains that START with this text: a prefix match on the normalised domain (`eng` finds
    /// `engineering-blog.com`, not `blog-engineering.com`), in domain order. A scheme and a
    /// leading `www.` are ignored.
    #[schemars(pattern(r"^[A-Za-z0-9.-]{1,200}$"))]
    pub domain_contains: Option<String>,
    /// Lowest domain rating (0–100). Either bound keeps only accounts with a known rating.
    #[serde(default, rename = "minDR", deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(max = 100))]
    pub min_dr: Option<u32>,
    /// Highest domain rating (0–100).
    #[serde(default, rename = "maxDR", deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(max = 100))]
    pub max_dr: Option<u32>,
    /// `systemContactStatus` values, comma-separated (`NEVER_CONTACTED,IN_DISCUSSION`).
    #[serde(default, deserialize_with = "lenient::opt_csv")]
    #[schemars(with = "Option<String>", pattern(r"^(NEVER_CONTACTED|CONTACTED|IN_DISCUSSION|RATE_ESTABLISHED|COOLING_OFF|DO_NOT_CONTACT)(,(NEVER_CONTACTED|CONTACTED|IN_DISCUSSION|RATE_ESTABLISHED|COOLING_OFF|DO_NOT_CONTACT))*$"))]
    pub status: Option<Vec<String>>,
    /// `true`: only accounts this workspace has a relationship with (an archived one counts);
    /// `false`: only the others.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[schemars(with = "Option<bool>")]
    pub has_relationship: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub struct List;
impl Operation for List {
    const NAME: &'static str = "link_building.crm.account.list";
    const EFFECT: Effect = Effect::Read;
    const FAMILY: Family = Family::Crm;
    const SCOPE: Option<&'static str> = Some("crm:read");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const SUMMARY: &'static str = "List accounts (highest domain rating first) with this workspace's relationship";
    const TAG: &'static str = TAG_ACCOUNTS;
    type Input = ListInput;
    type Output = ListResponse<AccountItem>;

    /// `status` and `hasRelationship` are applied to each page after it is read, so a filtered
    /// page may hold fewer than `limit` items (even none) while `nextCursor` still continues.
    async fn run(ctx: Ctx, input: ListInput) -> ApiResult<Reply<ListResponse<AccountItem>>> {
        let ws = ctx.workspace().to_owned();
        let policy = CoolingPolicy::from_env();
        let limit = list::limit(input.limit)?;
        let statuses = statuses(input.status.as_deref())?;
        let dr = dr_range(input.min_dr, input.max_dr)?;
        // A rating range with nothing in it (minDR above maxDR) holds no account.
        if dr.is_some_and(|(lo, hi)| lo > hi) {
            return Ok(Reply::ok(ListResponse { data: vec![], next_cursor: None, total: None }));
        }
        let (items, next_cursor) = match (&input.domain, &input.domain_contains) {
            // Both: the one account of the domain, if its domain starts as asked (filters combine).
            (Some(domain), contains) => {
                if input.cursor.is_some() {
                    // A domain names one account: there is never a next page to continue.
                    return Err(ApiError::invalid_field(
                        "cursor",
                        "invalid_cursor",
                        "is not a cursor this list returned",
                    ));
                }
                let domain = write::normalize("domain", domain)?;
                let prefix = contains.as_deref().map(domain_prefix).transpose()?;
                let found = match prefix {
                    Some(p) if !domain.starts_with(&p) => None,
                    _ => write::account_by_domain(&ctx.app, &domain).await?,
                };
                (found.into_iter().map(|a| a.0).collect(), None)
            }
            (None, Some(raw)) => {
                let term = domain_prefix(raw)?;
                let scope = format!("{}#{ws}#prefix#{term}", List::NAME);
                let cursor = ctx.app.open_cursor(&scope, input.cursor.as_deref())?;
                let q = Query::index(Index::Gsi2, keys::accounts_by_domain_pk(&term))
                    .sk(SortKey::Prefix(term.clone()))
                    .limit(limit)
                    .after(cursor);
                let page = ctx.app.store.query(q).await?;
                (page.items, ctx.app.seal_cursor(&scope, page.cursor))
            }
            (None, None) => {
                // Highest rating first across the shards; the range is on the zero-padded rating
                // that starts the sort key, so unrated accounts (`---`) fall outside any bound.
                let sk = match dr {
                    None => SortKey::All,
                    Some((lo, hi)) => SortKey::Between(format!("{lo:03}"), format!("{hi:03}~")),
                };
                let queries = (0..keys::ACCOUNT_SHARDS)
                    .map(|s| Query::index(Index::Gsi1, keys::accounts_by_dr_pk(s)).sk(sk.clone()).backward())
                    .collect();
                let scope = format!("{}#{ws}#dr#{dr:?}", List::NAME);
                let page = merged_page(&ctx.app, &scope, queries, limit, input.cursor.as_deref()).await?;
                (page.items, page.next)
            }
        };

        // The rating bounds were part of the query on the rating path; the others filter here.
        let records: Vec<AccountRecord> = items.into_iter().filter(|a| in_range(a, dr)).map(AccountRecord).collect();
        let relationships = relationship_summaries(&ctx.app, &ws, &records, policy).await?;
        let mut data = Vec::with_capacity(records.len());
        for (record, rel) in records.iter().zip(relationships) {
            if input.has_relationship.is_some_and(|want| want != rel.is_some()) {
                continue;
            }
            let account = record.view(policy)?;
            let status = account.system_contact_status.unwrap_or(SystemContactStatus::NeverContacted);
            if statuses.as_ref().is_some_and(|s| !s.contains(&status)) {
                continue;
            }
            data.push(AccountItem { account, relationship_in_this_workspace: rel });
        }

        // Only the unfiltered list has a cheap total: the maintained platform-wide counter.
        let unfiltered = input.domain.is_none()
            && input.domain_contains.is_none()
            && dr.is_none()
            && statuses.is_none()
            && input.has_relationship.is_none();
        let total = if unfiltered {
            let counters = ctx.app.store.get(&keys::counters()).await?.unwrap_or_default();
            Some(int_of(&counters, "accountCount").unwrap_or(0).max(0) as u64)
        } else {
            None
        };
        Ok(Reply::ok(ListResponse { data, next_cursor, total }))
    }
}

fn statuses(raw: Option<&[String]>) -> ApiResult<Option<Vec<SystemContactStatus>>> {
    let Some(raw) = raw else { return Ok(None) };
    let parsed = raw
        .iter()
        .map(|s| {
            SystemContactStatus::parse(s).ok_or_else(|| {
                let known: Vec<&str> = SystemContactStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid_field(
                    "status",
                    "invalid_request",
                    format!("unknown status '{s}'; one of {}", known.join(", ")),
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if parsed.is_empty() {
        return Err(ApiError::invalid_field("status", "invalid_request", "name at least one status"));
    }
    Ok(Some(parsed))
}

/// The inclusive rating range asked for, if any.
fn dr_range(min: Option<u32>, max: Option<u32>) -> ApiResult<Option<(u32, u32)>> {
    for (field, v) in [("minDR", min), ("maxDR", max)] {
        if v.is_some_and(|v| v > MAX_DR) {
            return Err(ApiError::invalid_field(field, "invalid_request", format!("must be between 0 and {MAX_DR}")));
        }
    }
    if min.is_none() && max.is_none() {
        return Ok(None);
    }
    Ok(Some((min.unwrap_or(0), max.unwrap_or(MAX_DR))))
}

fn in_range(item: &Item, dr: Option<(u32, u32)>) -> bool {
    match dr {
        None => true,
        Some((lo, hi)) => int_of(item, "domainRating").is_some_and(|r| r >= lo as i64 && r <= hi as i64),
    }
}

/// The prefix as stored domains begin: lowercase, without a scheme or a leading `www.`.
fn domain_prefix(raw: &str) -> ApiResult<String> {
    let mut s = raw.trim().to_ascii_lowercase();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest.to_owned();
        }
    }
    if let Some(rest) = s.strip_prefix("www.") {
        s = rest.to_owned();
    }
    let ok = !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        return Err(ApiError::invalid_field(
            "domainContains",
            "invalid_request",
            "must be the start of a domain: ASCII letters, digits, '-' and '.'",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised_like_domains() {
        assert_eq!(domain_prefix(" https://WWW.Eng").unwrap(), "eng");
        assert_eq!(domain_prefix("engineering-blog.c").unwrap(), "engineering-blog.c");
        assert!(domain_prefix("").is_err());
        assert!(domain_prefix("www.").is_err());
        assert!(domain_prefix("eng blog").is_err());
    }

    #[test]
    fn rating_bounds() {
        assert_eq!(dr_range(None, None).unwrap(), None);
        assert_eq!(dr_range(Some(40), None).unwrap(), Some((40, 100)));
        assert_eq!(dr_range(None, Some(30)).unwrap(), Some((0, 30)));
        assert_eq!(dr_range(Some(50), Some(40)).unwrap(), Some((50, 40)), "an empty range: the list answers none");
        assert!(dr_range(Some(101), None).is_err());
        // The sort-key range keeps exactly the bounds' ratings and never the unrated.
        let sk = SortKey::Between(format!("{:03}", 40), format!("{:03}~", 62));
        assert!(sk.matches(&keys::dr_sort(Some(40), "acct_A")));
        assert!(sk.matches(&keys::dr_sort(Some(62), "acct_Z")));
        assert!(!sk.matches(&keys::dr_sort(Some(63), "acct_A")));
        assert!(!sk.matches(&keys::dr_sort(Some(39), "acct_Z")));
        assert!(!sk.matches(&keys::dr_sort(None, "acct_A")));
    }
}
