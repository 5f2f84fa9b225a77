//! Fault tests of the bus on a real, private `redis-server`: broker crashes, consumer crashes,
//! poison entries; and on a private three-master Redis Cluster: many stores spread over every
//! master, a master killed and restarted, a master with ACL users restarted still guarded. Each
//! checks the guarantees: nothing lost, every effect applied exactly once, in per-store order,
//! and a bad entry never blocks the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;
use stockmesh_bus::broker::{Broker, BrokerError, Delivery, GroupInfo, Outgoing};
use stockmesh_bus::{
    ConsumeOutcome, Consumer, ConsumerConfig, Database, DbConfig, Handler, HandlerError, Outbox,
    OutboxSignal, RedisBroker, RedisConfig, Relay, RelayConfig, StreamSet, topology,
};
use stockmesh_core::{Envelope, Event, ItemState, ProductId, Quantity, StoreId, Version};
use stockmesh_testkit::{Persistence, RedisClusterServer, RedisServer};
use tokio_util::sync::CancellationToken;

static EFFECTS: Migrator = sqlx::migrate!("tests/migrations");
static NO_MIGRATIONS: Migrator = sqlx::migrate!("tests/no_migrations");

const GROUP: &str = "central";

async fn database(dir: &tempfile::TempDir, name: &str, migrations: &'static Migrator) -> Database {
    let path = dir.path().join(name);
    Database::open(
        &DbConfig::new(path.display().to_string()),
        &stockmesh_bus::Schema::sqlite(migrations),
    )
    .await
    .expect("database opens")
}

fn store() -> StoreId {
    StoreId::parse("store-1").expect("valid")
}

fn event(version: u64) -> Envelope {
    event_of(&store(), version)
}

fn event_of(store: &StoreId, version: u64) -> Envelope {
    let mut v = Version::FIRST;
    for _ in 1..version {
        v = v.next();
    }
    Envelope::new(
        store.clone(),
        Event::InventoryItemUpdated(ItemState {
            product_id: ProductId::parse("p").expect("valid"),
            quantity: Quantity::new(i64::try_from(version % 1000).expect("small")).expect("valid"),
            reserved: Quantity::ZERO,
            version: v,
            updated_at: stockmesh_core::now(),
        }),
        None,
    )
}

/// Writes `count` events to the outbox, 500 per transaction.
async fn fill_outbox(db: &Database, count: u64) {
    let stream = topology::events_stream(&store());
    let mut version = 1;
    while version <= count {
        let mut tx = db.writer.begin().await.expect("begin");
        for _ in 0..500.min(count - version + 1) {
            Outbox::append(&mut tx, &stream, &event(version))
                .await
                .expect("append");
            version += 1;
        }
        tx.commit().await.expect("commit");
    }
}

/// Applies events as rows of `effects`, deduplicated through the inbox in the same transaction.
/// It can be told to hang after committing (a crash before the ack) or before (a crash holding
/// entries).
struct Recorder {
    db: Database,
    hang_after_commit: AtomicBool,
    hang_before_commit: AtomicBool,
    reached: tokio::sync::Notify,
}

impl Recorder {
    fn new(db: Database) -> Arc<Self> {
        Arc::new(Self {
            db,
            hang_after_commit: AtomicBool::new(false),
            hang_before_commit: AtomicBool::new(false),
            reached: tokio::sync::Notify::new(),
        })
    }

    async fn versions(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT version FROM effects ORDER BY seq")
            .fetch_all(&self.db.reader)
            .await
            .expect("effects readable")
    }

    async fn distinct_events(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(DISTINCT event_id) FROM effects")
            .fetch_one(&self.db.reader)
            .await
            .expect("effects readable")
    }
}

#[async_trait]
impl Handler for Recorder {
    type Committed = ();

