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
}

/// The most audio data one recording holds: a WAV's sizes are 32-bit, and
/// the header and hound's chunk bookkeeping take some of it.
pub const RECORD_LIMIT_BYTES: u64 = u32::MAX as u64 - 1024 * 1024;

impl Recorder {
    pub(super) fn create(path: &Path, rate_hz: u32) -> Result<Recorder, RecordError> {
        Recorder::create_limited(path, rate_hz, RECORD_LIMIT_BYTES)
    }

    fn create_limited(path: &Path, rate_hz: u32, limit: u64) -> Result<Recorder, RecordError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source: hound::Error| RecordError {
            path: path.to_path_buf(),
            source,
        };
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate_hz,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                match e.kind() {
                std::io::ErrorKind::AlreadyExists => err(hound::Error::IoError(std::io::Error::new(
                    e.kind(),
                    "it already exists; refusing to overwrite it (remove it or pick another name)",
                ))),
                _ => err(hound::Error::IoError(e)),
            }
            })?;
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(err)?;
        Ok(Recorder {
            writer: Some(writer),
            path: path.to_path_buf(),
            bytes_left: limit,
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

    pub(super) fn finish(mut self) -> Result<(), RecordError> {
        self.finalize()
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
    fn size_limit_finalizes_a_valid_wav() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let mut rec = Recorder::create_limited(&path, 16_000, 1000).unwrap();
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
