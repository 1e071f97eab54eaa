//! The hand-off between the device callback and the pump thread: a lock-free
//! single-producer single-consumer ring of mono `f32` samples (ringbuf 0.4).
//!
//! Nothing is lost silently. The producer (the real-time callback) counts
//! every sample it offered that did not fit as *overflowed*; the consumer
//! counts every sample it popped. At any quiet moment
//! `offered == pushed + overflowed` and `pushed == popped + still queued`.
//!
//! [`ChunkReader`] drains the ring in chunks whose length (in milliseconds)
//! is read from a shared atomic each time, so the buffer sizer
//! ([`crate::sizer`]) can change the pump's wake-up size mid-stream without
//! losing or repeating a sample.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Counters shared by both ends of one ring. Read them from any thread.
#[derive(Debug, Default)]
pub struct RingCounters {
    /// Samples accepted into the ring.
    pub pushed: AtomicU64,
    /// Samples offered by the producer that did not fit (lost, and counted).
    pub overflowed: AtomicU64,
    /// Samples taken out by the consumer.
    pub popped: AtomicU64,
}

impl RingCounters {
    /// Samples the producer offered in total (pushed + overflowed).
    pub fn offered(&self) -> u64 {
        self.pushed.load(Ordering::Acquire) + self.overflowed.load(Ordering::Acquire)
    }
}

/// The writing end; lives on the real-time callback.
pub struct Producer {
    inner: HeapProd<f32>,
    counters: Arc<RingCounters>,
}

/// The reading end; lives on the pump thread.
pub struct Consumer {
    inner: HeapCons<f32>,
    counters: Arc<RingCounters>,
}

/// Creates a ring holding `capacity` samples (at least 1).
///
/// Not real-time safe. (allocates the ring)
pub fn ring(capacity: usize) -> (Producer, Consumer) {
    ring_counting_into(capacity, Arc::new(RingCounters::default()))
}

/// Creates a ring whose counters are `counters`, shared with earlier rings:
/// a source that swaps devices keeps one running count of every sample.
///
/// Not real-time safe. (allocates the ring)
pub fn ring_counting_into(capacity: usize, counters: Arc<RingCounters>) -> (Producer, Consumer) {
    let (inner_prod, inner_cons) = HeapRb::<f32>::new(capacity.max(1)).split();
    (
        Producer {
            inner: inner_prod,
            counters: Arc::clone(&counters),
        },
        Consumer {
            inner: inner_cons,
            counters,
        },
    )
}

/// Ring capacity in samples for `duration` of audio: `ms x rate x channels`.
pub fn capacity_for(duration: Duration, rate_hz: u32, channels: u16) -> usize {
    let samples = duration.as_secs_f64() * f64::from(rate_hz) * f64::from(channels);
    samples.ceil() as usize
}

impl Producer {
    /// Pushes as many of `samples` as fit and returns how many did; the rest
    /// is added to the overflow counter.
    ///
    /// Real-time safe.
    pub fn push(&mut self, samples: &[f32]) -> usize {
        let pushed = self.inner.push_slice(samples);
        let lost = samples.len() - pushed;
        self.counters
            .pushed
            .fetch_add(pushed as u64, Ordering::Release);
        if lost > 0 {
            self.counters
                .overflowed
                .fetch_add(lost as u64, Ordering::Release);
        }
        pushed
    }

    /// Free room in samples.
    ///
    /// Real-time safe.
    pub fn vacant(&self) -> usize {
        self.inner.vacant_len()
    }

    /// The counters shared with the consumer.
    pub fn counters(&self) -> Arc<RingCounters> {
        Arc::clone(&self.counters)
    }
}

impl Consumer {
    /// Pops up to `out.len()` samples into `out`; returns how many.
    pub fn pop(&mut self, out: &mut [f32]) -> usize {
        let popped = self.inner.pop_slice(out);
        self.counters
            .popped
            .fetch_add(popped as u64, Ordering::Release);
        popped
    }

    /// Samples waiting to be popped.
    pub fn available(&self) -> usize {
        self.inner.occupied_len()
    }

    /// Ring capacity in samples.
    pub fn capacity(&self) -> usize {
        self.inner.capacity().get()
    }

    /// How full the ring is, 0.0 (empty) to 1.0 (full: the next push overflows).
    pub fn fill_ratio(&self) -> f32 {
        self.available() as f32 / self.capacity() as f32
    }

    /// The counters shared with the producer.
    pub fn counters(&self) -> Arc<RingCounters> {
        Arc::clone(&self.counters)
    }
}

/// Drains a [`Consumer`] in chunks of `chunk_ms` milliseconds of audio, the
/// length being re-read from a shared atomic at every chunk boundary (the
/// buffer sizer writes it). A size change takes effect on the next chunk;
/// samples already gathered for the current chunk are kept, so the output is
/// exactly the input, in order.
pub struct ChunkReader {
    consumer: Consumer,
    chunk_ms: Arc<AtomicU32>,
    rate_hz: u32,
    chunk: Vec<f32>,
    filled: usize,
    target: usize,
}

