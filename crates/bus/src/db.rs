//! Opens a service's SQLite database: WAL, the chosen durability, one writer connection and a few
//! readers, and the schema migrations of the bus (outbox, inbox) plus the service's own.
//!
//! SQLite allows one writer at a time. Funnelling every write through a pool of exactly one
//! connection queues writers in-process instead of letting them collide on `SQLITE_BUSY`, and
//! makes "read, check, update" inside one transaction safe without `BEGIN IMMEDIATE` tricks.
//! Request writes go through [`Database::write`], which gathers concurrent ones into one
//! transaction (group commit, [`crate::writer`]); background workers may use the pool directly.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use crate::writer::{GroupCommit, GroupWriter, WriteError};

/// The bus's own tables (outbox, inbox). Versions below 100; services number theirs from 100.
static BUS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Why a node is not ready, in words fit for any client (the cause itself goes to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// Its database does not answer.
    #[error("database unavailable")]
    Database,
    /// Its broker does not answer.
    #[error("broker unreachable")]
    Broker,
    /// Its checks did not finish in time.
    #[error("readiness checks timed out")]
    TimedOut,
}

/// Creates the database's directory (mode 0700) and file (mode 0600) when missing, so that stock,
/// ledgers and outboxes are readable by the node's own user only. SQLite gives the `-wal` and
/// `-shm` files the mode of the database file. Existing files and directories keep their modes:
/// an operator may have chosen them.
fn create_private(file: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    if file.as_os_str().is_empty() || file.to_str() == Some(":memory:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot create database file {}", file.display()))
        }
    }
}

/// How hard a commit works to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is on disk before it is acknowledged (the default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: a power cut may lose the last commits, never corrupt the file.
    Normal,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!("unknown durability {other:?}: use full or normal")),
        }
    }
}

/// Where and how to open a database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://path/to/file.db` or a plain path. The file and its directory are created.
    pub url: String,
    /// Commit durability.
    pub durability: Durability,
    /// Connections in the read pool.
    pub readers: u32,
    /// How [`Database::write`] gathers writes into one transaction.
    pub group: GroupCommit,
}

impl DbConfig {
    /// A durable database at `url` with the default number of readers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            durability: Durability::Full,
            readers: 4,
            group: GroupCommit::default(),
        }
    }
}

/// A service's database: one writer, several readers.
#[derive(Debug, Clone)]
pub struct Database {
    /// The only connection that writes; every write transaction goes through it.
    pub writer: SqlitePool,
    /// Connections for queries that only read.
    pub reader: SqlitePool,
    /// Gathers concurrent writes into one transaction on `writer` (group commit).
    group: GroupWriter,
}

impl Database {
    /// Opens (creating if needed) the database and applies the bus's migrations and `service`'s.
    pub async fn open(config: &DbConfig, service: &Migrator) -> anyhow::Result<Self> {
        let url = if config.url.starts_with("sqlite:") {
            config.url.clone()
        } else {
            format!("sqlite://{}", config.url)
        };
        let options = SqliteConnectOptions::from_str(&url)
            .with_context(|| format!("invalid database URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match config.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        create_private(options.get_filename())?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        let migrations = BUS_MIGRATIONS
            .iter()
            .chain(service.iter())
            .cloned()
            .collect();
        Migrator::with_migrations(migrations)
            .run(&writer)
            .await
            .with_context(|| format!("cannot migrate database {url}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {url} for reading"))?;
        let group = GroupWriter::spawn(writer.clone(), config.group);
        Ok(Self {
            writer,
            reader,
            group,
        })
    }

    /// Whether the node can serve: the database answers, and the broker if it has one; otherwise
    /// why not, in words fit for any client (`broker unreachable`); the error itself, which may
    /// name hosts, users or driver internals, goes to the log. Bounded to 2 s so that a hung
    /// dependency cannot hang the probe.
    pub async fn readiness(
        &self,
        broker: Option<&std::sync::Arc<dyn crate::Broker>>,
    ) -> Result<(), NotReady> {
        let probe = async {
            if let Err(error) = sqlx::query("SELECT 1").execute(&self.reader).await {
                tracing::warn!(%error, "not ready: database unavailable");
                return Err(NotReady::Database);
            }
            if let Some(broker) = broker
                && let Err(error) = broker.ping().await
            {
                tracing::warn!(%error, "not ready: broker unreachable");
                return Err(NotReady::Broker);
            }
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("not ready: readiness checks took over 2 s");
                Err(NotReady::TimedOut)
            })
    }

    /// Runs `work` on the writer connection in the next group commit (see [`crate::writer`]),
    /// and returns its result once the transaction holding it is durable. An `Err` from `work`
    /// undoes its own changes only.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        self.group.write(work).await
    }

    /// Closes both pools, waiting for connections to return (a clean WAL checkpoint).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    static NO_MIGRATIONS: Migrator = sqlx::migrate!("./tests/no_migrations");

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[tokio::test]
    async fn database_files_and_directories_are_created_owner_only() {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let dir = tmp.path().join("data").join("nested");
        let file = dir.join("node.db");
        let db = Database::open(&DbConfig::new(file.display().to_string()), &NO_MIGRATIONS)
            .await
            .expect("opens");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&db.writer)
            .await
            .expect("writes");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        for name in ["node.db", "node.db-wal", "node.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        db.close().await;
    }
}
