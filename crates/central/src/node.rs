//! Starts and stops Central: its database, HTTP server and workers (outbox relay, the consumer
//! of every store's events, store discovery), tied to one cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stockmesh_bus::{
    Broker, ConfigError, Connectivity, Consumer, ConsumerConfig, Database, DbConfig, OutboxSignal,
    Relay, RelayConfig, StreamSet, topology,
};
use stockmesh_core::StoreId;
use stockmesh_http::auth::Verifier;
use stockmesh_http::running::{Running, Workers};
use stockmesh_http::server::{ServerLimits, TlsAcceptor};
use tokio::net::TcpListener;

use crate::decided::{Coordinator, Request, Resender};
use crate::discovery::Discovery;
use crate::leader::Leadership;
use crate::liveness::Liveness;
use crate::purchase::Purchase;
use crate::repair::{RepairConfig, Repairer};
use crate::repository as repo;
use crate::reservation::{Action as ReservationAction, Reservation};
use crate::service::{CentralService, PurchaseTiming};
use crate::transfer::Transfer;
use crate::view::ViewUpdater;

/// Everything Central needs to start.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// Its database.
    pub db: DbConfig,
    /// A store whose heartbeat is older than this is offline (default 50 s).
    pub heartbeat_timeout: Duration,
    /// Remote purchase timing.
    pub purchase: PurchaseTiming,
    /// This Central's consumer name (unique per replica, stable across restarts).
    pub consumer_name: String,
    /// Stores known before they announce themselves.
    pub stores: Vec<StoreId>,
    /// Outbox relay tuning.
    pub relay: RelayConfig,
    /// Entries idle this long in a dead consumer's hands are reclaimed.
    pub claim_idle: Duration,
    /// Bounds of the HTTP listener: connections, timeouts.
    pub http: ServerLimits,
    /// The public keys bearer tokens are checked against; None: every route is open.
    pub auth: Option<Arc<Verifier>>,
    /// Serve HTTPS with this certificate; None: plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// How often to look for new stores.
    pub discovery_interval: Duration,
    /// Anti-entropy timing (self-healing).
    pub repair: RepairConfig,
}

impl CentralConfig {
    /// Checks the rules that span settings: a purchase waits less than its deadline, and the
    /// durations are positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use stockmesh_bus::settings::{positive, shorter};
        self.db.group.validate()?;
        positive("--heartbeat-timeout", self.heartbeat_timeout)?;
        positive("--claim-idle", self.claim_idle)?;
        positive("--purchase-wait", self.purchase.wait)?;
        positive("--resend-after", self.repair.resend)?;
        positive("--repair-interval", self.repair.interval)?;
        positive("--repair-grace", self.repair.grace)?;
        shorter(
            ("--purchase-wait", self.purchase.wait),
            ("--purchase-deadline", self.purchase.deadline),
            "a client would wait for a purchase the store must already refuse",
        )?;
        shorter(
            ("--purchase-wait", self.purchase.wait),
            ("--request-timeout", self.http.request_timeout),
            "a purchase would time out before it can answer 202",
        )
    }

    /// Defaults over database `db`.
    pub fn new(db: DbConfig) -> Self {
        Self {
            db,
            heartbeat_timeout: Duration::from_secs(50),
            purchase: PurchaseTiming::default(),
            consumer_name: "central-1".into(),
            stores: Vec::new(),
            relay: RelayConfig::default(),
            claim_idle: Duration::from_secs(30),
            http: ServerLimits::default(),
            auth: None,
            tls: None,
            discovery_interval: Duration::from_secs(1),
            repair: RepairConfig::default(),
        }
    }
}

/// A running Central.
#[derive(Debug)]
pub struct CentralNode {
    running: Running,
    service: Arc<CentralService>,
}

