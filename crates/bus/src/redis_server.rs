//! A `redis-server` child process: started on a port and data directory, waited for until it
//! answers, killed on drop. `stockmesh up` uses it when no Redis is running; the testkit uses it
//! for each test's private server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: a restart starts empty.
    None,
    /// Append-only file fsynced on every write: a kill -9 loses nothing acknowledged.
    AofAlways,
    /// Append-only file fsynced every second: a power cut may lose the last second.
    AofEverySec,
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `redis-server` is not on `PATH`.
    #[error(
        "redis-server is not installed or not on PATH; install it with \
         `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"
    )]
    NotInstalled,
    /// The process exited at once (e.g. its port was taken).
    #[error("redis-server exited at start; see {0}")]
    Exited(PathBuf),
    /// It did not answer PING in time.
    #[error("redis-server did not answer within 5 s; see {0}")]
    Silent(PathBuf),
    /// Spawning failed otherwise.
    #[error("cannot start redis-server: {0}")]
    Io(#[from] std::io::Error),
}

/// A running `redis-server` child.
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts `redis-server` on 127.0.0.1:`port` with its files in `dir`, and waits until it
    /// answers PING.
    pub async fn spawn(
        port: u16,
        dir: &Path,
        persistence: Persistence,
    ) -> Result<Self, SpawnError> {
        let log = dir.join("redis.log");
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir)
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (aof, fsync) = match persistence {
            Persistence::None => ("no", "everysec"),
            Persistence::AofAlways => ("yes", "always"),
            Persistence::AofEverySec => ("yes", "everysec"),
        };
        command
            .arg("--appendonly")
            .arg(aof)
            .arg("--appendfsync")
            .arg(fsync);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpawnError::NotInstalled);
            }
            Err(e) => return Err(e.into()),
        };
        let mut process = Self {
            port,
            child: Some(child),
        };
        for _ in 0..500 {
            if answers_ping(port).await {
                return Ok(process);
            }
            if let Some(child) = process.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                process.child = None;
                return Err(SpawnError::Exited(log));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(SpawnError::Silent(log))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no shutdown, no final save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something on 127.0.0.1:`port` answers a Redis PING within 200 ms.
pub async fn answers_ping(port: u16) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.ok()?;
        Some(&reply == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(200), probe).await,
        Ok(Some(true))
    )
}
