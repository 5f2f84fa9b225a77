//! A `metrics` recorder for benchmarks: it keeps, in an HDR histogram, the propagation latency
//! that Central records for every item event it applies (commit timestamp in the event, apply
//! timestamp after Central's commit), and counts applied item events. It also keeps the
//! propagation of each leg of a remote purchase ([`Leg`]), to show where its time goes.
//! Everything else is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use metrics::{
    Counter, CounterFn, Gauge, Histogram as MetricHistogram, HistogramFn, Key, KeyName, Metadata,
    Recorder, SharedString, Unit,
};

/// One leg of a remote purchase, as the node that applies it records its propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The command: from Central's request (just before its record commits) to the store's
    /// commit of its decision.
    Command,
    /// The reply: from the store's decision commit to Central's commit of the resolution.
    Reply,
}

impl Leg {
    fn of(key: &Key) -> Option<Leg> {
        key.labels()
            .find(|l| l.key() == "type")
            .and_then(|l| match l.value() {
                "INVENTORY_ITEM_REMOTE_PURCHASE" => Some(Leg::Command),
                "REMOTE_PURCHASE_CONFIRMED" | "REMOTE_PURCHASE_REJECTED" => Some(Leg::Reply),
                _ => None,
            })
    }
}

/// What the benchmark reads back.
#[derive(Debug)]
pub struct Capture {
    /// Propagation latency of applied item events, in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Propagation latency of a remote purchase's command and reply, in microseconds.
    legs: Mutex<[Histogram<u64>; 2]>,
    /// Item events applied at Central.
    applied: AtomicU64,
}

impl Capture {
    /// Installs the recorder for this process; returns the shared capture.
    pub fn install() -> anyhow::Result<Arc<Capture>> {
        let capture = Arc::new(Capture {
            latency: Mutex::new(super::load::histogram()),
            legs: Mutex::new([super::load::histogram(), super::load::histogram()]),
            applied: AtomicU64::new(0),
        });
        metrics::set_global_recorder(CaptureRecorder(capture.clone()))
            .map_err(|e| anyhow::anyhow!("cannot install the benchmark recorder: {e}"))?;
        Ok(capture)
    }

    /// Item events applied at Central so far.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Waits until Central has applied no item event for `quiet` (at most `limit`): the
    /// setup's events and the resynchronisation Central asks of a new store (up to 200 ms
    /// later, in one burst) are in before a measurement starts, not inside it.
    pub async fn settle(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut seen = self.applied();
        let mut since = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.applied();
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return;
            }
        }
    }

    /// Takes the latency histogram, leaving an empty one.
    pub fn take_latency(&self) -> Histogram<u64> {
        let mut guard = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let empty = Histogram::new_from(&*guard);
        std::mem::replace(&mut *guard, empty)
    }

    /// Takes the histogram of `leg`, leaving an empty one.
    pub fn take_leg(&self, leg: Leg) -> Histogram<u64> {
        let mut guard = self
            .legs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = &mut guard[leg as usize];
        let empty = Histogram::new_from(&*slot);
        std::mem::replace(slot, empty)
    }
}

fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round().max(1.0) as u64
}

struct CaptureRecorder(Arc<Capture>);

struct Latency(Arc<Capture>);

impl HistogramFn for Latency {
    fn record(&self, seconds: f64) {
        if let Ok(mut histogram) = self.0.latency.lock() {
            histogram.saturating_record(micros(seconds));
        }
    }
}

struct LegLatency(Arc<Capture>, Leg);

impl HistogramFn for LegLatency {
    fn record(&self, seconds: f64) {
        if let Ok(mut legs) = self.0.legs.lock() {
            legs[self.1 as usize].saturating_record(micros(seconds));
        }
    }
}

struct Applied(Arc<Capture>);

impl CounterFn for Applied {
    fn increment(&self, value: u64) {
        self.0.applied.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, _value: u64) {}
}

fn is_item_event(key: &Key) -> bool {
    key.labels().any(|l| {
        l.key() == "type"
            && matches!(
                l.value(),
                "INVENTORY_ITEM_UPDATED" | "INVENTORY_ITEM_CREATED"
            )
    })
}

impl Recorder for CaptureRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let applied = key.name() == "stockmesh_events_consumed_total"
            && is_item_event(key)
            && key
                .labels()
                .any(|l| l.key() == "outcome" && l.value() == "applied");
        if applied {
            Counter::from_arc(Arc::new(Applied(self.0.clone())))
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> MetricHistogram {
        if key.name() != "stockmesh_propagation_seconds" {
            return MetricHistogram::noop();
        }
        if is_item_event(key) {
            return MetricHistogram::from_arc(Arc::new(Latency(self.0.clone())));
        }
        match Leg::of(key) {
            Some(leg) => MetricHistogram::from_arc(Arc::new(LegLatency(self.0.clone(), leg))),
            None => MetricHistogram::noop(),
        }
    }
}
