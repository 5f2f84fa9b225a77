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

/// Deletes the newest `count` entries of `stream`; returns how many were deleted.
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
    Ok(deleted)
}
