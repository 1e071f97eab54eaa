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
//! which turns faint speech into invented words. What is left after both
//! goes to the text filter ([`super::EchoFilter`]).

use sonora_aec3::block::Block;
use sonora_aec3::block_processor::BlockProcessor;
use sonora_aec3::config::EchoCanceller3Config;

use super::FRAME;

/// AEC3's block: 4 ms at 16 kHz.
const BLOCK: usize = 64;
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
/// A microphone block counts as saturated (clipping) at this level.
const SATURATED: f32 = 32_700.0;

/// Which of AEC3's outputs the canceller gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// What hark uses: the linear canceller's output wherever the local
    /// talker may be speaking, the suppressor's where the echo is alone.
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
            let echo_alone = self.gate(mic_energy);
            let cancelled = match self.stage {
                Stage::Gated if echo_alone => self.capture.view(0, 0),
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

    /// Whether the block just processed holds the echo alone (see
    /// [`GATE_DB`]), from the microphone's energy and the linear output's.
    fn gate(&mut self, mic_energy: f64) -> bool {
        let smooth = |avg: &mut f64, v: f64| *avg += GATE_SMOOTHING * (v - *avg);
        smooth(&mut self.gate_mic, mic_energy);
        smooth(&mut self.gate_linear, energy(self.linear.view(0, 0)));
        smooth(&mut self.gate_far, energy(self.render.view(0, 0)));
        let removed_db = 10.0 * ((self.gate_mic + 1.0) / (self.gate_linear + 1.0)).log10();
        let talker_may_speak = self.gate_far <= FAR_ACTIVE_ENERGY || removed_db < GATE_DB;
        if talker_may_speak {
            self.hangover = GATE_HANGOVER;
        } else {
            self.hangover = self.hangover.saturating_sub(1);
        }
        self.hangover == 0
    }

    /// The delay AEC3 has found between the reference and its echo, ms.
    pub(crate) fn delay_ms(&self) -> i32 {
        self.processor.get_metrics().delay_ms
    }
}

/// Sum of squares of a block or frame.
pub(super) fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}
