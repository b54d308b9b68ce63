//! The workspaces context: an agency's client workspaces, API keys, credits and usage, and
//! integrations (a workspace's own Apollo key).

#![allow(clippy::result_large_err)]

pub mod ops;

// The core's modules, under the names this crate's code uses for them.
pub(crate) use linkcrm_core::{
    auth, catalogue, context, credits, error, ids, items, keys, lenient, list, outbox, platform, rules, validate,
};
