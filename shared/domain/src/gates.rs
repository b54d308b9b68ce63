//! Eval gates (CONTRACT "Inbound negotiation"): conditions over the facts of an inbound request,
//! and the facts themselves as far as the message's text gives them. Pure: the LLM's answers to
//! `llm_check` questions are passed in.
//!
//! A condition is `{field, op, value}`, `{all: [...]}`, `{any: [...]}` or `{llm_check: "question"}`.
//! Evaluation is three-valued: a fact that is not known (the sender's DR when Ahrefs could not be
//! asked) or a question the LLM could not answer makes the condition *unknown*, and a gate whose
//! condition is unknown escalates: it never passes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// The longest `matches` pattern, and the compiled size a pattern may take.
pub const MAX_PATTERN_CHARS: usize = 500;
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Conditions nest at most this deep, and hold at most this many leaves.
const MAX_DEPTH: usize = 5;
const MAX_LEAVES: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Field {
    #[serde(rename = "intent")]
    Intent,
    #[serde(rename = "senderDR")]
    SenderDr,
    #[serde(rename = "amountMentioned")]
    AmountMentioned,
    #[serde(rename = "mentionsMoney")]
    MentionsMoney,
    #[serde(rename = "hourOfDay")]
    HourOfDay,
    #[serde(rename = "priorRelationshipStatus")]
    PriorRelationshipStatus,
    #[serde(rename = "repliedBefore")]
    RepliedBefore,
    #[serde(rename = "fromFreeMailProvider")]
    FromFreeMailProvider,
    #[serde(rename = "linkCount")]
    LinkCount,
    #[serde(rename = "subject")]
    Subject,
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "fromAddress")]
    FromAddress,
    #[serde(rename = "fromDomain")]
    FromDomain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Bool,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::Intent,
        Field::SenderDr,
        Field::AmountMentioned,
        Field::MentionsMoney,
        Field::HourOfDay,
        Field::PriorRelationshipStatus,
        Field::RepliedBefore,
        Field::FromFreeMailProvider,
        Field::LinkCount,
        Field::Subject,
        Field::Text,
        Field::FromAddress,
        Field::FromDomain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Intent => "intent",
            Field::SenderDr => "senderDR",
            Field::AmountMentioned => "amountMentioned",
            Field::MentionsMoney => "mentionsMoney",
            Field::HourOfDay => "hourOfDay",
            Field::PriorRelationshipStatus => "priorRelationshipStatus",
            Field::RepliedBefore => "repliedBefore",
            Field::FromFreeMailProvider => "fromFreeMailProvider",
            Field::LinkCount => "linkCount",
            Field::Subject => "subject",
            Field::Text => "text",
            Field::FromAddress => "fromAddress",
            Field::FromDomain => "fromDomain",
        }
    }

    fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    fn kind(self) -> Kind {
        match self {
            Field::SenderDr | Field::AmountMentioned | Field::HourOfDay | Field::LinkCount => Kind::Number,
            Field::MentionsMoney | Field::RepliedBefore | Field::FromFreeMailProvider => Kind::Bool,
            _ => Kind::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Contains,
    Matches,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            "contains" => Op::Contains,
            "matches" => Op::Matches,
            _ => return None,
        })
    }
    fn allowed(self, kind: Kind) -> bool {
        match kind {
            Kind::Number => matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::In),
            Kind::Bool => matches!(self, Op::Eq | Op::Ne),
            Kind::Text => matches!(self, Op::Eq | Op::Ne | Op::In | Op::Contains | Op::Matches),
        }
    }
}

/// A checked condition.
#[derive(Clone, Debug)]
pub enum When {
    Compare { field: Field, op: Op, value: Value, regex: Option<regex::Regex> },
    All(Vec<When>),
    Any(Vec<When>),
    LlmCheck(String),
}

/// Why a condition was refused: where (a JSON pointer under `when`) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct GateError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> GateError {
    GateError { path: path.to_owned(), message: message.into() }
}

/// Checks a `when` object and compiles its patterns.
pub fn parse_when(v: &Value) -> Result<When, GateError> {
    let mut leaves = 0;
    let w = parse_at(v, "when", 0, &mut leaves)?;
    Ok(w)
}

