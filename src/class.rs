//! What kind of trouble an error is: each error a command can end with says
//! its [`ErrorClass`], wrappers ask what they wrap, and the CLI turns the
//! class into an exit code with one match. A wrapper (`#[error(transparent)]`
//! or not) can no longer change an exit code by hiding its cause.
//!
//! The classes of the floors' own errors are given here, in one place, so
//! the floors stay free of CLI notions.

use crate::capture::DeviceError;
use crate::dsp::{AudioFileError, DspError};
use crate::inference::InferenceError;
use crate::model::ModelError;
use crate::monitor::{ExporterError, MonitorError};
use crate::pipeline::{PipelineError, RecordError};
use crate::session::SessionError;
use crate::soak::SoakError;
use crate::transcript::WriteError;

/// The kinds of failure a user acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A flag or argument that cannot work.
    Usage,
    /// A bad input file: audio, model, model directory, programme.
    BadInput,
    /// No sound server, no such device, busy or denied.
    Device,
    /// The output could not be written.
    Output,
    /// Anything else (a thread that could not start, an internal failure).
    Other,
}

/// An error that knows its class.
pub trait Classified {
    fn class(&self) -> ErrorClass;
}

impl Classified for DeviceError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Device
    }
}

impl Classified for AudioFileError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classified for DspError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Other
    }
}

impl Classified for ModelError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

impl Classified for InferenceError {
    fn class(&self) -> ErrorClass {
        match self {
            InferenceError::Model(e) => e.class(),
            // whisper.cpp refusing a file the validator passed: a bad model.
            InferenceError::Load { .. } => ErrorClass::BadInput,
            _ => ErrorClass::Other,
        }
    }
}

impl Classified for ExporterError {
    fn class(&self) -> ErrorClass {
        match self {
            // A bad --metrics-addr is a bad flag.
            ExporterError::NotLoopback { .. } | ExporterError::Bind { .. } => ErrorClass::Usage,
            _ => ErrorClass::Other,
        }
    }
}

impl Classified for MonitorError {
    fn class(&self) -> ErrorClass {
        match self {
            MonitorError::Exporter(e) => e.class(),
            _ => ErrorClass::Other,
        }
    }
}

impl Classified for WriteError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Output
    }
}

impl Classified for RecordError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Output
    }
}

impl Classified for PipelineError {
    fn class(&self) -> ErrorClass {
        match self {
            PipelineError::Device(e) => e.class(),
            PipelineError::AudioFile(e) => e.class(),
            PipelineError::Dsp(e) => e.class(),
            PipelineError::Inference(e) => e.class(),
            PipelineError::Record(e) => e.class(),
            PipelineError::Thread(_) => ErrorClass::Other,
        }
    }
}

impl Classified for SessionError {
    fn class(&self) -> ErrorClass {
        match self {
            SessionError::Pipeline(e) => e.class(),
            SessionError::Monitor(e) => e.class(),
        }
    }
}

impl Classified for SoakError {
    fn class(&self) -> ErrorClass {
        match self {
            SoakError::Pipeline(e) => e.class(),
            SoakError::Session(e) => e.class(),
            SoakError::Inference(e) => e.class(),
            SoakError::Transcript(e) => e.class(),
            SoakError::Monitor(e) => e.class(),
            SoakError::Programme { .. } => ErrorClass::BadInput,
            SoakError::Output { .. } => ErrorClass::Output,
            SoakError::SoundServer(_) | SoakError::Fault(_) | SoakError::Thread(_) => {
                ErrorClass::Other
            }
        }
    }
}

/// The class of one link of an error chain, if it is one of hark's errors.
pub fn class_of(cause: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    macro_rules! first_of {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = cause.downcast_ref::<$t>() {
                return Some(e.class());
            })*
        };
    }
    first_of!(
        SoakError,
        SessionError,
        PipelineError,
        MonitorError,
        ExporterError,
        InferenceError,
        ModelError,
        AudioFileError,
        // A file feed's read error, shared through its report.
        std::sync::Arc<AudioFileError>,
        DspError,
        DeviceError,
        WriteError,
        RecordError,
    );
    None
}
