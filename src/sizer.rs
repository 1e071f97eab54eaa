//! The buffer sizer: picks the capture buffer, 30, 60 or 90 ms, from CPU
//! load, ring fill and xruns, off the real-time thread.
//!
//! # What the size applies to
//!
//! The PulseAudio host must run with `BufferSize::Default`: fixed sizes were
//! measured to drop samples silently (the server's record queue is then one
//! period). The device period is therefore the server's business (1-53
//! frames, ~1000 callbacks a second) and the callback only moves samples
//! into the ring. What the size sets is the hand-off chunk: the pump thread
//! drains the ring in chunks of the current size
//! ([`crate::handoff::ChunkReader`]). That chunk is the honest equivalent
//! of a device buffer: it fixes the latency added before DSP/VAD see audio
//! and the work done per pump wake-up, which is what larger buffers buy
//! under load. Changing it mid-stream is gapless: a new size applies at the
//! next chunk boundary and no sample is dropped or repeated (tested).
//!
//! # Decision rule
//!
//! Up fast, down slowly (hysteresis):
//! - xruns, or CPU at or above [`CPU_CRITICAL_PERCENT`]: straight to 90 ms;
//! - CPU at or above [`CPU_HIGH_PERCENT`] or ring fill above
//!   [`RING_FILL_HIGH`]: one step up, at once;
//! - one step down only after [`CALM_PERIOD`] of calm (CPU below
//!   [`CPU_CALM_PERCENT`], ring fill below [`RING_FILL_CALM`], no xruns);
//!   any non-calm sample restarts the calm clock, and so does any change.
//!
//! The seed rule (over 80% CPU -> 90 ms, else 30 ms) flips on every sample
//! near 80%; the gap between 80% (up) and 60% (calm) plus the calm period
//! keep the size from oscillating (see `noisy_load_near_threshold_does_not_flap`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The sizes the sizer chooses from, in milliseconds, smallest first.
pub const STEPS_MS: [u32; 3] = [30, 60, 90];
/// CPU use that sends the size straight to the largest step.
pub const CPU_CRITICAL_PERCENT: f32 = 90.0;
/// CPU use that moves the size one step up.
pub const CPU_HIGH_PERCENT: f32 = 80.0;
/// CPU use below which a sample counts as calm.
pub const CPU_CALM_PERCENT: f32 = 60.0;
/// Ring fill (0..1) that moves the size one step up: the pump is late.
pub const RING_FILL_HIGH: f32 = 0.5;
/// Ring fill below which a sample counts as calm.
pub const RING_FILL_CALM: f32 = 0.25;
/// How long load must stay calm before stepping down.
pub const CALM_PERIOD: Duration = Duration::from_secs(10);
/// How often the sizer thread samples the load.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// One load sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Whole-machine CPU use, 0-100.
    pub cpu_percent: f32,
    /// Hand-off ring fill, 0-1.
    pub ring_fill: f32,
    /// Xruns / stream errors since the previous sample.
    pub xruns_delta: u64,
    pub now: Instant,
}

/// Why the size changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Xruns,
    CpuCritical,
    CpuHigh,
    RingFilling,
    Calm,
}

/// A size change decided by [`BufferSizer::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from_ms: u32,
    pub to_ms: u32,
    pub reason: Reason,
}

/// The decision logic: pure, no clock or I/O of its own.
#[derive(Debug, Clone)]
pub struct BufferSizer {
    step: usize,
    calm_since: Option<Instant>,
}

impl Default for BufferSizer {
    fn default() -> Self {
        Self::new()
    }
}

impl BufferSizer {
    /// Starts at the smallest size (lowest latency).
    pub fn new() -> Self {
        BufferSizer {
            step: 0,
            calm_since: None,
        }
    }

    /// The current size in milliseconds.
    pub fn current_ms(&self) -> u32 {
        STEPS_MS[self.step]
    }

    /// Feeds one load sample; returns the change to make, if any.
    pub fn decide(&mut self, load: Load) -> Option<Change> {
        let top = STEPS_MS.len() - 1;
        let up = if load.xruns_delta > 0 {
            Some((top, Reason::Xruns))
        } else if load.cpu_percent >= CPU_CRITICAL_PERCENT {
            Some((top, Reason::CpuCritical))
        } else if load.cpu_percent >= CPU_HIGH_PERCENT {
            Some(((self.step + 1).min(top), Reason::CpuHigh))
        } else if load.ring_fill > RING_FILL_HIGH {
            Some(((self.step + 1).min(top), Reason::RingFilling))
        } else {
            None
        };
        if let Some((target, reason)) = up {
            self.calm_since = None;
            return self.move_to(target, reason);
        }
        let calm = load.cpu_percent < CPU_CALM_PERCENT && load.ring_fill < RING_FILL_CALM;
        if !calm {
            self.calm_since = None;
            return None;
        }
        let since = *self.calm_since.get_or_insert(load.now);
        if self.step > 0 && load.now.duration_since(since) >= CALM_PERIOD {
            self.calm_since = Some(load.now);
            return self.move_to(self.step - 1, Reason::Calm);
        }
        None
    }

