//! A private `redis-server` for one test: a free port on 127.0.0.1, its own data directory,
//! killed when the test ends. It can be killed with SIGKILL and restarted on the same port and
//! data, to test what survives a broker crash. A thin wrapper of the one helper in
//! `stockmesh_bus::redis_server` that panics instead of returning errors. Beside it, a private
//! three-master Redis Cluster ([`RedisClusterServer`]).

use std::path::PathBuf;

use stockmesh_bus::redis_cluster::RedisCluster;
pub use stockmesh_bus::redis_server::Persistence;
use stockmesh_bus::redis_server::RedisProcess;
use tempfile::TempDir;

/// A running (or killed) private Redis.
pub struct RedisServer {
    // Declared before `dir` so that the server is killed before its directory is removed.
    process: RedisProcess,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts a server without persistence. Panics with the install command if `redis-server`
    /// is missing: a test that needs Redis must never pass without it.
    pub async fn start() -> Self {
        Self::start_with(Persistence::None).await
    }

    /// Starts a server with the given persistence.
    pub async fn start_with(persistence: Persistence) -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let process = RedisProcess::start(dir.path(), persistence)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Self { process, _dir: dir }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// Kills the server with SIGKILL (no shutdown, no final save).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Starts the server again on the same port and data directory (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        self.process
            .restart()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
}

/// A private local Redis Cluster for one test: three masters on free ports, each with its own
/// data directory, killed and removed when the test ends. A master can be killed and restarted
/// on its port and data. A thin wrapper of `stockmesh_bus::redis_cluster` that panics (naming
/// what to install) instead of returning errors.
pub struct RedisClusterServer {
    // Declared before `dir` so that the nodes are killed before their directories are removed.
    cluster: RedisCluster,
    _dir: TempDir,
}

impl RedisClusterServer {
    /// Starts three masters without persistence.
    pub async fn start() -> Self {
        Self::start_with(Persistence::None).await
    }

    /// Starts three masters with the given persistence.
    pub async fn start_with(persistence: Persistence) -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let cluster = RedisCluster::start(dir.path(), 3, persistence)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Self { cluster, _dir: dir }
    }

    /// The seeds as `--redis-cluster` takes them (URLs joined by commas).
    pub fn seeds(&self) -> String {
        self.cluster.seeds()
    }

    /// The cluster itself (node URLs, which node holds a key, keys per node).
    pub fn nodes(&self) -> &RedisCluster {
        &self.cluster
    }

    /// Sets `users` on every master (Redis does not share users between cluster nodes), as an
    /// operator feeds `stockmesh redis-acl --cluster` to each node.
    pub async fn set_users(&self, users: &[stockmesh_bus::acl::AclUser]) {
        self.cluster
            .set_users(users)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }

    /// The seeds for `user`: every master's URL with its name and password.
    pub fn seeds_for(&self, user: &stockmesh_bus::acl::AclUser) -> String {
        self.cluster
            .addresses()
            .iter()
            .map(|address| user.url(address))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills master `index` with SIGKILL.
    pub fn kill(&mut self, index: usize) {
        self.cluster.kill(index);
    }

    /// Restarts master `index` on its port and data, and waits until the cluster is ok.
    pub async fn restart(&mut self, index: usize) {
        self.cluster
            .restart(index)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
}
