//! The embedded adapter: the single table kept in one redb file.
//!
//! Layout: table `items` maps `PK \0 SK` to the item's JSON; each secondary index is a table whose
//! keys are `GSIPK \0 GSISK \0 PK \0 SK` (sparse, like DynamoDB's: only items carrying both index
//! attributes appear). Byte order of these keys is the sort order DynamoDB gives string keys, and
//! `\0` never occurs in a key, so a partition is one contiguous range.
//!
//! Writes go through one writer thread that takes every request waiting at that moment and commits
//! them in one redb transaction (group commit: one fsync for many writers). Each request's
//! conditions are checked against the state left by the requests before it in the same batch, and a
//! request either applies whole or not at all, so the result is the same as running them one by one.
//! Reads run on tokio's blocking pool against redb's MVCC snapshots.

use crate::{
    is_expired, now_epoch, validate_item, validate_key, validate_tx, Condition, Cursor, Index, Item, Key, Page, Query,
    Result, SortKey, Store, StoreError, TxOp, Update,
};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::ops::Bound;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::{oneshot, Notify};

const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");
const GSI_TABLES: [TableDefinition<&[u8], &[u8]>; 4] = [
    TableDefinition::new("GSI1"),
    TableDefinition::new("GSI2"),
    TableDefinition::new("GSI3"),
    TableDefinition::new("GSI4"),
];
/// Items with a TTL, by expiry time: `ttl (8 bytes, big-endian) ++ PK \0 SK`. Lets the writer
/// delete expired items (reads hide them already) without scanning the table.
const EXPIRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("expiry");
/// How long the writer may sit idle before it purges expired items.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Expired items removed per purge transaction at most.
const PURGE_BATCH: usize = 5_000;
/// Requests committed together at most.
const MAX_BATCH: usize = 512;

pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: mpsc::Sender<WriteRequest>,
    committed: Arc<Notify>,
}

struct WriteRequest {
    ops: Vec<TxOp>,
    /// For a single `update`, the item as written is returned.
    want_item: bool,
    /// A multi-part transaction reports which part's condition failed.
    transaction: bool,
    reply: oneshot::Sender<Result<Option<Item>>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file. Only one process may have it open for writing. Its page
    /// cache is at most `LINKCRM_CACHE_MB` MiB (default 256), which bounds the process's memory
    /// whatever the file's size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = open_db(path.as_ref())?;
        // Create the tables up front so readers never meet a missing table.
        let tx = db.begin_write().map_err(internal)?;
        tx.open_table(ITEMS).map_err(internal)?;
        for def in GSI_TABLES.into_iter().chain([EXPIRY]) {
            tx.open_table(def).map_err(internal)?;
        }
        tx.commit().map_err(internal)?;
        let db = Arc::new(db);
        let committed = Arc::new(Notify::new());
        let (writer, rx) = mpsc::channel::<WriteRequest>();
        let (wdb, wnotify) = (db.clone(), committed.clone());
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&wdb, &rx, &wnotify))
            .map_err(internal)?;
        Ok(EmbeddedStore { db, writer, committed })
    }

    /// Deletes items past their TTL now (the writer also does it whenever it has been idle for
    /// a while). Returns how many were removed.
    pub async fn purge_expired(&self) -> Result<usize> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || purge(&db, now_epoch())).await.map_err(internal)?
    }

    /// Notified after every commit: lets the local outbox relay wake without polling hard.
    pub fn commit_notify(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    async fn write(&self, ops: Vec<TxOp>, want_item: bool, transaction: bool) -> Result<Option<Item>> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteRequest { ops, want_item, transaction, reply })
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Internal("store writer dropped a request".into()))?
    }

    /// A point read (one key, or a batch of at most 100): done on the calling thread. redb reads
    /// never wait for the writer (MVCC) and take microseconds from cached pages, less than the
    /// hop to the blocking pool and back would cost.
    fn read_now<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_read().map_err(internal)?;
        f(&tx)
    }

    /// Live items (or their projections) for `keys`, in their order, from one snapshot.
    fn load_many(&self, keys: &[Key], attrs: Option<&[String]>) -> Result<Vec<Item>> {
        for k in keys {
            validate_key(k)?;
        }
        self.read_now(|tx| {
            let items = tx.open_table(ITEMS).map_err(internal)?;
            let now = now_epoch();
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(it) = load(&items, k, now, attrs)? {
                    out.push(it);
                }
            }
            Ok(out)
        })
    }

    /// A read of unbounded work (a query that may filter many items): on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_read().map_err(internal)?;
            f(&tx)
        })
        .await
        .map_err(internal)?
    }
}

