//! Derived state: what events make of a relationship and of a shared account. Pure functions,
//! used both by the live write path and by replay, so the two cannot disagree. The rules are
//! written out in `docs/derived-state.md`.

use crate::enums::{EventType, PipelineStatus, SystemContactStatus};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What the fold needs to know of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFacts {
    pub r#type: EventType,
    pub occurred_at: String,
    /// The workspace the event belongs to (for account counters).
    pub workspace_id: String,
    /// `metadata.to` of a STATUS_CHANGED event.
    pub status_to: Option<PipelineStatus>,
    /// `metadata.replyClass` of an EMAIL_RECEIVED event (`out_of_office` changes nothing).
    pub out_of_office: bool,
    /// A placed link's state this event records: a LINK_PLACED with `metadata.linkUrl` starts its
    /// link `pending` (the link id is the event's, see [`crate::links::link_id_of`]); LINK_LOST,
    /// LINK_RESTORED and LINK_CHANGED set `metadata.linkId` to `metadata.to`.
    pub link: Option<(String, String)>,
}

/// A relationship's derived fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipState {
    pub status: PipelineStatus,
    pub contacted_by_us: bool,
    pub first_contacted_by_us_at: Option<String>,
    pub last_contacted_by_us_at: Option<String>,
    pub first_contacted_at: Option<String>,
    pub last_event_at: String,
    /// How many events were folded; orders the log for replay and guards concurrent writers.
    pub seq: i64,
    /// Each placed link's state as its events last recorded it (`linkStatus` is the worst).
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
}

impl RelationshipState {
    /// A new relationship: its initial status (PROSPECTING unless given) at its creation time.
    pub fn new(status: PipelineStatus, created_at: &str) -> Self {
        RelationshipState {
            status,
            contacted_by_us: false,
            first_contacted_by_us_at: None,
            last_contacted_by_us_at: None,
            first_contacted_at: None,
            last_event_at: created_at.to_owned(),
            seq: 0,
            links: Default::default(),
        }
    }

    /// The relationship's `linkStatus`: the worst of its placed links' states.
    pub fn link_status(&self) -> Option<&'static str> {
        crate::links::worst(self.links.values().map(String::as_str))
    }

    /// Folds one event (CONTRACT.md's transition table). `occurredAt` only sets timestamps.
    pub fn apply(&mut self, e: &EventFacts) {
        use PipelineStatus::*;
        let before_engaged =
            matches!(self.status, Prospecting | ApprovedToContact | Queued | ContactedByUs | ContactedByOtherOrg);
        match e.r#type {
            EventType::EmailSent => {
                if matches!(self.status, Prospecting | ApprovedToContact | Queued | ContactedByOtherOrg) {
                    self.status = ContactedByUs;
                }
                self.contacted_by_us = true;
                self.first_contacted_by_us_at = min_time(self.first_contacted_by_us_at.take(), &e.occurred_at);
                self.last_contacted_by_us_at = max_time(self.last_contacted_by_us_at.take(), &e.occurred_at);
                self.first_contacted_at = min_time(self.first_contacted_at.take(), &e.occurred_at);
            }
            EventType::EmailReceived if !e.out_of_office => {
                if !matches!(self.status, LinkPlaced | NotInterested) {
                    self.status = ActivelyEngaged;
                }
                self.first_contacted_at = min_time(self.first_contacted_at.take(), &e.occurred_at);
            }
            EventType::CallScheduled if before_engaged => self.status = ActivelyEngaged,
            // A campaign's draft approved, then its send queued: the seed's pipeline steps before
            // the first send. Neither moves a relationship that is already further along.
            EventType::DraftApproved if self.status == Prospecting => self.status = ApprovedToContact,
            EventType::SendQueued if matches!(self.status, Prospecting | ApprovedToContact) => self.status = Queued,
            EventType::LinkPlaced => self.status = LinkPlaced,
            EventType::Rejected if self.status != LinkPlaced => self.status = NotInterested,
            EventType::StatusChanged => {
                if let Some(to) = e.status_to {
                    self.status = to;
                }
            }
            _ => {}
        }
        if let Some((link, state)) = &e.link {
            self.links.insert(link.clone(), state.clone());
        }
        if e.occurred_at > self.last_event_at {
            self.last_event_at = e.occurred_at.clone();
        }
        self.seq += 1;
    }
}

