//! A private `redis-server` started with ACL users (as the fault suite runs it): only the users
//! of its ACL file can connect, each within its rights (a store advertises its summary, Central
//! reads it), and they survive a kill -9 and restart and a `FLUSHALL`; so does what a user wrote
//! in a `MULTI`/`EXEC` transaction (as dead letters are), which a Redis 7.0 replaying its
//! append-only file drops when the default user may not run it.

use std::time::Duration;

use stockmesh_bus::acl;
use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::redis_server::{Persistence, RedisProcess};
use stockmesh_bus::{BrokerError, RedisBroker, RedisConfig, faults, topology};
use stockmesh_core::StoreId;

fn broker(url: String) -> RedisBroker {
    RedisBroker::new(RedisConfig::new(url)).expect("broker")
}

fn refused_with(result: Result<(), BrokerError>, code: &str) -> bool {
    matches!(result, Err(error) if error.to_string().to_uppercase().contains(code))
}

/// What store-1's and Central's users may and may not do, and that a connection without
/// credentials is refused.
async fn assert_users_hold(server: &RedisProcess, store1: &acl::AclUser, central: &acl::AclUser) {
    let store = StoreId::parse("store-1").expect("valid");
    let own = broker(store1.url(&server.address()));
    let events = topology::events_stream(&store);
    let entry = |stream| Outgoing {
        stream,
        event_type: "INVENTORY_ITEM_UPDATED",
        data: "{}",
    };
    own.publish(&[entry(&events)], 100)
        .await
        .expect("store-1 appends to its events stream");
    own.advertise(&store, "{}", Duration::from_secs(5))
        .await
        .expect("store-1 advertises its summary");
    own.beat(&store, 1, Duration::from_secs(5))
        .await
        .expect("store-1 beats");
    let central = broker(central.url(&server.address()));
    assert_eq!(
        central
            .advertisement(&store)
            .await
            .expect("Central reads it"),
        Some("{}".to_owned())
    );
    assert!(
        central
            .last_beat(&store)
            .await
            .expect("Central reads it")
            .is_some()
    );
    // Central claims the consumer group for its database, renews and gives the claim up; a
    // store cannot.
    assert_eq!(
        central
            .claim_central("db-1", Duration::from_secs(5))
            .await
            .expect("Central claims"),
        None
    );
    assert_eq!(
        central
            .claim_central("db-2", Duration::from_secs(5))
            .await
            .expect("Central reads the claim"),
        Some("db-1".to_owned())
    );
    central
        .release_central("db-1")
        .await
        .expect("Central gives it up");
    assert!(refused_with(
        own.claim_central("db-3", Duration::from_secs(5))
            .await
            .map(drop),
        "NOPERM"
    ));
    let commands = topology::commands_stream(&store);
    assert!(refused_with(
        own.publish(&[entry(&commands)], 100).await,
        "NOPERM"
    ));
    let anonymous = broker(format!("redis://{}", server.address()));
    assert!(refused_with(anonymous.ping().await, "NOAUTH"));
}

#[tokio::test]
async fn users_from_the_acl_file_survive_a_restart_and_a_flush() {
    let dir = tempfile::tempdir().expect("dir");
    let admin = acl::admin_user("admin", &acl::password());
    let store = StoreId::parse("store-1").expect("valid");
    let store1 = acl::store_user(&store, &acl::password());
    let central = acl::central_user("central", &acl::password());
    let users = [store1.clone(), central.clone()];
    let mut server =
        RedisProcess::start_with_users(dir.path(), Persistence::AofAlways, &admin, &users)
            .await
            .expect("redis-server starts (install it with `apt-get install redis-server`)");
    assert_users_hold(&server, &store1, &central).await;

    let events = topology::events_stream(&store);
    // A transaction of two writes by store-1's user (a dead letter is one: XADD and XACK; Redis
    // writes a transaction of one write to its append-only file without MULTI).
    let dead = topology::dead_letter_stream(&topology::commands_stream(&store));
    let mut conn = redis::Client::open(store1.url(&server.address()))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("store-1 connects");
    let mut transaction = redis::pipe();
    transaction.atomic();
    for _ in 0..2 {
        transaction
            .cmd("XADD")
            .arg(&dead)
            .arg("*")
            .arg("data")
            .arg("x")
            .ignore();
    }
    let _: () = transaction
        .query_async(&mut conn)
        .await
        .expect("store-1 dead-letters in a transaction");
    // A fresh client each time (the old one's connection dies with the server); same URL.
    let url = server.url();
    let count = async |stream: &str| {
        broker(url.clone())
            .entries(stream)
            .await
            .expect("entries")
            .len()
    };
    let before = count(&events).await;
    assert!(before > 0);
    server.restart().await.expect("restarts");
    assert_eq!(count(&events).await, before, "the restart kept the data");
    assert_eq!(count(&dead).await, 2, "the restart kept the transaction");
    assert_users_hold(&server, &store1, &central).await;

    faults::flush_all(&server.url())
        .await
        .expect("the admin flushes");
    assert_users_hold(&server, &store1, &central).await;

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("users.acl"))
        .expect("the ACL file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
