//! `linkcrm`: the whole API in one process, on the embedded store (or DynamoDB), with the outbox
//! relay running in-process. `cargo run --release` serves on 127.0.0.1:3000 with data in ./data.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use linkcrm_storage::DynStore;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc instead of the system allocator: a request allocates and frees many small values
/// (decoded items, JSON), and glibc's malloc and free were a quarter to a half of the server's
/// CPU under load (BENCHMARKS.md, profiles).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "linkcrm", version, about = "Link-building CRM and outreach platform")]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to serve on.
    #[arg(long, env = "LINKCRM_BIND", default_value = "127.0.0.1:3000", global = true)]
    bind: String,
}

#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// Which store backs the API.
    #[arg(long, env = "LINKCRM_STORE", value_enum, default_value_t = Backend::Embedded, global = true)]
    store: Backend,
    /// Folder of the embedded store.
    #[arg(long, env = "LINKCRM_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// DynamoDB table (with --store dynamodb); AWS_ENDPOINT_URL points the SDK at a local server.
    #[arg(long, env = "LINKCRM_TABLE", default_value = "linkcrm", global = true)]
    table: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Embedded,
    Dynamodb,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage agencies.
    Agency {
        #[command(subcommand)]
        action: AgencyAction,
    },
    /// Operate on shared partner accounts.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Rebuild derived state (relationship statuses, account contact facts) from the event logs
    /// and report what differs; with --write, repair it.
    Replay {
        #[arg(long)]
        write: bool,
    },
    /// Placed-link monitoring.
    Links {
        #[command(subcommand)]
        action: LinksAction,
    },
    /// Platform-wide suppression (hard bounces the platform itself received).
    Suppression {
        #[command(subcommand)]
        action: SuppressionAction,
    },
    /// Manage the DynamoDB table (for a local DynamoDB server; in AWS the SAM template owns it).
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
    /// Maintain the embedded store.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Remove expired items, rewrite old items in the compact encoding and give free space back
    /// to the file system. Run it while the server is stopped (prints a JSON report).
    Compact,
    /// Move items written in an older key layout to the current one (today: relationship events
    /// indexed five times, now three). Without --write it only counts. Safe to repeat and to run
    /// beside a live server (prints a JSON report).
    Migrate {
        #[arg(long)]
        write: bool,
    },
    /// Where the file's bytes are: each table's entries, stored bytes and overhead, and the
    /// items by kind (JSON). Run it while the server is stopped.
    Stats,
}

#[derive(Subcommand)]
enum LinksAction {
    /// Monitor every placed link recorded before monitoring existed: each LINK_PLACED with a
    /// `metadata.linkUrl` becomes a monitored link (due at once), and each such relationship's
    /// `linkStatus` is rebuilt from its events. Reads every relationship's LINK_PLACED events;
    /// safe to repeat (prints a JSON report). With the embedded store, run it while the server is
    /// stopped.
    Backfill {
        /// Spread the first checks over this many hours (default: the check interval,
        /// `LINKCRM_LINKCHECK_INTERVAL_HOURS`); 0 checks them all at once.
        #[arg(long)]
        spread_hours: Option<f64>,
    },
}

#[derive(Subcommand)]
enum TableAction {
    /// Create the table from infra/table.json (does nothing if it exists).
    Create,
}

#[derive(Subcommand)]
enum AccountAction {
    /// Set a domain's metrics (domain rating and Ahrefs figures) with a METRICS_REFRESHED event.
    /// With the embedded store, run it while the server is stopped (the store is single-process).
    SetMetrics {
        /// The account's domain (normalised: `https://www.Example.com` is `example.com`).
        #[arg(long)]
        domain: String,
        /// Domain rating, 0 to 100.
        #[arg(long)]
        domain_rating: i64,
        #[arg(long)]
        organic_traffic: Option<i64>,
        #[arg(long)]
        organic_keywords: Option<i64>,
        #[arg(long)]
        referring_domains: Option<i64>,
        #[arg(long)]
        backlinks: Option<i64>,
    },
}

