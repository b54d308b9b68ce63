//! Test support shared by the workspace's crates.
//!
//! - [`moto`]: a local DynamoDB (moto's server) for tests that talk to a real DynamoDB API.
//! - [`smtp`]: an SMTP server (aiosmtpd) on loopback that keeps the messages it accepts.
//! - [`imap`]: an IMAP server (Dovecot) on loopback, plain/STARTTLS and TLS, optionally XOAUTH2.
//! - [`server`]: the real `linkcrm` binary on a loopback port, for black-box tests.
//! - [`http`]: a router on loopback and a JSON client for it.
//! - [`mail`]: messages as mail servers write them (bounce reports).
//! - [`lambda`]: a Lambda function binary under a fake Runtime API, for one invocation.
//! - [`fake_apollo`]: Apollo.io's people search and bulk enrichment, in Apollo's shapes, with scriptable faults.

pub mod fake_apollo;
pub mod http;
pub mod imap;
pub mod lambda;
pub mod mail;
pub mod mcp_client;
pub mod moto;
pub mod server;
pub mod smtp;
pub mod webhook_receiver;

pub use fake_apollo::{FakeApollo, FakePerson, Fault, RecordedCall};
pub use imap::{ImapOptions, ImapServer};
pub use moto::{unique_table_name, Moto};
pub use smtp::{ReceivedMessage, ServerTls, SmtpOptions, SmtpServer};

// fake_llm: an OpenAI-compatible chat completions API, errors included, with scriptable answers and faults.
pub mod fake_llm;
pub use fake_llm::{Failure as LlmFailure, FakeLlm, LlmRequest};

// fake_dataforseo: DataForSEO's Google organic Live SERP, in DataForSEO's shapes (status codes at two levels, SERP
// features mixed in), with scriptable faults. fake_ahrefs: Ahrefs API v3 Site Explorer (refdomains, all-backlinks,
// domain-rating, metrics, backlinks-stats), with scriptable faults.
pub mod fake_ahrefs;
pub mod fake_dataforseo;
pub use fake_ahrefs::{AhrefsCall, AhrefsFault, FakeAhrefs};
pub use fake_dataforseo::{DataForSeoCall, DataForSeoFault, FakeDataForSeo};

// fake_oauth: an OAuth 2.0 authorization server (code grant with PKCE, refresh, introspection for Dovecot).
pub mod fake_oauth;
pub use fake_oauth::FakeOAuth;
