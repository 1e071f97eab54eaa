//! Time per call of the real callback body ([`CallbackBody::on_samples`])
//! for device buffers of 1, 53, 480 and 1440 frames, stereo `f32` and `i16`,
//! printed as p50 / p99 / max nanoseconds. Not a pass/fail test: times are
//! noisy; compare the numbers across runs and machines.

use std::sync::Arc;
use std::time::Instant;

use hark::capture::stats::CaptureStats;
use hark::capture::{CallbackBody, RealtimeRequest};
use hark::handoff;

const CALLS: usize = 20_000;
const BUFFER_FRAMES: [usize; 4] = [1, 53, 480, 1440];
const CHANNELS: u16 = 2;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure<T: Copy>(label: &str, frames: usize, sample: T, run: impl Fn(&mut CallbackBody, &[T])) {
    let (producer, mut consumer) = handoff::ring(1 << 20);
    let stats = Arc::new(CaptureStats::new(producer.counters()));
    let request = RealtimeRequest {
        pin_core: None,
        fifo_priority: None,
    };
    let mut body = CallbackBody::new(CHANNELS, producer, stats, request);
    let buffer = vec![sample; frames * usize::from(CHANNELS)];
    let mut sink = vec![0.0f32; frames];
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        run(&mut body, &buffer);
        times.push(start.elapsed().as_nanos() as u64);
        consumer.pop(&mut sink); // keep the ring from filling, outside the timing
    }
    times.sort_unstable();
    let p50 = percentile(&times, 0.50);
    let audio_ns = frames as f64 / 48_000.0 * 1e9;
    println!(
        "{label:>4} {frames:>5} frames: p50 {p50:>7} ns  p99 {:>7} ns  max {:>8} ns  \
         (p50 = {:.4}% of the buffer's duration at 48 kHz)",
        percentile(&times, 0.99),
        times[times.len() - 1],
        p50 as f64 / audio_ns * 100.0,
    );
}

fn main() {
    println!("callback body, {CHANNELS} channels, {CALLS} calls per size");
    for frames in BUFFER_FRAMES {
        measure("f32", frames, 0.25f32, |b, s| b.on_samples(s));
    }
    for frames in BUFFER_FRAMES {
        measure("i16", frames, 8000i16, |b, s| b.on_samples(s));
    }
}
