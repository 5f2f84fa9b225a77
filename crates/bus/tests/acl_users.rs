//! A private `redis-server` started with ACL users (as the fault suite runs it): only the users
//! of its ACL file can connect, each within its rights (a store advertises its summary, Central
//! reads it), and they survive a kill -9 and restart and a `FLUSHALL`.

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

    server.restart().await.expect("restarts");
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