/// The page cache's size: `LINKCRM_CACHE_MB` MiB, default 256.
pub fn cache_bytes() -> usize {
    std::env::var("LINKCRM_CACHE_MB").ok().and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(256) << 20
}

fn open_db(path: &Path) -> Result<Database> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(internal)?;
    }
    Database::builder().set_cache_size(cache_bytes()).create(path).map_err(internal)
}

/// What [`compact`] did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Items rewritten in the current encoding (from JSON text, or binary written before
    /// compression).
    pub items_reencoded: u64,
    /// Items past their TTL removed (with their index entries).
    pub expired_removed: u64,
}

/// Offline maintenance of a store file no process has open: removes every expired item, then
/// rebuilds the file: every table copied in key order into a fresh file (items rewritten in the
/// current encoding), which replaces the old one atomically. `linkcrm store compact` runs it.
///
/// A rebuild, not redb's own compaction alone: redb moves pages to shrink the file but never
/// refills a half-empty page, and B-tree pages filled by random inserts (or emptied by deletes
/// and by items that shrank) stay 40-60 % empty. Copying in order fills them again. Each table is
/// copied in two interleaved passes (even positions, then odd): redb splits a full leaf in
/// halves, so a plain ordered copy would leave every leaf half full; the second pass fills the
/// gaps the first left. A crash during the rebuild leaves the old file as it was.
pub fn compact(path: &Path) -> Result<CompactReport> {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).map_err(internal);
    let bytes_before = size(path)?;
    let src = open_db(path)?;
    let mut expired_removed = 0;
    loop {
        let n = purge(&src, now_epoch())?;
        expired_removed += n as u64;
        if n < PURGE_BATCH {
            break;
        }
    }
    let tmp = path.with_extension("redb.compacting");
    let _ = std::fs::remove_file(&tmp);
    // Whatever stops the rebuild (a full disk, a read error) leaves the old file in place and
    // no half-built copy beside it.
    let items_reencoded = match rebuild(src, &tmp) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(internal)?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable once the directory is synced.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(CompactReport { bytes_before, bytes_after: size(path)?, items_reencoded, expired_removed })
}

