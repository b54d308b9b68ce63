//! The REST door's route table: which method and path reach which operation. Operations do not
//! know their routes, so another door (a dialect, MCP) binds the same operations its own way.

use axum::http::Method;

/// The HTTP methods routes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// Whether the arguments come in a JSON body (otherwise in the query string).
    pub fn has_body(self) -> bool {
        matches!(self, Verb::Post | Verb::Put | Verb::Patch)
    }
}

/// One route: `verb path` runs `operation` (a catalogue name).
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub verb: Verb,
    /// Path template with `{param}` segments; each parameter is a field of the operation's input.
    pub path: &'static str,
    pub operation: &'static str,
}

impl Route {
    pub const fn new(verb: Verb, path: &'static str, operation: &'static str) -> Route {
        Route { verb, path, operation }
    }

    /// Path parameter names of the template, in order.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
    }
}

/// The table as data for tools outside the code (`infra/routes.json`, which the template check
/// reads): method, path, operation and the family whose function serves it.
pub fn table_json(routes: &[Route], catalogue: &[linkcrm_core::catalogue::OpSpec]) -> serde_json::Value {
    routes
        .iter()
        .map(|r| {
            let family = catalogue.iter().find(|op| op.name == r.operation).map(|op| op.family.name());
            serde_json::json!({ "method": r.verb.as_str(), "path": r.path, "operation": r.operation, "family": family })
        })
        .collect()
}

