//! CRM records as stored items, and how they read as API resources.

use crate::error::{ApiError, DataResult};
use crate::keys;
use linkcrm_domain::crm::{Account, Contact, Event, Relationship};
use linkcrm_domain::derive::{self, AccountContactFacts, CoolingPolicy, RelationshipState};
use linkcrm_domain::enums::{PipelineStatus, Priority, Source};
use linkcrm_domain::time;
use linkcrm_storage::Item;
use serde_json::{json, Value};

/// Attribute prefix of an account's per-workspace latest send: `orgContact#<ws>`.
pub const ORG_CONTACT: &str = "orgContact#";
/// An account's latest sends of its two most recently sending workspaces
/// (`AccountContactFacts::latest_org_contacts`): enough for CONTACTED_BY_OTHER_ORG, so a list
/// reads this one attribute of each account instead of the whole item.
pub const LATEST_ORG_CONTACTS: &str = "latestOrgContacts";
/// What a relationship list reads of each account on its page.
pub const ACCOUNT_LIST_ATTRS: &[&str] = &["id", LATEST_ORG_CONTACTS];

pub use linkcrm_core::items::{corrupt, int_of, obj, parse, str_of};

/// A new account item for a domain nobody had yet.
pub fn new_account_item(id: &str, domain: &str, source: Source, now: &str) -> Item {
    let key = keys::account(id);
    let shard = keys::shard_of(id, keys::ACCOUNT_SHARDS);
    obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "account",
        "id": id, "domain": domain, "name": null, "source": source, "sourceDetails": null, "rawNotes": null,
        "bestContactId": null, "isActive": true,
        "priceLinkInsertion": null, "priceGuestPost": null, "priceContext": null, "pricesUpdatedAt": null,
        "domainRating": null, "organicTraffic": null, "organicKeywords": null, "referringDomains": null,
        "backlinks": null, "ahrefStatsUpdatedAt": null,
        "contactAttemptCount": 0, "receivedCount": 0, "recentSends": [], "doNotContact": false,
        "createdAt": now, "updatedAt": now, "version": 1,
        "GSI1PK": keys::accounts_by_dr_pk(shard), "GSI1SK": keys::dr_sort(None, id),
        "GSI2PK": keys::accounts_by_domain_pk(domain), "GSI2SK": domain,
        "GSI3PK": keys::metrics_due_pk(shard), "GSI3SK": keys::metrics_due_sort(None, id),
    }))
}

pub struct AccountRecord(pub Item);

impl AccountRecord {
    pub fn id(&self) -> &str {
        str_of(&self.0, "id").unwrap_or_default()
    }
    pub fn domain(&self) -> &str {
        str_of(&self.0, "domain").unwrap_or_default()
    }
    pub fn version(&self) -> i64 {
        int_of(&self.0, "version").unwrap_or(1)
    }
    pub fn do_not_contact(&self) -> bool {
        self.0.get("doNotContact").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn price_known(&self) -> bool {
        ["priceLinkInsertion", "priceGuestPost"].iter().any(|k| self.0.get(*k).is_some_and(|v| !v.is_null()))
    }

    pub fn facts(&self) -> AccountContactFacts {
        let i = &self.0;
        AccountContactFacts {
            contact_attempt_count: int_of(i, "contactAttemptCount").unwrap_or(0),
            first_contact: str_of(i, "firstContact").map(str::to_owned),
            last_contact: str_of(i, "lastContact").map(str::to_owned),
            received_count: int_of(i, "receivedCount").unwrap_or(0),
            last_received_at: str_of(i, "lastReceivedAt").map(str::to_owned),
            recent_sends: i
                .get("recentSends")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            last_contact_by_org: i
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(ORG_CONTACT)?.to_owned(), v.as_str()?.to_owned())))
                .collect(),
        }
    }

    /// `AccountContactFacts::contacted_by_other_org` from `latestOrgContacts` alone, so it also
    /// works on an item projected to [`ACCOUNT_LIST_ATTRS`] (lists ask it of every account on a
    /// page).
    pub fn contacted_by_other_org(&self, ws: &str, policy: CoolingPolicy) -> bool {
        let since = time::format(time::now() - chrono::Duration::days(policy.days));
        derive::other_org_contacted_since(&self.latest_org_contacts(), ws, &since)
    }

    /// The stored `latestOrgContacts` (empty for an account no workspace has sent to).
    pub fn latest_org_contacts(&self) -> Vec<String> {
        self.0
            .get(LATEST_ORG_CONTACTS)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The account as the API shows it, derived fields computed from the stored facts.
    pub fn view(&self, policy: CoolingPolicy) -> DataResult<Account> {
        let mut a: Account = parse("account", &self.0)?;
        let facts = self.facts();
        let first = facts.first_contact.as_deref().map(derive::split_stamp);
        let last = facts.last_contact.as_deref().map(derive::split_stamp);
        a.first_contacted_at = first.as_ref().map(|f| f.0.clone());
        a.first_contacted_by_org_id = first.map(|f| f.1);
        a.last_contacted_at = last.as_ref().map(|l| l.0.clone());
        a.last_contacted_by_org_id = last.map(|l| l.1);
        a.contact_attempt_count = facts.contact_attempt_count;
        a.cooling_off_until = facts.cooling_off_until(policy);
        a.system_contact_status = Some(derive::system_contact_status(
            self.do_not_contact(),
            a.cooling_off_until.as_deref(),
            self.price_known(),
            &facts,
            time::now(),
        ));
        Ok(a)
    }
}

