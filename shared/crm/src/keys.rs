//! Storage keys of the CRM records. See docs/access-patterns.md for what reads each one.

use linkcrm_storage::Key;

/// Accounts are spread over this many index partitions for listing by domain rating, so a
/// platform-wide list has no hot partition.
pub const ACCOUNT_SHARDS: u64 = 4;
pub const CONTACT_SHARDS: u64 = 4;

pub fn shard_of(id: &str, shards: u64) -> u64 {
    // FNV-1a: stable across processes and releases.
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) % shards
}

pub fn account(id: &str) -> Key {
    Key::new(format!("ACCT#{id}"), "#META")
}
/// One account per domain: the guard every creator must win.
pub fn domain_guard(domain: &str) -> Key {
    Key::new(format!("DOMAIN#{domain}"), "#")
}
pub fn accounts_by_dr_pk(shard: u64) -> String {
    format!("ACCTDR#{shard}")
}
/// Domain rating as a sortable key part; unknown ratings sort lowest.
pub fn dr_sort(dr: Option<i64>, id: &str) -> String {
    match dr {
        Some(d) => format!("{:03}#{id}", d.clamp(0, 999)),
        None => format!("---#{id}"),
    }
}
pub fn accounts_by_domain_pk(domain: &str) -> String {
    format!("ACCTDOM#{}", domain.chars().next().unwrap_or('-'))
}
/// Account-scoped events (prices, DO_NOT_CONTACT, metrics), readable by every workspace.
pub fn account_history_pk(account: &str) -> String {
    format!("ACCT#{account}#HIST")
}
/// Every relationship event with this account, across all agencies (GSI4): sorted by
/// [`agency_event_sort`], so one agency's events are one sort-key prefix and replay reads the
/// whole partition.
pub fn account_events_pk(account: &str) -> String {
    format!("ACCT#{account}#EVTS")
}
/// GSI4 sort key of an event: its agency, then time and id.
pub fn agency_event_sort(agency: &str, occurred_at: &str, id: &str) -> String {
    format!("{agency}#{occurred_at}#{id}")
}
/// The prefix of one agency's events in [`account_events_pk`].
pub fn agency_events_prefix(agency: &str) -> String {
    format!("{agency}#")
}
pub fn account_relationships_pk(account: &str) -> String {
    format!("ACCT#{account}#RELS")
}

pub fn contact(id: &str) -> Key {
    Key::new(format!("CT#{id}"), "#META")
}
/// A workspace's private notes on a shared contact.
pub fn contact_note(ws: &str, contact: &str) -> Key {
    Key::new(format!("WS#{ws}#CTNOTE"), contact)
}
pub fn email_guard(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "#")
}
pub fn account_contacts_pk(account: &str) -> String {
    format!("ACCT#{account}#CTS")
}
pub fn contacts_pk(shard: u64) -> String {
    format!("CTS#{shard}")
}

pub fn relationship(id: &str) -> Key {
    Key::new(format!("REL#{id}"), "#META")
}
/// One relationship per (workspace, account); also carries the summary account lists show.
pub fn workspace_account(ws: &str, account: &str) -> Key {
    Key::new(format!("WSACCT#{ws}#{account}"), "#")
}
pub fn workspace_relationships_pk(ws: &str) -> String {
    format!("WS#{ws}#RELS")
}
pub fn workspace_status_pk(ws: &str, status: &str) -> String {
    format!("WS#{ws}#RELST#{status}")
}
/// Sorts relationships by recency, ties broken by id.
pub fn recency_sort(last_event_at: &str, id: &str) -> String {
    format!("{last_event_at}#{id}")
}

