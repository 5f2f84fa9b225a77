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

/// The broker the flags name: the Redis Cluster of `--redis-cluster`, else the Redis of
/// `--redis` (by default on 127.0.0.1:6379), with the settings of the flags.
pub fn from_flags(bus: &BusArgs) -> anyhow::Result<Arc<dyn Broker>> {
    let config = match &bus.redis_cluster {
        Some(seeds) => RedisConfig {
            cluster: true,
            ..redis_config(seeds, bus)?
        },
        None => redis_config(
            bus.redis
                .as_deref()
                .unwrap_or(stockmesh_bus::local::DEFAULT_REDIS),
            bus,
        )?,
    };
    Ok(Arc::new(RedisBroker::new(config)?))
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    #[test]
    fn a_cluster_and_a_single_redis_are_refused_together_naming_both_flags() {
        let error = Cli::try_parse_from([
            "stockmesh",
            "central",
            "--redis",
            "redis://127.0.0.1:6379",
            "--redis-cluster",
            "redis://127.0.0.1:7000",
        ])
        .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains("--redis-cluster") && text.contains("--redis <"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_cluster_broker_is_built_from_its_seeds() {
        let cli = Cli::try_parse_from([
            "stockmesh",
            "store",
            "--id",
            "store-1",
            "--redis-cluster",
            "redis://127.0.0.1:7000, redis://127.0.0.1:7001",
        ])
        .expect("parsed");
        let crate::cli::Command::Store(args) = cli.command else {
            panic!("not the store command");
        };
        let broker = super::from_flags(&args.bus).expect("broker");
        assert_eq!(broker.kind(), "redis-cluster");
    }

    #[test]
    fn cluster_seeds_mixing_tls_and_plain_are_refused() {
        let error = stockmesh_bus::RedisBroker::new(stockmesh_bus::RedisConfig::cluster(
            "redis://127.0.0.1:7000,rediss://127.0.0.1:7001",
        ))
        .expect_err("refused");
        assert!(error.to_string().contains("rediss://"), "{error}");
        assert!(!error.is_retryable());
    }
}
