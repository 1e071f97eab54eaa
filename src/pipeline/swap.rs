//! Device loss, seen from the pump: supervising the stream, and moving to
//! a new one (a reopened device, a fallback, the device asked for come
//! back) with the time without audio filled by digital silence and
//! reported as a gap event.
//!
//! Not real-time safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::pump::Pump;
use super::recovery::{GapRecord, Opened};
use crate::dsp::Resampler;
use crate::event::{Event, EventKind};
use crate::handoff::ChunkReader;

/// Digital silence fed per step when filling a gap, in samples.
const GAP_FILL_BLOCK_SAMPLES: usize = 4096;

impl Pump {
    /// Checks the device stream; replaces it when it died or when the
    /// device asked for came back. False when stopped while recovering.
    pub(super) fn supervise(&mut self, stop: &AtomicBool) -> bool {
        let Some(mut feed) = self.device.take() else {
            return true;
        };
        if let Some(stream) = feed.stream() {
            stream.log_realtime_status();
        }
        let now = Instant::now();
        let swap = if let Some(reason) = feed.check(now) {
            tracing::warn!(source = %self.stats.source, "{reason}; recovering");
            feed.stop_stream();
            self.drain_ring();
            let gap_start = self.position_s();
            Some((reason, gap_start, feed.reopen(stop)))
        } else if feed.home_is_back(now) {
            feed.stop_stream();
            self.drain_ring();
            let gap_start = self.position_s();
            let opened = feed.go_home().or_else(|| feed.reopen(stop));
            Some(("swapping back".to_owned(), gap_start, opened))
        } else {
            None
        };
        self.device = Some(feed);
        match swap {
            None => true,
            Some((_, _, None)) => false,
            Some((reason, gap_start, Some(opened))) => {
                self.swap(opened, gap_start, &reason);
                true
            }
        }
    }

    /// Moves to a new stream: fills the time without audio with digital
    /// silence, then reads the new ring (at its rate).
    fn swap(&mut self, opened: Opened, gap_start: f64, reason: &str) {
        let session_s = self.clock.elapsed().as_secs_f64();
        let target_s = session_s - self.stats.timeline_origin.as_secs_f64();
        let missing_s = (target_s - self.position_s()).max(0.0);
        let mut frames = (missing_s * f64::from(self.rate_hz)).round() as usize;
        let zeros = vec![0.0f32; GAP_FILL_BLOCK_SAMPLES];
        let before = self.stats.samples_16k.load(Ordering::Relaxed);
        while frames > 0 {
            let n = frames.min(zeros.len());
            if !self.process(&zeros[..n]) {
                break;
            }
            frames -= n;
        }
        if opened.rate_hz != self.rate_hz {
            self.resampled.clear();
            self.resampler.finish(&mut self.resampled);
            self.vad.push(&self.resampled, &mut self.vad_events);
            self.stats
                .samples_16k
                .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
            self.send_events();
            match Resampler::new(opened.rate_hz) {
                Ok(resampler) => self.resampler = resampler,
                Err(e) => tracing::error!("cannot resample the new device's rate: {e}"),
            }
            self.rate_hz = opened.rate_hz;
            self.stats
                .current_rate_hz
                .store(opened.rate_hz, Ordering::Relaxed);
        }
        self.reader = ChunkReader::new(opened.consumer, Arc::clone(&self.chunk_ms), self.rate_hz);
        let inserted = self.stats.samples_16k.load(Ordering::Relaxed) - before;
        let recovery = &self.stats.recovery;
        recovery
            .gap_samples_16k
            .fetch_add(inserted, Ordering::Relaxed);
        let gap = GapRecord {
            start: gap_start,
            end: self.position_s(),
            reason: format!("{reason}; {}", opened.note),
        };
        tracing::warn!(
            source = %self.stats.source,
            start = gap.start,
            end = gap.end,
            "gap in the audio: {}",
            gap.reason
        );
        let _ = self.gaps.send(Event {
            source: self.stats.source,
            kind: EventKind::Gap,
            start: gap.start,
            end: gap.end,
            text: gap.reason.clone(),
            emitted: Some(session_s),
        });
        recovery.push_gap(gap);
    }
}
