//! A Store node on port 0 with a fresh SQLite file, restartable on the same file.

use std::path::PathBuf;
use std::sync::Arc;

use stockmesh_bus::DbConfig;
use stockmesh_core::StoreId;
use stockmesh_store::{StoreConfig, StoreNode};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::http::Api;

/// A running store for a test. Its temporary directory (and database) lives as long as it does.
pub struct TestStore {
    /// The store's HTTP client.
    pub api: Api,
    /// The running node (`None` while stopped).
    node: Option<StoreNode>,
    config: StoreConfig,
    dir: Arc<TempDir>,
}

/// Starts store `store-1` on port 0 with a fresh database.
pub async fn spawn_store() -> TestStore {
    spawn_store_with(|_| {}).await
}

/// Starts a store whose configuration `adjust` may change (id, durability…).
pub async fn spawn_store_with(adjust: impl FnOnce(&mut StoreConfig)) -> TestStore {
    let dir = Arc::new(tempfile::tempdir().expect("cannot create a temporary directory"));
    let db = dir.path().join("store.db");
    let mut config = StoreConfig::new(
        StoreId::parse("store-1").expect("valid id"),
        DbConfig::new(db.display().to_string()),
    );
    adjust(&mut config);
    let node = start(config.clone()).await;
    TestStore {
        api: Api::new(format!("http://{}", node.addr())),
        node: Some(node),
        config,
        dir,
    }
}

async fn start(config: StoreConfig) -> StoreNode {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind port 0");
    StoreNode::start(config, listener, None)
        .await
        .expect("store failed to start")
}

impl TestStore {
    /// The store's database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// The running node.
    pub fn node(&self) -> &StoreNode {
        self.node.as_ref().expect("store is stopped")
    }

    /// Stops the store gracefully (the database stays).
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    /// Stops the store and starts it again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let node = start(self.config.clone()).await;
        self.api = Api::new(format!("http://{}", node.addr()));
        self.node = Some(node);
    }

    /// Opens the store's database read-only in a fresh pool, for checks on raw tables.
    pub async fn raw_db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=ro", self.db_path().display());
        sqlx::AnyPool::connect(&url)
            .await
            .expect("cannot open the store database")
    }
}
