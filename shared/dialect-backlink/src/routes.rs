//! The dialect's route table: every endpoint of seed 003, what it takes, which operations of ours
//! it calls, and what it answers. The OpenAPI document and the deployment template check are
//! made from it.

use crate::handlers::{self as h, Result};
use crate::wire::{opt, req, Field, Kind, LINE, SCORE};
use crate::Req;
use futures::future::BoxFuture;

pub type Handler = for<'a> fn(&'a Req) -> BoxFuture<'a, Result>;

pub enum BodySpec {
    None,
    Object(&'static [Field]),
    /// A JSON array of objects (bulk routes), at most `max`.
    Array {
        fields: &'static [Field],
        max: usize,
    },
}

/// What a route answers on success, for the OpenAPI document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Campaign,
    CampaignWithLeads,
    Campaigns,
    Lead,
    BulkAdd,
    BulkStatus,
    Email,
    Suggestions,
    Template,
    Templates,
    Suppression,
    Suppressions,
    Policy,
    Attempt,
    Attempts,
    FollowUps,
    Poll,
    Replies,
    Analytics,
    Snapshot,
    Csv,
    Discovery,
    Empty,
}

pub struct Route {
    pub method: &'static str,
    /// Below the prefix, with the seed's parameter names.
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The operations of ours it calls.
    pub operations: &'static [&'static str],
    pub query: &'static [Field],
    pub body: BodySpec,
    pub status: u16,
    pub shape: Shape,
    pub handler: Handler,
}

const WORKSPACE: Field = opt(
    "workspace_id",
    Kind::Str { min: 0, max: 100 },
    "An agency key's workspace (`ws_…`); for a workspace key absent or `default` (its own)",
);
const WS_ONLY: &[Field] = &[WORKSPACE];
const TONE: Kind = Kind::Literal(&["professional", "friendly", "casual", "formal"]);
pub const LEAD_STATUSES: &[&str] = &["discovered", "contacted", "replied", "placed", "bounced", "lost"];

const LEAD_FIELDS: &[Field] = &[
    req("website_url", Kind::Str { min: 1, max: 2048 }, "Target website URL."),
    opt("website_title", Kind::Str { min: 0, max: 500 }, "Website title."),
    opt("contact_email", Kind::Str { min: 0, max: 320 }, "Contact email address."),
    opt("quality_score", SCORE, "Quality score (0-1)."),
    opt("relevance_score", SCORE, "Relevance score (0-1)."),
    opt("guest_post_likelihood", SCORE, "Guest post likelihood (0-1)."),
    opt("source", Kind::Str { min: 0, max: 100 }, "Source of the lead."),
    opt("snippet", Kind::Str { min: 0, max: 2000 }, "Search snippet or notes on the page."),
];

