//! The loopback pump's side: its 16 kHz audio, handed to the mic pump's
//! canceller through a lock-free SPSC ring.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ringbuf::traits::{Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use super::EchoStats;

/// Seconds of reference the ring holds: enough for the mic pump to fall a
/// few chunks behind the loopback pump.
const RING_S: usize = 4;

/// Where the reference stream stands, for the canceller's alignment.
#[derive(Debug, Default)]
pub(crate) struct Position {
    /// Samples offered so far (pushed or lost to a full ring).
    pub offered: AtomicU64,
    /// Session time of the last push, microseconds.
    pub offered_at_us: AtomicU64,
}

/// Feeds the loopback's 16 kHz audio to the canceller.
pub struct ReferenceTap {
    producer: HeapProd<f32>,
    position: Arc<Position>,
    clock: Instant,
    stats: Arc<EchoStats>,
}

pub(crate) struct ReferenceConsumer {
    pub ring: HeapCons<f32>,
    pub position: Arc<Position>,
}

pub(crate) fn tap(clock: Instant, stats: Arc<EchoStats>) -> (ReferenceTap, ReferenceConsumer) {
    let (producer, consumer) = HeapRb::<f32>::new(RING_S * 16_000).split();
    let position = Arc::new(Position::default());
    (
        ReferenceTap {
            producer,
            position: Arc::clone(&position),
            clock,
            stats,
        },
        ReferenceConsumer {
            ring: consumer,
            position,
        },
    )
}

impl ReferenceTap {
    /// Hands over 16 kHz loopback samples. Never waits: what does not fit
    /// (the mic pump stalled for seconds) is counted and dropped; the
    /// canceller realigns on the offered count. Not real-time safe (called
    /// from the pump).
    pub fn push(&mut self, samples: &[f32]) {
        if samples.is_empty() {
            return;
        }
        let pushed = self.producer.push_slice(samples);
        if pushed < samples.len() {
            self.stats
                .reference_overflow
                .fetch_add((samples.len() - pushed) as u64, Ordering::Relaxed);
        }
        // Time first, then count: a reader that sees the count sees a time
        // at least as new.
        let now_us = self.clock.elapsed().as_micros() as u64;
        self.position.offered_at_us.store(now_us, Ordering::Release);
        self.position
            .offered
            .fetch_add(samples.len() as u64, Ordering::Release);
    }
}
