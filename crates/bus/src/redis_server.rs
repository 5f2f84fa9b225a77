//! The one helper that runs a private `redis-server`: started on a free port (or a given one)
//! and a data directory, waited for until it answers, killed with SIGKILL and restarted on the
//! same port and data (for fault tests), killed on drop. `stockmesh up` uses it when no Redis is
//! running; the testkit, the fault suite and the benchmark for their private servers.
//!
//! A server may start with ACL users ([`RedisProcess::start_with_users`]): they are written to an
//! owner-only ACL file in its data directory, given as `--aclfile` at every start (so a restart
//! keeps them, and `FLUSHALL` never touches them), with the default user off; the helper then
//! speaks to the server as the administrator it was given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::acl::{AclUser, acl_file};

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
    /// It exited at start on this many free ports in a row.
    #[error("redis-server failed to start on {0} different ports")]
    PortsTaken(usize),
    /// It kept exiting at start when started again on its port (after a kill).
    #[error("redis-server could not restart on port {0}")]
    WouldNotRestart(u16),
    /// Spawning failed otherwise.
    #[error("cannot start redis-server: {0}")]
    Io(#[from] std::io::Error),
}

/// How many free ports [`RedisProcess::start`] tries: another process may take a probed port
/// before `redis-server` binds it.
const PORT_ATTEMPTS: usize = 5;

/// How many times [`RedisProcess::restart`] tries, 50 ms apart: the killed server's socket may
/// linger a moment.
const RESTART_ATTEMPTS: usize = 50;

/// The ACL file a server reads at every start, and the administrator the helper speaks as.
#[derive(Debug, Clone)]
struct Users {
    file: PathBuf,
    admin: AclUser,
}

impl Users {
    /// Writes `admin` and `users` to `dir/users.acl` (0600), with the default user off.
    fn write(dir: &Path, admin: &AclUser, users: &[AclUser]) -> std::io::Result<Self> {
        let file = dir.join("users.acl");
        let mut all = vec![admin.clone()];
        all.extend_from_slice(users);
        write_owner_only(&file, &acl_file(&all))?;
        Ok(Self {
            file,
            admin: admin.clone(),
        })
    }
}

