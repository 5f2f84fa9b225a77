//! The change feed (`GET /events`): a client sees item changes, resolved purchases and stores
//! going offline, filtered by store; resumes with `Last-Event-ID`; and a client that never reads
//! is cut off while nothing queues up for it.

use std::time::Duration;

use serde_json::json;
use stockmesh_central::feed::Change;
use stockmesh_core::StoreId;
use stockmesh_testkit::cluster::TestCluster;
use stockmesh_testkit::sse::{SseClient, SseEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(10);

fn is_item(event: &SseEvent, store: &str, product: &str, quantity: i64) -> bool {
    let data = event.json();
    event.event == "item"
        && data["storeId"] == store
        && data["productId"] == product
        && data["quantity"] == quantity
}

#[tokio::test]
async fn a_client_follows_changes_purchases_and_liveness_and_resumes_with_last_event_id() {
    let cluster = TestCluster::start(2).await;
    let url = format!("{}/events", cluster.central.base);
    let mut all = SseClient::connect(&url, None).await;
    let mut only_one = SseClient::connect(&format!("{url}?storeId=store-1"), None).await;

    for i in [1, 2] {
        cluster.store(i).create_item("feed-p").await.expect(201);
        cluster.store(i).set_quantity("feed-p", 7).await.expect(204);
    }
    // The stores' events arrive in either order.
    let (last, before) = all
        .until("both stores' feed-p = 7", LIMIT, |e| {
            is_item(e, "store-1", "feed-p", 7) || is_item(e, "store-2", "feed-p", 7)
        })
        .await;
    let other = if last.json()["storeId"] == "store-1" {
        "store-2"
    } else {
        "store-1"
    };
    let (_, between) = all
        .until("the other store's feed-p = 7", LIMIT, |e| {
            is_item(e, other, "feed-p", 7)
        })
        .await;
    let first = before
        .into_iter()
        .chain(std::iter::once(last))
        .chain(between)
        .find(|e| e.event == "item")
        .expect("an item event");
    let (_, skipped) = only_one
        .until("store-1 feed-p = 7", LIMIT, |e| {
            is_item(e, "store-1", "feed-p", 7)
        })
        .await;
    assert!(
        skipped.iter().all(|e| e.json()["storeId"] == "store-1"),
        "the filter let another store through: {skipped:?}"
    );

    // A remote purchase resolved by the store is announced, with the item it left.
    cluster
        .central
        .post("/purchase/store-1/feed-p", &json!({"quantity": 2}))
        .await
        .expect(200);
    let (purchase, skipped) = all
        .until("purchase", LIMIT, |e| e.event == "purchase")
        .await;
    assert_eq!(purchase.json()["status"], "CONFIRMED");
    assert_eq!(purchase.json()["quantity"], 5);
    // The view's change is published with the resolution, item first.
    assert!(
        skipped.iter().any(|e| is_item(e, "store-1", "feed-p", 5)),
        "no item change with the purchase: {skipped:?}"
    );

    // Resuming after the first event replays what followed it, in order, with no reset.
    let first_id = first.id.clone().expect("events carry ids");
    let mut resumed = SseClient::connect(&url, Some(&first_id)).await;
    let (_, replayed) = resumed
        .until("the purchase again", LIMIT, |e| e.event == "purchase")
        .await;
    assert!(replayed.iter().all(|e| e.event != "reset"), "{replayed:?}");
    for store in ["store-1", "store-2"] {
        assert!(
            first.json()["storeId"] == store && first.json()["quantity"] == 7
                || replayed.iter().any(|e| is_item(e, store, "feed-p", 7)),
            "the replay misses {store}'s change after the id: {replayed:?}"
        );
    }
    assert!(
        replayed.iter().all(|e| e.id != first.id),
        "the replay repeats the event it resumes after"
    );

    // An id this replica never gave starts with a reset.
    let mut stranger = SseClient::connect(&url, Some("1-1")).await;
    let reset = stranger.next(LIMIT).await.expect("an event");
    assert_eq!(reset.event, "reset");

    // A store that disconnects is announced offline.
    cluster
        .store(2)
        .post_empty("/disconnected")
        .await
        .expect(200);
    let (offline, _) = all
        .until("store-2 offline", LIMIT, |e| {
            e.event == "store" && e.json()["storeId"] == "store-2" && e.json()["online"] == false
        })
        .await;
    assert!(offline.id.is_some());
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_and_nothing_queues_for_it() {
    let cluster = TestCluster::start(1).await;
    let service = cluster.central_service().expect("central runs").clone();
    let feed = service.feed().clone();
    let limits = feed.limits();
    let addr = cluster
        .central
        .base
        .trim_start_matches("http://")
        .to_owned();

    // A client with a tiny receive window that sends its request and then never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stream = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .expect("request");
    stockmesh_testkit::cluster::eventually("the client subscribed", LIMIT, async || {
        feed.clients() >= 1
    })
    .await;

    // 100,000 changes of ~170 bytes: 17 MB, far more than any socket buffer holds.
    let store = StoreId::parse("store-1").expect("valid");
    for chunk in 0..100 {
        feed.publish((0..1000).map(|i| Change::Store {
            store_id: store.clone(),
            online: (chunk + i) % 2 == 0,
            heartbeat_age_ms: Some(i64::from(i)),
        }));
        assert!(
            feed.queued() <= limits.client_buffer,
            "{} events queued for one client",
            feed.queued()
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(feed.clients(), 0, "the slow client is still fed");
    assert_eq!(feed.queued(), 0);

    // After the grace period the server closes the connection: reading reaches the end of the
    // stream having received only what the buffers held, not the 17 MB published.
    let mut received = Vec::new();
    let read = tokio::time::timeout(limits.hangup_grace + LIMIT, async {
        tokio::time::sleep(limits.hangup_grace + Duration::from_millis(500)).await;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    assert!(
        received.len() < 8 * 1024 * 1024,
        "{} bytes reached a client that never read",
        received.len()
    );
    // The client that reads on keeps working.
    let mut fresh = SseClient::connect(&format!("{}/events", cluster.central.base), None).await;
    cluster.store(1).create_item("after").await.expect(201);
    fresh
        .until("the new item", LIMIT, |e| {
            e.event == "item" && e.json()["productId"] == "after"
        })
        .await;
    cluster.shutdown().await;
}