fn min_time(cur: Option<String>, t: &str) -> Option<String> {
    Some(match cur {
        Some(c) if c.as_str() <= t => c,
        _ => t.to_owned(),
    })
}

fn max_time(cur: Option<String>, t: &str) -> Option<String> {
    Some(match cur {
        Some(c) if c.as_str() >= t => c,
        _ => t.to_owned(),
    })
}

/// The cooling-off rule: after `sends` EMAIL_SENT with no reply since, wait `days` after the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoolingPolicy {
    pub sends: usize,
    pub days: i64,
}

impl Default for CoolingPolicy {
    fn default() -> Self {
        CoolingPolicy { sends: 3, days: 30 }
    }
}

impl CoolingPolicy {
    /// `LINKCRM_COOLING_SENDS` and `LINKCRM_COOLING_DAYS`, else 3 and 30.
    pub fn from_env() -> Self {
        let d = CoolingPolicy::default();
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<i64>().ok()).filter(|n| *n > 0);
        CoolingPolicy {
            sends: num("LINKCRM_COOLING_SENDS").map(|n| n.min(20) as usize).unwrap_or(d.sends),
            days: num("LINKCRM_COOLING_DAYS").unwrap_or(d.days),
        }
    }
}

/// The facts an account keeps about contact across every workspace. Each changes by an
/// order-independent operation (add, min, max, or a top-N set), so concurrent writers from
/// several workspaces never conflict and replay in any order gives the same result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountContactFacts {
    /// EMAIL_SENT count (`contactAttemptCount`).
    pub contact_attempt_count: i64,
    /// `"<occurredAt>|<workspace>"` of the earliest and latest EMAIL_SENT.
    pub first_contact: Option<String>,
    pub last_contact: Option<String>,
    /// Replies that were not out-of-office.
    pub received_count: i64,
    pub last_received_at: Option<String>,
    /// The latest EMAIL_SENT times, newest first, at most the cooling policy's `sends`.
    pub recent_sends: Vec<String>,
    /// Latest EMAIL_SENT per workspace (for CONTACTED_BY_OTHER_ORG).
    pub last_contact_by_org: std::collections::BTreeMap<String, String>,
}

/// Composite `"<time>|<workspace>"` stamps sort by time first.
pub fn contact_stamp(occurred_at: &str, workspace_id: &str) -> String {
    format!("{occurred_at}|{workspace_id}")
}

pub fn split_stamp(stamp: &str) -> (String, String) {
    match stamp.split_once('|') {
        Some((t, w)) => (t.to_owned(), w.to_owned()),
        None => (stamp.to_owned(), String::new()),
    }
}

/// The newest `keep` times of `sends` plus `t`, newest first.
pub fn with_recent_send(sends: &[String], t: &str, keep: usize) -> Vec<String> {
    let mut all: Vec<String> = sends.to_vec();
    all.push(t.to_owned());
    all.sort_by(|a, b| b.cmp(a));
    all.truncate(keep);
    all
}

/// How many of the latest per-workspace sends an account keeps in `latestOrgContacts`: two
/// distinct workspaces decide CONTACTED_BY_OTHER_ORG for every workspace (see
/// [`other_org_contacted_since`]).
pub const LATEST_ORG_CONTACTS: usize = 2;

/// Whether a workspace other than `me` sent on or after `since`, from the account's
/// `latestOrgContacts` stamps (newest first, distinct workspaces). The newest stamp not from `me`
/// is the latest send of any other workspace, so it alone decides.
pub fn other_org_contacted_since(latest: &[String], me: &str, since: &str) -> bool {
    latest.iter().map(|s| split_stamp(s)).find(|(_, org)| org != me).is_some_and(|(t, _)| t.as_str() >= since)
}

