//! A private `redis-server` for one test: a free port on 127.0.0.1, its own data directory,
//! killed when the test ends. It can be killed with SIGKILL and restarted on the same port and
//! data, to test what survives a broker crash.

use std::path::PathBuf;
use std::time::Duration;

pub use stockmesh_bus::redis_server::Persistence;
use stockmesh_bus::redis_server::{RedisProcess, SpawnError};
use tempfile::TempDir;

/// A running (or killed) private Redis.
pub struct RedisServer {
    port: u16,
    persistence: Persistence,
    dir: TempDir,
    process: Option<RedisProcess>,
}

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
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        for _ in 0..5 {
            let port = free_port();
            match RedisProcess::spawn(port, dir.path(), persistence).await {
                Ok(process) => {
                    return Self {
                        port,
                        persistence,
                        dir,
                        process: Some(process),
                    };
                }
                // Another process took the port between our probe and redis-server's bind.
                Err(SpawnError::Exited(_)) => continue,
                Err(error) => panic!("{error}"),
            }
        }
        panic!("redis-server failed to start on five different ports");
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
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Starts the server again on the same port and data directory (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            match RedisProcess::spawn(self.port, self.dir.path(), self.persistence).await {
                Ok(process) => {
                    self.process = Some(process);
                    return;
                }
                // The old socket may linger a moment; try again.
                Err(SpawnError::Exited(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => panic!("{error}"),
            }
        }
        panic!("redis-server could not restart on port {}", self.port);
    }
}
