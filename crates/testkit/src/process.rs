//! Nodes as separate OS processes of the real `stockmesh` binary, through the one launcher of
//! `stockmesh-process`, with an [`Api`] client each; a failure to start panics the test.

use std::path::PathBuf;
use std::time::Duration;

use stockmesh_process::Launcher;

use crate::http::Api;

/// A running `stockmesh` process.
pub struct NodeProcess {
    /// Its HTTP client.
    pub api: Api,
    process: stockmesh_process::NodeProcess,
}

impl NodeProcess {
    /// Starts `binary` with `args` (which must make it listen on port 0 and print its URL).
    pub async fn start(binary: impl Into<PathBuf>, args: &[&str]) -> Self {
        let process = Launcher::new(binary)
            .spawn(args)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Self {
            api: Api::new(process.url()),
            process,
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Stops the process with SIGTERM and waits for its graceful exit; returns whether it exited
    /// successfully.
    pub async fn terminate(&mut self) -> bool {
        self.process.terminate().await
    }

    /// Starts the process again with the same flags (after a kill or terminate).
    pub async fn restart(&mut self) {
        self.process
            .restart()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        self.api = Api::new(self.process.url());
    }
}

/// Central and stores as separate processes of `binary` over a private `redis-server` (AOF),
/// with a 100 ms heartbeat and a 1 s timeout; returns once Central sees every store online.
pub struct ProcessCluster {
    /// The private Redis.
    pub redis: crate::RedisServer,
    /// Central's process.
    pub central: NodeProcess,
    /// The stores' processes, `store-1` first.
    pub stores: Vec<NodeProcess>,
    _dir: tempfile::TempDir,
}

impl ProcessCluster {
    /// Starts the cluster.
    pub async fn start(binary: &str, stores: usize) -> Self {
        let redis = crate::RedisServer::start_with(crate::Persistence::AofAlways).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = redis.url();
        let common = [
            "--heartbeat-interval",
            "100ms",
            "--heartbeat-timeout",
            "1s",
            "--redis",
            url.as_str(),
        ];
        let db = dir.path().join("central.db").display().to_string();
        let ids = (1..=stores)
            .map(|i| format!("store-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "central",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.as_str(),
            "--stores",
            ids.as_str(),
        ];
        args.extend(common);
        let central = NodeProcess::start(binary, &args).await;
        let mut nodes = Vec::new();
        for i in 1..=stores {
            let id = format!("store-{i}");
            let db = dir.path().join(format!("{id}.db")).display().to_string();
            let mut args = vec![
                "store",
                "--id",
                id.as_str(),
                "--listen",
                "127.0.0.1:0",
                "--db",
                db.as_str(),
            ];
            args.extend(common);
            nodes.push(NodeProcess::start(binary, &args).await);
        }
        crate::eventually("every store online", Duration::from_secs(10), async || {
            let listed = central.api.get("/stores").await.json();
            listed
                .as_array()
                .is_some_and(|s| s.len() == stores && s.iter().all(|s| s["online"] == true))
        })
        .await;
        Self {
            redis,
            central,
            stores: nodes,
            _dir: dir,
        }
    }
}
