//! The file feed: a WAV file played into the ring at 1x, in device-sized
//! blocks, as a capture device would. The file is read a block at a time
//! as it plays ([`dsp::wav::Stream`]): only one block is held, so a file of
//! any length (or a sparse one whose header claims gigabytes) costs the
//! same memory.
//!
//! Not real-time safe.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{PipelineError, RING_DURATION};
use crate::dsp::{self, wav, AudioFileError};
use crate::event::Source;
use crate::handoff::{self, Consumer, Producer};

/// Block the file feeder pushes at a time, like a device period.
const FEED_BLOCK: Duration = Duration::from_millis(10);

/// How a feeder ended: the error that cut the file short, if any.
pub(super) type FeedEnd = Option<AudioFileError>;

/// Plays `stream` into the ring in [`FEED_BLOCK`] blocks at 1x, downmixed
/// to mono, until the file ends, `stop` is set or a read fails (returned).
pub(super) fn feed_file(
    mut stream: wav::Stream,
    mut producer: Producer,
    stop: &AtomicBool,
    done: &AtomicBool,
) -> FeedEnd {
    let rate_hz = stream.rate_hz();
    let block = ((f64::from(rate_hz) * FEED_BLOCK.as_secs_f64()) as usize).max(1);
    let mut samples = Vec::with_capacity(block * usize::from(stream.channels()));
    let mut mono = vec![0.0; block];
    let mut fed = 0u64;
    let started = Instant::now();
    let mut failed = None;
    while !stop.load(Ordering::Acquire) {
        samples.clear();
        let frames = match stream.read_frames(block, &mut samples) {
            Ok(0) => break,
            Ok(frames) => frames,
            Err(err) => {
                failed = Some(err);
                break;
            }
        };
        dsp::downmix(&samples, stream.channels(), &mut mono[..frames]);
        let due = started + Duration::from_secs_f64(fed as f64 / f64::from(rate_hz));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.push(&mono[..frames]);
        fed += frames as u64;
    }
    done.store(true, Ordering::Release);
    failed
}

/// Opens `path` (its header checked now, so a bad file fails before
/// anything starts) and starts its feeder thread: the ring's consumer, the
/// thread, and the file's rate.
pub(super) fn start(
    path: &Path,
    source: Source,
    stop: &Arc<AtomicBool>,
    done: &Arc<AtomicBool>,
) -> Result<(Consumer, JoinHandle<FeedEnd>, u32), PipelineError> {
    let stream = wav::Stream::open(path)?;
    let rate = stream.rate_hz();
    let capacity = handoff::capacity_for(RING_DURATION, rate, 1);
    let (producer, consumer) = handoff::ring(capacity);
    let (stop, done) = (Arc::clone(stop), Arc::clone(done));
    let feeder = std::thread::Builder::new()
        .name(format!("hark-feed-{source}"))
        .spawn(move || feed_file(stream, producer, &stop, &done))
        .map_err(PipelineError::Thread)?;
    Ok((consumer, feeder, rate))
}
