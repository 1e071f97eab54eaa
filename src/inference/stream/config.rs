//! The policy's settings, the counters it publishes, and its next action.
//!
//! Not real-time safe.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use crate::event::Source;
use crate::inference::engine::SAMPLE_RATE_HZ;
use crate::inference::load::Degradation;

/// How the policy behaves.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub source: Source,
    /// New audio needed before another partial pass.
    pub min_step: Duration,
    /// Audio a piece needs before its first partial pass.
    pub first_partial: Duration,
    /// A piece is not cut at a pause before it is this long (very short
    /// pieces lose the context Whisper needs).
    pub min_piece: Duration,
    /// [`StreamConfig::min_piece`] for a piece decoded after a lead (the
    /// pieces before it give Whisper the context).
    pub min_led_piece: Duration,
    /// After a lead, a piece shorter than [`StreamConfig::min_led_piece`]
    /// (but at least this long) may end at a pause when a pass over the
    /// audio [`StreamConfig::confirm`] past it starts with the same words:
    /// Whisper heard a word end there, not a cut inside a word. Zero: never.
    pub min_confirmed_piece: Duration,
    /// Audio past a short piece's pause that the confirming pass reads.
    pub confirm: Duration,
    /// A piece is cut at its quietest point before it gets longer than this.
    pub max_piece: Duration,
    /// A forced cut never falls this close to the newest audio.
    pub tail_guard: Duration,
    /// Committed words of the same utterance fed back as the prompt (0: none).
    pub prompt_words: usize,
    /// Audio of the utterance's committed pieces decoded again in front of
    /// the open piece (its words are dropped), so a short piece is heard in
    /// its context (zero: none).
    pub lead: Duration,
    /// Emit partial events.
    pub partials: bool,
}

impl StreamConfig {
    pub fn new(source: Source) -> Self {
        StreamConfig {
            source,
            min_step: Duration::from_millis(250),
            first_partial: Duration::from_secs(1),
            // Measured on the real-speech set (benches/realspeech.rs
            // --replay): cutting at every pause after 1 s broke sentences
            // into fragments Whisper mishears (known-text WER 0.152 against
            // 0.091 offline); after 3 s, 0.091 and 0.030 (unbroken).
            min_piece: Duration::from_secs(3),
            // With the lead (the piece before, decoded again in front),
            // a short piece keeps its context: measured with --replay,
            // known-unbroken WER 0.045 against 0.061 (3 s, no lead), the
            // unbroken reading's agreement with offline 0.178 against
            // 0.189, known unchanged (0.076). At 1 s and 0.5 s a cut fell
            // inside words ("back|ground", "fa|ced"): known 0.106.
            min_led_piece: Duration::from_millis(1500),
            // Measured with --replay and live on the real-speech set: a
            // short piece confirmed by a pass over the next 0.3 s took
            // known-unbroken's latency p90 from 2.8 s to 1.1 s, its WER
            // 0.045 -> 0.030, the other files' text unchanged; 0.5 s was
            // 0.15 s slower with the same text.
            min_confirmed_piece: Duration::from_millis(300),
            confirm: Duration::from_millis(300),
            max_piece: Duration::from_secs(12),
            tail_guard: Duration::from_millis(500),
            prompt_words: 0,
            lead: Duration::from_secs(3),
            partials: true,
        }
    }
}

/// Counters a monitor or benchmark reads while the stream runs.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub passes: AtomicU64,
    /// Total decode time, microseconds.
    pub decode_us: AtomicU64,
    /// Total audio decoded (sum of window lengths), samples.
    pub decoded_samples: AtomicU64,
    /// The newest audio received minus the audio committed or covered by the
    /// last pass, beyond what the policy waits for on purpose ([`super::Stream::lag_s`]), ms.
    pub lag_ms: AtomicU64,
    pub max_lag_ms: AtomicU64,
    pub committed_words: AtomicU64,
    pub partial_events: AtomicU64,
    /// Pieces committed (each from its own audio).
    pub pieces: AtomicU64,
    /// Pieces cut at their quietest point because no pause came in time.
    pub forced_cuts: AtomicU64,
    /// Passes discarded as invented text on non-speech.
    pub rejected_passes: AtomicU64,
    /// Passes whose lead Whisper heard otherwise than it was committed, or
    /// that stopped at the lead's end (decoded again without it).
    pub lead_mismatches: AtomicU64,
    /// Short pieces (after a lead) cut at a pause that a pass reading on
    /// confirmed as a word's end.
    pub confirmed_cuts: AtomicU64,
    /// Such cuts not taken: the pass reading on heard other words there.
    pub refused_cuts: AtomicU64,
    /// Repetition loops cut.
    pub loops_cut: AtomicU64,
    /// Partial passes cut short because a pause or the utterance's end
    /// arrived while they ran (their words would be stale).
    pub aborted_partials: AtomicU64,
    /// Load-adaptive inference: threads of the last pass.
    pub threads: AtomicU64,
    /// Load-adaptive inference: what is degraded right now
    /// ([`StreamStats::degradation`]).
    pub degraded: AtomicU8,
    /// Passes run with something degraded.
    pub degraded_passes: AtomicU64,
}

impl StreamStats {
    /// Publishes the plan the worker decodes with.
    pub fn set_plan(&self, threads: usize, degraded: Option<Degradation>) {
        self.threads.store(threads as u64, Ordering::Relaxed);
        let code = match degraded {
            None => 0,
            Some(Degradation::CoresBusy) => 1,
            Some(Degradation::Behind) => 2,
            Some(Degradation::CoresBusyAndBehind) => 3,
        };
        self.degraded.store(code, Ordering::Relaxed);
    }

    /// What load-adaptive inference has degraded right now, if anything.
    pub fn degradation(&self) -> Option<Degradation> {
        match self.degraded.load(Ordering::Relaxed) {
            1 => Some(Degradation::CoresBusy),
            2 => Some(Degradation::Behind),
            3 => Some(Degradation::CoresBusyAndBehind),
            _ => None,
        }
    }

    /// Decode time over audio time of all passes so far (below 1 keeps up
    /// with a single pass per window; streaming re-decodes, so compare with
    /// care).
    pub fn pass_rtf(&self) -> f64 {
        let audio_s = self.decoded_samples.load(Ordering::Relaxed) as f64 / SAMPLE_RATE_HZ as f64;
        if audio_s == 0.0 {
            return 0.0;
        }
        self.decode_us.load(Ordering::Relaxed) as f64 / 1e6 / audio_s
    }
}

/// What the policy wants to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do until more input arrives.
    Wait,
    /// Run a partial pass over the open piece.
    Decode,
    /// A piece is complete: commit it (with one pass unless the last
    /// partial pass already covered exactly its speech).
    Commit,
}
