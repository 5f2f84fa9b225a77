//! Who may do what, over real HTTP: every route × (no token, malformed, expired, wrong key, each
//! role, another store's token) gives the documented status, refused requests write nothing,
//! and no form post reaches a mutating route.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stockmesh_http::auth::{AUDIENCE, Claims, ISSUER, Issuer, Role, generate_key_pair};
use stockmesh_testkit::{Api, TestCluster};

/// The credentials tried on every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Malformed,
    Expired,
    WrongKey,
    Admin,
    Store1,
    Store2,
    Sales,
    Viewer,
    Metrics,
}

const EVERYONE: [Who; 10] = [
    Who::Nobody,
    Who::Malformed,
    Who::Expired,
    Who::WrongKey,
    Who::Admin,
    Who::Store1,
    Who::Store2,
    Who::Sales,
    Who::Viewer,
    Who::Metrics,
];

fn token(issuer: &Issuer, who: Who) -> Option<String> {
    let hour = Duration::from_secs(3600);
    let issue = |role, store: Option<&str>| issuer.issue("t", role, store, hour).ok();
    match who {
        Who::Nobody => None,
        Who::Malformed => Some("not.a.token".into()),
        Who::Expired => {
            let now = chrono_now();
            issuer
                .sign(&Claims {
                    iss: ISSUER.into(),
                    aud: AUDIENCE.into(),
                    sub: "t".into(),
                    iat: now - 7200,
                    exp: now - 3600,
                    role: Role::Admin,
                    store: None,
                })
                .ok()
        }
        Who::WrongKey => {
            let (private, _) = generate_key_pair().expect("keys");
            Issuer::new("test", &private)
                .expect("issuer")
                .issue("t", Role::Admin, None, hour)
                .ok()
        }
        Who::Admin => issue(Role::Admin, None),
        Who::Store1 => issue(Role::Store, Some("store-1")),
        Who::Store2 => issue(Role::Store, Some("store-2")),
        Who::Sales => issue(Role::Sales, None),
        Who::Viewer => issue(Role::Viewer, None),
        Who::Metrics => issue(Role::Metrics, None),
    }
}

fn chrono_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("time")
}

/// What a route requires, as documented in the README's table.
#[derive(Debug, Clone, Copy)]
enum Needs {
    Public,
    Metrics,
    StoreRead,
    StoreWrite,
    ViewRead,
    Sell,
    Admin,
}

fn allowed(needs: Needs, who: Who) -> bool {
    use Who::*;
    match needs {
        Needs::Public => true,
        Needs::Metrics => matches!(who, Admin | Metrics),
        Needs::StoreRead => matches!(who, Admin | Store1 | Viewer),
        Needs::StoreWrite => matches!(who, Admin | Store1),
        Needs::ViewRead => matches!(who, Admin | Sales | Viewer),
        Needs::Sell => matches!(who, Admin | Sales),
        Needs::Admin => matches!(who, Admin),
    }
}

fn is_credential_bad(who: Who) -> bool {
    matches!(
        who,
        Who::Nobody | Who::Malformed | Who::Expired | Who::WrongKey
    )
}

struct Case {
    node: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    needs: Needs,
}

async fn send(api: &Api, case: &Case, token: Option<&str>) -> stockmesh_testkit::http::Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(value) = &bearer {
        headers.push(("authorization", value.as_str()));
    }
    let bare = Api::new(api.base.clone());
    match &case.body {
        Some(body) => {
            bare.send(
                case.method.clone(),
                &case.path,
                Some("application/json"),
                Some(body.to_string().into_bytes()),
                &headers,
            )
            .await
        }
        None => {
            bare.send(case.method.clone(), &case.path, None, None, &headers)
                .await
        }
    }
}

