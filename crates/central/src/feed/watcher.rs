//! Publishes a `store` change when Central first watches a store and whenever it goes online or
//! offline, by reading every known store's
//! liveness at a fixed period (heartbeats expire in the broker; nothing announces them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stockmesh_core::StoreId;
use tokio_util::sync::CancellationToken;

use super::{Change, Feed};
use crate::service::CentralService;

/// Watches liveness every `period` until `stop`.
pub async fn run(
    service: Arc<CentralService>,
    feed: Feed,
    period: Duration,
    stop: CancellationToken,
) {
    let mut known: HashMap<StoreId, bool> = HashMap::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let stores = match service.stores().await {
            Ok(stores) => stores,
            Err(error) => {
                tracing::debug!(%error, "cannot list stores for the feed");
                continue;
            }
        };
        let mut changes = Vec::new();
        for store in stores {
            let before = known.insert(store.store_id.clone(), store.liveness.online);
            if before != Some(store.liveness.online) {
                changes.push(Change::Store {
                    store_id: store.store_id,
                    online: store.liveness.online,
                    heartbeat_age_ms: store.liveness.heartbeat_age_ms,
                });
            }
        }
        if !changes.is_empty() {
            feed.publish(changes);
        }
    }
}
