//! The Slaney-style mel filterbank Whisper was trained with (librosa's
//! `filters.mel(sr, n_fft, n_mels)` with its defaults: Slaney mel scale, Slaney
//! area normalisation, 0 Hz to Nyquist). whisper.cpp reads it from the model
//! file and applies it to every spectrum frame.

/// Whisper's audio sample rate.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// Whisper's FFT window length in samples.
pub const N_FFT: usize = 400;

/// Linear part of the Slaney mel scale: Hz per mel below 1 kHz.
const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
/// Where the Slaney scale turns logarithmic.
const SLANEY_LOG_START_HZ: f64 = 1000.0;

fn hz_to_mel(hz: f64) -> f64 {
    let log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;
    if hz >= SLANEY_LOG_START_HZ {
        log_start_mel + (hz / SLANEY_LOG_START_HZ).ln() / log_step()
    } else {
        hz / SLANEY_HZ_PER_MEL
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;
    if mel >= log_start_mel {
        SLANEY_LOG_START_HZ * (log_step() * (mel - log_start_mel)).exp()
    } else {
        SLANEY_HZ_PER_MEL * mel
    }
}

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// numpy's `linspace(start, stop, n)` (endpoint included, last value exact).
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            if i == n - 1 {
                stop
            } else {
                i as f64 * step + start
            }
        })
        .collect()
}

/// The filterbank as `n_mels` rows of `1 + n_fft / 2` weights, row-major.
///
/// Follows librosa step by step, including its float32 rounding of the
/// triangles before normalisation, so the values match librosa's output.
/// Not real-time safe.
pub fn filterbank(n_mels: usize, sample_rate_hz: u32, n_fft: usize) -> Vec<f32> {
    let n_bins = 1 + n_fft / 2;
    let nyquist_hz = f64::from(sample_rate_hz) / 2.0;
    let fft_hz = linspace(0.0, nyquist_hz, n_bins);
    let mel_edges = linspace(hz_to_mel(0.0), hz_to_mel(nyquist_hz), n_mels + 2);
    let edge_hz: Vec<f64> = mel_edges.into_iter().map(mel_to_hz).collect();

    let mut weights = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let lower_width = edge_hz[m + 1] - edge_hz[m];
        let upper_width = edge_hz[m + 2] - edge_hz[m + 1];
        let norm = 2.0 / (edge_hz[m + 2] - edge_hz[m]);
        for (k, &f) in fft_hz.iter().enumerate() {
            let rising = -(edge_hz[m] - f) / lower_width;
            let falling = (edge_hz[m + 2] - f) / upper_width;
            // Not `.max(0.0)`: which zero `max(-0.0, 0.0)` returns differs
            // between debug and release builds (the first weight is -0.0 /
            // +0.0), and the file's hash must not depend on the build.
            let peak = rising.min(falling);
            let triangle = if peak > 0.0 { peak as f32 } else { 0.0 };
            weights[m * n_bins + k] = (f64::from(triangle) * norm) as f32;
        }
    }
    weights
}