impl AccountContactFacts {
    /// `"<time>|<workspace>"` of the latest send of the [`LATEST_ORG_CONTACTS`] most recently
    /// sending workspaces, newest first.
    pub fn latest_org_contacts(&self) -> Vec<String> {
        let mut all: Vec<String> = self.last_contact_by_org.iter().map(|(org, t)| contact_stamp(t, org)).collect();
        all.sort_by(|a, b| b.cmp(a));
        all.truncate(LATEST_ORG_CONTACTS);
        all
    }

    pub fn apply(&mut self, e: &EventFacts, policy: CoolingPolicy) {
        match e.r#type {
            EventType::EmailSent => {
                self.contact_attempt_count += 1;
                let stamp = contact_stamp(&e.occurred_at, &e.workspace_id);
                if self.first_contact.as_ref().is_none_or(|f| stamp < *f) {
                    self.first_contact = Some(stamp.clone());
                }
                if self.last_contact.as_ref().is_none_or(|l| stamp > *l) {
                    self.last_contact = Some(stamp);
                }
                self.recent_sends = with_recent_send(&self.recent_sends, &e.occurred_at, policy.sends);
                let org = self.last_contact_by_org.entry(e.workspace_id.clone()).or_default();
                if e.occurred_at > *org {
                    *org = e.occurred_at.clone();
                }
            }
            EventType::EmailReceived if !e.out_of_office => {
                self.received_count += 1;
                if self.last_received_at.as_ref().is_none_or(|l| e.occurred_at > *l) {
                    self.last_received_at = Some(e.occurred_at.clone());
                }
            }
            _ => {}
        }
    }

    /// `coolingOffUntil`: the last send plus the policy's days, once `sends` sends came after the
    /// last reply (or with no reply at all).
    pub fn cooling_off_until(&self, policy: CoolingPolicy) -> Option<String> {
        if self.recent_sends.len() < policy.sends {
            return None;
        }
        let oldest_counted = &self.recent_sends[policy.sends - 1];
        if self.last_received_at.as_ref().is_some_and(|r| r >= oldest_counted) {
            return None;
        }
        let last = crate::time::parse(&self.recent_sends[0])?;
        Some(crate::time::format(last + Duration::days(policy.days)))
    }

    /// Whether a workspace other than `me` sent to this account within the cooling window.
    pub fn contacted_by_other_org(&self, me: &str, now: DateTime<Utc>, policy: CoolingPolicy) -> bool {
        let since = crate::time::format(now - Duration::days(policy.days));
        self.last_contact_by_org.iter().any(|(org, t)| org != me && *t >= since)
    }
}

/// The shared status, in CONTRACT.md's precedence.
pub fn system_contact_status(
    do_not_contact: bool,
    cooling_off_until: Option<&str>,
    price_known: bool,
    facts: &AccountContactFacts,
    now: DateTime<Utc>,
) -> SystemContactStatus {
    let now = crate::time::format(now);
    if do_not_contact {
        SystemContactStatus::DoNotContact
    } else if cooling_off_until.is_some_and(|c| c > now.as_str()) {
        SystemContactStatus::CoolingOff
    } else if price_known {
        SystemContactStatus::RateEstablished
    } else if facts.received_count > 0 {
        SystemContactStatus::InDiscussion
    } else if facts.contact_attempt_count > 0 {
        SystemContactStatus::Contacted
    } else {
        SystemContactStatus::NeverContacted
    }
}

