//! Our resources in the peer's shapes, and the peer's template placeholders in ours. Field by
//! field, docs/dialects/backlink-outreach.md says where each comes from.

use serde_json::{json, Value};

fn s(v: &Value, k: &str) -> Value {
    v.get(k).cloned().unwrap_or(Value::Null)
}

/// A campaign (`link_building.campaign.*`'s Campaign or CampaignSummary).
pub fn campaign(c: &Value) -> Value {
    json!({
        "campaign_id": s(c, "id"),
        "id": s(c, "id"),
        "name": s(c, "name"),
        "description": s(c, "description"),
        "keywords": c.get("keywords").cloned().unwrap_or_else(|| json!([])),
        "status": s(c, "status"),
        "created_at": s(c, "createdAt"),
        "updated_at": c.get("updatedAt").cloned().unwrap_or_else(|| s(c, "createdAt")),
        "lead_count": c.get("membersCount").cloned().unwrap_or(Value::Null),
        "sent_count": s(c, "sentCount"),
        "replied_count": s(c, "repliedCount"),
        "placed_count": s(c, "placedCount"),
    })
}

/// A lead (`link_building.campaign.leads.*`'s Lead): the seed's names, and the names the
/// peer's code uses for the same facts.
pub fn lead(l: &Value) -> Value {
    json!({
        "lead_id": s(l, "relationshipId"),
        "id": s(l, "relationshipId"),
        "campaign_id": s(l, "campaignId"),
        "website_url": s(l, "websiteUrl"),
        "website_title": s(l, "websiteTitle"),
        "contact_email": s(l, "contactEmail"),
        "quality_score": s(l, "qualityScore"),
        "relevance_score": s(l, "relevanceScore"),
        "guest_post_likelihood": s(l, "guestPostLikelihood"),
        "source": s(l, "source"),
        "status": s(l, "status"),
        "notes": s(l, "notes"),
        "created_at": s(l, "addedAt"),
        "url": s(l, "websiteUrl"),
        "domain": s(l, "domain"),
        "page_title": l.get("websiteTitle").filter(|v| !v.is_null()).cloned().unwrap_or_else(|| json!("")),
        "snippet": l.get("snippet").filter(|v| !v.is_null()).cloned().unwrap_or_else(|| json!("")),
        "email": s(l, "contactEmail"),
        "confidence_score": l.get("guestPostLikelihood").filter(|v| !v.is_null()).cloned().unwrap_or_else(|| json!(0.0)),
        "discovery_source": s(l, "source"),
        "relationship_id": s(l, "relationshipId"),
        "account_id": s(l, "accountId"),
        "contact_id": s(l, "contactId"),
        "status_set_at": s(l, "statusSetAt"),
    })
}

