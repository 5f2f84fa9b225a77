//! The cluster under test: a private `redis-server` (AOF, `appendfsync always`), Central and the
//! stores as separate processes of the binary on fixed ports (so a restarted node keeps its
//! address), each with its own SQLite file; and the faults that can be done to it.
//!
//! Scaled (`--scaled`), the broker is a private three-master Redis Cluster (each master with
//! `appendfsync always`) and Central is two replicas (`central-1`, `central-2`) sharing one
//! fresh PostgreSQL database ([`PgDatabase`]); the stores are as in the normal run, on the
//! cluster.
//!
//! Secured (the default), every node verifies bearer tokens with the run's public key and
//! connects to Redis as its own ACL user (given in `STOCKMESH_REDIS` or
//! `STOCKMESH_REDIS_CLUSTER`, never on the command line); every Redis (every master) keeps its
//! users in an ACL file across restarts, and the suite speaks to it as an administrator. Every
//! HTTP request goes through [`ChaosCluster::request`] with its caller.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, RequestBuilder};
use stockmesh_bus::acl::{AclUser, Placement};
use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::redis_cluster::RedisCluster;
use stockmesh_bus::redis_server::{Persistence, RedisProcess};
use stockmesh_bus::{RedisBroker, RedisConfig, faults, topology};
use stockmesh_process::{Launcher, NodeProcess, free_port};
use tempfile::TempDir;
use tokio::sync::Mutex;

pub use super::access::store_id;
use super::access::{Caller, KID, Secured};
use super::pg::PgDatabase;
use super::schedule::{Fault, Shape};

/// What a poison entry carries: it can never be decoded.
pub const POISON: &str = "{chaos: this entry is not an event";

/// Masters of the scaled run's Redis Cluster: the smallest real cluster.
pub const MASTERS: usize = 3;

/// Central replicas of the scaled run.
pub const REPLICAS: usize = 2;

/// The broker under test.
enum Redis {
    /// One `redis-server`.
    Single(RedisProcess),
    /// A Redis Cluster; `down` holds the masters killed and not yet restarted.
    Cluster {
        cluster: RedisCluster,
        down: BTreeSet<usize>,
    },
}

impl Redis {
    /// The administrator's URL of every server (one, or every master; never print them).
    fn urls(&self) -> Vec<String> {
        match self {
            Redis::Single(redis) => vec![redis.url()],
            Redis::Cluster { cluster, .. } => cluster.urls(),
        }
    }

    /// Every server's `host:port`.
    fn addresses(&self) -> Vec<String> {
        match self {
            Redis::Single(redis) => vec![redis.address()],
            Redis::Cluster { cluster, .. } => cluster.addresses(),
        }
    }

    /// The URL (one Redis) or seeds (a cluster: URLs joined by commas) that reach the broker as
    /// `user`, or as the administrator when `None` (never print them).
    fn url_as(&self, user: Option<&AclUser>) -> String {
        match user {
            Some(user) => self
                .addresses()
                .iter()
                .map(|address| user.url(address))
                .collect::<Vec<_>>()
                .join(","),
            None => self.urls().join(","),
        }
    }

    /// What a node is given to reach the broker as `user` (`None` in an open run, whose
    /// servers have no users: their plain URLs): the environment variable and its value.
    fn node_env(&self, user: Option<&AclUser>) -> (&'static str, String) {
        let value = self.url_as(user);
        match self {
            Redis::Single(_) => ("STOCKMESH_REDIS", value),
            Redis::Cluster { .. } => ("STOCKMESH_REDIS_CLUSTER", value),
        }
    }

    /// A client of the broker as `user` (the administrator when `None`).
    fn broker_as(&self, user: Option<&AclUser>) -> anyhow::Result<RedisBroker> {
        let url = self.url_as(user);
        let config = match self {
            Redis::Single(_) => RedisConfig::new(url),
            Redis::Cluster { .. } => RedisConfig::cluster(url),
        };
        Ok(RedisBroker::new(config)?)
    }
}

