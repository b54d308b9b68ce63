//! Who a campaign writes to and with what values: the contact chosen for a relationship and the
//! placeholder values a template is rendered with. Shared by drafting, `send-email` and the
//! template preview.

use crate::error::{ApiError, ApiResult};
use crate::placeholders::Values;
use crate::App;
use linkcrm_crm::keys as crm_keys;
use linkcrm_crm::records::{str_of, RelationshipRecord};
use linkcrm_storage::{Condition, Index, Item, Query};
use serde_json::json;

/// Contact `id`, which must be at the relationship's account.
pub async fn contact_at(app: &App, rel: &RelationshipRecord, id: &str) -> ApiResult<Item> {
    let c = app
        .store
        .get(&crm_keys::contact(id))
        .await?
        .ok_or_else(|| ApiError::not_found("contact_not_found", "contact", id))?;
    if str_of(&c, "accountId") != Some(rel.account_id()) {
        return Err(linkcrm_crm::records::contact_not_at_account(rel.account_id()));
    }
    Ok(c)
}

fn has_email(c: &Item) -> bool {
    str_of(c, "email").is_some_and(|e| !e.is_empty())
}

/// The account's `bestContactId` if it has an email, else the account's first contact with one.
pub async fn best_contact(app: &App, rel: &RelationshipRecord) -> ApiResult<Option<Item>> {
    let account = app.store.get(&crm_keys::account(rel.account_id())).await?;
    if let Some(best) = account.as_ref().and_then(|a| str_of(a, "bestContactId")) {
        if let Some(c) = app.store.get(&crm_keys::contact(best)).await?.filter(has_email) {
            return Ok(Some(c));
        }
    }
    let page =
        app.store.query(Query::index(Index::Gsi1, crm_keys::account_contacts_pk(rel.account_id())).limit(25)).await?;
    Ok(page.items.into_iter().find(has_email))
}

/// For a SERP or competitor campaign: the account's `bestContactId` if it has an email, else the
/// contact with an email that best fits the roles and seniority asked for (position first), which
/// becomes the account's `bestContactId` when it has none (seed 002's pipeline).
pub async fn best_contact_for(
    app: &App,
    rel: &RelationshipRecord,
    roles: &[String],
    seniority: &[String],
) -> ApiResult<Option<Item>> {
    let account = app.store.get(&crm_keys::account(rel.account_id())).await?;
    if let Some(best) = account.as_ref().and_then(|a| str_of(a, "bestContactId")) {
        if let Some(c) = app.store.get(&crm_keys::contact(best)).await?.filter(has_email) {
            return Ok(Some(c));
        }
    }
    let page =
        app.store.query(Query::index(Index::Gsi1, crm_keys::account_contacts_pk(rel.account_id())).limit(50)).await?;
    let score = |c: &Item| {
        let pos = str_of(c, "position").unwrap_or_default().to_lowercase();
        let sen = str_of(c, "seniority").unwrap_or_default().to_lowercase();
        2 * i32::from(roles.iter().any(|r| pos.contains(&r.to_lowercase())))
            + i32::from(seniority.iter().any(|s| sen == s.to_lowercase()))
    };
    let mut found: Vec<Item> = page.items.into_iter().filter(has_email).collect();
    found.sort_by_key(|c| -score(c));
    let chosen = found.into_iter().next();
    if let (Some(c), Some(_)) = (&chosen, &account) {
        if account.as_ref().and_then(|a| str_of(a, "bestContactId")).is_none() {
            let u = linkcrm_storage::Update::new()
                .set("bestContactId", str_of(c, "id"))
                .set("updatedAt", linkcrm_domain::time::now_string())
                .add("version", 1);
            let cond = Condition::Or(vec![
                Condition::AttrAbsent("bestContactId".into()),
                Condition::Equals("bestContactId".into(), serde_json::Value::Null),
            ]);
            match app
                .store
                .transact(vec![linkcrm_storage::TxOp::update_if(crm_keys::account(rel.account_id()), u, cond)])
                .await
            {
                Ok(()) | Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(chosen)
}

/// The contact this workspace last emailed in the relationship (its latest EMAIL_SENT).
pub async fn last_emailed_contact(app: &App, rel: &RelationshipRecord) -> ApiResult<Option<String>> {
    let q = Query::index(Index::Gsi1, crm_keys::relationship_events_pk(rel.workspace(), rel.account_id()))
        .backward()
        .limit(50)
        .filter(Condition::Equals("type".into(), json!("EMAIL_SENT")));
    let page = app.store.query(q).await?;
    Ok(page.items.first().and_then(|e| str_of(e, "contactId")).map(str::to_owned))
}

/// The placeholder values for a relationship and contact (CONTRACT names). `keyword` and
/// `competitorDomain` come from the campaign; `senderName` from the mailbox sends go from.
pub async fn values(
    app: &App,
    workspace_name: Option<&str>,
    rel: &RelationshipRecord,
    contact: Option<&Item>,
    campaign: Option<&Item>,
    sender_name: Option<&str>,
) -> ApiResult<Values> {
    let mut v = Values::default();
    let account = app.store.get(&crm_keys::account(rel.account_id())).await?;
    if let Some(c) = contact {
        let first = str_of(c, "firstName");
        let last = str_of(c, "lastName");
        v.set("firstName", first);
        v.set("lastName", last);
        let full = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
        v.set("fullName", Some(full));
        v.set("position", str_of(c, "position"));
    }
    v.set("domain", str_of(&rel.0, "accountDomain"));
    v.set("accountName", account.as_ref().and_then(|a| str_of(a, "name")));
    v.set("targetBlogPost", str_of(&rel.0, "targetBlogPost"));
    v.set("ourContent", str_of(&rel.0, "ourContent"));
    if let Some(c) = campaign {
        let settings = c.get("settings");
        v.set("keyword", settings.and_then(|s| s.get("keyword")).and_then(|k| k.as_str()));
        v.set("competitorDomain", settings.and_then(|s| s.get("competitorDomain")).and_then(|k| k.as_str()));
    }
    v.set("senderName", sender_name);
    v.set("workspaceName", workspace_name);
    Ok(v)
}
