//! Clients of outside data providers (Apollo for contacts), with their error handling.
//!
//! - [`apollo`]: Apollo.io's People API Search and Bulk People Enrichment, combined into
//!   [`ApolloClient::find_contacts`] for contact discovery.
//! - [`dataforseo`]: DataForSEO v3 Google organic SERP (Live mode), [`DataForSeoClient::serp`] for SERP research.
//! - [`ahrefs`]: Ahrefs API v3 referring domains, backlinks and domain metrics ([`AhrefsClient`]) for prospecting.
//! - [`ProviderError`]: the few failures a caller must tell apart (wait and retry later, stop spending,
//!   fix the key, try again, report a bug).

pub mod apollo;
mod error;
pub mod probe;
mod retry;

pub use apollo::{ApolloClient, ApolloPerson, EnrichedPerson, FoundContact};
pub use error::ProviderError;
pub use retry::RetryPolicy;

/// The port contact discovery depends on, so the discover job can be handed Apollo or a stand-in.
#[async_trait::async_trait]
pub trait ContactFinder: Send + Sync {
    /// People at `domain` matching any of `roles` (loosely) and any of `seniorities`, with verified emails
    /// where the provider has them.
    async fn find_contacts(
        &self,
        domain: &str,
        roles: &[String],
        seniorities: &[String],
    ) -> Result<Vec<FoundContact>, ProviderError>;
}

// The `Writer` adapter: an OpenAI-compatible chat completions client that drafts outreach emails.
pub mod llm;
pub use llm::{EmailBrief, LlmClient, Tone, WrittenEmail};

pub mod ahrefs;
pub mod dataforseo;

pub use ahrefs::{AhrefsClient, Backlink, DomainMetrics, Mode as AhrefsMode, RefDomain};
pub use dataforseo::{DataForSeoClient, SerpItem, SerpQuery};
