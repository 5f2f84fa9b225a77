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
