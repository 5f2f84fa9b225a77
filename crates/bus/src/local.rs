//! The broker of a local cluster (`stockmesh up`) when none is named: the Redis already answering
//! on 127.0.0.1:6379, else a private `redis-server` keeping its data beside the nodes', else the
//! in-process broker (events then live only as long as the process).

use std::path::Path;
use std::sync::Arc;

use stockmesh_process::FileError;
use stockmesh_process::private::create_private_dir;

use crate::broker::redact_url;
use crate::redis_server::{Persistence, RedisProcess, SpawnError, answers_ping};
use crate::{Broker, BrokerError, MemoryBroker, RedisBroker, RedisConfig};

/// The Redis a node uses when none is named.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// The broker chosen, the private server behind it (if one was started; killed on drop) and a
/// line saying which, for the operator.
pub struct LocalBroker {
    /// The broker every node of the cluster shares.
    pub broker: Arc<dyn Broker>,
    /// The private `redis-server`, if one was started for the cluster.
    pub server: Option<RedisProcess>,
    /// `broker: …`, naming the choice and why.
    pub description: String,
}

/// Why no broker could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum LocalBrokerError {
    /// The Redis configuration is unusable.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The private server's data directory could not be made.
    #[error(transparent)]
    File(#[from] FileError),
    /// `redis-server` is installed but would not start.
    #[error("cannot start a private redis-server")]
    Spawn(#[source] SpawnError),
}

/// Chooses the broker: Redis at `named` if given; else the one on port 6379 if it answers; else a
/// private `redis-server` with its data in `<data_dir>/redis` (0700); else the in-process broker.
/// `config` gives every setting but the URL.
pub async fn local_broker(
    named: Option<&str>,
    config: RedisConfig,
    data_dir: &Path,
) -> Result<LocalBroker, LocalBrokerError> {
    let redis = |url: &str| -> Result<Arc<dyn Broker>, BrokerError> {
        Ok(Arc::new(RedisBroker::new(RedisConfig {
            url: url.to_owned(),
            ..config.clone()
        })?))
    };
    if let Some(url) = named {
        let description = format!("broker: Redis at {} (from --redis)", redact_url(url));
        return Ok(LocalBroker {
            broker: redis(url)?,
            server: None,
            description,
        });
    }
    if answers_ping(6379).await {
        return Ok(LocalBroker {
            broker: redis(DEFAULT_REDIS)?,
            server: None,
            description: format!("broker: Redis at {DEFAULT_REDIS} (found running)"),
        });
    }
    let dir = data_dir.join("redis");
    create_private_dir(&dir)?;
    match RedisProcess::start(&dir, Persistence::AofEverySec).await {
        Ok(server) => Ok(LocalBroker {
            broker: redis(&server.url())?,
            description: format!(
                "broker: private redis-server at {} (data in {})",
                server.url(),
                dir.display()
            ),
            server: Some(server),
        }),
        Err(SpawnError::NotInstalled) => Ok(LocalBroker {
            broker: Arc::new(MemoryBroker::with_max_entry_bytes(config.max_entry_bytes)),
            server: None,
            description: "broker: in-process (no Redis running and redis-server not installed; \
                          events live only as long as this process)"
                .into(),
        }),
        Err(error) => Err(LocalBrokerError::Spawn(error)),
    }
}
