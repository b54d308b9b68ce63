//! The peer's wire conventions: its error bodies (`{"detail": …}`, FastAPI's 422 list) and the
//! request checks pydantic makes (required fields, types, bounds, literals), with pydantic's own
//! `type` codes and messages so a client that reads them keeps working. Unknown fields are
//! ignored, as pydantic does by default.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use linkcrm_core::error::ApiError;
use serde_json::{json, Map, Value};

/// An answer that is not a success, in the peer's shape.
#[derive(Debug)]
pub struct Detail {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
    pub www_authenticate: bool,
}

impl Detail {
    pub fn new(status: StatusCode, detail: impl Into<Value>) -> Detail {
        Detail { status, body: json!({ "detail": detail.into() }), retry_after: None, www_authenticate: false }
    }

    pub fn not_found() -> Detail {
        Detail::new(StatusCode::NOT_FOUND, "Resource not found")
    }

    pub fn not_authenticated() -> Detail {
        Detail { www_authenticate: true, ..Detail::new(StatusCode::UNAUTHORIZED, "Not authenticated") }
    }

    pub fn internal() -> Detail {
        Detail::new(StatusCode::INTERNAL_SERVER_ERROR, "An internal error occurred")
    }

    /// 422 with FastAPI's list of problems.
    pub fn invalid(errors: Vec<Value>) -> Detail {
        Detail::new(StatusCode::UNPROCESSABLE_ENTITY, Value::Array(errors))
    }

    /// 403 as the seed gives it for a policy block, with the reasons.
    pub fn policy(reason: impl Into<String>, reasons: Vec<Value>) -> Detail {
        Detail {
            body: json!({ "detail": "Policy validation failed", "reason": reason.into(), "reasons": reasons }),
            ..Detail::new(StatusCode::FORBIDDEN, "")
        }
    }

    /// One problem as FastAPI states it.
    pub fn problem(loc: Vec<Value>, kind: &str, msg: impl Into<String>, input: Option<&Value>) -> Value {
        let mut p = json!({ "type": kind, "loc": loc, "msg": msg.into() });
        if let Some(i) = input {
            p["input"] = i.clone();
        }
        p
    }
}