impl ChunkReader {
    /// Largest chunk the reader is prepared for, in milliseconds; larger
    /// requests are clamped to it.
    pub const MAX_CHUNK_MS: u32 = 1000;

    /// Wraps `consumer` whose samples are mono at `rate_hz`.
    pub fn new(consumer: Consumer, chunk_ms: Arc<AtomicU32>, rate_hz: u32) -> Self {
        let max = samples_for_ms(Self::MAX_CHUNK_MS, rate_hz);
        let mut reader = ChunkReader {
            consumer,
            chunk_ms,
            rate_hz,
            chunk: vec![0.0; max],
            filled: 0,
            target: 0,
        };
        reader.target = reader.current_target();
        reader
    }

    fn current_target(&self) -> usize {
        let ms = self
            .chunk_ms
            .load(Ordering::Acquire)
            .clamp(1, Self::MAX_CHUNK_MS);
        samples_for_ms(ms, self.rate_hz)
    }

    /// Returns the next full chunk if the ring holds enough samples, else
    /// `None` (what was available is kept for the next call).
    pub fn next_chunk(&mut self) -> Option<&[f32]> {
        if self.filled == self.target {
            // The previous chunk was handed out: start a new one at the
            // size currently asked for.
            self.filled = 0;
            self.target = self.current_target();
        }
        let want = self.target - self.filled;
        let got = self
            .consumer
            .pop(&mut self.chunk[self.filled..self.filled + want]);
        self.filled += got;
        (self.filled == self.target).then(|| &self.chunk[..self.target])
    }

    /// Samples gathered for a chunk not yet complete (e.g. to flush at the
    /// end of a stream). Consumes them.
    pub fn take_partial(&mut self) -> &[f32] {
        let n = if self.filled == self.target {
            0
        } else {
            self.filled
        };
        self.filled = 0;
        self.target = self.current_target();
        &self.chunk[..n]
    }

    /// The size of the chunk being gathered, in samples.
    pub fn chunk_len(&self) -> usize {
        self.target
    }

    /// The wrapped consumer (for fill ratio and counters).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }
}

fn samples_for_ms(ms: u32, rate_hz: u32) -> usize {
    (u64::from(ms) * u64::from(rate_hz)).div_ceil(1000) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_ms_times_rate_times_channels() {
        assert_eq!(capacity_for(Duration::from_millis(500), 48_000, 1), 24_000);
        assert_eq!(capacity_for(Duration::from_millis(90), 44_100, 2), 7_938);
    }

    #[test]
    fn overflow_is_counted_exactly_when_producer_outruns_consumer() {
        let (mut producer, mut consumer) = ring(1000);
        let block: Vec<f32> = (0..300).map(|i| i as f32).collect();
        let mut out = vec![0.0; 100];
        let mut offered = 0u64;
        let mut pushed_total = 0u64;
        // Producer offers 300 per round, consumer takes 100: it must overflow.
        for _ in 0..50 {
            pushed_total += producer.push(&block) as u64;
            offered += block.len() as u64;
            consumer.pop(&mut out);
        }
        let counters = consumer.counters();
        let pushed = counters.pushed.load(Ordering::Acquire);
        let overflowed = counters.overflowed.load(Ordering::Acquire);
        assert_eq!(pushed, pushed_total);
        assert!(overflowed > 0, "a full ring must report overflow");
        assert_eq!(pushed + overflowed, offered);
        assert_eq!(counters.offered(), offered);
        // Every pushed sample is either popped or still queued.
        let popped = counters.popped.load(Ordering::Acquire);
        assert_eq!(popped + consumer.available() as u64, pushed);
        assert_eq!(consumer.fill_ratio(), 0.9); // full, then one pop of 100
    }

    #[test]
    fn samples_come_out_in_order() {
        let (mut producer, mut consumer) = ring(8);
        assert_eq!(producer.push(&[1.0, 2.0, 3.0]), 3);
        let mut out = [0.0; 2];
        assert_eq!(consumer.pop(&mut out), 2);
        assert_eq!(out, [1.0, 2.0]);
        assert_eq!(producer.vacant(), 7);
    }

    #[test]
    fn chunk_reader_changes_size_only_at_chunk_boundaries() {
        let (mut producer, consumer) = ring(10_000);
        let chunk_ms = Arc::new(AtomicU32::new(10));
        let mut reader = ChunkReader::new(consumer, Arc::clone(&chunk_ms), 1000);
        let ramp: Vec<f32> = (0..100).map(|i| i as f32).collect();
        producer.push(&ramp[..5]);
        assert!(reader.next_chunk().is_none());
        chunk_ms.store(30, Ordering::Release); // mid-chunk: applies to the next
        producer.push(&ramp[5..]);
        assert_eq!(reader.next_chunk().unwrap(), &ramp[..10]);
        assert_eq!(reader.next_chunk().unwrap(), &ramp[10..40]);
        assert_eq!(reader.take_partial().len(), 0);
    }
}
