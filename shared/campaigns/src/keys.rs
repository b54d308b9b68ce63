//! Storage keys of the campaigns context (see docs/access-patterns.md). The records events move
//! (the campaign record's counters, members) are keyed by crm's writer and re-exported here.

use linkcrm_storage::Key;

pub use linkcrm_crm::keys::{campaign, campaign_held, campaign_held_pk, campaign_member, campaign_members_pk};

/// A workspace's campaigns, newest first (GSI1).
pub fn campaigns_pk(ws: &str) -> String {
    format!("WS#{ws}#CMPS")
}
/// A workspace's campaigns in one status (GSI2).
pub fn campaigns_status_pk(ws: &str, status: &str) -> String {
    format!("WS#{ws}#CMPST#{status}")
}
pub fn created_sort(created_at: &str, id: &str) -> String {
    format!("{created_at}#{id}")
}
/// How many campaigns a workspace has, in all and per status (`total` of lists).
pub fn campaign_totals(ws: &str) -> Key {
    Key::new(format!("WS#{ws}#CMPTOTALS"), "#")
}
/// A campaign's timeline entries that are not counters (paused, resumed, completed, cancelled).
pub fn timeline_pk(id: &str) -> String {
    format!("CMP#{id}#TL")
}
pub fn timeline(id: &str, at: &str, name: &str) -> Key {
    Key::new(timeline_pk(id), format!("{at}#{name}"))
}
/// A campaign's drafts and sends: one pointer per send invocation, in creation order.
pub fn drafts_pk(id: &str) -> String {
    format!("CMP#{id}#DRAFTS")
}
pub fn draft(id: &str, invocation: &str) -> Key {
    Key::new(drafts_pk(id), invocation)
}
/// A workspace's templates.
pub fn templates_pk(ws: &str) -> String {
    format!("WS#{ws}#TPLS")
}
pub fn template(ws: &str, id: &str) -> Key {
    Key::new(templates_pk(ws), id)
}
/// Guards that a follow-up is scheduled, and made, once: `CMP#<id>#FU` / `<after>#<what>`.
pub fn follow_up_guard(id: &str, after: &str, what: &str) -> Key {
    Key::new(format!("CMP#{id}#FU"), format!("{after}#{what}"))
}
/// A SERP fetched for (query, location, language, device), kept 24 hours: `SERP#<sha256>` / `#`.
pub fn serp_cache(digest: &str) -> Key {
    Key::new(format!("SERP#{digest}"), "#")
}
/// A SERP or competitor campaign's research candidates, one per normalised domain:
/// `CMP#<id>#CAND` / `<domain>`, each with its screening state and result.
pub fn candidates_pk(id: &str) -> String {
    format!("CMP#{id}#CAND")
}
pub fn candidate(id: &str, domain: &str) -> Key {
    Key::new(candidates_pk(id), domain)
}
/// The contact discoveries a campaign started for its partners: `CMP#<id>#DISC` / `<invocation>`.
pub fn discoveries_pk(id: &str) -> String {
    format!("CMP#{id}#DISC")
}
pub fn discovery(id: &str, invocation: &str) -> Key {
    Key::new(discoveries_pk(id), invocation)
}