pub fn event(id: &str) -> Key {
    Key::new(format!("EVT#{id}"), "#")
}
/// A relationship's events (GSI1). A workspace has at most one relationship with an account
/// (the `workspace_account` guard), so the partition is named by the pair: the relationship's
/// timeline and "this workspace's events with this account" are one partition, one index entry.
pub fn relationship_events_pk(ws: &str, account: &str) -> String {
    format!("WS#{ws}#ACCT#{account}#EVTS")
}
/// The GSI1 partition of a relationship's events before they were keyed by workspace and account:
/// read only by `linkcrm store migrate`, which moves what it still holds.
pub fn legacy_relationship_events_pk(rel: &str) -> String {
    format!("REL#{rel}#EVTS")
}
pub fn workspace_events_pk(ws: &str) -> String {
    format!("WS#{ws}#EVTS")
}
pub fn time_sort(occurred_at: &str, id: &str) -> String {
    format!("{occurred_at}#{id}")
}

/// Platform-wide counters (`total` of unfiltered account lists).
pub fn counters() -> Key {
    Key::new("SYS#COUNTERS", "#")
}

/// The sent message a `Message-ID` names (without angle brackets): replies name it in
/// `In-Reply-To`/`References`, bounces in the returned headers.
pub fn message_id(message_id: &str) -> Key {
    Key::new(format!("MSGID#{}", message_id.trim().trim_matches(['<', '>'])), "#")
}
/// A workspace's own Apollo key.
pub fn apollo_integration(ws: &str) -> Key {
    Key::new(format!("WS#{ws}#INTEGRATIONS"), "apollo")
}
/// What Apollo last said about a key's quota (`scope`: a workspace's key or the platform's).
pub fn apollo_quota(scope: &str) -> Key {
    Key::new(format!("PROVIDER#apollo#{scope}"), "#quota")
}
/// One contact per Apollo person.
pub fn apollo_guard(person_id: &str) -> Key {
    Key::new(format!("APOLLO#{person_id}"), "#")
}
/// The accounts a discovery invocation finished: `DISCDONE#<invocation>` / `<account>`.
pub fn discovery_done_pk(invocation: &str) -> String {
    format!("DISCDONE#{invocation}")
}
pub fn discovery_done(invocation: &str, account: &str) -> Key {
    Key::new(discovery_done_pk(invocation), account)
}

// Campaign facts the event writer keeps (see `campaign_facts`): the campaigns context owns the
// campaign itself; the records below are the part of it that events move.

/// A campaign's own record: its status (what the send job reads) and its counters (moved in the
/// transactions of the events that move them, so a list page is one Query).
pub fn campaign(id: &str) -> Key {
    Key::new(format!("CMP#{id}"), "#META")
}
/// A campaign's members: one item per relationship, with that relationship's attribution.
pub fn campaign_members_pk(id: &str) -> String {
    format!("CMP#{id}#RELS")
}
pub fn campaign_member(id: &str, rel: &str) -> Key {
    Key::new(campaign_members_pk(id), rel)
}
/// Sends of a paused campaign waiting for its resume: `CMP#<id>#HELD` / `<invocation>`.
pub fn campaign_held_pk(id: &str) -> String {
    format!("CMP#{id}#HELD")
}
pub fn campaign_held(id: &str, invocation: &str) -> Key {
    Key::new(campaign_held_pk(id), invocation)
}

/// Accounts by when their metrics were last refreshed (GSI3 of account items), sharded like the
/// by-rating index: `METRICS#DUE#<shard>` / `<ahrefStatsUpdatedAt or 0000>#<id>`. The schedule
/// reads the accounts whose sort key is older than the cutoff (never a Scan).
pub fn metrics_due_pk(shard: u64) -> String {
    format!("METRICS#DUE#{shard}")
}
pub fn metrics_due_sort(refreshed_at: Option<&str>, id: &str) -> String {
    format!("{}#{id}", refreshed_at.unwrap_or("0000"))
}

/// A workspace's pipeline stages, their order and their opportunity counters: one item, so the
/// stage list (with `leadCount`) is one GetItem.
pub fn stage_set(ws: &str) -> Key {
    Key::new(format!("WS#{ws}#PIPELINE"), "#STAGES")
}
/// A workspace's opportunities (seed 004's leads), newest last by id.
pub fn opportunities_pk(ws: &str) -> String {
    format!("WS#{ws}#OPPS")
}
pub fn opportunity(ws: &str, id: &str) -> Key {
    Key::new(opportunities_pk(ws), id)
}
/// The opportunities linked to one relationship (GSI1): what a derived status change moves.
pub fn relationship_opportunities_pk(ws: &str, rel: &str) -> String {
    format!("WS#{ws}#RELOPPS#{rel}")
}
/// The opportunities in one stage (GSI2): the stage filter, and a deleted stage's moves.
pub fn stage_opportunities_pk(ws: &str, stage: &str) -> String {
    format!("WS#{ws}#OPPSTG#{stage}")
}

