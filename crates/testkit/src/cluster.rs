//! A whole system in the test's process: a broker (a private `redis-server`, a private
//! three-master Redis Cluster, or the in-process one), Central and N stores, each on port 0 with its own SQLite file, with timings shortened so
//! that tests run fast.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::{Broker, DbConfig, HeartbeatConfig, MemoryBroker, RedisBroker, RedisConfig};
use stockmesh_central::repair::RepairConfig;
use stockmesh_central::{CentralConfig, CentralNode};
use stockmesh_core::StoreId;
use stockmesh_http::auth::{Issuer, Role, Verifier, generate_key_pair};
use stockmesh_store::{StoreConfig, StoreNode};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::http::Api;
use crate::postgres::PgDatabase;
use crate::redis::{Persistence, RedisClusterServer, RedisServer};

/// Which broker a cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// A private `redis-server` (AOF, fsync always), killable.
    Redis,
    /// A private three-master Redis Cluster (AOF, fsync always), each master killable.
    RedisCluster,
    /// The in-process broker.
    InProcess,
}

/// Heartbeat timing used by test clusters: beat every 100 ms, offline after 1 s.
pub fn test_heartbeat() -> HeartbeatConfig {
    HeartbeatConfig {
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
    }
}

/// A running test system.
pub struct TestCluster {
    /// The private Redis, when the cluster runs on Redis.
    pub redis: Option<RedisServer>,
    /// The private Redis Cluster, when the cluster runs on one.
    pub redis_cluster: Option<RedisClusterServer>,
    /// The broker every node shares.
    pub broker: Arc<dyn Broker>,
    /// Central's client.
    pub central: Api,
    /// Each store's client, `store-1` first.
    pub stores: Vec<Api>,
    central_node: Option<CentralNode>,
    store_nodes: Vec<Option<StoreNode>>,
    store_configs: Vec<StoreConfig>,
    central_config: CentralConfig,
    /// Mints tokens for a secured cluster ([`TestCluster::start_secured`]).
    pub issuer: Option<Issuer>,
    /// Central's PostgreSQL database, when Central runs on PostgreSQL ([`CENTRAL_DB_VAR`]).
    central_pg: Option<PgDatabase>,
    dir: TempDir,
}

/// The environment variable that chooses the engine under Central in every [`TestCluster`]:
/// `postgres` (a fresh database on the test server, see [`PgDatabase`]) or `sqlite` (the default,
/// a file in the cluster's directory). CI runs Central's tests once with each.
pub const CENTRAL_DB_VAR: &str = "STOCKMESH_TEST_CENTRAL_DB";

/// Whether [`CENTRAL_DB_VAR`] asks for PostgreSQL; panics on a value it does not know, so that a
/// typo cannot silently test SQLite twice.
pub fn central_on_postgres() -> bool {
    match std::env::var(CENTRAL_DB_VAR).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("{CENTRAL_DB_VAR}={other:?}: use sqlite or postgres"),
    }
}

/// A copy of Central's database taken while Central was stopped ([`TestCluster::backup_central`]).
pub enum CentralBackup {
    /// Copies of the SQLite files, under this name in the cluster's directory.
    Sqlite(&'static str),
    /// A copy of the PostgreSQL database.
    Postgres(PgDatabase),
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind port 0")
}

impl TestCluster {
    /// Central and `stores` stores over a private `redis-server`.
    pub async fn start(stores: usize) -> Self {
        Self::start_with(BrokerKind::Redis, stores).await
    }

    /// Central and `stores` stores over the given broker; returns once Central sees every
    /// store online.
    pub async fn start_with(kind: BrokerKind, stores: usize) -> Self {
        Self::start_tuned(kind, stores, |_| {}).await
    }

    /// Central and `stores` stores over a private `redis-server`, requiring bearer tokens; the
    /// clients carry admin tokens and [`issuer`](Self::issuer) mints others.
    pub async fn start_secured(stores: usize) -> Self {
        let (private, public) = generate_key_pair().expect("keys");
        let issuer = Issuer::new("test", &private).expect("issuer");
        let verifier = Arc::new(Verifier::new([("test".to_owned(), public)]).expect("verifier"));
        Self::start_full(
            BrokerKind::Redis,
            Persistence::AofAlways,
            stores,
            |_| {},
            Some((issuer, verifier)),
            central_on_postgres(),
        )
        .await
    }

    /// Like [`start_with`](Self::start_with), with Central's configuration adjusted first.
    pub async fn start_tuned(
        kind: BrokerKind,
        stores: usize,
        tune: impl FnOnce(&mut CentralConfig),
    ) -> Self {
        Self::start_full(
            kind,
            Persistence::AofAlways,
            stores,
            tune,
            None,
            central_on_postgres(),
        )
        .await
    }

    /// Like [`start_tuned`](Self::start_tuned) over a private `redis-server` without
    /// persistence: restarting it ([`RedisServer::restart`]) brings it back empty, as the
    /// machine's own Redis and many managed ones would.
    pub async fn start_volatile(stores: usize, tune: impl FnOnce(&mut CentralConfig)) -> Self {
        Self::start_full(
            BrokerKind::Redis,
            Persistence::None,
            stores,
            tune,
            None,
            central_on_postgres(),
        )
        .await
    }