/// Copies every table of `src` in key order into a new file at `tmp` (see [`compact`]); returns
/// how many items it rewrote in the current encoding.
fn rebuild(src: Database, tmp: &Path) -> Result<u64> {
    let mut dst = open_db(tmp)?;
    let mut items_reencoded = 0;
    {
        let read = src.begin_read().map_err(internal)?;
        for (t, def) in [ITEMS].into_iter().chain(GSI_TABLES).chain([EXPIRY]).enumerate() {
            let table = read.open_table(def).map_err(internal)?;
            for pass in 0..2 {
                let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(COMPACT_CHUNK);
                let mut entries =
                    table.range::<&[u8]>(..).map_err(internal)?.enumerate().filter(|(n, _)| n % 2 == pass);
                loop {
                    chunk.clear();
                    for (_, entry) in entries.by_ref().take(COMPACT_CHUNK) {
                        let (k, v) = entry.map_err(internal)?;
                        let value = if t == 0 {
                            let current = crate::codec::encode(&decode_item(v.value())?);
                            if current != v.value() {
                                items_reencoded += 1;
                            }
                            current
                        } else {
                            v.value().to_vec()
                        };
                        chunk.push((k.value().to_vec(), value));
                    }
                    // Bounded transactions keep memory flat on a large file; none is durable
                    // until the last commit below.
                    let mut tx = dst.begin_write().map_err(internal)?;
                    tx.set_durability(redb::Durability::None).map_err(internal)?;
                    {
                        let mut out = tx.open_table(def).map_err(internal)?;
                        for (k, v) in &chunk {
                            out.insert(k.as_slice(), v.as_slice()).map_err(internal)?;
                        }
                    }
                    tx.commit().map_err(internal)?;
                    if chunk.len() < COMPACT_CHUNK {
                        break;
                    }
                }
            }
        }
    }
    drop(src);
    // One durable commit makes everything above durable, then the file is shrunk.
    let tx = dst.begin_write().map_err(internal)?;
    tx.commit().map_err(internal)?;
    while dst.compact().map_err(internal)? {}
    drop(dst);
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(internal)?;
    Ok(items_reencoded)
}

/// Entries per write transaction when [`compact`] copies a table.
const COMPACT_CHUNK: usize = 20_000;

/// How much of a store file holds data ([`usage`]).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub file_bytes: u64,
    /// Keys, values and B-tree metadata; the rest of the file is free pages and unused space
    /// inside pages.
    pub used_bytes: u64,
}

impl Usage {
    /// The share of the file that is free or fragmented space.
    pub fn waste(&self) -> f64 {
        if self.file_bytes == 0 {
            return 0.0;
        }
        1.0 - (self.used_bytes as f64 / self.file_bytes as f64).min(1.0)
    }
}

/// Reads how much of the file holds data (a store no process has open).
pub fn usage(path: &Path) -> Result<Usage> {
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).map_err(internal)?;
    let db = open_db(path)?;
    let tx = db.begin_write().map_err(internal)?;
    let s = tx.stats().map_err(internal)?;
    let used_bytes = s.stored_bytes() + s.metadata_bytes();
    tx.abort().map_err(internal)?;
    Ok(Usage { file_bytes, used_bytes })
}

/// The automatic compaction policy: a file of at least `min_bytes` whose free and fragmented
/// space is more than `max_waste` of it is worth rebuilding. The local binary asks this before it
/// opens the store (the only moment it has the file to itself), with `LINKCRM_COMPACT_ON_START`.
pub fn should_compact(u: &Usage, min_bytes: u64, max_waste: f64) -> bool {
    u.file_bytes >= min_bytes && u.waste() > max_waste
}

/// One table's share of the file ([`stats`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableUsage {
    pub table: String,
    pub entries: u64,
    /// Keys and values as stored in leaf pages.
    pub stored_bytes: u64,
    /// Page headers and branch pages.
    pub metadata_bytes: u64,
    /// Unused space inside the table's pages.
    pub fragmented_bytes: u64,
    pub tree_height: u32,
}

/// The items table by kind of item (the partition key up to its first `#`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindUsage {
    pub kind: String,
    pub items: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
    /// The items' size as DynamoDB would bill it ([`crate::item_size`]).
    pub dynamo_bytes: u64,
}

/// Where a store file's bytes are: `linkcrm store stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub file_bytes: u64,
    pub tables: Vec<TableUsage>,
    pub kinds: Vec<KindUsage>,
}

