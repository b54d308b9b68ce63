//! `linkcrm-bench`: the CRM benchmark's two halves that talk to the embedded store directly.
//!
//! - `load` fills a fresh data directory with a CRM-sized data set (accounts, workspaces,
//!   relationships, events) in the exact item layouts the API writes, derived state folded from
//!   the generated events, so `linkcrm replay` finds nothing to repair.
//! - `read-rate` measures the raw store's reads on that data (the ceiling under the HTTP figures).
//! - `send` measures outreach sends through the job queue against a running server, with its own
//!   SMTP sink (`infra/bench/send.sh`).
//!
//! `infra/bench/run.sh` drives the first two and then the HTTP load; the figures are in BENCHMARKS.md.

mod coldstart;
mod load;
mod read_rate;
mod rng;
mod send;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// The redb file inside a data directory, where `linkcrm --data-dir` looks for it.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("linkcrm.redb")
}
/// Written by `load`: agency, key, workspaces, parameters, load figures.
pub const META_FILE: &str = "bench-meta.json";
/// `<workspace> <relationship>` per line: every loaded relationship.
pub const RELATIONSHIPS_FILE: &str = "bench-relationships.txt";
/// One loaded workspace id per line.
pub const WORKSPACES_FILE: &str = "bench-workspaces.txt";
/// A sample of loaded event ids, one per line.
pub const EVENTS_FILE: &str = "bench-events.txt";

#[derive(Parser)]
#[command(name = "linkcrm-bench", about = "CRM benchmark: bulk load, raw store read rate, sends through the queue")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a fresh data directory.
    Load(load::Args),
    /// Measure the raw store's read rate on loaded data (no server may have the store open).
    ReadRate(read_rate::Args),
    /// Measure outreach sends through the job queue against a running server (own SMTP sink).
    Send(send::Args),
    /// Measure Lambda function binaries' init (process start to first invocation request).
    Coldstart(coldstart::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Load(args) => rt.block_on(load::run(args)),
        Command::ReadRate(args) => rt.block_on(read_rate::run(args)),
        Command::Send(args) => rt.block_on(send::run(args)),
        Command::Coldstart(args) => rt.block_on(coldstart::run(args)),
    }
}
