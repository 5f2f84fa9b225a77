//! Nodes as child processes of this binary: started with flags, their URL read from the line they
//! print, killed with SIGKILL (as a crash) and started again with the same flags.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A node running as a child process.
pub struct NodeProcess {
    args: Vec<String>,
    child: Option<Child>,
    /// `http://host:port`, as the node printed it.
    pub url: String,
}

impl NodeProcess {
    /// Starts this binary with `args` and waits for the line with its URL.
    pub async fn spawn(args: &[&str]) -> anyhow::Result<Self> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, url) = launch(&args).await?;
        Ok(Self {
            args,
            child: Some(child),
            url,
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the process again with the same flags.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let (child, url) = launch(&self.args).await?;
        self.child = Some(child);
        self.url = url;
        Ok(())
    }
}

async fn launch(args: &[String]) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut child = Command::new(exe)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("STOCKMESH_CHILD_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot spawn stockmesh {args:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = line.find("http://") {
                return Some(line[at..].trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .with_context(|| format!("stockmesh {args:?} did not print its URL"))?;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}
