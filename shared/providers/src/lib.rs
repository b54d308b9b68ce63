//! Clients of outside data providers (Apollo for contacts), with their error handling.
//!
//! - [`apollo`]: Apollo.io's People API Search and Bulk People Enrichment, combined into
//!   [`ApolloClient::find_contacts`] for contact discovery.
//! - [`ProviderError`]: the few failures a caller must tell apart (wait and retry later, stop spending,
//!   fix the key, try again, report a bug).

pub mod apollo;
mod error;
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
