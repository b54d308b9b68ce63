//! What a campaign's counts are made of (CONTRACT "Campaigns": counts derived from events). One
//! [`Attribution`] per (campaign, relationship), folded from that relationship's events in commit
//! order; a campaign's counters are the sums of its relationships' attributions plus its drafts.
//! The event writer applies the same fold to the memberships an event touches and adds the
//! difference to the counters in the event's own transaction; replay folds the whole log.

use crate::enums::EventType;
use serde::{Deserialize, Serialize};

/// The campaign types and their id prefixes.
pub const TYPES: [(&str, &str); 4] =
    [("serp", "scmp_"), ("competitor", "ccmp_"), ("inbound", "icmp_"), ("custom", "cmp_")];

/// What the fold needs of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignFacts<'a> {
    pub r#type: EventType,
    pub occurred_at: &'a str,
    /// `metadata.campaignId`: the campaign a send (or the bounce or open of one) belongs to.
    pub campaign_id: Option<&'a str>,
    /// `metadata.replyClass` of an EMAIL_RECEIVED.
    pub reply_class: Option<&'a str>,
    /// `metadata.linkUrl` of a LINK_PLACED.
    pub link_url: Option<&'a str>,
}

/// One relationship's part in one campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    /// EMAIL_SENT with this campaign's id.
    pub sent: i64,
    pub first_sent_at: Option<String>,
    pub last_sent_at: Option<String>,
    /// EMAIL_BOUNCED naming a send of this campaign.
    pub bounced: i64,
    /// Hard bounces among them (the bounce-rate pause counts these).
    pub hard_bounced: i64,
    /// EMAIL_OPENED of this campaign's sends (once per send).
    pub opened: i64,
    /// The first reply (not out-of-office, not a bounce) after the campaign's first send.
    pub replied_at: Option<String>,
    /// The first LINK_PLACED after the campaign's first send, and its URL.
    pub placed_at: Option<String>,
    pub link_url: Option<String>,
    /// A REJECTED after the campaign's first send.
    pub declined_at: Option<String>,
}

impl Attribution {
    /// Folds one event of the relationship into this campaign's part.
    pub fn apply(&mut self, campaign: &str, e: &CampaignFacts<'_>, hard_bounce: bool) {
        let ours = e.campaign_id == Some(campaign);
        let after_first_send = self.first_sent_at.as_deref().is_some_and(|f| e.occurred_at >= f);
        match e.r#type {
            EventType::EmailSent if ours => {
                self.sent += 1;
                if self.first_sent_at.as_deref().is_none_or(|f| e.occurred_at < f) {
                    self.first_sent_at = Some(e.occurred_at.to_owned());
                }
                if self.last_sent_at.as_deref().is_none_or(|l| e.occurred_at > l) {
                    self.last_sent_at = Some(e.occurred_at.to_owned());
                }
            }
            EventType::EmailBounced if ours => {
                self.bounced += 1;
                if hard_bounce {
                    self.hard_bounced += 1;
                }
            }
            EventType::EmailOpened if ours => self.opened += 1,
            EventType::EmailReceived
                if after_first_send
                    && self.replied_at.is_none()
                    && !matches!(e.reply_class, Some("out_of_office" | "bounce")) =>
            {
                self.replied_at = Some(e.occurred_at.to_owned());
            }
            EventType::LinkPlaced if after_first_send && self.placed_at.is_none() => {
                self.placed_at = Some(e.occurred_at.to_owned());
                self.link_url = e.link_url.map(str::to_owned);
            }
            EventType::Rejected if after_first_send && self.declined_at.is_none() => {
                self.declined_at = Some(e.occurred_at.to_owned());
            }
            _ => {}
        }
    }

    /// Whether an event of this type can change some attribution (the writer reads memberships
    /// only for these).
    pub fn moved_by(t: EventType) -> bool {
        matches!(
            t,
            EventType::EmailSent
                | EventType::EmailBounced
                | EventType::EmailOpened
                | EventType::EmailReceived
                | EventType::LinkPlaced
                | EventType::Rejected
        )
    }

    /// This attribution's contribution to the campaign's counters.
    pub fn tally(&self) -> Tally {
        Tally {
            drafted: 0,
            sent: self.sent,
            bounced: self.bounced,
            hard_bounced: self.hard_bounced,
            opened: self.opened,
            replied: self.replied_at.is_some() as i64,
            placed: self.placed_at.is_some() as i64,
        }
    }
}

