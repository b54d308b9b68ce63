//! Lists that read several index partitions at once (account shards, one partition per status)
//! and merge them into one ordered page, with one cursor that remembers where each partition
//! stopped. Each partition costs one Query per page.

use crate::error::{ApiError, ApiResult};
use crate::App;
use linkcrm_storage::{Cursor, Item, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
enum Pos {
    #[serde(rename = "s")]
    Start,
    #[serde(rename = "a")]
    After(Cursor),
    #[serde(rename = "d")]
    Done,
}

/// One merged page.
pub struct Merged {
    pub items: Vec<Item>,
    /// Opaque, signed; `None` when every partition is exhausted.
    pub next: Option<String>,
}

/// Reads up to `limit` items across `queries` (same index, same sort-key order), merged by the
/// index's sort key (`forward` ascending). `scope` binds the cursor to the caller and the list.
pub async fn merged_page(
    app: &App,
    scope: &str,
    queries: Vec<Query>,
    limit: usize,
    cursor: Option<&str>,
) -> ApiResult<Merged> {
    let mut positions = match cursor {
        None => vec![Pos::Start; queries.len()],
        Some(raw) => {
            let text = app.open_token(scope, raw)?;
            let p: Vec<Pos> = serde_json::from_str(&text).map_err(|_| bad_cursor())?;
            if p.len() != queries.len() {
                return Err(bad_cursor());
            }
            p
        }
    };
    let Some(first) = queries.first() else { return Ok(Merged { items: vec![], next: None }) };
    let (index, forward) = (first.index, first.forward);
    let sort_attr = index.key_attrs().1;

    // Each live partition reads one page from where it stopped.
    let mut pages = Vec::with_capacity(queries.len());
    let reads = queries.into_iter().zip(positions.iter()).map(|(q, pos)| {
        let store = app.store.clone();
        let pos = pos.clone();
        async move {
            match pos {
                Pos::Done => Ok(None),
                Pos::Start => store.query(q.limit(limit)).await.map(Some),
                Pos::After(c) => store.query(q.limit(limit).after(Some(c))).await.map(Some),
            }
        }
    });
    for page in futures::future::join_all(reads).await {
        pages.push(page?);
    }

    // Merge: repeatedly take the head that comes first in the requested order (positions
    // first; the items are moved out once the cursors are known).
    let mut heads = vec![0usize; pages.len()];
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(limit);
    fn key<'a>(it: &'a Item, attr: &str) -> &'a str {
        it.get(attr).and_then(Value::as_str).unwrap_or_default()
    }
    while order.len() < limit {
        let mut best: Option<(usize, &str)> = None;
        for (i, page) in pages.iter().enumerate() {
            let Some(p) = page else { continue };
            if let Some(it) = p.items.get(heads[i]) {
                let k = key(it, sort_attr);
                let better = match best {
                    None => true,
                    Some((_, b)) => (forward && k < b) || (!forward && k > b),
                };
                if better {
                    best = Some((i, k));
                }
            }
        }
        let Some((i, _)) = best else { break };
        order.push((i, heads[i]));
        heads[i] += 1;
    }

    // Where each partition stands now.
    for (i, page) in pages.iter().enumerate() {
        let Some(p) = page else { continue };
        positions[i] = if heads[i] < p.items.len() {
            match heads[i] {
                0 => positions[i].clone(),
                n => Pos::After(Cursor::for_item(index, &p.items[n - 1]).ok_or_else(ApiError::internal)?),
            }
        } else {
            match &p.cursor {
                Some(c) => Pos::After(c.clone()),
                None => Pos::Done,
            }
        };
    }
    let items =
        order.into_iter().map(|(i, n)| std::mem::take(&mut pages[i].as_mut().expect("live").items[n])).collect();
    let next = if positions.iter().all(|p| *p == Pos::Done) {
        None
    } else {
        Some(app.seal_token(scope, &serde_json::to_string(&positions).expect("serialises")))
    };
    Ok(Merged { items, next })
}

fn bad_cursor() -> ApiError {
    ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this list returned")
}