    fn move_to(&mut self, target: usize, reason: Reason) -> Option<Change> {
        if target == self.step {
            return None;
        }
        let from_ms = self.current_ms();
        self.step = target;
        Some(Change {
            from_ms,
            to_ms: self.current_ms(),
            reason,
        })
    }
}

/// What the sizer thread reads each interval besides CPU: the ring's fill
/// and a running count of xruns (e.g. from [`crate::capture::CaptureStats`]).
pub trait LoadSource: Send + 'static {
    /// Ring fill 0-1.
    fn ring_fill(&self) -> f32;
    /// Total xruns and stream errors so far.
    fn xruns_total(&self) -> u64;
}

/// The running sizer thread; its size is published in [`SizerThread::size_ms`].
pub struct SizerThread {
    size_ms: Arc<AtomicU32>,
    changes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl SizerThread {
    /// Starts sampling sysinfo's CPU use every [`SAMPLE_INTERVAL`].
    ///
    /// Not real-time safe.
    pub fn spawn(source: impl LoadSource) -> std::io::Result<SizerThread> {
        let sizer = BufferSizer::new();
        let size_ms = Arc::new(AtomicU32::new(sizer.current_ms()));
        let changes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (size, count, quit) = (
            Arc::clone(&size_ms),
            Arc::clone(&changes),
            Arc::clone(&stop),
        );
        let handle = std::thread::Builder::new()
            .name("hark-sizer".to_owned())
            .spawn(move || run(sizer, source, &size, &count, &quit))?;
        Ok(SizerThread {
            size_ms,
            changes,
            stop,
            handle: Some(handle),
        })
    }

    /// The current size in milliseconds (give it to a `ChunkReader`).
    pub fn size_ms(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.size_ms)
    }

