//! The kinds of queued work and the queue each goes to in AWS: one map for the API (which
//! enqueues), the workers (which handle) and the relay (which forwards each kind to its SQS queue);
//! `infra/queues.json` (kept equal to it by a test) lets the template check see it too.

/// The store queue the API commits every job to, in the job's own transaction; the local worker
/// consumes it, and in AWS the relay forwards each job to its kind's SQS queue.
pub const WORK_QUEUE: &str = "work";
/// The store queue of webhook fan-outs and deliveries (see [`JobKind::store_queue`]).
pub const WEBHOOK_QUEUE: &str = "webhooks";
/// The store queue of placed-link checks: thousands of page fetches a day never delay a send.
pub const LINKCHECK_QUEUE: &str = "linkcheck";

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Send one approved or automatic outreach email (the outreach context's send job).
    Send,
    /// Find contacts at accounts (the CRM context's discovery).
    Discover,
    /// Expire an approval nobody decided in time (the core's approval expiry).
    ApprovalExpiry,
    /// Carry out the decision on a campaign's draft (approved: record DRAFT_APPROVED and
    /// SEND_QUEUED and queue the send; otherwise update the campaign's count of open drafts).
    CampaignDraft,
    /// One step of a campaign's pipeline (drafting its members, ...).
    CampaignStep,
    /// Give a resumed campaign's held sends back to the send queue.
    CampaignRelease,
    /// Read one mailbox's new mail over IMAP (the outreach context's poller).
    MailboxPoll,
    /// Decide what to do with one inbound request (the inbound context's negotiator).
    InboundNegotiate,
    /// A committed domain event to fan out to the webhook endpoints subscribed to it (its id is
    /// the event's id). In AWS these arrive from the EventBridge rule, not from the store queue.
    DomainEvent,
    /// One delivery attempt of an event to one webhook endpoint.
    WebhookDeliver,
    /// Resend an endpoint's failed deliveries of a time window (`POST /v1/webhooks/{id}/recover`).
    WebhookRecover,
    /// Queue a bulk action's per-workspace jobs, a chunk at a time.
    BulkFan,
    /// Run a bulk action's operation in one workspace.
    BulkChild,
    /// Move a deleted pipeline stage's opportunities to the stage named, then remove the stage.
    StageMove,
    /// Start monitoring the link a LINK_PLACED names (committed with the event).
    LinkTrack,
    /// Check one placed link (scheduled, confirming, or on demand).
    LinkCheck,
}

/// The SQS queue a kind goes to in AWS, by the name the relay and the template use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Send,
    Discover,
    Campaign,
    Inbound,
    Webhooks,
    Agency,
    LinkCheck,
}