/// Reads the file's usage (a read transaction: a running server may keep the file open, but redb
/// allows one process only, so run it on a stopped store or a copy).
pub fn stats(path: &Path) -> Result<StatsReport> {
    use redb::ReadableTableMetadata;
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).map_err(internal)?;
    let db = open_db(path)?;
    let tx = db.begin_read().map_err(internal)?;
    let mut tables = Vec::new();
    for def in [ITEMS].into_iter().chain(GSI_TABLES).chain([EXPIRY]) {
        let t = tx.open_table(def).map_err(internal)?;
        let s = t.stats().map_err(internal)?;
        tables.push(TableUsage {
            table: redb::TableHandle::name(&def).to_owned(),
            entries: t.len().map_err(internal)?,
            stored_bytes: s.stored_bytes(),
            metadata_bytes: s.metadata_bytes(),
            fragmented_bytes: s.fragmented_bytes(),
            tree_height: s.tree_height(),
        });
    }
    let mut kinds: std::collections::BTreeMap<String, KindUsage> = Default::default();
    let items = tx.open_table(ITEMS).map_err(internal)?;
    for entry in items.range::<&[u8]>(..).map_err(internal)? {
        let (k, v) = entry.map_err(internal)?;
        let key = k.value();
        let kind = key.split(|b| *b == b'#' || *b == 0).next().unwrap_or_default();
        let u = kinds.entry(String::from_utf8_lossy(kind).into_owned()).or_default();
        u.items += 1;
        u.key_bytes += key.len() as u64;
        u.value_bytes += v.value().len() as u64;
        u.dynamo_bytes += crate::item_size(&decode_item(v.value())?) as u64;
    }
    let kinds = kinds.into_iter().map(|(kind, u)| KindUsage { kind, ..u }).collect();
    Ok(StatsReport { file_bytes, tables, kinds })
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn item_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pk.len() + sk.len() + 1);
    k.extend_from_slice(pk.as_bytes());
    k.push(0);
    k.extend_from_slice(sk.as_bytes());
    k
}

fn index_key(ipk: &str, isk: &str, key: &Key) -> Vec<u8> {
    let mut k = item_key(ipk, isk);
    k.push(0);
    k.extend_from_slice(&item_key(&key.pk, &key.sk));
    k
}

/// The (partition, sort) strings of `item` for `index`, if it appears in that index.
fn index_entry(index: Index, item: &Item) -> Option<(&str, &str)> {
    let (p, s) = index.key_attrs();
    Some((item.get(p)?.as_str()?, item.get(s)?.as_str()?))
}

fn decode_item(bytes: &[u8]) -> Result<Item> {
    crate::codec::decode(bytes).map_err(internal)
}

/// Decodes a stored value whole, or only the attributes a projection keeps.
fn decode_projected(bytes: &[u8], attrs: Option<&[String]>) -> Result<Item> {
    match attrs {
        None => decode_item(bytes),
        Some(a) => crate::codec::decode_some(bytes, |k| crate::projected(a, k)).map_err(internal),
    }
}

/// Reads a live item (or its projection) through any readable table (read or write transaction).
fn load(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &Key,
    now: i64,
    attrs: Option<&[String]>,
) -> Result<Option<Item>> {
    match table.get(item_key(&key.pk, &key.sk).as_slice()).map_err(internal)? {
        None => Ok(None),
        Some(v) => {
            let item = decode_projected(v.value(), attrs)?;
            Ok((!is_expired(&item, now)).then_some(item))
        }
    }
}

