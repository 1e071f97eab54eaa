//! Counters the real-time callback writes and every other thread reads.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::handoff::RingCounters;

/// What happened when the callback thread asked for real-time scheduling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityState {
    /// No callback has run yet.
    Pending,
    /// SCHED_FIFO (or the platform's highest priority) was granted.
    Obtained,
    /// The OS refused; capture goes on at normal priority.
    Refused,
    /// Not asked for (disabled in the spec).
    NotRequested,
}

const PRIORITY_PENDING: u8 = 0;
const PRIORITY_OBTAINED: u8 = 1;
const PRIORITY_REFUSED: u8 = 2;
const PRIORITY_NOT_REQUESTED: u8 = 3;
/// `pinned_core` value while not pinned (not yet, refused or not asked).
pub const NOT_PINNED: i64 = -1;

/// Stream error kinds as stored in [`CaptureStats::last_error_code`].
pub const ERROR_NONE: u8 = 0;
pub const ERROR_XRUN: u8 = 1;
pub const ERROR_DEVICE_GONE: u8 = 2;
pub const ERROR_STREAM_INVALIDATED: u8 = 3;
pub const ERROR_BACKEND: u8 = 4;
pub const ERROR_OTHER: u8 = 5;

/// Live counters of one capture stream.
///
/// Gapless accounting: `frames_captured` counts every frame the device
/// delivered; each becomes one mono sample offered to the ring, so
/// `frames_captured == ring.pushed + ring.overflowed` and
/// `ring.pushed == ring.popped + samples still queued`.
#[derive(Debug)]
pub struct CaptureStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Frames the device delivered.
    pub frames_captured: AtomicU64,
    /// Stream errors reported by the backend (xruns included).
    pub stream_errors: AtomicU64,
    /// Of those, overruns/underruns.
    pub xruns: AtomicU64,
    /// The last stream error, one of the `ERROR_*` codes.
    pub last_error_code: AtomicU8,
    /// Slowest callback so far, nanoseconds.
    pub max_callback_ns: AtomicU64,
    /// OS error code when priority was refused (0 otherwise).
    pub priority_os_error: AtomicI64,
    priority: AtomicU8,
    pinned_core: AtomicI64,
    /// The hand-off ring's counters (pushed / overflowed / popped).
    pub ring: Arc<RingCounters>,
}

impl CaptureStats {
    /// Fresh counters over a ring's counters.
    pub fn new(ring: Arc<RingCounters>) -> Self {
        CaptureStats {
            callbacks: AtomicU64::new(0),
            frames_captured: AtomicU64::new(0),
            stream_errors: AtomicU64::new(0),
            xruns: AtomicU64::new(0),
            last_error_code: AtomicU8::new(ERROR_NONE),
            max_callback_ns: AtomicU64::new(0),
            priority_os_error: AtomicI64::new(0),
            priority: AtomicU8::new(PRIORITY_PENDING),
            pinned_core: AtomicI64::new(NOT_PINNED),
            ring,
        }
    }

    /// Samples lost because the ring was full.
    pub fn overflowed_samples(&self) -> u64 {
        self.ring.overflowed.load(Ordering::Acquire)
    }

    /// Outcome of the real-time priority request.
    pub fn priority(&self) -> PriorityState {
        match self.priority.load(Ordering::Acquire) {
            PRIORITY_OBTAINED => PriorityState::Obtained,
            PRIORITY_REFUSED => PriorityState::Refused,
            PRIORITY_NOT_REQUESTED => PriorityState::NotRequested,
            _ => PriorityState::Pending,
        }
    }

    /// The core the callback thread is pinned to, if it is.
    pub fn pinned_core(&self) -> Option<usize> {
        let core = self.pinned_core.load(Ordering::Acquire);
        (core >= 0).then_some(core as usize)
    }

    /// Records a stream error by kind.
    ///
    /// Real-time safe.
    pub fn record_error(&self, kind: cpal::ErrorKind) {
        use cpal::ErrorKind as K;
        let code = match kind {
            K::Xrun => ERROR_XRUN,
            K::DeviceNotAvailable | K::DeviceChanged => ERROR_DEVICE_GONE,
            K::StreamInvalidated => ERROR_STREAM_INVALIDATED,
            K::BackendError => ERROR_BACKEND,
            _ => ERROR_OTHER,
        };
        if code == ERROR_XRUN {
            self.xruns.fetch_add(1, Ordering::Relaxed);
        }
        self.stream_errors.fetch_add(1, Ordering::Relaxed);
        self.last_error_code.store(code, Ordering::Release);
    }

    /// Real-time safe.
    pub(crate) fn set_priority(&self, state: PriorityState, os_error: i64) {
        let code = match state {
            PriorityState::Pending => PRIORITY_PENDING,
            PriorityState::Obtained => PRIORITY_OBTAINED,
            PriorityState::Refused => PRIORITY_REFUSED,
            PriorityState::NotRequested => PRIORITY_NOT_REQUESTED,
        };
        self.priority_os_error.store(os_error, Ordering::Relaxed);
        self.priority.store(code, Ordering::Release);
    }

    /// Real-time safe.
    pub(crate) fn set_pinned_core(&self, core: Option<usize>) {
        let value = core.map_or(NOT_PINNED, |c| c as i64);
        self.pinned_core.store(value, Ordering::Release);
    }

    /// A plain copy of every counter, for logs and metrics.
    pub fn snapshot(&self) -> CaptureSnapshot {
        CaptureSnapshot {
            callbacks: self.callbacks.load(Ordering::Acquire),
            frames_captured: self.frames_captured.load(Ordering::Acquire),
            overflowed_samples: self.overflowed_samples(),
            popped_samples: self.ring.popped.load(Ordering::Acquire),
            stream_errors: self.stream_errors.load(Ordering::Acquire),
            xruns: self.xruns.load(Ordering::Acquire),
            max_callback_ns: self.max_callback_ns.load(Ordering::Acquire),
            priority: self.priority(),
            pinned_core: self.pinned_core(),
        }
    }
}

/// A point-in-time copy of [`CaptureStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureSnapshot {
    pub callbacks: u64,
    pub frames_captured: u64,
    pub overflowed_samples: u64,
    pub popped_samples: u64,
    pub stream_errors: u64,
    pub xruns: u64,
    pub max_callback_ns: u64,
    pub priority: PriorityState,
    pub pinned_core: Option<usize>,
}
