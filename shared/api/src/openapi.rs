//! The OpenAPI 3.1 document, generated from the operation catalogue and the types' JSON Schemas.

use crate::catalogue::{OpSpec, WorkspaceRule};
use axum::http::Method;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

pub fn document(catalogue: &[OpSpec]) -> Value {
    let mut gen =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let problem = gen.subschema_for::<Problem>();
    let mut paths: Map<String, Value> = Map::new();
    let mut bodies: Vec<(String, Value)> = Vec::new();

    for spec in catalogue {
        let input = (spec.input_schema)(&mut gen);
        let output = (spec.output_schema)(&mut gen);
        let path_params = spec.path_params();
        let mut parameters: Vec<Value> = path_params
            .iter()
            .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let body_method = spec.method == Method::POST || spec.method == Method::PATCH;
        let input_def = resolve(&gen, &input);
        let mut request_body = None;
        if body_method {
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
            bodies.push((name.clone(), body));
            request_body = Some(json!({
                "required": false,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            }));
        } else if let Some(props) = input_def.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = input_def
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (name, schema) in props {
                if path_params.contains(&name.as_str()) {
                    continue;
                }
                let description = schema.get("description").cloned().unwrap_or(Value::Null);
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
            parameters.push(json!({ "name": "X-Workspace-Id", "in": "header", "required": false, "description": text, "schema": { "type": "string" } }));
        }
        if spec.method != Method::GET {
            parameters.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Retries with the same key and body return the first response.", "schema": { "type": "string", "maxLength": 255 } }));
        }
        if spec.method == Method::PATCH {
            parameters.push(json!({ "name": "If-Match", "in": "header", "required": false,
                "description": "The ETag last read; a stale one is refused with 412.", "schema": { "type": "string" } }));
        }
        let mut responses = Map::new();
        let ok = spec.default_status.as_u16().to_string();
        if spec.method == Method::DELETE {
            responses.insert("204".into(), json!({ "description": "Done." }));
        } else {
            responses.insert(
                ok,
                json!({ "description": "Success.", "content": { "application/json": { "schema": output } } }),
            );
        }
        for (code, what) in [
            ("400", "Invalid arguments."),
            ("401", "Missing, unknown or revoked key."),
            ("403", "The key may not do this (scope or workspace)."),
            ("404", "Not found."),
            ("409", "Conflict (concurrent change or idempotency)."),
            ("429", "Rate limited; see Retry-After."),
        ] {
            responses.insert(
                code.into(),
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
        let path = paths.entry(spec.path.to_owned()).or_insert_with(|| json!({}));
        path[spec.method.as_str().to_ascii_lowercase()] = op;
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
            "description": "Link-building CRM and outreach platform. Errors are RFC 9457 problem+json documents."
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
    errors: Option<Vec<crate::error::FieldError>>,
}
