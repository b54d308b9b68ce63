//! Test support shared by the workspace's crates.
//!
//! - [`moto`]: a local DynamoDB (moto's server) for tests that talk to a real DynamoDB API.
//! - [`smtp`]: an SMTP server (aiosmtpd) on loopback that keeps the messages it accepts.
//! - [`server`]: the real `linkcrm` binary on a loopback port, for black-box tests.
//! - [`http`]: a router on loopback and a JSON client for it.
//! - [`mail`]: messages as mail servers write them (bounce reports).
//! - [`lambda`]: a Lambda function binary under a fake Runtime API, for one invocation.
//! - [`fake_apollo`]: Apollo.io's people search and bulk enrichment, in Apollo's shapes, with scriptable faults.

pub mod fake_apollo;
pub mod http;
pub mod lambda;
pub mod mail;
pub mod moto;
pub mod server;
pub mod smtp;

pub use fake_apollo::{FakeApollo, FakePerson, Fault, RecordedCall};
pub use moto::{unique_table_name, Moto};
pub use smtp::{ReceivedMessage, ServerTls, SmtpOptions, SmtpServer};
