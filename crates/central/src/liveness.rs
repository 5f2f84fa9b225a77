//! Whether a store is online: its heartbeat exists and is younger than the timeout. Read from
//! the broker on every question, so a store that disconnects (and withdraws its heartbeat) is
//! refused at once.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stockmesh_bus::Broker;
use stockmesh_bus::heartbeat::is_fresh;
use stockmesh_core::StoreId;

/// What Central knows of a store's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreLiveness {
    /// Whether remote purchases may be sent to it.
    pub online: bool,
    /// Milliseconds since its last heartbeat, if it has a live one.
    pub heartbeat_age_ms: Option<i64>,
}

/// Reads heartbeats.
#[derive(Debug, Clone)]
pub struct Liveness {
    broker: Arc<dyn Broker>,
    timeout: Duration,
}

impl Liveness {
    /// Stores are online while their heartbeat is younger than `timeout`.
    pub fn new(broker: Arc<dyn Broker>, timeout: Duration) -> Self {
        Self { broker, timeout }
    }

    /// The liveness of `store`. An unreachable broker makes every store offline: Central could
    /// not reach them anyway.
    pub async fn of(&self, store: &StoreId) -> StoreLiveness {
        let last = match self.broker.last_beat(store).await {
            Ok(last) => last,
            Err(error) => {
                tracing::debug!(%error, %store, "cannot read heartbeat");
                None
            }
        };
        let now = stockmesh_core::now().timestamp_millis();
        let last = crate::trust::heartbeat(store, last, now);
        StoreLiveness {
            online: is_fresh(last, now, self.timeout),
            heartbeat_age_ms: last.map(|at| (now - at).max(0)),
        }
    }
}
