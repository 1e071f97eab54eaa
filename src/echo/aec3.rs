//! WebRTC's AEC3 (the pure-Rust `sonora-aec3` port) behind 10 ms frames.
//!
//! AEC3 has two stages: an adaptive linear filter that models the
//! speaker-to-microphone path and subtracts the predicted echo, then a
//! nonlinear suppressor that mutes whatever frequency bands it believes
//! still hold echo. The suppressor is built for a listener's ear: measured
//! on real speech in `benches/echo.rs` (and in the README), it also mutes
//! much of the local talker while the far end plays, and Whisper then
//! loses or garbles those words, even with no echo at all. A transcriber
//! needs every local word kept. So hark gives the linear stage's output
//! (`export_linear_aec_output`), which leaves the local talker as it is
//! wherever the filter has nothing to subtract, and switches to the
//! suppressor's output only where a gate finds the echo alone (the far
//! end playing and the linear filter predicting nearly all the microphone
//! holds): there the linear stage's residue would otherwise reach Whisper,
//! which turns faint speech into invented words. Before the filter has
//! converged (the far end's first seconds) the suppressor's output is given
//! too, bounded ([`CONVERGED_BLOCKS`]). What is left after both
//! goes to the text filter ([`super::EchoFilter`]).

use sonora_aec3::block::Block;
use sonora_aec3::block_processor::BlockProcessor;
use sonora_aec3::config::EchoCanceller3Config;

use super::FRAME;

/// AEC3's block: 4 ms at 16 kHz.
const BLOCK: usize = 64;
/// The same block in ms.
const BLOCK_MS: usize = 4;
/// AEC3 works on floats in the 16-bit range.
const SCALE: f32 = 32_768.0;
/// The linear filter's length in blocks: 25 (100 ms of room response)
/// instead of AEC3's 13 (52 ms). AEC3 leaves a room's reverberant tail to
/// its suppressor; without the suppressor the filter must model more of it.
/// Measured on the reverberant scene `benches/echo.rs` renders: ERLE 12 dB at 13
/// blocks, 16 dB at 25, 20 dB at 40, but 40 converges slower (the first
/// seconds' echo got through as words). CPU grows with the length: about 3,
/// 4.5 and 5.5% of a core.
const FILTER_BLOCKS: usize = 25;
/// The gate: a stretch counts as echo alone while the far end plays and the
/// linear canceller takes more than this out of the microphone (smoothed
/// over ~10 blocks); the local talker's voice, which the canceller cannot
/// predict, keeps the ratio low. Measured on the bench scene (offline WER
/// of the output): 8 dB keeps every local word the linear output keeps
/// and takes the far-end-alone ERLE from 16 to 25 dB; 6 dB with faster
/// smoothing gave 22 dB; a 12-block hangover with slower smoothing reached
/// 40-54 dB but cut local words (insertions and deletions).
const GATE_DB: f64 = 8.0;
/// Smoothing of the gate's energies per block.
const GATE_SMOOTHING: f64 = 0.1;
/// After the last sign of the local talker the linear output is kept this
/// long (blocks: 100 ms), so that soft word endings are not muted.
const GATE_HANGOVER: u32 = 25;
/// The far end plays when its block's energy is above this (RMS 100 in the
/// 16-bit range, -50 dBFS).
const FAR_ACTIVE_ENERGY: f64 = 64.0 * 100.0 * 100.0;
/// The convergence guard. Before the linear filter has converged the far
/// end's first words reach the microphone nearly whole: the linear stage
/// has nothing yet to subtract, and the gate waits for it to take
/// [`GATE_DB`] out. Live runs transcribed those words as the mic ("W5-80",
/// the far end's call sign). So until the gate has seen the echo alone for
/// [`CONVERGED_BLOCKS`], while the far end plays or played within
/// [`FAR_TAIL_BLOCKS`] (its echo comes that much later), the canceller gives
/// AEC3's suppressed output. Bounded to the first [`UNCONVERGED_FAR_BLOCKS`]
/// of far-end audio: with headphones the filter never "converges" (there is
/// no echo to model), and the local talker must not stay under the
/// suppressor for long. And only once AEC3's delay estimator has found the
/// far end in the microphone (its delay moved off the default, see
/// [`Aec3::echo_found`]): with headphones it never does, and the local
/// talker's first seconds over the far end keep every word (CI saw
/// "review ... agree on the release date" read as "remove ... a re-on-the-
/// release state" when the guard also ran without an echo). The guard
/// restarts when the canceller realigns the reference ([`Aec3::realigned`]):
/// the filter then has to converge again, and a live run leaked the far
/// end's words as the mic right after a 60 ms realignment. Measured offline
/// on the bench scenes (`benches/echo.rs`, ERLE over the far end's first
/// 3 s, all four bleed cases, 20/200 ms, -10/-20 dB): 3.9-4.5 dB without
/// the guard, 9.9-10.7 dB with it (18.0-27.3 dB when it did not wait for
/// AEC3's delay estimate, but then it muted a local talker with no echo).
/// (With no echo the suppressor's comfort noise fills the scene's digital
/// silence: "ERLE" -70 dB there, over samples that were exactly zero.)
///
/// Blocks of echo alone the gate must have seen: 300 ms.
const CONVERGED_BLOCKS: u32 = 75;
/// Far-end blocks after which the canceller gives the gated output even if
/// the filter never converged: 3 s (750 blocks) of far-end audio, about the
/// 2.5 s AEC3 itself counts as its initial phase.
const UNCONVERGED_FAR_BLOCKS: u32 = 750;
/// How long after the far end's last active block its echo may still be
/// arriving: the reference's lead plus the longest acoustic delay (120 +
/// 250 ms), rounded up: 500 ms.
const FAR_TAIL_BLOCKS: u32 = 125;
/// A microphone block counts as saturated (clipping) at this level.
const SATURATED: f32 = 32_700.0;

