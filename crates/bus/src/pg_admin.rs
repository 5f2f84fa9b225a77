//! Creating and dropping PostgreSQL databases through an admin URL, for whoever needs a database
//! of its own on a shared server: the tests (`testkit`), the fault suite (`chaos --scaled`) and the
//! benchmark (`bench --only postgres`). The URL helpers never show a password.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The admin URL used when none is given: the local server's `postgres` role over TCP (trust
/// authentication, as `.ci/run` sets it up).
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Why a database could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No server answered at the admin URL.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered and refused the statement.
    #[error("{0}")]
    Refused(String),
}

/// How long to wait for the server before concluding that none runs.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the admin database, giving up after [`CONNECT_TIMEOUT`]; the error in words.
pub async fn connect(admin: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(admin)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Runs one statement that binds nothing (DDL) on `conn`.
pub async fn execute(conn: &mut PgConnection, sql: &str) -> sqlx::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Creates database `name` (UTF8) from `template` (`template0` for an empty one) through the
/// admin database.
pub async fn create_database(admin: &str, name: &str, template: &str) -> Result<(), AdminError> {
    let mut conn = connect(admin).await.map_err(AdminError::Unreachable)?;
    let created = execute(
        &mut conn,
        &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" ENCODING 'UTF8'"),
    )
    .await
    .map_err(|error| AdminError::Refused(error.to_string()));
    let _ = conn.close().await;
    created
}

/// `DROP DATABASE IF EXISTS … WITH (FORCE)` (PostgreSQL 13+: sessions still open to it are
/// ended) through the admin database.
pub async fn drop_database(admin: &str, name: &str) -> Result<(), String> {
    let mut conn = connect(admin).await?;
    let dropped = execute(
        &mut conn,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await
    .map_err(|error| error.to_string());
    let _ = conn.close().await;
    dropped
}

/// Where the path of `url` starts and where it ends (the start of the query or fragment, or
/// the end), for a `scheme://authority/path?query` URL.
fn path_span(url: &str) -> (usize, usize) {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let path = url[authority..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| authority + at);
    let end = url[path..]
        .find(['?', '#'])
        .map_or(url.len(), |at| path + at);
    (path, end)
}

/// `admin` with its database (the path) replaced by `name`, keeping any query string.
pub fn database_url(admin: &str, name: &str) -> String {
    let (path, end) = path_span(admin);
    format!("{}/{name}{}", &admin[..path], &admin[end..])
}

/// The `host:port` of `url`, without role or password, for messages; port 5432 when none.
pub fn host_port(url: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let (path, _) = path_span(url);
    let host = &url[authority..path];
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    // A port follows the last colon, except inside an IPv6 literal (`[::1]`).
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, tail)| !tail.contains(']'));
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_replaces_only_the_path() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5433/admin?sslmode=disable&x=1", "t1"),
            "postgres://u:p@db:5433/t1?sslmode=disable&x=1"
        );
        assert_eq!(database_url("postgres://db", "t1"), "postgres://db/t1");
        assert_eq!(
            database_url("postgres://db?sslmode=disable", "t1"),
            "postgres://db/t1?sslmode=disable"
        );
    }

    #[test]
    fn messages_name_the_host_and_port_without_the_password() {
        assert_eq!(
            host_port("postgres://u:secret@db:5433/admin?x=1"),
            "db:5433"
        );
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1/postgres"),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("postgres://u:p@[::1]:6000/x"), "[::1]:6000");
        assert_eq!(host_port("postgres://[::1]/x"), "[::1]:5432");
    }
}