fn parse_at(v: &Value, path: &str, depth: usize, leaves: &mut usize) -> Result<When, GateError> {
    let Some(o) = v.as_object() else { return Err(err(path, "must be an object")) };
    if depth > MAX_DEPTH {
        return Err(err(path, format!("conditions nest at most {MAX_DEPTH} deep")));
    }
    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
    let mut list = |k: &str, items: &Value| -> Result<Vec<When>, GateError> {
        let Some(a) = items.as_array().filter(|a| !a.is_empty()) else {
            return Err(err(&format!("{path}.{k}"), "must be a non-empty array of conditions"));
        };
        a.iter().enumerate().map(|(i, c)| parse_at(c, &format!("{path}.{k}[{i}]"), depth + 1, leaves)).collect()
    };
    match keys.as_slice() {
        ["all"] => Ok(When::All(list("all", &o["all"])?)),
        ["any"] => Ok(When::Any(list("any", &o["any"])?)),
        ["llm_check"] => {
            *leaves += 1;
            let q = o["llm_check"].as_str().map(str::trim).filter(|q| !q.is_empty() && q.len() <= 1000);
            let q = q.ok_or_else(|| {
                err(&format!("{path}.llm_check"), "must be a yes/no question of 1 to 1000 characters")
            })?;
            Ok(When::LlmCheck(q.to_owned()))
        }
        _ if o.contains_key("field") => {
            *leaves += 1;
            if *leaves > MAX_LEAVES {
                return Err(err(path, format!("at most {MAX_LEAVES} conditions")));
            }
            for k in &keys {
                if !matches!(*k, "field" | "op" | "value") {
                    return Err(err(&format!("{path}.{k}"), "is not a condition key (field, op, value)"));
                }
            }
            let names = Field::ALL.map(Field::name).join(", ");
            let field = o["field"]
                .as_str()
                .and_then(Field::parse)
                .ok_or_else(|| err(&format!("{path}.field"), format!("must be one of {names}")))?;
            let op = o.get("op").and_then(Value::as_str).and_then(Op::parse).ok_or_else(|| {
                err(&format!("{path}.op"), "must be one of eq, ne, lt, lte, gt, gte, in, contains, matches")
            })?;
            if !op.allowed(field.kind()) {
                return Err(err(
                    &format!("{path}.op"),
                    format!("{op:?} does not apply to {}", field.name()).to_lowercase(),
                ));
            }
            let value = o.get("value").cloned().ok_or_else(|| err(&format!("{path}.value"), "is required"))?;
            let vpath = format!("{path}.value");
            let regex = check_value(field, op, &value, &vpath)?;
            Ok(When::Compare { field, op, value, regex })
        }
        _ => Err(err(path, "must be {field, op, value}, {all: [...]}, {any: [...]} or {llm_check: \"...\"}")),
    }
}

fn check_value(field: Field, op: Op, value: &Value, path: &str) -> Result<Option<regex::Regex>, GateError> {
    let scalar_ok = |v: &Value| match field.kind() {
        Kind::Number => v.is_number(),
        Kind::Bool => v.is_boolean(),
        Kind::Text => v.is_string(),
    };
    let kind_name = match field.kind() {
        Kind::Number => "a number",
        Kind::Bool => "true or false",
        Kind::Text => "a string",
    };
    match op {
        Op::In => {
            let a = value.as_array().filter(|a| !a.is_empty() && a.len() <= 100);
            let a = a.ok_or_else(|| err(path, "must be an array of 1 to 100 values"))?;
            if !a.iter().all(scalar_ok) {
                return Err(err(path, format!("each value must be {kind_name}")));
            }
            Ok(None)
        }
        Op::Matches => {
            let p = value.as_str().ok_or_else(|| err(path, "must be a pattern (string)"))?;
            if p.chars().count() > MAX_PATTERN_CHARS {
                return Err(err(path, format!("a pattern has at most {MAX_PATTERN_CHARS} characters")));
            }
            let re = regex::RegexBuilder::new(p)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    err(path, format!("is not a valid pattern: {}", e.to_string().lines().last().unwrap_or("")))
                })?;
            Ok(Some(re))
        }
        _ if scalar_ok(value) => Ok(None),
        _ => Err(err(path, format!("must be {kind_name}"))),
    }
}

/// What is known of an inbound request when the gates run. `None` where a fact is not known.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub intent: String,
    /// The sender's site's domain rating; `None` when it could not be found out.
    #[serde(rename = "senderDR")]
    pub sender_dr: Option<f64>,
    /// The largest amount of money mentioned, in USD; `None` when none is mentioned (comparisons
    /// with it are then false, not unknown).
    pub amount_mentioned: Option<f64>,
    pub mentions_money: bool,
    /// 0 to 23, in the workspace's time zone.
    pub hour_of_day: u32,
    /// The workspace's relationship with the sender's site before this message, or `NONE`.
    pub prior_relationship_status: String,
    /// Whether the workspace ever replied to (sent to) this partner.
    pub replied_before: bool,
    pub from_free_mail_provider: bool,
    pub link_count: u32,
    pub subject: String,
    pub text: String,
    pub from_address: String,
    pub from_domain: String,
}

