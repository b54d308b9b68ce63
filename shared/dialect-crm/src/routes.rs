//! The dialect's route table: every endpoint of seed 004 (and the task writes the issue adds),
//! what it takes, which operations of ours it calls, and what it answers. The OpenAPI document
//! and the deployment template check are made from it.

use crate::handlers as h;
use crate::{Req, Result};
use futures::future::BoxFuture;

pub type Handler = for<'a> fn(&'a Req) -> BoxFuture<'a, Result>;

/// A field a route takes, for the OpenAPI document: (name, JSON type, description).
pub type Param = (&'static str, &'static str, &'static str);

pub struct Route {
    pub method: &'static str,
    /// Below the prefix, with `{param}` segments.
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The operations of ours it calls (empty: not built yet, it answers 501 saying so).
    pub operations: &'static [&'static str],
    pub query: &'static [Param],
    pub body: &'static [Param],
    pub status: u16,
    /// The answer's top-level shape, for the document: a list's plural key, or an object.
    pub answers: &'static str,
    pub handler: Handler,
}

const LEAD_BODY: &[Param] = &[
    ("title", "string", "The lead's title (required to create)"),
    ("companyId", "string", "Its company (UUID)"),
    ("contactId", "string", "Its contact (UUID)"),
    ("stageId", "string", "Its stage (UUID); default the first open stage"),
    ("value", "number", "Deal value, USD"),
    ("probabilityPct", "integer", "0-100; default the stage's"),
    ("ownerId", "string", "Owner member (UUID)"),
    ("expectedCloseDate", "string", "YYYY-MM-DD"),
    ("domain", "string", "linkcrm: the partner's site; links the lead to the workspace's relationship with it"),
];
const COMPANY_BODY: &[Param] = &[
    ("name", "string", "The company's name (required to create)"),
    ("domain", "string", "Its website; links it to the partner's shared account (set once)"),
    ("relationshipType", "string", "prospect, customer, vendor or both"),
    ("lifecycle", "string", "active or inactive"),
    ("ownerId", "string", "Owner member (UUID)"),
];
const COMPANY_QUERY: &[Param] = &[
    ("relationshipType", "string", "prospect, customer, vendor or both"),
    ("lifecycle", "string", "active or inactive"),
    ("owner", "string", "UUID, me, or unassigned"),
    ("search", "string", "Name contains (case-insensitive)"),
    ("page", "integer", "Page number, from 1"),
    ("pageSize", "integer", "Items per page (default 50, at most 200)"),
    ("limit", "integer", "Legacy: caps the page size when page is omitted"),
];
const CONTACT_BODY: &[Param] = &[
    ("firstName", "string", "First name"),
    ("lastName", "string", "Last name"),
    ("email", "string", "Email (unique across the platform)"),
    ("phone", "string", "Phone (this workspace's own)"),
    ("title", "string", "Job title"),
    ("ownerId", "string", "Owner member (UUID)"),
    ("companyId", "string", "Primary company (UUID; on create)"),
];
const CONTACT_Q: &[Param] = &[
    ("companyId", "string", "UUID"),
    ("ownerId", "string", "UUID or me"),
    ("page", "integer", "Page number, from 1"),
    ("pageSize", "integer", "Items per page (default 50, at most 200)"),
    ("limit", "integer", "Legacy: caps the page size when page is omitted"),
];
const PAGING_Q: &[Param] = &[
    ("page", "integer", "Page number, from 1"),
    ("pageSize", "integer", "Items per page (default 50, at most 200)"),
    ("limit", "integer", "Legacy: caps the page size when page is omitted"),
];
const MEMBERSHIP_BODY: &[Param] = &[
    ("companyId", "string", "The company (UUID; required to create)"),
    ("role", "string", "The contact's role there"),
    ("isPrimary", "boolean", "The contact's primary company"),
];
const LIST_BODY: &[Param] = &[
    ("listId", "string", "The marketing list (UUID)"),
    ("contactIds", "array", "Contacts to add (UUIDs)"),
    ("companyIds", "array", "Companies whose contacts to add (UUIDs)"),
];
const STAGE_BODY: &[Param] = &[
    ("name", "string", "Stage name (required to create)"),
    ("kind", "string", "open, won or lost"),
    ("systemKey", "string", "The relationship status it stands for (PROSPECTING … INACTIVE)"),
    ("defaultProbabilityPct", "integer", "0-100"),
    ("colorKey", "string", "A colour name"),
];
const ACTIVITY_BODY: &[Param] = &[
    ("type", "string", "call, email, meeting or note (required)"),
    ("subject", "string", "One line (required)"),
    ("body", "string", "Details"),
    ("occurredAt", "string", "RFC 3339; now when absent"),
    ("leadId", "string", "The lead (UUID)"),
    ("companyId", "string", "The company (UUID)"),
    ("contactId", "string", "The contact (UUID)"),
];
const TASK_BODY: &[Param] = &[
    ("title", "string", "What to do (required to create)"),
    ("dueAt", "string", "RFC 3339 time or date"),
    ("status", "string", "open or done"),
    ("leadId", "string", "The lead (UUID)"),
    ("contactId", "string", "The contact (UUID)"),
    ("notes", "string", "Details"),
];

