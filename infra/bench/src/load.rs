//! `load`: a CRM-sized data set written straight into the embedded store.
//!
//! Every item has the layout the API writes (the same builders: `records::new_account_item`,
//! `records::new_relationship_item`, `records::state_attrs`, `write::event_item`,
//! `ops::workspaces::create_ops`, `platform::create_agency`), and every derived field is folded
//! from the generated events with `RelationshipState::apply` and `AccountContactFacts::apply`, as
//! the write path and replay do. Items go through `Store::transact` (100 parts each) with many
//! transactions in flight, so the store's group commit packs them into large redb transactions.
//!
//! Not written: outbox items (the relay would otherwise publish a million events when the server
//! starts), account-scoped history events (PRICE_UPDATED) and contacts.

use crate::rng::{Rng, Scatter};
use anyhow::Context;
use linkcrm_api::crm::keys;
use linkcrm_api::crm::records::{self, obj, AccountRecord, RelationshipRecord, LATEST_ORG_CONTACTS, ORG_CONTACT};
use linkcrm_api::crm::write::{self, NewEvent};
use linkcrm_domain::derive::{AccountContactFacts, CoolingPolicy, EventFacts, RelationshipState};
use linkcrm_domain::enums::{EventType, PipelineStatus, Priority, Source};
use linkcrm_domain::platform::{Workspace, WorkspaceSettings};
use linkcrm_domain::{time, IdKind};
use linkcrm_storage::embedded::EmbeddedStore;
use linkcrm_storage::{DynStore, Item, TxOp, Update};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// The key the benchmark's agency is created with unless told otherwise.
pub const DEFAULT_KEY: &str = "sk_live_agency_benchmark0000000000000000000000000";

#[derive(clap::Args)]
pub struct Args {
    /// A directory without a store in it yet.
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    accounts: u64,
    #[arg(long, default_value_t = 10)]
    workspaces: u64,
    #[arg(long, default_value_t = 200_000)]
    relationships: u64,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Seeds the data set's shape (ids are time-based and differ per run).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The agency key to create (printed at the end).
    #[arg(long, default_value = DEFAULT_KEY)]
    key: String,
    /// Transactions in flight at once (each at most 100 parts).
    #[arg(long, default_value_t = 1024)]
    in_flight: usize,
}

/// Parts per transaction: the table's limit.
const PARTS: usize = 100;

/// Batches items into transactions and keeps many in flight.
struct Sink {
    store: DynStore,
    parts: Vec<TxOp>,
    in_flight: JoinSet<linkcrm_storage::Result<()>>,
    max_in_flight: usize,
    items: u64,
}

impl Sink {
    async fn put(&mut self, item: Item) -> anyhow::Result<()> {
        self.parts.push(TxOp::put(item));
        self.items += 1;
        if self.parts.len() == PARTS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.parts.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.parts);
        let store = self.store.clone();
        self.in_flight.spawn(async move { store.transact(ops).await });
        while self.in_flight.len() > self.max_in_flight {
            self.in_flight.join_next().await.expect("non-empty")??;
        }
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        while let Some(r) = self.in_flight.join_next().await {
            r??;
        }
        Ok(())
    }
}

const ADJECTIVES: &[&str] = &[
    "green", "urban", "smart", "daily", "modern", "happy", "simple", "global", "local", "bright", "clever", "digital",
    "honest", "little", "open", "quiet", "rapid", "solid", "super", "wild", "fresh", "golden", "lean", "noble",
    "prime", "royal", "silver", "true", "vivid", "wise", "bold", "cosy", "epic", "fair", "grand", "handy", "keen",
    "lucky", "neat", "savvy",
];
const NOUNS: &[&str] = &[
    "garden",
    "kitchen",
    "travel",
    "fitness",
    "money",
    "parent",
    "tech",
    "home",
    "pet",
    "style",
    "coffee",
    "bike",
    "camera",
    "health",
    "beauty",
    "crypto",
    "startup",
    "saas",
    "marketing",
    "seo",
    "design",
    "dev",
    "cloud",
    "data",
    "career",
    "finance",
    "auto",
    "outdoor",
    "yoga",
    "vegan",
    "wine",
    "baking",
    "gaming",
    "music",
    "photo",
    "wedding",
    "interior",
    "craft",
    "boat",
    "golf",
    "fishing",
    "hiking",
    "running",
    "chess",
    "book",
    "film",
    "anime",
    "science",
    "space",
    "energy",
    "solar",
    "legal",
    "realty",
    "insurance",
    "loan",
    "study",
    "language",
    "nomad",
    "remote",
    "ai",
];
const SUFFIXES: &[&str] = &["", "hub", "guide", "blog", "lab", "hq", "daily", "insider", "world", "tips"];
const TLDS: &[&str] = &["com", "net", "org", "io", "co.uk", "de", "blog", "co", "info", "media"];

