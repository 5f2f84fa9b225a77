//! The OpenAPI descriptions beside the access tables: each node's route table lists every route
//! it serves (a route without a row is refused to everyone), so the table and the spec must name
//! the same operations, and the spec's security must follow the table.

use reqwest::Method;
use serde_json::Value;
use stockmesh_http::auth::{Permission, Rule};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// One node's spec (as JSON) and its access table.
#[derive(Debug)]
pub struct NodeSpec {
    /// `central` or `store`, for messages.
    pub node: &'static str,
    /// The node's route table.
    pub table: &'static [Rule],
    /// The node's OpenAPI description.
    pub spec: Value,
}

/// Central's and the store's specs and tables.
pub fn specs() -> [NodeSpec; 2] {
    [
        NodeSpec {
            node: "central",
            table: stockmesh_central::api::ACCESS,
            spec: stockmesh_central::api::openapi(),
        },
        NodeSpec {
            node: "store",
            table: stockmesh_store::api::ACCESS,
            spec: stockmesh_store::api::openapi(),
        },
    ]
}

/// Routes a node serves that are not API operations: the reference page's assets.
pub const NOT_OPERATIONS: [&str; 2] = ["/docs", "/docs/{*rest}"];

/// The access table and the spec name the same operations, and the spec's security follows
/// the table: public operations need no token, every other one the bearer token, with its 401
/// and 403 answers documented.
pub fn table_and_spec_agree(node: &NodeSpec) {
    let NodeSpec { node, table, spec } = node;
    let paths = spec["paths"].as_object().expect("paths");
    for rule in table.iter().chain(stockmesh_http::auth::SHARED) {
        if NOT_OPERATIONS.contains(&rule.path) {
            continue;
        }
        let method = rule.method.as_str().to_lowercase();
        assert!(
            paths
                .get(rule.path)
                .and_then(|item| item.get(&method))
                .is_some(),
            "{node}: {} {} is served (it has an access rule) but not in the spec",
            rule.method,
            rule.path
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{node}: no bearer scheme"
    );
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let permission = stockmesh_http::auth::required(table, &verb, path);
            assert!(
                permission.is_some(),
                "{node}: {method} {path} is in the spec but has no access rule (refused to all)"
            );
            let security = &operation["security"];
            let responses = &operation["responses"];
            if permission == Some(Permission::Public) {
                assert_eq!(
                    security,
                    &serde_json::json!([{}]),
                    "{node}: {method} {path} is public"
                );
            } else {
                assert_eq!(
                    security,
                    &serde_json::json!([{"bearer": []}]),
                    "{node}: {method} {path} needs a token"
                );
                assert!(
                    responses.get("401").is_some() && responses.get("403").is_some(),
                    "{node}: {method} {path} lacks its 401/403 answers"
                );
            }
        }
    }
    links_lead_somewhere(node, paths);
}

/// Operation ids are unique, and every link names an operation of the spec and only path
/// parameters that operation takes.
fn links_lead_somewhere(node: &str, paths: &serde_json::Map<String, Value>) {
    let operations: Vec<(&String, &Value)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |m| item.get(*m).map(|o| (path, o)))
        })
        .collect();
    let mut ids: Vec<&str> = operations
        .iter()
        .filter_map(|(_, o)| o["operationId"].as_str())
        .collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "{node}: operation ids repeat");
    for (path, operation) in &operations {
        let responses = operation["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (status, response) in responses {
            let links = response["links"].as_object().cloned().unwrap_or_default();
            for (name, link) in links {
                let target = link["operationId"].as_str().unwrap_or_default();
                let Some((target_path, _)) =
                    operations.iter().find(|(_, o)| o["operationId"] == target)
                else {
                    panic!("{node}: {path} {status} links ({name}) to no operation {target:?}");
                };
                for parameter in link["parameters"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .keys()
                {
                    assert!(
                        target_path.contains(&format!("{{{parameter}}}")),
                        "{node}: {path} {status} links ({name}) to {target_path} with a \
                         parameter {parameter} it does not take"
                    );
                }
            }
        }
    }
}
