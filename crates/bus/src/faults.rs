//! Losses a Redis can inflict on data it had acknowledged, inflicted on purpose by the fault suite
//! and tests (DESIGN §9): everything gone (`FLUSHALL`, as after a restart without persistence),
//! or the newest entries of a stream gone (as after a failover whose replica had not received
//! them). Redis is spoken only in this crate, so the fault suite comes here.

use crate::BrokerError;

async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, BrokerError> {
    let client = redis::Client::open(url)
        .map_err(|e| BrokerError::InvalidConfig(format!("invalid Redis URL {url:?}: {e}")))?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| BrokerError::Unavailable(e.to_string()))
}

/// Deletes every key of the Redis at `url` (`FLUSHALL`).
pub async fn flush_all(url: &str) -> Result<(), BrokerError> {
    let mut conn = connect(url).await?;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| BrokerError::Refused(e.to_string()))
}

/// Deletes the newest `count` entries of `stream`, and rewinds the stream's last id and its count
/// of entries added to what they were before them: the stream then looks as on a replica that
/// never received them (consumer groups' lag stays exact). Returns how many were deleted.
pub async fn drop_newest(url: &str, stream: &str, count: usize) -> Result<usize, BrokerError> {
    let mut conn = connect(url).await?;
    let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut conn)
        .await
        .map_err(|e| BrokerError::Refused(e.to_string()))?;
    if newest.is_empty() {
        return Ok(0);
    }
    let mut xdel = redis::cmd("XDEL");
    xdel.arg(stream);
    for (id, _) in &newest {
        xdel.arg(id);
    }
    let deleted: usize = xdel
        .query_async(&mut conn)
        .await
        .map_err(|e| BrokerError::Refused(e.to_string()))?;
    rewind(&mut conn, stream, deleted).await?;
    Ok(deleted)
}

/// Sets `stream`'s last id back to its newest remaining entry and lowers its entries-added count
/// by `deleted`.
async fn rewind(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    deleted: usize,
) -> Result<(), BrokerError> {
    let refused = |e: redis::RedisError| BrokerError::Refused(e.to_string());
    let info: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await
        .map_err(refused)?;
    let added = info
        .chunks(2)
        .find(|pair| {
            matches!(&pair[0], redis::Value::BulkString(k) if k.as_slice() == b"entries-added")
        })
        .and_then(|pair| match pair.get(1) {
            Some(redis::Value::Int(n)) => Some(*n),
            _ => None,
        })
        .ok_or_else(|| BrokerError::Protocol("XINFO STREAM without entries-added".into()))?;
    let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .map_err(refused)?;
    let top = newest
        .first()
        .map_or("0-1".to_owned(), |(id, _)| id.clone());
    redis::cmd("XSETID")
        .arg(stream)
        .arg(top)
        .arg("ENTRIESADDED")
        .arg(added - i64::try_from(deleted).unwrap_or(0))
        .query_async::<()>(conn)
        .await
        .map_err(refused)
}
