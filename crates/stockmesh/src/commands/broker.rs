//! Choosing and configuring the broker and the node configurations from the flags.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use stockmesh_bus::redis_server::{Persistence, RedisProcess, SpawnError, answers_ping};
use stockmesh_bus::{
    Broker, DbConfig, GroupCommit, HeartbeatConfig, MemoryBroker, RedisBroker, RedisConfig, RedisTls,
    RelayConfig,
};
use stockmesh_central::CentralConfig;
use stockmesh_central::repair::RepairConfig;
use stockmesh_central::service::PurchaseTiming;
use stockmesh_core::StoreId;
use stockmesh_store::StoreConfig;

use crate::cli::{BusArgs, HttpArgs, PurchaseArgs, StorageArgs};

/// The Redis a node uses when none is named.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// A Redis broker for `url`, with the entry size cap of the flags.
pub fn redis(url: &str, bus: &BusArgs) -> anyhow::Result<Arc<dyn Broker>> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let tls = RedisTls {
        ca: bus.redis_ca.as_deref().map(read).transpose()?,
        client: match (&bus.redis_client_cert, &bus.redis_client_key) {
            (Some(cert), Some(key)) => {
                Some((read(cert)?, super::auth::read_secret(key)?.into_bytes()))
            }
            _ => None,
        },
    };
    let config = RedisConfig {
        max_entry_bytes: usize::try_from(bus.max_entry_bytes).unwrap_or(usize::MAX),
        tls,
        ..RedisConfig::new(url)
    };
    Ok(Arc::new(RedisBroker::new(config)?))
}

/// The broker `up` uses, a private Redis it owns (if it started one), and a line saying which.
pub async fn choose_for_up(
    bus: &BusArgs,
    data_dir: &Path,
) -> anyhow::Result<(Arc<dyn Broker>, Option<RedisProcess>, String)> {
    if let Some(url) = &bus.redis {
        return Ok((
            redis(url, bus)?,
            None,
            format!(
                "broker: Redis at {} (from --redis)",
                stockmesh_bus::broker::redact_url(url)
            ),
        ));
    }
    if answers_ping(6379).await {
        let line = format!("broker: Redis at {DEFAULT_REDIS} (found running)");
        return Ok((redis(DEFAULT_REDIS, bus)?, None, line));
    }
    let dir = data_dir.join("redis");
    super::auth::create_private_dir(&dir)?;
    match RedisProcess::start(&dir, Persistence::AofEverySec).await {
        Ok(process) => {
            let line = format!(
                "broker: private redis-server at {} (data in {})",
                process.url(),
                dir.display()
            );
            Ok((redis(&process.url(), bus)?, Some(process), line))
        }
        Err(SpawnError::NotInstalled) => Ok((
            Arc::new(MemoryBroker::with_max_entry_bytes(
                usize::try_from(bus.max_entry_bytes).unwrap_or(usize::MAX),
            )),
            None,
            "broker: in-process (no Redis running and redis-server not installed; events live \
             only as long as this process)"
                .into(),
        )),
        Err(error) => Err(error).context("cannot start a private redis-server"),
    }
}

/// A database configuration from a URL and the storage flags.
pub fn db(url: String, storage: &StorageArgs) -> DbConfig {
    DbConfig {
        durability: storage.durability,
        group: GroupCommit {
            max_requests: storage.group_commit_max,
            max_wait: storage.group_commit_wait,
        },
        ..DbConfig::new(url)
    }
}

fn relay(bus: &BusArgs) -> RelayConfig {
    RelayConfig {
        max_stream_len: bus.stream_max_len,
        ..RelayConfig::default()
    }
}

/// A store's configuration from the flags; refused when the flags cannot work together.
pub fn store_config(
    id: StoreId,
    db: DbConfig,
    bus: &BusArgs,
    http: &HttpArgs,
) -> Result<StoreConfig, stockmesh_bus::ConfigError> {
    let config = StoreConfig {
        relay: relay(bus),
        heartbeat: HeartbeatConfig {
            interval: bus.heartbeat_interval,
            timeout: bus.heartbeat_timeout,
        },
        claim_idle: bus.claim_idle,
        http: http.limits(),
        ..StoreConfig::new(id, db)
    };
    config.validate()?;
    Ok(config)
}

/// Central's configuration from the flags; refused when the flags cannot work together.
pub fn central_config(
    db: DbConfig,
    bus: &BusArgs,
    purchase: &PurchaseArgs,
    http: &HttpArgs,
) -> Result<CentralConfig, stockmesh_bus::ConfigError> {
    let config = CentralConfig {
        heartbeat_timeout: bus.heartbeat_timeout,
        purchase: PurchaseTiming {
            wait: purchase.purchase_wait,
            deadline: purchase.purchase_deadline,
        },
        relay: relay(bus),
        claim_idle: bus.claim_idle,
        repair: RepairConfig {
            interval: purchase.repair_interval,
            grace: purchase.repair_grace,
            resend: purchase.resend_after,
            ..RepairConfig::default()
        },
        http: http.limits(),
        ..CentralConfig::new(db)
    };
    config.validate()?;
    Ok(config)
}