/// A unique, plausible domain for account number `n` (of a scattered order).
fn domain(n: u64) -> String {
    let (a, rest) = (n % ADJECTIVES.len() as u64, n / ADJECTIVES.len() as u64);
    let (b, rest) = (rest % NOUNS.len() as u64, rest / NOUNS.len() as u64);
    let (c, rest) = (rest % SUFFIXES.len() as u64, rest / SUFFIXES.len() as u64);
    let (t, rest) = (rest % TLDS.len() as u64, rest / TLDS.len() as u64);
    let number = if rest == 0 { String::new() } else { (rest + 1).to_string() };
    format!("{}{}{}{number}.{}", ADJECTIVES[a as usize], NOUNS[b as usize], SUFFIXES[c as usize], TLDS[t as usize])
}

/// How many relationships each account has: skewed (popular partners are worked by many
/// workspaces), at most one per workspace.
fn relationships_per_account(rng: &mut Rng, accounts: u64, workspaces: u64, relationships: u64) -> Vec<u8> {
    let mut counts = vec![0u8; accounts as usize];
    let scatter = Scatter::new(accounts);
    for _ in 0..relationships {
        loop {
            let u = rng.unit();
            let a = scatter.at((u * u * accounts as f64) as u64) as usize;
            if (counts[a] as u64) < workspaces {
                counts[a] += 1;
                break;
            }
        }
    }
    counts
}

/// How many events each relationship has: mostly uniform, a fifth of them on a hot 5%.
fn events_per_relationship(rng: &mut Rng, relationships: u64, events: u64) -> Vec<u32> {
    let mut counts = vec![0u32; relationships as usize];
    let hot = (relationships / 20).max(1);
    let scatter = Scatter::new(relationships);
    for _ in 0..events {
        let r = if rng.chance(0.2) { scatter.at(rng.below(hot)) } else { rng.below(relationships) };
        counts[r as usize] += 1;
    }
    counts
}

const DAY_MS: i64 = 86_400_000;

fn stamp(ms: i64) -> String {
    time::format(chrono::DateTime::from_timestamp_millis(ms).expect("in range"))
}

/// The next event on a relationship, given where it stands: outreach first, then the usual mix
/// of notes, sends and replies, some manual status changes and placed links.
fn event_for(rng: &mut Rng, state: &RelationshipState, domain: &str) -> NewEvent {
    use PipelineStatus::*;
    let roll = rng.unit();
    let r#type = if !state.contacted_by_us && roll < 0.6 {
        EventType::EmailSent
    } else if roll < 0.34 {
        EventType::NoteAdded
    } else if roll < 0.62 {
        EventType::EmailSent
    } else if roll < 0.86 {
        EventType::EmailReceived
    } else if roll < 0.94 {
        EventType::StatusChanged
    } else if roll < 0.97 && state.status == ActivelyEngaged {
        EventType::LinkPlaced
    } else {
        EventType::CallScheduled
    };
    let mut new =
        NewEvent { r#type, contact_id: None, subject: None, content: None, metadata: None, occurred_at: None };
    match r#type {
        EventType::NoteAdded => {
            new.content = Some(format!(
                "Checked {domain}: {} articles a month, accepts {}. Editor prefers a short pitch.",
                3 + rng.below(30),
                rng.pick(&["guest posts", "link insertions", "sponsored posts", "resource-page links"])
            ))
        }
        EventType::EmailSent => {
            new.subject = Some(rng.pick(&["Guest post idea for ", "Quick question about ", "Follow-up: "]).to_string());
            new.subject = new.subject.map(|s| format!("{s}{domain}"));
            new.content = Some(format!(
                "Hi,\n\nI enjoyed your recent piece on {domain} and have an idea that would fit your readers: \
                 a practical guide with original data. Happy to send an outline.\n\nBest,\nAlex"
            ));
            new.metadata = Some(json!({ "mailboxId": "mbx_bench", "threadId": format!("thr_{}", rng.below(1 << 40)) }));
        }
        EventType::EmailReceived => {
            let class = *rng.pick(&["interested", "asks_price", "not_interested", "other", "out_of_office"]);
            new.subject = Some(format!("Re: Guest post idea for {domain}"));
            new.content = Some(match class {
                "out_of_office" => "I am out of the office until Monday with limited access to email.".to_owned(),
                "asks_price" => "Thanks for reaching out. What budget do you have in mind for a sponsored post?".into(),
                _ => "Thanks for the note. Send over the outline and we will take a look this week.".to_owned(),
            });
            new.metadata = Some(json!({ "replyClass": class }));
        }
        EventType::StatusChanged => {
            let to = *rng.pick(&[ApprovedToContact, Queued, ActivelyEngaged, NotInterested, Inactive]);
            new.metadata = Some(json!({ "from": state.status, "to": to, "keyId": "key_bench", "source": "manual" }));
        }
        EventType::LinkPlaced => {
            new.metadata = Some(json!({ "linkUrl": format!("https://{domain}/blog/post-{}", rng.below(10_000)) }));
        }
        _ => new.content = Some("Call booked with the editor.".to_owned()),
    }
    new
}

