//! The change feed behind `GET /events`: what changed in Central's view (items), remote purchases,
//! reservations and transfers resolved ([`resolved`]), and stores going online or offline, as
//! numbered events.
//!
//! - **One place publishes**: the view's after-commit step ([`crate::view`]) hands over what its
//!   transaction applied, and the liveness watcher ([`watcher`]) what flipped.
//! - **Resumable within a window**: the last [`FeedLimits::window`] events of this replica are
//!   kept in a ring. An id is `<boot>-<seq>`: a client that reconnects with `Last-Event-ID` gets
//!   every later event it would have seen; one whose id left the window, or was given by another
//!   replica or before a restart, gets a `reset` event first (reload the state, then follow).
//! - **Current store states first**: a client that starts without `Last-Event-ID`, or must
//!   reload, first gets the latest `store` event of every store its filter admits, without an
//!   id (so its `Last-Event-ID` is unchanged): a dashboard knows which stores are online at once,
//!   and a store announced before the client came is not missed.
//! - **Bounded per client**: each client has a queue of [`FeedLimits::client_buffer`] events.
//!   Publishing never waits: a client whose queue is full is dropped from the feed, receives what
//!   was queued and a final `overflow` event, and if it does not take them within
//!   [`FeedLimits::hangup_grace`] its connection is closed. Memory never grows with a slow client.

pub(crate) mod resolved;
pub(crate) mod shared;
pub mod sse;
pub mod watcher;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use stockmesh_core::{
    ItemState, ProductId, PurchaseId, RejectionReason, ReservationId, StoreId, Timestamp,
    TransferId,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::purchase::PurchaseStatus;
use crate::reservation::ReservationStatus;
use crate::transfer::TransferStatus;

/// The bounds of the feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedLimits {
    /// Events kept for resumption with `Last-Event-ID` (default 1024).
    pub window: usize,
    /// Events queued for one client before it is dropped as too slow (default 256).
    pub client_buffer: usize,
    /// How long a dropped client has to take its last events before its connection is closed
    /// (default 5 s).
    pub hangup_grace: Duration,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            window: 1024,
            client_buffer: 256,
            hangup_grace: Duration::from_secs(5),
        }
    }
}

/// One change, as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Change {
    /// An item of the view changed (SSE event `item`).
    #[serde(rename_all = "camelCase")]
    Item {
        /// The store.
        store_id: StoreId,
        /// The product.
        product_id: ProductId,
        /// Units a sale can take at the store now (available).
        quantity: u32,
        /// Units held by open reservations.
        reserved: u32,
        /// The item's version at the store.
        version: u64,
        /// When the store changed it.
        #[schema(value_type = String, format = DateTime)]
        updated_at: Timestamp,
    },
    /// A remote purchase was decided by its store (SSE event `purchase`).
    #[serde(rename_all = "camelCase")]
    Purchase {
        /// The purchase.
        purchase_id: PurchaseId,
        /// The store that decided it.
        store_id: StoreId,
        /// The product.
        product_id: ProductId,
        /// `CONFIRMED` or `REJECTED`.
        status: PurchaseStatus,
        /// Why it was rejected.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<RejectionReason>,
        /// Units at the store after the decision, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        quantity: Option<u32>,
    },
    /// A reservation was held or refused by its store, or ended (SSE event `reservation`).
    #[serde(rename_all = "camelCase")]
    Reservation {
        /// The reservation.
        reservation_id: ReservationId,
        /// The store that decided it.
        store_id: StoreId,
        /// The product.
        product_id: ProductId,
        /// `HELD`, `REJECTED`, `COMMITTED`, `RELEASED` or `EXPIRED`.
        status: ReservationStatus,
    },
    /// A transfer was shipped or refused by its sender, or received (SSE event `transfer`).
    #[serde(rename_all = "camelCase")]
    Transfer {
        /// The transfer.
        transfer_id: TransferId,
        /// The store that reported it: the sender for `IN_TRANSIT` and `REJECTED`, the receiver
        /// for `RECEIVED`.
        store_id: StoreId,
        /// The product.
        product_id: ProductId,
        /// `IN_TRANSIT`, `REJECTED` or `RECEIVED`.
        status: TransferStatus,
    },
    /// A store went online or offline (SSE event `store`).
    #[serde(rename_all = "camelCase")]
    Store {
        /// The store.
        store_id: StoreId,
        /// Whether it takes remote purchases now.
        online: bool,
        /// Milliseconds since its last heartbeat, if it has a live one.
        heartbeat_age_ms: Option<i64>,
    },
}

