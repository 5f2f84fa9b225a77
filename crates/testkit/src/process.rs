//! Nodes as separate OS processes of the real `stockmesh` binary: started with flags, their URL
//! read from the line they print, stopped with SIGTERM or killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::Api;

/// A running `stockmesh` process.
pub struct NodeProcess {
    /// Its HTTP client.
    pub api: Api,
    binary: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

async fn launch(binary: &Path, args: &[String]) -> (Child, Api) {
    let mut child = Command::new(binary)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = line.find("http://") {
                return line[at..].trim().to_owned();
            }
        }
        panic!("stockmesh {args:?} exited without printing its URL");
    })
    .await
    .unwrap_or_else(|_| panic!("stockmesh {args:?} did not print its URL within 10 s"));
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, Api::new(url))
}

impl NodeProcess {
    /// Starts `binary` with `args` (which must make it listen on port 0 and print its URL).
    pub async fn start(binary: impl Into<PathBuf>, args: &[&str]) -> Self {
        let binary = binary.into();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, api) = launch(&binary, &args).await;
        Self {
            api,
            binary,
            args,
            child: Some(child),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the process with SIGTERM and waits for its graceful exit; returns whether it exited
    /// successfully.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = child.kill().await;
                false
            }
        }
    }

    /// Starts the process again with the same flags (after a kill or terminate).
    pub async fn restart(&mut self) {
        self.kill().await;
        let (child, api) = launch(&self.binary, &self.args).await;
        self.api = api;
        self.child = Some(child);
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
        let mut args = vec!["central", "--listen", "127.0.0.1:0", "--db", db.as_str()];
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
