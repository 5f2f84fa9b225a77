//! Requests waiting for a store's decision, by request id. The events handler wakes them after it
//! has committed the store's reply.

use std::collections::HashMap;
use std::sync::Mutex;

use stockmesh_core::RequestId;
use tokio::sync::oneshot;

/// Pending waits, by request.
#[derive(Debug, Default)]
pub(crate) struct Waiters(Mutex<HashMap<RequestId, Vec<oneshot::Sender<()>>>>);

impl Waiters {
    /// Registers interest in `request`; register *before* the command can be answered.
    pub fn register(&self, request: RequestId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.0.lock() {
            map.entry(request).or_default().push(tx);
        }
        rx
    }

    /// Wakes everyone waiting for `request`.
    pub fn wake(&self, request: RequestId) {
        let senders = self.0.lock().ok().and_then(|mut map| map.remove(&request));
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// Drops the registrations of waits that gave up (their receivers are gone).
    pub fn forget_abandoned(&self, request: RequestId) {
        if let Ok(mut map) = self.0.lock()
            && let Some(senders) = map.get_mut(&request)
        {
            senders.retain(|s| !s.is_closed());
            if senders.is_empty() {
                map.remove(&request);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_every_waiter_of_that_request_only() {
        let waiters = Waiters::default();
        let (a, b) = (RequestId::new(), RequestId::new());
        let first = waiters.register(a);
        let second = waiters.register(a);
        let mut other = waiters.register(b);
        waiters.wake(a);
        assert!(first.await.is_ok());
        assert!(second.await.is_ok());
        assert!(other.try_recv().is_err(), "b was not woken");
    }

    #[test]
    fn abandoned_waits_are_forgotten() {
        let waiters = Waiters::default();
        let request = RequestId::new();
        drop(waiters.register(request));
        waiters.forget_abandoned(request);
        assert!(waiters.0.lock().expect("lock").is_empty());
    }
}
