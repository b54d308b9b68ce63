//! The CRM context (seed 000): accounts, contacts, relationships, events, their derived state and
//! replay, and contact discovery. Its library functions (records, the event writer) are what other
//! contexts use to read and record CRM facts; its operations are only reached through the executor.

#![allow(clippy::result_large_err)]

pub mod apollo_keys;
pub mod campaign_facts;
pub mod discovery;
pub mod keys;
pub mod listing;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod pipeline;
pub mod records;
pub mod replay;
pub mod write;

// The core's modules, under the names this crate's code uses for them.
pub(crate) use linkcrm_core::{
    catalogue, context, credits, error, ids, invocations, lenient, list, outbox, rules, workspace, App,
};
