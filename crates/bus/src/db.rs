//! Opens a service's database, SQLite (embedded, the default) or PostgreSQL (chosen by a
//! `postgres://` URL), with one writer connection and a few readers, and applies the schema
//! migrations of the bus (outbox, inbox) plus the service's own, in the engine's dialect.
//!
//! Both engines are reached through sqlx's `Any` driver, so every query is written once, in the
//! SQL both understand (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT-sized integers).
//!
//! SQLite allows one writer at a time. Funnelling every write through a pool of exactly one
//! connection queues writers in-process instead of letting them collide on `SQLITE_BUSY`, and
//! makes "read, check, update" inside one transaction safe without `BEGIN IMMEDIATE` tricks.
//! On PostgreSQL the node keeps the same single writer (and its group commit); the statements
//! themselves are written to stay correct when several nodes write (conditional updates,
//! `ON CONFLICT`). Request writes go through [`Database::write`], which gathers concurrent ones
//! into one transaction (group commit, [`crate::writer`]); background workers may use the pool
//! directly.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use crate::writer::{GroupCommit, GroupWriter, Mark, WriteError};

/// The bus's own tables (outbox, inbox). Versions below 100; services number theirs from 100.
static BUS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// The bus's own tables in PostgreSQL's dialect, same versions.
static BUS_MIGRATIONS_PG: Migrator = sqlx::migrate!("./migrations_pg");

/// A service's schema migrations, per engine: SQLite always, PostgreSQL when the service runs on
/// it (Central does; a store keeps its stock in an embedded SQLite file).
#[derive(Debug)]
pub struct Schema {
    /// The migrations in SQLite's dialect.
    pub sqlite: &'static Migrator,
    /// The same migrations in PostgreSQL's dialect; `None`: the service runs on SQLite only.
    pub postgres: Option<&'static Migrator>,
}

impl Schema {
    /// A schema for SQLite only.
    pub const fn sqlite(migrations: &'static Migrator) -> Self {
        Self {
            sqlite: migrations,
            postgres: None,
        }
    }
}

/// The database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An embedded SQLite file (a path or `sqlite://` URL).
    Sqlite,
    /// A PostgreSQL server (`postgres://` or `postgresql://` URL).
    Postgres,
}

impl Engine {
    /// The engine `url` names: PostgreSQL for `postgres://`/`postgresql://`, SQLite otherwise.
    pub fn of(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }
}

/// `url` fit for a log or an error: a password in it is replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

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

/// Where and how to open a database. Its `Debug` hides a password in the URL.
#[derive(Clone)]
pub struct DbConfig {
    /// `sqlite://path/to/file.db` or a plain path (the file and its directory are created), or
    /// `postgres://user@host/database` (the database must exist).
    pub url: String,
    /// Commit durability (on PostgreSQL: `synchronous_commit` on or off for the node's sessions).
    pub durability: Durability,
    /// Connections in the read pool.
    pub readers: u32,
    /// How [`Database::write`] gathers writes into one transaction.
    pub group: GroupCommit,
    /// On PostgreSQL, the name this node's outbox rows carry (a Central replica's consumer
    /// name): several nodes may share the database, and each relay publishes only its own rows.
    /// Ignored on SQLite (one node per file).
    pub origin: Option<String>,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &redacted(&self.url))
            .field("durability", &self.durability)
            .field("readers", &self.readers)
            .field("group", &self.group)
            .field("origin", &self.origin)
            .finish()
    }
}

impl DbConfig {
    /// A durable database at `url` with the default number of readers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            durability: Durability::Full,
            readers: 4,
            group: GroupCommit::default(),
            origin: None,
        }
    }
}

/// A service's database: one writer, several readers.
#[derive(Debug, Clone)]
pub struct Database {
    /// The only connection that writes; every write transaction goes through it.
    pub writer: AnyPool,
    /// Connections for queries that only read.
    pub reader: AnyPool,
    /// Which engine holds the data.
    engine: Engine,
    /// The name this node's outbox rows carry on a shared database (PostgreSQL only).
    origin: Option<String>,
    /// Gathers concurrent writes into one transaction on `writer` (group commit).
    group: GroupWriter,
}

