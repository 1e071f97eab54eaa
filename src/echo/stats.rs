//! Counters of echo handling, written by the mic pump and the event filter,
//! read by the summary line and the monitor.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Echo-alone audio needed before an ERLE is reported: 1 s of frames.
const ERLE_MIN_FRAMES: u64 = 100;
/// The ERLE's window: the last ~10 s of echo-alone frames.
const ERLE_WINDOW_FRAMES: u64 = 1_000;

/// Echo handling so far. Every field is an atomic: any thread may read.
#[derive(Debug)]
pub struct EchoStats {
    /// 10 ms microphone frames through the canceller.
    pub frames: AtomicU64,
    /// Frames processed without a reference (the loopback was late or gone).
    pub frames_without_reference: AtomicU64,
    /// Frames while the far end was playing (reference active).
    pub far_frames: AtomicU64,
    /// Frames that held echo alone, and the moving mean of their energy
    /// into and out of the canceller (f64 bits; one writer, the mic pump).
    echo_frames: AtomicU64,
    echo_energy_in: AtomicU64,
    echo_energy_out: AtomicU64,
    /// The canceller's own delay estimate, ms (-1 until it has one).
    pub delay_ms: AtomicI64,
    /// Reference samples skipped or inserted to keep the streams in step.
    pub realigned_samples: AtomicU64,
    /// The clocks' drift the reference is read at, tenths of a ppm.
    pub drift_decippm: AtomicI64,
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
            echo_frames: AtomicU64::new(0),
            echo_energy_in: AtomicU64::new(0),
            echo_energy_out: AtomicU64::new(0),
            delay_ms: AtomicI64::new(-1),
            realigned_samples: AtomicU64::new(0),
            drift_decippm: AtomicI64::new(0),
            reference_overflow: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            suppressed_utterances: AtomicU64::new(0),
            suppressed_words: AtomicU64::new(0),
            kept_overlapping: AtomicU64::new(0),
        }
    }

    /// Counts one frame that held echo alone: energy into and out of the
    /// canceller. Called by one thread only (the mic pump).
    pub(crate) fn add_echo_frame(&self, energy_in: f64, energy_out: f64) {
        let frames = self.echo_frames.fetch_add(1, Ordering::Relaxed) + 1;
        // A plain mean until the window is full, then exponential.
        let weight = 1.0 / (frames.min(ERLE_WINDOW_FRAMES) as f64);
        let mix = |sum: &AtomicU64, v: f64| {
            let old = f64::from_bits(sum.load(Ordering::Relaxed));
            sum.store((old + weight * (v - old)).to_bits(), Ordering::Relaxed);
        };
        mix(&self.echo_energy_in, energy_in);
        mix(&self.echo_energy_out, energy_out);
    }

    /// Echo return loss enhancement in dB: energy into the canceller over
    /// energy out of it, over the frames in which the far end played and
    /// the microphone held its echo alone (see the canceller), weighted to
    /// the last ~10 s of them. A window and not the whole session: the
    /// canceller's first seconds, while it learns the room, or after the
    /// speakers move, would otherwise stand for the whole. None before 1 s
    /// of such frames.
    pub fn erle_db(&self) -> Option<f64> {
        if self.echo_frames.load(Ordering::Relaxed) < ERLE_MIN_FRAMES {
            return None;
        }
        let energy_in = f64::from_bits(self.echo_energy_in.load(Ordering::Relaxed));
        let energy_out = f64::from_bits(self.echo_energy_out.load(Ordering::Relaxed));
        Some(10.0 * (energy_in.max(1e-12) / energy_out.max(1e-12)).log10())
    }

    /// Seconds of CPU spent in echo handling.
    pub fn busy_s(&self) -> f64 {
        self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// One line for the session summary.
    pub fn summary(&self) -> String {
        let frames = self.frames.load(Ordering::Relaxed);
        let audio_s = frames as f64 * 0.01;
        let silent = if self.far_frames.load(Ordering::Relaxed) == 0 {
            "n/a (the far end never played)"
        } else {
            "not measured (the microphone never held the far end alone for 1 s)"
        };
        let erle = self.erle_db().map_or(silent.to_owned(), |e| {
            if e < 1.0 {
                // Nothing to cancel (headphones).
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
             reference realigned by {:.0} ms, clock drift followed {:+.0} ppm, {:.1}% of a core",
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
            self.realigned_samples.load(Ordering::Relaxed) as f64 / 16.0,
            self.drift_decippm.load(Ordering::Relaxed) as f64 / 10.0,
            if audio_s > 0.0 {
                100.0 * self.busy_s() / audio_s
            } else {
                0.0
            }
        )
    }
}