/// Three-valued truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    /// Not known, and why.
    Unknown(String),
}

impl Facts {
    fn get(&self, f: Field) -> Result<Option<Value>, String> {
        use serde_json::json;
        Ok(match f {
            Field::Intent => Some(json!(self.intent)),
            Field::SenderDr => match self.sender_dr {
                Some(d) => Some(json!(d)),
                None => return Err("the sender's domain rating is not known".into()),
            },
            Field::AmountMentioned => self.amount_mentioned.map(|a| json!(a)),
            Field::MentionsMoney => Some(json!(self.mentions_money)),
            Field::HourOfDay => Some(json!(self.hour_of_day)),
            Field::PriorRelationshipStatus => Some(json!(self.prior_relationship_status)),
            Field::RepliedBefore => Some(json!(self.replied_before)),
            Field::FromFreeMailProvider => Some(json!(self.from_free_mail_provider)),
            Field::LinkCount => Some(json!(self.link_count)),
            Field::Subject => Some(json!(self.subject)),
            Field::Text => Some(json!(self.text)),
            Field::FromAddress => Some(json!(self.from_address)),
            Field::FromDomain => Some(json!(self.from_domain)),
        })
    }
}

/// The `llm_check` questions of a condition, in order.
pub fn questions(w: &When) -> Vec<String> {
    match w {
        When::LlmCheck(q) => vec![q.clone()],
        When::All(ws) | When::Any(ws) => ws.iter().flat_map(questions).collect(),
        When::Compare { .. } => vec![],
    }
}

/// Evaluates a condition. `answers` holds the LLM's yes/no for each question, `None` where it
/// could not answer.
pub fn eval(w: &When, facts: &Facts, answers: &HashMap<String, Option<bool>>) -> Truth {
    match w {
        When::LlmCheck(q) => match answers.get(q) {
            Some(Some(true)) => Truth::True,
            Some(Some(false)) => Truth::False,
            _ => Truth::Unknown(format!("the LLM could not answer \"{q}\"")),
        },
        When::All(ws) => {
            let mut unknown = None;
            for c in ws {
                match eval(c, facts, answers) {
                    Truth::False => return Truth::False,
                    Truth::Unknown(why) => unknown = unknown.or(Some(why)),
                    Truth::True => {}
                }
            }
            unknown.map_or(Truth::True, Truth::Unknown)
        }
        When::Any(ws) => {
            let mut unknown = None;
            for c in ws {
                match eval(c, facts, answers) {
                    Truth::True => return Truth::True,
                    Truth::Unknown(why) => unknown = unknown.or(Some(why)),
                    Truth::False => {}
                }
            }
            unknown.map_or(Truth::False, Truth::Unknown)
        }
        When::Compare { field, op, value, regex } => match facts.get(*field) {
            Err(why) => Truth::Unknown(why),
            Ok(None) => Truth::False,
            Ok(Some(actual)) => {
                if compare(&actual, *op, value, regex.as_ref()) {
                    Truth::True
                } else {
                    Truth::False
                }
            }
        },
    }
}

fn compare(actual: &Value, op: Op, want: &Value, regex: Option<&regex::Regex>) -> bool {
    let num = |v: &Value| v.as_f64();
    let same = |a: &Value, b: &Value| match (num(a), num(b)) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => a == b,
        },
    };
    match op {
        Op::Eq => same(actual, want),
        Op::Ne => !same(actual, want),
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => match (num(actual), num(want)) {
            (Some(a), Some(w)) => match op {
                Op::Lt => a < w,
                Op::Lte => a <= w,
                Op::Gt => a > w,
                _ => a >= w,
            },
            _ => false,
        },
        Op::In => want.as_array().is_some_and(|a| a.iter().any(|w| same(actual, w))),
        Op::Contains => match (actual.as_str(), want.as_str()) {
            (Some(a), Some(w)) => a.to_lowercase().contains(&w.to_lowercase()),
            _ => false,
        },
        Op::Matches => match (actual.as_str(), regex) {
            (Some(a), Some(re)) => re.is_match(a),
            _ => false,
        },
    }
}

