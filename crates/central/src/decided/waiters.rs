//! Requests waiting for a remote purchase's outcome. The event handler wakes them after it has
//! committed the store's reply.

use std::collections::HashMap;
use std::sync::Mutex;

use stockmesh_core::PurchaseId;
use tokio::sync::oneshot;

/// Pending waits, by purchase.
#[derive(Debug, Default)]
pub struct Waiters(Mutex<HashMap<PurchaseId, Vec<oneshot::Sender<()>>>>);

impl Waiters {
    /// Registers interest in `purchase`; register *before* the command can be answered.
    pub fn register(&self, purchase: PurchaseId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.0.lock() {
            map.entry(purchase).or_default().push(tx);
        }
        rx
    }

    /// Wakes everyone waiting for `purchase`.
    pub fn wake(&self, purchase: PurchaseId) {
        let senders = self.0.lock().ok().and_then(|mut map| map.remove(&purchase));
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// Drops the registrations of waits that gave up (their receivers are gone).
    pub fn forget_abandoned(&self, purchase: PurchaseId) {
        if let Ok(mut map) = self.0.lock()
            && let Some(senders) = map.get_mut(&purchase)
        {
            senders.retain(|s| !s.is_closed());
            if senders.is_empty() {
                map.remove(&purchase);
            }
        }
    }
}
