//! The dialect's own OpenAPI document, made from its route table.

use crate::routes::{Param, ROUTES};
use crate::PREFIX;
use serde_json::{json, Map, Value};

fn properties(params: &[Param]) -> Value {
    let mut props = Map::new();
    for (name, kind, description) in params {
        let schema = if *kind == "array" {
            json!({ "type": "array", "items": { "type": "string", "format": "uuid" }, "description": description })
        } else {
            json!({ "type": kind, "description": description })
        };
        props.insert((*name).to_owned(), schema);
    }
    Value::Object(props)
}

pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let path = format!("{PREFIX}{}", r.path);
        let mut parameters = vec![json!({ "name": "entityId", "in": "query", "required": false,
            "description": "Entity UUID; must match the API key's entity when using Bearer auth.",
            "schema": { "type": "string", "format": "uuid" } })];
        for seg in r.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            parameters.push(json!({ "name": seg, "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }));
        }
        for (name, kind, description) in r.query {
            parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description,
                                    "schema": { "type": kind } }));
        }
        let success = match r.answers {
            "object" => json!({ "type": "object" }),
            plural => {
                json!({ "type": "object", "properties": { plural: { "type": "array", "items": { "type": "object" } } } })
            }
        };
        let mut responses = Map::new();
        responses.insert(
            r.status.to_string(),
            json!({ "description": if r.status == 501 { "Not available in this API yet" } else { "Success" },
                    "content": { "application/json": { "schema": if r.status == 501 { json!({ "$ref": "#/components/schemas/Error" }) } else { success } } } }),
        );
        for code in ["400", "401", "403", "404", "409", "422"] {
            responses.insert(
                code.into(),
                json!({ "description": "Error",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
            );
        }
        let mut op = json!({ "summary": r.summary, "tags": [r.tag], "parameters": parameters, "responses": responses,
                             "x-linkcrm-operations": r.operations });
        if !r.body.is_empty() {
            op["requestBody"] = json!({ "content": { "application/json": { "schema": { "type": "object", "properties": properties(r.body) } } } });
        }
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "linkcrm: CRM HTTP API (seed 004 dialect)", "version": "1",
                  "description": "The CRM HTTP API over linkcrm's operations. Send Authorization: Bearer ak_... and entityId (query or JSON body). Ids are UUIDs. docs/dialects/crm.md maps every route." },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer",
                "description": "Create keys with POST /v1/workspaces/{id}/api-keys and format: ak. Prefix ak_." } },
            "schemas": { "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } } }
        },
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
    })
}
