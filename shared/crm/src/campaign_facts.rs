//! The part of a campaign that events move: each member's [`Attribution`] and the campaign's
//! counters, kept by the event writer in the event's own transaction (CONTRACT "Campaigns": counts
//! derived from events, read from maintained counters; docs/adr/0011).
//!
//! A relationship lists the campaigns it is a member of (`campaignIds`, at most
//! [`MAX_CAMPAIGNS_PER_RELATIONSHIP`]), so an event on a relationship in no campaign costs nothing
//! more; one in campaigns costs one batch read of its memberships. Events on one relationship
//! commit one at a time (the relationship's `seq` condition), so the attribution read in an
//! attempt is the one the commit replaces.

use crate::keys;
use crate::records::{self, RelationshipRecord};
use crate::write::NewEvent;
use crate::App;
use linkcrm_domain::campaign::{Attribution, CampaignFacts, Tally};
use linkcrm_domain::enums::EventType;
use linkcrm_storage::{Condition, Item, Key, TxOp, Update};
use serde_json::{json, Value};

/// A relationship is a member of at most this many campaigns (an event's transaction then stays
/// within the store's 100 parts).
pub const MAX_CAMPAIGNS_PER_RELATIONSHIP: usize = 20;

/// The relationship attribute that lists its campaigns.
pub const CAMPAIGN_IDS: &str = "campaignIds";

pub fn campaign_ids(rel: &Item) -> Vec<String> {
    rel.get(CAMPAIGN_IDS)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The membership's attribution as stored (`att`).
pub fn attribution_of(member: &Item) -> Attribution {
    member.get("att").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
}

/// The facts of an event as the attribution fold reads them.
pub fn facts<'a>(r#type: EventType, occurred_at: &'a str, metadata: Option<&'a Value>) -> CampaignFacts<'a> {
    let meta = |k: &str| metadata.and_then(|m| m.get(k)).and_then(Value::as_str);
    CampaignFacts {
        r#type,
        occurred_at,
        campaign_id: meta("campaignId"),
        reply_class: meta("replyClass"),
        link_url: meta("linkUrl"),
    }
}

pub fn hard_bounce(metadata: Option<&Value>) -> bool {
    metadata.and_then(|m| m.get("hard")).and_then(Value::as_bool).unwrap_or(false)
}

/// The counters' change for a change of tally, plus the dated and first-time stamps.
pub fn counter_update(
    delta: &Tally,
    sent_on: Option<&str>,
    first_reply: Option<&str>,
    first_placed: Option<&str>,
) -> Update {
    let mut u = Update::new();
    for (field, v) in Tally::FIELDS.iter().zip(delta.values()) {
        if v != 0 {
            u = u.add(*field, v);
        }
    }
    if let Some(day) = sent_on {
        u = u.add(format!("sent#{day}"), delta.sent);
    }
    if let Some(t) = first_reply {
        u = u.min("firstReplyAt", t.to_owned());
    }
    if let Some(t) = first_placed {
        u = u.min("firstPlacedAt", t.to_owned());
    }
    u
}

/// The parts an event adds to its transaction for the campaigns its relationship is in: each
/// membership whose attribution it changes, and those campaigns' counters.
pub async fn event_ops(
    app: &App,
    rel: &RelationshipRecord,
    new: &NewEvent,
    occurred_at: &str,
) -> crate::error::DataResult<Vec<TxOp>> {
    if !Attribution::moved_by(new.r#type) {
        return Ok(vec![]);
    }
    let ids = campaign_ids(&rel.0);
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let wanted: Vec<Key> = ids.iter().map(|c| keys::campaign_member(c, rel.id())).collect();
    let members = app.store.batch_get(&wanted).await?;
    let f = facts(new.r#type, occurred_at, new.metadata.as_ref());
    let hard = hard_bounce(new.metadata.as_ref());
    let mut ops = Vec::new();
    for member in &members {
        let Some(cmp) = records::str_of(member, "campaignId") else { continue };
        let before = attribution_of(member);
        let mut after = before.clone();
        after.apply(cmp, &f, hard);
        if after == before {
            continue;
        }
        let delta = after.tally().minus(&before.tally());
        let day = (delta.sent != 0).then(|| &occurred_at[..occurred_at.len().min(10)]);
        let reply = (before.replied_at.is_none()).then_some(after.replied_at.as_deref()).flatten();
        let placed = (before.placed_at.is_none()).then_some(after.placed_at.as_deref()).flatten();
        let key = Key::of(member).ok_or_else(|| records::corrupt("campaign member", "without a key"))?;
        ops.push(TxOp::update_if(key, Update::new().set("att", json!(after)), Condition::Exists));
        ops.push(TxOp::update(keys::campaign(cmp), counter_update(&delta, day, reply, placed)));
        // A hard bounce: the campaign looks at its bounce rate (and may pause itself).
        if delta.hard_bounced > 0 {
            ops.push(linkcrm_core::jobkinds::campaign_bounce_check_op(cmp)?);
        }
    }
    Ok(ops)
}

/// Why a relationship could not join a campaign.
#[derive(Debug, PartialEq, Eq)]
pub enum Enrol {
    /// It is already a member.
    Already,
    /// It is in [`MAX_CAMPAIGNS_PER_RELATIONSHIP`] campaigns already.
    TooMany,
}

/// The parts that make `rel` (as read) a member of `campaign`: the membership item (`member`,
/// without its key, which is set here) and the relationship's `campaignIds`, guarded by the list
/// read so that two campaigns adding the same relationship concurrently both end up in it (the
/// loser's transaction fails and is retried from a fresh read).
pub fn enrol_ops(rel: &RelationshipRecord, campaign: &str, mut member: Item) -> Result<Vec<TxOp>, Enrol> {
    let ids = campaign_ids(&rel.0);
    if ids.iter().any(|c| c == campaign) {
        return Err(Enrol::Already);
    }
    if ids.len() >= MAX_CAMPAIGNS_PER_RELATIONSHIP {
        return Err(Enrol::TooMany);
    }
    let key = keys::campaign_member(campaign, rel.id());
    member.insert("PK".into(), json!(key.pk));
    member.insert("SK".into(), json!(key.sk));
    member.insert("campaignId".into(), json!(campaign));
    member.insert("relationshipId".into(), json!(rel.id()));
    let mut next = ids.clone();
    next.push(campaign.to_owned());
    let guard = match rel.0.get(CAMPAIGN_IDS) {
        Some(v) => Condition::Equals(CAMPAIGN_IDS.into(), v.clone()),
        None => Condition::And(vec![Condition::Exists, Condition::AttrAbsent(CAMPAIGN_IDS.into())]),
    };
    Ok(vec![
        TxOp::put_if(member, Condition::NotExists),
        TxOp::update_if(keys::relationship(rel.id()), Update::new().set(CAMPAIGN_IDS, json!(next)), guard),
    ])
}
