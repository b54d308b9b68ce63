//! The inbound context: the negotiator that answers partners who write to the workspace first
//! (seed 002's third flow, CONTRACT "Inbound negotiation").
//!
//! - Settings (`/v1/link-building/inbound/settings`): on or off, autonomous or not, tone, angles,
//!   which mailboxes it reads, whether declines get a reply; enabling makes the workspace's
//!   inbound campaign (`icmp_…`), whose sends are the negotiator's replies.
//! - Per-partner modes (`/v1/link-building/crm/account/{id}/inbound-settings`).
//! - Eval gates (`/v1/link-building/inbound/eval-gates`), versioned.
//! - The negotiation job (`negotiate`): a request's facts, the gates, and the outcome (a reply sent,
//!   a draft waiting for approval, a decline, spam, or a hold), recorded on the message.
//! - `POST /v1/link-building/campaign/respond`: a person's reply to a received message.
//!
//! Requests reach it as `inbound_negotiate` jobs committed with each unsolicited message
//! (`linkcrm_outreach::inbound`); replies go out through outreach's send path and its policy.

#![allow(clippy::result_large_err)]

pub mod drafting;
pub mod keys;
pub mod negotiate;
pub mod ops;
pub mod records;

pub(crate) use linkcrm_core::{catalogue, context, error, ids, lenient, list, outbox, App};
