//! Reading WAV files into f32 samples.
//!
//! Rates of 1-384 kHz and 1-32 channels are read, with samples as
//! 8/16/24/32-bit integers or 32-bit floats. Anything else (64-bit floats,
//! compressed formats, a crafted rate or channel count) is refused with
//! [`AudioFileError::Unsupported`].
//!
//! A file whose data chunk is cut short (a recorder that crashed, a copy that
//! stopped) is read up to the cut: the whole frames before it are returned and
//! a warning names the file and how much was recovered. Only a file with no
//! whole frame at all is an error ([`AudioFileError::Empty`]).
//!
//! [`Stream`] reads a file a block at a time; sizes in the header are never
//! trusted beyond the file's length. No allocation is sized from a header
//! beyond [`MAX_RESERVE_SAMPLES`]: a sparse file can have any length on disk
//! while holding nothing, so more room is only made as samples are read.
//! [`read`] and [`read_16k_mono`] hold a whole file: they refuse one whose
//! audio is longer than [`MAX_WHOLE_DURATION`] ([`AudioFileError::TooLong`]).

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

/// The lowest sample rate read: below it a header is crafted or broken.
pub const MIN_RATE_HZ: u32 = 1_000;
/// The highest sample rate read (the fastest rate audio interfaces offer).
pub const MAX_RATE_HZ: u32 = 384_000;
/// The most channels read (beyond any real recording's layout).
pub const MAX_CHANNELS: u16 = 32;
/// Frames converted per step when streaming a file.
const BLOCK_FRAMES: usize = 16_384;
/// The most samples reserved ahead from a header's length (16 MiB of f32):
/// a Vec holding more grows as it is filled, so memory follows what is
/// really read, not what a header (or a sparse file's length) claims.
pub const MAX_RESERVE_SAMPLES: usize = 1 << 22;
/// The longest audio the whole-file readers ([`read`], [`read_16k_mono`])
/// take: `hark transcribe` holds a file's audio at 16 kHz (230 MB per hour)
/// and Whisper its spectrogram (115 MB per hour), so 24 h is about 8 GB.
/// Longer files are refused before anything is read; stream them with
/// [`Stream`] instead.
pub const MAX_WHOLE_DURATION: Duration = Duration::from_secs(24 * 3600);

/// An open WAV file read a block at a time: only the block in hand is held,
/// never the whole file. The header's sizes are never trusted beyond the
/// file's real length.
///
/// Not real-time safe (file I/O, allocation).
pub struct Stream {
    path: PathBuf,
    reader: hound::WavReader<io::BufReader<std::fs::File>>,
    spec: hound::WavSpec,
    /// Samples the header declares, capped by what the file can hold.
    declared: u64,
    /// Samples read so far.
    read: u64,
    /// Set once the data ended early (warned once).
    truncated: bool,
}

