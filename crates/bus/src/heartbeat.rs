//! A store's heartbeat: a broker key holding the time of the last beat, with a TTL, refreshed
//! every interval while the store is connected and withdrawn at once when it disconnects.
//! Central reads its age to tell whether the store is online. With each beat the store also
//! advertises its state summary (watermark and digest, DESIGN §9), from an [`Advertise`] source.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stockmesh_core::{StateSummary, StoreId, now};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError};
use crate::{Connectivity, LinkState};

/// Timing of heartbeats.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatConfig {
    /// Time between beats (default 30 s).
    pub interval: Duration,
    /// How long a beat stays valid; also the age past which Central calls a store offline
    /// (default 50 s).
    pub timeout: Duration,
}

impl HeartbeatConfig {
    /// Checks that beats come more often than they expire.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        crate::settings::positive("--heartbeat-interval", self.interval)?;
        crate::settings::shorter(
            ("--heartbeat-interval", self.interval),
            ("--heartbeat-timeout", self.timeout),
            "a store would look offline between two beats",
        )
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(50),
        }
    }
}

/// Where a heartbeat finds the state summary it advertises.
#[async_trait]
pub trait Advertise: Send + Sync + std::fmt::Debug {
    /// The store's summary now; `None` when it cannot be read (nothing is advertised then).
    async fn summary(&self) -> Option<StateSummary>;
}

/// A store's heartbeat worker.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    broker: Arc<dyn Broker>,
    store: StoreId,
    link: Connectivity,
    config: HeartbeatConfig,
    /// What to advertise with each beat, if anything.
    advertiser: Option<Arc<dyn Advertise>>,
}

impl Heartbeat {
    /// The heartbeat of `store`.
    pub fn new(
        broker: Arc<dyn Broker>,
        store: StoreId,
        link: Connectivity,
        config: HeartbeatConfig,
    ) -> Self {
        Self {
            broker,
            store,
            link,
            config,
            advertiser: None,
        }
    }

    /// Advertises `advertiser`'s summary with every beat.
    pub fn with_advertiser(mut self, advertiser: Arc<dyn Advertise>) -> Self {
        self.advertiser = Some(advertiser);
        self
    }

    /// Beats once now, advertising the summary too.
    pub async fn beat(&self) -> Result<(), BrokerError> {
        self.broker
            .beat(&self.store, now().timestamp_millis(), self.config.timeout)
            .await?;
        if let Some(summary) = match &self.advertiser {
            Some(advertiser) => advertiser.summary().await,
            None => None,
        } {
            self.broker
                .advertise(&self.store, &summary.to_json(), self.config.timeout)
                .await?;
        }
        metrics::counter!("stockmesh_heartbeats_sent_total", "node" => self.store.to_string())
            .increment(1);
        Ok(())
    }

    /// Withdraws the heartbeat now, so Central sees the store offline at once.
    pub async fn withdraw(&self) -> Result<(), BrokerError> {
        self.broker.withdraw(&self.store).await
    }

    /// Beats every interval while connected; withdraws on disconnection and when `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut link = self.link.subscribe();
        loop {
            let state = *link.borrow_and_update();
            let result = match state {
                LinkState::Connected => self.beat().await,
                LinkState::Disconnected => self.withdraw().await,
            };
            // A failed beat is retried soon; a missed one only makes the store look offline.
            let wait = match result {
                Ok(()) if state == LinkState::Connected => self.config.interval,
                Ok(()) => Duration::MAX,
                Err(error) => {
                    tracing::debug!(%error, "heartbeat failed, retrying");
                    Duration::from_secs(1).min(self.config.interval)
                }
            };
            tokio::select! {
                () = cancel.cancelled() => {
                    // A store shutting down goes offline now, not when its beat expires.
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.withdraw()).await;
                    return;
                }
                changed = link.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait.min(Duration::from_secs(86_400))) => {}
            }
        }
    }
}

/// Whether a heartbeat taken at `last_beat` (unix ms) still counts at `now_ms`.
pub fn is_fresh(last_beat: Option<i64>, now_ms: i64, timeout: Duration) -> bool {
    let timeout = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    last_beat.is_some_and(|at| now_ms.saturating_sub(at) <= timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_timeout() {
        let timeout = Duration::from_secs(50);
        assert!(is_fresh(Some(1_000), 51_000, timeout));
        assert!(!is_fresh(Some(1_000), 51_001, timeout));
        assert!(!is_fresh(None, 0, timeout));
    }
}
