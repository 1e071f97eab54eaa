//! Clock drift between the two devices: the reference read at the
//! microphone's rate.
//!
//! The speakers and the microphone run on their own crystals, which differ
//! by up to a few hundred ppm. At 100 ppm the echo slides 6 ms a minute
//! against its reference, and AEC3's linear filter, which models a fixed
//! path, loses it (ERLE 27 -> 8 dB over a minute, tests/integration/echo.rs).
//! The canceller's pairing knows where the reference should be for each
//! microphone sample (from the pumps' sample counts and stamps, which drift
//! with the clocks). This reader takes the reference at a rate steered to
//! hold that place: a proportional control with a [`STEER_S`] time
//! constant, so a steady drift leaves a constant offset (drift x
//! [`STEER_S`], 3 ms at 100 ppm), never a slide, and the pumps' jitter is
//! averaged out. Samples between the reference's own are cubic
//! (Catmull-Rom) interpolations; at a rate of exactly 1 they are the
//! reference's samples unchanged.

use std::collections::VecDeque;

/// Time constant of the steering, seconds: slow enough that the pairing's
/// leftover jitter (a few samples after its own smoothing) moves the rate
/// by ppm only.
const STEER_S: f64 = 30.0;
/// The most the rate is steered off 1 (ppm): past any real pair of
/// crystals; a larger error is the pairing's to fix by skipping or holding.
const MAX_PPM: f64 = 1000.0;
const RATE_HZ: f64 = 16_000.0;

/// Reads the reference at a steered rate. Not real-time safe (runs in the
/// mic pump).
pub(crate) struct DriftReader {
    /// Reference samples taken and still needed; `base` is the reference
    /// index of `buf[0]`.
    buf: VecDeque<f32>,
    base: u64,
    /// The reference index (fractional) of the next output sample.
    pos: f64,
    /// Reference samples per output (microphone) sample.
    rate: f64,
}

impl DriftReader {
    /// A reader for frames of at most `frame` samples.
    pub(crate) fn new(frame: usize) -> DriftReader {
        DriftReader {
            buf: VecDeque::with_capacity(2 * frame + 8),
            base: 0,
            pos: 0.0,
            rate: 1.0,
        }
    }

    /// The reference index of the next output sample.
    pub(crate) fn position(&self) -> f64 {
        self.pos
    }

    /// The reference index just past the samples taken so far.
    pub(crate) fn taken(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The rate's deviation from 1, ppm (positive: the reference is read
    /// faster than the microphone's samples come).
    pub(crate) fn drift_ppm(&self) -> f64 {
        (self.rate - 1.0) * 1e6
    }

    /// Steers the rate from `error`: the position minus where the pairing
    /// wants it, in samples.
    pub(crate) fn steer(&mut self, error: f64) {
        let limit = MAX_PPM * 1e-6;
        self.rate = 1.0 + (-error / (STEER_S * RATE_HZ)).clamp(-limit, limit);
    }

    /// Reference samples still to [`push`](Self::push) before `n` output
    /// samples can be read.
    pub(crate) fn needed(&self, n: usize) -> usize {
        let last = self.pos + n.saturating_sub(1) as f64 * self.rate;
        // The interpolation reads up to two samples past the last position.
        let end = last.floor() as u64 + 3;
        end.saturating_sub(self.taken()) as usize
    }

    /// Appends the reference's next samples.
    pub(crate) fn push(&mut self, samples: impl IntoIterator<Item = f32>) {
        self.buf.extend(samples);
    }

    /// Fills `out` (after [`needed`](Self::needed) samples were pushed).
    pub(crate) fn read(&mut self, out: &mut [f32]) {
        let last = self.buf.len().saturating_sub(1) as i64;
        for o in out.iter_mut() {
            let whole = self.pos.floor();
            let t = (self.pos - whole) as f32;
            let i = whole as i64 - self.base as i64;
            let at = |k: i64| {
                self.buf
                    .get((i + k).clamp(0, last.max(0)) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            *o = if t == 0.0 {
                at(0)
            } else {
                catmull_rom(at(-1), at(0), at(1), at(2), t)
            };
            self.pos += self.rate;
        }
        // Keep one sample before the next position for the interpolation.
        let keep_from = (self.pos.floor() as u64).saturating_sub(1);
        let drop = (keep_from.saturating_sub(self.base) as usize).min(self.buf.len());
        self.buf.drain(..drop);
        self.base += drop as u64;
    }

    /// Starts over at reference index `index` (the pairing skipped ahead):
    /// what was taken is dropped and the rate kept.
    pub(crate) fn restart_at(&mut self, index: u64) {
        self.buf.clear();
        self.base = index;
        self.pos = index as f64;
    }
}

/// The cubic through `p1` and `p2` with Catmull-Rom tangents, at `t` in
/// 0..1 from `p1`.
fn catmull_rom(p0: f32, p1: f32, p2: f32, p3: f32, t: f32) -> f32 {
    p1 + 0.5
        * t
        * (p2 - p0 + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + t * (3.0 * (p1 - p2) + p3 - p0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(reader: &mut DriftReader, source: &[f32], frames: usize, frame: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let mut frame_out = vec![0.0; frame];
        for _ in 0..frames {
            let n = reader.needed(frame);
            let from = reader.taken() as usize;
            reader.push(source[from..from + n].iter().copied());
            reader.read(&mut frame_out);
            out.extend_from_slice(&frame_out);
        }
        out
    }

    #[test]
    fn at_rate_one_the_reference_comes_out_unchanged() {
        let source: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut reader = DriftReader::new(160);
        let out = run(&mut reader, &source, 20, 160);
        assert_eq!(out, source[..3200]);
    }

    #[test]
    fn a_steered_rate_resamples_a_tone_smoothly() {
        // 500 Hz at 16 kHz, read 1000 ppm fast: the output is the same
        // tone 0.1% higher, sample for sample within the cubic's error.
        let f = 500.0 / 16_000.0 * std::f64::consts::TAU;
        let source: Vec<f32> = (0..40_000).map(|i| (i as f64 * f).sin() as f32).collect();
        let mut reader = DriftReader::new(160);
        reader.steer(-1e9);
        assert!((reader.drift_ppm() - MAX_PPM).abs() < 1e-6);
        let out = run(&mut reader, &source, 200, 160);
        let worst = out
            .iter()
            .enumerate()
            .map(|(n, &v)| (v as f64 - (n as f64 * (1.0 + MAX_PPM * 1e-6) * f).sin()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "worst error {worst}");
        assert!(reader.taken() as f64 >= 32_000.0 * 1.001);
    }

    #[test]
    fn steering_follows_the_error_and_stays_bounded() {
        let mut reader = DriftReader::new(160);
        reader.steer(0.0);
        assert_eq!(reader.drift_ppm(), 0.0);
        // 48 samples behind where the pairing wants it: read 100 ppm fast.
        reader.steer(-48.0);
        assert!((reader.drift_ppm() - 100.0).abs() < 1e-6);
        reader.steer(1e9);
        assert!((reader.drift_ppm() + MAX_PPM).abs() < 1e-6);
    }

    #[test]
    fn restarting_drops_what_was_taken() {
        let mut reader = DriftReader::new(160);
        reader.push([1.0; 10]);
        reader.restart_at(500);
        assert_eq!(reader.taken(), 500);
        assert_eq!(reader.position(), 500.0);
        assert_eq!(reader.needed(160), 162);
    }
}
