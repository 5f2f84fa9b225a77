//! Nodes as child processes of the `stockmesh` binary: started with flags, their URL read from
//! the line they print, killed with SIGKILL (as a crash), stopped with SIGTERM, and started again
//! with the same flags. The fault suite, the benchmark and the process tests all launch nodes
//! through here.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Why a node could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The path of the running executable is unknown.
    #[error("cannot find this binary: {0}")]
    NoBinary(#[source] std::io::Error),
    /// The OS refused to start the process.
    #[error("cannot spawn {binary} {args:?}: {source}")]
    Spawn {
        /// The executable.
        binary: PathBuf,
        /// Its flags.
        args: Vec<String>,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The process closed its output without printing its URL (it exited, e.g. on a bad flag).
    #[error("stockmesh {0:?} exited without printing its URL")]
    Exited(Vec<String>),
    /// The process printed no URL in time.
    #[error("stockmesh {args:?} did not print its URL within {within:?}")]
    Silent {
        /// Its flags.
        args: Vec<String>,
        /// How long it was given.
        within: Duration,
    },
}

/// How nodes are started: which binary, how they log, how long they may take to print their URL.
#[derive(Debug, Clone)]
pub struct Launcher {
    binary: PathBuf,
    /// `RUST_LOG` of the children.
    log: String,
    /// Whether the children's stderr is discarded instead of shared with this process.
    quiet: bool,
    url_within: Duration,
}

impl Launcher {
    /// Nodes of `binary`, logging warnings to this process's stderr, given 10 s to print their
    /// URL.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            log: "warn".into(),
            quiet: false,
            url_within: Duration::from_secs(10),
        }
    }

    /// Nodes of the running executable (for subcommands that start their own cluster), logging
    /// at `STOCKMESH_CHILD_LOG` (default `error`), given 30 s to print their URL.
    pub fn this_binary() -> Result<Self, LaunchError> {
        let binary = std::env::current_exe().map_err(LaunchError::NoBinary)?;
        Ok(Self {
            log: std::env::var("STOCKMESH_CHILD_LOG").unwrap_or_else(|_| "error".into()),
            url_within: Duration::from_secs(30),
            ..Self::new(binary)
        })
    }

    /// The same, with the children's `RUST_LOG` set to `filter`.
    pub fn log(mut self, filter: impl Into<String>) -> Self {
        self.log = filter.into();
        self
    }

    /// The same, with the children's stderr discarded.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Starts a node with `args` (which must make it print its `http://` URL) and waits for that
    /// line.
    pub async fn spawn(&self, args: &[&str]) -> Result<NodeProcess, LaunchError> {
        self.spawn_with_env(args, &[]).await
    }

    /// Like [`spawn`](Self::spawn), with environment variables `env` set in the child (here and
    /// at every restart): the way to hand it a secret, which flags would show in `ps` and in
    /// launch errors. Their values are never printed.
    pub async fn spawn_with_env(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<NodeProcess, LaunchError> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let env = Env(env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect());
        let (child, url) = self.launch(&args, &env).await?;
        Ok(NodeProcess {
            launcher: self.clone(),
            args,
            env,
            child: Some(child),
            url,
        })
    }

    async fn launch(&self, args: &[String], env: &Env) -> Result<(Child, String), LaunchError> {
        let mut child = Command::new(&self.binary)
            .args(args)
            .envs(env.0.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", &self.log)
            .stdout(Stdio::piped())
            .stderr(if self.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                binary: self.binary.clone(),
                args: args.to_vec(),
                source,
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LaunchError::Exited(args.to_vec()))?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(self.url_within, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("http://") {
                    return Some(line[at..].trim().to_owned());
                }
            }
            None
        })
        .await
        .map_err(|_| LaunchError::Silent {
            args: args.to_vec(),
            within: self.url_within,
        })?
        .ok_or_else(|| LaunchError::Exited(args.to_vec()))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((child, url))
    }
}

/// Environment variables of a child; `Debug` shows their names only (values may be secrets).
#[derive(Clone, Default)]
struct Env(Vec<(String, String)>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// A node running as a child process; killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    launcher: Launcher,
    args: Vec<String>,
    env: Env,
    child: Option<Child>,
    url: String,
}

impl NodeProcess {
    /// `http://host:port`, as the node printed it (the latest start's).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is running (not killed or terminated).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the process with SIGTERM and waits up to 10 s for its graceful exit (then kills
    /// it); returns whether it exited successfully.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        if let Some(pid) = child.id() {
            // `kill(1)` rather than a signal crate: unsafe code is forbidden here.
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

    /// Starts the process again with the same flags (killing it first if it runs).
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.kill().await;
        let (child, url) = self.launcher.launch(&self.args, &self.env).await?;
        self.child = Some(child);
        self.url = url;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_binary_is_a_spawn_error() {
        let launcher = Launcher::new("/nonexistent/stockmesh");
        let error = launcher
            .spawn(&["store"])
            .await
            .expect_err("no such binary");
        assert!(matches!(error, LaunchError::Spawn { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_process_that_prints_no_url_is_an_exit_error() {
        let error = Launcher::new("true")
            .spawn(&[])
            .await
            .expect_err("prints nothing");
        assert!(matches!(error, LaunchError::Exited(_)), "{error}");
    }
}