impl Change {
    /// An item change from the state a store published.
    pub fn item(store: &StoreId, state: &ItemState) -> Self {
        Change::Item {
            store_id: store.clone(),
            product_id: state.product_id.clone(),
            quantity: state.quantity.get(),
            reserved: state.reserved.get(),
            version: state.version.get(),
            updated_at: state.updated_at,
        }
    }

    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Item { .. } => "item",
            Change::Purchase { .. } => "purchase",
            Change::Reservation { .. } => "reservation",
            Change::Transfer { .. } => "transfer",
            Change::Store { .. } => "store",
        }
    }

    fn store(&self) -> &StoreId {
        match self {
            Change::Item { store_id, .. }
            | Change::Purchase { store_id, .. }
            | Change::Reservation { store_id, .. }
            | Change::Transfer { store_id, .. }
            | Change::Store { store_id, .. } => store_id,
        }
    }

    fn product(&self) -> Option<&ProductId> {
        match self {
            Change::Item { product_id, .. }
            | Change::Purchase { product_id, .. }
            | Change::Reservation { product_id, .. }
            | Change::Transfer { product_id, .. } => Some(product_id),
            Change::Store { .. } => None,
        }
    }
}

/// A published change with its id.
#[derive(Debug)]
pub struct Published {
    /// Its position in this replica's feed.
    pub seq: u64,
    /// `<boot>-<seq>`, the SSE `id`.
    pub id: String,
    /// The change.
    pub change: Change,
    /// The change as JSON, rendered once for every client.
    pub data: String,
}

/// Which changes a client wants: `?storeId=&productId=`. Store events pass a product filter
/// (a store going offline changes what can be bought of every product).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this store's changes.
    pub store: Option<StoreId>,
    /// Only this product's changes (and every store event).
    pub product: Option<ProductId>,
}

impl Filter {
    fn admits(&self, change: &Change) -> bool {
        self.store.as_ref().is_none_or(|s| s == change.store())
            && self
                .product
                .as_ref()
                .is_none_or(|p| change.product().is_none_or(|q| q == p))
    }
}

struct Subscriber {
    filter: Filter,
    queue: mpsc::Sender<Arc<Published>>,
    overflowed: Arc<AtomicBool>,
    hangup: CancellationToken,
}

struct State {
    next: u64,
    ring: VecDeque<Arc<Published>>,
    /// The latest `store` event of each store (one per store, so bounded by the registry).
    stores: BTreeMap<StoreId, Arc<Published>>,
    subscribers: Vec<Subscriber>,
}

/// Why a subscription starts with a `reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The `Last-Event-ID` is older than the window: events were missed.
    Missed,
    /// The id is not from this replica's run (another replica, a restart, or not an id).
    Unknown,
}

/// A client's view of the feed.
#[derive(Debug)]
pub struct Subscription {
    /// Set when the client must reload its state before following.
    pub reset: Option<Reset>,
    /// The latest `store` event of every store the filter admits, for a client that starts
    /// fresh or must reload (empty when it resumes); sent before the replay, without ids.
    pub current: Vec<Arc<Published>>,
    /// Events after its `Last-Event-ID`, from the window.
    pub replay: Vec<Arc<Published>>,
    /// New events; ends when the client is dropped or the feed closes.
    pub live: mpsc::Receiver<Arc<Published>>,
    /// Set when the client was dropped for being too slow.
    pub overflowed: Arc<AtomicBool>,
    /// Cancelled to close the client's connection.
    pub hangup: CancellationToken,
    /// Cancelled when the node stops.
    pub closed: CancellationToken,
}