    /// How many times the size changed.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Stops the thread (within one sample interval).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

impl Drop for SizerThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    mut sizer: BufferSizer,
    source: impl LoadSource,
    size_ms: &AtomicU32,
    changes: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut system = sysinfo::System::new();
    system.refresh_cpu_usage();
    let mut last_xruns = source.xruns_total();
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(SAMPLE_INTERVAL.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL));
        if stop.load(Ordering::Acquire) {
            break;
        }
        system.refresh_cpu_usage();
        let xruns = source.xruns_total();
        let load = Load {
            cpu_percent: system.global_cpu_usage(),
            ring_fill: source.ring_fill(),
            xruns_delta: xruns.saturating_sub(last_xruns),
            now: Instant::now(),
        };
        last_xruns = xruns;
        if let Some(change) = sizer.decide(load) {
            size_ms.store(change.to_ms, Ordering::Release);
            changes.fetch_add(1, Ordering::AcqRel);
            tracing::info!(
                from_ms = change.from_ms,
                to_ms = change.to_ms,
                reason = ?change.reason,
                cpu_percent = load.cpu_percent,
                ring_fill = load.ring_fill,
                "capture buffer resized"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::{self, ChunkReader};

    fn load(cpu: f32, fill: f32, xruns: u64, at: Instant) -> Load {
        Load {
            cpu_percent: cpu,
            ring_fill: fill,
            xruns_delta: xruns,
            now: at,
        }
    }

    #[test]
    fn overload_goes_up_at_once_and_calm_comes_down_slowly() {
        let t0 = Instant::now();
        let mut s = BufferSizer::new();
        assert_eq!(s.current_ms(), 30);
        assert_eq!(s.decide(load(20.0, 0.0, 0, t0)), None);
        let c = s.decide(load(85.0, 0.0, 0, t0)).unwrap();
        assert_eq!((c.from_ms, c.to_ms, c.reason), (30, 60, Reason::CpuHigh));
        let c = s.decide(load(95.0, 0.0, 0, t0)).unwrap();
        assert_eq!((c.to_ms, c.reason), (90, Reason::CpuCritical));
        // Calm, but not for long enough.
        let half = SAMPLE_INTERVAL;
        let mut t = t0;
        for _ in 0..(CALM_PERIOD.as_millis() / half.as_millis()) {
            t += half;
            assert_eq!(s.decide(load(10.0, 0.0, 0, t)), None);
        }
        t += half;
        let c = s.decide(load(10.0, 0.0, 0, t)).unwrap();
        assert_eq!((c.from_ms, c.to_ms, c.reason), (90, 60, Reason::Calm));
        // The next step down needs a fresh calm period.
        assert_eq!(s.decide(load(10.0, 0.0, 0, t + half)), None);
        let c = s.decide(load(10.0, 0.0, 0, t + CALM_PERIOD)).unwrap();
        assert_eq!(c.to_ms, 30);
    }

    #[test]
    fn xruns_and_ring_fill_push_up() {
        let t0 = Instant::now();
        let mut s = BufferSizer::new();
        let c = s.decide(load(10.0, 0.0, 2, t0)).unwrap();
        assert_eq!((c.to_ms, c.reason), (90, Reason::Xruns));
        let mut s = BufferSizer::new();
        let c = s.decide(load(10.0, 0.6, 0, t0)).unwrap();
        assert_eq!((c.to_ms, c.reason), (60, Reason::RingFilling));
    }

    #[test]
    fn noisy_load_near_threshold_does_not_flap() {
        // CPU alternating 78% / 82% for a minute: the seed rule would
        // change size on every sample (120 changes); this one goes up once.
        let t0 = Instant::now();
        let mut s = BufferSizer::new();
        let mut changes = 0;
        for i in 0..120u32 {
            let cpu = if i % 2 == 0 { 78.0 } else { 82.0 };
            if s.decide(load(cpu, 0.1, 0, t0 + SAMPLE_INTERVAL * i))
                .is_some()
            {
                changes += 1;
            }
        }
        assert_eq!(changes, 2, "30->60->90 then steady");
        assert_eq!(s.current_ms(), 90);
    }

    #[test]
    fn resizing_mid_stream_loses_no_samples() {
        const RATE_HZ: u32 = 16_000;
        const TOTAL: usize = RATE_HZ as usize * 3;
        let (mut producer, consumer) = handoff::ring(4096);
        let size_ms = Arc::new(AtomicU32::new(30));
        let mut reader = ChunkReader::new(consumer, Arc::clone(&size_ms), RATE_HZ);
        let writer = std::thread::spawn(move || {
            // Push a ramp in uneven blocks, waiting whenever the ring is full.
            let ramp: Vec<f32> = (0..TOTAL).map(|i| i as f32).collect();
            let mut sent = 0;
            let mut block = 1;
            while sent < TOTAL {
                let end = (sent + block).min(TOTAL);
                let room = producer.vacant().min(end - sent);
                sent += producer.push(&ramp[sent..sent + room]);
                block = block % 53 + 7;
                std::thread::yield_now();
            }
        });
        let mut out = Vec::with_capacity(TOTAL);
        let mut sizes_seen = Vec::new();
        while out.len() < TOTAL {
            // 30 ms for the first second, 90 for the next, 30 again.
            let ms = match out.len() / RATE_HZ as usize {
                1 => 90,
                _ => 30,
            };
            size_ms.store(ms, Ordering::Release);
            if let Some(chunk) = reader.next_chunk() {
                sizes_seen.push(chunk.len());
                out.extend_from_slice(chunk);
            } else if writer.is_finished() && reader.consumer().available() == 0 {
                out.extend_from_slice(reader.take_partial());
            } else {
                std::thread::yield_now();
            }
        }
        writer.join().unwrap();
        assert_eq!(out.len(), TOTAL);
        assert!(out.iter().enumerate().all(|(i, &s)| s == i as f32));
        assert!(sizes_seen.contains(&480) && sizes_seen.contains(&1440));
        let counters = reader.consumer().counters();
        assert_eq!(counters.overflowed.load(Ordering::Acquire), 0);
    }

    struct Quiet;
    impl LoadSource for Quiet {
        fn ring_fill(&self) -> f32 {
            0.0
        }
        fn xruns_total(&self) -> u64 {
            0
        }
    }

    #[test]
    fn sizer_thread_publishes_and_stops() {
        let thread = SizerThread::spawn(Quiet).unwrap();
        let size = thread.size_ms();
        std::thread::sleep(SAMPLE_INTERVAL + Duration::from_millis(100));
        let ms = size.load(Ordering::Acquire);
        assert!(STEPS_MS.contains(&ms));
        let started = Instant::now();
        thread.stop();
        assert!(started.elapsed() < SAMPLE_INTERVAL * 2);
    }
}
