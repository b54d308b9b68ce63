//! Enumerations with the values CONTRACT.md fixes. JSON spells them exactly as the seeds do.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(v: $name) -> Self {
                serde_json::Value::String(v.as_str().to_owned())
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// A workspace's pipeline stage with one partner (seed 002).
    PipelineStatus {
        Prospecting => "PROSPECTING",
        ApprovedToContact => "APPROVED_TO_CONTACT",
        Queued => "QUEUED",
        ContactedByUs => "CONTACTED_BY_US",
        ContactedByOtherOrg => "CONTACTED_BY_OTHER_ORG",
        ActivelyEngaged => "ACTIVELY_ENGAGED",
        LinkPlaced => "LINK_PLACED",
        NotInterested => "NOT_INTERESTED",
        Inactive => "INACTIVE",
    }
}

string_enum! {
    /// The partner's status shared by every workspace.
    SystemContactStatus {
        NeverContacted => "NEVER_CONTACTED",
        Contacted => "CONTACTED",
        InDiscussion => "IN_DISCUSSION",
        RateEstablished => "RATE_ESTABLISHED",
        CoolingOff => "COOLING_OFF",
        DoNotContact => "DO_NOT_CONTACT",
    }
}

string_enum! {
    /// Where a partner came from.
    Source {
        Search => "SEARCH",
        Competitor => "COMPETITOR",
        Inbound => "INBOUND",
        Manual => "MANUAL",
        Import => "IMPORT",
    }
}

string_enum! {
    Priority {
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
    }
}

string_enum! {
    /// Event types: relationship events, then account-scoped ones (a log per account).
    EventType {
        EmailSent => "EMAIL_SENT",
        EmailReceived => "EMAIL_RECEIVED",
        LinkPlaced => "LINK_PLACED",
        Rejected => "REJECTED",
        CallScheduled => "CALL_SCHEDULED",
        NoteAdded => "NOTE_ADDED",
        StatusChanged => "STATUS_CHANGED",
        ContactResearch => "CONTACT_RESEARCH",
        EmailBounced => "EMAIL_BOUNCED",
        EmailOpened => "EMAIL_OPENED",
        SendBlocked => "SEND_BLOCKED",
        SendUncertain => "SEND_UNCERTAIN",
        PriceUpdated => "PRICE_UPDATED",
        DoNotContactSet => "DO_NOT_CONTACT_SET",
        MetricsRefreshed => "METRICS_REFRESHED",
        DraftApproved => "DRAFT_APPROVED",
        SendQueued => "SEND_QUEUED",
        InboundRequest => "INBOUND_REQUEST",
        LeadStageChanged => "LEAD_STAGE_CHANGED",
        ActivityLogged => "ACTIVITY_LOGGED",
        LinkLost => "LINK_LOST",
        LinkRestored => "LINK_RESTORED",
        LinkChanged => "LINK_CHANGED",
    }
}

impl EventType {
    /// Account-scoped events live in the account's log, readable by every workspace.
    pub fn is_account_scoped(self) -> bool {
        matches!(self, EventType::PriceUpdated | EventType::DoNotContactSet | EventType::MetricsRefreshed)
    }
}

string_enum! {
    /// Status of a queued action (anchor's state machine).
    InvocationStatus {
        Pending => "PENDING",
        Running => "RUNNING",
        WaitingApproval => "WAITING_APPROVAL",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
    }
}

string_enum! {
    /// Status of an approval request (CONTRACT: approvals).
    ApprovalStatus {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Cancelled => "cancelled",
        Expired => "expired",
    }
}

string_enum! {
    /// How an inbound reply reads.
    ReplyClass {
        Interested => "interested",
        NotInterested => "not_interested",
        AsksPrice => "asks_price",
        OutOfOffice => "out_of_office",
        Unsubscribe => "unsubscribe",
        Bounce => "bounce",
        Other => "other",
    }
}

string_enum! {
    /// What an unsolicited inbound request asks for.
    InboundIntent {
        GuestPostPitch => "guest_post_pitch",
        LinkSwap => "link_swap",
        LinkInsertion => "link_insertion",
        PaidLinkInsertion => "paid_link_insertion",
        Spam => "spam",
        Other => "other",
    }
}

string_enum! {
    /// A workspace's approval policy for one kind of outside-world step.
    ApprovalMode {
        RequireApproval => "require_approval",
        Auto => "auto",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_spell_the_seed_values() {
        assert_eq!(serde_json::to_string(&PipelineStatus::ContactedByOtherOrg).unwrap(), "\"CONTACTED_BY_OTHER_ORG\"");
        assert_eq!(PipelineStatus::parse("LINK_PLACED"), Some(PipelineStatus::LinkPlaced));
        assert_eq!(PipelineStatus::parse("link_placed"), None);
        assert_eq!(PipelineStatus::ALL.len(), 9);
        assert_eq!(SystemContactStatus::ALL.len(), 6);
        assert!(EventType::DoNotContactSet.is_account_scoped());
        assert!(!EventType::EmailSent.is_account_scoped());
        assert_eq!(ReplyClass::OutOfOffice.as_str(), "out_of_office");
    }
}
