//! The OpenAPI descriptions and the routers agree: every operation in each spec is served (the
//! router's fallback never answers it), no path of the spec answers a method the spec does not
//! list, every route in a node's access table (the list of what it serves) is in its spec, the
//! spec's security follows that table, every operation documents the shared headers and a
//! problem answer, and the reference page is served from the binary.

use reqwest::Method;
use serde_json::Value;
use stockmesh_testkit::cluster::TestCluster;
use stockmesh_testkit::http::Api;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn concrete(path: &str) -> String {
    path.replace("{store_id}", "store-1")
        .replace("{product_id}", "openapi-probe")
        .replace("{purchase_id}", "0190b5a4-7f3b-7cc0-8000-000000000000")
        .replace("{reservation_id}", "0190b5a4-7f3b-7cc0-8000-000000000001")
        .replace("{transfer_id}", "0190b5a4-7f3b-7cc0-8000-000000000002")
}

#[test]
fn every_served_route_is_described_and_its_security_follows_the_access_table() {
    let [central, store] = stockmesh_testkit::openapi::specs();
    for node in [&central, &store] {
        stockmesh_testkit::openapi::table_and_spec_agree(node);
    }
    let (central, store) = (central.spec, store.spec);
    // The routes added with reservations, transfers, adjustments and provisioning.
    for (path, method) in [
        ("/reservations", "post"),
        ("/reservations/{reservation_id}", "get"),
        ("/reservations/{reservation_id}", "delete"),
        ("/reservations/{reservation_id}/commit", "post"),
        ("/transfers", "post"),
        ("/transfers", "get"),
        ("/transfers/{transfer_id}", "get"),
        ("/transfers/{transfer_id}/cancel", "post"),
        ("/stores", "post"),
        ("/events", "get"),
    ] {
        assert!(
            central["paths"][path].get(method).is_some(),
            "central: {method} {path}"
        );
    }
    for (path, method) in [
        ("/inventory/adjustments", "post"),
        ("/transfers/{transfer_id}/receive", "post"),
    ] {
        assert!(
            store["paths"][path].get(method).is_some(),
            "store: {method} {path}"
        );
    }
    // The created resource's Location names its own kind (a link-guessing fuzzer follows it).
    for (path, status) in [("/reservations", "201"), ("/transfers", "201")] {
        let header = &central["paths"][path]["post"]["responses"][status]["headers"]["Location"];
        assert!(
            header["description"]
                .as_str()
                .is_some_and(|d| d.contains(path)),
            "central: POST {path} {status} Location: {header}"
        );
    }
}

/// Checks one node's spec against its router; returns how many operations it holds.
async fn agrees(api: &Api, node: &str) -> usize {
    let spec = api.get("/openapi.json").await.expect(200).json();
    assert_eq!(spec["openapi"], "3.1.0", "{node}: not OpenAPI 3.1");
    let paths = spec["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        // Sorted so that `/disconnected` is probed after every other store route.
        for method in METHODS {
            let url = concrete(path);
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let Some(operation) = item.get(method) else {
                let reply = api.send(verb, &url, None, None, &[]).await;
                assert_eq!(
                    reply.status, 405,
                    "{node}: {method} {path} is not in the spec but answered {}: {}",
                    reply.status, reply.text
                );
                continue;
            };
            operations += 1;
            // A stream never ends: probe it with a query it refuses (400, from its handler).
            let streams = operation["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some();
            let url = if streams {
                format!("{url}?probe=1")
            } else {
                url
            };
            let body = operation.get("requestBody").map(|_| b"{}".to_vec());
            let reply = api
                .send(
                    verb,
                    &url,
                    body.as_ref().map(|_| "application/json"),
                    body.clone(),
                    &[],
                )
                .await;
            let fallback = reply.status == 405
                || (reply.status == 404
                    && reply.json()["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no route for")));
            assert!(
                !fallback,
                "{node}: {method} {path} is in the spec but not served: {} {}",
                reply.status, reply.text
            );
            let params: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                params.contains(&"X-Request-Id"),
                "{node}: {method} {path} lacks X-Request-Id"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.contains_key("default"),
                "{node}: {method} {path} has no problem answer"
            );
            for (status, response) in responses {
                assert!(
                    response["headers"].get("X-Request-Id").is_some(),
                    "{node}: {method} {path} {status} lacks the X-Request-Id header"
                );
            }
            if params.contains(&"page") {
                let ok = &responses["200"]["headers"];
                assert!(
                    ok.get("X-Total-Count").is_some() && ok.get("Link").is_some(),
                    "{node}: {method} {path} is paginated but lacks X-Total-Count or Link"
                );
            }
        }
    }
    operations
}

fn location(spec: &Value, path: &str, method: &str, status: &str) -> bool {
    spec["paths"][path][method]["responses"][status]["headers"]
        .get("Location")
        .is_some()
}

#[tokio::test]
async fn each_spec_and_its_router_agree_and_the_reference_page_is_served_from_the_binary() {
    let cluster = TestCluster::start(1).await;
    let central_ops = agrees(&cluster.central, "central").await;
    let store_ops = agrees(cluster.store(1), "store").await;
    assert!(
        central_ops >= 12 && store_ops >= 15,
        "{central_ops} {store_ops}"
    );

    let central = cluster.central.get("/openapi.json").await.json();
    let purchase = &central["paths"]["/purchase/{store_id}/{product_id}"]["post"];
    assert!(
        purchase["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "Idempotency-Key undocumented"
    );
    assert!(location(
        &central,
        "/purchase/{store_id}/{product_id}",
        "post",
        "202"
    ));
    let store = cluster.store(1).get("/openapi.json").await.json();
    assert!(location(&store, "/inventory", "post", "201"));
    assert!(store["components"]["schemas"]["Problem"].is_object());

    for api in [&cluster.central, cluster.store(1)] {
        let page = api.get("/docs/").await.expect(200);
        assert!(
            page.content_type().starts_with("text/html"),
            "{}",
            page.content_type()
        );
        assert!(
            !page.text.contains("https://") && !page.text.contains("http://"),
            "the reference page names an outside host: {}",
            page.text
        );
        let config = api.get("/docs/swagger-initializer.js").await.expect(200);
        assert!(config.text.contains("/openapi.json"), "{}", config.text);
        api.get("/docs/swagger-ui-bundle.js").await.expect(200);
    }
    cluster.shutdown().await;
}
