//! Test support shared by the workspace's crates.
//!
//! - [`moto`]: a local DynamoDB (moto's server) for tests that talk to a real DynamoDB API.
//! - [`server`]: the real `linkcrm` binary on a loopback port, for black-box tests.
//! - [`fake_apollo`]: Apollo.io's people search and bulk enrichment, in Apollo's shapes, with scriptable faults.

pub mod fake_apollo;
pub mod moto;
pub mod server;

pub use fake_apollo::{FakeApollo, FakePerson, Fault, RecordedCall};
pub use moto::{unique_table_name, Moto};
