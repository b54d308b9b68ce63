//! The agency's tools: the audit log of every write, bulk actions across workspaces and their
//! schedules, and integration health.

#![allow(clippy::result_large_err)]

pub mod bulk;
pub mod health;
pub mod keys;
pub mod ops;
pub mod probe;
pub mod schedule;