/// Which of AEC3's outputs the canceller gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// What hark uses: the microphone untouched until AEC3 has found an
    /// echo in it (with headphones, never), then the linear canceller's
    /// output wherever the local talker may be speaking, the suppressor's
    /// where the echo is alone.
    #[default]
    Gated,
    /// The linear echo canceller's output throughout.
    Linear,
    /// The output after AEC3's suppressor, as a call would hear it: kept
    /// so that `benches/echo.rs` can measure why hark does not use it.
    Suppressed,
}

/// One AEC3 instance at 16 kHz mono. Not real-time safe (runs in the mic
/// pump).
pub(crate) struct Aec3 {
    stage: Stage,
    processor: BlockProcessor,
    render: Block,
    capture: Block,
    linear: Block,
    /// Input samples not yet a whole block (scaled): reference, microphone.
    render_carry: Vec<f32>,
    capture_carry: Vec<f32>,
    /// Cancelled samples not yet handed out (starts with one block of
    /// silence: the 4 ms the framing adds).
    output: std::collections::VecDeque<f32>,
    /// Smoothed block energies for the gate: microphone, linear output,
    /// reference; and blocks of linear output still owed to the talker.
    gate_mic: f64,
    gate_linear: f64,
    gate_far: f64,
    hangover: u32,
    /// Blocks in which the gate found the echo alone, far-end blocks seen
    /// (both saturating at their bounds), and blocks since the far end last
    /// played: the convergence guard ([`CONVERGED_BLOCKS`]).
    echo_alone_seen: u32,
    far_seen: u32,
    since_far: u32,
    /// AEC3's render delay before its estimator has found one, ms.
    default_delay_ms: i32,
    /// Whether AEC3 has found an echo in this session (asked once per
    /// frame until it has): until then the microphone passes untouched.
    echo_seen: bool,
    /// The microphone samples those output samples came from.
    input: std::collections::VecDeque<f32>,
}

impl Aec3 {
    pub(crate) fn new(stage: Stage) -> Aec3 {
        let mut config = EchoCanceller3Config::default();
        config.filter.export_linear_aec_output = true;
        for length in [
            &mut config.filter.refined.length_blocks,
            &mut config.filter.coarse.length_blocks,
            &mut config.filter.refined_initial.length_blocks,
            &mut config.filter.coarse_initial.length_blocks,
        ] {
            *length = FILTER_BLOCKS;
        }
        let default_delay_ms = (config.delay.default_delay * BLOCK_MS) as i32;
        let mut output = std::collections::VecDeque::with_capacity(4 * FRAME);
        output.extend(std::iter::repeat_n(0.0, BLOCK));
        let input = output.clone();
        Aec3 {
            stage,
            processor: BlockProcessor::new(&config, 16_000, 1, 1),
            render: Block::new(1, 1),
            capture: Block::new(1, 1),
            linear: Block::new(1, 1),
            render_carry: Vec::with_capacity(FRAME + BLOCK),
            capture_carry: Vec::with_capacity(FRAME + BLOCK),
            output,
            input,
            gate_mic: 0.0,
            gate_linear: 0.0,
            gate_far: 0.0,
            hangover: 0,
            echo_alone_seen: 0,
            far_seen: 0,
            since_far: FAR_TAIL_BLOCKS,
            default_delay_ms,
            echo_seen: false,
        }
    }

