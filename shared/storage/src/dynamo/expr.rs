//! Rendering of the port's conditions, updates and sort-key ranges as DynamoDB expressions.
//!
//! Every attribute name and value goes through a placeholder (`#nN`, `:vN`), so reserved words
//! and odd characters in attribute names never matter.

use super::convert::{key_item, to_av, AttrMap};
use crate::model::compare_values;
use crate::{
    is_expired, validate_item, Action, Condition, Item, Key, Result, SortKey, StoreError, Update, PK, TTL, VERSION,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Placeholders of one request's expressions.
pub(super) struct Expr {
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: AttrMap,
    now: i64,
    now_placeholder: Option<String>,
    number_type: Option<String>,
    /// Rendering a FilterExpression: the item exists by definition, and DynamoDB refuses key
    /// attributes in filters, so liveness is only the TTL test.
    filter: bool,
}

impl Expr {
    pub fn new(now: i64) -> Self {
        Expr {
            names: HashMap::new(),
            by_attr: HashMap::new(),
            values: HashMap::new(),
            now,
            now_placeholder: None,
            number_type: None,
            filter: false,
        }
    }

    pub fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_attr.get(attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), attr.to_owned());
        self.by_attr.insert(attr.to_owned(), p.clone());
        p
    }

    pub fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    pub fn json(&mut self, v: &Value) -> Result<String> {
        Ok(self.value(to_av(v)?))
    }

    pub fn string(&mut self, s: &str) -> String {
        self.value(AttributeValue::S(s.to_owned()))
    }

    fn number(&mut self, n: i64) -> String {
        self.value(AttributeValue::N(n.to_string()))
    }

    fn now(&mut self) -> String {
        if let Some(p) = &self.now_placeholder {
            return p.clone();
        }
        let p = self.number(self.now);
        self.now_placeholder = Some(p.clone());
        p
    }

    /// `attribute_type(attr, N)`. Ordering tests on numbers are guarded by it: DynamoDB's own
    /// comparison is false across types anyway, moto's raises an error instead.
    fn is_number(&mut self, name: &str) -> String {
        let t = match &self.number_type {
            Some(p) => p.clone(),
            None => {
                let p = self.string("N");
                self.number_type = Some(p.clone());
                p
            }
        };
        format!("attribute_type({name}, {t})")
    }

    /// The attribute maps for the request; `None` when empty, as DynamoDB rejects empty maps.
    pub fn finish(self) -> (Option<HashMap<String, String>>, Option<AttrMap>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }

    /// As `is_expired` decides: only a number TTL can expire an item.
    fn unexpired(&mut self) -> String {
        let t = self.name(TTL);
        let now = self.now();
        let number = self.is_number(&t);
        format!("(attribute_not_exists({t}) OR (NOT {number}) OR {t} > {now})")
    }

    /// The item exists and its TTL has not passed.
    pub fn live(&mut self) -> String {
        let unexpired = self.unexpired();
        if self.filter {
            return unexpired;
        }
        let pk = self.name(PK);
        format!("(attribute_exists({pk}) AND {unexpired})")
    }

    /// The item is still stored but its TTL has passed: it reads as absent, yet an UpdateItem
    /// would keep its stale attributes.
    pub fn gone(&mut self) -> String {
        let pk = self.name(PK);
        let t = self.name(TTL);
        let now = self.now();
        let number = self.is_number(&t);
        format!("(attribute_exists({pk}) AND {number} AND {t} <= {now})")
    }

    /// Renders a condition with `Condition::holds` semantics, an expired item counting as absent.
    pub fn condition(&mut self, c: &Condition) -> Result<String> {
        Ok(match c {
            Condition::Exists => self.live(),
            Condition::NotExists => format!("(NOT {})", self.live()),
            // NULL has no equality in expressions; its type says it all.
            Condition::Equals(a, Value::Null) => {
                let live = self.live();
                let (n, t) = (self.name(a), self.string("NULL"));
                format!("({live} AND attribute_type({n}, {t}))")
            }
            Condition::Equals(a, v) => {
                let live = self.live();
                let (n, v) = (self.name(a), self.json(v)?);
                format!("({live} AND {n} = {v})")
            }
            Condition::AttrAbsent(a) => {
                let live = self.live();
                let n = self.name(a);
                format!("((NOT {live}) OR attribute_not_exists({n}))")
            }
            Condition::AttrPresent(a) => {
                let live = self.live();
                let n = self.name(a);
                format!("({live} AND attribute_exists({n}))")
            }
            Condition::AtLeast(a, x) => {
                let live = self.live();
                let (n, x) = (self.name(a), self.number(*x));
                let number = self.is_number(&n);
                format!("({live} AND {number} AND {n} >= {x})")
            }
            Condition::Below(a, x) => {
                let live = self.live();
                let (n, x) = (self.name(a), self.number(*x));
                let number = self.is_number(&n);
                format!("((NOT {live}) OR attribute_not_exists({n}) OR ({number} AND {n} < {x}))")
            }
            Condition::VersionEquals(x) => {
                let live = self.live();
                let (n, x) = (self.name(VERSION), self.number(*x));
                format!("({live} AND {n} = {x})")
            }
            // DynamoDB has no literal true/false: use a tautology / contradiction.
            Condition::And(cs) if cs.is_empty() => {
                let live = self.live();
                format!("({live} OR (NOT {live}))")
            }
            Condition::Or(cs) if cs.is_empty() => {
                let live = self.live();
                format!("({live} AND (NOT {live}))")
            }
            Condition::And(cs) => self.join(cs, " AND ")?,
            Condition::Or(cs) => self.join(cs, " OR ")?,
        })
    }

    fn join(&mut self, cs: &[Condition], op: &str) -> Result<String> {
        // Every part renders parenthesised already, and DynamoDB refuses redundant parentheses:
        // a lone part stands as it is.
        if let [only] = cs {
            return self.condition(only);
        }
        let parts = cs.iter().map(|c| self.condition(c)).collect::<Result<Vec<_>>>()?;
        Ok(format!("({})", parts.join(op)))
    }

    pub fn filter(&mut self, c: &Condition) -> Result<String> {
        self.filter = true;
        let rendered = self.condition(c);
        self.filter = false;
        rendered
    }

    /// KeyConditionExpression; `sk` must be normalised (see [`normalize_sort_key`]).
    pub fn key_condition(&mut self, pk_attr: &str, sk_attr: &str, pk: &str, sk: &SortKey) -> String {
        let p = self.name(pk_attr);
        let pv = self.string(pk);
        if *sk == SortKey::All {
            return format!("{p} = {pv}");
        }
        let s = self.name(sk_attr);
        let range = match sk {
            SortKey::All => unreachable!("handled above"),
            SortKey::Prefix(x) => format!("begins_with({s}, {})", self.string(x)),
            SortKey::Between(a, b) => {
                let (a, b) = (self.string(a), self.string(b));
                format!("{s} BETWEEN {a} AND {b}")
            }
            SortKey::AtLeast(x) => format!("{s} >= {}", self.string(x)),
            SortKey::After(x) => format!("{s} > {}", self.string(x)),
            SortKey::AtMost(x) => format!("{s} <= {}", self.string(x)),
            SortKey::Before(x) => format!("{s} < {}", self.string(x)),
        };
        format!("{p} = {pv} AND {range}")
    }
}