pub struct RelationshipRecord(pub Item);

impl RelationshipRecord {
    pub fn id(&self) -> &str {
        str_of(&self.0, "id").unwrap_or_default()
    }
    pub fn workspace(&self) -> &str {
        str_of(&self.0, "organizationId").unwrap_or_default()
    }
    pub fn account_id(&self) -> &str {
        str_of(&self.0, "accountId").unwrap_or_default()
    }
    pub fn version(&self) -> i64 {
        int_of(&self.0, "version").unwrap_or(1)
    }
    pub fn seq(&self) -> i64 {
        int_of(&self.0, "seq").unwrap_or(0)
    }
    pub fn archived(&self) -> bool {
        self.0.get("archived").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn status(&self) -> PipelineStatus {
        str_of(&self.0, "status").and_then(PipelineStatus::parse).unwrap_or(PipelineStatus::Prospecting)
    }

    pub fn state(&self) -> RelationshipState {
        let i = &self.0;
        let s = |k: &str| str_of(i, k).map(str::to_owned);
        RelationshipState {
            status: self.status(),
            contacted_by_us: i.get("contactedByUs").and_then(Value::as_bool).unwrap_or(false),
            first_contacted_by_us_at: s("firstContactedByUsAt"),
            last_contacted_by_us_at: s("lastContactedByUsAt"),
            first_contacted_at: s("firstContactedAt"),
            last_event_at: s("lastEventAt").unwrap_or_default(),
            seq: self.seq(),
            links: i.get("linkStates").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default(),
        }
    }

    /// The relationship as its workspace sees it (CONTACTED_BY_OTHER_ORG computed now).
    pub fn view(&self, contacted_by_other_org: bool) -> DataResult<Relationship> {
        let mut r: Relationship = parse("relationship", &self.0)?;
        r.contacted_by_other_org = contacted_by_other_org;
        r.status = derive::displayed_status(r.status, contacted_by_other_org);
        Ok(r)
    }
}

/// The attributes a relationship state sets, with the index keys that follow from them.
pub fn state_attrs(rel_id: &str, ws: &str, s: &RelationshipState) -> Vec<(&'static str, Value)> {
    let mut attrs = vec![
        ("status", json!(s.status)),
        ("contactedByUs", json!(s.contacted_by_us)),
        ("firstContactedByUsAt", json!(s.first_contacted_by_us_at)),
        ("lastContactedByUsAt", json!(s.last_contacted_by_us_at)),
        ("firstContactedAt", json!(s.first_contacted_at)),
        ("lastEventAt", json!(s.last_event_at)),
        ("seq", json!(s.seq)),
        ("GSI1SK", json!(keys::recency_sort(&s.last_event_at, rel_id))),
        ("GSI2PK", json!(keys::workspace_status_pk(ws, s.status.as_str()))),
        ("GSI2SK", json!(keys::recency_sort(&s.last_event_at, rel_id))),
    ];
    // Only relationships with monitored links carry them (seed 000's shape is unchanged otherwise).
    if !s.links.is_empty() {
        attrs.push(("linkStates", json!(s.links)));
        attrs.push(("linkStatus", json!(s.link_status())));
    }
    attrs
}

#[allow(clippy::too_many_arguments)]
pub fn new_relationship_item(
    id: &str,
    ws: &str,
    account: &AccountRecord,
    source: Source,
    source_details: Option<Value>,
    priority: Option<Priority>,
    fields: [Option<String>; 3],
    state: &RelationshipState,
    now: &str,
) -> Item {
    let key = keys::relationship(id);
    let [raw_notes, target_blog_post, our_content] = fields;
    let mut item = obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "relationship",
        "id": id, "organizationId": ws, "accountId": account.id(), "accountDomain": account.domain(),
        "source": source, "sourceDetails": source_details, "rawNotes": raw_notes,
        "targetBlogPost": target_blog_post, "ourContent": our_content, "priority": priority,
        "contactedByOtherOrg": false, "archived": false, "createdAt": now, "updatedAt": now, "version": 1,
        "GSI1PK": keys::workspace_relationships_pk(ws),
        "GSI3PK": keys::account_relationships_pk(account.id()), "GSI3SK": ws,
    }));
    for (k, v) in state_attrs(id, ws, state) {
        item.insert(k.into(), v);
    }
    item
}

