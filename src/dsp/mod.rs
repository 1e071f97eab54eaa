//! Signal processing: WAV reading, downmix, resampling to 16 kHz mono.
//!
//! Only [`downmix()`] runs on the real-time callback; everything else runs on
//! the pump thread or offline.

mod downmix;
mod resampler;
pub mod wav;

use std::path::PathBuf;

pub use downmix::downmix;
pub use resampler::Resampler;
pub use wav::Audio;

/// The rate every stage after dsp works at: Whisper and the VAD take 16 kHz mono.
pub const TARGET_RATE_HZ: u32 = 16_000;

/// Why an audio file cannot be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    /// The file does not exist or cannot be opened.
    #[error("cannot open audio file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed WAV file.
    #[error("{path} is not a valid WAV file: {reason}")]
    NotWav { path: PathBuf, reason: String },
    /// A WAV file in a format hark does not read.
    #[error("{path}: unsupported WAV format: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    /// A WAV file with no audio frames in it.
    #[error("{path} contains no audio (zero frames)")]
    Empty { path: PathBuf },
    /// Reading the audio data failed for another reason than truncation.
    #[error("cannot read audio data from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Longer than a whole-file read takes (see
    /// [`wav::MAX_WHOLE_DURATION`]); the length is the header's, capped by
    /// what the file can hold.
    #[error(
        "{path}: {hours:.1} h of audio is longer than the {max_hours} h read as one file \
         (split it into shorter files)"
    )]
    TooLong {
        path: PathBuf,
        hours: f64,
        max_hours: u64,
    },
    /// The audio could not be converted to 16 kHz.
    #[error("cannot resample {path}: {source}")]
    Resample {
        path: PathBuf,
        #[source]
        source: DspError,
    },
}

/// Why a dsp stage cannot be built or run.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// A sample rate of zero (or otherwise unusable).
    #[error("invalid input sample rate {rate_hz} Hz")]
    InvalidRate { rate_hz: u32 },
    /// rubato refused to build the resampler.
    #[error("cannot build the resampler: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    /// rubato failed while resampling (a bug in the buffering if it ever happens).
    #[error("resampling failed: {0}")]
    Resample(#[from] rubato::ResampleError),
}
