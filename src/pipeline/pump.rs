//! The pump: one thread per source that drains its ring in chunks sized by
//! the buffer sizer, meters the level, records, resamples to 16 kHz, runs
//! the echo stage and the VAD, and hands VAD events to the worker.
//!
//! Not real-time safe.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::record::Recorder;
use super::recovery::DeviceFeed;
use super::stats::SourceStats;
use crate::dsp::Resampler;
use crate::event::Event;
use crate::handoff::ChunkReader;
use crate::vad::{Segmenter, VadEvent};

/// The level reported for digital silence.
pub const SILENCE_DB: f32 = -120.0;
/// The rate the VAD and the worker run at.
pub(super) const TIMELINE_RATE_HZ: f64 = 16_000.0;

pub(super) struct Pump {
    pub(super) reader: ChunkReader,
    pub(super) chunk_ms: Arc<AtomicU32>,
    /// The rate of the ring being read.
    pub(super) rate_hz: u32,
    /// The device stream and its recovery (device feeds only).
    pub(super) device: Option<DeviceFeed>,
    /// Where gap events go (the relay orders them among the text).
    pub(super) gaps: Sender<Event>,
    pub(super) clock: Instant,
    pub(super) resampler: Resampler,
    pub(super) vad: Segmenter,
    pub(super) to_worker: Sender<VadEvent>,
    pub(super) stats: Arc<SourceStats>,
    pub(super) recorder: Option<Recorder>,
    /// The chunk being processed (reused).
    pub(super) chunk: Vec<f32>,
    pub(super) resampled: Vec<f32>,
    pub(super) vad_events: Vec<VadEvent>,
    pub(super) echo: Option<crate::echo::PumpStage>,
}

impl Pump {
    pub(super) fn run(mut self, stop: &AtomicBool, feed_done: &AtomicBool) {
        loop {
            // Read the flag before draining, so nothing pushed before it was
            // set is left behind. A device feed ends on stop (the pump stops
            // its stream below, then drains); a file feed ends only once its
            // feeder made its last push (a stop makes the feeder finish).
            let ending = if self.device.is_some() {
                stop.load(Ordering::Acquire)
            } else {
                feed_done.load(Ordering::Acquire)
            };
            if !self.drain_chunks() {
                return;
            }
            self.note_fill();
            if ending {
                if let Some(feed) = &mut self.device {
                    feed.stop_stream();
                }
                self.drain_ring();
                break;
            }
            if !self.supervise(stop) {
                // Stopped while recovering: nothing more will arrive.
                self.drain_ring();
                break;
            }
            let wait_ms = (self.reader.chunk_len() as u64 * 1000 / self.rate_hz as u64 / 3).max(2);
            std::thread::sleep(Duration::from_millis(wait_ms));
        }
        self.resampled.clear();
        self.resampler.finish(&mut self.resampled);
        if let Some(echo) = &mut self.echo {
            echo.finish(&mut self.resampled);
        }
        self.vad.push(&self.resampled, &mut self.vad_events);
        self.vad.finish(&mut self.vad_events);
        self.stats
            .samples_16k
            .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
        self.send_events();
        if let Some(recorder) = self.recorder.take() {
            if recorder.finish().is_err() {
                self.stats.record_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Processes every full chunk in the ring. False when the worker is gone.
    fn drain_chunks(&mut self) -> bool {
        let mut chunk = std::mem::take(&mut self.chunk);
        let mut alive = true;
        while let Some(next) = self.reader.next_chunk() {
            chunk.clear();
            chunk.extend_from_slice(next);
            if !self.process(&chunk) {
                alive = false;
                break;
            }
        }
        self.chunk = chunk;
        alive
    }

    /// Processes everything left in the ring, the last partial chunk too.
    pub(super) fn drain_ring(&mut self) {
        if self.drain_chunks() {
            let rest = self.reader.take_partial().to_vec();
            self.process(&rest);
        }
    }

    /// The source's timeline position: 16 kHz samples handed to the VAD.
    pub(super) fn position_s(&self) -> f64 {
        self.stats.samples_16k.load(Ordering::Relaxed) as f64 / TIMELINE_RATE_HZ
    }

    /// One chunk through level, recording, resampler and VAD. Returns false
    /// when the worker is gone.
    pub(super) fn process(&mut self, chunk: &[f32]) -> bool {
        if chunk.is_empty() {
            return true;
        }
        self.stats
            .level_db_x100
            .store((level_db(chunk) * 100.0) as i32, Ordering::Relaxed);
        if let Some(recorder) = &mut self.recorder {
            if let Err(e) = recorder.write(chunk) {
                tracing::error!("recording stopped: {e}");
                self.stats.record_errors.fetch_add(1, Ordering::Relaxed);
                self.recorder = None;
            }
        }
        self.resampled.clear();
        self.resampler.push(chunk, &mut self.resampled);
        if let Some(echo) = &mut self.echo {
            echo.apply(&mut self.resampled);
        }
        self.stats
            .samples_16k
            .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
        self.vad.push(&self.resampled, &mut self.vad_events);
        self.send_events()
    }

    pub(super) fn send_events(&mut self) -> bool {
        for event in self.vad_events.drain(..) {
            if self.to_worker.send(event).is_err() {
                return false;
            }
        }
        true
    }

    fn note_fill(&self) {
        let fill = self.reader.consumer().fill_ratio();
        self.stats
            .ring_fill_permille
            .store((fill * 1000.0) as u32, Ordering::Relaxed);
    }
}

/// RMS level in dBFS.
pub(super) fn level_db(chunk: &[f32]) -> f32 {
    let power = chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len().max(1) as f32;
    if power <= 0.0 {
        return SILENCE_DB;
    }
    (10.0 * power.log10()).max(SILENCE_DB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_of_full_scale_square_is_zero_db() {
        assert!((level_db(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-4);
        assert_eq!(level_db(&[0.0; 16]), SILENCE_DB);
    }
}