fn cases(purchase: &str, product: &str) -> Vec<Case> {
    let store = |method: Method, path: &str, body: Option<Value>, needs| Case {
        node: "store-1",
        method,
        path: path.to_owned(),
        body,
        needs,
    };
    let central = |method: Method, path: &str, body: Option<Value>, needs| Case {
        node: "central",
        method,
        path: path.to_owned(),
        body,
        needs,
    };
    let item = format!("/inventory/{product}");
    vec![
        store(Method::GET, "/", None, Needs::Public),
        store(Method::GET, "/healthz", None, Needs::Public),
        store(Method::GET, "/readyz", None, Needs::Public),
        store(Method::GET, "/metrics", None, Needs::Metrics),
        store(Method::GET, "/status", None, Needs::StoreRead),
        store(Method::GET, "/inventory", None, Needs::StoreRead),
        store(Method::GET, &item, None, Needs::StoreRead),
        store(
            Method::GET,
            &format!("{item}/history"),
            None,
            Needs::StoreRead,
        ),
        store(Method::POST, "/connected", None, Needs::StoreWrite),
        store(
            Method::POST,
            "/inventory",
            Some(json!({"productId": "NEW"})),
            Needs::StoreWrite,
        ),
        store(
            Method::PUT,
            &item,
            Some(json!({"quantity": 1000})),
            Needs::StoreWrite,
        ),
        store(
            Method::POST,
            &format!("/purchase/{product}"),
            Some(json!({"quantity": 1})),
            Needs::StoreWrite,
        ),
        central(Method::GET, "/", None, Needs::Public),
        central(Method::GET, "/healthz", None, Needs::Public),
        central(Method::GET, "/readyz", None, Needs::Public),
        central(Method::GET, "/metrics", None, Needs::Metrics),
        central(Method::GET, "/inventory", None, Needs::ViewRead),
        central(
            Method::GET,
            &format!("/inventory/store-1/{product}"),
            None,
            Needs::ViewRead,
        ),
        central(
            Method::GET,
            &format!("/products/{product}"),
            None,
            Needs::ViewRead,
        ),
        central(Method::GET, "/stores", None, Needs::ViewRead),
        central(
            Method::POST,
            "/stores",
            Some(json!({"storeId": "store-9"})),
            Needs::Admin,
        ),
        central(
            Method::GET,
            &format!("/purchases/{purchase}"),
            None,
            Needs::ViewRead,
        ),
        central(
            Method::POST,
            &format!("/purchase/store-1/{product}"),
            Some(json!({"quantity": 1})),
            Needs::Sell,
        ),
    ]
}

