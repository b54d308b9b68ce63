//! reqwest through the guard: a DNS resolver that answers vetted addresses only, so the client
//! connects to exactly what the guard checked (no second lookup, no rebinding window). hyper does
//! not call a resolver for IP literals, so [`check_url_host`] must vet those before each request.

use crate::{Guard, GuardError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::sync::Arc;

/// The resolver half: give it to `ClientBuilder::dns_resolver`.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> Arc<Self> {
        Arc::new(GuardedResolver { guard })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is the connector's to set; 0 here is replaced by the URL's port.
            let addrs =
                guard.resolve(&host, 0).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Vets a URL's host when it is an IP literal (the resolver never sees those); names are vetted
/// by [`GuardedResolver`] when the client connects.
pub async fn check_url_host(guard: &Guard, url: &reqwest::Url) -> Result<(), GuardError> {
    let port = url.port_or_known_default().unwrap_or(443);
    let Some(host) = url.host_str() else {
        return Err(GuardError::Invalid { host: String::new(), why: "the URL has no host" });
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => guard.resolve(&ip.to_string(), port).await.map(|_| ()),
        Err(_) => Ok(()),
    }
}