/// The running cluster.
pub struct ChaosCluster {
    dir: TempDir,
    /// The broker; killed and restarted on its port and data by [`Fault::RedisCrash`] (a
    /// master of it by [`Fault::MasterCrash`]).
    redis: Mutex<Redis>,
    /// A client of the broker, for injecting entries and reading group state.
    pub broker: Arc<dyn Broker>,
    /// Central's replicas, `central-1` first (one outside the scaled run).
    centrals: Vec<Mutex<NodeProcess>>,
    stores: Vec<Mutex<NodeProcess>>,
    /// Each Central replica's URL (fixed for the run).
    central_urls: Vec<String>,
    /// Which replica the next observer's read goes to.
    next_central: AtomicUsize,
    /// Each store's URL, `store-1` first (fixed for the run).
    pub store_urls: Vec<String>,
    /// HTTP client for everything (requests are made with [`request`](Self::request)).
    http: reqwest::Client,
    /// Keys, tokens and Redis users; `None` when the run is not secured (`--no-auth`).
    pub secured: Option<Secured>,
    /// Central's PostgreSQL database in the scaled run; `None`: an SQLite file in `dir`.
    database: Option<PgDatabase>,
}

impl ChaosCluster {
    /// Starts the broker, then Central and `stores` stores with `launcher`; with tokens and Redis
    /// ACL users when `secure`. With a `database`, the scaled topology: a Redis Cluster of
    /// [`MASTERS`] masters and [`REPLICAS`] Central replicas on that PostgreSQL database.
    pub async fn start(
        launcher: &Launcher,
        stores: usize,
        secure: bool,
        database: Option<PgDatabase>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let redis_dir = dir.path().join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        let placement = match database {
            Some(_) => Placement::Cluster,
            None => Placement::Single,
        };
        let secured = secure
            .then(|| Secured::create(&dir.path().join("keys"), stores, placement))
            .transpose()?;
        let redis = match (&secured, placement) {
            (Some(secured), Placement::Single) => Redis::Single(
                RedisProcess::start_with_users(
                    &redis_dir,
                    Persistence::AofAlways,
                    &secured.admin,
                    &secured.node_users(),
                )
                .await?,
            ),
            (None, Placement::Single) => {
                Redis::Single(RedisProcess::start(&redis_dir, Persistence::AofAlways).await?)
            }
            (Some(secured), Placement::Cluster) => Redis::Cluster {
                cluster: RedisCluster::start_with_users(
                    &redis_dir,
                    MASTERS,
                    Persistence::AofAlways,
                    &secured.admin,
                    &secured.node_users(),
                )
                .await
                .context("cannot start the private Redis Cluster")?,
                down: BTreeSet::new(),
            },
            (None, Placement::Cluster) => Redis::Cluster {
                cluster: RedisCluster::start(&redis_dir, MASTERS, Persistence::AofAlways)
                    .await
                    .context("cannot start the private Redis Cluster")?,
                down: BTreeSet::new(),
            },
        };
        // Each node's Redis: its own user's when secured.
        let node_users = secured.as_ref().map(Secured::node_users);
        let redis_of = |node: usize| redis.node_env(node_users.as_ref().map(|users| &users[node]));
        let key = secured
            .as_ref()
            .map(|s| format!("{KID}={}", s.public_key.display()));
        let common = |args: &mut Vec<String>| {
            if let Some(key) = &key {
                args.extend(["--auth-public-key".to_owned(), key.clone()]);
            }
            args.extend(
                [
                    "--heartbeat-interval",
                    "100ms",
                    "--heartbeat-timeout",
                    "1s",
                    "--claim-idle",
                    "1s",
                ]
                .map(String::from),
            );
        };
        let replicas = if database.is_some() { REPLICAS } else { 1 };
        let mut centrals = Vec::new();
        for replica in 1..=replicas {
            let port = free_port()?;
            let mut args: Vec<String> = [
                "central",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--consumer-name",
                &format!("central-{replica}"),
                // Short, so that purchases caught by a crash answer 202 and must resolve later.
                "--purchase-wait",
                "300ms",
                "--purchase-deadline",
                "10s",
                // Self-healing quickly enough for a bounded run.
                "--resend-after",
                "1s",
                "--repair-interval",
                "200ms",
                "--repair-grace",
                "1s",
                "--stores",
                &(1..=stores)
                    .map(|i| format!("store-{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
            .map(String::from)
            .to_vec();
            common(&mut args);
            // The database in the environment: a PostgreSQL URL may hold a password.
            let db = match &database {
                Some(database) => database.url(),
                None => dir.path().join("central.db").display().to_string(),
            };
            let (variable, value) = redis_of(0);
            // One after the other: the first applies the migrations.
            centrals.push(
                spawn(
                    launcher,
                    &args,
                    &[(variable, &value), ("STOCKMESH_DB", &db)],
                )
                .await?,
            );
        }
        let mut nodes = Vec::new();
        for i in 1..=stores {
            let port = free_port()?;
            let mut args: Vec<String> = [
                "store",
                "--id",
                &format!("store-{i}"),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--db",
                &dir.path()
                    .join(format!("store-{i}.db"))
                    .display()
                    .to_string(),
            ]
            .map(String::from)
            .to_vec();
            common(&mut args);
            let (variable, value) = redis_of(i);
            nodes.push(spawn(launcher, &args, &[(variable, &value)]).await?);
        }
        let cluster = Self {
            broker: Arc::new(redis.broker_as(None)?),
            central_urls: centrals.iter().map(|n| n.url().to_owned()).collect(),
            next_central: AtomicUsize::new(0),
            store_urls: nodes.iter().map(|n| n.url().to_owned()).collect(),
            centrals: centrals.into_iter().map(Mutex::new).collect(),
            stores: nodes.into_iter().map(Mutex::new).collect(),
            redis: Mutex::new(redis),
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            secured,
            database,
        };
        cluster.wait_all_online(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// What the faults can be aimed at.
    pub fn shape(&self) -> Shape {
        Shape {
            centrals: self.centrals.len(),
            masters: self.database.as_ref().map(|_| MASTERS),
        }
    }

    /// The topology, for the summary (no credentials).
    pub async fn describe(&self) -> String {
        let stores = self.store_urls.len();
        let redis = match &*self.redis.lock().await {
            Redis::Single(redis) => format!(
                "one redis-server at {} (appendfsync always)",
                redis.address()
            ),
            Redis::Cluster { cluster, .. } => format!(
                "a Redis Cluster of {} masters at {} (appendfsync always)",
                cluster.len(),
                cluster.addresses().join(", ")
            ),
        };
        let central = match &self.database {
            Some(database) => format!(
                "{} Central replicas ({}) on the PostgreSQL database {} at {}",
                self.centrals.len(),
                (1..=self.centrals.len())
                    .map(|i| format!("central-{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                database.name(),
                database.server()
            ),
            None => "Central on an SQLite file".to_owned(),
        };
        format!("{redis}; {central}; {stores} stores on SQLite files")
    }

    /// A Central replica's URL for the observers' reads: the replicas in turn.
    pub fn central_url(&self) -> &str {
        self.central_at(self.next_central.fetch_add(1, Ordering::Relaxed))
    }

    /// The URL of replica `pick` modulo their number (the workload spreads its requests so).
    pub fn central_at(&self, pick: usize) -> &str {
        &self.central_urls[pick % self.central_urls.len()]
    }

    /// Waits until every Central replica lists every store online.
    pub async fn wait_all_online(&self, limit: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        for central in &self.central_urls {
            loop {
                let online = async {
                    let stores: serde_json::Value = self
                        .request(Caller::Viewer, Method::GET, &format!("{central}/stores"))
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    let list = stores.as_array()?;
                    Some(
                        list.len() == self.stores.len() && list.iter().all(|s| s["online"] == true),
                    )
                };
                if online.await == Some(true) {
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < limit,
                    "stores not all online at {central} after {limit:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// A request by `caller`, with its bearer token when the run is secured.
    pub fn request(&self, caller: Caller, method: Method, url: &str) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.secured {
            Some(secured) => builder.bearer_auth(secured.tokens.of(caller)),
            None => builder,
        }
    }

    /// `POST url` by store `store`'s staff, which must succeed.
    async fn post(&self, store: usize, url: String) -> anyhow::Result<()> {
        self.request(Caller::Store(store), Method::POST, &url)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Injects `fault`, and heals it (restart, reconnect) before returning. Injections that go
    /// through the broker are retried for a few seconds: the broker may be restarting.
    pub async fn inject(&self, fault: &Fault) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            match self.try_inject(fault).await {
                Err(error) if attempt < 20 && fault.through_broker() => {
                    attempt += 1;
                    tracing::debug!(%error, "fault injection retried");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                result => return result,
            }
        }
    }

    async fn try_inject(&self, fault: &Fault) -> anyhow::Result<()> {
        match fault {
            Fault::RedisCrash { down } => {
                match &mut *self.redis.lock().await {
                    Redis::Single(redis) => redis.kill(),
                    Redis::Cluster { .. } => anyhow::bail!("one redis-server to kill: none here"),
                }
                tokio::time::sleep(*down).await;
                self.ensure_redis().await?;
            }
            Fault::MasterCrash { master, down } => {
                match &mut *self.redis.lock().await {
                    Redis::Cluster {
                        cluster,
                        down: killed,
                    } if *master < cluster.len() => {
                        cluster.kill(*master);
                        killed.insert(*master);
                    }
                    _ => anyhow::bail!("no Redis Cluster master {master} to kill"),
                }
                tokio::time::sleep(*down).await;
                self.ensure_redis().await?;
            }
            Fault::StoreCrash { store, down } => {
                let mut node = self.stores[store - 1].lock().await;
                node.kill().await;
                tokio::time::sleep(*down).await;
                node.restart().await?;
            }
            Fault::CentralCrash { replica, down } => {
                let node = self
                    .centrals
                    .get(replica.saturating_sub(1))
                    .with_context(|| format!("no Central replica {replica}"))?;
                let mut node = node.lock().await;
                node.kill().await;
                tokio::time::sleep(*down).await;
                node.restart().await?;
            }
            Fault::Disconnect { store, span } => {
                let url = &self.store_urls[store - 1];
                self.post(*store, format!("{url}/disconnected")).await?;
                tokio::time::sleep(*span).await;
                self.post(*store, format!("{url}/connected")).await?;
            }
            Fault::Duplicates { store } => {
                let id = store_id(*store);
                for stream in [topology::events_stream(&id), topology::commands_stream(&id)] {
                    let entries = self.broker.entries(&stream).await?;
                    let tail = entries.len().saturating_sub(20);
                    self.republish(&stream, &entries[tail..]).await?;
                }
            }
            Fault::LateEvents { store } => {
                let stream = topology::events_stream(&store_id(*store));
                let entries = self.broker.entries(&stream).await?;
                let head = entries.len().min(20);
                self.republish(&stream, &entries[..head]).await?;
            }
            Fault::Poison { store } => {
                let stream = topology::events_stream(&store_id(*store));
                let poison = Outgoing {
                    stream: &stream,
                    event_type: "INVENTORY_ITEM_UPDATED",
                    data: POISON,
                };
                self.broker.publish(&[poison], u64::MAX / 2).await?;
            }
        }
        Ok(())
    }

    async fn republish(
        &self,
        stream: &str,
        entries: &[stockmesh_bus::Delivery],
    ) -> anyhow::Result<()> {
        let datas: Vec<(String, String)> = entries
            .iter()
            .filter_map(|e| {
                let data = String::from_utf8(e.data.clone()?).ok()?;
                (data != POISON).then(|| (e.event_type.clone().unwrap_or_default(), data))
            })
            .collect();
        let outgoing: Vec<Outgoing<'_>> = datas
            .iter()
            .map(|(t, d)| Outgoing {
                stream,
                event_type: t,
                data: d,
            })
            .collect();
        self.broker.publish(&outgoing, u64::MAX / 2).await?;
        Ok(())
    }

    /// Restarts the broker (every killed master) on its data, if it was killed.
    async fn ensure_redis(&self) -> anyhow::Result<()> {
        match &mut *self.redis.lock().await {
            Redis::Single(redis) => {
                if !redis.is_running() {
                    redis.restart().await?;
                }
            }
            Redis::Cluster { cluster, down } => {
                while let Some(master) = down.pop_first() {
                    cluster
                        .restart(master)
                        .await
                        .with_context(|| format!("cannot restart Redis master {master}"))?;
                }
            }
        }
        Ok(())
    }

    /// Heals everything: Redis and every node running, every store connected, all online.
    pub async fn heal(&self) -> anyhow::Result<()> {
        self.ensure_redis().await?;
        for node in self.centrals.iter().chain(&self.stores) {
            let mut node = node.lock().await;
            if !node.is_running() {
                node.restart().await?;
            }
        }
        for (i, url) in self.store_urls.iter().enumerate() {
            self.post(i + 1, format!("{url}/connected")).await?;
        }
        self.wait_all_online(Duration::from_secs(30)).await
    }

    /// Kills every Central replica (their database stays).
    pub async fn stop_central(&self) {
        for central in &self.centrals {
            central.lock().await.kill().await;
        }
    }

    /// Starts every Central replica again on its database (and port), one after the other.
    pub async fn start_central(&self) -> anyhow::Result<()> {
        for central in &self.centrals {
            central.lock().await.restart().await?;
        }
        Ok(())
    }

    /// Deletes every key of the broker (`FLUSHALL` on every master of a cluster).
    pub async fn flush_redis(&self) -> anyhow::Result<()> {
        for url in self.redis.lock().await.urls() {
            faults::flush_all(&url).await.context("FLUSHALL")?;
        }
        Ok(())
    }

    /// Deletes the newest `count` entries of `stream` as a failover would lose them (on a
    /// cluster, on the master that holds the stream's partition).
    pub async fn drop_newest(&self, stream: &str, count: usize) -> anyhow::Result<()> {
        let (url, key) = match &*self.redis.lock().await {
            Redis::Single(redis) => (redis.url(), stream.to_owned()),
            Redis::Cluster { cluster, .. } => {
                let key = topology::cluster_key(stream);
                let master = cluster
                    .node_of(&key)
                    .await
                    .with_context(|| format!("no master serves {key}"))?;
                (cluster.urls()[master].clone(), key)
            }
        };
        faults::drop_newest(&url, &key, count)
            .await
            .with_context(|| format!("drop the newest entries of {key}"))?;
        Ok(())
    }

    /// One Redis server's `host:port` (a cluster's first master), without credentials.
    pub async fn redis_address(&self) -> String {
        self.redis.lock().await.addresses()[0].clone()
    }

    /// A client of the broker as `user` (for the guard's proofs).
    pub async fn broker_as(&self, user: &AclUser) -> anyhow::Result<RedisBroker> {
        self.redis.lock().await.broker_as(Some(user))
    }

    fn copy_database(&self, from: &str, to: &str) -> anyhow::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let source = self.dir.path().join(format!("{from}{suffix}"));
            let target = self.dir.path().join(format!("{to}{suffix}"));
            if target.exists() {
                std::fs::remove_file(&target)?;
            }
            if source.exists() {
                std::fs::copy(&source, &target)?;
            }
        }
        Ok(())
    }

    /// Copies Central's database aside (every replica is killed for the copy, then started
    /// again): the SQLite files, or `CREATE DATABASE copy TEMPLATE` on PostgreSQL.
    pub async fn backup_central(&self) -> anyhow::Result<()> {
        self.stop_central().await;
        match &self.database {
            Some(database) => database.back_up().await?,
            None => self.copy_database("central.db", "central-backup.db")?,
        }
        self.start_central().await
    }

    /// Replaces Central's database by the copy [`backup_central`](Self::backup_central) took:
    /// an older copy of itself, as a restore from last night's backup would (every replica is
    /// killed meanwhile).
    pub async fn restore_central(&self) -> anyhow::Result<()> {
        self.stop_central().await;
        match &self.database {
            Some(database) => database.restore().await?,
            None => self.copy_database("central-backup.db", "central.db")?,
        }
        self.start_central().await
    }

    /// Waits until every store's relay has published and stamped its outbox.
    pub async fn outboxes_drained(&self, limit: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        for url in &self.store_urls {
            loop {
                let status: serde_json::Value = self
                    .request(Caller::Viewer, Method::GET, &format!("{url}/status"))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if status["outboxPending"] == 0 {
                    break;
                }
                anyhow::ensure!(started.elapsed() < limit, "outboxes not drained");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Stops every process.
    pub async fn stop(&self) {
        for node in self.centrals.iter().chain(&self.stores) {
            node.lock().await.kill().await;
        }
        match &mut *self.redis.lock().await {
            Redis::Single(redis) => redis.kill(),
            Redis::Cluster { cluster, .. } => {
                for master in 0..cluster.len() {
                    cluster.kill(master);
                }
            }
        }
    }
}

/// Starts a node with `args`, its secrets (Redis and database URLs) in its environment.
async fn spawn(
    launcher: &Launcher,
    args: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<NodeProcess> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(launcher.spawn_with_env(&args, env).await?)
}