/// A campaign's counters (or a change to them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub drafted: i64,
    pub sent: i64,
    pub bounced: i64,
    pub hard_bounced: i64,
    pub opened: i64,
    pub replied: i64,
    pub placed: i64,
}

impl Tally {
    pub const FIELDS: [&'static str; 7] = ["drafted", "sent", "bounced", "hardBounced", "opened", "replied", "placed"];

    pub fn values(&self) -> [i64; 7] {
        [self.drafted, self.sent, self.bounced, self.hard_bounced, self.opened, self.replied, self.placed]
    }

    pub fn minus(&self, o: &Tally) -> Tally {
        Tally {
            drafted: self.drafted - o.drafted,
            sent: self.sent - o.sent,
            bounced: self.bounced - o.bounced,
            hard_bounced: self.hard_bounced - o.hard_bounced,
            opened: self.opened - o.opened,
            replied: self.replied - o.replied,
            placed: self.placed - o.placed,
        }
    }

    pub fn plus(&self, o: &Tally) -> Tally {
        self.minus(&Tally::default().minus(o))
    }

    pub fn is_zero(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }

    /// `count / sent` to two decimals, 0 when nothing was sent (CONTRACT).
    pub fn rate(count: i64, sent: i64) -> f64 {
        if sent <= 0 {
            0.0
        } else {
            (count as f64 / sent as f64 * 100.0).round() / 100.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(t: EventType, at: &'a str, cmp: Option<&'a str>) -> CampaignFacts<'a> {
        CampaignFacts { r#type: t, occurred_at: at, campaign_id: cmp, reply_class: None, link_url: None }
    }

    #[test]
    fn replies_count_only_after_the_campaigns_first_send() {
        let mut a = Attribution::default();
        a.apply("c1", &ev(EventType::EmailReceived, "2026-05-01T00:00:00Z", None), false);
        assert_eq!(a.tally().replied, 0, "a reply before any send of the campaign");
        a.apply("c1", &ev(EventType::EmailSent, "2026-05-02T00:00:00Z", Some("c2")), false);
        a.apply("c1", &ev(EventType::EmailReceived, "2026-05-03T00:00:00Z", None), false);
        assert_eq!(a.tally().replied, 0, "a send of another campaign does not start this one");
        a.apply("c1", &ev(EventType::EmailSent, "2026-05-04T00:00:00Z", Some("c1")), false);
        let mut ooo = ev(EventType::EmailReceived, "2026-05-05T00:00:00Z", None);
        ooo.reply_class = Some("out_of_office");
        a.apply("c1", &ooo, false);
        assert_eq!(a.tally().replied, 0, "out of office is not a reply");
        a.apply("c1", &ev(EventType::EmailReceived, "2026-05-06T00:00:00Z", None), false);
        a.apply("c1", &ev(EventType::EmailReceived, "2026-05-07T00:00:00Z", None), false);
        assert_eq!(a.tally(), Tally { sent: 1, replied: 1, ..Tally::default() });
        assert_eq!(a.replied_at.as_deref(), Some("2026-05-06T00:00:00Z"));
    }

    #[test]
    fn bounces_opens_and_placements() {
        let mut a = Attribution::default();
        a.apply("c", &ev(EventType::EmailSent, "2026-05-01T00:00:00Z", Some("c")), false);
        a.apply("c", &ev(EventType::EmailSent, "2026-05-02T00:00:00Z", Some("c")), false);
        a.apply("c", &ev(EventType::EmailBounced, "2026-05-02T00:01:00Z", Some("c")), true);
        a.apply("c", &ev(EventType::EmailBounced, "2026-05-02T00:01:00Z", None), true);
        a.apply("c", &ev(EventType::EmailOpened, "2026-05-02T01:00:00Z", Some("c")), false);
        let mut placed = ev(EventType::LinkPlaced, "2026-05-09T00:00:00Z", None);
        placed.link_url = Some("https://x.com/p");
        a.apply("c", &placed, false);
        a.apply("c", &ev(EventType::LinkPlaced, "2026-05-10T00:00:00Z", None), false);
        let t = a.tally();
        assert_eq!((t.sent, t.bounced, t.hard_bounced, t.opened, t.placed), (2, 1, 1, 1, 1));
        assert_eq!(a.link_url.as_deref(), Some("https://x.com/p"));
        assert_eq!(Tally::rate(1, 3), 0.33);
        assert_eq!(Tally::rate(1, 0), 0.0);
        assert_eq!(t.minus(&t), Tally::default());
        assert_eq!(Tally::default().plus(&t), t);
    }
}