/// DynamoDB refuses empty strings in key conditions and inverted BETWEEN bounds; key attributes
/// are never empty, so those ranges reduce to "everything" or "nothing" (`None`).
pub(super) fn normalize_sort_key(sk: &SortKey) -> Option<SortKey> {
    Some(match sk {
        SortKey::Prefix(x) | SortKey::AtLeast(x) | SortKey::After(x) if x.is_empty() => SortKey::All,
        SortKey::AtMost(x) | SortKey::Before(x) if x.is_empty() => return None,
        SortKey::Between(a, b) if b.is_empty() || a > b => return None,
        SortKey::Between(a, b) if a.is_empty() => SortKey::AtMost(b.clone()),
        other => other.clone(),
    })
}

/// Whether a condition reads any of `attrs`.
pub(super) fn mentions(c: &Condition, attrs: &[&str]) -> bool {
    match c {
        Condition::Exists | Condition::NotExists => false,
        Condition::Equals(a, _)
        | Condition::AttrAbsent(a)
        | Condition::AttrPresent(a)
        | Condition::AtLeast(a, _)
        | Condition::Below(a, _) => attrs.contains(&a.as_str()),
        Condition::VersionEquals(_) => attrs.contains(&VERSION),
        Condition::And(cs) | Condition::Or(cs) => cs.iter().any(|c| mentions(c, attrs)),
    }
}

