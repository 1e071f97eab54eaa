//! Signal processing off the real-time thread: WAV reading, downmix,
//! resampling to 16 kHz mono.

/// Why an audio file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    #[error("{0}")]
    Invalid(String),
}