/// The feed of one Central replica. Cloning gives another handle to the same feed.
#[derive(Clone)]
pub struct Feed {
    state: Arc<Mutex<State>>,
    boot: u64,
    limits: FeedLimits,
    closed: CancellationToken,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("boot", &self.boot)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Feed {
    fn default() -> Self {
        Self::new(FeedLimits::default())
    }
}

impl Feed {
    /// An empty feed with `limits`.
    pub fn new(limits: FeedLimits) -> Self {
        let boot = u64::try_from(stockmesh_core::now().timestamp_millis()).unwrap_or_default();
        Self {
            state: Arc::new(Mutex::new(State {
                next: 1,
                ring: VecDeque::with_capacity(limits.window.min(4096)),
                stores: BTreeMap::new(),
                subscribers: Vec::new(),
            })),
            boot,
            limits: FeedLimits {
                window: limits.window.max(1),
                client_buffer: limits.client_buffer.max(1),
                ..limits
            },
            closed: CancellationToken::new(),
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> FeedLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every step is complete).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers `changes`, keeps them in the window and hands them to every client that wants
    /// them. Never waits: a client whose queue is full is dropped (see the module doc).
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let mut state = self.lock();
        for change in changes {
            let seq = state.next;
            state.next += 1;
            let data = serde_json::to_string(&change).unwrap_or_default();
            let published = Arc::new(Published {
                seq,
                id: format!("{}-{seq}", self.boot),
                change,
                data,
            });
            if state.ring.len() == self.limits.window {
                state.ring.pop_front();
            }
            state.ring.push_back(published.clone());
            if let Change::Store { store_id, .. } = &published.change {
                state.stores.insert(store_id.clone(), published.clone());
            }
            let grace = self.limits.hangup_grace;
            state.subscribers.retain(|client| {
                if !client.filter.admits(&published.change) {
                    return !client.queue.is_closed();
                }
                match client.queue.try_send(published.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        client.overflowed.store(true, Ordering::Release);
                        metrics::counter!("stockmesh_feed_overflows_total").increment(1);
                        let hangup = client.hangup.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(grace).await;
                            hangup.cancel();
                        });
                        false
                    }
                }
            });
        }
        metrics::gauge!("stockmesh_feed_clients").set(state.subscribers.len() as f64);
    }

    /// Subscribes a client; `last_event_id` resumes after that event when it is in the window.
    pub fn subscribe(&self, filter: Filter, last_event_id: Option<&str>) -> Subscription {
        let (queue, live) = mpsc::channel(self.limits.client_buffer);
        let overflowed = Arc::new(AtomicBool::new(false));
        let hangup = CancellationToken::new();
        let mut state = self.lock();
        let (reset, replay) = match last_event_id.map(|id| self.position(id)) {
            None => (None, Vec::new()),
            Some(None) => (Some(Reset::Unknown), Vec::new()),
            Some(Some(after)) => {
                let oldest = state.ring.front().map_or(state.next, |p| p.seq);
                let reset = (after + 1 < oldest).then_some(Reset::Missed);
                if after >= state.next {
                    (Some(Reset::Unknown), Vec::new())
                } else {
                    let replay = state
                        .ring
                        .iter()
                        .filter(|p| p.seq > after && filter.admits(&p.change))
                        .cloned()
                        .collect();
                    (reset, replay)
                }
            }
        };
        let current = if last_event_id.is_none() || reset.is_some() {
            state
                .stores
                .values()
                .filter(|p| filter.admits(&p.change))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        state.subscribers.push(Subscriber {
            filter,
            queue,
            overflowed: overflowed.clone(),
            hangup: hangup.clone(),
        });
        metrics::gauge!("stockmesh_feed_clients").set(state.subscribers.len() as f64);
        Subscription {
            reset,
            current,
            replay,
            live,
            overflowed,
            hangup,
            closed: self.closed.clone(),
        }
    }

    /// The sequence number of `id` if it was given by this run of this replica.
    fn position(&self, id: &str) -> Option<u64> {
        let (boot, seq) = id.trim().split_once('-')?;
        (boot.parse::<u64>().ok()? == self.boot).then_some(())?;
        seq.parse().ok()
    }

    /// Clients following the feed now (those dropped or gone are counted until the next
    /// publication notices).
    pub fn clients(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Events queued for clients, all clients together: at most `clients × client_buffer`.
    pub fn queued(&self) -> usize {
        let state = self.lock();
        state
            .subscribers
            .iter()
            .map(|s| self.limits.client_buffer - s.queue.capacity())
            .sum()
    }

    /// Ends every client's stream (the node is stopping).
    pub fn close(&self) {
        self.closed.cancel();
        self.lock().subscribers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(n: u32) -> Change {
        Change::Store {
            store_id: StoreId::parse(format!("s{n}")).expect("valid"),
            online: true,
            heartbeat_age_ms: None,
        }
    }

    #[tokio::test]
    async fn resumption_replays_after_the_id_within_the_window_and_resets_outside_it() {
        let feed = Feed::new(FeedLimits {
            window: 4,
            client_buffer: 8,
            hangup_grace: Duration::from_secs(1),
        });
        feed.publish((1..=6).map(store));
        let ids: Vec<String> = feed.lock().ring.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), 4, "the window holds the last 4");

        let inside = feed.subscribe(Filter::default(), Some(&ids[1]));
        assert_eq!(inside.reset, None);
        assert_eq!(
            inside.replay.iter().map(|p| p.seq).collect::<Vec<_>>(),
            vec![5, 6]
        );

        let before = format!("{}-1", feed.boot);
        let missed = feed.subscribe(Filter::default(), Some(&before));
        assert_eq!(missed.reset, Some(Reset::Missed));
        assert_eq!(missed.replay.len(), 4);

        let foreign = feed.subscribe(Filter::default(), Some("123-4"));
        assert_eq!(foreign.reset, Some(Reset::Unknown));
        let garbage = feed.subscribe(Filter::default(), Some("nonsense"));
        assert_eq!(garbage.reset, Some(Reset::Unknown));
    }

    #[tokio::test]
    async fn a_full_client_is_dropped_and_never_holds_more_than_its_buffer() {
        let feed = Feed::new(FeedLimits {
            window: 16,
            client_buffer: 3,
            hangup_grace: Duration::from_millis(10),
        });
        let slow = feed.subscribe(Filter::default(), None);
        feed.publish((1..=1000).map(store));
        assert!(slow.overflowed.load(Ordering::Acquire));
        assert_eq!(slow.live.len(), 3);
        assert_eq!(feed.clients(), 0);
        tokio::time::timeout(Duration::from_secs(5), slow.hangup.cancelled())
            .await
            .expect("the slow client is hung up after the grace");
    }
}