impl IntoResponse for Detail {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.www_authenticate {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// How this dialect names a field of ours in its problems: the route's own names first, else
/// the camelCase name in snake_case.
pub type Names = &'static [(&'static str, &'static str)];

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn dialect_name(ours: &str, names: Names) -> String {
    // `leads[0].websiteUrl` → `website_url` with the index kept as its own part of the location.
    names.iter().find(|(o, _)| *o == ours).map(|(_, d)| d.to_string()).unwrap_or_else(|| snake(ours))
}

/// Our problem in the peer's shape. Statuses keep their meaning; a 400 of ours is a validation
/// problem and becomes FastAPI's 422 list, naming the field as this dialect spells it.
pub fn from_api(e: ApiError, names: Names) -> Detail {
    let status = e.status;
    let mut d = match status.as_u16() {
        400 | 422 => {
            let errors: Vec<Value> = if e.errors.is_empty() {
                vec![Detail::problem(vec![json!("body")], e.code, e.message.clone(), None)]
            } else {
                e.errors
                    .iter()
                    .map(|f| {
                        let mut loc = vec![json!("body")];
                        for part in f.field.split('.') {
                            match part.split_once('[') {
                                Some((name, idx)) => {
                                    loc.push(json!(dialect_name(name, names)));
                                    loc.push(json!(idx.trim_end_matches(']').parse::<u64>().unwrap_or(0)));
                                }
                                None => loc.push(json!(dialect_name(part, names))),
                            }
                        }
                        Detail::problem(loc, &f.code, f.message.clone(), None)
                    })
                    .collect()
            };
            Detail::invalid(errors)
        }
        401 => Detail::not_authenticated(),
        404 => Detail::not_found(),
        500..=599 if status != StatusCode::SERVICE_UNAVAILABLE => {
            tracing::error!(code = e.code, "an operation failed inside the backlink-outreach dialect");
            Detail::internal()
        }
        _ => Detail::new(status, e.message.clone()),
    };
    if matches!(status.as_u16(), 402 | 403 | 409 | 429 | 503) {
        d.body["code"] = json!(e.code);
    }
    d.retry_after = e.retry_after;
    d
}

/// What a field must be.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Str { min: usize, max: usize },
    Float { min: f64, max: f64 },
    Int { min: i64, max: i64 },
    Bool,
    StrList { min: usize, max: usize },
    Literal(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub description: &'static str,
}

pub const fn req(name: &'static str, kind: Kind, description: &'static str) -> Field {
    Field { name, kind, required: true, description }
}

pub const fn opt(name: &'static str, kind: Kind, description: &'static str) -> Field {
    Field { name, kind, required: false, description }
}

pub const LINE: Kind = Kind::Str { min: 1, max: 1_000 };
pub const SCORE: Kind = Kind::Float { min: 0.0, max: 1.0 };

fn literal_msg(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("Input should be {} or {last}", rest.join(", ")),
        Some((last, _)) => format!("Input should be {last}"),
        None => "Input should be a literal".into(),
    }
}

/// A number's bounds, as pydantic words them.
fn bounds(x: f64, min: f64, max: f64, loc: Vec<Value>, value: &Value, errors: &mut Vec<Value>) {
    let n = |b: f64| if b.fract() == 0.0 { format!("{}", b as i64) } else { format!("{b}") };
    if x < min {
        errors.push(Detail::problem(
            loc,
            "greater_than_equal",
            format!("Input should be greater than or equal to {}", n(min)),
            Some(value),
        ));
    } else if x > max {
        errors.push(Detail::problem(
            loc,
            "less_than_equal",
            format!("Input should be less than or equal to {}", n(max)),
            Some(value),
        ));
    }
}

/// Checks one value against its field, pushing pydantic's problems at `loc`. `null` for an
/// optional field is accepted (pydantic's `Optional[...] = None`).
fn check(value: &Value, f: &Field, loc: Vec<Value>, errors: &mut Vec<Value>) {
    if value.is_null() && !f.required {
        return;
    }
    match f.kind {
        Kind::Str { min, max } => match value.as_str() {
            None => errors.push(Detail::problem(loc, "string_type", "Input should be a valid string", Some(value))),
            Some(s) if s.chars().count() < min => errors.push(Detail::problem(
                loc,
                "string_too_short",
                format!("String should have at least {min} character{}", if min == 1 { "" } else { "s" }),
                Some(value),
            )),
            Some(s) if s.chars().count() > max => errors.push(Detail::problem(
                loc,
                "string_too_long",
                format!("String should have at most {max} characters"),
                Some(value),
            )),
            Some(_) => {}
        },
        Kind::Float { min, max } => match value.as_f64() {
            None => errors.push(Detail::problem(loc, "float_type", "Input should be a valid number", Some(value))),
            Some(x) => bounds(x, min, max, loc, value, errors),
        },
        Kind::Int { min, max } => match value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok())) {
            None => errors.push(Detail::problem(
                loc,
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                Some(value),
            )),
            Some(x) => bounds(x as f64, min as f64, max as f64, loc, value, errors),
        },
        Kind::Bool => {
            if !value.is_boolean() {
                errors.push(Detail::problem(loc, "bool_type", "Input should be a valid boolean", Some(value)))
            }
        }
        Kind::StrList { min, max } => match value.as_array() {
            None => errors.push(Detail::problem(loc, "list_type", "Input should be a valid list", Some(value))),
            Some(items) if items.len() < min => errors.push(Detail::problem(
                loc,
                "too_short",
                format!(
                    "List should have at least {min} item{} after validation, not {}",
                    if min == 1 { "" } else { "s" },
                    items.len()
                ),
                Some(value),
            )),
            Some(items) if items.len() > max => errors.push(Detail::problem(
                loc,
                "too_long",
                format!("List should have at most {max} items after validation, not {}", items.len()),
                Some(value),
            )),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        let mut l = loc.clone();
                        l.push(json!(i));
                        errors.push(Detail::problem(l, "string_type", "Input should be a valid string", Some(item)));
                    }
                }
            }
        },
        Kind::Literal(values) => {
            if !value.as_str().is_some_and(|s| values.contains(&s)) {
                let mut p = Detail::problem(loc, "literal_error", literal_msg(values), Some(value));
                let expected: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                p["ctx"] = json!({ "expected": expected.join(", ") });
                errors.push(p);
            }
        }
    }
}