#[derive(Subcommand)]
enum SuppressionAction {
    /// Lift an address's platform-wide suppression, writing an audit line (printed as JSON).
    /// With the embedded store, run it while the server is stopped.
    Lift {
        #[arg(long)]
        email: String,
        /// Why: kept in the audit line.
        #[arg(long)]
        reason: String,
        /// Who lifts it; the operating system's user when absent.
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
enum AgencyAction {
    /// Create an agency and print its key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Use this key instead of generating one.
        #[arg(long)]
        key: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let result = run(cli).await;
    // Log lines are written by their own thread: every line logged so far is out before exit.
    linkcrm::log_writer::LogWriter::global().flush();
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.store, &cli.bind).await,
        Command::Agency { action: AgencyAction::Create { name, key } } => {
            let (store, _) = open_store(&cli.store).await?;
            let (agency, secret) = linkcrm_api::platform::create_agency(&store, &name, key).await?;
            println!("Created agency {} ({})", agency.name, agency.id);
            println!("Agency key (shown once): {secret}");
            Ok(())
        }
        Command::Account { action } => account_command(&cli.store, action).await,
        Command::Links { action: LinksAction::Backfill { spread_hours } } => {
            let spread = match spread_hours {
                Some(h) if h.is_finite() && h >= 0.0 => std::time::Duration::from_secs_f64(h * 3600.0),
                Some(h) => anyhow::bail!("--spread-hours must be 0 or more, not {h}"),
                None => linkcrm_api::monitoring::settings().interval,
            };
            let (store, _) = open_store(&cli.store).await?;
            let app = linkcrm_api::app(store, linkcrm_api::Config::from_env()).await?;
            let report = linkcrm_api::monitoring::track::backfill(&app, spread)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Suppression { action: SuppressionAction::Lift { email, reason, actor } } => {
            let (store, _) = open_store(&cli.store).await?;
            let actor = actor.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into());
            let lifted = linkcrm_api::suppression::lift_platform(&store, &email, &reason, &actor)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            match lifted {
                Some(audit) => {
                    tracing::info!(target: "audit", auditId = %audit.id, action = %audit.action, target = %audit.target, actor = %audit.actor, reason = %audit.reason, "platform suppression lifted");
                    println!("{}", serde_json::to_string(&audit)?);
                    Ok(())
                }
                None => anyhow::bail!("{email} is not suppressed platform-wide"),
            }
        }
        Command::Replay { write } => {
            let (store, _) = open_store(&cli.store).await?;
            let policy = linkcrm_domain::derive::CoolingPolicy::from_env();
            let report = linkcrm_api::crm::replay::run(&store, policy, write).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.mismatches.is_empty() && !write {
                linkcrm::log_writer::LogWriter::global().flush();
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Store { action: StoreAction::Compact } => {
            let report = offline(&cli.store, "compaction", linkcrm_storage::embedded::compact).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Store { action: StoreAction::Stats } => {
            let report = offline(&cli.store, "reading store stats", linkcrm_storage::embedded::stats).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Store { action: StoreAction::Migrate { write } } => {
            let (store, _) = open_store(&cli.store).await?;
            let report = linkcrm_api::crm::migrate::event_indexes(&store, write).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Table { action: TableAction::Create } => {
            let store = linkcrm_storage::dynamo::DynamoStore::from_env(&cli.store.table, None).await;
            store.create_table().await?;
            println!("Table {} is ready", cli.store.table);
            Ok(())
        }
    }
}

async fn account_command(args: &StoreArgs, action: AccountAction) -> anyhow::Result<()> {
    use linkcrm_api::crm::{metrics, write};
    let AccountAction::SetMetrics {
        domain,
        domain_rating,
        organic_traffic,
        organic_keywords,
        referring_domains,
        backlinks,
    } = action;
    let (store, _) = open_store(args).await?;
    let app = linkcrm_api::app(store, linkcrm_api::Config::from_env()).await?;
    let fail = |e: linkcrm_api::error::ApiError| anyhow::anyhow!("{}: {}", e.code, e.message);
    let domain = write::normalize("domain", &domain).map_err(fail)?;
    let account = write::account_by_domain(&app, &domain)
        .await
        .map_err(fail)?
        .with_context(|| format!("no account has the domain {domain}"))?;
    let m = metrics::Metrics {
        domain_rating: Some(domain_rating),
        organic_traffic,
        organic_keywords,
        referring_domains,
        backlinks,
    };
    let updated = metrics::set_metrics(&app, account.id(), &m).await.map_err(fail)?;
    let view = updated.view(linkcrm_domain::derive::CoolingPolicy::from_env())?;
    println!("{}", serde_json::to_string(&view)?);
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(linkcrm::log_writer::LogWriter::global())
        .init();
    // A panic's own message goes straight to stderr; the lines logged before it go first.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        linkcrm::log_writer::LogWriter::global().flush();
        default_hook(info);
    }));
}

/// The embedded store's file in the data directory.
fn store_file(args: &StoreArgs) -> std::path::PathBuf {
    args.data_dir.join("linkcrm.redb")
}

/// Runs maintenance `f` on the embedded store's file, which no server may have open.
async fn offline<T: Send + 'static>(
    args: &StoreArgs,
    what: &str,
    f: fn(&std::path::Path) -> linkcrm_storage::Result<T>,
) -> anyhow::Result<T> {
    anyhow::ensure!(args.store == Backend::Embedded, "{what}: only the embedded store has a file to maintain");
    let path = store_file(args);
    anyhow::ensure!(path.exists(), "no store at {}", path.display());
    let result = tokio::task::spawn_blocking(move || f(&path)).await?;
    result.with_context(|| format!("{what} failed (is a linkcrm server using the store?)"))
}

/// The automatic compaction policy (`LINKCRM_COMPACT_ON_START`, default `auto`): before the
/// server opens the store, the one moment it has the file to itself, a file of at least 256 MiB
/// that is more than three quarters free or fragmented space (after a purge of expired items or
/// a large delete) is rebuilt. Not less: redb grows a file by about half its size at a time, so a
/// file just past a growth step is legitimately half free, and compacting it at every start
/// would cost a minute per gigabyte each time. `off` never does; `always` always does.
async fn compact_on_start(path: &std::path::Path) -> anyhow::Result<()> {
    use linkcrm_storage::embedded;
    let mode = std::env::var("LINKCRM_COMPACT_ON_START").unwrap_or_else(|_| "auto".into());
    if mode == "off" || !path.exists() {
        return Ok(());
    }
    anyhow::ensure!(mode == "auto" || mode == "always", "LINKCRM_COMPACT_ON_START must be auto, always or off");
    let p = path.to_owned();
    let usage = tokio::task::spawn_blocking(move || embedded::usage(&p))
        .await?
        .with_context(|| format!("opening {} (is another linkcrm using it?)", path.display()))?;
    if mode == "auto" && !embedded::should_compact(&usage, 256 << 20, 0.75) {
        return Ok(());
    }
    tracing::info!(
        fileBytes = usage.file_bytes,
        wastePercent = (usage.waste() * 100.0).round(),
        "compacting the store before start"
    );
    let p = path.to_owned();
    match tokio::task::spawn_blocking(move || embedded::compact(&p)).await? {
        Ok(report) => {
            tracing::info!(bytesBefore = report.bytes_before, bytesAfter = report.bytes_after, "store compacted")
        }
        // The old file is untouched (compaction swaps a finished copy in, or nothing): serve it.
        Err(e) => tracing::warn!(error = %e, "compaction failed; starting on the store as it is"),
    }
    Ok(())
}

/// The store, and for the embedded one the signal it gives after each commit.
async fn open_store(args: &StoreArgs) -> anyhow::Result<(DynStore, Option<Arc<tokio::sync::Notify>>)> {
    match args.store {
        Backend::Embedded => {
            let path = store_file(args);
            let store = linkcrm_storage::embedded::EmbeddedStore::open(&path)
                .with_context(|| format!("opening {} (is another linkcrm using it?)", path.display()))?;
            let notify = store.commit_notify();
            Ok((Arc::new(store), Some(notify)))
        }
        // The SDK's own configuration chain; AWS_ENDPOINT_URL points it at a local server.
        Backend::Dynamodb => {
            let store = linkcrm_storage::dynamo::DynamoStore::from_env(&args.table, None).await;
            Ok((Arc::new(store), None))
        }
    }
}

async fn serve(args: &StoreArgs, bind: &str) -> anyhow::Result<()> {
    // LINKCRM_JOB_WORKER=off leaves queued work waiting (for a worker run elsewhere, or tests).
    let run_worker = std::env::var("LINKCRM_JOB_WORKER").as_deref() != Ok("off");
    // Before anything starts: an unusable LINKCRM_SMTP_CA_FILE stops the server rather than
    // failing every send to a private mail server later.
    let workers = run_worker.then(linkcrm_api::jobs::Workers::from_env).transpose()?;
    if args.store == Backend::Embedded {
        compact_on_start(&store_file(args)).await?;
    }
    let (store, commits) = open_store(args).await?;
    if let Some((agency, secret)) =
        linkcrm_api::platform::bootstrap(&store, std::env::var("LINKCRM_ADMIN_KEY").ok()).await?
    {
        if std::env::var("LINKCRM_ADMIN_KEY").is_ok() {
            tracing::info!(agencyId = %agency.id, "created the first agency with LINKCRM_ADMIN_KEY");
        } else {
            println!("Created the first agency ({}). Its key, shown once: {secret}", agency.id);
        }
    }
    // The local binary streams a campaign export whole; API Gateway gets it in 5 MB parts.
    let config = linkcrm_api::Config { stream_files: true, ..linkcrm_api::Config::from_env() };
    let app = linkcrm_api::app(store.clone(), config).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let relay = linkcrm::spawn_relay(store, commits, stop_rx.clone());
    let worker = workers.map(|workers| linkcrm::spawn_worker(app.clone(), workers, stop_rx));

    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(listening = %addr, backend = app.store.backend(), "linkcrm ready");
    axum::serve(linkcrm_api::edge::EdgeListener::new(listener), linkcrm_api::router(&app))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // In-flight requests have drained; let the relay finish what it holds.
    let _ = stop_tx.send(true);
    let _ = relay.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}
