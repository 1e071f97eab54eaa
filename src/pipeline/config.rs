//! What a pipeline runs: its sources and settings, and why it could not
//! start.

use std::path::PathBuf;
use std::time::Duration;

use crate::capture::CaptureSpec;
use crate::event::Source;
use crate::vad::VadConfig;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Device(#[from] crate::capture::DeviceError),
    #[error(transparent)]
    AudioFile(#[from] crate::dsp::AudioFileError),
    #[error(transparent)]
    Dsp(#[from] crate::dsp::DspError),
    #[error(transparent)]
    Inference(#[from] crate::inference::InferenceError),
    #[error(transparent)]
    Record(#[from] super::record::RecordError),
    #[error("cannot start a pipeline thread: {0}")]
    Thread(std::io::Error),
}

/// Where a source's audio comes from.
#[derive(Debug, Clone)]
pub enum Feed {
    /// A capture device.
    Device(CaptureSpec),
    /// A WAV file played into the pipeline at 1x, as a device would.
    File(PathBuf),
}

/// One source to run.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub source: Source,
    pub feed: Feed,
    /// Save the captured audio (mono, at the device's rate, 16-bit) here.
    pub record: Option<PathBuf>,
}

/// Settings shared by every source.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Whisper threads per worker.
    pub threads: usize,
    /// Emit partial hypotheses.
    pub partials: bool,
    pub vad: VadConfig,
    /// Cancel the loopback's echo in the microphone when both run.
    pub echo: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            threads: 2,
            partials: true,
            echo: true,
            vad: VadConfig {
                // A short hangover commits a phrase soon after it ends; a
                // pause this long between words only splits an utterance,
                // which loses nothing.
                hangover: Duration::from_millis(300),
                ..VadConfig::default()
            },
        }
    }
}
