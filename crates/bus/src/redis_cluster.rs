//! A private local Redis Cluster for tests, the fault suite and benchmarks: three (or more)
//! masters, each a [`RedisProcess`] in cluster mode on a free port with its own directory,
//! joined by `redis-cli --cluster create` and waited for until every node reports
//! `cluster_state:ok`. A master can be killed with SIGKILL and restarted on its port and
//! directory: its `nodes.conf` brings it back with the same id and slots. Dropped, every node
//! is killed (the caller owns and removes the directory).
//!
//! Started with users ([`RedisCluster::start_with_users`]), every node reads them from an ACL
//! file of its own with the default user off, at every start, so a restarted master knows them
//! again before it answers; the helper then speaks to the nodes as the administrator.
//! ([`RedisCluster::set_users`] sets users in memory only: a restarted node forgets them.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::acl::{AclUser, split_line};
use crate::redis_server::{Persistence, RedisProcess, SpawnError};

/// Why a cluster could not be started or restored.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// `redis-cli` is not on `PATH`.
    #[error(
        "redis-cli is not installed or not on PATH; install it with \
         `sudo apt-get install -y redis-tools` (Debian/Ubuntu) or `brew install redis` (macOS)"
    )]
    NoRedisCli,
    /// A node refused a command (e.g. an `ACL SETUSER` line).
    #[error("node {node} refused {what}: {error}")]
    Refused {
        /// The node's index.
        node: usize,
        /// What was asked (never a password).
        what: String,
        /// Its answer.
        error: redis::RedisError,
    },
    /// `redis-cli --cluster create` failed.
    #[error("redis-cli --cluster create failed: {0}")]
    Create(String),
    /// The cluster did not report `cluster_state:ok` in time.
    #[error("the cluster did not reach cluster_state:ok within {0:?}")]
    NotOk(Duration),
    /// No free pair of ports (a node's port and its cluster bus port, 10000 above) was found.
    #[error("no free port pair for a cluster node")]
    NoPorts,
    /// Other I/O.
    #[error("cluster I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How long to wait for `cluster_state:ok`.
const SETTLE: Duration = Duration::from_secs(30);

/// A local Redis Cluster of masters without replicas. Killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
}

impl RedisCluster {
    /// Starts `masters` cluster-mode servers under `dir` (one sub-directory each), creates the
    /// cluster with the slots spread evenly, and waits until every node says `cluster_state:ok`.
    pub async fn start(
        dir: &Path,
        masters: usize,
        persistence: Persistence,
    ) -> Result<Self, ClusterError> {
        Self::start_on(dir, masters, persistence, None).await
    }

    /// Like [`start`](Self::start), with only `admin` and `users` able to connect to any node:
    /// each node reads them from an ACL file of its own (default user off) at this and every
    /// restart, as [`RedisProcess::start_with_users`] does for one server, and the helper speaks
    /// to the nodes as `admin` ([`urls`](Self::urls) are `admin`'s, so never print them).
    pub async fn start_with_users(
        dir: &Path,
        masters: usize,
        persistence: Persistence,
        admin: &AclUser,
        users: &[AclUser],
    ) -> Result<Self, ClusterError> {
        Self::start_on(dir, masters, persistence, Some((admin, users))).await
    }