impl Database {
    /// Opens the database `config.url` names (creating an SQLite file if needed) and applies the
    /// bus's migrations and `service`'s, in the engine's dialect. Errors name the database with
    /// any password hidden.
    pub async fn open(config: &DbConfig, service: &Schema) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(&config.url);
        let (url, bus, own) = match engine {
            Engine::Sqlite => {
                let url = sqlite_url(&config.url)?;
                (url, &BUS_MIGRATIONS, service.sqlite)
            }
            Engine::Postgres => {
                let own = service.postgres.with_context(|| {
                    format!(
                        "this service runs on SQLite only, not on {}: give --db a file path or a sqlite:// URL",
                        redacted(&config.url)
                    )
                })?;
                (config.url.clone(), &BUS_MIGRATIONS_PG, own)
            }
        };
        let shown = redacted(&url);
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid database URL {shown}"))?;
        let session = session_settings(engine, config.durability);
        let origin = config.origin.clone().filter(|_| engine == Engine::Postgres);
        let pool = |connections: u32| {
            let origin = origin.clone();
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(30))
                // A SQLite connection is a file: nothing to test before lending it, and a ping
                // is one more round trip to its worker thread on every read and every group
                // commit. A PostgreSQL connection may have died with its server: ping it.
                .test_before_acquire(engine == Engine::Postgres)
                .after_connect(move |conn, _| {
                    let origin = origin.clone();
                    Box::pin(async move {
                        sqlx::raw_sql(session).execute(&mut *conn).await?;
                        if let Some(origin) = origin {
                            sqlx::query("SELECT set_config('stockmesh.origin', $1, false)")
                                .bind(origin)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
        };
        let writer = pool(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open database {shown}"))?;
        let migrations = bus.iter().chain(own.iter()).cloned().collect();
        Migrator::with_migrations(migrations)
            .run(&writer)
            .await
            .with_context(|| format!("cannot migrate database {shown}"))?;
        let reader = pool(config.readers.max(1))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {shown} for reading"))?;
        let group = GroupWriter::spawn(writer.clone(), config.group);
        Ok(Self {
            writer,
            reader,
            engine,
            origin,
            group,
        })
    }

    /// Which engine holds the data.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The name this node's outbox rows carry on a shared database; `None` on SQLite.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// A read-only transaction on the readers whose statements all see one snapshot, for reads
    /// that must agree with each other (a count and the rows it counts). SQLite's read
    /// transactions do; PostgreSQL's default (READ COMMITTED) takes a snapshot per statement, so
    /// there it is REPEATABLE READ.
    pub async fn snapshot(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.engine {
            Engine::Sqlite => self.reader.begin().await,
            Engine::Postgres => {
                self.reader
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
            }
        }
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
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        self.group.write(work).await
    }

    /// As [`write`](Self::write), for a write whose first statement carries the move of the
    /// group's mark ([`GroupWriter::write_leading`]): one round trip fewer.
    pub async fn write_leading<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut Mark) -> BoxFuture<'c, Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        self.group.write_leading(work).await
    }

    /// Closes both pools, waiting for connections to return (a clean WAL checkpoint).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The `sqlite://` URL of `path_or_url`, its file and directory created owner-only when missing.
fn sqlite_url(path_or_url: &str) -> anyhow::Result<String> {
    let path = path_or_url
        .strip_prefix("sqlite://")
        .or_else(|| path_or_url.strip_prefix("sqlite:"))
        .unwrap_or(path_or_url);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path != ":memory:" {
        create_private(std::path::Path::new(path))?;
    }
    let encoded = percent_encoding::utf8_percent_encode(path, FILE_NAME).to_string();
    Ok(if query.is_empty() {
        format!("sqlite://{encoded}?mode=rwc")
    } else {
        format!("sqlite://{encoded}?{query}")
    })
}

/// What a file name keeps of itself in a URL: everything but what a URL gives a meaning to.
const FILE_NAME: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'?')
    .add(b'#');

/// The settings every connection starts with. SQLite: write-ahead log, the chosen durability,
/// foreign keys, and a busy timeout for the readers beside the writer. PostgreSQL: the chosen
/// durability (`synchronous_commit`).
fn session_settings(engine: Engine, durability: Durability) -> &'static str {
    match (engine, durability) {
        (Engine::Sqlite, Durability::Full) => {
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;"
        }
        (Engine::Sqlite, Durability::Normal) => {
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;"
        }
        (Engine::Postgres, Durability::Full) => "SET synchronous_commit = on;",
        (Engine::Postgres, Durability::Normal) => "SET synchronous_commit = off;",
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
        let db = Database::open(
            &DbConfig::new(file.display().to_string()),
            &Schema::sqlite(&NO_MIGRATIONS),
        )
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

    #[test]
    fn a_password_never_shows_in_a_redacted_url() {
        assert_eq!(
            redacted("postgres://central:s3cret@db.example:5432/stock?sslmode=require"),
            "postgres://central:***@db.example:5432/stock?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://central@db/stock"),
            "postgres://central@db/stock"
        );
        assert_eq!(redacted("data/central.db"), "data/central.db");
    }

    #[test]
    fn a_config_shows_no_password() {
        let shown = format!("{:?}", DbConfig::new("postgres://central:s3cret@db/stock"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[tokio::test]
    async fn a_sqlite_only_service_refuses_a_postgres_url_naming_why() {
        let error = Database::open(
            &DbConfig::new("postgres://store:s3cret@db.example/stock"),
            &Schema::sqlite(&NO_MIGRATIONS),
        )
        .await
        .expect_err("a store has no PostgreSQL schema");
        let message = format!("{error:#}");
        assert!(message.contains("runs on SQLite only"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn the_url_chooses_the_engine() {
        assert_eq!(Engine::of("postgres://h/d"), Engine::Postgres);
        assert_eq!(Engine::of("postgresql://h/d"), Engine::Postgres);
        assert_eq!(Engine::of("sqlite://c.db"), Engine::Sqlite);
        assert_eq!(Engine::of("data/c.db"), Engine::Sqlite);
    }
}