    /// Takes one 10 ms frame of the reference and of the microphone and
    /// writes one 10 ms frame of cancelled microphone audio (4 ms behind)
    /// into `out`, and the microphone samples it came from into `mic_in`.
    pub(crate) fn process(
        &mut self,
        reference: &[f32],
        mic: &[f32],
        out: &mut [f32],
        mic_in: &mut [f32],
    ) {
        debug_assert!(reference.len() == FRAME && mic.len() == FRAME && out.len() == FRAME);
        if !self.echo_seen {
            self.echo_seen = self.echo_found();
        }
        self.input.extend(mic.iter().copied());
        self.render_carry
            .extend(reference.iter().map(|&v| v * SCALE));
        self.capture_carry.extend(mic.iter().map(|&v| v * SCALE));
        let blocks = self.capture_carry.len() / BLOCK;
        for b in 0..blocks {
            let range = b * BLOCK..(b + 1) * BLOCK;
            self.render
                .view_mut(0, 0)
                .copy_from_slice(&self.render_carry[range.clone()]);
            self.processor.buffer_render(&self.render);
            let capture = self.capture.view_mut(0, 0);
            capture.copy_from_slice(&self.capture_carry[range]);
            let saturated = capture.iter().any(|v| v.abs() >= SATURATED);
            self.processor.process_capture(
                false,
                saturated,
                Some(&mut self.linear),
                &mut self.capture,
            );
            let mic_energy = energy(&self.capture_carry[b * BLOCK..(b + 1) * BLOCK]);
            let suppress = self.gate(mic_energy);
            let raw = &self.capture_carry[b * BLOCK..(b + 1) * BLOCK];
            let cancelled = match self.stage {
                // No echo found yet (headphones): the microphone as it is,
                // so hark transcribes what `--echo off` would (the linear
                // filter, with nothing to model, still adapts to the local
                // talker and changes the audio a little).
                Stage::Gated if !self.echo_seen => raw,
                Stage::Gated if suppress => self.capture.view(0, 0),
                Stage::Gated | Stage::Linear => self.linear.view(0, 0),
                Stage::Suppressed => self.capture.view(0, 0),
            };
            self.output.extend(cancelled.iter().map(|&v| v / SCALE));
        }
        self.render_carry.drain(..blocks * BLOCK);
        self.capture_carry.drain(..blocks * BLOCK);
        for (dst, src) in out.iter_mut().zip(self.output.drain(..FRAME)) {
            *dst = src;
        }
        for (dst, src) in mic_in.iter_mut().zip(self.input.drain(..FRAME)) {
            *dst = src;
        }
    }

    /// Whether the block just processed gets the suppressor's output: it
    /// holds the echo alone (see [`GATE_DB`]), from the microphone's energy
    /// and the linear output's, or the linear filter has not converged yet
    /// while the far end's echo may be arriving (see [`CONVERGED_BLOCKS`]).
    fn gate(&mut self, mic_energy: f64) -> bool {
        let smooth = |avg: &mut f64, v: f64| *avg += GATE_SMOOTHING * (v - *avg);
        smooth(&mut self.gate_mic, mic_energy);
        smooth(&mut self.gate_linear, energy(self.linear.view(0, 0)));
        smooth(&mut self.gate_far, energy(self.render.view(0, 0)));
        let removed_db = 10.0 * ((self.gate_mic + 1.0) / (self.gate_linear + 1.0)).log10();
        let far_active = self.gate_far > FAR_ACTIVE_ENERGY;
        let talker_may_speak = !far_active || removed_db < GATE_DB;
        if talker_may_speak {
            self.hangover = GATE_HANGOVER;
        } else {
            self.hangover = self.hangover.saturating_sub(1);
            self.echo_alone_seen = (self.echo_alone_seen + 1).min(CONVERGED_BLOCKS);
        }
        if far_active {
            self.far_seen = (self.far_seen + 1).min(UNCONVERGED_FAR_BLOCKS);
            self.since_far = 0;
        } else {
            self.since_far = (self.since_far + 1).min(FAR_TAIL_BLOCKS);
        }
        // AEC3's metrics last: asked only while the guard could apply.
        let converging = self.echo_alone_seen < CONVERGED_BLOCKS
            && self.far_seen < UNCONVERGED_FAR_BLOCKS
            && self.since_far < FAR_TAIL_BLOCKS
            && self.echo_found();
        self.hangover == 0 || converging
    }

    /// The delay AEC3 has found between the reference and its echo, ms.
    pub(crate) fn delay_ms(&self) -> i32 {
        self.processor.get_metrics().delay_ms
    }

    /// Whether AEC3's delay estimator has found the far end in the
    /// microphone: until it does, its render delay stays at the configured
    /// default (20 ms, reported as 16 after AEC3's headroom). A real echo
    /// cannot sit there: the canceller feeds the reference at least
    /// `LEAD - REALIGN_TOLERANCE` (40 ms) ahead of it.
    pub(crate) fn echo_found(&self) -> bool {
        self.delay_ms() > self.default_delay_ms
    }

    /// The canceller moved the reference against the microphone: the linear
    /// filter must converge again, so the convergence guard starts over.
    pub(crate) fn realigned(&mut self) {
        self.echo_alone_seen = 0;
        self.far_seen = 0;
    }
}

/// Sum of squares of a block or frame.
pub(super) fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}