impl Stream {
    /// Opens `path` and checks its header: rate within
    /// [`MIN_RATE_HZ`]..=[`MAX_RATE_HZ`], 1..=[`MAX_CHANNELS`] channels,
    /// integer or 32-bit float samples.
    pub fn open(path: impl AsRef<Path>) -> Result<Stream, AudioFileError> {
        let path = path.as_ref();
        let reader = hound::WavReader::open(path).map_err(|err| open_error(path, err))?;
        let spec = reader.spec();
        let unsupported = |reason: String| AudioFileError::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&spec.sample_rate) {
            return Err(unsupported(format!(
                "sample rate {} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz",
                spec.sample_rate
            )));
        }
        if spec.channels == 0 || spec.channels > MAX_CHANNELS {
            return Err(unsupported(format!(
                "{} channels (at most {MAX_CHANNELS} are read)",
                spec.channels
            )));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) | (hound::SampleFormat::Int, 1..=32) => {}
            (format, bits) => return Err(unsupported(format!("{bits}-bit {format:?} samples"))),
        }
        // The data chunk's length comes from the header: a crafted or torn
        // file can claim gigabytes. Never expect more than the file holds.
        let bytes_per_sample = u64::from(spec.bits_per_sample.div_ceil(8)).max(1);
        let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let declared = u64::from(reader.len()).min(file_len / bytes_per_sample);
        Ok(Stream {
            path: path.to_path_buf(),
            reader,
            spec,
            declared,
            read: 0,
            truncated: false,
        })
    }

    pub fn rate_hz(&self) -> u32 {
        self.spec.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.spec.channels
    }

    /// Frames the header declares, never more than the file can hold.
    pub fn declared_frames(&self) -> u64 {
        self.declared / u64::from(self.spec.channels)
    }

    /// Play time of [`Stream::declared_frames`].
    pub fn declared_duration(&self) -> Duration {
        Duration::from_secs_f64(self.declared_frames() as f64 / f64::from(self.spec.sample_rate))
    }

    /// Refuses a file too long to be held whole ([`MAX_WHOLE_DURATION`]):
    /// what [`read`] and [`read_16k_mono`] check before reading.
    pub fn check_whole(&self) -> Result<(), AudioFileError> {
        let duration = self.declared_duration();
        if duration > MAX_WHOLE_DURATION {
            return Err(AudioFileError::TooLong {
                path: self.path.clone(),
                hours: duration.as_secs_f64() / 3600.0,
                max_hours: MAX_WHOLE_DURATION.as_secs() / 3600,
            });
        }
        Ok(())
    }

    /// Appends up to `max_frames` whole frames (interleaved f32 in [-1, 1];
    /// float samples clipped, non-finite ones 0) to `out`; returns how many
    /// frames were appended, 0 at the end of the data. Data that ends early
    /// ends the stream at the last whole frame, with one warning naming the
    /// file.
    pub fn read_frames(
        &mut self,
        max_frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<usize, AudioFileError> {
        if self.truncated {
            return Ok(0);
        }
        let channels = usize::from(self.spec.channels);
        let before = out.len();
        let want = max_frames * channels;
        let outcome = match self.spec.sample_format {
            hound::SampleFormat::Float => collect(
                self.reader.samples::<f32>().take(want),
                |s| {
                    if s.is_finite() {
                        s.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                },
                out,
            ),
            hound::SampleFormat::Int => {
                let scale = 1.0 / f64::from(1u32 << (self.spec.bits_per_sample - 1));
                collect(
                    self.reader.samples::<i32>().take(want),
                    |s| (f64::from(s) * scale).clamp(-1.0, 1.0) as f32,
                    out,
                )
            }
        };
        self.read += (out.len() - before) as u64;
        match outcome {
            Ok(()) => {}
            Err(hound::Error::IoError(err)) if is_short_read(&err) => {
                let whole = before + (out.len() - before) / channels * channels;
                self.read -= (out.len() - whole) as u64;
                out.truncate(whole);
                self.truncated = true;
                tracing::warn!(
                    "{}: WAV data is truncated: read {} of {} declared frames; using what was read",
                    self.path.display(),
                    self.read / channels as u64,
                    u64::from(self.reader.len()) / channels as u64
                );
            }
            Err(hound::Error::IoError(source)) => {
                return Err(AudioFileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
            Err(err) => return Err(hound_error(&self.path, err)),
        }
        Ok((out.len() - before) / channels)
    }
}

/// Reads a whole WAV file (at most [`MAX_WHOLE_DURATION`] long) as
/// interleaved f32 in [-1, 1], at its own rate and channel count (tests,
/// benchmarks and the fuzzer use it; hark itself streams a file or reads
/// it at 16 kHz). Float samples outside [-1, 1] are clipped and non-finite
/// ones become 0.
///
/// Not real-time safe (file I/O, allocation).
pub fn read(path: impl AsRef<Path>) -> Result<Audio, AudioFileError> {
    let mut stream = Stream::open(path)?;
    stream.check_whole()?;
    let mut samples = Vec::with_capacity(reservation(stream.declared));
    while stream.read_frames(BLOCK_FRAMES, &mut samples)? > 0 {}
    if samples.is_empty() {
        return Err(AudioFileError::Empty { path: stream.path });
    }
    Ok(Audio {
        rate_hz: stream.rate_hz(),
        channels: stream.channels(),
        samples,
    })
}

/// Reads a whole WAV file (at most [`MAX_WHOLE_DURATION`] long) as 16 kHz
/// mono, a block at a time: each block is downmixed and pushed through one
/// [`Resampler`] session, so only the 16 kHz mono result is held, never the
/// file's own samples.
///
/// Not real-time safe.
pub fn read_16k_mono(path: impl AsRef<Path>) -> Result<Audio, AudioFileError> {
    let mut stream = Stream::open(path)?;
    stream.check_whole()?;
    let rate = stream.rate_hz();
    let mut resampler = Resampler::new(rate).map_err(|source| AudioFileError::Resample {
        path: stream.path.clone(),
        source,
    })?;
    let expected = stream.declared_frames() * u64::from(TARGET_RATE_HZ) / u64::from(rate) + 1;
    let mut samples = Vec::with_capacity(reservation(expected));
    let mut block = Vec::with_capacity(BLOCK_FRAMES * usize::from(stream.channels()));
    let mut mono = vec![0.0; BLOCK_FRAMES];
    let mut frames_read = 0u64;
    loop {
        block.clear();
        let frames = stream.read_frames(BLOCK_FRAMES, &mut block)?;
        if frames == 0 {
            break;
        }
        frames_read += frames as u64;
        downmix(&block, stream.channels(), &mut mono[..frames]);
        resampler.push(&mono[..frames], &mut samples);
    }
    if frames_read == 0 {
        return Err(AudioFileError::Empty { path: stream.path });
    }
    resampler.finish(&mut samples);
    Ok(Audio {
        rate_hz: TARGET_RATE_HZ,
        channels: 1,
        samples,
    })
}

/// Room to reserve for `declared` samples: never more than
/// [`MAX_RESERVE_SAMPLES`] (the Vec grows past it as samples arrive).
fn reservation(declared: u64) -> usize {
    usize::try_from(declared).map_or(MAX_RESERVE_SAMPLES, |n| n.min(MAX_RESERVE_SAMPLES))
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
