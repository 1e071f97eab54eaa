//! Streaming conversion of mono audio to 16 kHz.

use rubato::{FftFixedInOut, Resampler as _};

use super::{DspError, TARGET_RATE_HZ};

/// The shortest input block handed to rubato. The FFT resampler's anti-alias
/// filter is as long as its input block, so this sets the filter quality
/// (a 10 kHz tone is 59-66 dB down at 22.05-96 kHz input, tests/dsp.rs) and
/// the buffering latency: the block is 1536 frames at 48 kHz (32 ms) and
/// 1764 at 44.1 kHz (40 ms).
const MIN_BLOCK_FRAMES: usize = 1024;

/// A resettable streaming resampler from one input rate to 16 kHz, mono.
///
/// Feed it any number of samples at a time with [`push`](Self::push); it
/// buffers them into rubato's fixed blocks (an FFT resampler, which is exact
/// for the integer rate ratios of real devices). Its output is time-aligned
/// with its input: rubato's filter delay is dropped at the start, and
/// [`finish`](Self::finish) flushes the tail so a session of `n` input samples
/// yields exactly `round(n * 16000 / in_rate)` output samples. At 16 kHz it is
/// a plain copy.
pub struct Resampler {
    in_rate_hz: u32,
    /// `None` when the input is already at 16 kHz.
    fft: Option<FftState>,
    /// Input samples pushed in this session.
    frames_in: u64,
}

struct FftState {
    rubato: FftFixedInOut<f32>,
    /// Input waiting for a full block; capacity `block_in`.
    pending: Vec<f32>,
    /// rubato writes one block of output here; length `block_out`.
    scratch: Vec<f32>,
    block_in: usize,
    /// rubato's delay in output samples, dropped at the start of a session.
    delay_out: usize,
    /// Output samples still to drop in this session.
    delay_left: usize,
    /// Output samples emitted in this session.
    frames_out: u64,
}

impl Resampler {
    /// A resampler from `in_rate_hz` to 16 kHz.
    ///
    /// Not real-time safe (allocates its buffers and plans FFTs).
    pub fn new(in_rate_hz: u32) -> Result<Self, DspError> {
        if in_rate_hz == 0 {
            return Err(DspError::InvalidRate {
                rate_hz: in_rate_hz,
            });
        }
        let fft = if in_rate_hz == TARGET_RATE_HZ {
            None
        } else {
            Some(FftState::new(in_rate_hz)?)
        };
        Ok(Self {
            in_rate_hz,
            fft,
            frames_in: 0,
        })
    }

    /// The input rate this resampler was built for.
    pub fn in_rate_hz(&self) -> u32 {
        self.in_rate_hz
    }

    /// Input samples held back until the next full block (latency added, on
    /// top of the filter delay that [`finish`](Self::finish) makes up for).
    pub fn block_frames(&self) -> usize {
        self.fft.as_ref().map_or(0, |fft| fft.block_in)
    }

    /// Resamples `input` (mono, at the input rate) and appends whatever 16 kHz
    /// output is ready to `out`. Any input length works; samples short of a
    /// full block wait for the next call.
    ///
    /// Not real-time safe (`out` may grow).
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.frames_in += input.len() as u64;
        match &mut self.fft {
            None => out.extend_from_slice(input),
            Some(fft) => fft.push(input, out),
        }
    }

    /// Ends the session: flushes the buffered tail so that this session's
    /// total output is exactly `round(n_in * 16000 / in_rate)` samples, then
    /// resets for a new session.
    ///
    /// Not real-time safe.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let target = expected_output_len(self.frames_in, self.in_rate_hz);
        if let Some(fft) = &mut self.fft {
            fft.flush(target, out);
        }
        self.reset();
    }

    /// Starts a new session: drops buffered input and the filter's memory, so
    /// nothing of the previous session leaks into the next.
    ///
    /// Not real-time safe.
    pub fn reset(&mut self) {
        self.frames_in = 0;
        if let Some(fft) = &mut self.fft {
            fft.reset();
        }
    }
}

/// `round(frames_in * 16000 / in_rate_hz)`, in integers.
fn expected_output_len(frames_in: u64, in_rate_hz: u32) -> u64 {
    let num = u128::from(frames_in) * u128::from(TARGET_RATE_HZ);
    let den = u128::from(in_rate_hz);
    ((2 * num + den) / (2 * den)) as u64
}

impl FftState {
    fn new(in_rate_hz: u32) -> Result<Self, DspError> {
        let in_rate = in_rate_hz as usize;
        let out_rate = TARGET_RATE_HZ as usize;
        // The block must hold a whole number of rate-ratio units. A power of
        // two (at least 2) of them keeps the FFT sizes free of large prime
        // factors, and an even number makes the filter's centre, and so the
        // delay, fall on a whole output sample.
        let unit_in = in_rate / gcd(in_rate, out_rate);
        let units = MIN_BLOCK_FRAMES
            .div_ceil(unit_in)
            .next_power_of_two()
            .max(2);
        let rubato = FftFixedInOut::<f32>::new(in_rate, out_rate, units * unit_in, 1)?;
        let block_in = rubato.input_frames_next();
        let block_out = rubato.output_frames_max();
        let delay_out = rubato.output_delay();
        Ok(Self {
            rubato,
            pending: Vec::with_capacity(block_in),
            scratch: vec![0.0; block_out],
            block_in,
            delay_out,
            delay_left: delay_out,
            frames_out: 0,
        })
    }

    fn push(&mut self, mut input: &[f32], out: &mut Vec<f32>) {
        while !input.is_empty() {
            let take = (self.block_in - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == self.block_in {
                self.process_block(u64::MAX, out);
            }
        }
    }

    /// Pads the tail with silence until `target` samples have come out.
    fn flush(&mut self, target: u64, out: &mut Vec<f32>) {
        while self.frames_out < target {
            self.pending.resize(self.block_in, 0.0);
            self.process_block(target, out);
        }
    }

    /// Resamples the full `pending` block and emits its output, minus the
    /// delay still to drop, up to `limit` samples in total.
    fn process_block(&mut self, limit: u64, out: &mut Vec<f32>) {
        let (_, produced) = self
            .rubato
            .process_into_buffer(&[&self.pending[..]], &mut [&mut self.scratch[..]], None)
            .expect("buffers are sized by rubato itself");
        self.pending.clear();
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        let room = limit.saturating_sub(self.frames_out);
        let take = ((produced - skip) as u64).min(room) as usize;
        out.extend_from_slice(&self.scratch[skip..skip + take]);
        self.frames_out += take as u64;
    }

    fn reset(&mut self) {
        self.rubato.reset();
        self.pending.clear();
        self.delay_left = self.delay_out;
        self.frames_out = 0;
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