    async fn apply(&self, tx: &mut AnyConnection, fresh: &[&Envelope]) -> Result<(), HandlerError> {
        if self.hang_before_commit.load(Ordering::SeqCst) {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        for envelope in fresh {
            let Event::InventoryItemUpdated(item) = &envelope.event else {
                return Err(HandlerError::Permanent("unexpected event".into()));
            };
            sqlx::query("INSERT INTO effects (event_id, store_id, version) VALUES (?, ?, ?)")
                .bind(envelope.id.to_string())
                .bind(envelope.store_id.as_str())
                .bind(i64::from(item.version))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    async fn after_commit(&self, (): ()) {
        if self.hang_after_commit.load(Ordering::SeqCst) {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

fn consumer_config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        claim_idle: Duration::from_millis(300),
        reclaim_every: Duration::from_millis(200),
        ..ConsumerConfig::new(GROUP, name)
    }
}

fn consumer(broker: &Arc<dyn Broker>, recorder: &Arc<Recorder>, name: &str) -> Consumer<Recorder> {
    Consumer::new(
        broker.clone(),
        recorder.db.clone(),
        recorder.clone(),
        StreamSet::new([topology::events_stream(&store())]),
        None,
        consumer_config(name),
    )
}

fn redis_broker(server: &RedisServer) -> Arc<dyn Broker> {
    Arc::new(RedisBroker::new(RedisConfig::new(server.url())).expect("broker"))
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Entries of `stream` delivered to the group and not acked.
async fn pending(broker: &Arc<dyn Broker>, stream: &str) -> u64 {
    broker
        .group_info(stream, GROUP)
        .await
        .expect("group info")
        .pending
}

/// (a) Redis is killed -9 while 10,000 outbox rows are relayed, then restarted on its AOF:
/// every event arrives, each applied exactly once, in the store's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_relay_loses_nothing_and_applies_everything_once_in_order() {
    const N: u64 = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = RedisServer::start_with(Persistence::AofAlways).await;
    let broker = redis_broker(&server);
    let producer = database(&dir, "producer.db", &NO_MIGRATIONS).await;
    let recorder = Recorder::new(database(&dir, "consumer.db", &EFFECTS).await);
    fill_outbox(&producer, N).await;

    let cancel = CancellationToken::new();
    let relay = Relay::new(
        "store-1",
        producer.clone(),
        broker.clone(),
        OutboxSignal::default(),
        Default::default(),
        RelayConfig {
            batch_size: 200,
            backoff_max: Duration::from_millis(200),
            ..RelayConfig::default()
        },
    );
    let tasks = [
        tokio::spawn(relay.run(cancel.clone())),
        tokio::spawn(consumer(&broker, &recorder, "c1").run(cancel.clone())),
    ];

    wait_for(
        "a fifth of the rows to be published",
        Duration::from_secs(30),
        async || {
            Outbox::backlog(&producer.reader)
                .await
                .expect("backlog")
                .pending
                <= 8_000
        },
    )
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stalled = Outbox::backlog(&producer.reader)
        .await
        .expect("backlog")
        .pending;
    assert!(stalled > 0, "the crash must hit mid-relay");
    server.restart().await;

    wait_for("every event applied", Duration::from_secs(60), async || {
        recorder.distinct_events().await == i64::try_from(N).expect("small")
    })
    .await;
    cancel.cancel();
    for task in tasks {
        task.await.expect("worker");
    }
    let versions = recorder.versions().await;
    let expected: Vec<i64> = (1..=i64::try_from(N).expect("small")).collect();
    assert_eq!(
        versions.len(),
        expected.len(),
        "each event applied exactly once"
    );
    assert!(versions == expected, "effects applied out of order");
    assert_eq!(
        Outbox::backlog(&producer.reader)
            .await
            .expect("backlog")
            .pending,
        0
    );
    let info = broker
        .group_info(&topology::events_stream(&store()), GROUP)
        .await
        .expect("info");
    assert_eq!(info.pending, 0, "nothing left pending");
}

async fn publish_events(broker: &Arc<dyn Broker>, versions: std::ops::RangeInclusive<u64>) {
    try_publish(broker, &[store()], versions)
        .await
        .expect("publish");
}

/// Publishes `versions` of every store of `stores`, in one batch.
async fn try_publish(
    broker: &Arc<dyn Broker>,
    stores: &[StoreId],
    versions: std::ops::RangeInclusive<u64>,
) -> Result<(), stockmesh_bus::BrokerError> {
    publish_rows(broker, &rows(stores, versions)).await
}

/// (stream, envelope JSON) of `versions` of every store of `stores`.
fn rows(stores: &[StoreId], versions: std::ops::RangeInclusive<u64>) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for store in stores {
        for version in versions.clone() {
            rows.push((
                topology::events_stream(store),
                event_of(store, version).to_json(),
            ));
        }
    }
    rows
}

/// Publishes `rows` in one batch.
async fn publish_rows(
    broker: &Arc<dyn Broker>,
    rows: &[(String, String)],
) -> Result<(), stockmesh_bus::BrokerError> {
    let entries: Vec<_> = rows
        .iter()
        .map(|(stream, data)| Outgoing {
            stream,
            event_type: "INVENTORY_ITEM_UPDATED",
            data,
        })
        .collect();
    broker.publish(&entries, 1_000_000).await
}

/// (b) A consumer dies after committing the effect but before acking: the redelivery to its
/// successor is a no-op.
#[tokio::test]
async fn b_a_consumer_killed_between_commit_and_ack_causes_no_second_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start().await;
    let broker = redis_broker(&server);
    let recorder = Recorder::new(database(&dir, "consumer.db", &EFFECTS).await);
    let stream = topology::events_stream(&store());
    broker.ensure_group(&stream, GROUP).await.expect("group");
    publish_events(&broker, 1..=20).await;

    recorder.hang_after_commit.store(true, Ordering::SeqCst);
    let doomed = tokio::spawn(consumer(&broker, &recorder, "c1").run(CancellationToken::new()));
    recorder.reached.notified().await;
    doomed.abort();
    let _ = doomed.await;
    assert_eq!(recorder.distinct_events().await, 20, "effects committed");
    assert_eq!(pending(&broker, &stream).await, 20, "not acked");

    recorder.hang_after_commit.store(false, Ordering::SeqCst);
    let mut successor = consumer(&broker, &recorder, "c1");
    let outcome = successor.try_once().await;
    assert!(
        matches!(
            outcome,
            ConsumeOutcome::Handled {
                applied: 20,
                dead: 0,
                retry: 0
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        recorder.versions().await.len(),
        20,
        "no effect applied twice"
    );
    successor.settle().await.expect("acks answered");
    assert_eq!(pending(&broker, &stream).await, 0);
}

/// (c) A consumer dies holding pending entries it never applied: another consumer of the group
/// reclaims them once they are idle long enough, and applies each once.
#[tokio::test]
async fn c_entries_held_by_a_dead_consumer_are_reclaimed_by_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start().await;
    let broker = redis_broker(&server);
    let recorder = Recorder::new(database(&dir, "consumer.db", &EFFECTS).await);
    let stream = topology::events_stream(&store());
    broker.ensure_group(&stream, GROUP).await.expect("group");
    publish_events(&broker, 1..=30).await;

    recorder.hang_before_commit.store(true, Ordering::SeqCst);
    let doomed = tokio::spawn(consumer(&broker, &recorder, "dies").run(CancellationToken::new()));
    recorder.reached.notified().await;
    doomed.abort();
    let _ = doomed.await;
    assert_eq!(recorder.distinct_events().await, 0);
    assert_eq!(pending(&broker, &stream).await, 30);

    recorder.hang_before_commit.store(false, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let rescuer = tokio::spawn(consumer(&broker, &recorder, "rescuer").run(cancel.clone()));
    wait_for(
        "the rescuer to apply everything",
        Duration::from_secs(10),
        async || recorder.distinct_events().await == 30,
    )
    .await;
    wait_for(
        "the pending list to empty",
        Duration::from_secs(5),
        async || pending(&broker, &stream).await == 0,
    )
    .await;
    cancel.cancel();
    rescuer.await.expect("rescuer");
    assert_eq!(recorder.versions().await, (1..=30).collect::<Vec<i64>>());
}

/// (d) An undecodable entry goes to the dead-letter stream with its reason; the entries behind
/// it are applied.
#[tokio::test]
async fn d_a_poison_entry_is_dead_lettered_and_the_rest_flow_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start().await;
    let broker = redis_broker(&server);
    let recorder = Recorder::new(database(&dir, "consumer.db", &EFFECTS).await);
    let stream = topology::events_stream(&store());
    broker.ensure_group(&stream, GROUP).await.expect("group");
    publish_events(&broker, 1..=2).await;
    let poison = Outgoing {
        stream: &stream,
        event_type: "INVENTORY_ITEM_UPDATED",
        data: "{not json",
    };
    broker.publish(&[poison], 1_000_000).await.expect("publish");
    publish_events(&broker, 3..=4).await;

    let mut worker = consumer(&broker, &recorder, "c1");
    let mut dead = 0;
    for _ in 0..3 {
        if let ConsumeOutcome::Handled { dead: d, .. } = worker.try_once().await {
            dead += d;
        }
    }
    assert_eq!(dead, 1);
    assert_eq!(recorder.versions().await, [1, 2, 3, 4]);
    worker.settle().await.expect("acks answered");
    let letters = broker
        .entries(&topology::dead_letter_stream(&stream))
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].data.as_deref(), Some(&b"{not json"[..]));
    assert_eq!(pending(&broker, &stream).await, 0);
}

/// An event the handler keeps failing on is retried, then dead-lettered after `max_deliveries`,
/// without holding back the events around it.
#[tokio::test]
async fn an_event_that_always_fails_is_dead_lettered_after_the_delivery_limit() {
    struct FailsOnVersion3(Arc<Recorder>);
    #[async_trait]
    impl Handler for FailsOnVersion3 {
        type Committed = ();

        async fn apply(
            &self,
            tx: &mut AnyConnection,
            fresh: &[&Envelope],
        ) -> Result<(), HandlerError> {
            let bad = fresh.iter().any(
                |e| matches!(&e.event, Event::InventoryItemUpdated(i) if i.version.get() == 3),
            );
            if bad {
                return Err(HandlerError::Transient(anyhow::anyhow!("database says no")));
            }
            self.0.apply(tx, fresh).await
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let broker: Arc<dyn Broker> = Arc::new(stockmesh_bus::MemoryBroker::new());
    let recorder = Recorder::new(database(&dir, "consumer.db", &EFFECTS).await);
    let stream = topology::events_stream(&store());
    broker.ensure_group(&stream, GROUP).await.expect("group");
    publish_events(&broker, 1..=5).await;
    let mut worker = Consumer::new(
        broker.clone(),
        recorder.db.clone(),
        Arc::new(FailsOnVersion3(recorder.clone())),
        StreamSet::new([stream.clone()]),
        None,
        ConsumerConfig {
            max_deliveries: 3,
            ..consumer_config("c1")
        },
    );
    for _ in 0..10 {
        worker.try_once().await;
    }
    worker.settle().await.expect("acks answered");
    assert_eq!(recorder.versions().await, [1, 2, 4, 5]);
    let letters = broker
        .entries(&topology::dead_letter_stream(&stream))
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(pending(&broker, &stream).await, 0);
}

/// A broker whose acks wait at a gate, and fail while told to: to see what a consumer does while
/// its acks are slow or lost. Everything else is the in-process broker's.
#[derive(Debug)]
struct GatedAcks {
    inner: stockmesh_bus::MemoryBroker,
    open: tokio::sync::watch::Sender<bool>,
    failing: AtomicBool,
    sent: std::sync::atomic::AtomicUsize,
}

impl GatedAcks {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: stockmesh_bus::MemoryBroker::new(),
            open: tokio::sync::watch::Sender::new(true),
            failing: AtomicBool::new(false),
            sent: std::sync::atomic::AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Broker for GatedAcks {
    async fn publish(&self, entries: &[Outgoing<'_>], max_len: u64) -> Result<(), BrokerError> {
        self.inner.publish(entries, max_len).await
    }
    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BrokerError> {
        self.inner.ensure_group(stream, group).await
    }
    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BrokerError> {
        self.inner
            .read_new(group, consumer, streams, count, block)
            .await
    }
    async fn read_pending(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<Delivery>, BrokerError> {
        self.inner
            .read_pending(group, consumer, stream, after, count)
            .await
    }
    async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, BrokerError> {
        self.inner
            .claim_idle(group, consumer, stream, min_idle, count)
            .await
    }
    async fn ack(&self, group: &str, stream: &str, ids: &[String]) -> Result<(), BrokerError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        let _ = self.open.subscribe().wait_for(|open| *open).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(BrokerError::Unavailable("ack lost on purpose".into()));
        }
        self.inner.ack(group, stream, ids).await
    }
    async fn dead_letter(
        &self,
        group: &str,
        entry: &Delivery,
        reason: &str,
    ) -> Result<(), BrokerError> {
        self.inner.dead_letter(group, entry, reason).await
    }
    async fn beat(&self, store: &StoreId, at: i64, ttl: Duration) -> Result<(), BrokerError> {
        self.inner.beat(store, at, ttl).await
    }
    async fn withdraw(&self, store: &StoreId) -> Result<(), BrokerError> {
        self.inner.withdraw(store).await
    }
    async fn advertise(
        &self,
        store: &StoreId,
        summary: &str,
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        self.inner.advertise(store, summary, ttl).await
    }
    async fn advertisement(&self, store: &StoreId) -> Result<Option<String>, BrokerError> {
        self.inner.advertisement(store).await
    }
    async fn last_beat(&self, store: &StoreId) -> Result<Option<i64>, BrokerError> {
        self.inner.last_beat(store).await
    }
    async fn stores(&self) -> Result<Vec<StoreId>, BrokerError> {
        self.inner.stores().await
    }
    async fn claim_central(
        &self,
        database: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BrokerError> {
        self.inner.claim_central(database, ttl).await
    }
    async fn release_central(&self, database: &str) -> Result<(), BrokerError> {
        self.inner.release_central(database).await
    }
    async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo, BrokerError> {
        self.inner.group_info(stream, group).await
    }
    async fn entries(&self, stream: &str) -> Result<Vec<Delivery>, BrokerError> {
        self.inner.entries(stream).await
    }
    async fn ping(&self) -> Result<(), BrokerError> {
        self.inner.ping().await
    }
    fn kind(&self) -> &'static str {
        "gated"
    }
}

/// Consumer `c1` of a [`GatedAcks`] broker recovering every `reclaim_every`, past its first
/// (recovery) pass; with the broker both as itself and as a `Broker`, the recorder and the stream.
async fn consumer_of_gated_acks(
    dir: &tempfile::TempDir,
    reclaim_every: Duration,
) -> (
    Arc<GatedAcks>,
    Arc<dyn Broker>,
    Arc<Recorder>,
    String,
    Consumer<Recorder>,
) {
    let gated = GatedAcks::new();
    let broker: Arc<dyn Broker> = gated.clone();
    let recorder = Recorder::new(database(dir, "consumer.db", &EFFECTS).await);
    let stream = topology::events_stream(&store());
    broker.ensure_group(&stream, GROUP).await.expect("group");
    let mut worker = Consumer::new(
        broker.clone(),
        recorder.db.clone(),
        recorder.clone(),
        StreamSet::new([stream.clone()]),
        None,
        ConsumerConfig {
            reclaim_every,
            ..consumer_config("c1")
        },
    );
    assert!(matches!(worker.try_once().await, ConsumeOutcome::Idle));
    (gated, broker, recorder, stream, worker)
}

/// A consumer does not wait for the previous batch's ack before it reads and applies the next
/// (at `appendfsync always` each ack is one more fsync of Redis's log); the acks all arrive.
#[tokio::test]
async fn the_next_batch_does_not_wait_for_the_previous_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No periodic recovery pass during the test: that one does wait for the acks.
    let (gated, broker, recorder, stream, mut worker) =
        consumer_of_gated_acks(&dir, Duration::from_secs(3600)).await;

    gated.open.send_replace(false);
    for version in 1..=3 {
        publish_events(&broker, version..=version).await;
        let outcome = tokio::time::timeout(Duration::from_secs(2), worker.try_once())
            .await
            .expect("the pass does not wait for the held acks");
        assert!(
            matches!(outcome, ConsumeOutcome::Handled { applied: 1, .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(recorder.versions().await, [1, 2, 3]);
    // The acks go out from tasks of their own: each is sent once its task runs.
    wait_for("every ack sent", Duration::from_secs(2), async || {
        gated.sent.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(pending(&broker, &stream).await, 3, "none answered yet");

    gated.open.send_replace(true);
    worker.settle().await.expect("acks answered");
    assert_eq!(pending(&broker, &stream).await, 0);
}

/// An ack lost on its way leaves its entries pending; the consumer's next pass recovers them,
/// without a second effect, and acks them.
#[tokio::test]
async fn a_lost_ack_is_recovered_by_the_next_pass_without_a_second_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gated, broker, recorder, stream, mut worker) =
        consumer_of_gated_acks(&dir, consumer_config("c1").reclaim_every).await;

    gated.failing.store(true, Ordering::SeqCst);
    publish_events(&broker, 1..=5).await;
    let outcome = worker.try_once().await;
    assert!(
        matches!(outcome, ConsumeOutcome::Handled { applied: 5, .. }),
        "{outcome:?}"
    );
    // Let the lost ack come back as lost before the next pass.
    wait_for("the ack to fail", Duration::from_secs(2), async || {
        gated.sent.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::task::yield_now().await;
    gated.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        pending(&broker, &stream).await,
        5,
        "the lost ack left them pending"
    );

    let outcome = worker.try_once().await;
    assert!(
        matches!(outcome, ConsumeOutcome::Handled { applied: 5, .. }),
        "the pass after a lost ack recovers the entries: {outcome:?}"
    );
    worker.settle().await.expect("acks answered");
    assert_eq!(
        recorder.versions().await,
        [1, 2, 3, 4, 5],
        "no second effect"
    );
    assert_eq!(pending(&broker, &stream).await, 0);
}

/// The relay publishes nothing while disconnected and drains at once on reconnect.
#[tokio::test]
async fn the_relay_pauses_while_disconnected_and_drains_on_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker: Arc<dyn Broker> = Arc::new(stockmesh_bus::MemoryBroker::new());
    let producer = database(&dir, "producer.db", &NO_MIGRATIONS).await;
    fill_outbox(&producer, 50).await;
    let link = stockmesh_bus::Connectivity::new(stockmesh_bus::LinkState::Disconnected);
    let cancel = CancellationToken::new();
    let signal = OutboxSignal::default();
    let mut relay = Relay::new(
        "store-1",
        producer.clone(),
        broker.clone(),
        signal.clone(),
        link.clone(),
        RelayConfig {
            poll_interval: Duration::from_secs(3600),
            ..RelayConfig::default()
        },
    );
    assert!(matches!(
        relay.try_once().await.expect("db"),
        stockmesh_bus::RelayOutcome::Disconnected
    ));
    let task = tokio::spawn(relay.run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stream = topology::events_stream(&store());
    assert!(broker.entries(&stream).await.expect("entries").is_empty());

    link.set(stockmesh_bus::LinkState::Connected);
    wait_for("the outbox to drain", Duration::from_secs(2), async || {
        broker.entries(&stream).await.expect("entries").len() == 50
    })
    .await;
    // New commits are relayed at once, not at the (hour-long) poll.
    fill_outbox(&producer, 1).await;
    signal.notify();
    wait_for("the new row", Duration::from_secs(2), async || {
        broker.entries(&stream).await.expect("entries").len() == 51
    })
    .await;
    cancel.cancel();
    task.await.expect("relay");
}

/// A relay that drained its outbox waits for the next commit's signal instead of reading again
/// at once: rows committed while it reads or publishes are never left behind (their signal is
/// kept), however the commits and batches interleave, without the (hour-long) fallback poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_committed_while_the_relay_publishes_are_never_left_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker: Arc<dyn Broker> = Arc::new(stockmesh_bus::MemoryBroker::new());
    let producer = database(&dir, "producer.db", &NO_MIGRATIONS).await;
    let signal = OutboxSignal::default();
    let relay = Relay::new(
        "store-1",
        producer.clone(),
        broker.clone(),
        signal.clone(),
        stockmesh_bus::Connectivity::default(),
        RelayConfig {
            batch_size: 4,
            poll_interval: Duration::from_secs(3600),
            ..RelayConfig::default()
        },
    );
    let cancel = CancellationToken::new();
    let task = tokio::spawn(relay.run(cancel.clone()));
    let stream = topology::events_stream(&store());
    for round in 0..300u64 {
        fill_outbox(&producer, 1 + round % 6).await;
        signal.notify();
        if round % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let committed: u64 = (0..300u64).map(|round| 1 + round % 6).sum();
    wait_for("every committed row", Duration::from_secs(10), async || {
        broker.entries(&stream).await.expect("entries").len() as u64 == committed
    })
    .await;
    cancel.cancel();
    task.await.expect("relay");
}

/// The relay stamps what it published in the background: while the stamp waits for the
/// database's writer (a long group commit, a slow disk), the next rows are still published; once
/// the writer is free every published row is stamped.
#[tokio::test]
async fn the_relay_publishes_on_while_its_stamp_waits_for_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker: Arc<dyn Broker> = Arc::new(stockmesh_bus::MemoryBroker::new());
    let producer = database(&dir, "producer.db", &NO_MIGRATIONS).await;
    fill_outbox(&producer, 3).await;
    let mut relay = Relay::new(
        "store-1",
        producer.clone(),
        broker.clone(),
        OutboxSignal::default(),
        stockmesh_bus::Connectivity::default(),
        RelayConfig {
            batch_size: 1,
            ..RelayConfig::default()
        },
    );
    let published = |outcome| matches!(outcome, stockmesh_bus::RelayOutcome::Published(1));
    assert!(published(relay.try_once().await.expect("db")));

    // Hold the writer: a write that waits until released.
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let (entered, writer_held) = tokio::sync::oneshot::channel::<()>();
    let holder = producer.clone();
    let holding = tokio::spawn(async move {
        holder
            .write(move |_conn| {
                Box::pin(async move {
                    let _ = entered.send(());
                    let _ = held.await;
                    Ok::<_, stockmesh_bus::writer::WriteError>(())
                })
            })
            .await
    });
    writer_held.await.expect("the writer is held");
    // The first row's stamp is due: it must not hold up the next rows.
    tokio::time::sleep(Duration::from_millis(60)).await;
    for _ in 0..2 {
        let outcome = tokio::time::timeout(Duration::from_secs(2), relay.try_once())
            .await
            .expect("publishing does not wait for the stamp")
            .expect("db");
        assert!(published(outcome));
    }
    let stream = topology::events_stream(&store());
    assert_eq!(broker.entries(&stream).await.expect("entries").len(), 3);

    let _ = release.send(());
    holding.await.expect("holder").expect("write");
    relay.flush_marks().await.expect("stamped");
    let unstamped: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&producer.reader)
            .await
            .expect("outbox readable");
    assert_eq!(unstamped, 0, "every published row stamped");
}

fn cluster_broker(cluster: &RedisClusterServer) -> Arc<dyn Broker> {
    Arc::new(RedisBroker::new(RedisConfig::cluster(cluster.seeds())).expect("broker"))
}

fn stores(count: usize) -> Vec<StoreId> {
    (1..=count)
        .map(|i| StoreId::parse(format!("store-{i}")).expect("valid"))
        .collect()
}

fn cluster_consumer(
    broker: &Arc<dyn Broker>,
    recorder: &Arc<Recorder>,
    stores: &[StoreId],
) -> Consumer<Recorder> {
    Consumer::new(
        broker.clone(),
        recorder.db.clone(),
        recorder.clone(),
        StreamSet::new(stores.iter().map(topology::events_stream)),
        None,
        consumer_config("central-1"),
    )
}

/// `store`'s applied versions, in the order they were applied.
async fn versions_of(recorder: &Recorder, store: &StoreId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM effects WHERE store_id = ? ORDER BY seq")
        .bind(store.as_str())
        .fetch_all(&recorder.db.reader)
        .await
        .expect("effects readable")
}

/// Central's one consumer reads 50 stores whose streams live on all three masters: every event
/// is applied once, in each store's order, though no command may span two hash slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_one_consumer_reads_fifty_stores_spread_over_every_master() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = RedisClusterServer::start().await;
    let broker = cluster_broker(&cluster);
    let recorder = Recorder::new(database(&dir, "central.db", &EFFECTS).await);
    let stores = stores(50);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(cluster_consumer(&broker, &recorder, &stores).run(cancel.clone()));

    try_publish(&broker, &stores, 1..=3).await.expect("publish");
    wait_for("every event applied", Duration::from_secs(30), async || {
        recorder.distinct_events().await == 150
    })
    .await;
    // Published after the consumer went quiet: blocking reads wake up on every partition.
    try_publish(&broker, &stores, 4..=5).await.expect("publish");
    wait_for(
        "the later events applied",
        Duration::from_secs(30),
        async || recorder.distinct_events().await == 250,
    )
    .await;
    cancel.cancel();
    task.await.expect("consumer");

    for store in &stores {
        assert_eq!(
            versions_of(&recorder, store).await,
            [1, 2, 3, 4, 5],
            "{store}"
        );
    }
    let mut placed = Vec::new();
    for node in 0..cluster.nodes().len() {
        let keys = cluster.nodes().keys_on(node, "stockmesh:*:events").await;
        assert!(!keys.is_empty(), "master {node} holds no events stream");
        placed.extend(keys);
    }
    placed.sort();
    let mut expected: Vec<String> = stores
        .iter()
        .map(|s| topology::cluster_key(&topology::events_stream(s)))
        .collect();
    expected.sort();
    assert_eq!(
        placed, expected,
        "each stream once, in its store's partition"
    );
    for store in &stores {
        let info = broker
            .group_info(&topology::events_stream(store), GROUP)
            .await
            .expect("info");
        assert_eq!((info.length, info.pending), (5, 0), "{store}");
    }
}

/// A master holding unread entries is killed -9 and restarted on its port and data (append-only
/// file fsynced on every write): its slots are served again, and the consumer, restarted too,
/// applies every entry Redis acknowledged, once and in order, then goes on with new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_master_killed_and_restarted_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = RedisClusterServer::start_with(Persistence::AofAlways).await;
    let broker = cluster_broker(&cluster);
    let recorder = Recorder::new(database(&dir, "central.db", &EFFECTS).await);
    let stores = stores(6);

    let cancel = CancellationToken::new();
    let task = tokio::spawn(cluster_consumer(&broker, &recorder, &stores).run(cancel.clone()));
    try_publish(&broker, &stores, 1..=5).await.expect("publish");
    wait_for(
        "the first events applied",
        Duration::from_secs(30),
        async || recorder.distinct_events().await == 30,
    )
    .await;
    cancel.cancel();
    task.await.expect("consumer");

    // Acknowledged by Redis, not yet read by anyone.
    try_publish(&broker, &stores, 6..=10)
        .await
        .expect("publish");
    let victim_key = topology::cluster_key(&topology::events_stream(&stores[0]));
    let victim = cluster
        .nodes()
        .node_of(&victim_key)
        .await
        .expect("a master holds the stream");
    cluster.kill(victim);
    assert!(
        try_publish(&broker, &stores[..1], 11..=11).await.is_err(),
        "the dead master's slots are not served"
    );
    // The consumer comes back while the master is still down, and rides out the outage.
    let cancel = CancellationToken::new();
    let task = tokio::spawn(cluster_consumer(&broker, &recorder, &stores).run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart(victim).await;

    // The same entries (same event ids) until the whole batch is accepted: a batch that failed
    // half-way and is sent again is applied once, through the inbox.
    let later = rows(&stores, 11..=15);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(error) = publish_rows(&broker, &later).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing never resumed: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for("every event applied", Duration::from_secs(60), async || {
        recorder.distinct_events().await == 90
    })
    .await;
    cancel.cancel();
    task.await.expect("consumer");
    let expected: Vec<i64> = (1..=15).collect();
    for store in &stores {
        assert_eq!(versions_of(&recorder, store).await, expected, "{store}");
    }
}

/// A cluster started with users: nobody gets in without credentials, a store's user may append
/// to its own events stream only, and the master holding it, killed and restarted on its
/// append-only file, knows the users again (read from its own ACL file) and keeps the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_started_with_users_a_restarted_master_is_guarded_and_keeps_them() {
    use stockmesh_bus::acl::{self, Placement};
    use stockmesh_bus::redis_cluster::RedisCluster;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = StoreId::parse("store-1").expect("valid");
    let admin = acl::admin_user("admin", &acl::password());
    let user = acl::store_user_on(Placement::Cluster, &store, &acl::password());
    let mut cluster = RedisCluster::start_with_users(
        dir.path(),
        3,
        stockmesh_bus::redis_server::Persistence::AofAlways,
        &admin,
        std::slice::from_ref(&user),
    )
    .await
    .expect("the cluster starts with users");
    let as_store = |cluster: &RedisCluster| -> Arc<dyn Broker> {
        let seeds: Vec<String> = cluster.addresses().iter().map(|a| user.url(a)).collect();
        Arc::new(RedisBroker::new(RedisConfig::cluster(seeds.join(","))).expect("broker"))
    };
    let stream = topology::events_stream(&store);
    let entry = Outgoing {
        stream: &stream,
        event_type: "INVENTORY_ITEM_UPDATED",
        data: "{}",
    };
    as_store(&cluster)
        .publish(&[entry], 1000)
        .await
        .expect("store-1 appends to its own events stream");
    let master = cluster
        .node_of(&topology::cluster_key(&stream))
        .await
        .expect("a master holds the stream");
    let anonymous = |address: &str| {
        RedisBroker::new(RedisConfig::new(format!("redis://{address}"))).expect("broker")
    };
    let address = cluster.addresses()[master].clone();
    let refused = anonymous(&address)
        .ping()
        .await
        .expect_err("no credentials");
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");

    cluster.kill(master);
    cluster.restart(master).await.expect("the master restarts");
    let refused = anonymous(&address)
        .ping()
        .await
        .expect_err("no credentials");
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");
    let broker = as_store(&cluster);
    let admin_broker = RedisBroker::new(RedisConfig::cluster(cluster.seeds())).expect("broker");
    assert_eq!(
        admin_broker.entries(&stream).await.expect("entries").len(),
        1,
        "the acknowledged entry survived the kill"
    );
    let other = topology::events_stream(&StoreId::parse("store-2").expect("valid"));
    let forged = Outgoing {
        stream: &other,
        event_type: "INVENTORY_ITEM_UPDATED",
        data: "{}",
    };
    let refused = broker
        .publish(&[forged], 1000)
        .await
        .expect_err("store-1 may not append to store-2's events");
    assert!(
        refused.to_string().to_uppercase().contains("NOPERM"),
        "{refused}"
    );
}