/// What a refused request could have changed: store-1's items and p1's history, and Central's
/// view of p1.
async fn footprint(cluster: &TestCluster, product: &str) -> (Value, Value, Value) {
    let store = cluster.store(1);
    (
        store.get("/inventory?size=100").await.expect(200).json(),
        store
            .get(&format!("/inventory/{product}/history?size=100"))
            .await
            .expect(200)
            .json(),
        cluster
            .central
            .get(&format!("/inventory/store-1/{product}"))
            .await
            .expect(200)
            .json(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_credential_as_documented_and_refusals_write_nothing() {
    let cluster = TestCluster::start_secured(2).await;
    let issuer = cluster.issuer.clone().expect("secured");
    let product = "p1";
    cluster.store(1).create_item(product).await.expect(201);
    cluster
        .store(1)
        .set_quantity(product, 1000)
        .await
        .expect(204);
    stockmesh_testkit::eventually("p1 at Central", Duration::from_secs(5), async || {
        cluster.central.get("/inventory/store-1/p1").await.json()["quantity"] == 1000
    })
    .await;
    let bought = cluster
        .central
        .post("/purchase/store-1/p1", &json!({"quantity": 1}))
        .await;
    assert!(
        bought.status == 200 || bought.status == 202,
        "{}",
        bought.text
    );
    let purchase = cluster
        .central
        .get("/purchases/00000000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(purchase.status, 404, "{}", purchase.text);
    let purchase_id = bought.json()["purchaseId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| "00000000-0000-7000-8000-000000000000".into());
    let cases = cases(&purchase_id, product);

    // Refusals first: nothing may change.
    let before = footprint(&cluster, product).await;
    let mut seen = 0;
    for case in &cases {
        let api = if case.node == "central" {
            &cluster.central
        } else {
            cluster.store(1)
        };
        for who in EVERYONE {
            if allowed(case.needs, who) {
                continue;
            }
            let reply = send(api, case, token(&issuer, who).as_deref()).await;
            let expected = if is_credential_bad(who) { 401 } else { 403 };
            assert_eq!(
                reply.status, expected,
                "{} {} {} as {who:?}: {}",
                case.node, case.method, case.path, reply.text
            );
            assert_eq!(reply.content_type(), "application/problem+json");
            if expected == 401 {
                let challenge = reply.header("www-authenticate").unwrap_or_default();
                assert!(challenge.starts_with("Bearer"), "{challenge}");
            }
            seen += 1;
        }
    }
    assert!(seen > 100, "{seen} refusals tried");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        footprint(&cluster, product).await,
        before,
        "a refused request wrote"
    );

    // Then what is allowed answers 2xx.
    for case in &cases {
        let api = if case.node == "central" {
            &cluster.central
        } else {
            cluster.store(1)
        };
        for who in EVERYONE {
            if !allowed(case.needs, who) {
                continue;
            }
            let mut case = Case {
                node: case.node,
                method: case.method.clone(),
                path: case.path.clone(),
                body: case.body.clone(),
                needs: case.needs,
            };
            if let Some(body) = &mut case.body
                && body.get("productId").is_some()
            {
                *body = json!({"productId": format!("new-{who:?}").to_lowercase()});
            }
            let reply = send(api, &case, token(&issuer, who).as_deref()).await;
            assert!(
                (200..300).contains(&reply.status),
                "{} {} {} as {who:?}: {} {}",
                case.node,
                case.method,
                case.path,
                reply.status,
                reply.text
            );
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_post_reaches_a_mutating_route_and_no_cors_is_granted() {
    let cluster = TestCluster::start_secured(1).await;
    let store = cluster.store(1);
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", &b"a=1"[..]),
        ("multipart/form-data; boundary=x", &b"--x--"[..]),
        ("text/plain", &b"{}"[..]),
    ] {
        let reply = store
            .send(
                Method::POST,
                "/disconnected",
                Some(content_type),
                Some(body.to_vec()),
                &[],
            )
            .await;
        assert_eq!(reply.status, 415, "{content_type}: {}", reply.text);
    }
    // A body without any Content-Type is refused too.
    let reply = store
        .send(
            Method::POST,
            "/disconnected",
            None,
            Some(b"a=1".to_vec()),
            &[],
        )
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    let status = store.get("/status").await.expect(200).json();
    assert_eq!(status["connectivity"], "connected", "{status}");

    let preflight = store
        .send(
            Method::OPTIONS,
            "/disconnected",
            None,
            None,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert!(preflight.header("access-control-allow-origin").is_none());
    cluster.shutdown().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("STOCKMESH_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).output().expect("the binary runs")
}

#[test]
fn keygen_writes_owner_only_keys_and_token_signs_with_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let keys = dir.path().join("keys");
    let keys_arg = keys.display().to_string();
    let out = run(&["auth", "keygen", "--dir", &keys_arg, "--kid", "k7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&keys.join("k7.key")), 0o600);
    // A second keygen never overwrites a key.
    assert!(
        !run(&["auth", "keygen", "--dir", &keys_arg, "--kid", "k7"])
            .status
            .success()
    );

    let key = keys.join("k7.key").display().to_string();
    let out = run(&[
        "auth", "token", "--key", &key, "--role", "store", "--store", "store-1", "--ttl", "1h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let public = std::fs::read_to_string(keys.join("k7.pub")).expect("pub");
    let verifier =
        stockmesh_http::auth::Verifier::new([("k7".to_owned(), public)]).expect("verifier");
    let claims = verifier.verify(&token).expect("valid");
    assert_eq!(claims.role, Role::Store);
    assert_eq!(claims.store.as_deref(), Some("store-1"));

    // A store token without a store is refused; a private key others can read is refused.
    assert!(
        !run(&["auth", "token", "--key", &key, "--role", "store"])
            .status
            .success()
    );
    std::fs::set_permissions(keys.join("k7.key"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = run(&["auth", "token", "--key", &key, "--role", "admin"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn a_node_without_auth_refuses_a_network_address_unless_told_insecure() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let out = run(&["central", "--listen", "0.0.0.0:0", "--db", &db]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let out = run(&[
        "store",
        "--id",
        "store-1",
        "--standalone",
        "--listen",
        "[::]:0",
        "--db",
        &db,
    ]);
    assert!(!out.status.success());
}
