//! `read-rate`: the raw embedded store's reads on the loaded data, through the `Store` port the API
//! uses (so each read runs on tokio's blocking pool in its own redb read transaction), without
//! HTTP, auth or JSON views. The ceiling the HTTP figures are read against.

use crate::rng::Rng;
use anyhow::Context;
use linkcrm_api::crm::keys;
use linkcrm_storage::embedded::EmbeddedStore;
use linkcrm_storage::{Condition, DynStore, Index, Key, Query};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// A directory `load` filled (no server may have its store open).
    #[arg(long)]
    data_dir: PathBuf,
    /// Seconds per operation and concurrency.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent tasks to measure at, comma-separated (1 = one task, one read at a time).
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    GetRelationship,
    GetEvent,
    QueryList,
    ListPage,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::GetRelationship => "get relationship (1 GetItem)",
            Op::GetEvent => "get event (1 GetItem)",
            Op::QueryList => "query a workspace's 50 latest relationships (GSI1, archived filter)",
            Op::ListPage => {
                "list page: that query + BatchGet of the page's accounts (projected as the list reads them)"
            }
        }
    }
}

struct Data {
    store: DynStore,
    /// (workspace, relationship)
    rels: Vec<(String, String)>,
    events: Vec<String>,
    workspaces: Vec<String>,
}

async fn once(d: &Data, op: Op, rng: &mut Rng) -> anyhow::Result<()> {
    match op {
        Op::GetRelationship => {
            let (_, id) = rng.pick(&d.rels);
            d.store.get(&keys::relationship(id)).await?.context("relationship missing")?;
        }
        Op::GetEvent => {
            let id = rng.pick(&d.events);
            d.store.get(&keys::event(id)).await?.context("event missing")?;
        }
        Op::QueryList | Op::ListPage => {
            let ws = rng.pick(&d.workspaces);
            let q = Query::index(Index::Gsi1, keys::workspace_relationships_pk(ws))
                .backward()
                .limit(50)
                .filter(Condition::Equals("archived".into(), Value::Bool(false)));
            let page = d.store.query(q).await?;
            anyhow::ensure!(page.items.len() == 50, "a workspace with fewer than 50 relationships");
            if let Op::ListPage = op {
                let mut accounts: Vec<Key> = page
                    .items
                    .iter()
                    .filter_map(|i| i.get("accountId").and_then(Value::as_str))
                    .map(keys::account)
                    .collect();
                accounts.sort();
                accounts.dedup();
                // What the list reads of them (records::ACCOUNT_LIST_ATTRS).
                d.store.batch_get_attrs(&accounts, linkcrm_api::crm::records::ACCOUNT_LIST_ATTRS).await?;
            }
        }
    }
    Ok(())
}

struct Measured {
    ops: usize,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn measure(d: Arc<Data>, op: Op, tasks: usize, secs: f64) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let d = d.clone();
        set.spawn(async move {
            let mut rng = Rng::new(0xBE4C + t as u64);
            let mut lat = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                once(&d, op, &mut rng).await?;
                lat.push(t0.elapsed().as_micros() as u64);
            }
            anyhow::Ok(lat)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    Ok(Measured { ops: all.len(), secs, p50_us: pct(0.50).unwrap_or(0), p99_us: pct(0.99).unwrap_or(0) })
}

fn lines(path: PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let path = crate::store_path(&args.data_dir);
    anyhow::ensure!(path.exists(), "{} does not exist: run `load` first", path.display());
    let store: DynStore = Arc::new(EmbeddedStore::open(&path).context("opening the store (is a server using it?)")?);
    let rels = lines(args.data_dir.join(crate::RELATIONSHIPS_FILE))?
        .into_iter()
        .filter_map(|l| l.split_once(' ').map(|(w, r)| (w.to_owned(), r.to_owned())))
        .collect::<Vec<_>>();
    let data = Arc::new(Data {
        store,
        rels,
        events: lines(args.data_dir.join(crate::EVENTS_FILE))?,
        workspaces: lines(args.data_dir.join(crate::WORKSPACES_FILE))?,
    });
    anyhow::ensure!(!data.rels.is_empty() && !data.events.is_empty(), "no loaded relationships or events");

    println!("| Store operation | Tasks | ops/s | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    for op in [Op::GetRelationship, Op::GetEvent, Op::QueryList, Op::ListPage] {
        for &tasks in &args.concurrency {
            let m = measure(data.clone(), op, tasks.max(1), args.seconds).await?;
            println!(
                "| {} | {tasks} | {:.0} | {:.3} | {:.3} |",
                op.label(),
                m.ops as f64 / m.secs,
                m.p50_us as f64 / 1000.0,
                m.p99_us as f64 / 1000.0
            );
        }
    }
    Ok(())
}