    /// Central on a fresh PostgreSQL database (whatever [`CENTRAL_DB_VAR`] says) and `stores`
    /// stores over `kind`.
    pub async fn start_on_postgres(kind: BrokerKind, stores: usize) -> Self {
        Self::start_full(kind, Persistence::AofAlways, stores, |_| {}, None, true).await
    }

    /// Like [`start_on_postgres`](Self::start_on_postgres), with Central's configuration
    /// adjusted first.
    pub async fn start_on_postgres_tuned(
        kind: BrokerKind,
        stores: usize,
        tune: impl FnOnce(&mut CentralConfig),
    ) -> Self {
        Self::start_full(kind, Persistence::AofAlways, stores, tune, None, true).await
    }

    async fn start_full(
        kind: BrokerKind,
        persistence: Persistence,
        stores: usize,
        tune: impl FnOnce(&mut CentralConfig),
        auth: Option<(Issuer, Arc<Verifier>)>,
        on_postgres: bool,
    ) -> Self {
        let verifier = auth.as_ref().map(|(_, verifier)| verifier.clone());
        let issuer = auth.map(|(issuer, _)| issuer);
        let admin = issuer.as_ref().map(|issuer| {
            issuer
                .issue("test-admin", Role::Admin, None, Duration::from_secs(3600))
                .expect("token")
        });
        let client = |base: String| match &admin {
            Some(token) => Api::new(base).with_token(token.clone()),
            None => Api::new(base),
        };
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let mut redis_cluster = None;
        let (redis, broker): (Option<RedisServer>, Arc<dyn Broker>) = match kind {
            BrokerKind::Redis => {
                let server = RedisServer::start_with(persistence).await;
                let broker = RedisBroker::new(RedisConfig::new(server.url())).expect("broker");
                (Some(server), Arc::new(broker))
            }
            BrokerKind::RedisCluster => {
                let servers = RedisClusterServer::start_with(persistence).await;
                let broker =
                    RedisBroker::new(RedisConfig::cluster(servers.seeds())).expect("broker");
                redis_cluster = Some(servers);
                (None, Arc::new(broker))
            }
            BrokerKind::InProcess => (None, Arc::new(MemoryBroker::new())),
        };
        let db = |name: &str| DbConfig::new(dir.path().join(name).display().to_string());
        let central_pg = if on_postgres {
            Some(PgDatabase::fresh().await)
        } else {
            None
        };
        let central_db = match &central_pg {
            Some(pg) => DbConfig::new(pg.url()),
            None => db("central.db"),
        };
        let mut central_config = CentralConfig {
            heartbeat_timeout: test_heartbeat().timeout,
            claim_idle: Duration::from_secs(2),
            discovery_interval: Duration::from_millis(50),
            repair: RepairConfig {
                interval: Duration::from_millis(50),
                grace: Duration::from_millis(300),
                resend: Duration::from_millis(300),
                ..RepairConfig::default()
            },
            auth: verifier.clone(),
            stores: (1..=stores)
                .map(|i| StoreId::parse(format!("store-{i}")).expect("valid id"))
                .collect(),
            ..CentralConfig::new(central_db)
        };
        tune(&mut central_config);
        let store_configs: Vec<StoreConfig> = (1..=stores)
            .map(|i| {
                let id = StoreId::parse(format!("store-{i}")).expect("valid id");
                StoreConfig {
                    heartbeat: test_heartbeat(),
                    claim_idle: Duration::from_secs(2),
                    auth: verifier.clone(),
                    ..StoreConfig::new(id, db(&format!("store-{i}.db")))
                }
            })
            .collect();
        let central_node =
            CentralNode::start(central_config.clone(), listener().await, broker.clone())
                .await
                .expect("central starts");
        let mut store_nodes = Vec::new();
        for config in &store_configs {
            let node = StoreNode::start(config.clone(), listener().await, Some(broker.clone()))
                .await
                .expect("store starts");
            store_nodes.push(Some(node));
        }
        let cluster = Self {
            redis,
            redis_cluster,
            broker,
            central: client(format!("http://{}", central_node.addr())),
            stores: store_nodes
                .iter()
                .flatten()
                .map(|n| client(format!("http://{}", n.addr())))
                .collect(),
            central_node: Some(central_node),
            store_nodes,
            store_configs,
            central_config,
            issuer,
            central_pg,
            dir,
        };
        cluster.wait_until_all_online().await;
        cluster
    }

    /// A client for `base` carrying the cluster's admin token, if it is secured.
    fn client(&self, base: String) -> Api {
        match &self.issuer {
            Some(issuer) => Api::new(base).with_token(
                issuer
                    .issue("test-admin", Role::Admin, None, Duration::from_secs(3600))
                    .expect("token"),
            ),
            None => Api::new(base),
        }
    }

    /// Store `i`'s client (`1` is `store-1`).
    pub fn store(&self, i: usize) -> &Api {
        &self.stores[i - 1]
    }