/// `/v1`: every public operation.
pub const V1: &[Route] = &[
    Route::new(Verb::Post, "/v1/workspaces", "workspaces.create"),
    Route::new(Verb::Get, "/v1/workspaces", "workspaces.list"),
    Route::new(Verb::Get, "/v1/workspaces/{id}", "workspaces.get"),
    Route::new(Verb::Patch, "/v1/workspaces/{id}", "workspaces.update"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}", "workspaces.archive"),
    Route::new(Verb::Get, "/v1/workspace", "workspaces.current"),
    Route::new(Verb::Post, "/v1/workspaces/{id}/api-keys", "workspaces.api_keys.create"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/api-keys", "workspaces.api_keys.list"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}/api-keys/{keyId}", "workspaces.api_keys.revoke"),
    Route::new(Verb::Post, "/v1/workspaces/{id}/members", "workspaces.members.create"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/members", "workspaces.members.list"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}/members/{memberId}", "workspaces.members.delete"),
    Route::new(Verb::Post, "/v1/agency/api-keys", "agency.api_keys.create"),
    Route::new(Verb::Get, "/v1/agency/api-keys", "agency.api_keys.list"),
    Route::new(Verb::Delete, "/v1/agency/api-keys/{keyId}", "agency.api_keys.revoke"),
    Route::new(Verb::Post, "/v1/workspaces/{id}/credits", "workspaces.credits.grant"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/usage", "workspaces.usage"),
    Route::new(Verb::Put, "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.set"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.get"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}/integrations/apollo", "workspaces.integrations.apollo.remove"),
    Route::new(Verb::Put, "/v1/workspaces/{id}/integrations/dataforseo", "workspaces.integrations.dataforseo.set"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/integrations/dataforseo", "workspaces.integrations.dataforseo.get"),
    Route::new(
        Verb::Delete,
        "/v1/workspaces/{id}/integrations/dataforseo",
        "workspaces.integrations.dataforseo.remove",
    ),
    Route::new(Verb::Put, "/v1/workspaces/{id}/integrations/ahrefs", "workspaces.integrations.ahrefs.set"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/integrations/ahrefs", "workspaces.integrations.ahrefs.get"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}/integrations/ahrefs", "workspaces.integrations.ahrefs.remove"),
    Route::new(Verb::Put, "/v1/workspaces/{id}/integrations/llm", "workspaces.integrations.llm.set"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/integrations/llm", "workspaces.integrations.llm.get"),
    Route::new(Verb::Delete, "/v1/workspaces/{id}/integrations/llm", "workspaces.integrations.llm.remove"),
    Route::new(Verb::Post, "/v1/suppression", "suppression.add"),
    Route::new(Verb::Get, "/v1/suppression", "suppression.list"),
    Route::new(Verb::Delete, "/v1/suppression", "suppression.remove"),
    Route::new(Verb::Post, "/v1/mailboxes", "mailboxes.create"),
    Route::new(Verb::Post, "/v1/mailboxes/connect", "mailboxes.connect"),
    Route::new(Verb::Get, "/v1/mailboxes", "mailboxes.list"),
    Route::new(Verb::Get, "/v1/mailboxes/{id}", "mailboxes.get"),
    Route::new(Verb::Patch, "/v1/mailboxes/{id}", "mailboxes.update"),
    Route::new(Verb::Delete, "/v1/mailboxes/{id}", "mailboxes.delete"),
    Route::new(Verb::Post, "/v1/research/serp", "research.serp"),
    Route::new(Verb::Post, "/v1/research/opportunities", "research.opportunities"),
    Route::new(Verb::Get, "/v1/link-building/reporting/snapshot", "link_building.reporting.snapshot"),
    Route::new(Verb::Post, "/v1/link-building/emails/generate", "link_building.emails.generate"),
    Route::new(Verb::Post, "/v1/link-building/emails/personalize", "link_building.emails.personalize"),
    Route::new(Verb::Post, "/v1/link-building/emails/subject-suggestions", "link_building.emails.subject_suggestions"),
    Route::new(Verb::Post, "/v1/link-building/emails/follow-up", "link_building.emails.follow_up"),
    Route::new(Verb::Post, "/v1/link-building/templates", "link_building.templates.create"),
    Route::new(Verb::Get, "/v1/link-building/templates", "link_building.templates.list"),
    Route::new(Verb::Get, "/v1/link-building/templates/{id}", "link_building.templates.get"),
    Route::new(Verb::Patch, "/v1/link-building/templates/{id}", "link_building.templates.update"),
    Route::new(Verb::Delete, "/v1/link-building/templates/{id}", "link_building.templates.delete"),
    Route::new(Verb::Post, "/v1/link-building/templates/{id}/render", "link_building.templates.render"),
    Route::new(Verb::Post, "/v1/link-building/campaign", "link_building.campaign.create"),
    Route::new(Verb::Get, "/v1/link-building/campaign", "link_building.campaign.list"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}", "link_building.campaign.get"),
    Route::new(Verb::Patch, "/v1/link-building/campaign/{id}", "link_building.campaign.update"),
    Route::new(Verb::Delete, "/v1/link-building/campaign/{id}", "link_building.campaign.cancel"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/metrics", "link_building.campaign.metrics"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/pause", "link_building.campaign.pause"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/resume", "link_building.campaign.resume"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/toggle", "link_building.campaign.toggle"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/complete", "link_building.campaign.complete"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/relationships", "link_building.campaign.relationships.add"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/leads", "link_building.campaign.leads.add"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/leads", "link_building.campaign.leads.list"),
    Route::new(
        Verb::Post,
        "/v1/link-building/campaign/{id}/leads/status",
        "link_building.campaign.leads.update_status",
    ),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/leads/{relationshipId}", "link_building.campaign.leads.get"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/drafts", "link_building.campaign.drafts"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/approve", "link_building.campaign.approve"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/reject", "link_building.campaign.reject"),
    Route::new(Verb::Post, "/v1/link-building/campaign/{id}/send-email", "link_building.campaign.send_email"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/export/{kind}", "link_building.campaign.export"),
    Route::new(Verb::Get, "/v1/link-building/campaign/{id}/replies", "link_building.campaign.replies"),
    Route::new(Verb::Post, "/v1/link-building/serp-outreach", "link_building.serp_outreach.start"),
    Route::new(Verb::Get, "/v1/link-building/serp-outreach", "link_building.serp_outreach.list"),
    Route::new(Verb::Get, "/v1/link-building/serp-outreach/{id}", "link_building.serp_outreach.get"),
    Route::new(Verb::Patch, "/v1/link-building/serp-outreach/{id}", "link_building.serp_outreach.update"),
    Route::new(Verb::Delete, "/v1/link-building/serp-outreach/{id}", "link_building.serp_outreach.cancel"),
    Route::new(Verb::Get, "/v1/link-building/serp-outreach/{id}/drafts", "link_building.serp_outreach.drafts"),
    Route::new(Verb::Post, "/v1/link-building/serp-outreach/{id}/approve", "link_building.serp_outreach.approve"),
    Route::new(Verb::Post, "/v1/link-building/serp-outreach/{id}/reject", "link_building.serp_outreach.reject"),
    Route::new(Verb::Post, "/v1/link-building/competitor-outreach", "link_building.competitor_outreach.start"),
    Route::new(Verb::Get, "/v1/link-building/competitor-outreach", "link_building.competitor_outreach.list"),
    Route::new(Verb::Get, "/v1/link-building/competitor-outreach/{id}", "link_building.competitor_outreach.get"),
    Route::new(Verb::Patch, "/v1/link-building/competitor-outreach/{id}", "link_building.competitor_outreach.update"),
    Route::new(Verb::Delete, "/v1/link-building/competitor-outreach/{id}", "link_building.competitor_outreach.cancel"),
    Route::new(
        Verb::Get,
        "/v1/link-building/competitor-outreach/{id}/drafts",
        "link_building.competitor_outreach.drafts",
    ),
    Route::new(
        Verb::Post,
        "/v1/link-building/competitor-outreach/{id}/approve",
        "link_building.competitor_outreach.approve",
    ),
    Route::new(
        Verb::Post,
        "/v1/link-building/competitor-outreach/{id}/reject",
        "link_building.competitor_outreach.reject",
    ),
    Route::new(Verb::Post, "/v1/link-building/inbound/email", "link_building.inbound.receive"),
    Route::new(Verb::Get, "/v1/link-building/inbound", "link_building.inbound.list"),
    Route::new(Verb::Get, "/v1/link-building/inbound/{id}", "link_building.inbound.get"),
    Route::new(Verb::Post, "/v1/link-building/inbound/{id}/assign", "link_building.inbound.assign"),
    Route::new(Verb::Post, "/v1/link-building/inbound/poll", "link_building.inbound.poll"),
    Route::new(Verb::Get, "/v1/link-building/inbound/settings", "link_building.inbound.settings.get"),
    Route::new(Verb::Post, "/v1/link-building/inbound/settings", "link_building.inbound.settings.update"),
    Route::new(
        Verb::Get,
        "/v1/link-building/crm/account/{id}/inbound-settings",
        "link_building.inbound.account_settings.get",
    ),
    Route::new(
        Verb::Put,
        "/v1/link-building/crm/account/{id}/inbound-settings",
        "link_building.inbound.account_settings.set",
    ),
    Route::new(Verb::Post, "/v1/link-building/inbound/eval-gates", "link_building.inbound.eval_gate.create"),
    Route::new(Verb::Post, "/v1/link-building/inbound/eval-gate", "link_building.inbound.eval_gate.add"),
    Route::new(Verb::Get, "/v1/link-building/inbound/eval-gates", "link_building.inbound.eval_gate.list"),
    Route::new(Verb::Get, "/v1/link-building/inbound/eval-gates/{id}", "link_building.inbound.eval_gate.get"),
    Route::new(Verb::Patch, "/v1/link-building/inbound/eval-gates/{id}", "link_building.inbound.eval_gate.update"),
    Route::new(Verb::Delete, "/v1/link-building/inbound/eval-gates/{id}", "link_building.inbound.eval_gate.delete"),
    Route::new(
        Verb::Get,
        "/v1/link-building/inbound/eval-gates/{id}/versions",
        "link_building.inbound.eval_gate.versions",
    ),
    Route::new(Verb::Post, "/v1/link-building/campaign/respond", "link_building.campaign.respond"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/audit", "workspaces.audit"),
    Route::new(Verb::Get, "/v1/workspaces/{id}/health", "workspaces.health"),
    Route::new(Verb::Post, "/v1/workspaces/bulk-action", "workspaces.bulk_action"),
    Route::new(Verb::Get, "/v1/workspaces/bulk-action/schedules", "workspaces.bulk_action.schedules.list"),
    Route::new(Verb::Get, "/v1/workspaces/bulk-action/schedules/{id}", "workspaces.bulk_action.schedules.get"),
    Route::new(Verb::Patch, "/v1/workspaces/bulk-action/schedules/{id}", "workspaces.bulk_action.schedules.update"),
    Route::new(Verb::Delete, "/v1/workspaces/bulk-action/schedules/{id}", "workspaces.bulk_action.schedules.delete"),
    Route::new(Verb::Get, "/v1/workspaces/bulk-action/{id}", "workspaces.bulk_action.get"),
    Route::new(Verb::Get, "/v1/audit", "audit.list"),
    Route::new(Verb::Post, "/v1/webhooks", "webhooks.create"),
    Route::new(Verb::Get, "/v1/webhooks", "webhooks.list"),
    Route::new(Verb::Get, "/v1/webhooks/event-types", "webhooks.event_types"),
    Route::new(Verb::Get, "/v1/webhooks/dead-letter", "webhooks.dead_letter.list"),
    Route::new(Verb::Post, "/v1/webhooks/dead-letter/{id}/replay", "webhooks.dead_letter.replay"),
    Route::new(Verb::Get, "/v1/webhooks/{id}", "webhooks.get"),
    Route::new(Verb::Patch, "/v1/webhooks/{id}", "webhooks.update"),
    Route::new(Verb::Delete, "/v1/webhooks/{id}", "webhooks.delete"),
    Route::new(Verb::Post, "/v1/webhooks/{id}/rotate-secret", "webhooks.rotate_secret"),
    Route::new(Verb::Post, "/v1/webhooks/{id}/test", "webhooks.test"),
    Route::new(Verb::Get, "/v1/webhooks/{id}/deliveries", "webhooks.deliveries"),
    Route::new(Verb::Post, "/v1/webhooks/{id}/recover", "webhooks.recover"),
    Route::new(Verb::Get, "/v1/link-building/crm/account", "link_building.crm.account.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/account/{id}", "link_building.crm.account.get"),
    Route::new(Verb::Patch, "/v1/link-building/crm/account/{id}", "link_building.crm.account.update"),
    Route::new(Verb::Get, "/v1/link-building/crm/account/{id}/history", "link_building.crm.account.history"),
    Route::new(
        Verb::Post,
        "/v1/link-building/crm/account/{id}/do-not-contact",
        "link_building.crm.account.do_not_contact",
    ),
    Route::new(Verb::Get, "/v1/link-building/crm/contact", "link_building.crm.contact.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.get"),
    Route::new(Verb::Post, "/v1/link-building/crm/contact", "link_building.crm.contact.create"),
    Route::new(Verb::Patch, "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.update"),
    Route::new(Verb::Delete, "/v1/link-building/crm/contact/{id}", "link_building.crm.contact.delete"),
    Route::new(Verb::Post, "/v1/link-building/crm/contact/discover", "link_building.crm.contact.discover"),
    Route::new(Verb::Post, "/v1/link-building/crm/relationship", "link_building.crm.relationship.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/relationship", "link_building.crm.relationship.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/relationship/{id}", "link_building.crm.relationship.get"),
    Route::new(Verb::Patch, "/v1/link-building/crm/relationship/{id}", "link_building.crm.relationship.update"),
    Route::new(Verb::Delete, "/v1/link-building/crm/relationship/{id}", "link_building.crm.relationship.archive"),
    Route::new(Verb::Post, "/v1/link-building/crm/event", "link_building.crm.event.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/event", "link_building.crm.event.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/event/{id}", "link_building.crm.event.get"),
    Route::new(Verb::Get, "/v1/link-building/crm/stage", "link_building.crm.stage.list"),
    Route::new(Verb::Post, "/v1/link-building/crm/stage", "link_building.crm.stage.create"),
    Route::new(Verb::Post, "/v1/link-building/crm/stage/reorder", "link_building.crm.stage.reorder"),
    Route::new(Verb::Patch, "/v1/link-building/crm/stage/{id}", "link_building.crm.stage.update"),
    Route::new(Verb::Delete, "/v1/link-building/crm/stage/{id}", "link_building.crm.stage.delete"),
    Route::new(Verb::Post, "/v1/link-building/crm/opportunity", "link_building.crm.opportunity.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/opportunity", "link_building.crm.opportunity.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/opportunity/{id}", "link_building.crm.opportunity.get"),
    Route::new(Verb::Patch, "/v1/link-building/crm/opportunity/{id}", "link_building.crm.opportunity.update"),
    Route::new(Verb::Delete, "/v1/link-building/crm/opportunity/{id}", "link_building.crm.opportunity.delete"),
    Route::new(Verb::Post, "/v1/link-building/crm/opportunity/{id}/move", "link_building.crm.opportunity.move"),
    Route::new(Verb::Get, "/v1/link-building/crm/dashboard", "link_building.crm.dashboard"),
    Route::new(
        Verb::Post,
        "/v1/link-building/crm/contact/{id}/membership",
        "link_building.crm.contact.membership.create",
    ),
    Route::new(Verb::Get, "/v1/link-building/crm/contact/{id}/membership", "link_building.crm.contact.membership.list"),
    Route::new(Verb::Post, "/v1/link-building/crm/contact/{id}/forget", "link_building.crm.contact.forget"),
    Route::new(
        Verb::Patch,
        "/v1/link-building/crm/contact/{id}/membership/{membershipId}",
        "link_building.crm.contact.membership.update",
    ),
    Route::new(
        Verb::Delete,
        "/v1/link-building/crm/contact/{id}/membership/{membershipId}",
        "link_building.crm.contact.membership.delete",
    ),
    Route::new(Verb::Post, "/v1/link-building/crm/marketing-list", "link_building.crm.marketing_list.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/marketing-list", "link_building.crm.marketing_list.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/marketing-list/{id}", "link_building.crm.marketing_list.get"),
    Route::new(Verb::Post, "/v1/link-building/crm/marketing-list/{id}/members", "link_building.crm.marketing_list.add"),
    Route::new(Verb::Get, "/v1/link-building/crm/company/{id}/contacts", "link_building.crm.company.contacts"),
    Route::new(Verb::Post, "/v1/link-building/crm/company", "link_building.crm.company.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/company", "link_building.crm.company.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/company/{id}", "link_building.crm.company.get"),
    Route::new(Verb::Patch, "/v1/link-building/crm/company/{id}", "link_building.crm.company.update"),
    Route::new(Verb::Post, "/v1/link-building/crm/activity", "link_building.crm.activity.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/activity", "link_building.crm.activity.list"),
    Route::new(Verb::Post, "/v1/link-building/crm/task", "link_building.crm.task.create"),
    Route::new(Verb::Get, "/v1/link-building/crm/task", "link_building.crm.task.list"),
    Route::new(Verb::Get, "/v1/link-building/crm/task/{id}", "link_building.crm.task.get"),
    Route::new(Verb::Patch, "/v1/link-building/crm/task/{id}", "link_building.crm.task.update"),
    Route::new(Verb::Post, "/v1/link-building/crm/task/{id}/complete", "link_building.crm.task.complete"),
    Route::new(Verb::Delete, "/v1/link-building/crm/task/{id}", "link_building.crm.task.delete"),
    Route::new(Verb::Get, "/v1/link-building/links", "link_building.links.list"),
    Route::new(Verb::Get, "/v1/link-building/links/summary", "link_building.links.summary"),
    Route::new(Verb::Get, "/v1/link-building/links/{id}", "link_building.links.get"),
    Route::new(Verb::Patch, "/v1/link-building/links/{id}", "link_building.links.update"),
    Route::new(Verb::Get, "/v1/link-building/links/{id}/checks", "link_building.links.checks"),
    Route::new(Verb::Post, "/v1/link-building/links/{id}/check", "link_building.links.check"),
    Route::new(
        Verb::Post,
        "/v1/link-building/crm/relationship/{id}/send-email",
        "link_building.crm.relationship.send_email",
    ),
    Route::new(Verb::Get, "/v1/agent/invocations/{id}", "agent.invocations.get"),
    Route::new(Verb::Get, "/v1/agent/invocations", "agent.invocations.list"),
    Route::new(Verb::Post, "/v1/agent/invocations/{id}/cancel", "agent.invocations.cancel"),
    Route::new(Verb::Get, "/v1/agent/approvals", "agent.approvals.list"),
    Route::new(Verb::Get, "/v1/agent/approvals/{approvalId}", "agent.approvals.get"),
    Route::new(Verb::Post, "/v1/agent/invocations/{id}/approve", "agent.invocations.approve"),
    Route::new(Verb::Post, "/v1/agent/invocations/{id}/reject", "agent.invocations.reject"),
    Route::new(Verb::Post, "/v1/policy/validate", "policy.validate"),
];
