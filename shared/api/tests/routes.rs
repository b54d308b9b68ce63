//! The route table against the catalogue: every operation routed once, every route an operation,
//! path parameters that are input fields, and the OpenAPI document and infra/routes.json in step.

mod tests {
    use linkcrm_api::routes::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_exactly_one_route_and_every_route_an_operation() {
        let cat = linkcrm_api::catalogue();
        let names: HashSet<&str> = cat.iter().map(|op| op.name).collect();
        let mut routed = HashSet::new();
        let mut seen = HashSet::new();
        for r in V1 {
            assert!(
                names.contains(r.operation),
                "route {} {} names no operation {}",
                r.verb.as_str(),
                r.path,
                r.operation
            );
            assert!(seen.insert((r.verb, r.path)), "route {} {} given twice", r.verb.as_str(), r.path);
            assert!(routed.insert(r.operation), "operation {} has two /v1 routes", r.operation);
        }
        for op in &cat {
            assert!(routed.contains(op.name), "operation {} has no /v1 route", op.name);
        }
    }

    #[test]
    fn path_parameters_are_input_fields_and_reads_take_no_body() {
        let cat = linkcrm_api::catalogue();
        let mut gen = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        for r in V1 {
            let op = cat.iter().find(|op| op.name == r.operation).unwrap();
            let schema = (op.input_schema)(&mut gen);
            let schema = match schema.as_value().get("$ref").and_then(|v| v.as_str()) {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap();
                    gen.definitions()[name].clone()
                }
                None => schema.as_value().clone(),
            };
            for p in r.path_params() {
                assert!(
                    schema["properties"].get(p).is_some(),
                    "{} {}: path parameter {p} is not a field of {}'s input",
                    r.verb.as_str(),
                    r.path,
                    op.name
                );
            }
            assert_eq!(r.verb == Verb::Get, !op.effect.writes(), "{}: GET routes exactly the reads", op.name);
        }
    }

    /// `infra/routes.json` is what the template check reads; `LINKCRM_UPDATE_ROUTES=1` rewrites it.
    #[test]
    fn infra_routes_json_is_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/routes.json");
        let want = serde_json::to_string_pretty(&table_json(V1, &linkcrm_api::catalogue())).unwrap() + "\n";
        if std::env::var_os("LINKCRM_UPDATE_ROUTES").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "infra/routes.json is stale: run LINKCRM_UPDATE_ROUTES=1 cargo test -p linkcrm-api --test routes"
        );
    }

    /// `infra/openapi.json` is the document the workspaces function serves (it links only its own
    /// context, so it cannot generate it); `LINKCRM_UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn infra_openapi_json_is_the_generated_document() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/openapi.json");
        let doc = linkcrm_api::openapi::document(&linkcrm_api::catalogue(), V1);
        let want = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        if std::env::var_os("LINKCRM_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "infra/openapi.json is stale: run LINKCRM_UPDATE_OPENAPI=1 cargo test -p linkcrm-api --test routes"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_operation_once() {
        let cat = linkcrm_api::catalogue();
        let doc = linkcrm_api::openapi::document(&cat, V1);
        let mut ids = Vec::new();
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                ids.push(op["operationId"].as_str().unwrap().to_owned());
            }
        }
        ids.sort();
        let mut names: Vec<String> = cat.iter().map(|op| op.name.to_owned()).collect();
        names.sort();
        assert_eq!(ids, names);
    }
}
