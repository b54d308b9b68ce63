//! Every type of domain event the outbox writes, and whether webhook endpoints may subscribe to it
//! (CONTRACT "Webhooks"). The outbox refuses a type that is not here (see
//! `linkcrm_core::outbox::event`), and `GET /v1/webhooks/event-types` lists the subscribable ones.

/// Who may see an event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Webhook endpoints may subscribe to it.
    Subscribable,
    /// Platform plumbing (keys, mailboxes, agencies): never delivered to endpoints.
    Internal,
}

/// One event type.
#[derive(Clone, Copy, Debug)]
pub struct EventTypeSpec {
    pub name: &'static str,
    pub visibility: Visibility,
    pub description: &'static str,
}

const fn sub(name: &'static str, description: &'static str) -> EventTypeSpec {
    EventTypeSpec { name, visibility: Visibility::Subscribable, description }
}

const fn internal(name: &'static str, description: &'static str) -> EventTypeSpec {
    EventTypeSpec { name, visibility: Visibility::Internal, description }
}

/// `webhook.test`: the event `POST /v1/webhooks/{id}/test` delivers.
pub const WEBHOOK_TEST: &str = "webhook.test";
/// `webhook.endpoint.disabled`: an endpoint answered 410 or failed every attempt for 5 days.
pub const ENDPOINT_DISABLED: &str = "webhook.endpoint.disabled";

/// The catalogue, in the order `GET /v1/webhooks/event-types` lists it.
pub const CATALOGUE: &[EventTypeSpec] = &[
    sub("link_building.link.placed", "A link was placed: LINK_PLACED recorded on a relationship."),
    sub("link_building.link.lost", "A monitored placed link was found missing on two checks in a row."),
    sub("link_building.link.restored", "A lost placed link was found live again."),
    sub(
        "link_building.link.changed",
        "A placed link changed between live and at risk (rel, anchor, noindex, canonical), or was first seen.",
    ),
    sub("link_building.relationship.created", "A relationship with an account was created in the workspace."),
    sub("link_building.relationship.status_changed", "A relationship's pipeline status changed."),
    sub("link_building.relationship.updated", "A relationship's fields were edited."),
    sub("link_building.relationship.archived", "A relationship was archived or restored."),
    sub("link_building.email.sent", "An outreach email was accepted by the mail server (EMAIL_SENT)."),
    sub("link_building.email.received", "A reply or message from a partner was recorded (EMAIL_RECEIVED)."),
    sub("link_building.email.bounced", "An outreach email bounced (EMAIL_BOUNCED)."),
    sub("link_building.email.opened", "An outreach email was opened (EMAIL_OPENED)."),
    sub("link_building.event.created", "Any relationship event was recorded."),
    sub("link_building.campaign.created", "A campaign was created."),
    sub("link_building.campaign.paused", "A campaign was paused (by a person or by its bounce guard)."),
    sub("link_building.campaign.resumed", "A paused campaign was resumed."),
    sub("link_building.campaign.completed", "A campaign finished: research done and nothing pending."),
    sub("link_building.campaign.cancelled", "A campaign was cancelled."),
    sub("link_building.inbound.received", "A message arrived in a connected mailbox and was recorded."),
    sub("link_building.inbound.escalated", "The negotiator handed an inbound request to a person."),
    sub("link_building.inbound.negotiated", "The negotiator decided on an inbound request."),
    sub("link_building.inbound.settings.updated", "The inbound negotiator's settings changed."),
    sub("link_building.inbound.eval_gate.created", "An eval gate was added."),
    sub("link_building.inbound.eval_gate.updated", "An eval gate changed (a new version)."),
    sub("link_building.inbound.eval_gate.deleted", "An eval gate was removed."),
    sub(
        "link_building.account.do_not_contact",
        "An account was marked DO_NOT_CONTACT; delivered to every workspace with a relationship to it.",
    ),
    sub("link_building.account.created", "A shared account was created."),
    sub("link_building.account.price_updated", "A shared account's prices changed."),
    sub("link_building.account.metrics_refreshed", "A shared account's metrics were refreshed."),
    sub("link_building.contact.created", "A contact was created."),
    sub("link_building.contact.updated", "A contact was edited."),
    sub("link_building.contact.deleted", "A contact was deleted."),
    sub("agent.invocation.awaiting_approval", "An invocation waits for a person's approval."),
    sub("agent.invocation.completed", "An invocation succeeded."),
    sub("agent.invocation.failed", "An invocation failed."),
    sub("agent.invocation.cancelled", "An invocation was cancelled or its approval rejected."),
    sub("suppression.added", "An address or domain was added to a suppression list."),
    sub("suppression.removed", "An address or domain was removed from a suppression list."),
    sub("workspace.created", "A workspace was created."),
    sub("workspace.updated", "A workspace's settings changed."),
    sub("workspace.archived", "A workspace was archived."),
    sub("workspace.integration.set", "A workspace's provider integration was set."),
    sub("workspace.integration.removed", "A workspace's provider integration was removed."),
    sub(ENDPOINT_DISABLED, "A webhook endpoint was disabled (it answered 410, or failed every attempt for 5 days)."),
    sub(WEBHOOK_TEST, "A test delivery sent by POST /v1/webhooks/{id}/test."),
    internal("agency.created", "An agency was created (operators only)."),
    internal("api_key.created", "An API key was created."),
    internal("api_key.revoked", "An API key was revoked."),
    internal("mailbox.created", "A mailbox was connected."),
    internal("mailbox.deleted", "A mailbox was removed."),
    internal("webhook.secret_rotated", "A webhook endpoint's secret was rotated."),
];