impl JobKind {
    pub const ALL: [JobKind; 16] = [
        JobKind::Send,
        JobKind::Discover,
        JobKind::ApprovalExpiry,
        JobKind::CampaignDraft,
        JobKind::CampaignStep,
        JobKind::CampaignRelease,
        JobKind::MailboxPoll,
        JobKind::InboundNegotiate,
        JobKind::DomainEvent,
        JobKind::WebhookDeliver,
        JobKind::WebhookRecover,
        JobKind::BulkFan,
        JobKind::BulkChild,
        JobKind::StageMove,
        JobKind::LinkTrack,
        JobKind::LinkCheck,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Send => "send",
            JobKind::Discover => "discover",
            JobKind::ApprovalExpiry => "approval_expiry",
            JobKind::CampaignDraft => "campaign_draft",
            JobKind::CampaignStep => "campaign_step",
            JobKind::CampaignRelease => "campaign_release",
            JobKind::MailboxPoll => "mailbox_poll",
            JobKind::InboundNegotiate => "inbound_negotiate",
            JobKind::DomainEvent => "domain_event",
            JobKind::WebhookDeliver => "webhook_deliver",
            JobKind::WebhookRecover => "webhook_recover",
            JobKind::BulkFan => "bulk_fan",
            JobKind::BulkChild => "bulk_child",
            JobKind::StageMove => "stage_move",
            JobKind::LinkTrack => "link_track",
            JobKind::LinkCheck => "link_check",
        }
    }

    pub fn parse(kind: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Approval expiries ride the send queue: they settle send invocations.
    pub fn queue(self) -> Queue {
        match self {
            JobKind::Send | JobKind::ApprovalExpiry => Queue::Send,
            JobKind::Discover => Queue::Discover,
            // A stage's moves are CRM writes like a campaign's: the campaign worker runs them.
            JobKind::CampaignDraft | JobKind::CampaignStep | JobKind::CampaignRelease | JobKind::StageMove => {
                Queue::Campaign
            }
            JobKind::MailboxPoll | JobKind::InboundNegotiate => Queue::Inbound,
            JobKind::DomainEvent | JobKind::WebhookDeliver | JobKind::WebhookRecover => Queue::Webhooks,
            JobKind::BulkFan | JobKind::BulkChild => Queue::Agency,
            JobKind::LinkTrack | JobKind::LinkCheck => Queue::LinkCheck,
        }
    }

    /// The store queue (partition) the job is committed to: webhook work has its own, so a flood
    /// of deliveries to slow endpoints never delays sends (the local binary runs a worker per
    /// partition; in AWS the relay forwards both to SQS).
    pub fn store_queue(self) -> &'static str {
        match self.queue() {
            Queue::Webhooks => WEBHOOK_QUEUE,
            Queue::LinkCheck => LINKCHECK_QUEUE,
            _ => WORK_QUEUE,
        }
    }
}

impl Queue {
    pub fn name(self) -> &'static str {
        match self {
            Queue::Send => "send",
            Queue::Discover => "discover",
            Queue::Campaign => "campaign",
            Queue::Inbound => "inbound",
            Queue::Webhooks => "webhooks",
            Queue::Agency => "agency",
            Queue::LinkCheck => "linkcheck",
        }
    }
}

impl Queue {
    pub const ALL: [Queue; 7] = [
        Queue::Send,
        Queue::Discover,
        Queue::Campaign,
        Queue::Inbound,
        Queue::Webhooks,
        Queue::Agency,
        Queue::LinkCheck,
    ];

    /// The kinds this queue carries.
    pub fn kinds(self) -> Vec<JobKind> {
        JobKind::ALL.into_iter().filter(|k| k.queue() == self).collect()
    }

    /// The environment variable that gives the relay this queue's URL.
    pub fn url_env(self) -> &'static str {
        match self {
            Queue::Send => "LINKCRM_SEND_QUEUE_URL",
            Queue::Discover => "LINKCRM_DISCOVER_QUEUE_URL",
            Queue::Campaign => "LINKCRM_CAMPAIGN_QUEUE_URL",
            Queue::Inbound => "LINKCRM_INBOUND_QUEUE_URL",
            Queue::Webhooks => "LINKCRM_WEBHOOK_QUEUE_URL",
            Queue::Agency => "LINKCRM_AGENCY_QUEUE_URL",
            Queue::LinkCheck => "LINKCRM_LINKCHECK_QUEUE_URL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_and_has_a_queue() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
            assert!(k.queue().kinds().contains(&k));
        }
        assert_eq!(JobKind::parse("nope"), None);
    }

    /// `infra/queues.json` is what the template check reads; `LINKCRM_UPDATE_QUEUES=1` rewrites it.
    #[test]
    fn infra_queues_json_is_the_map() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/queues.json");
        let map: Vec<serde_json::Value> = Queue::ALL
            .iter()
            .map(|q| {
                let kinds: Vec<&str> = q.kinds().into_iter().map(JobKind::as_str).collect();
                serde_json::json!({ "queue": q.name(), "urlEnv": q.url_env(), "kinds": kinds })
            })
            .collect();
        let want = serde_json::to_string_pretty(&map).unwrap() + "\n";
        if std::env::var_os("LINKCRM_UPDATE_QUEUES").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "infra/queues.json is stale: run LINKCRM_UPDATE_QUEUES=1 cargo test -p linkcrm-domain jobs"
        );
    }
}
