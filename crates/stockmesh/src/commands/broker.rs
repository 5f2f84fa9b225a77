//! Choosing and configuring the broker and the node configurations from the flags.

use std::sync::Arc;

use stockmesh_bus::{
    Broker, DbConfig, GroupCommit, HeartbeatConfig, RedisBroker, RedisConfig, RedisTls, RelayConfig,
};
use stockmesh_central::CentralConfig;
use stockmesh_central::repair::RepairConfig;
use stockmesh_central::service::PurchaseTiming;
use stockmesh_core::StoreId;
use stockmesh_store::StoreConfig;

use crate::cli::{BusArgs, HttpArgs, PurchaseArgs, StorageArgs};

/// The Redis settings of the flags (entry size cap, TLS files) for `url`.
pub fn redis_config(url: &str, bus: &BusArgs) -> anyhow::Result<RedisConfig> {
    let client = bus
        .redis_client_cert
        .as_deref()
        .zip(bus.redis_client_key.as_deref());
    Ok(RedisConfig {
        max_entry_bytes: usize::try_from(bus.max_entry_bytes).unwrap_or(usize::MAX),
        tls: RedisTls::from_files(bus.redis_ca.as_deref(), client)?,
        ..RedisConfig::new(url)
    })
}

/// A Redis broker for `url`, with the settings of the flags.
pub fn redis(url: &str, bus: &BusArgs) -> anyhow::Result<Arc<dyn Broker>> {
    Ok(Arc::new(RedisBroker::new(redis_config(url, bus)?)?))
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