macro_rules! route {
    ($method:literal, $path:literal, $summary:literal, $tag:literal, [$($op:literal),*], $query:expr, $body:expr, $status:literal, $shape:ident, $handler:path) => {
        Route {
            method: $method,
            path: $path,
            summary: $summary,
            tag: $tag,
            operations: &[$($op),*],
            query: $query,
            body: $body,
            status: $status,
            shape: Shape::$shape,
            handler: $handler,
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!(
        "POST",
        "/campaigns",
        "Create Campaign",
        "Campaigns",
        ["link_building.campaign.create"],
        &[],
        BodySpec::Object(&[
            req("name", Kind::Str { min: 1, max: 200 }, "Campaign name."),
            opt("description", Kind::Str { min: 0, max: 2000 }, "Campaign description."),
            opt("keywords", Kind::StrList { min: 0, max: 50 }, "Target keywords for discovery."),
            WORKSPACE,
        ]),
        201,
        Campaign,
        h::create_campaign
    ),
    route!(
        "GET",
        "/campaigns",
        "List Campaigns",
        "Campaigns",
        ["link_building.campaign.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        Campaigns,
        h::list_campaigns
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}",
        "Get Campaign",
        "Campaigns",
        ["link_building.campaign.get", "link_building.campaign.leads.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        CampaignWithLeads,
        h::get_campaign
    ),
    route!(
        "DELETE",
        "/campaigns/{campaign_id}",
        "Delete Campaign",
        "Campaigns",
        ["link_building.campaign.cancel"],
        WS_ONLY,
        BodySpec::None,
        204,
        Empty,
        h::delete_campaign
    ),
    route!(
        "POST",
        "/campaigns/{campaign_id}/leads",
        "Add Lead",
        "Leads",
        ["link_building.campaign.leads.add", "link_building.campaign.leads.get"],
        WS_ONLY,
        BodySpec::Object(LEAD_FIELDS),
        201,
        Lead,
        h::add_lead
    ),
    route!(
        "POST",
        "/campaigns/{campaign_id}/leads/bulk",
        "Bulk Add Leads",
        "Leads",
        ["link_building.campaign.leads.add"],
        WS_ONLY,
        BodySpec::Array { fields: LEAD_FIELDS, max: 1000 },
        200,
        BulkAdd,
        h::bulk_add_leads
    ),
    route!(
        "PATCH",
        "/campaigns/{campaign_id}/leads/{lead_id}/status",
        "Update Lead Status",
        "Leads",
        ["link_building.campaign.leads.update_status"],
        WS_ONLY,
        BodySpec::Object(&[
            req("status", Kind::Literal(LEAD_STATUSES), "New status."),
            opt("notes", Kind::Str { min: 0, max: 2000 }, "Replaces the lead's notes."),
            WORKSPACE,
        ]),
        200,
        Lead,
        h::update_lead_status
    ),
    route!(
        "PATCH",
        "/campaigns/{campaign_id}/leads/bulk-status",
        "Bulk Update Status",
        "Leads",
        ["link_building.campaign.leads.update_status"],
        WS_ONLY,
        BodySpec::Object(&[
            req("lead_ids", Kind::StrList { min: 1, max: 1000 }, "Lead IDs to update."),
            req("status", Kind::Literal(LEAD_STATUSES), "New status for all leads."),
            opt("notes", Kind::Str { min: 0, max: 2000 }, "Replaces the leads' notes."),
            WORKSPACE,
        ]),
        200,
        BulkStatus,
        h::bulk_update_lead_status
    ),
    route!(
        "POST",
        "/discover/deep",
        "Deep Discovery",
        "Discovery",
        ["research.opportunities"],
        &[],
        BodySpec::Object(&[
            req("keyword", Kind::Str { min: 1, max: 200 }, "Search keyword or phrase."),
            opt("campaign_id", LINE, "Campaign to save results to."),
            opt("max_results", Kind::Int { min: 1, max: 100 }, "Maximum results to return (default 20)."),
            opt("save_to_campaign", Kind::Bool, "Auto-save results to campaign."),
            WORKSPACE,
        ]),
        200,
        Discovery,
        h::discover_deep
    ),
    route!(
        "POST",
        "/emails/generate",
        "Generate Email",
        "Email",
        ["link_building.emails.generate"],
        &[],
        BodySpec::Object(&[
            req("topic", Kind::Str { min: 1, max: 500 }, "Email topic."),
            opt("tone", TONE, "professional, friendly, casual, formal."),
            opt("template_id", LINE, "Template to base generation on."),
            WORKSPACE,
        ]),
        200,
        Email,
        h::generate_email
    ),
    route!(
        "POST",
        "/emails/personalize",
        "Personalize Email",
        "Email",
        ["link_building.emails.personalize"],
        &[],
        BodySpec::Object(&[
            req("base_email", Kind::Str { min: 1, max: 20000 }, "Email content to personalize."),
            opt("lead_name", Kind::Str { min: 0, max: 200 }, "Lead's name."),
            opt("lead_website", Kind::Str { min: 0, max: 500 }, "Lead's website."),
            opt("content_topic", Kind::Str { min: 0, max: 500 }, "Topic to reference."),
            WORKSPACE,
        ]),
        200,
        Email,
        h::personalize_email
    ),
    route!(
        "POST",
        "/emails/subject-suggestions",
        "Subject Suggestions",
        "Email",
        ["link_building.emails.subject_suggestions"],
        &[],
        BodySpec::Object(&[
            req("topic", Kind::Str { min: 1, max: 500 }, "Email topic."),
            opt("tone", TONE, "Tone for suggestions."),
            WORKSPACE,
        ]),
        200,
        Suggestions,
        h::subject_suggestions
    ),
    route!(
        "POST",
        "/emails/follow-up",
        "Generate Follow-up",
        "Email",
        ["link_building.emails.follow_up"],
        &[],
        BodySpec::Object(&[
            req("original_subject", Kind::Str { min: 1, max: 998 }, "Subject of original email."),
            req("original_body", Kind::Str { min: 1, max: 20000 }, "Body of original email."),
            opt("tone", TONE, "Tone for follow-up."),
            WORKSPACE,
        ]),
        200,
        Email,
        h::follow_up_email
    ),
    route!(
        "POST",
        "/emails/templates",
        "Create Template",
        "Email",
        ["link_building.templates.create"],
        &[],
        BodySpec::Object(&[
            req("name", Kind::Str { min: 1, max: 200 }, "Template name."),
            req("subject", Kind::Str { min: 1, max: 998 }, "Subject line with {placeholders}."),
            req("body", Kind::Str { min: 1, max: 100000 }, "Email body with {placeholders}."),
            opt("category", Kind::Str { min: 0, max: 100 }, "Template category."),
            WORKSPACE,
        ]),
        201,
        Template,
        h::create_template
    ),
    route!(
        "GET",
        "/emails/templates",
        "List Templates",
        "Email",
        ["link_building.templates.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        Templates,
        h::list_templates
    ),
    route!(
        "GET",
        "/emails/templates/{template_id}",
        "Get Template",
        "Email",
        ["link_building.templates.get"],
        WS_ONLY,
        BodySpec::None,
        200,
        Template,
        h::get_template
    ),
    route!(
        "DELETE",
        "/emails/templates/{template_id}",
        "Delete Template",
        "Email",
        ["link_building.templates.delete"],
        WS_ONLY,
        BodySpec::None,
        204,
        Empty,
        h::delete_template
    ),
    route!(
        "POST",
        "/outreach/send",
        "Send Outreach",
        "Outreach",
        [
            "link_building.campaign.leads.get",
            "policy.validate",
            "link_building.campaign.send_email",
            "agent.invocations.get"
        ],
        &[],
        BodySpec::Object(&[
            req("campaign_id", LINE, "Campaign for the outreach."),
            req("lead_id", LINE, "Lead to send to."),
            req("subject", Kind::Str { min: 1, max: 998 }, "Email subject."),
            req("body", Kind::Str { min: 1, max: 100000 }, "Email body."),
            WORKSPACE,
        ]),
        200,
        Attempt,
        h::send_outreach
    ),
    route!(
        "POST",
        "/policy/validate",
        "Validate Policy",
        "Outreach",
        ["policy.validate"],
        &[],
        BodySpec::Object(&[
            req("recipient_email", Kind::Str { min: 1, max: 320 }, "Recipient email address."),
            req("sender_email", Kind::Str { min: 1, max: 320 }, "Sender email address."),
            opt("subject", Kind::Str { min: 0, max: 998 }, "Email subject for idempotency check."),
            WORKSPACE,
        ]),
        200,
        Policy,
        h::validate_policy
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/attempts",
        "List Attempts",
        "Outreach",
        ["link_building.campaign.drafts"],
        WS_ONLY,
        BodySpec::None,
        200,
        Attempts,
        h::list_attempts
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/follow-ups",
        "List Follow-ups",
        "Outreach",
        ["link_building.campaign.drafts", "link_building.campaign.leads.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        FollowUps,
        h::list_follow_ups
    ),
    route!(
        "POST",
        "/replies/poll",
        "Poll Replies",
        "Replies",
        ["link_building.campaign.get", "link_building.inbound.poll"],
        &[],
        BodySpec::Object(&[opt("campaign_id", LINE, "Campaign to filter by."), WORKSPACE]),
        200,
        Poll,
        h::poll_replies
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/replies",
        "List Replies",
        "Replies",
        ["link_building.campaign.replies", "link_building.campaign.drafts"],
        WS_ONLY,
        BodySpec::None,
        200,
        Replies,
        h::list_replies
    ),
    route!(
        "POST",
        "/suppression",
        "Add to Suppression",
        "Suppression",
        ["suppression.add"],
        &[],
        BodySpec::Object(&[
            req("email", Kind::Str { min: 3, max: 320 }, "Email to suppress."),
            opt("reason", Kind::Str { min: 0, max: 500 }, "Reason for suppression."),
            WORKSPACE,
        ]),
        201,
        Suppression,
        h::add_suppression
    ),
    route!(
        "GET",
        "/suppression",
        "List Suppressed",
        "Suppression",
        ["suppression.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        Suppressions,
        h::list_suppression
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/analytics",
        "Campaign Analytics",
        "Analytics",
        [
            "link_building.campaign.get",
            "link_building.campaign.leads.list",
            "link_building.campaign.replies",
            "link_building.campaign.metrics",
            "link_building.campaign.drafts"
        ],
        &[opt("days", Kind::Int { min: 1, max: 365 }, "Days to include in trends."), WORKSPACE],
        BodySpec::None,
        200,
        Analytics,
        h::campaign_analytics
    ),
    route!(
        "GET",
        "/reporting/snapshot",
        "Reporting Snapshot",
        "Analytics",
        ["link_building.reporting.snapshot"],
        WS_ONLY,
        BodySpec::None,
        200,
        Snapshot,
        h::reporting_snapshot
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/export/leads",
        "Export Leads",
        "Analytics",
        ["link_building.campaign.leads.list"],
        WS_ONLY,
        BodySpec::None,
        200,
        Csv,
        h::export_leads
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/export/attempts",
        "Export Attempts",
        "Analytics",
        ["link_building.campaign.drafts"],
        WS_ONLY,
        BodySpec::None,
        200,
        Csv,
        h::export_attempts
    ),
    route!(
        "GET",
        "/campaigns/{campaign_id}/export/replies",
        "Export Replies",
        "Analytics",
        ["link_building.campaign.replies", "link_building.campaign.drafts"],
        WS_ONLY,
        BodySpec::None,
        200,
        Csv,
        h::export_replies
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes as the template check reads them (`infra/dialect-routes.json`): each under both
    /// prefixes, served by the dialect's function. `LINKCRM_UPDATE_ROUTES=1` rewrites the file.
    #[test]
    fn infra_dialect_routes_json_is_the_table() {
        let mut rows = Vec::new();
        for prefix in crate::PREFIXES {
            for r in ROUTES {
                rows.push(serde_json::json!({
                    "method": r.method, "path": format!("{prefix}{}", r.path),
                    "operation": r.operations.first().copied().unwrap_or("(not built)"),
                    "family": "dialect-backlink-outreach",
                }));
            }
        }
        let text = serde_json::to_string_pretty(&rows).unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/dialect-routes.json");
        if std::env::var("LINKCRM_UPDATE_ROUTES").is_ok() {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            text,
            "infra/dialect-routes.json is stale: run LINKCRM_UPDATE_ROUTES=1 cargo test -p linkcrm-dialect-backlink"
        );
    }

    #[test]
    fn every_operation_named_exists_and_the_seed_routes_are_all_here() {
        let ops: Vec<&str> = linkcrm_core_names();
        for r in ROUTES {
            for op in r.operations {
                assert!(ops.contains(op), "{} {} names unknown operation {op}", r.method, r.path);
            }
        }
        assert_eq!(ROUTES.len(), 30, "seed 003 lists 30 endpoints");
    }

    fn linkcrm_core_names() -> Vec<&'static str> {
        serde_json::from_str::<Vec<serde_json::Value>>(include_str!("../../../infra/routes.json"))
            .unwrap()
            .into_iter()
            .filter_map(|r| r["operation"].as_str().map(|s| &*Box::leak(s.to_owned().into_boxed_str())))
            .collect()
    }
}
