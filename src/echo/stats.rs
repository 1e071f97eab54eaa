//! Counters of echo handling, written by the mic pump and the event filter,
//! read by the summary line and the monitor.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const ERLE_BINS: usize = 180;
const ERLE_LOW_DB: f64 = -10.0;
const ERLE_BIN_DB: f64 = 0.5;

/// Echo handling so far. Every field is an atomic: any thread may read.
#[derive(Debug)]
pub struct EchoStats {
    /// 10 ms microphone frames through the canceller.
    pub frames: AtomicU64,
    /// Frames processed without a reference (the loopback was late or gone).
    pub frames_without_reference: AtomicU64,
    /// Frames while the far end was playing (reference active).
    pub far_frames: AtomicU64,
    /// Per-frame ERLE of the frames that held echo alone: a histogram of
    /// 0.5 dB bins from -10 dB up.
    erle_histogram: [AtomicU64; ERLE_BINS],
    /// The canceller's own delay estimate, ms (-1 until it has one).
    pub delay_ms: AtomicI64,
    /// Reference samples skipped or inserted to keep the streams in step.
    pub realigned_samples: AtomicU64,
    /// Reference samples lost because the ring was full.
    pub reference_overflow: AtomicU64,
    /// Nanoseconds spent in echo handling (the canceller's share of CPU).
    pub busy_ns: AtomicU64,
    /// Mic utterances dropped as echo by the text filter.
    pub suppressed_utterances: AtomicU64,
    /// Words in them.
    pub suppressed_words: AtomicU64,
    /// Mic utterances kept although they overlapped a loopback utterance.
    pub kept_overlapping: AtomicU64,
}

impl Default for EchoStats {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoStats {
    pub fn new() -> EchoStats {
        EchoStats {
            frames: AtomicU64::new(0),
            frames_without_reference: AtomicU64::new(0),
            far_frames: AtomicU64::new(0),
            erle_histogram: std::array::from_fn(|_| AtomicU64::new(0)),
            delay_ms: AtomicI64::new(-1),
            realigned_samples: AtomicU64::new(0),
            reference_overflow: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            suppressed_utterances: AtomicU64::new(0),
            suppressed_words: AtomicU64::new(0),
            kept_overlapping: AtomicU64::new(0),
        }
    }

    /// Counts one frame that held echo alone: energy into and out of the
    /// canceller.
    pub(crate) fn add_echo_frame(&self, energy_in: f64, energy_out: f64) {
        let db = 10.0 * (energy_in.max(1e-12) / energy_out.max(1e-12)).log10();
        let bin = ((db - ERLE_LOW_DB) / ERLE_BIN_DB).clamp(0.0, (ERLE_BINS - 1) as f64) as usize;
        self.erle_histogram[bin].fetch_add(1, Ordering::Relaxed);
    }

    /// Echo return loss enhancement in dB: the median over the session's
    /// frames in which the far end played and the microphone held its echo
    /// alone (see the canceller) of energy into the canceller over energy
    /// out of it. None before there were any.
    pub fn erle_db(&self) -> Option<f64> {
        let counts: Vec<u64> = self
            .erle_histogram
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (bin, count) in counts.iter().enumerate() {
            seen += count;
            if seen * 2 >= total {
                return Some(ERLE_LOW_DB + (bin as f64 + 0.5) * ERLE_BIN_DB);
            }
        }
        None
    }

    /// Seconds of CPU spent in echo handling.
    pub fn busy_s(&self) -> f64 {
        self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// One line for the session summary.
    pub fn summary(&self) -> String {
        let frames = self.frames.load(Ordering::Relaxed);
        let audio_s = frames as f64 * 0.01;
        let erle = self
            .erle_db()
            .map_or("n/a (the far end never played)".to_owned(), |e| {
                if e < 1.0 {
                    // Nothing to cancel (headphones): AEC3's comfort noise
                    // may even lift the quiet frames a little.
                    format!("no echo found ({e:.1} dB ERLE)")
                } else {
                    format!("{e:.1} dB (ERLE)")
                }
            });
        let delay = match self.delay_ms.load(Ordering::Relaxed) {
            d if d < 0 => "unknown".to_owned(),
            d => format!("{d} ms"),
        };
        format!(
            "echo: cancelled {erle} over {:.1} s of far-end audio, delay {delay}, \
             {} mic utterance(s) ({} words) suppressed as echo, {} without reference, \
             {:.1}% of a core",
            self.far_frames.load(Ordering::Relaxed) as f64 * 0.01,
            self.suppressed_utterances.load(Ordering::Relaxed),
            self.suppressed_words.load(Ordering::Relaxed),
            if frames == 0 {
                "0 frames".to_owned()
            } else {
                format!(
                    "{:.1}% of frames",
                    100.0 * self.frames_without_reference.load(Ordering::Relaxed) as f64
                        / frames as f64
                )
            },
            if audio_s > 0.0 {
                100.0 * self.busy_s() / audio_s
            } else {
                0.0
            }
        )
    }
}