    /// Central's service, while Central runs (to reach its change feed directly).
    pub fn central_service(&self) -> Option<&Arc<stockmesh_central::CentralService>> {
        self.central_node.as_ref().map(|n| n.service())
    }

    /// The directory holding every node's database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Waits until Central lists every running store as online.
    pub async fn wait_until_all_online(&self) {
        let expected = self.store_nodes.iter().filter(|n| n.is_some()).count();
        eventually(
            "every store online at Central",
            Duration::from_secs(10),
            async || {
                let stores = self.central.get("/stores").await.json();
                stores
                    .as_array()
                    .map(|s| s.iter().filter(|s| s["online"] == true).count())
                    == Some(expected)
            },
        )
        .await;
    }

    /// Stops store `i` gracefully (its database stays).
    pub async fn stop_store(&mut self, i: usize) {
        if let Some(node) = self.store_nodes[i - 1].take() {
            node.shutdown().await;
        }
    }

    /// Starts store `i` again on its database (on a new port).
    pub async fn restart_store(&mut self, i: usize) {
        self.stop_store(i).await;
        let node = StoreNode::start(
            self.store_configs[i - 1].clone(),
            listener().await,
            Some(self.broker.clone()),
        )
        .await
        .expect("store restarts");
        self.stores[i - 1] = self.client(format!("http://{}", node.addr()));
        self.store_nodes[i - 1] = Some(node);
    }

    /// Stops Central (its database stays).
    pub async fn stop_central(&mut self) {
        if let Some(node) = self.central_node.take() {
            node.shutdown().await;
        }
    }

    /// Another Central replica on the same database and broker: consumer `name` in the same
    /// group, on a port of its own. Returns its node (shut it down before the cluster) and a
    /// client for it carrying the cluster's admin token.
    pub async fn start_central_replica(&self, name: &str) -> (CentralNode, Api) {
        let config = CentralConfig {
            consumer_name: name.to_owned(),
            ..self.central_config.clone()
        };
        let node = CentralNode::start(config, listener().await, self.broker.clone())
            .await
            .expect("the replica starts");
        let api = self.client(format!("http://{}", node.addr()));
        (node, api)
    }

    /// A pool on Central's database, whichever engine holds it.
    pub async fn central_db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.central_pg {
            Some(pg) => pg.url().to_owned(),
            None => format!("sqlite://{}", self.dir.path().join("central.db").display()),
        };
        sqlx::AnyPool::connect(&url)
            .await
            .expect("cannot open Central's database")
    }

    /// Copies Central's database (Central must be stopped): a backup to restore later.
    pub async fn backup_central(&self) -> CentralBackup {
        match &self.central_pg {
            Some(pg) => CentralBackup::Postgres(pg.copy().await),
            None => {
                copy_sqlite(self.dir.path(), "central.db", "backup.db");
                CentralBackup::Sqlite("backup.db")
            }
        }
    }

    /// Puts `backup` back as Central's database (Central must be stopped).
    pub async fn restore_central(&self, backup: &CentralBackup) {
        match (backup, &self.central_pg) {
            (CentralBackup::Postgres(copy), Some(pg)) => pg.replace_with(Some(copy)).await,
            (CentralBackup::Sqlite(name), None) => copy_sqlite(self.dir.path(), name, "central.db"),
            _ => panic!("a backup is restored on the engine it was taken from"),
        }
    }

    /// Central's database is lost (Central must be stopped): it starts again on an empty one.
    pub async fn lose_central_database(&self) {
        match &self.central_pg {
            Some(pg) => pg.replace_with(None).await,
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ =
                        std::fs::remove_file(self.dir.path().join(format!("central.db{suffix}")));
                }
            }
        }
    }

    /// Stops Central and starts it again on its database (on a new port).
    pub async fn restart_central(&mut self) {
        self.stop_central().await;
        let node = CentralNode::start(
            self.central_config.clone(),
            listener().await,
            self.broker.clone(),
        )
        .await
        .expect("central restarts");
        self.central = self.client(format!("http://{}", node.addr()));
        self.central_node = Some(node);
    }

    /// Shuts every node down, all at once.
    pub async fn shutdown(mut self) {
        let mut stopping = Vec::new();
        if let Some(node) = self.central_node.take() {
            stopping.push(tokio::spawn(node.shutdown()));
        }
        for node in self.store_nodes.iter_mut().filter_map(Option::take) {
            stopping.push(tokio::spawn(node.shutdown()));
        }
        for stop in stopping {
            let _ = stop.await;
        }
    }
}

/// Polls `condition` every 5 ms until it holds, failing the test after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Copies the SQLite database `from` (with its `-wal` and `-shm` files) to `to` in `dir`.
fn copy_sqlite(dir: &std::path::Path, from: &str, to: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let source = dir.join(format!("{from}{suffix}"));
        let target = dir.join(format!("{to}{suffix}"));
        let _ = std::fs::remove_file(&target);
        if source.exists() {
            std::fs::copy(&source, &target).expect("copy database file");
        }
    }
}
