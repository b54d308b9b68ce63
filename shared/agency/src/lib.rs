//! The agency's tools: the audit log of every write, and (with the coming parts) bulk actions
//! across workspaces, their schedules, and integration health.

#![allow(clippy::result_large_err)]

pub mod bulk;
pub mod keys;
pub mod ops;
pub mod schedule;