/// Whether an update needs the current item to be planned: `Max` has no expression form,
/// DynamoDB refuses two actions on one attribute, and an update without actions has no
/// UpdateExpression at all.
pub(super) fn needs_snapshot(update: &Update) -> bool {
    update.actions.is_empty() || update.has_max() || !repeated_attrs(update).is_empty()
}

fn repeated_attrs(update: &Update) -> Vec<&str> {
    let mut seen = Vec::new();
    let mut repeated = Vec::new();
    for a in &update.actions {
        if seen.contains(&a.attr()) {
            repeated.push(a.attr());
        } else {
            seen.push(a.attr());
        }
    }
    repeated
}

/// One conditional write, ready to send alone or as a transaction part.
pub(super) struct Planned {
    pub write: Write,
    pub condition: Option<String>,
    pub expr: Expr,
}

pub(super) enum Write {
    /// UpdateItem with this UpdateExpression.
    Update(String),
    /// Replace the whole item (the update of an expired item, or one that creates a bare item).
    Put(Item),
    /// Nothing changes: the live item as read. Alone, no request is needed; in a transaction,
    /// a ConditionCheck keeps the caller's condition and the read values in force.
    Unchanged(Item),
}

/// Plans an update. `snapshot` is the stored item as read (`Some(None)`: absent), or `None` when
/// the update was not read first (only allowed when `!needs_snapshot(update)`).
pub(super) fn plan_update(
    key: &Key,
    update: &Update,
    cond: Option<&Condition>,
    snapshot: Option<&Option<Item>>,
    now: i64,
) -> Result<Planned> {
    let mut expr = Expr::new(now);
    let mut conds = Vec::new();
    if let Some(c) = cond {
        conds.push(expr.condition(c)?);
    }

    let Some(stored) = snapshot else {
        let clauses = clauses(&mut expr, update.actions.iter())?;
        // An expired item must not lend its attributes to the result: fail, re-read, replace.
        conds.push(format!("(NOT {})", expr.gone()));
        let write = Write::Update(clauses.unwrap_or_default());
        return Ok(Planned { write, condition: Some(conds.join(" AND ")), expr });
    };

    let live = stored.as_ref().filter(|i| !is_expired(i, now));
    if stored.is_some() && live.is_none() {
        let mut fresh = key_item(key);
        update.apply(&mut fresh)?;
        check_key_kept(key, &fresh)?;
        validate_item(&fresh)?;
        conds.push(expr.gone());
        return Ok(Planned { write: Write::Put(fresh), condition: Some(conds.join(" AND ")), expr });
    }

    let before = live.cloned().unwrap_or_else(|| key_item(key));
    let mut after = before.clone();
    update.apply(&mut after)?;
    check_key_kept(key, &after)?;
    validate_item(&after)?;

    // Attributes whose outcome was computed here from the read value. A lone Max is guarded by
    // "the decision to replace (or not) still stands", which concurrent Max writers rarely
    // overturn; anything else by "the value is still the one read".
    let repeated = repeated_attrs(update);
    let mut clauses = Clauses::default();
    let simple = update
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::Max(..) | Action::Min(..)) && !repeated.contains(&a.attr()));
    clauses.add_actions(&mut expr, simple)?;
    let mut done = Vec::new();
    for a in &update.actions {
        let attr = a.attr();
        // (value, whether the larger value wins)
        let lone_extreme = match a {
            Action::Max(_, v) if !repeated.contains(&attr) => Some((v, true)),
            Action::Min(_, v) if !repeated.contains(&attr) => Some((v, false)),
            _ if repeated.contains(&attr) && !done.contains(&attr) => None,
            _ => continue,
        };
        done.push(attr);
        let n = expr.name(attr);
        if let Some((v, larger)) = lone_extreme {
            let loses = if larger { Ordering::Less } else { Ordering::Greater };
            let replace = match before.get(attr) {
                None | Some(Value::Null) => true,
                Some(cur) => compare_values(cur, v) == Some(loses),
            };
            let ty = comparable_type(v);
            // DynamoDB refuses placeholders that no expression uses.
            let v = if replace || ty.is_some() { expr.json(v)? } else { String::new() };
            let still = extreme_replaces(&mut expr, &n, &v, ty, larger);
            if replace {
                conds.push(still);
                clauses.set.push(format!("{n} = {v}"));
            } else {
                conds.push(format!("(NOT {still})"));
            }
            continue;
        }
        conds.push(match before.get(attr) {
            None => format!("attribute_not_exists({n})"),
            // NULL has no ordering or equality in expressions; test its type instead.
            Some(Value::Null) => format!("attribute_type({n}, {})", expr.string("NULL")),
            Some(v) => format!("{n} = {}", expr.json(v)?),
        });
        match after.get(attr) {
            Some(v) if before.get(attr) != Some(v) => {
                let v = expr.json(v)?;
                clauses.set.push(format!("{n} = {v}"));
            }
            None if before.contains_key(attr) => clauses.remove.push(n),
            _ => {}
        }
    }

    let write = match clauses.render() {
        Some(c) => {
            conds.push(format!("(NOT {})", expr.gone()));
            Write::Update(c)
        }
        None if live.is_some() => {
            conds.push(expr.live());
            Write::Unchanged(after)
        }
        None => {
            conds.push(format!("attribute_not_exists({})", expr.name(PK)));
            Write::Put(after)
        }
    };
    Ok(Planned { write, condition: Some(conds.join(" AND ")), expr })
}

