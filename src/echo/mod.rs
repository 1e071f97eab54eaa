//! Echo: what the microphone hears of the far end in `--source both`.
//!
//! Without headphones the speakers' sound reaches the microphone, and every
//! remote sentence would be transcribed twice, once as "them" and once as
//! "you". hark captures the far end's exact signal (the loopback), which is
//! the reference an echo canceller needs. Two lines of defence:
//!
//! 1. [`Canceller`]: acoustic echo cancellation of the microphone at 16 kHz,
//!    in the mic pump, with the loopback's 16 kHz signal as the reference
//!    (the linear stage of WebRTC's AEC3, pure Rust; see [`aec3`] for why not
//!    its suppressor). The loopback pump
//!    hands its audio over through [`ReferenceTap`] (a lock-free SPSC ring);
//!    the two pumps never wait on each other: the mic side holds its audio
//!    back for at most [`MAX_WAIT`] for the reference to arrive, then goes on
//!    without it and counts the frames.
//! 2. [`EchoFilter`]: on the event stream, a mic utterance whose words agree
//!    with a loopback utterance of the same moment is dropped and counted;
//!    an utterance with enough words of its own (double talk) is kept.
//!
//! [`EchoStats`] carries the evidence (ERLE, delay, suppressed utterances)
//! to the summary line and the Prometheus gauges. Nothing here runs on the
//! device callback.

mod aec3;
mod canceller;
mod drift;
mod reference;
mod stats;
mod text;

pub use aec3::Stage;
pub use canceller::{Canceller, FRAME, MAX_WAIT};
pub use reference::ReferenceTap;
pub use stats::EchoStats;
pub use text::{EchoFilter, FilterConfig};

use std::sync::Arc;
use std::time::Instant;

/// A reference tap for the loopback pump and the canceller for the mic
/// pump, joined by one ring. `clock` is the session clock both pumps use.
/// Not real-time safe.
pub fn link(clock: Instant, stats: Arc<EchoStats>) -> (ReferenceTap, Canceller) {
    link_stage(clock, stats, Stage::default())
}

/// [`link`] with the canceller giving AEC3's `stage` output (benches
/// compare them). Not real-time safe.
pub fn link_stage(
    clock: Instant,
    stats: Arc<EchoStats>,
    stage: Stage,
) -> (ReferenceTap, Canceller) {
    let (tap, consumer) = reference::tap(clock, Arc::clone(&stats));
    (tap, Canceller::new(consumer, clock, stats, stage))
}

/// What a pump does about echo, between its resampler and its VAD.
pub enum PumpStage {
    /// The loopback pump: hands its audio over as the reference.
    Reference(ReferenceTap),
    /// The mic pump: cancels the far end's echo.
    Cancel {
        canceller: Box<Canceller>,
        scratch: Vec<f32>,
    },
}

impl PumpStage {
    /// The pair for a session with both sources: (loopback's, mic's).
    /// Not real-time safe.
    pub fn pair(clock: Instant, stats: Arc<EchoStats>) -> (PumpStage, PumpStage) {
        let (tap, canceller) = link(clock, stats);
        (
            PumpStage::Reference(tap),
            PumpStage::Cancel {
                canceller: Box::new(canceller),
                scratch: Vec::with_capacity(16_000),
            },
        )
    }

    /// Passes the pump's 16 kHz audio through: the loopback's is handed
    /// over unchanged; the mic's is replaced by its cancelled audio (which
    /// may lag the input by up to [`MAX_WAIT`]).
    pub fn apply(&mut self, audio: &mut Vec<f32>) {
        match self {
            PumpStage::Reference(tap) => tap.push(audio),
            PumpStage::Cancel { canceller, scratch } => {
                scratch.clear();
                canceller.process(audio, scratch);
                std::mem::swap(audio, scratch);
            }
        }
    }

    /// At the end of the stream: appends whatever the canceller still holds.
    pub fn finish(&mut self, audio: &mut Vec<f32>) {
        match self {
            PumpStage::Reference(tap) => tap.push(audio),
            PumpStage::Cancel { canceller, scratch } => {
                scratch.clear();
                canceller.process(audio, scratch);
                canceller.finish(scratch);
                std::mem::swap(audio, scratch);
            }
        }
    }
}
