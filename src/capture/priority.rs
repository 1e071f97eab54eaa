//! Raising and pinning the callback thread, once, from inside the callback.
//!
//! The audio backend creates the callback thread, so the only place to
//! change its scheduling is the callback itself. This is the one bounded
//! exception to the "no syscalls" rule of the real-time contract: on the
//! first callback only, two syscalls (`sched_setaffinity` and
//! `pthread_setschedparam`), neither allocating nor locking. Refusal by the
//! OS is recorded in [`CaptureStats`] and capture goes on.

use super::stats::{CaptureStats, PriorityState};

/// What to ask of the OS for the callback thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeRequest {
    /// Pin the callback thread to this core (`None`: leave it free).
    pub pin_core: Option<usize>,
    /// SCHED_FIFO priority 1-99 on Linux, highest priority elsewhere
    /// (`None`: leave the scheduling alone).
    pub fifo_priority: Option<u8>,
}

/// Core the callback is pinned to unless the spec says otherwise.
pub const DEFAULT_PIN_CORE: usize = 0;
/// SCHED_FIFO priority asked for unless the spec says otherwise.
pub const DEFAULT_FIFO_PRIORITY: u8 = 80;

impl Default for RealtimeRequest {
    fn default() -> Self {
        RealtimeRequest {
            pin_core: Some(DEFAULT_PIN_CORE),
            fifo_priority: Some(DEFAULT_FIFO_PRIORITY),
        }
    }
}

/// Applies `request` to the calling thread and records the outcome.
///
/// Real-time safe. (two syscalls, run once per stream; see the module docs)
pub fn apply(request: RealtimeRequest, stats: &CaptureStats) {
    match request.pin_core {
        Some(core) if core_affinity::set_for_current(core_affinity::CoreId { id: core }) => {
            stats.set_pinned_core(Some(core));
        }
        _ => stats.set_pinned_core(None),
    }
    match request.fifo_priority {
        None => stats.set_priority(PriorityState::NotRequested, 0),
        Some(priority) => match raise(priority) {
            Ok(()) => stats.set_priority(PriorityState::Obtained, 0),
            Err(code) => stats.set_priority(PriorityState::Refused, code),
        },
    }
}

/// Real-time safe.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn raise(priority: u8) -> Result<(), i64> {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let value = ThreadPriorityValue::try_from(priority.clamp(1, 99)).map_err(|_| -1i64)?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    )
    .map_err(error_code)
}

/// Real-time safe.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn raise(_priority: u8) -> Result<(), i64> {
    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Max)
        .map_err(error_code)
}

fn error_code(err: thread_priority::Error) -> i64 {
    match err {
        thread_priority::Error::OS(code) => i64::from(code),
        _ => -1,
    }
}
