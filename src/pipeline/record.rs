//! `--record`: the captured audio saved as 16-bit mono WAV, on the pump
//! thread.
//!
//! Not real-time safe.

use std::path::{Path, PathBuf};

/// A recording could not be made or written; the transcript goes on.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the recording {path}: {source}")]
pub struct RecordError {
    pub path: PathBuf,
    #[source]
    pub source: hound::Error,
}

/// Saves captured audio as 16-bit mono WAV, on the pump thread. The file is
/// new (an existing one is refused, never overwritten) and private (0600);
/// at [`RECORD_LIMIT_BYTES`] it is finalized and recording stops, since a
/// WAV's 32-bit length cannot say more (about 12 h at 48 kHz).
pub(super) struct Recorder {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    path: PathBuf,
    bytes_left: u64,
    /// Samples written so far: a recording that got none is removed at
    /// the end rather than left as an empty WAV.
    written: u64,
}

/// The most audio data one recording holds: a WAV's sizes are 32-bit, and
/// the header and hound's chunk bookkeeping take some of it.
pub const RECORD_LIMIT_BYTES: u64 = u32::MAX as u64 - 1024 * 1024;

/// A recording's file, created (new, 0600) before any source starts, so
/// that a name already taken is refused before anything is captured.
/// Dropped without being started (the session failed to start), it is
/// removed again: it is still empty.
pub(super) struct Claim {
    file: Option<std::fs::File>,
    path: PathBuf,
}

impl Claim {
    pub(super) fn new(path: &Path) -> Result<Claim, RecordError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| RecordError {
                path: path.to_path_buf(),
                source: hound::Error::IoError(match e.kind() {
                    std::io::ErrorKind::AlreadyExists => std::io::Error::new(
                        e.kind(),
                        "it already exists; refusing to overwrite it (remove it or pick another name)",
                    ),
                    _ => e,
                }),
            })?;
        Ok(Claim {
            file: Some(file),
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Recorder {
    #[cfg(test)]
    fn create(path: &Path, rate_hz: u32) -> Result<Recorder, RecordError> {
        Recorder::start(Claim::new(path)?, rate_hz)
    }

    /// Starts recording into `claim`'s file at the device's rate.
    pub(super) fn start(claim: Claim, rate_hz: u32) -> Result<Recorder, RecordError> {
        Recorder::start_limited(claim, rate_hz, RECORD_LIMIT_BYTES)
    }

    fn start_limited(mut claim: Claim, rate_hz: u32, limit: u64) -> Result<Recorder, RecordError> {
        let path = claim.path.clone();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate_hz,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let Some(file) = claim.file.take() else {
            unreachable!("a claim holds its file until started");
        };
        let writer =
            hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(|source| {
                let _ = std::fs::remove_file(&path);
                RecordError {
                    path: path.clone(),
                    source,
                }
            })?;
        Ok(Recorder {
            writer: Some(writer),
            path,
            bytes_left: limit,
            written: 0,
        })
    }

    /// Writes `chunk`; at the size limit the file is finalized and the rest
    /// ignored (told once). Errors name the file.
    pub(super) fn write(&mut self, chunk: &[f32]) -> Result<(), RecordError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let room = (self.bytes_left / 2) as usize;
        let take = chunk.len().min(room);
        for &s in &chunk[..take] {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            writer.write_sample(v).map_err(|source| RecordError {
                path: self.path.clone(),
                source,
            })?;
        }
        self.bytes_left -= 2 * take as u64;
        self.written += take as u64;
        if take < chunk.len() {
            tracing::error!(
                "recording {} reached the WAV size limit ({} bytes); recording stopped, \
                 transcription goes on",
                self.path.display(),
                RECORD_LIMIT_BYTES
            );
            self.finalize()?;
        }
        Ok(())
    }

    fn finalize(&mut self) -> Result<(), RecordError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|source| RecordError {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Finalizes the WAV. A recording that never got a sample (a source
    /// that captured nothing, or a session that failed to start) is
    /// removed: an empty WAV is of no use and would make the next run
    /// with the same name refuse to overwrite it.
    pub(super) fn finish(mut self) -> Result<(), RecordError> {
        let empty = self.written == 0;
        self.finalize()?;
        if empty {
            tracing::warn!(
                "nothing was recorded into {}; the empty file is removed",
                self.path.display()
            );
            std::fs::remove_file(&self.path).map_err(|e| RecordError {
                path: self.path.clone(),
                source: hound::Error::IoError(e),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod recorder_tests {
    use super::Recorder;

    #[test]
    fn existing_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.wav");
        std::fs::write(&path, b"precious").unwrap();
        let err = Recorder::create(&path, 16_000).err().expect("refused");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn a_recording_that_got_no_sample_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.wav");
        let rec = Recorder::create(&path, 16_000).unwrap();
        assert!(path.exists(), "created at once (claims the name)");
        rec.finish().unwrap();
        assert!(!path.exists(), "an empty WAV was left behind");
        let kept = dir.path().join("kept.wav");
        let mut rec = Recorder::create(&kept, 16_000).unwrap();
        rec.write(&[0.5; 10]).unwrap();
        rec.finish().unwrap();
        assert_eq!(hound::WavReader::open(&kept).unwrap().len(), 10);
    }

    #[test]
    fn size_limit_finalizes_a_valid_wav() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let claim = super::Claim::new(&path).unwrap();
        let mut rec = Recorder::start_limited(claim, 16_000, 1000).unwrap();
        let chunk = vec![0.25f32; 300];
        for _ in 0..5 {
            rec.write(&chunk).unwrap();
        }
        rec.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len(), 500, "1000 bytes of 16-bit samples");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
