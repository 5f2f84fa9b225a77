//! Sends again the commands of requests still pending after a while (their command or reply may
//! have been lost), to stores that are online. The store deduplicates by request id and answers
//! a decided request from its record, so a command sent twice is harmless.

use std::marker::PhantomData;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Coordinator, Request};
use crate::error::CentralError;
use crate::liveness::Liveness;

/// At most this many requests are sent again per pass.
const PER_PASS: i64 = 500;

/// Sends the commands of long-pending requests of one kind again.
#[derive(Debug)]
pub(crate) struct Resender<R> {
    coordinator: Coordinator,
    liveness: Liveness,
    /// A request pending this long is sent again, and again every this long.
    every: Duration,
    kind: PhantomData<fn() -> R>,
}

impl<R: Request> Resender<R> {
    /// A resender through `coordinator`, for stores `liveness` says are online.
    pub fn new(coordinator: Coordinator, liveness: Liveness, every: Duration) -> Self {
        Self {
            coordinator,
            liveness,
            every,
            kind: PhantomData,
        }
    }

    /// One pass: returns how many commands were sent again.
    pub async fn try_once(&self) -> Result<usize, CentralError> {
        let before = stockmesh_core::now()
            - chrono::Duration::from_std(self.every).unwrap_or(chrono::Duration::MAX);
        let pending =
            super::records::pending_before::<R>(self.coordinator.reader(), before, PER_PASS)
                .await?;
        let mut online = std::collections::HashMap::new();
        let mut again = Vec::with_capacity(pending.len());
        for request in pending {
            let store = request.store_id().clone();
            let up = match online.get(&store) {
                Some(up) => *up,
                None => {
                    let up = self.liveness.of(&store).await.online;
                    online.insert(store, up);
                    up
                }
            };
            if up {
                again.push(request);
            }
        }
        self.coordinator.resend(&again).await?;
        if !again.is_empty() {
            metrics::counter!("stockmesh_commands_resent_total").increment(again.len() as u64);
            tracing::info!(count = again.len(), "commands without a reply sent again");
        }
        Ok(again.len())
    }

    /// Sends again every interval until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
            if let Err(error) = self.try_once().await {
                tracing::debug!(%error, "resending pending commands failed; retrying");
            }
        }
    }
}
