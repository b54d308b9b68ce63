//! Test support shared by the workspace's crates.
//!
//! - [`moto`]: a local DynamoDB (moto's server) for tests that talk to a real DynamoDB API.
//! - [`server`]: the real `linkcrm` binary on a loopback port, for black-box tests.

pub mod moto;
pub mod server;

pub use moto::{unique_table_name, Moto};
