//! Starts and stops a whole store: its database, its HTTP server and its background workers
//! (outbox relay, heartbeat, command consumer), all tied to one cancellation token so that
//! shutdown stops everything and waits for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stockmesh_bus::{
    Broker, ConfigError, Connectivity, Consumer, ConsumerConfig, Database, DbConfig, Heartbeat,
    HeartbeatConfig, LinkState, OutboxSignal, Relay, RelayConfig, StreamSet, topology,
};
use stockmesh_core::StoreId;
use stockmesh_http::auth::Verifier;
use stockmesh_http::running::{Running, Workers};
use stockmesh_http::server::{ServerLimits, TlsAcceptor};
use tokio::net::TcpListener;

use crate::commands::CommandHandler;
use crate::expiry::Expiry;
use crate::repair::{Resync, Summarizer};
use crate::service::StoreService;

/// Everything a store needs to start.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's id.
    pub id: StoreId,
    /// Its database.
    pub db: DbConfig,
    /// Outbox relay tuning.
    pub relay: RelayConfig,
    /// Heartbeat timing.
    pub heartbeat: HeartbeatConfig,
    /// Entries idle this long in a dead consumer's hands are reclaimed.
    pub claim_idle: Duration,
    /// Bounds of the HTTP listener: connections, timeouts.
    pub http: ServerLimits,
    /// How often the store looks for reservations whose time ran out.
    pub expiry_tick: Duration,
    /// The public keys bearer tokens are checked against; None: every route is open.
    pub auth: Option<Arc<Verifier>>,
    /// Serve HTTPS with this certificate; None: plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

impl StoreConfig {
    /// Checks the rules that span settings: beats more often than they expire, a positive
    /// reclaim idle time, group commit within its bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.heartbeat.validate()?;
        self.db.group.validate()?;
        stockmesh_bus::settings::positive("--claim-idle", self.claim_idle)
    }

    /// Defaults for store `id` over database `db`.
    pub fn new(id: StoreId, db: DbConfig) -> Self {
        Self {
            id,
            db,
            relay: RelayConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            claim_idle: Duration::from_secs(30),
            http: ServerLimits::default(),
            expiry_tick: Duration::from_millis(100),
            auth: None,
            tls: None,
        }
    }
}

/// A running store.
#[derive(Debug)]
pub struct StoreNode {
    running: Running,
    service: Arc<StoreService>,
}

impl StoreNode {
    /// Opens the database, then serves the API on `listener` until [`shutdown`](Self::shutdown).
    /// With a `broker`, it also relays its outbox, beats its heartbeat and applies Central's
    /// commands; without one it works alone (its events wait in the outbox).
    pub async fn start(
        config: StoreConfig,
        listener: TcpListener,
        broker: Option<Arc<dyn Broker>>,
    ) -> anyhow::Result<Self> {
        let db = Database::open(&config.db, &crate::MIGRATIONS).await?;
        let link = Connectivity::new(LinkState::Connected);
        let signal = OutboxSignal::default();
        let mut service =
            StoreService::new(config.id.clone(), db.clone(), link.clone(), signal.clone());
        let heartbeat = broker.as_ref().map(|broker| {
            Heartbeat::new(
                broker.clone(),
                config.id.clone(),
                link.clone(),
                config.heartbeat,
            )
            .with_advertiser(Arc::new(Summarizer::new(db.clone())))
        });
        if let (Some(broker), Some(heartbeat)) = (&broker, &heartbeat) {
            service = service.with_broker(broker.clone(), heartbeat.clone());
        }
        let service = Arc::new(service);
        let workers = Workers::default();
        let expiry = Expiry::new(service.clone(), config.expiry_tick);
        workers.spawn(|stop| expiry.run(stop));

        if let (Some(broker), Some(heartbeat)) = (broker, heartbeat) {
            let relay = Relay::new(
                config.id.as_str(),
                db,
                broker.clone(),
                signal,
                link.clone(),
                config.relay.clone(),
            );
            workers.spawn(|stop| relay.run(stop));
            workers.spawn(|stop| heartbeat.run(stop));
            let consumer = Consumer::new(
                broker,
                service.database().clone(),
                Arc::new(CommandHandler::new(service.clone())),
                StreamSet::new([topology::commands_stream(&config.id)]),
                Some(link),
                ConsumerConfig {
                    claim_idle: config.claim_idle,
                    ..ConsumerConfig::new(topology::STORE_GROUP, config.id.as_str())
                },
            );
            workers.spawn(|stop| consumer.run(stop));
            let resync = Resync::new(service.clone());
            workers.spawn(|stop| resync.run(stop));
        }

        let app = crate::api::router(service.clone(), config.auth.clone());
        let running = workers
            .serve(listener, app, config.http, config.tls.clone())
            .context("listener has no address")?;
        let addr = running.addr();
        tracing::info!(store = %config.id, %addr, "store listening");
        Ok(Self { running, service })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// The store's service (for embedding and tests).
    pub fn service(&self) -> &Arc<StoreService> {
        &self.service
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the workers and closes the
    /// database.
    pub async fn shutdown(self) {
        self.running.stop().await;
        self.service.database().close().await;
    }
}