/// The spec of a type, when it is in the catalogue.
pub fn spec(name: &str) -> Option<&'static EventTypeSpec> {
    CATALOGUE.iter().find(|s| s.name == name)
}

pub fn is_subscribable(name: &str) -> bool {
    spec(name).is_some_and(|s| s.visibility == Visibility::Subscribable)
}

/// Whether a subscription pattern is valid: `*`, a subscribable type, or a prefix ending in `.*`
/// (`link_building.*`, `link_building.email.*`) that covers at least one subscribable type.
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => {
            CATALOGUE.iter().any(|s| s.visibility == Visibility::Subscribable && under(prefix, s.name))
        }
        Some(_) => false,
        None => is_subscribable(pattern),
    }
}

fn under(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// Whether an event of type `name` matches a subscription pattern. Internal types match nothing.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !is_subscribable(name) {
        return false;
    }
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => under(prefix, name),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for s in CATALOGUE {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(s.name.contains('.') && !s.name.contains('*') && !s.name.ends_with('.'), "{}", s.name);
            assert!(!s.description.is_empty());
        }
    }

    #[test]
    fn the_contract_types_are_subscribable() {
        for t in [
            "link_building.link.placed",
            "link_building.link.lost",
            "link_building.link.restored",
            "link_building.link.changed",
            "link_building.relationship.created",
            "link_building.relationship.status_changed",
            "link_building.email.sent",
            "link_building.email.received",
            "link_building.email.bounced",
            "link_building.email.opened",
            "link_building.campaign.created",
            "link_building.campaign.paused",
            "link_building.campaign.resumed",
            "link_building.campaign.completed",
            "link_building.campaign.cancelled",
            "link_building.inbound.received",
            "link_building.inbound.escalated",
            "link_building.account.do_not_contact",
            "agent.invocation.awaiting_approval",
            "agent.invocation.completed",
            "agent.invocation.failed",
            "agent.invocation.cancelled",
            "webhook.endpoint.disabled",
            "webhook.test",
        ] {
            assert!(is_subscribable(t), "{t}");
        }
        for t in ["api_key.created", "api_key.revoked", "mailbox.created", "mailbox.deleted", "agency.created"] {
            assert_eq!(spec(t).unwrap().visibility, Visibility::Internal, "{t}");
        }
    }

    #[test]
    fn patterns() {
        assert!(valid_pattern("*"));
        assert!(valid_pattern("link_building.*"));
        assert!(valid_pattern("link_building.email.*"));
        assert!(valid_pattern("link_building.link.placed"));
        assert!(!valid_pattern("link_building.link.nope"));
        assert!(!valid_pattern("api_key.created"), "internal types cannot be subscribed to");
        assert!(!valid_pattern("api_key.*"), "a prefix of internal types only");
        assert!(!valid_pattern("link_*"));
        assert!(!valid_pattern(".*"));
        assert!(!valid_pattern("link_building.*.placed"));
        assert!(matches("*", "link_building.link.placed"));
        assert!(matches("link_building.*", "link_building.link.placed"));
        assert!(matches("link_building.link.*", "link_building.link.placed"));
        assert!(!matches("link_building.link.*", "link_building.linker.x"));
        assert!(!matches("link_building.email.*", "link_building.link.placed"));
        assert!(!matches("*", "api_key.created"));
        assert!(!matches("link_building.link.placed", "link_building.link.lost"));
    }
}