impl CentralNode {
    /// Opens the database, starts the workers, and serves the API on `listener`.
    pub async fn start(
        config: CentralConfig,
        listener: TcpListener,
        broker: Arc<dyn Broker>,
    ) -> anyhow::Result<Self> {
        // Replicas may share a PostgreSQL database: this one's outbox rows carry its name.
        let db_config = DbConfig {
            origin: Some(config.consumer_name.clone()),
            ..config.db.clone()
        };
        let db = Database::open(&db_config, &crate::MIGRATIONS).await?;
        // One database behind the consumer group: refuse to join another database's replicas.
        let identity = crate::claim::identity(&db).await?;
        crate::claim::join(broker.as_ref(), &identity).await?;
        let signal = OutboxSignal::default();
        let streams = StreamSet::default();
        let discovery = Discovery::new(
            db.clone(),
            broker.clone(),
            streams.clone(),
            signal.clone(),
            config.stores.clone(),
            config.discovery_interval,
        );
        let service = Arc::new(
            CentralService::new(
                config.consumer_name.clone(),
                broker.clone(),
                db.clone(),
                Liveness::new(broker.clone(), config.heartbeat_timeout),
                signal.clone(),
                config.purchase,
            )
            .with_provisioner(discovery.clone()),
        );

        // Stores known from an earlier run, and declared ones, are read from the start.
        for row in repo::list_stores(&db.reader).await? {
            streams.add(topology::events_stream(&row.store_id));
        }
        for store in &config.stores {
            discovery.register(store).await?;
        }

        let workers = Workers::default();
        let claimant = broker.clone();
        workers.spawn(move |stop| crate::claim::renew(claimant, identity, stop));
        // Anti-entropy, re-sending and expiring happen once: in the replica that leads.
        let leadership = match db.engine() {
            stockmesh_bus::Engine::Sqlite => Leadership::always(),
            stockmesh_bus::Engine::Postgres => {
                let (leadership, hold) = Leadership::compete(config.db.url.clone());
                workers.spawn(hold);
                leadership
            }
        };
        let repair = (db.clone(), broker.clone(), signal.clone(), config.repair);
        let leads = leadership.clone();
        workers.spawn(move |stop| {
            leads.lead(stop, move |stop| {
                let (db, broker, signal, config) = repair.clone();
                Repairer::new(db, broker, signal, config).run(stop)
            })
        });
        // Every store-decided kind gets its lost commands sent again.
        let liveness = Liveness::new(broker.clone(), config.heartbeat_timeout);
        let resend = (service.coordinator(), &liveness, config.repair.resend);
        spawn_resender::<Purchase>(&workers, &leadership, resend);
        spawn_resender::<Reservation>(&workers, &leadership, resend);
        spawn_resender::<ReservationAction>(&workers, &leadership, resend);
        spawn_resender::<Transfer>(&workers, &leadership, resend);
        let relay = Relay::new(
            config.consumer_name.clone(),
            db.clone(),
            broker.clone(),
            signal,
            Connectivity::default(),
            config.relay.clone(),
        );
        workers.spawn(|stop| relay.run(stop));
        workers.spawn(|stop| discovery.run(stop));
        let (db_sweep, coordinator) = (db.clone(), service.coordinator().clone());
        let grace = config.purchase.deadline;
        let leads = leadership.clone();
        workers.spawn(move |stop| {
            leads.lead(stop, move |stop| {
                crate::purchase::sweep_overdue(
                    db_sweep.clone(),
                    coordinator.clone(),
                    grace,
                    Duration::from_secs(1),
                    stop,
                )
            })
        });
        let shared = db.engine() == stockmesh_bus::Engine::Postgres;
        if shared {
            let (coordinator, url) = (service.coordinator().clone(), config.db.url.clone());
            workers.spawn(move |stop| coordinator.listen(url, stop));
            let (feed, url, me) = (
                service.feed().clone(),
                config.db.url.clone(),
                config.consumer_name.clone(),
            );
            workers.spawn(move |stop| crate::feed::shared::follow(url, me, feed, stop));
        }
        let consumer = Consumer::new(
            broker,
            db,
            Arc::new(ViewUpdater::new(
                service.coordinator().clone(),
                service.feed().clone(),
                shared.then(|| config.consumer_name.clone()),
            )),
            streams,
            None,
            ConsumerConfig {
                claim_idle: config.claim_idle,
                ..ConsumerConfig::new(topology::CENTRAL_GROUP, config.consumer_name.clone())
            },
        );
        workers.spawn(|stop| consumer.run(stop));
        let watched = service.clone();
        let period = (config.heartbeat_timeout / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(1),
        );
        workers.spawn(move |stop| {
            crate::feed::watcher::run(watched.clone(), watched.feed().clone(), period, stop)
        });

        let app = crate::api::router(service.clone(), config.auth.clone());
        let running = workers
            .serve(listener, app, config.http, config.tls.clone())
            .context("listener has no address")?;
        let addr = running.addr();
        tracing::info!(%addr, "central listening");
        Ok(Self { running, service })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// The service (for embedding and tests).
    pub fn service(&self) -> &Arc<CentralService> {
        &self.service
    }

    /// Stops the server and workers and closes the database.
    pub async fn shutdown(self) {
        self.service.feed().close();
        self.running.stop().await;
        self.service.database().close().await;
    }
}

/// Starts the worker that sends the commands of long-pending requests of kind `R` again, to
/// online stores, every `every`.
fn spawn_resender<R: Request>(
    workers: &Workers,
    leadership: &Leadership,
    (coordinator, liveness, every): (&Coordinator, &Liveness, Duration),
) {
    let (coordinator, liveness, leads) =
        (coordinator.clone(), liveness.clone(), leadership.clone());
    workers.spawn(move |stop| {
        leads.lead(stop, move |stop| {
            let resender: Resender<R> = Resender::new(coordinator.clone(), liveness.clone(), every);
            resender.run(stop)
        })
    });
}