pub fn event_view(item: &Item) -> DataResult<Event> {
    parse("event", item)
}

/// A contact as stored, without notes: notes are each workspace's own (`contact_note_item`), so
/// whatever a shared item still carries under `notes` is never shown.
pub fn contact_view(item: &Item) -> DataResult<Contact> {
    let mut c: Contact = parse("contact", item)?;
    c.notes = None;
    Ok(c)
}

/// A workspace's private notes on a contact.
pub fn contact_note_item(ws: &str, contact: &str, notes: &str) -> Item {
    contact_overlay_item(ws, contact, Some(notes), None, None, None)
}

/// A workspace's own fields on a shared contact (notes, phone, owner), in one item.
pub fn contact_overlay_item(
    ws: &str,
    contact: &str,
    notes: Option<&str>,
    phone: Option<&str>,
    owner: Option<&str>,
    primary_company: Option<&str>,
) -> Item {
    let key = keys::contact_note(ws, contact);
    obj(json!({ "PK": key.pk, "SK": key.sk, "entity": "contactNote", "contactId": contact, "notes": notes,
                "phone": phone, "ownerId": owner, "primaryCompanyId": primary_company, "inWorkspace": true }))
}

pub fn contact_item(c: &Contact, version: i64) -> Item {
    let key = keys::contact(&c.id);
    let mut item = match serde_json::to_value(c).expect("contacts serialise") {
        Value::Object(m) => m,
        _ => unreachable!("a struct serialises to an object"),
    };
    // Notes are each workspace's own (`records::contact_note_item`), never on the shared item.
    item.remove("notes");
    item.remove("phone");
    item.remove("ownerId");
    item.remove("primaryCompanyId");
    let extra = obj(json!({
        "PK": key.pk, "SK": key.sk, "entity": "contact", "version": version,
        "GSI1PK": keys::account_contacts_pk(&c.account_id), "GSI1SK": c.id,
        "GSI2PK": keys::contacts_pk(keys::shard_of(&c.id, keys::CONTACT_SHARDS)), "GSI2SK": c.id,
    }));
    item.extend(extra);
    item
}

pub fn email_guard_item(email: &str, contact_id: &str, account_id: &str) -> Item {
    let key = keys::email_guard(email);
    obj(json!({ "PK": key.pk, "SK": key.sk, "entity": "emailGuard", "contactId": contact_id, "accountId": account_id }))
}

/// A contact named for a relationship whose partner it does not work at.
pub fn contact_not_at_account(account: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "contact_not_at_account",
        "The contact works at another account than the relationship's partner.",
    )
    .with_details(json!({ "accountId": account }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list's reading of `latestOrgContacts` agrees with the facts it shortcuts, for every
    /// combination of four workspaces' last sends (none, recent, older, outside the window) and
    /// every viewer.
    #[test]
    fn contacted_by_other_org_from_the_latest_two_agrees_with_every_stamp() {
        let policy = CoolingPolicy { sends: 3, days: 30 };
        let ago = |d: i64| Some(time::format(time::now() - chrono::Duration::days(d)));
        let choices = [None, ago(1), ago(10), ago(45)];
        let orgs = ["ws_a", "ws_b", "ws_c", "ws_d"];
        let mut checked = 0;
        for combo in 0..choices.len().pow(orgs.len() as u32) {
            let mut facts = AccountContactFacts::default();
            let mut c = combo;
            for org in orgs {
                if let Some(t) = &choices[c % choices.len()] {
                    facts.last_contact_by_org.insert(org.to_owned(), t.clone());
                }
                c /= choices.len();
            }
            let account = AccountRecord(obj(json!({ LATEST_ORG_CONTACTS: facts.latest_org_contacts() })));
            for me in orgs.iter().chain(&["ws_other"]) {
                assert_eq!(
                    account.contacted_by_other_org(me, policy),
                    facts.contacted_by_other_org(me, time::now(), policy),
                    "{me} viewing {:?}",
                    facts.last_contact_by_org
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 256 * 5);
    }
}
