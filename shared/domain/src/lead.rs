//! Leads: a campaign membership seen the way outreach tools show it (seed 003). A lead's status is
//! the one a person set, unless the campaign's own mail moved on since: a send, a reply or a
//! placement attributed to the campaign after the status was set shows through.

use crate::campaign::Attribution;
use crate::enums::PipelineStatus;

/// The lead statuses of seed 003, in funnel order for the first four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LeadStatus {
    Discovered,
    Contacted,
    Replied,
    Placed,
    Bounced,
    Lost,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 6] = [
        LeadStatus::Discovered,
        LeadStatus::Contacted,
        LeadStatus::Replied,
        LeadStatus::Placed,
        LeadStatus::Bounced,
        LeadStatus::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Discovered => "discovered",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Replied => "replied",
            LeadStatus::Placed => "placed",
            LeadStatus::Bounced => "bounced",
            LeadStatus::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<LeadStatus> {
        LeadStatus::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The pipeline status a lead status moves the relationship to; `bounced` and `lost` have
    /// none and change only the lead.
    pub fn pipeline(self) -> Option<PipelineStatus> {
        match self {
            LeadStatus::Discovered => Some(PipelineStatus::Prospecting),
            LeadStatus::Contacted => Some(PipelineStatus::ContactedByUs),
            LeadStatus::Replied => Some(PipelineStatus::ActivelyEngaged),
            LeadStatus::Placed => Some(PipelineStatus::LinkPlaced),
            LeadStatus::Bounced | LeadStatus::Lost => None,
        }
    }
}

impl std::fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the campaign's mail says of the lead: placed, replied, bounced (every send bounced),
/// contacted (something was sent), else discovered.
pub fn from_attribution(att: &Attribution) -> LeadStatus {
    if att.placed_at.is_some() {
        LeadStatus::Placed
    } else if att.replied_at.is_some() {
        LeadStatus::Replied
    } else if att.sent > 0 && att.bounced >= att.sent {
        LeadStatus::Bounced
    } else if att.sent > 0 {
        LeadStatus::Contacted
    } else {
        LeadStatus::Discovered
    }
}

/// The time of the latest fact the attribution holds (sends, the reply, the placement).
fn latest_fact(att: &Attribution) -> Option<&str> {
    [att.last_sent_at.as_deref(), att.replied_at.as_deref(), att.placed_at.as_deref()].into_iter().flatten().max()
}

/// The lead's status: the one set at `set_at`, unless a fact of the campaign's mail came later
/// (then the mail's view), or none was set (then the mail's view).
pub fn status(set: Option<(LeadStatus, &str)>, att: &Attribution) -> LeadStatus {
    match set {
        Some((s, at)) if latest_fact(att).is_none_or(|f| f <= at) => s,
        _ => from_attribution(att),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_status_reads_back_until_mail_moves_on() {
        let mut att = Attribution::default();
        assert_eq!(status(None, &att), LeadStatus::Discovered);
        assert_eq!(status(Some((LeadStatus::Lost, "2026-01-02T00:00:00Z")), &att), LeadStatus::Lost);
        att.sent = 1;
        att.first_sent_at = Some("2026-01-01T00:00:00Z".into());
        att.last_sent_at = att.first_sent_at.clone();
        assert_eq!(status(None, &att), LeadStatus::Contacted);
        // Set after the send: the person's word stands.
        assert_eq!(status(Some((LeadStatus::Placed, "2026-01-02T00:00:00Z")), &att), LeadStatus::Placed);
        // A reply after it shows through.
        att.replied_at = Some("2026-01-03T00:00:00Z".into());
        assert_eq!(status(Some((LeadStatus::Lost, "2026-01-02T00:00:00Z")), &att), LeadStatus::Replied);
        att.bounced = 1;
        att.replied_at = None;
        assert_eq!(status(None, &att), LeadStatus::Bounced);
    }

    #[test]
    fn every_status_parses_back_and_maps_as_documented() {
        for s in LeadStatus::ALL {
            assert_eq!(LeadStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(LeadStatus::Replied.pipeline(), Some(PipelineStatus::ActivelyEngaged));
        assert_eq!(LeadStatus::Lost.pipeline(), None);
        assert_eq!(LeadStatus::Bounced.pipeline(), None);
    }
}