/// DynamoDB type of a value `Max` can compare (as `compare_values` does: numbers, strings).
fn comparable_type(v: &Value) -> Option<&'static str> {
    match v {
        Value::Number(_) => Some("N"),
        Value::String(_) => Some("S"),
        _ => None,
    }
}

/// Whether `Max(n, v)` (`larger`) or `Min(n, v)` replaces the stored value: it is missing, NULL,
/// or a smaller (larger) value of the same type (`Update::apply`'s rule; values of other types
/// never compare). `v` is only read when there is a type `ty` to compare in.
fn extreme_replaces(expr: &mut Expr, n: &str, v: &str, ty: Option<&str>, larger: bool) -> String {
    let null = expr.string("NULL");
    let op = if larger { "<" } else { ">" };
    let smaller = match ty {
        Some(t) => format!(" OR (attribute_type({n}, {}) AND {n} {op} {v})", expr.string(t)),
        None => String::new(),
    };
    format!("(attribute_not_exists({n}) OR attribute_type({n}, {null}){smaller})")
}

fn check_key_kept(key: &Key, item: &Item) -> Result<()> {
    if Key::of(item).as_ref() != Some(key) {
        return Err(StoreError::Invalid("an update cannot change PK or SK".into()));
    }
    Ok(())
}

fn clauses<'a>(expr: &mut Expr, actions: impl Iterator<Item = &'a Action>) -> Result<Option<String>> {
    let mut c = Clauses::default();
    c.add_actions(expr, actions)?;
    Ok(c.render())
}

#[derive(Default)]
struct Clauses {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
}

impl Clauses {
    fn add_actions<'a>(&mut self, expr: &mut Expr, actions: impl Iterator<Item = &'a Action>) -> Result<()> {
        for a in actions {
            let n = expr.name(a.attr());
            match a {
                Action::Set(_, v) => {
                    let v = expr.json(v)?;
                    self.set.push(format!("{n} = {v}"));
                }
                Action::Remove(_) => self.remove.push(n),
                // ADD treats a missing attribute as 0, like `Update::apply`.
                Action::Add(_, x) => {
                    let x = expr.number(*x);
                    self.add.push(format!("{n} {x}"));
                }
                Action::SetIfAbsent(_, v) => {
                    let v = expr.json(v)?;
                    self.set.push(format!("{n} = if_not_exists({n}, {v})"));
                }
                Action::Max(..) | Action::Min(..) => {
                    return Err(StoreError::Internal("Max and Min need a planned update".into()));
                }
            }
        }
        Ok(())
    }

    fn render(&self) -> Option<String> {
        let mut parts = Vec::new();
        for (keyword, list) in [("SET", &self.set), ("REMOVE", &self.remove), ("ADD", &self.add)] {
            if !list.is_empty() {
                parts.push(format!("{keyword} {}", list.join(", ")));
            }
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}
