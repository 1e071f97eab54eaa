//! The file feed: a WAV file played into the ring at 1x, in device-sized
//! blocks, as a capture device would.
//!
//! Not real-time safe.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{PipelineError, RING_DURATION};
use crate::dsp;
use crate::event::Source;
use crate::handoff::{self, Consumer, Producer};

/// Block the file feeder pushes at a time, like a device period.
const FEED_BLOCK: Duration = Duration::from_millis(10);

/// Plays `mono` into the ring in [`FEED_BLOCK`] blocks at 1x.
pub(super) fn feed_file(
    mono: Vec<f32>,
    rate_hz: u32,
    mut producer: Producer,
    stop: &AtomicBool,
    done: &AtomicBool,
) {
    let block = ((rate_hz as f64 * FEED_BLOCK.as_secs_f64()) as usize).max(1);
    let started = Instant::now();
    for (i, chunk) in mono.chunks(block).enumerate() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let due = started + Duration::from_secs_f64((i * block) as f64 / rate_hz as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.push(chunk);
    }
    done.store(true, Ordering::Release);
}

/// Reads `path`, downmixes it, and starts its feeder thread: the ring's
/// consumer, the thread, and the file's rate.
pub(super) fn start(
    path: &Path,
    source: Source,
    stop: &Arc<AtomicBool>,
    done: &Arc<AtomicBool>,
) -> Result<(Consumer, JoinHandle<()>, u32), PipelineError> {
    let audio = dsp::wav::read(path)?;
    let mut mono = vec![0.0; audio.frames()];
    dsp::downmix(&audio.samples, audio.channels, &mut mono);
    let capacity = handoff::capacity_for(RING_DURATION, audio.rate_hz, 1);
    let (producer, consumer) = handoff::ring(capacity);
    let (stop, done) = (Arc::clone(stop), Arc::clone(done));
    let rate = audio.rate_hz;
    let feeder = std::thread::Builder::new()
        .name(format!("hark-feed-{source}"))
        .spawn(move || feed_file(mono, rate, producer, &stop, &done))
        .map_err(PipelineError::Thread)?;
    Ok((consumer, feeder, rate))
}
