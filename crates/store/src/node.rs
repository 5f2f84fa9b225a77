//! Starts and stops a whole store: its database, its HTTP server and its background workers, all
//! tied to one cancellation token so that shutdown stops everything and waits for it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use stockmesh_bus::{Connectivity, Database, DbConfig, LinkState, OutboxSignal};
use stockmesh_core::StoreId;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::StoreService;

/// Everything a store needs to start.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's id.
    pub id: StoreId,
    /// Its database.
    pub db: DbConfig,
}

/// A running store.
#[derive(Debug)]
pub struct StoreNode {
    addr: SocketAddr,
    service: Arc<StoreService>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl StoreNode {
    /// Opens the database, then serves the API on `listener` until [`shutdown`](Self::shutdown).
    pub async fn start(config: StoreConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("listener has no address")?;
        let db = Database::open(&config.db, &crate::MIGRATIONS).await?;
        let service = Arc::new(StoreService::new(
            config.id.clone(),
            db,
            Connectivity::new(LinkState::Connected),
            OutboxSignal::default(),
        ));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let app = crate::api::router(service.clone());
        let stop = cancel.clone();
        tasks.spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(error) = server.await {
                tracing::error!(%error, "store HTTP server failed");
            }
        });
        tasks.close();
        tracing::info!(store = %config.id, %addr, "store listening");
        Ok(Self {
            addr,
            service,
            cancel,
            tasks,
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store's service (for embedding and tests).
    pub fn service(&self) -> &Arc<StoreService> {
        &self.service
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the workers and closes the
    /// database.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.wait().await;
        self.service.database().close().await;
    }
}