    async fn start_on(
        dir: &Path,
        masters: usize,
        persistence: Persistence,
        users: Option<(&AclUser, &[AclUser])>,
    ) -> Result<Self, ClusterError> {
        let mut nodes = Vec::with_capacity(masters);
        for index in 0..masters {
            let node_dir = dir.join(format!("node-{index}"));
            nodes.push(start_node(&node_dir, persistence, users).await?);
        }
        let cluster = Self { nodes };
        let mut create = Command::new("redis-cli");
        if let Some((admin, _)) = users {
            // The password in the environment, not in `ps`.
            create
                .arg("--user")
                .arg(&admin.name)
                .env("REDISCLI_AUTH", &admin.password);
        }
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = match create.arg("--cluster-yes").stdin(Stdio::null()).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClusterError::NoRedisCli);
            }
            Err(e) => return Err(e.into()),
        };
        if !output.status.success() {
            return Err(ClusterError::Create(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        cluster.wait_ok().await?;
        Ok(cluster)
    }

    /// The seed URLs of every node (`redis://127.0.0.1:<port>`, the administrator's when the
    /// cluster has users).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisProcess::url).collect()
    }

    /// The seeds as `--redis-cluster` takes them: URLs joined by commas.
    pub fn seeds(&self) -> String {
        self.urls().join(",")
    }

    /// Every node's `127.0.0.1:<port>`, for [`AclUser::url`].
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(RedisProcess::address).collect()
    }

    /// Sets `users` (their `ACL SETUSER` lines) on every running node: Redis does not share
    /// users between the nodes of a cluster. Held in memory: a restarted node forgets them.
    pub async fn set_users(&self, users: &[AclUser]) -> Result<(), ClusterError> {
        for (index, node) in self.nodes.iter().enumerate() {
            if !node.is_running() {
                continue;
            }
            for user in users {
                let args = split_line(&user.line);
                let Some((name, rest)) = args.split_first() else {
                    continue;
                };
                let mut cmd = redis::cmd(name);
                cmd.arg(rest);
                query::<()>(&node.url(), &cmd)
                    .await
                    .map_err(|error| ClusterError::Refused {
                        node: index,
                        what: format!("the ACL user {}", user.name),
                        error,
                    })?;
            }
        }
        Ok(())
    }

    /// How many masters.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `index`'s server log.
    pub fn log_path(&self, index: usize) -> Option<PathBuf> {
        self.nodes.get(index).map(RedisProcess::log_path)
    }

    /// Which node holds `key`'s slot (the only one that answers for it without `MOVED`).
    pub async fn node_of(&self, key: &str) -> Option<usize> {
        for (index, node) in self.nodes.iter().enumerate() {
            let mut cmd = redis::cmd("TYPE");
            cmd.arg(key);
            if query::<String>(&node.url(), &cmd).await.is_ok() {
                return Some(index);
            }
        }
        None
    }

    /// The keys node `index` holds that match `pattern` (`SCAN … MATCH`).
    pub async fn keys_on(&self, index: usize, pattern: &str) -> Vec<String> {
        let Some(node) = self.nodes.get(index) else {
            return Vec::new();
        };
        let mut cmd = redis::cmd("KEYS");
        cmd.arg(pattern);
        query(&node.url(), &cmd).await.unwrap_or_default()
    }

    /// Kills node `index` with SIGKILL (its slots go unserved).
    pub fn kill(&mut self, index: usize) {
        if let Some(node) = self.nodes.get_mut(index) {
            node.kill();
        }
    }

    /// Starts node `index` again on its port and directory and waits until the whole cluster
    /// says `cluster_state:ok` (its slots are served again).
    pub async fn restart(&mut self, index: usize) -> Result<(), ClusterError> {
        if let Some(node) = self.nodes.get_mut(index) {
            node.restart().await?;
        }
        self.wait_ok().await
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees that all slots
    /// are assigned and served.
    pub async fn wait_ok(&self) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let mut all_ok = true;
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                let info: String = query(&node.url(), &redis::cmd("CLUSTER").arg("INFO").clone())
                    .await
                    .unwrap_or_default();
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                    all_ok = false;
                    break;
                }
            }
            if all_ok {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NotOk(SETTLE));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs one command on one node, with a short timeout.
async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(url)?;
    let run = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        cmd.query_async(&mut conn).await
    };
    tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

/// How many free ports to try for one node.
const PORT_ATTEMPTS: usize = 20;

/// Starts one cluster-mode node in `dir` on a port whose cluster bus port (+10000) is free too,
/// with `users` only (an administrator and others) when given.
async fn start_node(
    dir: &Path,
    persistence: Persistence,
    users: Option<(&AclUser, &[AclUser])>,
) -> Result<RedisProcess, ClusterError> {
    std::fs::create_dir_all(dir)?;
    let extra = vec![
        "--cluster-enabled".to_owned(),
        "yes".to_owned(),
        "--cluster-config-file".to_owned(),
        dir.join("nodes.conf").display().to_string(),
        // A killed master is marked failed after this long; a restart before it keeps the
        // cluster up, a longer outage makes the others refuse its slots (CLUSTERDOWN) until it
        // is back.
        "--cluster-node-timeout".to_owned(),
        "5000".to_owned(),
    ];
    for _ in 0..PORT_ATTEMPTS {
        let port = stockmesh_process::free_port()?;
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_err() {
            continue;
        }
        let spawned = match users {
            Some(users) => {
                RedisProcess::spawn_with_users(port, dir, persistence, users, extra.clone()).await
            }
            None => RedisProcess::spawn_with(port, dir, persistence, extra.clone()).await,
        };
        match spawned {
            Err(SpawnError::Exited(_)) => continue,
            result => return Ok(result?),
        }
    }
    Err(ClusterError::NoPorts)
}
