//! The writer's counters, shared between its I/O thread (which updates them)
//! and anyone who asks for a [`WriterMetrics`] snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// How many recent flush latencies the percentiles are computed over.
const LATENCY_WINDOW_FLUSHES: usize = 4096;

/// Where and how the writer is writing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Normal: records gathered into batches, written and synced together.
    Batched,
    /// After a failed write or sync of the primary file: each event written
    /// and synced on its own.
    Direct,
    /// The primary file could not be written: events go to the emergency file.
    Emergency,
    /// Nothing could be written anywhere; events are held in memory and the
    /// emergency files retried every flush interval.
    Unwritable,
}

/// A snapshot of the writer's state.
#[derive(Debug, Clone, Serialize)]
pub struct WriterMetrics {
    pub mode: WriteMode,
    /// The transcript file asked for.
    pub path: PathBuf,
    /// Where the transcript continues, once the primary file failed.
    pub emergency_path: Option<PathBuf>,
    /// Bytes made durable (written and synced).
    pub bytes_written: u64,
    /// Events made durable.
    pub events_written: u64,
    /// Events the format does not write (partials unless asked, gaps in srt).
    pub events_skipped: u64,
    /// Events refused by `try_send` because the queue was full.
    pub events_rejected: u64,
    /// Flushes that made at least one record durable.
    pub flushes: u64,
    pub flush_latency_p50_ms: f64,
    pub flush_latency_p99_ms: f64,
    /// Events waiting in the channel for the I/O thread.
    pub queue_depth: usize,
    /// The highest queue depth a sender saw.
    pub queue_peak: usize,
    /// The channel's bound: at this depth `try_send` gives the event back.
    pub queue_capacity: usize,
    /// Records formatted by the I/O thread but not yet durable.
    pub pending_events: u64,
    pub last_error: Option<String>,
}

/// Counters updated by the I/O thread and senders.
#[derive(Debug)]
pub(crate) struct Shared {
    pub bytes_written: AtomicU64,
    pub events_written: AtomicU64,
    pub events_skipped: AtomicU64,
    pub events_rejected: AtomicU64,
    pub flushes: AtomicU64,
    pub queue_peak: AtomicUsize,
    pub pending_events: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mode: WriteMode,
    emergency_path: Option<PathBuf>,
    last_error: Option<String>,
    latencies: VecDeque<Duration>,
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            bytes_written: AtomicU64::new(0),
            events_written: AtomicU64::new(0),
            events_skipped: AtomicU64::new(0),
            events_rejected: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            queue_peak: AtomicUsize::new(0),
            pending_events: AtomicU64::new(0),
            state: Mutex::new(State {
                mode: WriteMode::Batched,
                emergency_path: None,
                last_error: None,
                latencies: VecDeque::with_capacity(LATENCY_WINDOW_FLUSHES),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_flush(&self, latency: Duration) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        if state.latencies.len() == LATENCY_WINDOW_FLUSHES {
            state.latencies.pop_front();
        }
        state.latencies.push_back(latency);
    }

    pub fn set_mode(&self, mode: WriteMode) {
        self.state().mode = mode;
    }

    pub fn set_emergency_path(&self, path: Option<PathBuf>) {
        self.state().emergency_path = path;
    }

    pub fn set_error(&self, error: String) {
        self.state().last_error = Some(error);
    }

    pub fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    pub fn snapshot(
        &self,
        path: PathBuf,
        queue_depth: usize,
        queue_capacity: usize,
    ) -> WriterMetrics {
        let state = self.state();
        let mut sorted: Vec<Duration> = state.latencies.iter().copied().collect();
        sorted.sort_unstable();
        WriterMetrics {
            mode: state.mode,
            path,
            emergency_path: state.emergency_path.clone(),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            events_written: self.events_written.load(Ordering::Relaxed),
            events_skipped: self.events_skipped.load(Ordering::Relaxed),
            events_rejected: self.events_rejected.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            flush_latency_p50_ms: percentile_ms(&sorted, 0.50),
            flush_latency_p99_ms: percentile_ms(&sorted, 0.99),
            queue_depth,
            queue_peak: self.queue_peak.load(Ordering::Relaxed).max(queue_depth),
            queue_capacity,
            pending_events: self.pending_events.load(Ordering::Relaxed),
            last_error: state.last_error.clone(),
        }
    }
}

/// Nearest-rank percentile of sorted durations, in milliseconds (0 if none).
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 0.5), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