/// Checks an object against `fields` (at `loc`, `["body"]` or `["body", 3]`), returning only
/// the fields it names (unknown ones are dropped) or the problems found.
pub fn object(value: &Value, fields: &[Field], loc: &[Value], errors: &mut Vec<Value>) -> Map<String, Value> {
    let Some(obj) = value.as_object() else {
        errors.push(Detail::problem(
            loc.to_vec(),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            Some(value),
        ));
        return Map::new();
    };
    let mut out = Map::new();
    for f in fields {
        let mut l = loc.to_vec();
        l.push(json!(f.name));
        match obj.get(f.name) {
            None if f.required => errors.push(Detail::problem(l, "missing", "Field required", Some(value))),
            None => {}
            Some(v) => {
                check(v, f, l, errors);
                if !v.is_null() {
                    out.insert(f.name.to_owned(), v.clone());
                }
            }
        }
    }
    out
}

/// The JSON body as a value: empty is `null`; not JSON is FastAPI's `json_invalid`.
pub fn body_json(bytes: &[u8]) -> Result<Value, Detail> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Detail::invalid(vec![json!({ "type": "json_invalid", "loc": ["body", e.column()], "msg": "JSON decode error",
                                      "input": {}, "ctx": { "error": e.to_string() } })])
    })
}

/// A body that must be an object (FastAPI answers `missing` at `["body"]` for none).
pub fn body_object(body: &Value, fields: &[Field]) -> Result<Map<String, Value>, Detail> {
    if body.is_null() {
        return Err(Detail::invalid(vec![Detail::problem(vec![json!("body")], "missing", "Field required", None)]));
    }
    let mut errors = Vec::new();
    let out = object(body, fields, &[json!("body")], &mut errors);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Detail::invalid(errors))
    }
}

/// Query parameters checked like a body's fields (values arrive as strings).
pub fn query(pairs: &Map<String, Value>, fields: &[Field]) -> Result<Map<String, Value>, Detail> {
    let mut errors = Vec::new();
    let mut out = Map::new();
    for f in fields {
        let loc = vec![json!("query"), json!(f.name)];
        match pairs.get(f.name) {
            None if f.required => errors.push(Detail::problem(loc, "missing", "Field required", None)),
            None => {}
            Some(v) => {
                let typed = match f.kind {
                    Kind::Int { .. } => v.as_str().and_then(|s| s.trim().parse::<i64>().ok()).map(Value::from),
                    _ => None,
                };
                let v = typed.unwrap_or_else(|| v.clone());
                check(&v, f, loc, &mut errors);
                out.insert(f.name.to_owned(), v);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Detail::invalid(errors))
    }
}

/// A field's JSON schema, for the dialect's OpenAPI document.
pub fn schema_of(f: &Field) -> Value {
    let mut s = match f.kind {
        Kind::Str { min, max } => json!({ "type": "string", "minLength": min, "maxLength": max }),
        Kind::Float { min, max } => json!({ "type": "number", "minimum": min, "maximum": max }),
        Kind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::StrList { min, max } => {
            json!({ "type": "array", "items": { "type": "string" }, "minItems": min, "maxItems": max })
        }
        Kind::Literal(values) => json!({ "type": "string", "enum": values }),
    };
    if !f.description.is_empty() {
        s["description"] = json!(f.description);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_like_pydantic() {
        let fields =
            [req("name", LINE, ""), opt("score", SCORE, ""), opt("status", Kind::Literal(&["a", "b", "c"]), "")];
        let e = body_object(&json!({ "score": 2, "status": "x", "extra": 1 }), &fields).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let d = e.body["detail"].as_array().unwrap();
        assert_eq!(d[0]["type"], "missing");
        assert_eq!(d[0]["loc"], json!(["body", "name"]));
        assert_eq!(d[0]["msg"], "Field required");
        assert_eq!(d[1]["type"], "less_than_equal");
        assert_eq!(d[2]["msg"], "Input should be 'a', 'b' or 'c'");
        let ok = body_object(&json!({ "name": "n", "extra": 1 }), &fields).unwrap();
        assert_eq!(Value::Object(ok), json!({ "name": "n" }));
        assert_eq!(body_json(b"{").unwrap_err().body["detail"][0]["type"], "json_invalid");
    }

    #[test]
    fn our_field_problems_name_the_dialect_fields() {
        let e = ApiError::invalid_field("leads[2].websiteUrl", "invalid_domain", "not a domain");
        let d = from_api(e, &[("websiteUrl", "website_url")]);
        assert_eq!(d.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(d.body["detail"][0]["loc"], json!(["body", "leads", 2, "website_url"]));
        assert_eq!(from_api(ApiError::internal(), &[]).body, json!({ "detail": "An internal error occurred" }));
    }
}
