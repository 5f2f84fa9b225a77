//! Least-privilege Redis users on a real redis-server: the nodes work with them, and store-1's
//! credentials cannot append to store-2's streams, read store-2's commands or write a command.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::acl::{self, split_line};
use stockmesh_bus::{Broker, DbConfig, RedisBroker, RedisConfig};
use stockmesh_central::{CentralConfig, CentralNode};
use stockmesh_core::StoreId;
use stockmesh_store::{StoreConfig, StoreNode};
use stockmesh_testkit::cluster::test_heartbeat;
use stockmesh_testkit::{Api, RedisServer, eventually};

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

fn is_noperm(result: redis::RedisResult<redis::Value>) -> bool {
    match result {
        Err(error) => error.to_string().to_uppercase().contains("NOPERM"),
        Ok(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_users_confine_each_store_to_its_own_keys() {
    let server = RedisServer::start().await;
    let host = format!("127.0.0.1:{}", server.port());
    let mut admin = connect(&server.url()).await;
    let store1 = StoreId::parse("store-1").expect("valid");
    let store2 = StoreId::parse("store-2").expect("valid");
    let central = acl::central_user("central", &acl::password());
    let users = [
        central.clone(),
        acl::store_user(&store1, &acl::password()),
        acl::store_user(&store2, &acl::password()),
    ];
    for user in &users {
        let args = split_line(&user.line);
        let mut cmd = redis::cmd(&args[0]);
        for arg in &args[1..] {
            cmd.arg(arg);
        }
        let _: () = cmd.query_async(&mut admin).await.expect(&user.line);
    }

    // The nodes run with those users.
    let dir = tempfile::tempdir().expect("dir");
    let broker = |url: String| -> Arc<dyn Broker> {
        Arc::new(RedisBroker::new(RedisConfig::new(url)).expect("broker"))
    };
    let central_node = CentralNode::start(
        CentralConfig {
            stores: vec![store1.clone()],
            heartbeat_timeout: test_heartbeat().timeout,
            ..CentralConfig::new(DbConfig::new(dir.path().join("c.db").display().to_string()))
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        broker(central.url(&host)),
    )
    .await
    .expect("central starts");
    let store_node = StoreNode::start(
        StoreConfig {
            heartbeat: test_heartbeat(),
            ..StoreConfig::new(
                store1.clone(),
                DbConfig::new(dir.path().join("s.db").display().to_string()),
            )
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        Some(broker(users[1].url(&host))),
    )
    .await
    .expect("store starts");
    let central_api = Api::new(format!("http://{}", central_node.addr()));
    let store_api = Api::new(format!("http://{}", store_node.addr()));
    store_api.create_item("p1").await.expect(201);
    store_api.set_quantity("p1", 5).await.expect(204);
    eventually("p1 at Central", Duration::from_secs(10), async || {
        central_api.get("/inventory/store-1/p1").await.json()["quantity"] == 5
    })
    .await;
    eventually("store-1 online", Duration::from_secs(10), async || {
        central_api.get("/stores").await.json()[0]["online"] == true
    })
    .await;
    let bought = central_api
        .post("/purchase/store-1/p1", &serde_json::json!({"quantity": 2}))
        .await;
    assert_eq!(bought.status, 200, "{}", bought.text);

    // store-1's credentials, used by hand.
    let mut s1 = connect(&users[1].url(&host)).await;
    let xadd = |stream: String| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*").arg("data").arg("{}");
        cmd
    };
    assert!(is_noperm(
        xadd("stockmesh:{store-2}:events".into())
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        xadd("stockmesh:{store-2}:commands".into())
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        xadd("stockmesh:{store-1}:commands".into())
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        redis::cmd("XRANGE")
            .arg("stockmesh:{store-2}:commands")
            .arg("-")
            .arg("+")
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("store")
            .arg("x")
            .arg("STREAMS")
            .arg("stockmesh:{store-2}:commands")
            .arg(">")
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        redis::cmd("SET")
            .arg("stockmesh:{store-2}:heartbeat")
            .arg(1)
            .query_async(&mut s1)
            .await
    ));
    assert!(is_noperm(
        redis::cmd("DEL")
            .arg("stockmesh:stores")
            .query_async(&mut s1)
            .await
    ));
    // Its own events stream it may append to.
    assert!(
        xadd("stockmesh:{store-1}:events".into())
            .query_async::<redis::Value>(&mut s1)
            .await
            .is_ok()
    );
    store_node.shutdown().await;
    central_node.shutdown().await;
}

/// What a store's user may do to `key` on one node: `NOPERM`, or anything else (an answer, or
/// `MOVED` to the node that holds the key, which Redis checks only after the permission).
async fn xadd_is_noperm(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    is_noperm(
        redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("data")
            .arg("{}")
            .query_async(conn)
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_users_set_on_every_master_run_the_nodes_and_confine_each_store() {
    use stockmesh_bus::acl::Placement;
    use stockmesh_bus::topology::{self, cluster_key};
    use stockmesh_testkit::RedisClusterServer;

    let cluster = RedisClusterServer::start().await;
    let store1 = StoreId::parse("store-1").expect("valid");
    let store2 = StoreId::parse("store-2").expect("valid");
    let central = acl::central_user_on(Placement::Cluster, "central", &acl::password());
    let s1 = acl::store_user_on(Placement::Cluster, &store1, &acl::password());
    let s2 = acl::store_user_on(Placement::Cluster, &store2, &acl::password());
    cluster
        .set_users(&[central.clone(), s1.clone(), s2.clone()])
        .await;

    // Central and store-1 run on the cluster with those users only.
    let dir = tempfile::tempdir().expect("dir");
    let broker = |seeds: String| -> Arc<dyn Broker> {
        Arc::new(RedisBroker::new(RedisConfig::cluster(seeds)).expect("broker"))
    };
    let central_node = CentralNode::start(
        CentralConfig {
            stores: vec![store1.clone(), store2.clone()],
            heartbeat_timeout: test_heartbeat().timeout,
            ..CentralConfig::new(DbConfig::new(dir.path().join("c.db").display().to_string()))
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        broker(cluster.seeds_for(&central)),
    )
    .await
    .expect("central starts");
    let store_node = StoreNode::start(
        StoreConfig {
            heartbeat: test_heartbeat(),
            ..StoreConfig::new(
                store1.clone(),
                DbConfig::new(dir.path().join("s.db").display().to_string()),
            )
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        Some(broker(cluster.seeds_for(&s1))),
    )
    .await
    .expect("store starts");
    let central_api = Api::new(format!("http://{}", central_node.addr()));
    let store_api = Api::new(format!("http://{}", store_node.addr()));
    store_api.create_item("p1").await.expect(201);
    store_api.set_quantity("p1", 5).await.expect(204);
    eventually("p1 at Central", Duration::from_secs(10), async || {
        central_api.get("/inventory/store-1/p1").await.json()["quantity"] == 5
    })
    .await;
    eventually("store-1 online", Duration::from_secs(10), async || {
        central_api
            .get("/stores")
            .await
            .json()
            .as_array()
            .is_some_and(|stores| {
                stores
                    .iter()
                    .any(|s| s["storeId"] == "store-1" && s["online"] == true)
            })
    })
    .await;
    let bought = central_api
        .post("/purchase/store-1/p1", &serde_json::json!({"quantity": 2}))
        .await;
    assert_eq!(bought.status, 200, "{}", bought.text);
    assert_eq!(bought.json()["quantity"], 3, "{}", bought.text);
    store_api
        .get("/inventory/p1")
        .await
        .expect(200)
        .json()
        .get("quantity")
        .filter(|q| *q == 3)
        .expect("the store sold it");

    // store-1's credentials, by hand, on every master: each knows the user, and each refuses
    // store-2's keys and store-1's commands stream before routing anything.
    let own_events = cluster_key(&topology::events_stream(&store1));
    let foreign = [
        cluster_key(&topology::events_stream(&store2)),
        cluster_key(&topology::commands_stream(&store2)),
        cluster_key(&topology::commands_stream(&store1)),
        topology::events_stream(&store2),
    ];
    for address in cluster.nodes().addresses() {
        let mut conn = connect(&s1.url(&address)).await;
        for key in &foreign {
            assert!(
                xadd_is_noperm(&mut conn, key).await,
                "{address}: store-1 may append to {key}"
            );
        }
        assert!(
            is_noperm(
                redis::cmd("SET")
                    .arg(cluster_key(&topology::heartbeat_key(&store2)))
                    .arg(1)
                    .query_async(&mut conn)
                    .await
            ),
            "{address}: store-1 may set store-2's heartbeat"
        );
        assert!(
            is_noperm(
                redis::cmd("XRANGE")
                    .arg(cluster_key(&topology::commands_stream(&store2)))
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
            ),
            "{address}: store-1 may read store-2's commands"
        );
        assert!(
            !xadd_is_noperm(&mut conn, &own_events).await,
            "{address}: store-1 may not append to its own events stream"
        );
    }
    store_node.shutdown().await;
    central_node.shutdown().await;
}
