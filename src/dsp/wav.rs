//! Reading WAV files into f32 samples.
//!
//! Any rate and channel count is read, with samples as 8/16/24/32-bit
//! integers or 32-bit floats. 64-bit floats and compressed formats are
//! refused with [`AudioFileError::Unsupported`].
//!
//! A file whose data chunk is cut short (a recorder that crashed, a copy that
//! stopped) is read up to the cut: the whole frames before it are returned and
//! a warning names the file and how much was recovered. Only a file with no
//! whole frame at all is an error ([`AudioFileError::Empty`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{downmix, AudioFileError, Resampler, TARGET_RATE_HZ};

/// Decoded audio: interleaved f32 samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub rate_hz: u32,
    pub channels: u16,
    /// Interleaved, `frames() * channels` long.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Frames (one sample per channel each).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Play time.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.frames() as f64 / f64::from(self.rate_hz.max(1)))
    }
}

/// Reads a WAV file: any rate, any channel count, integer or 32-bit float
/// samples, as interleaved f32 in [-1, 1]. Float samples outside [-1, 1] are
/// clipped and non-finite ones become 0.
///
/// Not real-time safe (file I/O, allocation).
pub fn read(path: impl AsRef<Path>) -> Result<Audio, AudioFileError> {
    let path = path.as_ref();
    let mut reader = hound::WavReader::open(path).map_err(|err| open_error(path, err))?;
    let spec = reader.spec();
    if spec.sample_rate == 0 {
        return Err(AudioFileError::Unsupported {
            path: path.to_path_buf(),
            reason: "sample rate is 0 Hz".into(),
        });
    }
    let channels = usize::from(spec.channels);
    let declared = reader.len() as usize;
    let mut samples = Vec::with_capacity(declared);
    let outcome = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => collect(
            reader.samples::<f32>(),
            |s| {
                if s.is_finite() {
                    s.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            },
            &mut samples,
        ),
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            collect(
                reader.samples::<i32>(),
                |s| (f64::from(s) * scale).clamp(-1.0, 1.0) as f32,
                &mut samples,
            )
        }
        (format, bits) => {
            return Err(AudioFileError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("{bits}-bit {format:?} samples"),
            })
        }
    };
    match outcome {
        Ok(()) => {}
        Err(hound::Error::IoError(err)) if is_short_read(&err) => {
            samples.truncate(samples.len() - samples.len() % channels);
            tracing::warn!(
                "{}: WAV data is truncated: read {} of {} declared frames; using what was read",
                path.display(),
                samples.len() / channels,
                declared / channels
            );
        }
        Err(hound::Error::IoError(source)) => {
            return Err(AudioFileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(err) => return Err(hound_error(path, err)),
    }
    if samples.is_empty() {
        return Err(AudioFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Audio {
        rate_hz: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

/// Reads a WAV file as 16 kHz mono: [`read`], then [`downmix()`], then a
/// [`Resampler`] session over the whole file.
///
/// Not real-time safe.
pub fn read_16k_mono(path: impl AsRef<Path>) -> Result<Audio, AudioFileError> {
    let path = path.as_ref();
    let audio = read(path)?;
    let mut mono = vec![0.0; audio.frames()];
    downmix(&audio.samples, audio.channels, &mut mono);
    if audio.rate_hz == TARGET_RATE_HZ {
        return Ok(Audio {
            rate_hz: TARGET_RATE_HZ,
            channels: 1,
            samples: mono,
        });
    }
    let mut resampler =
        Resampler::new(audio.rate_hz).map_err(|source| AudioFileError::Resample {
            path: path.to_path_buf(),
            source,
        })?;
    let expected = mono.len() as u64 * u64::from(TARGET_RATE_HZ) / u64::from(audio.rate_hz) + 1;
    let mut samples = Vec::with_capacity(expected as usize);
    resampler.push(&mono, &mut samples);
    resampler.finish(&mut samples);
    Ok(Audio {
        rate_hz: TARGET_RATE_HZ,
        channels: 1,
        samples,
    })
}

/// Pulls every sample, converting each; stops at the first error.
fn collect<S>(
    source: impl Iterator<Item = hound::Result<S>>,
    convert: impl Fn(S) -> f32,
    into: &mut Vec<f32>,
) -> hound::Result<()> {
    for sample in source {
        into.push(convert(sample?));
    }
    Ok(())
}

/// hound reports data ending early as this error (or as UnexpectedEof).
fn is_short_read(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof
        || (err.kind() == io::ErrorKind::Other && err.to_string() == "Failed to read enough bytes.")
}

fn open_error(path: &Path, err: hound::Error) -> AudioFileError {
    match err {
        hound::Error::IoError(source) if is_short_read(&source) => AudioFileError::NotWav {
            path: path.to_path_buf(),
            reason: "file ends inside the WAV header".into(),
        },
        hound::Error::IoError(source) => AudioFileError::Open {
            path: path.to_path_buf(),
            source,
        },
        other => hound_error(path, other),
    }
}

fn hound_error(path: &Path, err: hound::Error) -> AudioFileError {
    let path: PathBuf = path.to_path_buf();
    match err {
        // hound reads IEEE float only at 32 bits and says so this way.
        hound::Error::FormatError("bits per sample is not 32") => AudioFileError::Unsupported {
            path,
            reason: "floating-point samples must be 32-bit (64-bit float is not supported)".into(),
        },
        hound::Error::Unsupported => AudioFileError::Unsupported {
            path,
            reason: "compressed or unknown sample encoding (only PCM and 32-bit float are read)"
                .into(),
        },
        hound::Error::IoError(source) => AudioFileError::Read { path, source },
        other => AudioFileError::NotWav {
            path,
            reason: other.to_string(),
        },
    }
}
