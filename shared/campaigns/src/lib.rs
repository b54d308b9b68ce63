//! The campaigns context: campaigns (custom today; SERP and competitor next), their drafts,
//! approvals and sends, the campaign's counters and metrics, and templates.
//!
//! What events move (each member's attribution and the counters) is kept by crm's event writer
//! (`linkcrm_crm::campaign_facts`); what a campaign's status means for a queued send is decided
//! by outreach's send job (`linkcrm_outreach::campaign_gate`). This crate owns everything else.

#![allow(clippy::result_large_err)]

pub mod follow_ups;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod placeholders;
pub mod providers;
pub mod records;
pub mod writer;

pub(crate) use linkcrm_core::{catalogue, context, error, ids, invocations, lenient, list, outbox, App};