/// The status a workspace sees: PROSPECTING, APPROVED_TO_CONTACT or QUEUED read as
/// CONTACTED_BY_OTHER_ORG while another workspace's contact is recent. Nothing is written.
pub fn displayed_status(stored: PipelineStatus, contacted_by_other_org: bool) -> PipelineStatus {
    use PipelineStatus::*;
    match stored {
        Prospecting | ApprovedToContact | Queued if contacted_by_other_org => ContactedByOtherOrg,
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PipelineStatus::*;

    fn ev(t: EventType, at: &str) -> EventFacts {
        EventFacts {
            r#type: t,
            occurred_at: at.into(),
            workspace_id: "ws_a".into(),
            status_to: None,
            out_of_office: false,
            link: None,
        }
    }

    #[test]
    fn transitions_follow_the_contract_table() {
        let mut s = RelationshipState::new(Prospecting, "2026-05-01T00:00:00.000Z");
        s.apply(&ev(EventType::NoteAdded, "2026-05-02T00:00:00.000Z"));
        assert_eq!(s.status, Prospecting);
        s.apply(&ev(EventType::EmailSent, "2026-05-08T09:00:00.000Z"));
        assert_eq!(s.status, ContactedByUs);
        assert_eq!(s.first_contacted_by_us_at.as_deref(), Some("2026-05-08T09:00:00.000Z"));
        let mut ooo = ev(EventType::EmailReceived, "2026-05-09T00:00:00.000Z");
        ooo.out_of_office = true;
        s.apply(&ooo);
        assert_eq!(s.status, ContactedByUs, "an out-of-office reply changes nothing");
        s.apply(&ev(EventType::EmailReceived, "2026-05-09T14:22:00.000Z"));
        assert_eq!(s.status, ActivelyEngaged);
        s.apply(&ev(EventType::EmailSent, "2026-05-10T00:00:00.000Z"));
        assert_eq!(s.status, ActivelyEngaged, "a later send keeps an engaged partner engaged");
        s.apply(&ev(EventType::LinkPlaced, "2026-05-22T00:00:00.000Z"));
        assert_eq!(s.status, LinkPlaced);
        s.apply(&ev(EventType::Rejected, "2026-05-23T00:00:00.000Z"));
        assert_eq!(s.status, LinkPlaced, "a placed link is not undone by a rejection");
        let mut back = ev(EventType::StatusChanged, "2026-05-24T00:00:00.000Z");
        back.status_to = Some(Prospecting);
        s.apply(&back);
        assert_eq!(s.status, Prospecting, "manual overrides always win");
        s.apply(&ev(EventType::CallScheduled, "2026-05-25T00:00:00.000Z"));
        assert_eq!(s.status, ActivelyEngaged);
        // A back-dated event sets timestamps, not order.
        s.apply(&ev(EventType::EmailSent, "2026-04-01T00:00:00.000Z"));
        assert_eq!(s.first_contacted_by_us_at.as_deref(), Some("2026-04-01T00:00:00.000Z"));
        assert_eq!(s.last_contacted_by_us_at.as_deref(), Some("2026-05-10T00:00:00.000Z"));
        assert_eq!(s.last_event_at, "2026-05-25T00:00:00.000Z");
        assert_eq!(s.seq, 10);
        let mut n = RelationshipState::new(NotInterested, "2026-05-01T00:00:00.000Z");
        n.apply(&ev(EventType::CallScheduled, "2026-05-02T00:00:00.000Z"));
        assert_eq!(n.status, NotInterested);
        n.apply(&ev(EventType::EmailReceived, "2026-05-02T00:00:00.000Z"));
        assert_eq!(n.status, NotInterested);
    }

    #[test]
    fn cooling_off_after_three_unanswered_sends() {
        let p = CoolingPolicy::default();
        let mut f = AccountContactFacts::default();
        for (i, day) in ["01", "02"].iter().enumerate() {
            let mut e = ev(EventType::EmailSent, &format!("2026-05-{day}T00:00:00.000Z"));
            e.workspace_id = format!("ws_{i}");
            f.apply(&e, p);
        }
        assert_eq!(f.cooling_off_until(p), None);
        f.apply(&ev(EventType::EmailReceived, "2026-05-03T00:00:00.000Z"), p);
        f.apply(&ev(EventType::EmailSent, "2026-05-04T00:00:00.000Z"), p);
        assert_eq!(f.cooling_off_until(p), None, "a reply resets the count");
        f.apply(&ev(EventType::EmailSent, "2026-05-05T00:00:00.000Z"), p);
        f.apply(&ev(EventType::EmailSent, "2026-05-06T00:00:00.000Z"), p);
        assert_eq!(f.cooling_off_until(p).as_deref(), Some("2026-06-05T00:00:00.000Z"));
        assert_eq!(f.contact_attempt_count, 5);
        assert_eq!(
            split_stamp(f.first_contact.as_deref().unwrap()),
            ("2026-05-01T00:00:00.000Z".into(), "ws_0".into())
        );
        let now = crate::time::parse("2026-05-10T00:00:00Z").unwrap();
        assert!(f.contacted_by_other_org("ws_a", now, p), "ws_0 and ws_1 contacted it");
        let lone = {
            let mut g = AccountContactFacts::default();
            g.apply(&ev(EventType::EmailSent, "2026-05-01T00:00:00.000Z"), p);
            g
        };
        assert!(!lone.contacted_by_other_org("ws_a", now, p), "its own contact does not count");
        assert!(lone.contacted_by_other_org("ws_b", now, p));
        let later = crate::time::parse("2026-07-01T00:00:00Z").unwrap();
        assert!(!lone.contacted_by_other_org("ws_b", later, p), "outside the window it no longer counts");
    }

    #[test]
    fn account_facts_do_not_depend_on_order() {
        let p = CoolingPolicy::default();
        let events: Vec<EventFacts> = (0..8)
            .map(|i| {
                let t = if i % 3 == 0 { EventType::EmailReceived } else { EventType::EmailSent };
                let mut e = ev(t, &format!("2026-05-{:02}T00:00:00.000Z", 10 - i));
                e.workspace_id = format!("ws_{}", i % 2);
                e
            })
            .collect();
        let fold = |order: &[usize]| {
            let mut f = AccountContactFacts::default();
            for &i in order {
                f.apply(&events[i], p);
            }
            f
        };
        let forward: Vec<usize> = (0..8).collect();
        let backward: Vec<usize> = (0..8).rev().collect();
        assert_eq!(fold(&forward), fold(&backward));
        assert_eq!(fold(&forward), fold(&[3, 1, 7, 0, 5, 2, 6, 4]));
    }

    #[test]
    fn system_status_precedence() {
        let now = crate::time::parse("2026-05-10T00:00:00Z").unwrap();
        let mut f = AccountContactFacts::default();
        assert_eq!(system_contact_status(false, None, false, &f, now), SystemContactStatus::NeverContacted);
        f.contact_attempt_count = 1;
        assert_eq!(system_contact_status(false, None, false, &f, now), SystemContactStatus::Contacted);
        f.received_count = 1;
        assert_eq!(system_contact_status(false, None, false, &f, now), SystemContactStatus::InDiscussion);
        assert_eq!(system_contact_status(false, None, true, &f, now), SystemContactStatus::RateEstablished);
        assert_eq!(
            system_contact_status(false, Some("2026-05-09T00:00:00.000Z"), true, &f, now),
            SystemContactStatus::RateEstablished
        );
        assert_eq!(
            system_contact_status(false, Some("2026-06-01T00:00:00.000Z"), true, &f, now),
            SystemContactStatus::CoolingOff
        );
        assert_eq!(
            system_contact_status(true, Some("2026-06-01T00:00:00.000Z"), true, &f, now),
            SystemContactStatus::DoNotContact
        );
        assert_eq!(displayed_status(Queued, true), ContactedByOtherOrg);
        assert_eq!(displayed_status(ActivelyEngaged, true), ActivelyEngaged);
        assert_eq!(displayed_status(Queued, false), Queued);
    }
}