/// A lead of the seed's request, as our `LeadInput`.
pub fn lead_input(l: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (theirs, ours) in [
        ("website_url", "websiteUrl"),
        ("website_title", "websiteTitle"),
        ("contact_email", "contactEmail"),
        ("quality_score", "qualityScore"),
        ("relevance_score", "relevanceScore"),
        ("guest_post_likelihood", "guestPostLikelihood"),
        ("source", "source"),
        ("snippet", "snippet"),
    ] {
        if let Some(v) = l.get(theirs).filter(|v| !v.is_null()) {
            out.insert(ours.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Our field names as this dialect spells them in problems about leads.
pub const LEAD_NAMES: crate::wire::Names = &[
    ("leads", "leads"),
    ("websiteUrl", "website_url"),
    ("websiteTitle", "website_title"),
    ("contactEmail", "contact_email"),
    ("qualityScore", "quality_score"),
    ("relevanceScore", "relevance_score"),
    ("guestPostLikelihood", "guest_post_likelihood"),
    ("relationshipIds", "lead_ids"),
    ("relationshipId", "lead_id"),
    ("id", "campaign_id"),
];

/// The seed's placeholders (`{name}`, `{website}`, `{topic}`, `{your_name}`, `{your_site}`) and
/// snake_case spellings of ours, each with ours.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("name", "firstName"),
    ("website", "domain"),
    ("topic", "keyword"),
    ("your_name", "senderName"),
    ("your_site", "workspaceName"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("full_name", "fullName"),
    ("position", "position"),
    ("domain", "domain"),
    ("account_name", "accountName"),
    ("target_blog_post", "targetBlogPost"),
    ("our_content", "ourContent"),
    ("keyword", "keyword"),
    ("competitor_domain", "competitorDomain"),
    ("sender_name", "senderName"),
    ("workspace_name", "workspaceName"),
];

/// Rewrites every `{name}` or `{name|fallback}` whose name `map` knows; others stay as written.
fn rewrite(text: &str, map: impl Fn(&str) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let inner = &after[..close];
                let (name, fallback) = match inner.split_once('|') {
                    Some((n, f)) => (n, Some(f)),
                    None => (inner, None),
                };
                match map(name.trim()) {
                    Some(ours) => {
                        out.push('{');
                        out.push_str(ours);
                        if let Some(f) = fallback {
                            out.push('|');
                            out.push_str(f);
                        }
                        out.push('}');
                    }
                    None => {
                        out.push('{');
                        out.push_str(inner);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The seed's placeholders as ours.
pub fn to_ours(text: &str) -> String {
    rewrite(text, |n| PLACEHOLDERS.iter().find(|(theirs, _)| *theirs == n).map(|(_, o)| *o))
}

/// Our placeholders as the seed's (its own names where it has one, else snake_case).
pub fn to_theirs(text: &str) -> String {
    rewrite(text, |n| PLACEHOLDERS.iter().find(|(_, ours)| *ours == n).map(|(t, _)| *t))
}

/// A template (`link_building.templates.*`).
pub fn template(t: &Value) -> Value {
    let subject = to_theirs(t.get("subject").and_then(Value::as_str).unwrap_or_default());
    let body = to_theirs(t.get("body").and_then(Value::as_str).unwrap_or_default());
    let placeholders: Vec<Value> = t
        .get("placeholders")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|p| {
                    json!(PLACEHOLDERS
                        .iter()
                        .find(|(_, o)| *o == p)
                        .map(|(t, _)| (*t).to_owned())
                        .unwrap_or_else(|| p.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "template_id": s(t, "id"),
        "id": s(t, "id"),
        "name": s(t, "name"),
        "subject": subject,
        "body": body,
        "category": s(t, "category"),
        "placeholders": placeholders,
        "variables": placeholders,
        "subject_template": subject,
        "body_template": body,
        "created_at": s(t, "createdAt"),
        "updated_at": s(t, "updatedAt"),
    })
}

/// A suppression entry (`suppression.*`): an address, or a whole domain.
pub fn suppression(e: &Value) -> Value {
    let value = s(e, "value");
    let kind = e.get("kind").and_then(Value::as_str).unwrap_or("email");
    let domain = match (kind, value.as_str()) {
        ("domain", _) => value.clone(),
        (_, Some(v)) => v.split_once('@').map(|(_, d)| json!(d)).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "id": value,
        "email": if kind == "email" { value.clone() } else { Value::Null },
        "domain": domain,
        "reason": s(e, "reason"),
        "source": s(e, "source"),
        "created_at": s(e, "createdAt"),
    })
}

/// An email the writer made.
pub fn email(e: &Value) -> Value {
    json!({ "subject": s(e, "subject"), "body": s(e, "body"), "credits_charged": s(e, "creditsCharged") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_map_both_ways() {
        let seed = "Hi {name|there}, I follow {website}. About {topic}: {your_name} of {your_site}. {unknown} {";
        let ours = to_ours(seed);
        assert_eq!(
            ours,
            "Hi {firstName|there}, I follow {domain}. About {keyword}: {senderName} of {workspaceName}. {unknown} {"
        );
        assert_eq!(to_theirs(&ours), seed);
        assert_eq!(to_ours("{first_name} {our_content}"), "{firstName} {ourContent}");
    }
}
