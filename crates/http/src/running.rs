//! A node at work: its HTTP server and its background workers, all stopped by one token. Store
//! and Central start their workers on [`Running::workers`], then [`Running::serve`] their API;
//! [`Running::stop`] stops everything and waits for it.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::{ServerLimits, TlsAcceptor, serve};

/// The tasks of a node and the token that stops them.
#[derive(Debug, Default)]
pub struct Workers {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Workers {
    /// Spawns a worker; it must return when the token it is given fires.
    pub fn spawn<F>(&self, worker: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(worker(self.cancel.clone()));
    }

    /// Serves `app` on `listener` within `limits` (over TLS with `tls`) beside the workers; no
    /// worker can be added after this.
    pub fn serve(
        self,
        listener: TcpListener,
        app: Router,
        limits: ServerLimits,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        self.tasks
            .spawn(serve(listener, app, self.cancel.clone(), limits, tls));
        self.tasks.close();
        Ok(Running {
            addr,
            workers: self,
        })
    }
}

/// A node serving its API, with its workers.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    workers: Workers,
}

impl Running {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, lets requests in progress finish, stops the workers, and
    /// waits for all of them.
    pub async fn stop(self) {
        self.workers.cancel.cancel();
        self.workers.tasks.wait().await;
    }
}