fn facts_of(new: &NewEvent, occurred_at: &str, ws: &str, event_id: &str) -> EventFacts {
    let meta = |k: &str| new.metadata.as_ref().and_then(|m| m.get(k)).and_then(Value::as_str);
    EventFacts {
        r#type: new.r#type,
        occurred_at: occurred_at.to_owned(),
        workspace_id: ws.to_owned(),
        status_to: meta("to").and_then(PipelineStatus::parse),
        out_of_office: meta("replyClass") == Some("out_of_office"),
        link: linkcrm_domain::links::fact_of(new.r#type, event_id, new.metadata.as_ref()),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.workspaces >= 1 && args.accounts >= 1, "at least one account and one workspace");
    anyhow::ensure!(
        args.relationships <= args.accounts * args.workspaces,
        "at most one relationship per workspace and account"
    );
    anyhow::ensure!(args.events == 0 || args.relationships > 0, "events need relationships");
    let path = crate::store_path(&args.data_dir);
    anyhow::ensure!(!path.exists(), "{} exists: load into a fresh directory", path.display());
    std::fs::create_dir_all(&args.data_dir)?;
    let store: DynStore = Arc::new(EmbeddedStore::open(&path).context("opening the store")?);
    let policy = CoolingPolicy::from_env();
    let mut rng = Rng::new(args.seed);
    let started = Instant::now();

    let (agency, secret) =
        linkcrm_api::platform::create_agency(&store, "Benchmark agency", Some(args.key.clone())).await?;
    let created_ms = chrono::Utc::now().timestamp_millis() - 420 * DAY_MS;
    let mut workspaces = Vec::new();
    for i in 0..args.workspaces {
        let at = stamp(created_ms + i as i64 * 60_000);
        let ws = Workspace {
            id: linkcrm_domain::new_id(IdKind::Workspace),
            agency_id: agency.id.clone(),
            name: format!("Client {}", i + 1),
            primary_domain: Some(format!("client{}.example", i + 1)),
            tags: vec![format!("tier:{}", ["a", "b"][i as usize % 2])],
            active: true,
            settings: WorkspaceSettings::default(),
            created_at: at.clone(),
            updated_at: at,
            last_active_at: None,
            usage: None,
            health: None,
            archived_at: None,
        };
        store.transact(linkcrm_api::ops::workspaces::create_ops(&ws)).await?;
        workspaces.push(ws.id);
    }

    let rel_counts = relationships_per_account(&mut rng, args.accounts, args.workspaces, args.relationships);
    let event_counts = events_per_relationship(&mut rng, args.relationships, args.events);
    let planned = Instant::now();

    let mut rels_out = std::io::BufWriter::new(std::fs::File::create(args.data_dir.join(crate::RELATIONSHIPS_FILE))?);
    let mut events_out = std::io::BufWriter::new(std::fs::File::create(args.data_dir.join(crate::EVENTS_FILE))?);
    std::fs::write(args.data_dir.join(crate::WORKSPACES_FILE), workspaces.join("\n") + "\n")?;

    let mut sink = Sink {
        store: store.clone(),
        parts: Vec::with_capacity(PARTS),
        in_flight: JoinSet::new(),
        max_in_flight: args.in_flight,
        items: 0,
    };
    let end_ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let domain_order = Scatter::new(args.accounts);
    let mut next_rel = 0usize;
    let (mut rel_total, mut event_total) = (0u64, 0u64);
    let mut ws_order: Vec<usize> = (0..workspaces.len()).collect();
    let mut progress = Instant::now();

    for (a, &n_rels) in rel_counts.iter().enumerate() {
        let acct_id = linkcrm_domain::new_id(IdKind::Account);
        let domain = domain(domain_order.at(a as u64));
        let n_rels = n_rels as usize;
        // Which workspaces work this partner: a random subset.
        for i in 0..n_rels {
            let j = i + rng.below((ws_order.len() - i) as u64) as usize;
            ws_order.swap(i, j);
        }
        let acct_created_ms = end_ms - (30 + rng.below(400)) as i64 * DAY_MS - rng.below(DAY_MS as u64) as i64;
        let source = *rng.pick(&[Source::Search, Source::Competitor, Source::Import, Source::Manual, Source::Inbound]);
        let mut facts = AccountContactFacts::default();
        // Only id and domain are read from the account when building a relationship.
        let account_ref = AccountRecord(obj(json!({ "id": acct_id, "domain": domain })));

        for &w in &ws_order[..n_rels] {
            let ws = &workspaces[w];
            let rel_id = linkcrm_domain::new_id(IdKind::Relationship);
            let rel_created_ms = acct_created_ms + rng.below((end_ms - acct_created_ms) as u64 / 2) as i64;
            let rel_created = stamp(rel_created_ms);
            let initial = if rng.chance(0.8) {
                PipelineStatus::Prospecting
            } else {
                *rng.pick(&[PipelineStatus::ApprovedToContact, PipelineStatus::Queued])
            };
            let priority = match rng.below(4) {
                0 => None,
                1 => Some(Priority::Low),
                2 => Some(Priority::Medium),
                _ => Some(Priority::High),
            };
            let notes = rng.chance(0.3).then(|| format!("Found via {} research; strong topical fit.", source.as_str()));
            let blog_post =
                rng.chance(0.2).then(|| format!("https://client{}.example/blog/guide-{}", w + 1, rng.below(500)));
            let mut state = RelationshipState::new(initial, &rel_created);
            let mut rel_item = records::new_relationship_item(
                &rel_id,
                ws,
                &account_ref,
                *rng.pick(&[Source::Search, Source::Competitor, Source::Manual, Source::Import]),
                None,
                priority,
                [notes, blog_post, None],
                &state,
                &rel_created,
            );
            rel_item.insert("initialStatus".into(), json!(initial));
            let rel = RelationshipRecord(rel_item);

            let n_events = event_counts[next_rel] as usize;
            next_rel += 1;
            let mut times: Vec<i64> = (0..n_events)
                .map(|_| rel_created_ms + 1 + rng.below((end_ms - rel_created_ms) as u64) as i64)
                .collect();
            times.sort_unstable();
            for t in times {
                let at = stamp(t);
                let new = event_for(&mut rng, &state, &domain);
                let id = linkcrm_domain::new_id(IdKind::Event);
                let f = facts_of(&new, &at, ws, &id);
                state.apply(&f);
                facts.apply(&f, policy);
                let item = write::event_item(&id, &agency.id, ws, &rel, &new, &at, &at, state.seq);
                if event_total % 10 == 0 {
                    writeln!(events_out, "{id}")?;
                }
                sink.put(item).await?;
                event_total += 1;
            }

            let mut rel_item = rel.0;
            for (k, v) in records::state_attrs(&rel_id, ws, &state) {
                rel_item.insert(k.into(), v);
            }
            rel_item.insert("version".into(), json!(1 + state.seq));
            rel_item.insert("updatedAt".into(), json!(state.last_event_at));
            let guard = keys::workspace_account(ws, &acct_id);
            sink.put(obj(json!({
                "PK": guard.pk, "SK": guard.sk, "entity": "workspaceAccount", "relationshipId": rel_id,
                "status": state.status, "lastContactedByUsAt": state.last_contacted_by_us_at, "archived": false,
            })))
            .await?;
            sink.put(rel_item).await?;
            writeln!(rels_out, "{ws} {rel_id}")?;
            rel_total += 1;
        }

        let mut account = records::new_account_item(&acct_id, &domain, source, &stamp(acct_created_ms));
        if rng.chance(0.7) {
            let u = rng.unit();
            let dr = (u.powf(1.7) * 95.0) as i64 + 1;
            account.insert("domainRating".into(), json!(dr));
            account.insert("organicTraffic".into(), json!((dr * dr * (10 + rng.below(200) as i64)) as u64));
            account.insert("organicKeywords".into(), json!(dr * (5 + rng.below(100) as i64)));
            account.insert("referringDomains".into(), json!(dr * (3 + rng.below(40) as i64)));
            account.insert("backlinks".into(), json!(dr * (40 + rng.below(900) as i64)));
            account.insert("ahrefStatsUpdatedAt".into(), json!(stamp(end_ms - rng.below(60) as i64 * DAY_MS)));
            account.insert("GSI1SK".into(), json!(keys::dr_sort(Some(dr), &acct_id)));
        }
        if rng.chance(0.15) {
            account.insert("priceLinkInsertion".into(), json!(50 + 10 * rng.below(45) as i64));
            account.insert("priceGuestPost".into(), json!(100 + 25 * rng.below(40) as i64));
            account.insert("priceContext".into(), json!("USD, one do-follow link"));
            account.insert("pricesUpdatedAt".into(), json!(stamp(end_ms - rng.below(200) as i64 * DAY_MS)));
        }
        account.insert("name".into(), json!(domain.split('.').next().unwrap_or_default()));
        account.insert("contactAttemptCount".into(), json!(facts.contact_attempt_count));
        account.insert("receivedCount".into(), json!(facts.received_count));
        account.insert("recentSends".into(), json!(facts.recent_sends));
        for (k, v) in [
            ("firstContact", &facts.first_contact),
            ("lastContact", &facts.last_contact),
            ("lastReceivedAt", &facts.last_received_at),
        ] {
            if let Some(v) = v {
                account.insert(k.into(), json!(v));
            }
        }
        for (org, t) in &facts.last_contact_by_org {
            account.insert(format!("{ORG_CONTACT}{org}"), json!(t));
        }
        if !facts.last_contact_by_org.is_empty() {
            account.insert(LATEST_ORG_CONTACTS.into(), json!(facts.latest_org_contacts()));
        }
        let guard = keys::domain_guard(&domain);
        sink.put(obj(json!({ "PK": guard.pk, "SK": guard.sk, "entity": "domainGuard", "accountId": acct_id }))).await?;
        sink.put(account).await?;

        if progress.elapsed().as_secs() >= 10 {
            progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "… {} accounts, {rel_total} relationships, {event_total} events, {} items in {secs:.0} s",
                a + 1,
                sink.items
            );
        }
    }
    sink.parts.push(TxOp::update(keys::counters(), Update::new().add("accountCount", args.accounts as i64)));
    sink.finish().await?;
    rels_out.flush()?;
    events_out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let items = sink.items + 1;
    drop(sink);
    drop(store);

    let size = std::fs::metadata(&path)?.len();
    let meta = json!({
        "agencyId": agency.id,
        "key": secret,
        "workspaces": workspaces,
        "accounts": args.accounts,
        "relationships": rel_total,
        "events": event_total,
        "seed": args.seed,
        "items": items,
        "planSeconds": (planned - started).as_secs_f64(),
        "loadSeconds": secs,
        "itemsPerSecond": items as f64 / secs,
        "storeBytes": size,
    });
    std::fs::write(args.data_dir.join(crate::META_FILE), serde_json::to_string_pretty(&meta)? + "\n")?;
    println!(
        "Loaded {} accounts, {} workspaces, {rel_total} relationships, {event_total} events: {items} items \
         in {secs:.1} s ({:.0} items/s); store file {:.2} GiB",
        args.accounts,
        workspaces.len(),
        items as f64 / secs,
        size as f64 / (1u64 << 30) as f64
    );
    println!("Agency {} key: {secret}", agency.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_unique_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..300_000 {
            let d = domain(n);
            assert_eq!(linkcrm_domain::normalize::normalize_domain(&d).unwrap(), d);
            assert!(seen.insert(d));
        }
    }

    #[test]
    fn counts_add_up_and_respect_one_per_workspace() {
        let mut rng = Rng::new(1);
        let r = relationships_per_account(&mut rng, 1000, 10, 2000);
        assert_eq!(r.iter().map(|&c| c as u64).sum::<u64>(), 2000);
        assert!(r.iter().all(|&c| c <= 10));
        let e = events_per_relationship(&mut rng, 2000, 10_000);
        assert_eq!(e.iter().map(|&c| c as u64).sum::<u64>(), 10_000);
    }
}
