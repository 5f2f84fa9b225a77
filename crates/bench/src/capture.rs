//! A `metrics` recorder for benchmarks: it keeps, in an HDR histogram, the propagation latency
//! that Central records for every item event it applies (commit timestamp in the event, apply
//! timestamp after Central's commit), and counts applied item events. Everything else is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use metrics::{
    Counter, CounterFn, Gauge, Histogram as MetricHistogram, HistogramFn, Key, KeyName, Metadata,
    Recorder, SharedString, Unit,
};

/// What the benchmark reads back.
#[derive(Debug)]
pub struct Capture {
    /// Propagation latency of applied item events, in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Item events applied at Central.
    applied: AtomicU64,
}

impl Capture {
    /// Installs the recorder for this process; returns the shared capture.
    pub fn install() -> anyhow::Result<Arc<Capture>> {
        let capture = Arc::new(Capture {
            latency: Mutex::new(super::load::histogram()),
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

    /// Takes the latency histogram, leaving an empty one.
    pub fn take_latency(&self) -> Histogram<u64> {
        let mut guard = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let empty = Histogram::new_from(&*guard);
        std::mem::replace(&mut *guard, empty)
    }
}

struct CaptureRecorder(Arc<Capture>);

struct Latency(Arc<Capture>);

impl HistogramFn for Latency {
    fn record(&self, seconds: f64) {
        let micros = (seconds * 1e6).round().max(1.0) as u64;
        if let Ok(mut histogram) = self.0.latency.lock() {
            histogram.saturating_record(micros);
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
        if key.name() == "stockmesh_propagation_seconds" && is_item_event(key) {
            MetricHistogram::from_arc(Arc::new(Latency(self.0.clone())))
        } else {
            MetricHistogram::noop()
        }
    }
}
