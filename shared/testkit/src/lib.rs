//! Test support shared by the workspace's crates.
//!
//! - [`moto`]: a local DynamoDB (moto's server) for tests that talk to a real DynamoDB API.

pub mod moto;

pub use moto::{unique_table_name, Moto};
