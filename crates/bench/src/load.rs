//! Load generation: open-loop at a fixed rate (each operation starts on schedule, however slow
//! the previous ones are, so a slow system cannot hide its latency), and closed-loop with a fixed
//! number of concurrent clients.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

/// What a load run observed.
pub struct LoadResult {
    /// Latency of successful operations, in microseconds.
    pub latency: Histogram<u64>,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// A histogram of 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// Starts `op(i)` `rate` times a second for `duration`; latency measured from each op's start.
pub async fn open_loop<F, Fut>(rate: u32, duration: Duration, op: F) -> LoadResult
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let shared = Arc::new(Mutex::new((histogram(), 0u64, 0u64)));
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while started.elapsed() < duration {
        ticker.tick().await;
        let fut = op(i);
        i += 1;
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let ok = fut.await;
            let micros = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
            let mut s = shared.lock().await;
            if ok {
                s.0.saturating_record(micros.max(1));
                s.1 += 1;
            } else {
                s.2 += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let (latency, ok, failed) = std::mem::replace(&mut *shared.lock().await, (histogram(), 0, 0));
    LoadResult {
        latency,
        ok,
        failed,
        elapsed,
    }
}

/// Runs `clients` loops of `op` back to back for `duration`.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = histogram();
            let (mut ok, mut failed, mut i) = (0u64, 0u64, client as u64);
            while started.elapsed() < duration {
                let begun = Instant::now();
                if op(i).await {
                    let micros = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
                    local.saturating_record(micros.max(1));
                    ok += 1;
                } else {
                    failed += 1;
                }
                i += clients as u64;
            }
            (local, ok, failed)
        }));
    }
    let mut result = LoadResult {
        latency: histogram(),
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((h, ok, failed)) = task.await {
            let _ = result.latency.add(&h);
            result.ok += ok;
            result.failed += failed;
        }
    }
    result.elapsed = started.elapsed();
    result
}
