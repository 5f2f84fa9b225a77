//! Central's PostgreSQL database in the scaled run (`--scaled`): a fresh database on the server
//! of the admin URL, its backup (`CREATE DATABASE … TEMPLATE`, the copy an operator would restore
//! from) and the restore (drop, then create again from the copy), and dropping both at the end
//! of the run. The server is not private (unlike the Redis Cluster): creating a database costs
//! milliseconds where starting a PostgreSQL cluster would cost seconds.
//!
//! The fault suite is part of the binary and must not depend on the test kit: it shares
//! `stockmesh_bus::pg_admin` with it instead.

use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use stockmesh_bus::pg_admin::{self, AdminError, connect, database_url, host_port};

/// The admin URL used when neither `--pg-admin` nor `STOCKMESH_TEST_PG` names one.
pub use stockmesh_bus::pg_admin::DEFAULT_ADMIN_URL;

/// A database of the run on the server of an admin URL, and the name of its backup copy.
/// Nothing here drops it by itself: the run calls [`drop_all`](Self::drop_all) at its end,
/// whether it passed or failed.
#[derive(Clone)]
pub struct PgDatabase {
    /// The admin URL (a role allowed to create databases); may hold a password, never printed.
    admin: String,
    /// The database's name: `stockmesh_chaos_` and 16 random hex digits.
    name: String,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("server", &host_port(&self.admin))
            .field("name", &self.name)
            .finish()
    }
}

impl PgDatabase {
    /// Creates an empty database (UTF8, from `template0`) with a random name on the server of
    /// `admin`; an error names the server and how to start one when none answers.
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let database = Self {
            admin: admin.to_owned(),
            name: format!("stockmesh_chaos_{:016x}", rand::random::<u64>()),
        };
        match pg_admin::create_database(admin, &database.name, "template0").await {
            Ok(()) => {}
            Err(AdminError::Unreachable(error)) => anyhow::bail!(
                "--scaled runs Central on PostgreSQL, but no PostgreSQL server answers at {} \
                 ({error}). Start one (`service postgresql start` or `pg_ctlcluster 15 main \
                 start`), or give another server's admin URL with --pg-admin or \
                 STOCKMESH_TEST_PG (default {DEFAULT_ADMIN_URL})",
                host_port(admin)
            ),
            Err(AdminError::Refused(error)) => anyhow::bail!(
                "cannot create the database {} on the PostgreSQL server at {}: {error}",
                database.name,
                host_port(admin)
            ),
        }
        Ok(database)
    }

    /// The URL of this database (the admin URL's host, port, role and options; may hold a
    /// password: hand it to a node in its environment, never print it).
    pub fn url(&self) -> String {
        database_url(&self.admin, &self.name)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's `host:port`, without role or password.
    pub fn server(&self) -> String {
        host_port(&self.admin)
    }

    /// The name of the backup copy.
    fn copy_name(&self) -> String {
        format!("{}_copy", self.name)
    }

    /// Takes the backup: `CREATE DATABASE copy TEMPLATE db`, replacing an older copy. Every
    /// Central must be stopped: PostgreSQL copies only a database nobody is connected to (the
    /// sessions of killed processes, which the server may not have noticed yet, are ended).
    pub async fn back_up(&self) -> anyhow::Result<()> {
        let copy = self.copy_name();
        self.admin_sql(&[
            format!("DROP DATABASE IF EXISTS \"{copy}\" WITH (FORCE)"),
            terminate_sessions(&self.name),
            format!("CREATE DATABASE \"{copy}\" TEMPLATE \"{}\"", self.name),
        ])
        .await
    }

    /// Restores the backup: drops the database (ending any session still open to it) and
    /// creates it again from the copy, which keeps its identity (the id Central's migrations
    /// made), as a restore from last night's dump would.
    pub async fn restore(&self) -> anyhow::Result<()> {
        let copy = self.copy_name();
        self.admin_sql(&[
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            terminate_sessions(&copy),
            format!("CREATE DATABASE \"{}\" TEMPLATE \"{copy}\"", self.name),
        ])
        .await
    }

    /// Drops the database and its copy, ending the sessions still open to them.
    pub async fn drop_all(&self) -> anyhow::Result<()> {
        self.admin_sql(&[
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.copy_name()
            ),
        ])
        .await
    }

    /// Runs `statements` in order through the admin database. A `CREATE DATABASE … TEMPLATE`
    /// refused because its source still has a session (one ending as it is asked) is retried
    /// for a few seconds.
    async fn admin_sql(&self, statements: &[String]) -> anyhow::Result<()> {
        let mut conn = connect(&self.admin)
            .await
            .map_err(|error| anyhow::anyhow!("PostgreSQL at {}: {error}", self.server()))?;
        let mut result = Ok(());
        'statements: for sql in statements {
            for attempt in 0.. {
                match execute(&mut conn, sql).await {
                    Ok(()) => continue 'statements,
                    Err(error) if attempt < 50 && error.to_string().contains("being accessed") => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => {
                        result = Err(error).with_context(|| format!("{sql} at {}", self.server()));
                        break 'statements;
                    }
                }
            }
        }
        let _ = conn.close().await;
        result
    }
}

/// Ends every session connected to `database` (they belong to killed nodes).
fn terminate_sessions(database: &str) -> String {
    format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )
}

async fn execute(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    pg_admin::execute(conn, sql).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_named_in_the_error() {
        let error = PgDatabase::create("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .expect_err("nothing listens on port 1");
        let text = format!("{error:#}");
        assert!(
            text.contains("no PostgreSQL server answers at 127.0.0.1:1"),
            "{text}"
        );
        assert!(text.contains("--pg-admin"), "{text}");
    }
}
