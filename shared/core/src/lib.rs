//! The core every context and door shares: the operation trait and catalogue, the executor
//! (authentication, scope, rate limit, workspace, If-Match, idempotency), errors, ids, cursors,
//! invocations, credits, approvals, the outbox, job kinds, and the agent operations (invocations
//! and approvals) that several contexts' work goes through.

// ApiError carries a whole problem document; it is returned on cold paths, so boxing buys nothing.
#![allow(clippy::result_large_err)]

pub mod approval_expiry;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod context;
pub mod credits;
pub mod error;
pub mod executor;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod invocations;
pub mod items;
pub mod jobkinds;
pub mod keys;
pub mod lenient;
pub mod list;
pub mod ops;
pub mod outbox;
pub mod platform;
pub mod provider_keys;
pub mod ratelimit;
pub mod rules;
pub mod secrets;
pub mod validate;
pub mod workspace;

use catalogue::OpSpec;
use linkcrm_storage::DynStore;
use std::sync::Arc;

/// Settings every door shares.
#[derive(Clone, Debug)]
pub struct Config {
    /// Requests per second per key (0 disables the local limiter).
    pub rate_limit_per_sec: f64,
    pub rate_limit_burst: u32,
    /// Whether tenants may name hosts at private, loopback or link-local addresses (mail
    /// servers): `LINKCRM_ALLOW_PRIVATE_TARGETS`, for local use and tests only.
    pub allow_private_targets: bool,
    /// Whether a door may stream a file operation's parts as one response (the local binary);
    /// behind API Gateway (6 MB responses) each part is its own response with `Link: rel="next"`.
    pub stream_files: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { rate_limit_per_sec: 50.0, rate_limit_burst: 100, allow_private_targets: false, stream_files: false }
    }
}

impl Config {
    /// Reads `LINKCRM_RATE_LIMIT` (requests/s per key) and `LINKCRM_RATE_BURST`.
    pub fn from_env() -> Self {
        let mut c = Config::default();
        if let Some(v) = std::env::var("LINKCRM_RATE_LIMIT").ok().and_then(|v| v.parse().ok()) {
            c.rate_limit_per_sec = v;
        }
        if let Some(v) = std::env::var("LINKCRM_RATE_BURST").ok().and_then(|v| v.parse().ok()) {
            c.rate_limit_burst = v;
        }
        c.allow_private_targets = linkcrm_netguard::Guard::from_env().allows_private();
        c
    }

    /// The SSRF guard for hosts tenants name.
    pub fn guard(&self) -> linkcrm_netguard::Guard {
        if self.allow_private_targets {
            linkcrm_netguard::Guard::allowing_private()
        } else {
            linkcrm_netguard::Guard::strict()
        }
    }
}

pub struct App {
    pub store: DynStore,
    pub config: Config,
    pub catalogue: Vec<OpSpec>,
    /// Catalogue index by operation name.
    pub by_name: std::collections::HashMap<&'static str, usize>,
    pub limiter: ratelimit::RateLimiter,
    /// The store-wide server secret (signs cursors, seals stored secrets), loaded by [`App::ready`].
    secret: tokio::sync::OnceCell<Vec<u8>>,
}

impl App {
    /// The application over `store`, serving the operations of `catalogue` (the composition
    /// gathers them from the contexts).
    pub async fn new(store: DynStore, config: Config, catalogue: Vec<OpSpec>) -> anyhow::Result<Arc<App>> {
        let app = Self::assemble(store, config, catalogue);
        app.ready().await?;
        Ok(app)
    }

    /// As [`new`](Self::new) without waiting on the store: the server secret is read in the
    /// background, and every door awaits [`ready`](Self::ready) before serving (the executor, the
    /// HTTP router, the job handlers). For a Lambda function's init, which then does no network
    /// round trip; the first request finds the secret loaded or waits for the same read.
    pub fn starting(store: DynStore, config: Config, catalogue: Vec<OpSpec>) -> Arc<App> {
        let app = Self::assemble(store, config, catalogue);
        let loading = app.clone();
        tokio::spawn(async move {
            if let Err(e) = loading.ready().await {
                tracing::warn!(error = %e, "the server secret could not be read yet; the first request retries");
            }
        });
        app
    }

    fn assemble(store: DynStore, config: Config, catalogue: Vec<OpSpec>) -> Arc<App> {
        let by_name = catalogue.iter().enumerate().map(|(i, op)| (op.name, i)).collect();
        // Every write an operation makes goes through the audit wrapper (see `audit`).
        let store: DynStore = Arc::new(audit::AuditingStore::new(store));
        let limiter = ratelimit::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        Arc::new(App { store, config, catalogue, by_name, limiter, secret: tokio::sync::OnceCell::new() })
    }

    /// Loads the server secret unless it is loaded (one read shared by concurrent callers; a
    /// failed read is retried by the next caller). Nothing that signs or seals runs before it.
    pub async fn ready(&self) -> Result<(), linkcrm_storage::StoreError> {
        if self.secret.initialized() {
            return Ok(());
        }
        self.secret.get_or_try_init(|| platform::load_or_create_secret(&self.store)).await.map(|_| ())
    }

    /// The store-wide secret that signs cursors and seals stored secrets.
    ///
    /// # Panics
    /// Before [`ready`](Self::ready) has succeeded: every door awaits it first.
    pub fn server_secret(&self) -> &[u8] {
        self.secret.get().expect("App::ready is awaited before anything signs or seals")
    }
}
