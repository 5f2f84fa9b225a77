//! The in-process adapter: Redis Streams semantics (ordered entries, consumer groups, pending
//! lists with delivery counts, idle claims, trimming, expiring heartbeats) in one process's
//! memory. Used by `stockmesh up` when no Redis is at hand, and by fast tests. Nothing survives
//! the process, which is fine for both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use stockmesh_core::StoreId;
use tokio::sync::Notify;

use super::{Broker, BrokerError, DEFAULT_MAX_ENTRY_BYTES, Delivery, GroupInfo, Missing, Outgoing};
use crate::topology;

/// An entry id: (milliseconds, sequence), ordered like Redis ids.
type EntryId = (u64, u64);

fn format_id((ms, seq): EntryId) -> String {
    format!("{ms}-{seq}")
}

fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[derive(Debug, Clone)]
struct Entry {
    event_type: String,
    data: Vec<u8>,
}

#[derive(Debug)]
struct PendingEntry {
    consumer: String,
    delivered_at: Instant,
    deliveries: u64,
}

#[derive(Debug, Default)]
struct Group {
    last_delivered: EntryId,
    pending: BTreeMap<EntryId, PendingEntry>,
}

#[derive(Debug, Default)]
struct Stream {
    entries: BTreeMap<EntryId, Entry>,
    last_id: EntryId,
    groups: HashMap<String, Group>,
}

impl Stream {
    fn append(&mut self, event_type: &str, data: &[u8]) -> EntryId {
        let now = u64::try_from(stockmesh_core::now().timestamp_millis()).unwrap_or(0);
        let id = if now > self.last_id.0 {
            (now, 0)
        } else {
            (self.last_id.0, self.last_id.1 + 1)
        };
        self.last_id = id;
        self.entries.insert(
            id,
            Entry {
                event_type: event_type.to_owned(),
                data: data.to_vec(),
            },
        );
        id
    }

    fn trim(&mut self, max_len: u64) {
        let max_len = usize::try_from(max_len).unwrap_or(usize::MAX);
        while self.entries.len() > max_len {
            self.entries.pop_first();
        }
    }

