//! The outreach context: sending mailboxes, policy-gated sending (the send job), suppression and
//! unsubscribe, and inbound mail (parsing, reply matching, bounces).

#![allow(clippy::result_large_err)]

pub mod campaign_gate;
pub mod inbound;
pub mod keys;
pub mod mailboxes;
pub mod oauth;
pub mod opens;
pub mod ops;
pub mod pages;
pub mod platform_mailbox;
pub mod polling;
pub mod secret_refs;
pub mod sending;
pub mod suppression;

// The core's modules, under the names this crate's code uses for them.
pub(crate) use linkcrm_core::{
    approval_expiry, catalogue, context, credits, error, ids, invocations, items, lenient, list, outbox, platform,
    rules, validate, workspace, App,
};
