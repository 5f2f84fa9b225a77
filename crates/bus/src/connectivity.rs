//! A node's link to the rest of the system, as one switch that every worker can watch.
//!
//! `POST /disconnected` flips it off: heartbeats, outbox publishing and command consumption stop
//! (they wait on [`Connectivity::wait_connected`]), while local sales go on. `POST /connected`
//! flips it back and every waiting worker resumes at once.

use serde::Serialize;
use tokio::sync::watch;

/// Whether the node may talk to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Heartbeats, publishing and consumption run.
    Connected,
    /// The node works alone: it keeps serving local requests and queues its events.
    Disconnected,
}

/// The shared switch. Cloning gives another handle to the same state.
#[derive(Debug, Clone)]
pub struct Connectivity {
    state: watch::Sender<LinkState>,
}

impl Connectivity {
    /// A switch in the given initial state.
    pub fn new(initial: LinkState) -> Self {
        Self {
            state: watch::Sender::new(initial),
        }
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// Whether the node is connected.
    pub fn is_connected(&self) -> bool {
        self.state() == LinkState::Connected
    }

    /// Sets the state; returns the previous one. Watchers wake only on an actual change.
    pub fn set(&self, new: LinkState) -> LinkState {
        self.state.send_replace(new)
    }

    /// A receiver that sees every change, for workers that must react to a disconnection.
    pub fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    /// Returns once the node is connected (at once if it already is).
    pub async fn wait_connected(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| *s == LinkState::Connected).await;
    }
}

impl Default for Connectivity {
    fn default() -> Self {
        Self::new(LinkState::Connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // The paused clock makes the waits below instant and exact.
    #[tokio::test(start_paused = true)]
    async fn waiting_workers_resume_when_the_link_returns() {
        let link = Connectivity::new(LinkState::Disconnected);
        let waiter = tokio::spawn({
            let link = link.clone();
            async move { link.wait_connected().await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiter.is_finished(), "still waiting an hour later");
        assert_eq!(link.set(LinkState::Connected), LinkState::Disconnected);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("waiter resumes")
            .expect("no panic");
    }
}
