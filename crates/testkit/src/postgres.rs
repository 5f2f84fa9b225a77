//! A fresh PostgreSQL database for one test, dropped when the test ends.
//!
//! The server is not private (unlike [`crate::RedisServer`]): starting a PostgreSQL cluster per
//! test would cost seconds, while `CREATE DATABASE ... TEMPLATE template0` costs milliseconds.
//! Each [`PgDatabase`] gets a random name, so tests run in parallel without sharing tables, and
//! its [`Drop`] removes it even when the test panicked.
//!
//! The server is found through the admin URL in `STOCKMESH_TEST_PG` (default
//! [`DEFAULT_ADMIN_URL`]); the role in it must be allowed to create databases. A test that needs
//! PostgreSQL panics, naming the server and how to start one, when none answers: it must never
//! pass without one.

use sqlx::Connection;
use stockmesh_bus::pg_admin::{
    AdminError, connect as connect_admin, create_database, database_url, drop_database, execute,
    host_port,
};

/// The environment variable that names the admin URL of the test server.
pub const ADMIN_URL_VAR: &str = "STOCKMESH_TEST_PG";

/// The admin URL used when [`ADMIN_URL_VAR`] is unset.
pub use stockmesh_bus::pg_admin::DEFAULT_ADMIN_URL;

/// A database of its own for one test on the PostgreSQL server named by [`ADMIN_URL_VAR`];
/// dropped (with any connections still open to it) when this value is dropped.
pub struct PgDatabase {
    /// The URL of this database: the admin URL with the database name replaced.
    url: String,
    /// The database's name: `stockmesh_test_` and 32 random hex digits.
    name: String,
    /// The admin URL, kept to connect again for the drop.
    admin: String,
}

impl PgDatabase {
    /// Creates an empty database (UTF8, from `template0`) with a random name. Panics with what to
    /// install or start when the server does not answer within 5 s, and when the creation fails.
    pub async fn fresh() -> PgDatabase {
        let admin = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("stockmesh_test_{:032x}", rand::random::<u128>());
        match create_database(&admin, &name, "template0").await {
            Ok(()) => {}
            Err(AdminError::Unreachable(error)) => panic!(
                "this test needs a PostgreSQL server at {} ({error}). Install one with \
                 `apt-get install postgresql` and start it with `pg_ctlcluster 15 main start` or \
                 `service postgresql start`, or point {ADMIN_URL_VAR} at another server's admin \
                 URL (default {DEFAULT_ADMIN_URL})",
                host_port(&admin)
            ),
            Err(AdminError::Refused(error)) => panic!(
                "cannot create the test database {name} on the PostgreSQL server at {}: {error}",
                host_port(&admin)
            ),
        }
        PgDatabase {
            url: database_url(&admin, &name),
            name,
            admin,
        }
    }

    /// The URL of this database (the admin URL's host, port, role and options).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A copy of this database under a new random name (`CREATE DATABASE ... TEMPLATE`): a
    /// backup. Nobody may be connected to this one meanwhile.
    pub async fn copy(&self) -> PgDatabase {
        let name = format!("stockmesh_test_{:032x}", rand::random::<u128>());
        self.admin_sql(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
            self.name
        ))
        .await;
        PgDatabase {
            url: database_url(&self.admin, &name),
            name,
            admin: self.admin.clone(),
        }
    }

    /// Replaces this database's content with a copy of `source` (a restore from a backup), or
    /// with nothing (a lost database) when `source` is `None`; connections to it are closed.
    pub async fn replace_with(&self, source: Option<&PgDatabase>) {
        self.admin_sql(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .await;
        let template = source.map_or("template0", |source| source.name.as_str());
        self.admin_sql(&format!(
            "CREATE DATABASE \"{}\" TEMPLATE \"{template}\" ENCODING 'UTF8'",
            self.name
        ))
        .await;
    }

    /// Runs `sql` through the admin database; panics saying what failed.
    async fn admin_sql(&self, sql: &str) {
        let mut conn = connect_admin(&self.admin)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL at {}: {error}", host_port(&self.admin)));
        execute(&mut conn, sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
        let _ = conn.close().await;
    }
}

impl Drop for PgDatabase {
    /// Drops the database, closing connections still open to it. `Drop` cannot await and may run
    /// on a runtime's thread (where `block_on` would panic), so the work runs on a thread of its
    /// own with its own runtime, joined before returning. Errors are printed, not raised: a
    /// panic here would abort a test that is already unwinding.
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        let spawned = std::thread::Builder::new()
            .name("pg-drop-database".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => return Err(format!("cannot start a runtime: {error}")),
                };
                runtime.block_on(drop_database(&admin, &name))
            });
        let outcome = match spawned {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("its thread panicked".to_owned())),
            Err(error) => Err(format!("cannot start its thread: {error}")),
        };
        if let Err(error) = outcome {
            eprintln!("cannot drop the test database {}: {error}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};

    use super::*;

    /// Whether the admin server lists a database called `name`.
    async fn exists(admin: &str, name: &str) -> bool {
        let mut conn = PgConnection::connect(admin)
            .await
            .expect("cannot connect to the admin database");
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .expect("cannot read pg_database");
        found.is_some()
    }

    #[tokio::test]
    async fn a_fresh_database_answers_through_its_url_and_is_gone_after_drop() {
        let db = PgDatabase::fresh().await;
        let (admin, name) = (db.admin.clone(), db.name.clone());
        let mut conn = PgConnection::connect(db.url())
            .await
            .expect("cannot connect to the fresh database");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .expect("SELECT 1 failed");
        assert_eq!(one, 1);
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .expect("cannot read current_database()");
        assert_eq!(current, name);
        assert!(exists(&admin, &name).await);

        // Left open on purpose: the drop must force it closed.
        drop(db);
        assert!(!exists(&admin, &name).await, "{name} survived its drop");
        drop(conn);
    }

    #[tokio::test]
    async fn two_fresh_databases_have_different_names() {
        let first = PgDatabase::fresh().await;
        let second = PgDatabase::fresh().await;
        assert_ne!(first.name, second.name);
        assert_ne!(first.url(), second.url());
        assert!(first.name.starts_with("stockmesh_test_"));
        assert_eq!(first.name.len(), "stockmesh_test_".len() + 32);
    }
}
