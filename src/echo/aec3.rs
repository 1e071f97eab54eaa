//! WebRTC's AEC3 (the pure-Rust `sonora-aec3` port) behind 10 ms frames,
//! giving the output of its linear echo canceller.
//!
//! AEC3 has two stages: an adaptive linear filter that models the
//! speaker-to-microphone path and subtracts the predicted echo, then a
//! nonlinear suppressor that mutes whatever frequency bands it believes
//! still hold echo. The suppressor is built for a listener's ear: measured
//! on real speech in `benches/echo.rs` (and in the README), it also mutes
//! much of the local talker while the far end plays, and Whisper then
//! loses or garbles those words, even with no echo at all. A transcriber
//! needs the opposite trade: every local word kept, and the echo's residue
//! left to the text filter ([`super::EchoFilter`]). So hark takes the
//! linear stage's output (`export_linear_aec_output`), which leaves the
//! local talker untouched wherever the filter has nothing to subtract.

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
/// A microphone block counts as saturated (clipping) at this level.
const SATURATED: f32 = 32_700.0;

/// Which of AEC3's outputs the canceller gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// The linear echo canceller's output: what hark uses.
    #[default]
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
            let cancelled = match self.stage {
                Stage::Linear => self.linear.view(0, 0),
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

    /// The delay AEC3 has found between the reference and its echo, ms.
    pub(crate) fn delay_ms(&self) -> i32 {
        self.processor.get_metrics().delay_ms
    }
}