/// A running (or killed) `redis-server` child, with the port, data directory and users it keeps
/// across restarts. Killed on drop.
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    users: Option<Users>,
    /// Further `redis-server` flags (e.g. cluster mode), kept for restarts.
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts `redis-server` on a free port of 127.0.0.1 with its files in `dir`, and waits until
    /// it answers PING. This is how `stockmesh up`, the fault suite, the benchmark and the
    /// testkit get their private server.
    pub async fn start(dir: &Path, persistence: Persistence) -> Result<Self, SpawnError> {
        Self::start_on_free_port(dir, persistence, None).await
    }

    /// Like [`start`](Self::start), with only `admin` and `users` able to connect: they are
    /// written to `dir/users.acl` (0600), which the server reads at this and every later start.
    /// [`url`](Self::url) is then `admin`'s.
    pub async fn start_with_users(
        dir: &Path,
        persistence: Persistence,
        admin: &AclUser,
        users: &[AclUser],
    ) -> Result<Self, SpawnError> {
        let users = Users::write(dir, admin, users)?;
        Self::start_on_free_port(dir, persistence, Some(users)).await
    }

    async fn start_on_free_port(
        dir: &Path,
        persistence: Persistence,
        users: Option<Users>,
    ) -> Result<Self, SpawnError> {
        for _ in 0..PORT_ATTEMPTS {
            let port = stockmesh_process::free_port()?;
            let child = launch(port, dir, persistence, users.as_ref(), &[]).await;
            match child {
                // Another process took the port between our probe and redis-server's bind.
                Err(SpawnError::Exited(_)) => continue,
                Err(error) => return Err(error),
                Ok(child) => {
                    return Ok(Self {
                        port,
                        dir: dir.to_owned(),
                        persistence,
                        users,
                        extra: Vec::new(),
                        child: Some(child),
                    });
                }
            }
        }
        Err(SpawnError::PortsTaken(PORT_ATTEMPTS))
    }

    /// Starts `redis-server` on 127.0.0.1:`port` with its files in `dir`, and waits until it
    /// answers PING.
    pub async fn spawn(
        port: u16,
        dir: &Path,
        persistence: Persistence,
    ) -> Result<Self, SpawnError> {
        Self::spawn_with(port, dir, persistence, Vec::new()).await
    }

    /// Like [`spawn`](Self::spawn), with further `redis-server` flags (`extra`, e.g.
    /// `--cluster-enabled yes`) that restarts keep.
    pub async fn spawn_with(
        port: u16,
        dir: &Path,
        persistence: Persistence,
        extra: Vec<String>,
    ) -> Result<Self, SpawnError> {
        Self::spawn_on(port, dir, persistence, None, extra).await
    }

    /// Like [`spawn_with`](Self::spawn_with), with only `admin` and `users` able to connect, as
    /// [`start_with_users`](Self::start_with_users) sets them up (an ACL file read at every
    /// start; [`url`](Self::url) is `admin`'s).
    pub async fn spawn_with_users(
        port: u16,
        dir: &Path,
        persistence: Persistence,
        (admin, users): (&AclUser, &[AclUser]),
        extra: Vec<String>,
    ) -> Result<Self, SpawnError> {
        let users = Users::write(dir, admin, users)?;
        Self::spawn_on(port, dir, persistence, Some(users), extra).await
    }

    async fn spawn_on(
        port: u16,
        dir: &Path,
        persistence: Persistence,
        users: Option<Users>,
        extra: Vec<String>,
    ) -> Result<Self, SpawnError> {
        let child = launch(port, dir, persistence, users.as_ref(), &extra).await?;
        Ok(Self {
            port,
            dir: dir.to_owned(),
            persistence,
            users,
            extra,
            child: Some(child),
        })
    }

    /// Starts the server again on the same port and data directory (killing it first if it
    /// runs): what survives is what its persistence kept.
    pub async fn restart(&mut self) -> Result<(), SpawnError> {
        self.kill();
        for _ in 0..RESTART_ATTEMPTS {
            match launch(
                self.port,
                &self.dir,
                self.persistence,
                self.users.as_ref(),
                &self.extra,
            )
            .await
            {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(SpawnError::Exited(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => return Err(error),
            }
        }
        Err(SpawnError::WouldNotRestart(self.port))
    }

    /// `redis://127.0.0.1:<port>`, with the administrator's name and password when the server
    /// has users (so never print it unredacted).
    pub fn url(&self) -> String {
        match &self.users {
            Some(users) => users.admin.url(&self.address()),
            None => format!("redis://{}", self.address()),
        }
    }

    /// `127.0.0.1:<port>`, for [`AclUser::url`].
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server runs (was not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server with SIGKILL (no shutdown, no final save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            reap(&mut child);
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Writes `text` to a new or truncated `path` readable by its owner only.
fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

/// Spawns `redis-server` and waits until it answers PING (as the administrator when it has
/// users); a server that stays silent is killed.
async fn launch(
    port: u16,
    dir: &Path,
    persistence: Persistence,
    users: Option<&Users>,
    extra: &[String],
) -> Result<Child, SpawnError> {
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
        .arg(fsync)
        .args(extra);
    if let Some(users) = users {
        command.arg("--aclfile").arg(&users.file);
    }
    let login = users.map(|u| (u.admin.name.as_str(), u.admin.password.as_str()));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpawnError::NotInstalled);
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..500 {
        if answers(port, login).await {
            return Ok(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Err(SpawnError::Exited(log));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reap(&mut child);
    Err(SpawnError::Silent(log))
}

/// Whether something on 127.0.0.1:`port` answers a Redis PING within 200 ms.
pub async fn answers_ping(port: u16) -> bool {
    answers(port, None).await
}

/// A command in the Redis protocol (RESP): an array of bulk strings.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Whether 127.0.0.1:`port` answers PING within 200 ms, after `AUTH user password` if `login`.
async fn answers(port: u16, login: Option<(&str, &str)>) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let mut expected = Vec::new();
        if let Some((user, password)) = login {
            stream
                .write_all(&resp(&["AUTH", user, password]))
                .await
                .ok()?;
            expected.extend_from_slice(b"+OK\r\n");
        }
        stream.write_all(b"PING\r\n").await.ok()?;
        expected.extend_from_slice(b"+PONG\r\n");
        let mut reply = vec![0u8; expected.len()];
        stream.read_exact(&mut reply).await.ok()?;
        Some(reply == expected)
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(200), probe).await,
        Ok(Some(true))
    )
}