/// Free-mail providers: a sender there is a person, not the site they write for.
pub const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "mail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "tutanota.com",
    "fastmail.com",
    "hey.com",
    "inbox.com",
    "rediffmail.com",
];

pub fn is_free_mail(domain: &str) -> bool {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    FREE_MAIL.contains(&d.as_str())
}

/// Rough USD rates for amounts given in euros and pounds (documented; gates compare thresholds,
/// not invoices).
const EUR_USD: f64 = 1.08;
const GBP_USD: f64 = 1.27;

fn number(s: &str) -> Option<f64> {
    s.replace(',', "").parse::<f64>().ok()
}

fn money_regexes() -> &'static [(regex::Regex, f64, bool)] {
    static RES: std::sync::OnceLock<Vec<(regex::Regex, f64, bool)>> = std::sync::OnceLock::new();
    RES.get_or_init(|| {
        let n = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*(k\b)?";
        // (pattern, rate to USD, the amount is after the currency)
        let specs: [(&str, f64, bool); 6] = [
            (r"(?:us\$|\$|usd\s*)", 1.0, true),
            (r"(?:€|eur\s*)", EUR_USD, true),
            (r"(?:£|gbp\s*)", GBP_USD, true),
            (r"\s*(?:usd|us\s?dollars?|dollars?|bucks)\b", 1.0, false),
            (r"\s*(?:eur|euros?)\b", EUR_USD, false),
            (r"\s*(?:gbp|pounds?)\b", GBP_USD, false),
        ];
        specs
            .iter()
            .map(|(cur, rate, before)| {
                let p = if *before { format!("(?i){cur}{n}") } else { format!("(?i){n}{cur}") };
                (regex::Regex::new(&p).expect("money pattern"), *rate, true)
            })
            .collect()
    })
}

/// Every amount of money the text mentions, in USD ("$30", "300 USD", "USD 1,200", "€50",
/// "2k dollars").
pub fn amounts(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for (re, rate, _) in money_regexes() {
        for c in re.captures_iter(text) {
            let Some(whole) = c.get(1).and_then(|m| number(m.as_str())) else { continue };
            let cents = c.get(2).and_then(|m| number(&format!("0.{}", m.as_str()))).unwrap_or(0.0);
            let k = if c.get(3).is_some() { 1000.0 } else { 1.0 };
            out.push(((whole + cents) * k * rate * 100.0).round() / 100.0);
        }
    }
    out
}

/// Whether the text talks about money at all (an amount, or words such as price, fee, budget).
pub fn mentions_money(text: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?i)\b(price|pricing|fee|fees|budget|rate card|rates|paid|payment|pay|cost|costs|invoice|sponsored|compensation)\b")
            .expect("money words")
    });
    !amounts(text).is_empty() || re.is_match(text)
}

/// Links in the text: `http(s)://` URLs and bare `www.` hosts.
pub fn link_count(text: &str) -> u32 {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re =
        RE.get_or_init(|| regex::Regex::new(r"(?i)\bhttps?://[^\s<>]+|\bwww\.[a-z0-9-]+\.[^\s<>]+").expect("links"));
    re.find_iter(text).count() as u32
}

