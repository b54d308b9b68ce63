//! The link-building CRM: storage keys, records, the event write path, listing and replay.

pub mod keys;
pub mod listing;
pub mod metrics;
pub mod records;
pub mod replay;
pub mod write;
