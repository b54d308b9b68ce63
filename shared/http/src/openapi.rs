//! The OpenAPI 3.1 document, generated from the operation catalogue and the types' JSON Schemas.

use crate::routes::{Route, Verb};
use linkcrm_core::catalogue::{OpSpec, WorkspaceRule};
use linkcrm_core::ids::{self, Id};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The document of a route table over the catalogue. Panics if a route names an operation the
/// catalogue lacks (a test builds it for every table).
pub fn document(catalogue: &[OpSpec], routes: &[Route]) -> Value {
    let mut gen =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let problem = gen.subschema_for::<Problem>();
    let mut paths: Map<String, Value> = Map::new();
    let mut bodies: Vec<(String, Value)> = Vec::new();

    for route in routes {
        let spec = catalogue
            .iter()
            .find(|op| op.name == route.operation)
            .unwrap_or_else(|| panic!("route {} {} names no operation", route.path, route.operation));
        let input = (spec.input_schema)(&mut gen);
        let output = (spec.output_schema)(&mut gen);
        let path_params = route.path_params();
        let input_def = resolve(&gen, &input);
        // A path parameter carries the rule its input field has (an id's pattern).
        let mut parameters: Vec<Value> = path_params
            .iter()
            .map(|p| {
                let schema =
                    input_def["properties"].get(*p).map(not_null).unwrap_or_else(|| json!({ "type": "string" }));
                json!({ "name": p, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        let mut request_body = None;
        if route.verb.has_body() {
            // The body is the input without what the path carries.
            let mut body = input_def.clone();
            if let Some(props) = body.get_mut("properties").and_then(Value::as_object_mut) {
                for p in &path_params {
                    props.remove(*p);
                }
            }
            if let Some(req) = body.get_mut("required").and_then(Value::as_array_mut) {
                req.retain(|r| !path_params.iter().any(|p| r == p));
            }
            let name = format!("{}Body", camel(spec.name));
            let required = body.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty())
                || body.get("oneOf").is_some();
            bodies.push((name.clone(), body));
            request_body = Some(json!({
                "required": required,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            }));
        } else if let Some(props) = input_def.get("properties").and_then(Value::as_object) {
            // "Exactly one of these" (a `oneOf` of required names) cannot be said of separate query
            // parameters; it can of one object parameter, exploded into them (`?email=…`).
            let exclusive: Vec<&str> = input_def["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|branch| branch["required"].as_array().into_iter().flatten().filter_map(Value::as_str))
                .collect();
            if !exclusive.is_empty() {
                let members: Map<String, Value> =
                    exclusive.iter().filter_map(|n| Some((n.to_string(), not_null(props.get(*n)?)))).collect();
                parameters.push(json!({
                    "name": "target", "in": "query", "required": true, "style": "form", "explode": true,
                    "description": format!("Exactly one of: {}.", exclusive.join(", ")),
                    "schema": { "type": "object", "properties": members, "oneOf": input_def["oneOf"],
                                "additionalProperties": false },
                }));
            }
            let required: Vec<&str> = input_def
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (name, schema) in props {
                if path_params.contains(&name.as_str()) || exclusive.contains(&name.as_str()) {
                    continue;
                }
                let description = schema.get("description").cloned().unwrap_or(Value::Null);
                // A query string has no null: an absent parameter is how a client leaves it out.
                let schema = not_null(schema);
                let mut p = json!({ "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema });
                if !description.is_null() {
                    p["description"] = description;
                }
                parameters.push(p);
            }
        }
        if spec.workspace != WorkspaceRule::None {
            let text = if spec.workspace == WorkspaceRule::AgencyWide {
                "The workspace to act in. Agency keys may omit it to cover all their workspaces; workspace keys need not send it."
            } else {
                "The workspace to act in. Required with an agency key; workspace keys need not send it."
            };
            let schema = json!({ "type": "string", "pattern": Id::<ids::Workspace>::pattern() });
            parameters.push(json!({ "name": "X-Workspace-Id", "in": "header", "required": false, "description": text, "schema": schema }));
        }
        if spec.effect.writes() {
            parameters.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Retries with the same key and body return the first response.",
                "schema": { "type": "string", "pattern": "^[!-~]{1,255}$" } }));
        }
        if route.verb == Verb::Patch {
            parameters.push(json!({ "name": "If-Match", "in": "header", "required": false,
                "description": "The ETag last read (or `*`); a stale one is refused with 412.",
                "schema": { "type": "string", "pattern": "^(\\*|(W/)?\"?[0-9]{1,18}\"?)$" } }));
        }
        let mut responses = Map::new();
        // A delete answers 204 unless it answers with what it ended (a cancelled campaign); so does
        // any operation whose success is a 204 with nothing to say.
        let answers_nothing = output.as_object().and_then(|o| o.get("type")) == Some(&json!("null"));
        let no_content = spec.default_status == axum::http::StatusCode::NO_CONTENT;
        if (route.verb == Verb::Delete || no_content) && answers_nothing {
            responses.insert("204".into(), json!({ "description": "Done." }));
        } else if spec.file {
            responses.insert(
                spec.default_status.as_u16().to_string(),
                json!({
                    "description": "The file (at most 5 MB per response; `Link: <…>; rel=\"next\"` leads to the rest).",
                    "headers": {
                        "Content-Disposition": { "schema": { "type": "string" } },
                        "Link": { "description": "The next part, when there is one.", "schema": { "type": "string" } }
                    },
                    "content": { "text/csv": { "schema": { "type": "string" } } }
                }),
            );
        } else {
            for status in std::iter::once(&spec.default_status).chain(spec.also_succeeds_with) {
                responses.insert(
                    status.as_u16().to_string(),
                    json!({ "description": "Success.", "content": { "application/json": { "schema": output } } }),
                );
            }
        }
        for (code, what) in error_statuses(spec, route.verb) {
            responses.insert(
                code.to_string(),
                json!({ "description": what, "content": { "application/problem+json": { "schema": problem.clone() } } }),
            );
        }
        let mut op = json!({
            "operationId": spec.name,
            "summary": spec.summary,
            "tags": [spec.tag],
            "parameters": parameters,
            "responses": responses,
            "x-linkcrm-operation": spec.name,
            "x-linkcrm-scope": spec.scope,
            "x-linkcrm-credit-cost": spec.cost_millicredits as f64 / 1000.0,
        });
        if let Some(rb) = request_body {
            op["requestBody"] = rb;
        }
        let path = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        path[route.verb.method().as_str().to_ascii_lowercase()] = op;
    }

    let mut schemas = gen.take_definitions(true);
    for (name, body) in bodies {
        schemas.insert(name, body);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "linkcrm API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Link-building CRM and outreach platform. Errors are RFC 9457 problem+json documents. \
                A method a path does not offer is answered 405 with an `Allow` header."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "sk_live_… (workspace) or sk_live_agency_… (agency) key" } }
        }
    })
}

