//! The AWS SDK configuration every Lambda function shares: loaded once per process, with an
//! HTTPS client that trusts only the Amazon Trust Services roots by default.
//!
//! Every AWS service endpoint presents a certificate chaining to Amazon Root CA 1-4 (or the
//! Starfield Services G2 root that cross-signs them), so the SDK's traffic needs no other root.
//! Trusting only those is a smaller trust surface, and it takes the system's certificate store
//! (hundreds of PEM files read and parsed when the first client is built) out of the Lambda
//! init phase. `LINKCRM_AWS_TLS_ROOTS=system` trusts the system's roots instead, and so does a
//! process with `AWS_ENDPOINT_URL` set (an endpoint that is not AWS's own) unless the variable
//! says `amazon`.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;
use tokio::sync::OnceCell;

/// Amazon Root CA 1-4 and Starfield Services Root Certificate Authority G2, PEM.
pub const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("amazon-trust-services.pem");

/// Which roots the SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// The Amazon Trust Services roots only (compiled in).
    Amazon,
    /// The system's certificate store.
    System,
}

impl TlsRoots {
    /// `LINKCRM_AWS_TLS_ROOTS` (`amazon` | `system`); without it, `system` when `AWS_ENDPOINT_URL`
    /// names another endpoint, else `amazon`.
    pub fn from_env() -> Self {
        match std::env::var("LINKCRM_AWS_TLS_ROOTS").ok().as_deref().map(str::trim) {
            Some("system") => TlsRoots::System,
            Some("amazon") => TlsRoots::Amazon,
            Some(other) if !other.is_empty() => {
                tracing::warn!(value = other, "LINKCRM_AWS_TLS_ROOTS is neither amazon nor system; using amazon");
                TlsRoots::Amazon
            }
            _ if std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty()) => TlsRoots::System,
            _ => TlsRoots::Amazon,
        }
    }
}

/// An HTTPS client for the SDK trusting `roots`.
pub fn https_client(roots: TlsRoots) -> aws_sdk_dynamodb::config::SharedHttpClient {
    let store = match roots {
        TlsRoots::Amazon => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS),
        TlsRoots::System => TrustStore::default(),
    };
    let context = TlsContext::builder().with_trust_store(store).build().expect("a trust store is a valid TLS context");
    Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https()
}

/// The SDK's default configuration chain (environment, profile, role) with [`https_client`] as
/// [`TlsRoots::from_env`] says, loaded once per process and shared by every client built from it.
pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG.get_or_init(|| loader().load()).await
}

/// The loader [`sdk_config`] uses, for callers that override part of it (an endpoint).
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(TlsRoots::from_env()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_roots() {
        let pem = String::from_utf8_lossy(AMAZON_TRUST_SERVICES_ROOTS);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert_eq!(pem.matches("-----END CERTIFICATE-----").count(), 5);
    }

    /// Building a client parses the trust store (smithy panics on a certificate it cannot
    /// parse); the request then fails as a connection error, not a TLS or setup error.
    #[tokio::test]
    async fn a_client_on_the_amazon_roots_builds_and_reports_an_unreachable_endpoint() {
        use aws_sdk_dynamodb::config::{Credentials, Region};
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .endpoint_url("https://127.0.0.1:1")
            .http_client(https_client(TlsRoots::Amazon))
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(conf).list_tables().send().await.expect_err("nothing listens");
        let text = format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
        assert!(text.contains("DispatchFailure") && text.contains("Connection refused"), "{text}");
    }
}