/// A workspace's activity log (calls, emails, meetings, notes logged by hand), by id (time order).
pub fn activities_pk(ws: &str) -> String {
    format!("WS#{ws}#ACTS")
}
pub fn activity(ws: &str, id: &str) -> Key {
    Key::new(activities_pk(ws), id)
}
/// Activities of one opportunity (GSI1), one relationship (GSI2), one contact (GSI3).
pub fn opportunity_activities_pk(ws: &str, opp: &str) -> String {
    format!("WS#{ws}#OPPACTS#{opp}")
}
pub fn relationship_activities_pk(ws: &str, rel: &str) -> String {
    format!("WS#{ws}#RELACTS#{rel}")
}
pub fn contact_activities_pk(ws: &str, contact: &str) -> String {
    format!("WS#{ws}#CTACTS#{contact}")
}

/// A workspace's tasks, by id.
pub fn tasks_pk(ws: &str) -> String {
    format!("WS#{ws}#TASKS")
}
pub fn task(ws: &str, id: &str) -> Key {
    Key::new(tasks_pk(ws), id)
}
/// Tasks of one opportunity (GSI1).
pub fn opportunity_tasks_pk(ws: &str, opp: &str) -> String {
    format!("WS#{ws}#OPPTASKS#{opp}")
}
/// Open tasks with a due time, by due time (GSI3): what is due and overdue.
pub fn tasks_due_pk(ws: &str) -> String {
    format!("WS#{ws}#TASKDUE")
}
pub fn task_due_sort(due_at: &str, id: &str) -> String {
    format!("{due_at}#{id}")
}

/// A workspace's companies (its own view of partners; without a domain, private to it).
pub fn companies_pk(ws: &str) -> String {
    format!("WS#{ws}#COS")
}
pub fn company(ws: &str, id: &str) -> Key {
    Key::new(companies_pk(ws), id)
}
/// One company per partner account in a workspace: the guard every creator must win.
pub fn company_account(ws: &str, account: &str) -> Key {
    Key::new(format!("WS#{ws}#COACCT#{account}"), "#")
}
/// A company's opportunities (GSI3 of the opportunity).
pub fn company_opportunities_pk(ws: &str, company: &str) -> String {
    format!("WS#{ws}#COOPPS#{company}")
}
/// A company's activities (GSI4 of the activity).
pub fn company_activities_pk(ws: &str, company: &str) -> String {
    format!("WS#{ws}#COACTS#{company}")
}

/// A contact's company memberships in a workspace, one per company (sort key: the company id).
pub fn contact_memberships_pk(ws: &str, contact: &str) -> String {
    format!("WS#{ws}#CTMS#{contact}")
}
pub fn contact_membership(ws: &str, contact: &str, company: &str) -> Key {
    Key::new(contact_memberships_pk(ws, contact), company)
}
/// A company's contacts (GSI1 of the membership).
pub fn company_contacts_pk(ws: &str, company: &str) -> String {
    format!("WS#{ws}#COCTS#{company}")
}

/// A workspace's marketing lists (each with its `memberCount`).
pub fn marketing_lists_pk(ws: &str) -> String {
    format!("WS#{ws}#MLISTS")
}
pub fn marketing_list(ws: &str, id: &str) -> Key {
    Key::new(marketing_lists_pk(ws), id)
}
/// A marketing list's contacts, one item each (sort key: the contact id).
pub fn marketing_list_member(ws: &str, list: &str, contact: &str) -> Key {
    Key::new(format!("WS#{ws}#MLIST#{list}"), contact)
}