/// Every error status an operation can answer, with what it means there.
fn error_statuses(spec: &OpSpec, verb: Verb) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (400, "Invalid arguments (field-level `errors`), or a malformed header."),
        (401, "Missing, unknown or revoked key."),
        (403, "The key may not do this (scope, agency-only, another workspace, an archived workspace)."),
        (404, "Not found (the resource, or the workspace named)."),
        (429, "Rate limited; see Retry-After."),
        (503, "Storage or a provider is unavailable; retry."),
    ];
    if spec.effect.writes() {
        out.push((409, "Conflict: a concurrent change, a duplicate, or an Idempotency-Key reused with another body."));
        out.push((422, "A valid request a business rule refuses (the `code` says which)."));
    }
    if verb.has_body() {
        out.push((413, "The body, or the record it would make, is too large."));
    }
    if verb == Verb::Patch {
        out.push((412, "If-Match does not match the current ETag."));
    }
    if spec.cost_millicredits > 0 {
        out.push((402, "Not enough credits (`details.required`, `details.available`)."));
    }
    out.sort_unstable();
    out
}

/// A schema without `null` among its types (query and path parameters have no null).
fn not_null(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(types) = s.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            s["type"] = only;
        }
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let kept: Vec<Value> = any.iter().filter(|v| v.get("type") != Some(&json!("null"))).cloned().collect();
        if kept.len() == 1 {
            let mut merged = kept[0].clone();
            if let (Some(m), Some(desc)) = (merged.as_object_mut(), s.get("description")) {
                m.entry("description").or_insert(desc.clone());
            }
            return merged;
        }
        s["anyOf"] = Value::Array(kept);
    }
    s
}

/// Follows a `$ref` into the generator's definitions.
fn resolve(gen: &schemars::SchemaGenerator, schema: &schemars::Schema) -> Value {
    let v = schema.as_value().clone();
    match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => gen.definitions().get(name).cloned().unwrap_or(v),
        None => v,
    }
}

fn camel(dotted: &str) -> String {
    dotted
        .split(['.', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The error document every failure returns.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Problem {
    r#type: String,
    title: String,
    status: u16,
    detail: String,
    code: String,
    message: String,
    details: Value,
    request_id: String,
    errors: Option<Vec<linkcrm_core::error::FieldError>>,
}