macro_rules! route {
    ($method:literal, $path:literal, $summary:literal, $tag:literal, $ops:expr, $query:expr, $body:expr, $status:literal, $answers:literal, $handler:path) => {
        Route {
            method: $method,
            path: $path,
            summary: $summary,
            tag: $tag,
            operations: $ops,
            query: $query,
            body: $body,
            status: $status,
            answers: $answers,
            handler: |r| Box::pin($handler(r)),
        }
    };
}

const LIST_STAGES: &[&str] = &["link_building.crm.stage.list"];
const LEAD_GET: &[&str] = &["link_building.crm.opportunity.get", "link_building.crm.stage.list"];

pub static ROUTES: &[Route] = &[
    // Companies, contacts, memberships and marketing lists wait on the core's company model.
    route!(
        "GET",
        "/companies",
        "List companies",
        "Companies",
        &["link_building.crm.company.list"],
        COMPANY_QUERY,
        &[],
        200,
        "companies",
        h::companies_list
    ),
    route!(
        "POST",
        "/companies",
        "Create a company",
        "Companies",
        &["link_building.crm.company.create"],
        &[],
        COMPANY_BODY,
        201,
        "object",
        h::company_create
    ),
    route!(
        "GET",
        "/companies/{id}",
        "Get a company",
        "Companies",
        &["link_building.crm.company.get"],
        &[],
        &[],
        200,
        "object",
        h::company_get
    ),
    route!(
        "PATCH",
        "/companies/{id}",
        "Update a company",
        "Companies",
        &["link_building.crm.company.update"],
        &[],
        COMPANY_BODY,
        200,
        "object",
        h::company_update
    ),
    route!(
        "GET",
        "/companies/{id}/contacts",
        "A company's contacts",
        "Companies",
        &["link_building.crm.company.contacts"],
        PAGING_Q,
        &[],
        200,
        "contacts",
        h::company_contacts
    ),
    route!(
        "GET",
        "/contacts",
        "List contacts",
        "Contacts",
        &["link_building.crm.contact.list", "link_building.crm.company.contacts"],
        CONTACT_Q,
        &[],
        200,
        "contacts",
        h::contacts_list
    ),
    route!(
        "POST",
        "/contacts",
        "Create a contact",
        "Contacts",
        &[
            "link_building.crm.company.get",
            "link_building.crm.contact.create",
            "link_building.crm.contact.membership.create"
        ],
        &[],
        CONTACT_BODY,
        201,
        "object",
        h::contact_create
    ),
    route!(
        "GET",
        "/contacts/{id}",
        "Get a contact",
        "Contacts",
        &["link_building.crm.contact.get"],
        &[],
        &[],
        200,
        "object",
        h::contact_get
    ),
    route!(
        "PATCH",
        "/contacts/{id}",
        "Update a contact",
        "Contacts",
        &["link_building.crm.contact.update"],
        &[],
        CONTACT_BODY,
        200,
        "object",
        h::contact_update
    ),
    route!(
        "DELETE",
        "/contacts/{id}",
        "Delete a contact",
        "Contacts",
        &["link_building.crm.contact.forget", "link_building.crm.contact.delete"],
        &[],
        &[],
        204,
        "object",
        h::contact_delete
    ),
    route!(
        "GET",
        "/contacts/{id}/company-memberships",
        "A contact's memberships",
        "Contacts",
        &["link_building.crm.contact.membership.list"],
        &[],
        &[],
        200,
        "memberships",
        h::memberships_list
    ),
    route!(
        "POST",
        "/contacts/{id}/company-memberships",
        "Add a membership",
        "Contacts",
        &["link_building.crm.contact.membership.create"],
        &[],
        MEMBERSHIP_BODY,
        201,
        "object",
        h::membership_create
    ),
    route!(
        "PATCH",
        "/contacts/{id}/company-memberships/{membershipId}",
        "Update a membership",
        "Contacts",
        &["link_building.crm.contact.membership.update"],
        &[],
        MEMBERSHIP_BODY,
        200,
        "object",
        h::membership_update
    ),
    route!(
        "DELETE",
        "/contacts/{id}/company-memberships/{membershipId}",
        "Delete a membership",
        "Contacts",
        &["link_building.crm.contact.membership.delete"],
        &[],
        &[],
        200,
        "object",
        h::membership_delete
    ),
    route!(
        "POST",
        "/prospecting/add-to-marketing-list",
        "Add contacts or companies to a marketing list",
        "Prospecting",
        &["link_building.crm.marketing_list.add"],
        &[],
        LIST_BODY,
        200,
        "object",
        h::add_to_marketing_list
    ),
    // Pipeline stages.
    route!(
        "GET",
        "/pipeline-stages",
        "The pipeline's stages in order, with their lead counts",
        "Pipeline",
        LIST_STAGES,
        &[],
        &[],
        200,
        "stages",
        h::stages_list
    ),
    route!(
        "POST",
        "/pipeline-stages",
        "Add a stage",
        "Pipeline",
        &["link_building.crm.stage.create"],
        &[],
        STAGE_BODY,
        201,
        "object",
        h::stage_create
    ),
    route!(
        "POST",
        "/pipeline-stages/reorder",
        "Put the stages in a new order",
        "Pipeline",
        &["link_building.crm.stage.reorder"],
        &[],
        &[("stageIds", "array", "Every stage's id (UUID), in order")],
        200,
        "stages",
        h::stages_reorder
    ),
    route!(
        "PATCH",
        "/pipeline-stages/{id}",
        "Change a stage",
        "Pipeline",
        &["link_building.crm.stage.update"],
        &[],
        STAGE_BODY,
        200,
        "object",
        h::stage_update
    ),
    route!(
        "DELETE",
        "/pipeline-stages/{id}",
        "Delete a stage; with leads, 202 and they move to moveLeadsTo in a job",
        "Pipeline",
        &["link_building.crm.stage.delete"],
        &[],
        &[("moveLeadsTo", "string", "Where its leads go (UUID); required when it has any")],
        202,
        "object",
        h::stage_delete
    ),
    // Leads.
    route!(
        "GET",
        "/leads",
        "List leads",
        "Leads",
        &["link_building.crm.opportunity.list", "link_building.crm.stage.list"],
        &[
            ("companyId", "string", "UUID"),
            ("contactId", "string", "UUID"),
            ("ownerId", "string", "UUID, me, or unassigned"),
            ("stageId", "string", "UUID"),
            ("stage", "string", "A stage's name or a legacy system key"),
            ("page", "integer", "Page number, from 1"),
            ("pageSize", "integer", "Items per page (default 50, at most 200)"),
            ("limit", "integer", "Legacy: caps the page size when page is omitted")
        ],
        &[],
        200,
        "leads",
        h::leads_list
    ),
    route!(
        "POST",
        "/leads",
        "Create a lead",
        "Leads",
        &["link_building.crm.opportunity.create", "link_building.crm.stage.list"],
        &[],
        LEAD_BODY,
        201,
        "object",
        h::lead_create
    ),
    route!("GET", "/leads/{id}", "Get a lead", "Leads", LEAD_GET, &[], &[], 200, "object", h::lead_get),
    route!(
        "PATCH",
        "/leads/{id}",
        "Update a lead (a stageId moves it)",
        "Leads",
        &["link_building.crm.opportunity.update", "link_building.crm.opportunity.move"],
        &[],
        LEAD_BODY,
        200,
        "object",
        h::lead_update
    ),
    route!(
        "DELETE",
        "/leads/{id}",
        "Delete a lead",
        "Leads",
        &["link_building.crm.opportunity.delete"],
        &[],
        &[],
        200,
        "object",
        h::lead_delete
    ),
    route!(
        "GET",
        "/leads/{id}/timeline",
        "A lead's activities, stage moves and mail, newest first",
        "Leads",
        &["link_building.crm.opportunity.get", "link_building.crm.activity.list", "link_building.crm.event.list"],
        &[],
        &[],
        200,
        "timeline",
        h::lead_timeline
    ),
    route!(
        "PATCH",
        "/leads/{id}/stage",
        "Move a lead to a stage",
        "Leads",
        &["link_building.crm.opportunity.move"],
        &[],
        &[("stageId", "string", "The stage (UUID)")],
        200,
        "object",
        h::lead_stage
    ),
    route!(
        "POST",
        "/leads/{id}/activities",
        "Log an activity on a lead",
        "Leads",
        &["link_building.crm.activity.create"],
        &[],
        ACTIVITY_BODY,
        201,
        "object",
        h::lead_activity
    ),
    // Activities and tasks.
    route!(
        "GET",
        "/activities",
        "List activities",
        "Activities",
        &["link_building.crm.activity.list"],
        &[
            ("leadId", "string", "UUID"),
            ("companyId", "string", "UUID"),
            ("contactId", "string", "UUID"),
            ("page", "integer", "Page number, from 1"),
            ("pageSize", "integer", "Items per page (default 50, at most 200)"),
            ("limit", "integer", "Legacy: caps the page size when page is omitted")
        ],
        &[],
        200,
        "activities",
        h::activities_list
    ),
    route!(
        "POST",
        "/activities",
        "Log an activity",
        "Activities",
        &["link_building.crm.activity.create"],
        &[],
        ACTIVITY_BODY,
        201,
        "object",
        h::activity_create
    ),
    route!(
        "GET",
        "/tasks",
        "List tasks",
        "Tasks",
        &["link_building.crm.task.list"],
        &[
            ("leadId", "string", "UUID"),
            ("assigneeId", "string", "UUID or me"),
            ("page", "integer", "Page number, from 1"),
            ("pageSize", "integer", "Items per page (default 50, at most 200)"),
            ("limit", "integer", "Legacy: caps the page size when page is omitted")
        ],
        &[],
        200,
        "tasks",
        h::tasks_list
    ),
    route!(
        "POST",
        "/tasks",
        "Create a task",
        "Tasks",
        &["link_building.crm.task.create"],
        &[],
        TASK_BODY,
        201,
        "object",
        h::task_create
    ),
    route!(
        "PATCH",
        "/tasks/{id}",
        "Update a task",
        "Tasks",
        &["link_building.crm.task.update"],
        &[],
        TASK_BODY,
        200,
        "object",
        h::task_update
    ),
    route!(
        "POST",
        "/tasks/{id}/complete",
        "Complete a task",
        "Tasks",
        &["link_building.crm.task.complete"],
        &[],
        &[],
        200,
        "object",
        h::task_complete
    ),
    // Outbound email and the dashboard.
    route!(
        "POST",
        "/outbound-email",
        "Send an email to a lead's contact through a connection",
        "Outbound email",
        &["link_building.crm.opportunity.get", "link_building.crm.relationship.send_email"],
        &[],
        &[
            ("leadId", "string", "The lead (UUID; linked to a partner site)"),
            ("connectionId", "string", "A connection (UUID)"),
            ("channel", "string", "gmail, outlook or smtp"),
            ("subject", "string", "One line"),
            ("htmlBody", "string", "The HTML body; its text alternative is made from it"),
            ("contactId", "string", "The recipient (UUID); default the lead's contact")
        ],
        202,
        "object",
        h::outbound_email
    ),
    route!(
        "GET",
        "/outbound-email-connections",
        "The workspace's sending connections",
        "Outbound email",
        &["mailboxes.list"],
        &[],
        &[],
        200,
        "connections",
        h::connections
    ),
    route!(
        "GET",
        "/dashboard",
        "The pipeline at a glance",
        "Dashboard",
        &["link_building.crm.dashboard"],
        &[],
        &[],
        200,
        "object",
        h::dashboard
    ),
];

/// The table as data for tools outside the code (`infra/dialect-crm-routes.json`).
pub fn table_json() -> serde_json::Value {
    serde_json::Value::Array(
        ROUTES
            .iter()
            .map(|r| {
                let operation = if r.operations.is_empty() { "not built".to_owned() } else { r.operations.join(", ") };
                serde_json::json!({ "method": r.method, "path": format!("{}{}", crate::PREFIX, r.path),
                                    "operation": operation, "family": "dialect-crm" })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_the_json_table_is_current() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {} twice", r.method, r.path);
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/dialect-crm-routes.json");
        let want = serde_json::to_string_pretty(&table_json()).unwrap() + "\n";
        if std::env::var("LINKCRM_UPDATE_ROUTES").is_ok() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            have, want,
            "infra/dialect-crm-routes.json is stale: LINKCRM_UPDATE_ROUTES=1 cargo test -p linkcrm-dialect-crm"
        );
    }
}