fn writer_loop(db: &Database, rx: &mpsc::Receiver<WriteRequest>, committed: &Notify) {
    loop {
        let first = match rx.recv_timeout(PURGE_EVERY) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = purge(db, now_epoch()) {
                    tracing::warn!(error = %e, "purging expired items failed");
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        match commit_batch(db, &batch) {
            Ok(results) => {
                committed.notify_waiters();
                for (req, res) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(res);
                }
            }
            Err(e) => {
                for req in batch {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Deletes items whose TTL has passed (at most `PURGE_BATCH`), with their index entries.
/// Returns how many went. redb runs one write transaction at a time, so this is safe beside the
/// writer thread.
fn purge(db: &Database, now: i64) -> Result<usize> {
    let tx = db.begin_write().map_err(internal)?;
    let mut purged = 0;
    {
        let mut items = tx.open_table(ITEMS).map_err(internal)?;
        let mut gsis = open_gsis(&tx)?;
        let mut expiry = tx.open_table(EXPIRY).map_err(internal)?;
        let horizon = ((now.max(0) as u64) + 1).to_be_bytes();
        let due: Vec<Vec<u8>> = expiry
            .range::<&[u8]>(..horizon.as_slice())
            .map_err(internal)?
            .take(PURGE_BATCH)
            .map(|e| e.map(|(k, _)| k.value().to_vec()).map_err(internal))
            .collect::<Result<_>>()?;
        for entry in due {
            let item_key_bytes = &entry[8..];
            let stored = match items.get(item_key_bytes).map_err(internal)? {
                Some(v) => Some(decode_item(v.value())?),
                None => None,
            };
            match stored {
                Some(item) if is_expired(&item, now) => {
                    let key = Key::of(&item).ok_or_else(|| internal("stored item without key"))?;
                    apply(&mut items, &mut gsis, &mut expiry, Change { key, old: Some(item), new: None })?;
                    purged += 1;
                }
                // Rewritten since with another TTL (or none): only this stale entry goes.
                _ => {
                    expiry.remove(entry.as_slice()).map_err(internal)?;
                }
            }
        }
    }
    tx.commit().map_err(internal)?;
    Ok(purged)
}

fn open_gsis(tx: &redb::WriteTransaction) -> Result<[redb::Table<'_, &'static [u8], &'static [u8]>; 4]> {
    Ok([
        tx.open_table(GSI_TABLES[0]).map_err(internal)?,
        tx.open_table(GSI_TABLES[1]).map_err(internal)?,
        tx.open_table(GSI_TABLES[2]).map_err(internal)?,
        tx.open_table(GSI_TABLES[3]).map_err(internal)?,
    ])
}

fn expiry_key(ttl: i64, key: &Key) -> Vec<u8> {
    let mut k = (ttl.max(0) as u64).to_be_bytes().to_vec();
    k.extend_from_slice(&item_key(&key.pk, &key.sk));
    k
}

fn ttl_of(item: Option<&Item>) -> Option<i64> {
    item.and_then(|i| i.get(crate::TTL)).and_then(serde_json::Value::as_i64)
}

/// Applies every request of a batch in one redb transaction. The outer error means nothing was
/// committed; inner results are each request's own outcome.
fn commit_batch(db: &Database, batch: &[WriteRequest]) -> Result<Vec<Result<Option<Item>>>> {
    let tx = db.begin_write().map_err(internal)?;
    let now = now_epoch();
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut items = tx.open_table(ITEMS).map_err(internal)?;
        let mut gsis = open_gsis(&tx)?;
        let mut expiry = tx.open_table(EXPIRY).map_err(internal)?;
        for req in batch {
            let res = plan(&items, &req.ops, req.transaction, now).and_then(|changes| {
                let returned = if req.want_item { changes.first().and_then(|c| c.new.clone()) } else { None };
                for change in changes {
                    apply(&mut items, &mut gsis, &mut expiry, change)?;
                }
                Ok(returned)
            });
            results.push(res);
        }
    }
    tx.commit().map_err(internal)?;
    Ok(results)
}

/// One item's change: what it was (as stored, even if expired) and what it becomes.
struct Change {
    key: Key,
    old: Option<Item>,
    new: Option<Item>,
}

/// Checks every condition and computes every new item before anything is written, so a request
/// applies whole or not at all.
fn plan(
    items: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ops: &[TxOp],
    transaction: bool,
    now: i64,
) -> Result<Vec<Change>> {
    validate_tx(ops)?;
    let mut changes = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let key = op.key().expect("validated");
        let stored = match items.get(item_key(&key.pk, &key.sk).as_slice()).map_err(internal)? {
            Some(v) => Some(decode_item(v.value())?),
            None => None,
        };
        let live = stored.as_ref().filter(|it| !is_expired(it, now));
        let cond = match op {
            TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => cond.as_ref(),
            TxOp::Check { cond, .. } => Some(cond),
        };
        if let Some(c) = cond {
            if !c.holds(live) {
                let op = transaction.then_some(i);
                return Err(StoreError::ConditionFailed { op });
            }
        }
        let new = match op {
            TxOp::Put { item, .. } => Some(item.clone()),
            TxOp::Delete { .. } => None,
            TxOp::Check { .. } => continue,
            TxOp::Update { update, .. } => Some(updated(&key, live, update)?),
        };
        changes.push(Change { key, old: stored, new });
    }
    Ok(changes)
}

fn updated(key: &Key, live: Option<&Item>, update: &Update) -> Result<Item> {
    let mut item = live.cloned().unwrap_or_else(|| {
        let mut fresh = Item::new();
        fresh.insert(crate::PK.into(), key.pk.clone().into());
        fresh.insert(crate::SK.into(), key.sk.clone().into());
        fresh
    });
    if update.actions.iter().any(|a| a.attr() == crate::PK || a.attr() == crate::SK) {
        return Err(StoreError::Invalid("an update cannot change the item's key".into()));
    }
    update.apply(&mut item)?;
    validate_item(&item)?;
    Ok(item)
}

fn apply(
    items: &mut redb::Table<&'static [u8], &'static [u8]>,
    gsis: &mut [redb::Table<&'static [u8], &'static [u8]>; 4],
    expiry: &mut redb::Table<&'static [u8], &'static [u8]>,
    change: Change,
) -> Result<()> {
    // A write that leaves the item as it was (an update setting what is already there) touches
    // no page.
    if change.old.is_some() && change.old == change.new {
        return Ok(());
    }
    let (ttl_before, ttl_after) = (ttl_of(change.old.as_ref()), ttl_of(change.new.as_ref()));
    if ttl_before != ttl_after {
        if let Some(t) = ttl_before {
            expiry.remove(expiry_key(t, &change.key).as_slice()).map_err(internal)?;
        }
        if let Some(t) = ttl_after {
            expiry.insert(expiry_key(t, &change.key).as_slice(), [].as_slice()).map_err(internal)?;
        }
    }
    for (n, index) in Index::SECONDARY.into_iter().enumerate() {
        let before = change.old.as_ref().and_then(|o| index_entry(index, o));
        let after = change.new.as_ref().and_then(|o| index_entry(index, o));
        if before != after {
            if let Some((p, s)) = before {
                gsis[n].remove(index_key(p, s, &change.key).as_slice()).map_err(internal)?;
            }
            if let Some((p, s)) = after {
                gsis[n].insert(index_key(p, s, &change.key).as_slice(), [].as_slice()).map_err(internal)?;
            }
        }
    }
    let k = item_key(&change.key.pk, &change.key.sk);
    match change.new {
        Some(item) => {
            let bytes = crate::codec::encode(&item);
            items.insert(k.as_slice(), bytes.as_slice()).map_err(internal)?;
        }
        None => {
            items.remove(k.as_slice()).map_err(internal)?;
        }
    }
    Ok(())
}

/// The byte range of one partition narrowed by a sort-key condition. Keys inside it may still
/// need `SortKey::matches` (the GSI layout appends the item key after the sort key).
fn partition_range(pk: &str, sk: &SortKey) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let base = |s: &str| item_key(pk, s);
    let plus = |s: &str, b: u8| {
        let mut k = base(s);
        k.push(b);
        k
    };
    let whole_end = {
        let mut k = pk.as_bytes().to_vec();
        k.push(1);
        k
    };
    let lower = match sk {
        SortKey::All | SortKey::AtMost(_) | SortKey::Before(_) => Bound::Included(base("")),
        SortKey::AtLeast(a) | SortKey::Between(a, _) | SortKey::Prefix(a) => Bound::Included(base(a)),
        SortKey::After(a) => Bound::Included(plus(a, 1)),
    };
    let upper = match sk {
        SortKey::All | SortKey::AtLeast(_) | SortKey::After(_) => Bound::Excluded(whole_end),
        SortKey::Between(_, b) | SortKey::AtMost(b) => Bound::Excluded(plus(b, 1)),
        SortKey::Before(b) => Bound::Excluded(base(b)),
        // No UTF-8 string contains the byte 0xFF, so this bounds every key with the prefix.
        SortKey::Prefix(p) => Bound::Excluded(plus(p, 0xFF)),
    };
    (lower, upper)
}

/// Splits a stored index key back into (index sort key, item key).
fn split_index_key(k: &[u8]) -> Option<(&str, Key)> {
    let mut parts = k.split(|b| *b == 0);
    let _ipk = parts.next()?;
    let isk = std::str::from_utf8(parts.next()?).ok()?;
    let pk = std::str::from_utf8(parts.next()?).ok()?;
    let sk = std::str::from_utf8(parts.next()?).ok()?;
    Some((isk, Key::new(pk, sk)))
}

fn run_query(tx: &redb::ReadTransaction, q: &Query, now: i64) -> Result<Page> {
    if q.limit == 0 {
        return Err(StoreError::Invalid("query limit must be positive".into()));
    }
    let items = tx.open_table(ITEMS).map_err(internal)?;
    let (mut lower, mut upper) = partition_range(&q.pk, &q.sk);
    if let Some(c) = &q.cursor {
        let resume = cursor_position(q, c)?;
        if q.forward {
            lower = tighter_lower(lower, Bound::Excluded(resume));
        } else {
            upper = tighter_upper(upper, Bound::Excluded(resume));
        }
    }
    let table = match q.index {
        Index::Primary => None,
        other => Some(tx.open_table(GSI_TABLES[other as usize - 1]).map_err(internal)?),
    };
    let range_of = |t: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>| {
        t.range::<&[u8]>((as_ref_bound(&lower), as_ref_bound(&upper))).map_err(internal)
    };
    let range = range_of(table.as_ref().unwrap_or(&items))?;
    let mut iter: Box<dyn Iterator<Item = _>> = if q.forward { Box::new(range) } else { Box::new(range.rev()) };

    // With a projection, decode what is shown plus what the filter and the cursor read.
    let needed: Option<Vec<String>> = q.attrs.as_ref().map(|attrs| {
        let (ip, is) = q.index.key_attrs();
        let mut n = attrs.clone();
        n.extend([ip, is].into_iter().map(str::to_owned));
        if let Some(f) = &q.filter {
            n.extend(f.attrs().into_iter().map(str::to_owned));
        }
        n
    });
    let decode = |bytes: &[u8]| decode_projected(bytes, needed.as_deref());
    let mut page = Page::default();
    let mut examined = 0;
    // The cursor is the last item examined, kept or not; kept items are moved into the page, so
    // only a filtered-out last item is held here.
    let mut last_dropped: Option<Item> = None;
    for entry in iter.by_ref() {
        let (k, v) = entry.map_err(internal)?;
        let item = match q.index {
            Index::Primary => {
                let sk_start = q.pk.len() + 1;
                let sk = std::str::from_utf8(&k.value()[sk_start..]).map_err(internal)?;
                if !q.sk.matches(sk) {
                    continue;
                }
                decode(v.value())?
            }
            _ => {
                let (isk, key) = split_index_key(k.value()).ok_or_else(|| internal("corrupt index key"))?;
                if !q.sk.matches(isk) {
                    continue;
                }
                match items.get(item_key(&key.pk, &key.sk).as_slice()).map_err(internal)? {
                    Some(v) => decode(v.value())?,
                    None => continue,
                }
            }
        };
        examined += 1;
        if !is_expired(&item, now) && q.filter.as_ref().is_none_or(|f| f.holds(Some(&item))) {
            page.items.push(item);
            last_dropped = None;
        } else {
            last_dropped = Some(item);
        }
        if examined == q.limit {
            break;
        }
    }
    // Offer a cursor only if something is left, so a finished listing ends without an empty page.
    if examined == q.limit && iter.next().is_some() {
        let last = last_dropped.as_ref().or(page.items.last());
        page.cursor = last.and_then(|it| Cursor::for_item(q.index, it));
    }
    if let Some(attrs) = &q.attrs {
        page.items.iter_mut().for_each(|i| crate::project(i, attrs));
    }
    Ok(page)
}

fn as_ref_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    let key = |x: &Bound<Vec<u8>>| match x {
        Bound::Included(v) | Bound::Excluded(v) => Some(v.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (Some(x), Some(y)) if y >= x => b,
        (Some(_), Some(_)) => a,
        (None, _) => b,
        (_, None) => a,
    }
}

fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    let key = |x: &Bound<Vec<u8>>| match x {
        Bound::Included(v) | Bound::Excluded(v) => Some(v.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (Some(x), Some(y)) if y <= x => b,
        (Some(_), Some(_)) => a,
        (None, _) => b,
        (_, None) => a,
    }
}

/// The stored key a cursor stands for. A cursor from another partition or index is refused.
fn cursor_position(q: &Query, c: &Cursor) -> Result<Vec<u8>> {
    let bad = || StoreError::Invalid("cursor does not belong to this query".into());
    let key = Key::new(c.get(crate::PK).ok_or_else(bad)?, c.get(crate::SK).ok_or_else(bad)?);
    match q.index {
        Index::Primary => {
            if key.pk != q.pk {
                return Err(bad());
            }
            Ok(item_key(&key.pk, &key.sk))
        }
        index => {
            let (p, s) = index.key_attrs();
            let (ipk, isk) = (c.get(p).ok_or_else(bad)?, c.get(s).ok_or_else(bad)?);
            if ipk != q.pk {
                return Err(bad());
            }
            Ok(index_key(ipk, isk, &key))
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        validate_key(key)?;
        self.read_now(|tx| {
            let items = tx.open_table(ITEMS).map_err(internal)?;
            load(&items, key, now_epoch(), None)
        })
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<()> {
        validate_item(&item)?;
        self.write(vec![TxOp::Put { item, cond }], false, false).await.map(|_| ())
    }

    async fn delete(&self, key: &Key, cond: Option<Condition>) -> Result<()> {
        validate_key(key)?;
        self.write(vec![TxOp::Delete { key: key.clone(), cond }], false, false).await.map(|_| ())
    }

    async fn update(&self, key: &Key, update: Update, cond: Option<Condition>) -> Result<Item> {
        validate_key(key)?;
        crate::validate_update(&update)?;
        let item = self.write(vec![TxOp::Update { key: key.clone(), update, cond }], true, false).await?;
        item.ok_or_else(|| internal("update returned no item"))
    }

    async fn query(&self, q: Query) -> Result<Page> {
        self.read(move |tx| run_query(tx, &q, now_epoch())).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>> {
        self.load_many(keys, None)
    }

    async fn batch_get_attrs(&self, keys: &[Key], attrs: &[&str]) -> Result<Vec<Item>> {
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        self.load_many(keys, Some(&attrs))
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<()> {
        for k in keys {
            validate_key(k)?;
        }
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<&Key> = keys.iter().filter(|k| seen.insert(*k)).collect();
        // One write request per 100 (the writer's unit), each committed with whatever else waits.
        for chunk in distinct.chunks(crate::table::table().max_transaction_items) {
            let ops = chunk.iter().map(|k| TxOp::Delete { key: (*k).clone(), cond: None }).collect();
            self.write(ops, false, false).await?;
        }
        Ok(())
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<()> {
        validate_tx(&ops)?;
        self.write(ops, false, true).await.map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}
