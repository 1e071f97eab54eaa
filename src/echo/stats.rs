//! Counters of echo handling, written by the mic pump and the event filter,
//! read by the summary line and the monitor.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Echo handling so far. Every field is an atomic: any thread may read.
#[derive(Debug, Default)]
pub struct EchoStats {
    /// 10 ms microphone frames through the canceller.
    pub frames: AtomicU64,
    /// Frames processed without a reference (the loopback was late or gone).
    pub frames_without_reference: AtomicU64,
    /// Frames while the far end was playing (reference active).
    pub far_frames: AtomicU64,
    /// Microphone energy in (sum of squares x 1e6) while the far end played.
    far_energy_in_micro: AtomicU64,
    /// Microphone energy out of the canceller over the same frames.
    far_energy_out_micro: AtomicU64,
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

impl EchoStats {
    pub fn new() -> EchoStats {
        EchoStats {
            delay_ms: AtomicI64::new(-1),
            ..EchoStats::default()
        }
    }

    pub(crate) fn add_far_energy(&self, energy_in: f64, energy_out: f64) {
        let micro = |e: f64| (e * 1e6) as u64;
        self.far_energy_in_micro
            .fetch_add(micro(energy_in), Ordering::Relaxed);
        self.far_energy_out_micro
            .fetch_add(micro(energy_out), Ordering::Relaxed);
    }

    /// Echo return loss enhancement over the session in dB: microphone
    /// energy into the canceller over energy out of it, over the frames
    /// when the far end was playing. Local speech over the far end (double
    /// talk) counts as residual, so this is a lower bound. None before the
    /// far end played.
    pub fn erle_db(&self) -> Option<f64> {
        let e_in = self.far_energy_in_micro.load(Ordering::Relaxed) as f64;
        let e_out = self.far_energy_out_micro.load(Ordering::Relaxed) as f64;
        if self.far_frames.load(Ordering::Relaxed) == 0 || e_in <= 0.0 {
            return None;
        }
        Some(10.0 * (e_in / e_out.max(1.0)).log10())
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
                format!("{e:.1} dB")
            });
        let delay = match self.delay_ms.load(Ordering::Relaxed) {
            d if d < 0 => "unknown".to_owned(),
            d => format!("{d} ms"),
        };
        format!(
            "echo: cancelled {erle} (ERLE) over {:.1} s of far-end audio, delay {delay}, \
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
