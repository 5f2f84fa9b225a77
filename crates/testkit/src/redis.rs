//! A private `redis-server` for one test: a free port on 127.0.0.1, its own data directory,
//! killed when the test ends. It can be killed with SIGKILL and restarted on the same port and
//! data, to test what survives a broker crash.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: a restart starts empty.
    None,
    /// Append-only file fsynced on every write: a kill -9 loses nothing acknowledged.
    AofAlways,
}

/// A running (or killed) private Redis.
pub struct RedisServer {
    port: u16,
    persistence: Persistence,
    dir: TempDir,
    child: Option<Child>,
}

const INSTALL_HINT: &str = "redis-server is not installed or not on PATH. Install it with \
`sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS); the \
integration tests start their own private server and need the binary.";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind port 0");
    listener.local_addr().expect("no local address").port()
}

impl RedisServer {
    /// Starts a server without persistence. Panics with the install command if `redis-server`
    /// is missing: a test that needs Redis must never pass without it.
    pub async fn start() -> Self {
        Self::start_with(Persistence::None).await
    }

    /// Starts a server with the given persistence.
    pub async fn start_with(persistence: Persistence) -> Self {
        let mut server = Self {
            port: free_port(),
            persistence,
            dir: tempfile::tempdir().expect("cannot create a temporary directory"),
            child: None,
        };
        for _ in 0..5 {
            if server.launch().await {
                return server;
            }
            // Another process took the port between our probe and redis-server's bind.
            server.port = free_port();
        }
        panic!("redis-server failed to start on five different ports");
    }

    /// Spawns the process and waits until it answers PING; `false` if it died (port taken).
    async fn launch(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match self.persistence {
            Persistence::None => {
                command.arg("--appendonly").arg("no");
            }
            Persistence::AofAlways => {
                command
                    .arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg("always");
            }
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        for _ in 0..200 {
            if self.answers_ping().await {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "redis-server on port {} did not answer within 2 s; log: {}",
            self.port,
            self.log_path().display()
        );
    }

    async fn answers_ping(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        matches!(
            tokio::time::timeout(Duration::from_millis(200), stream.read_exact(&mut reply)).await,
            Ok(Ok(_))
        ) && &reply == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Kills the server with SIGKILL (no shutdown, no final save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server again on the same port and data directory (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.launch().await {
                return;
            }
            // The old socket may linger a moment; try again.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server could not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