    fn delivery(&self, stream: &str, id: EntryId, deliveries: u64) -> Delivery {
        let entry = self.entries.get(&id);
        Delivery {
            stream: stream.to_owned(),
            id: format_id(id),
            event_type: entry.map(|e| e.event_type.clone()),
            data: entry.map(|e| e.data.clone()),
            missing: entry.is_none().then_some(Missing::Trimmed),
            deliveries,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<String, Stream>,
    heartbeats: HashMap<StoreId, (i64, Instant)>,
    adverts: HashMap<StoreId, (String, Instant)>,
    registry: BTreeSet<StoreId>,
    central: Option<(String, Instant)>,
}

/// A broker in this process's memory.
#[derive(Debug)]
pub struct MemoryBroker {
    state: Mutex<State>,
    /// Wakes blocked readers when entries are appended.
    appended: Notify,
    /// Deliveries with more `data` than this come without it (see [`Missing::TooLarge`]).
    max_entry_bytes: usize,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::with_max_entry_bytes(DEFAULT_MAX_ENTRY_BYTES)
    }
}

fn no_group(stream: &str, group: &str) -> BrokerError {
    BrokerError::Refused(format!("NOGROUP no group {group} on stream {stream}"))
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty broker that hands consumers no `data` larger than `max_entry_bytes`.
    pub fn with_max_entry_bytes(max_entry_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            appended: Notify::new(),
            max_entry_bytes,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, BrokerError> {
        self.state
            .lock()
            .map_err(|_| BrokerError::Protocol("in-process broker state poisoned".into()))
    }

    /// Hands out new entries, if any, without waiting.
    fn take_new(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        count: usize,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let mut state = self.lock()?;
        let mut out = Vec::new();
        for name in streams {
            let stream = state
                .streams
                .get_mut(name)
                .ok_or_else(|| no_group(name, group))?;
            let from = stream
                .groups
                .get(group)
                .ok_or_else(|| no_group(name, group))?
                .last_delivered;
            let ids: Vec<EntryId> = stream
                .entries
                .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
                .take(count)
                .map(|(id, _)| *id)
                .collect();
            let now = Instant::now();
            for id in ids {
                out.push(stream.delivery(name, id, 1));
                let g = stream
                    .groups
                    .get_mut(group)
                    .ok_or_else(|| no_group(name, group))?;
                g.last_delivered = id;
                g.pending.insert(
                    id,
                    PendingEntry {
                        consumer: consumer.to_owned(),
                        delivered_at: now,
                        deliveries: 1,
                    },
                );
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, entries: &[Outgoing<'_>], max_len: u64) -> Result<(), BrokerError> {
        {
            let mut state = self.lock()?;
            for entry in entries {
                let stream = state.streams.entry(entry.stream.to_owned()).or_default();
                stream.append(entry.event_type, entry.data.as_bytes());
                stream.trim(max_len);
            }
        }
        self.appended.notify_waiters();
        Ok(())
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BrokerError> {
        let mut state = self.lock()?;
        state
            .streams
            .entry(stream.to_owned())
            .or_default()
            .groups
            .entry(group.to_owned())
            .or_default();
        Ok(())
    }

    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register for the wake-up before looking, so an append in between is not missed.
            let appended = self.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let found = self.take_new(group, consumer, streams, count)?;
            if !found.is_empty() {
                let limit = self.max_entry_bytes;
                return Ok(found.into_iter().map(|d| d.capped(limit)).collect());
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn read_pending(
        &self,
        group: &str,
        consumer: &str,
        stream_name: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let after = parse_id(after)
            .ok_or_else(|| BrokerError::Refused(format!("invalid stream id {after:?}")))?;
        let mut state = self.lock()?;
        let stream = state
            .streams
            .get_mut(stream_name)
            .ok_or_else(|| no_group(stream_name, group))?;
        let group_state = stream
            .groups
            .get_mut(group)
            .ok_or_else(|| no_group(stream_name, group))?;
        let now = Instant::now();
        let mut taken = Vec::new();
        for (id, entry) in group_state
            .pending
            .range_mut((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, p)| p.consumer == consumer)
            .take(count)
        {
            entry.deliveries += 1;
            entry.delivered_at = now;
            taken.push((*id, entry.deliveries));
        }
        Ok(taken
            .into_iter()
            .map(|(id, n)| {
                stream
                    .delivery(stream_name, id, n)
                    .capped(self.max_entry_bytes)
            })
            .collect())
    }

    async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        stream_name: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, BrokerError> {
        let mut state = self.lock()?;
        let stream = state
            .streams
            .get_mut(stream_name)
            .ok_or_else(|| no_group(stream_name, group))?;
        let group_state = stream
            .groups
            .get_mut(group)
            .ok_or_else(|| no_group(stream_name, group))?;
        let now = Instant::now();
        let idle: Vec<EntryId> = group_state
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.delivered_at) >= min_idle)
            .take(count)
            .map(|(id, _)| *id)
            .collect();
        for id in &idle {
            if stream.entries.contains_key(id) {
                if let Some(p) = group_state.pending.get_mut(id) {
                    p.consumer = consumer.to_owned();
                    p.delivered_at = now;
                }
            } else {
                // Like Redis 7: a claimed entry that was trimmed leaves the pending list.
                group_state.pending.remove(id);
            }
        }
        Ok(idle.len())
    }

    async fn ack(&self, group: &str, stream: &str, ids: &[String]) -> Result<(), BrokerError> {
        let mut state = self.lock()?;
        if let Some(g) = state
            .streams
            .get_mut(stream)
            .and_then(|s| s.groups.get_mut(group))
        {
            for id in ids.iter().filter_map(|id| parse_id(id)) {
                g.pending.remove(&id);
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        group: &str,
        entry: &Delivery,
        reason: &str,
    ) -> Result<(), BrokerError> {
        {
            let mut state = self.lock()?;
            let dead = state
                .streams
                .entry(topology::dead_letter_stream(&entry.stream))
                .or_default();
            dead.append(
                entry.event_type.as_deref().unwrap_or(""),
                entry.data.as_deref().unwrap_or_default(),
            );
            tracing::debug!(reason, id = %entry.id, "dead-lettered in process");
        }
        self.ack(group, &entry.stream, std::slice::from_ref(&entry.id))
            .await
    }

    async fn beat(&self, store: &StoreId, at: i64, ttl: Duration) -> Result<(), BrokerError> {
        let mut state = self.lock()?;
        state
            .heartbeats
            .insert(store.clone(), (at, Instant::now() + ttl));
        state.registry.insert(store.clone());
        Ok(())
    }

    async fn claim_central(
        &self,
        database: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BrokerError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        match &state.central {
            Some((holder, expires)) if *expires > now && holder != database => {
                Ok(Some(holder.clone()))
            }
            _ => {
                state.central = Some((database.to_owned(), now + ttl));
                Ok(None)
            }
        }
    }

    async fn release_central(&self, database: &str) -> Result<(), BrokerError> {
        let mut state = self.lock()?;
        if state
            .central
            .as_ref()
            .is_some_and(|(holder, _)| holder == database)
        {
            state.central = None;
        }
        Ok(())
    }

    async fn withdraw(&self, store: &StoreId) -> Result<(), BrokerError> {
        self.lock()?.heartbeats.remove(store);
        Ok(())
    }

    async fn advertise(
        &self,
        store: &StoreId,
        summary: &str,
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        self.lock()?
            .adverts
            .insert(store.clone(), (summary.to_owned(), Instant::now() + ttl));
        Ok(())
    }

    async fn advertisement(&self, store: &StoreId) -> Result<Option<String>, BrokerError> {
        let state = self.lock()?;
        Ok(state
            .adverts
            .get(store)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(text, _)| text.clone()))
    }

    async fn last_beat(&self, store: &StoreId) -> Result<Option<i64>, BrokerError> {
        let state = self.lock()?;
        Ok(state
            .heartbeats
            .get(store)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(at, _)| *at))
    }

    async fn stores(&self) -> Result<Vec<StoreId>, BrokerError> {
        Ok(self.lock()?.registry.iter().cloned().collect())
    }

    async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo, BrokerError> {
        let state = self.lock()?;
        let Some(s) = state.streams.get(stream) else {
            return Ok(GroupInfo::default());
        };
        let length = s.entries.len() as u64;
        let Some(g) = s.groups.get(group) else {
            return Ok(GroupInfo {
                length,
                ..GroupInfo::default()
            });
        };
        let undelivered = s.entries.range((
            std::ops::Bound::Excluded(g.last_delivered),
            std::ops::Bound::Unbounded,
        ));
        let lag = undelivered.clone().count() as u64;
        let oldest = g
            .pending
            .keys()
            .next()
            .copied()
            .into_iter()
            .chain(undelivered.map(|(id, _)| *id).next())
            .min();
        let now = u64::try_from(stockmesh_core::now().timestamp_millis()).unwrap_or(0);
        Ok(GroupInfo {
            length,
            pending: g.pending.len() as u64,
            lag: Some(lag),
            oldest_unacked_age_ms: oldest.map(|(ms, _)| now.saturating_sub(ms)),
        })
    }

    async fn entries(&self, stream: &str) -> Result<Vec<Delivery>, BrokerError> {
        let state = self.lock()?;
        Ok(state
            .streams
            .get(stream)
            .map(|s| {
                s.entries
                    .keys()
                    .map(|id| s.delivery(stream, *id, 0))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