/// The sites a text names: hosts of its URLs, then bare domain names (`example.com`), in order,
/// lowercase, without a leading `www.`.
pub fn named_sites(text: &str) -> Vec<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?i)(?:https?://)?(?:www\.)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})\b")
            .expect("sites")
    });
    let mut out: Vec<String> = Vec::new();
    for c in re.captures_iter(text) {
        let m = c.get(0).map(|m| m.as_str()).unwrap_or("");
        let host = c.get(1).map(|m| m.as_str().to_ascii_lowercase()).unwrap_or_default();
        // An email address's domain is not a site the text names.
        let start = c.get(0).map(|m| m.start()).unwrap_or(0);
        if start > 0 && text[..start].ends_with('@') {
            continue;
        }
        let looks_like_file = host.ends_with(".png") || host.ends_with(".jpg") || host.ends_with(".pdf");
        if !looks_like_file && !m.is_empty() && !out.contains(&host) {
            out.push(host);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Facts {
        Facts { intent: "guest_post_pitch".into(), sender_dr: Some(26.0), hour_of_day: 10, ..Facts::default() }
    }

    #[test]
    fn amounts_in_usd() {
        assert_eq!(amounts("we charge $30 per post"), vec![30.0]);
        assert_eq!(amounts("our fee is 300 USD"), vec![300.0]);
        assert_eq!(amounts("USD 1,200 for two"), vec![1200.0]);
        assert_eq!(amounts("2k dollars"), vec![2000.0]);
        assert_eq!(amounts("€50"), vec![54.0]);
        assert_eq!(amounts("$49.99 only"), vec![49.99]);
        assert!(amounts("I have 3 sites and 2 blogs").is_empty());
        assert!(mentions_money("what is your budget?"));
        assert!(!mentions_money("I write about gardening"));
    }

    #[test]
    fn thresholds_and_unknowns() {
        let none = HashMap::new();
        let gate = parse_when(&json!({ "field": "amountMentioned", "op": "gte", "value": 100 })).unwrap();
        let mut f = facts();
        assert_eq!(eval(&gate, &f, &none), Truth::False, "no amount: does not hold");
        f.amount_mentioned = Some(30.0);
        assert_eq!(eval(&gate, &f, &none), Truth::False);
        f.amount_mentioned = Some(300.0);
        assert_eq!(eval(&gate, &f, &none), Truth::True);
        let dr = parse_when(&json!({ "field": "senderDR", "op": "lt", "value": 25 })).unwrap();
        f.sender_dr = Some(24.0);
        assert_eq!(eval(&dr, &f, &none), Truth::True);
        f.sender_dr = Some(26.0);
        assert_eq!(eval(&dr, &f, &none), Truth::False);
        f.sender_dr = None;
        assert!(matches!(eval(&dr, &f, &none), Truth::Unknown(_)));
        // all/any with unknowns: a false part decides `all`, a true part decides `any`.
        let all = parse_when(&json!({ "all": [{ "field": "senderDR", "op": "lt", "value": 25 },
                                             { "field": "intent", "op": "eq", "value": "spam" }] }))
        .unwrap();
        assert_eq!(eval(&all, &f, &none), Truth::False);
        let any = parse_when(&json!({ "any": [{ "field": "senderDR", "op": "lt", "value": 25 },
                                             { "field": "intent", "op": "in", "value": ["guest_post_pitch"] }] }))
        .unwrap();
        assert_eq!(eval(&any, &f, &none), Truth::True);
    }

    #[test]
    fn llm_checks_take_the_answers() {
        let w = parse_when(&json!({ "llm_check": "Does the sender ask for payment?" })).unwrap();
        assert_eq!(questions(&w), vec!["Does the sender ask for payment?".to_owned()]);
        let mut a = HashMap::new();
        assert!(matches!(eval(&w, &facts(), &a), Truth::Unknown(_)));
        a.insert("Does the sender ask for payment?".to_owned(), Some(true));
        assert_eq!(eval(&w, &facts(), &a), Truth::True);
        a.insert("Does the sender ask for payment?".to_owned(), None);
        assert!(matches!(eval(&w, &facts(), &a), Truth::Unknown(_)));
    }

    #[test]
    fn bad_conditions_are_refused_with_where() {
        let e = parse_when(&json!({ "field": "senderDr", "op": "lt", "value": 25 })).unwrap_err();
        assert_eq!(e.path, "when.field");
        let e = parse_when(&json!({ "field": "senderDR", "op": "contains", "value": 25 })).unwrap_err();
        assert_eq!(e.path, "when.op");
        let e = parse_when(&json!({ "field": "senderDR", "op": "lt", "value": "25" })).unwrap_err();
        assert_eq!(e.path, "when.value");
        let e = parse_when(&json!({ "all": [] })).unwrap_err();
        assert_eq!(e.path, "when.all");
        let e = parse_when(&json!({ "any": [{ "field": "text", "op": "matches", "value": "(" }] })).unwrap_err();
        assert_eq!(e.path, "when.any[0].value");
        let huge = "a{1000}{1000}{1000}";
        assert!(parse_when(&json!({ "field": "text", "op": "matches", "value": huge })).is_err(), "size limit");
        let ok = parse_when(&json!({ "field": "text", "op": "matches", "value": "(?i)casino|viagra" })).unwrap();
        let mut f = facts();
        f.text = "Best CASINO links".into();
        assert_eq!(eval(&ok, &f, &HashMap::new()), Truth::True);
    }

    #[test]
    fn sites_links_and_free_mail() {
        assert!(is_free_mail("Gmail.com") && !is_free_mail("gardening-blog.com"));
        assert_eq!(link_count("see https://a.com/x and www.b.org/y, mail me@c.com"), 2);
        assert_eq!(
            named_sites("I write for https://www.garden-tips.net/about — contact me at jo@gmail.com or see foo.io"),
            vec!["garden-tips.net".to_owned(), "foo.io".to_owned()]
        );
    }
}
