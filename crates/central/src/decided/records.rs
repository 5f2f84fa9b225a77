//! The reads the mechanism makes of a flow's records: one by id, one by idempotency key, the
//! pending ones made before an instant (to send again). A flow supplies only where its records
//! live and how a row becomes a record ([`Stored`]); the SQL around that is written once, here.

use sqlx::AnyExecutor;
use sqlx::any::AnyRow;
use stockmesh_core::{RequestId, Timestamp};
use stockmesh_http::IdempotencyKey;

/// Where a flow's records live, and how a row becomes one.
pub(crate) trait Stored: Sized {
    /// A row as the SELECT reads it.
    type Row: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin;
    /// `SELECT … FROM …` (with any join) reading one record per row.
    const SELECT: &'static str;
    /// The (qualified) id column.
    const ID: &'static str;
    /// The (qualified) idempotency key column.
    const KEY: &'static str;
    /// The condition a record awaiting its store's decision meets.
    const PENDING: &'static str;
    /// The (qualified) creation instant column (milliseconds).
    const CREATED_AT: &'static str;

    /// The record a row holds; a row that breaks the domain's rules is a decode error.
    fn from_row(row: Self::Row) -> sqlx::Result<Self>;
}

/// One record by id.
pub(crate) async fn find<R: Stored>(
    conn: impl AnyExecutor<'_>,
    id: RequestId,
) -> sqlx::Result<Option<R>> {
    let sql = format!("{} WHERE {} = $1", R::SELECT, R::ID);
    sqlx::query_as::<_, R::Row>(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(R::from_row)
        .transpose()
}

/// The record made under an idempotency key.
pub(crate) async fn find_by_key<R: Stored>(
    conn: impl AnyExecutor<'_>,
    key: &IdempotencyKey,
) -> sqlx::Result<Option<R>> {
    let sql = format!("{} WHERE {} = $1", R::SELECT, R::KEY);
    sqlx::query_as::<_, R::Row>(sqlx::AssertSqlSafe(sql))
        .bind(key.as_str())
        .fetch_optional(conn)
        .await?
        .map(R::from_row)
        .transpose()
}

/// Records still awaiting their store's decision, made before `before`, oldest first, at most
/// `limit`.
pub(crate) async fn pending_before<R: Stored>(
    conn: impl AnyExecutor<'_>,
    before: Timestamp,
    limit: i64,
) -> sqlx::Result<Vec<R>> {
    let sql = format!(
        "{} WHERE {} AND {created} < $1 ORDER BY {created} LIMIT $2",
        R::SELECT,
        R::PENDING,
        created = R::CREATED_AT
    );
    sqlx::query_as::<_, R::Row>(sqlx::AssertSqlSafe(sql))
        .bind(before.timestamp_millis())
        .bind(limit)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(R::from_row)
        .collect()
}
