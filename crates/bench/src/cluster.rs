//! The benchmark's environment: a private `redis-server` in a temporary directory, helpers to
//! start Central and stores in this process against it, and the launcher of separate processes.

use std::sync::Arc;

use anyhow::Context;
use stockmesh_bus::redis_server::{Persistence, RedisProcess};
use stockmesh_bus::{Broker, DbConfig, RedisBroker, RedisConfig};
use stockmesh_central::{CentralConfig, CentralNode};
use stockmesh_core::StoreId;
use stockmesh_process::Launcher;
use stockmesh_store::{StoreConfig, StoreNode};
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::BenchArgs;

/// What every scenario shares.
pub struct BenchEnv {
    /// The private Redis.
    pub redis: RedisProcess,
    /// Files of every node.
    pub dir: TempDir,
    /// Starts nodes as separate processes.
    pub launcher: Launcher,
    /// How the private Redis (and the private cluster's masters) keep their data.
    pub persistence: Persistence,
}

/// A running pair: Central and one store, in this process.
pub struct Pair {
    /// Central (the replica requests go to).
    pub central: CentralNode,
    /// The store.
    pub store: StoreNode,
    /// Further Central replicas on the same database, sharing the consumer group.
    pub replicas: Vec<CentralNode>,
}

impl BenchEnv {
    /// Starts the private Redis; nodes in separate processes will be started by `launcher`.
    pub async fn start(args: &BenchArgs, launcher: Launcher) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let persistence = match args.redis_fsync.as_str() {
            "always" => Persistence::AofAlways,
            "everysec" => Persistence::AofEverySec,
            other => anyhow::bail!("--redis-fsync must be always or everysec, not {other:?}"),
        };
        let redis_dir = dir.path().join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        let redis = RedisProcess::start(&redis_dir, persistence).await?;
        eprintln!(
            "bench: private redis-server at {} (appendfsync {})",
            redis.url(),
            args.redis_fsync
        );
        Ok(Self {
            redis,
            dir,
            launcher,
            persistence,
        })
    }

    /// A new broker client.
    pub fn broker(&self) -> anyhow::Result<Arc<dyn Broker>> {
        Ok(Arc::new(RedisBroker::new(RedisConfig::new(
            self.redis.url(),
        ))?))
    }

    /// A database file in the run's directory.
    pub fn db(&self, name: &str) -> DbConfig {
        DbConfig::new(self.dir.path().join(name).display().to_string())
    }

    /// Starts Central and store `store-{tag}` with fresh databases named after `tag`.
    pub async fn pair(&self, tag: &str) -> anyhow::Result<Pair> {
        self.pair_on(self.broker()?, tag).await
    }

    /// Like [`pair`](Self::pair), both nodes sharing `broker` (e.g. one on a Redis Cluster).
    pub async fn pair_on(&self, broker: Arc<dyn Broker>, tag: &str) -> anyhow::Result<Pair> {
        let db = self.db(&format!("central-{tag}.db"));
        self.pair_with(broker, tag, db, 1).await
    }

    /// Like [`pair_on`](Self::pair_on), with Central on `central_db` in `replicas` replicas
    /// sharing it (and the consumer group).
    pub async fn pair_with(
        &self,
        broker: Arc<dyn Broker>,
        tag: &str,
        central_db: DbConfig,
        replicas: usize,
    ) -> anyhow::Result<Pair> {
        let id = StoreId::parse(format!("store-{tag}"))?;
        let mut centrals = Vec::new();
        for replica in 1..=replicas.max(1) {
            let node = CentralNode::start(
                CentralConfig {
                    consumer_name: format!("central-{tag}-{replica}"),
                    stores: vec![id.clone()],
                    ..CentralConfig::new(central_db.clone())
                },
                TcpListener::bind("127.0.0.1:0").await?,
                broker.clone(),
            )
            .await?;
            centrals.push(node);
        }
        let central = centrals.remove(0);
        let store = StoreNode::start(
            StoreConfig::new(id, self.db(&format!("store-{tag}.db"))),
            TcpListener::bind("127.0.0.1:0").await?,
            Some(broker.clone()),
        )
        .await?;
        let pair = Pair {
            central,
            store,
            replicas: centrals,
        };
        pair.wait_until_discovered().await?;
        Ok(pair)
    }
}

impl Pair {
    /// Starts one more store, `store-{tag}`, on the same broker, provisions it at Central, and
    /// waits until Central sees it online.
    pub async fn add_store(&self, env: &BenchEnv, tag: &str) -> anyhow::Result<StoreNode> {
        let id = StoreId::parse(format!("store-{tag}"))?;
        self.central.service().provision(&id).await?;
        let store = StoreNode::start(
            StoreConfig::new(id.clone(), env.db(&format!("store-{tag}.db"))),
            TcpListener::bind("127.0.0.1:0").await?,
            Some(env.broker()?),
        )
        .await?;
        let started = std::time::Instant::now();
        loop {
            let stores = self.central.service().stores().await?;
            if stores.iter().any(|s| s.store_id == id && s.liveness.online) {
                return Ok(store);
            }
            anyhow::ensure!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "Central never discovered {id}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits until Central has discovered the store (so measurements exclude discovery).
    async fn wait_until_discovered(&self) -> anyhow::Result<()> {
        let id = self.store.service().id().clone();
        let started = std::time::Instant::now();
        loop {
            let stores = self.central.service().stores().await?;
            if stores.iter().any(|s| s.store_id == id && s.liveness.online) {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "Central never discovered {id}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        self.store.shutdown().await;
        for replica in self.replicas {
            replica.shutdown().await;
        }
        self.central.shutdown().await;
    }
}
