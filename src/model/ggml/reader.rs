//! The bounds-checked ggml reader: nothing is read or allocated before the
//! file is known to hold it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::super::{open_input, ModelError};
use super::{Hparams, TensorType, GGML_FILE_MAGIC, MEL_BINS};

/// Longest token and tensor name accepted.
const MAX_TOKEN_BYTES: u32 = 1024;
const MAX_NAME_BYTES: i32 = 256;

/// One tensor's header as read from a file, positioned before its data.
#[derive(Debug, Clone)]
pub struct TensorHeader {
    pub name: String,
    pub ne: Vec<usize>,
    pub ttype: TensorType,
    pub data_bytes: u64,
}

/// The parts of a ggml whisper file before its tensors.
#[derive(Debug, Clone)]
pub struct Preamble {
    pub hparams: Hparams,
    /// n_mels rows of `MEL_BINS` weights.
    pub mel_filters: Vec<f32>,
    pub tokens: Vec<Vec<u8>>,
}

/// A bounds-checked reader: every read first checks the file is long enough,
/// so truncation is reported with what was being read and where.
pub struct GgmlReader {
    path: PathBuf,
    file: BufReader<File>,
    pub(super) pos: u64,
    pub(super) len: u64,
    n_tensors: usize,
}

impl GgmlReader {
    /// Opens `path` and reads and checks everything up to the first tensor.
    pub fn open(path: &Path) -> Result<(GgmlReader, Preamble), ModelError> {
        let file = open_input(path)?;
        let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
        let mut r = GgmlReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 20, file),
            pos: 0,
            len,
            n_tensors: 0,
        };
        let magic = r.read_u32("the magic number")?;
        if magic != GGML_FILE_MAGIC {
            return Err(ModelError::NotGgml {
                path: r.path.clone(),
                found: magic,
            });
        }
        let mut fields = [0i32; 11];
        for field in &mut fields {
            *field = r.read_i32("the hyperparameters")?;
        }
        let hparams = Hparams::from_fields(fields);
        hparams.check().map_err(|reason| r.invalid(reason))?;

        let n_mel = r.read_i32("the mel filterbank")?;
        let n_fft = r.read_i32("the mel filterbank")?;
        if n_mel != hparams.n_mels || n_fft != MEL_BINS as i32 {
            return Err(r.invalid(format!(
                "mel filterbank is {n_mel}x{n_fft}, expected {}x{MEL_BINS}",
                hparams.n_mels
            )));
        }
        let raw = r.read_bytes(n_mel as usize * MEL_BINS * 4, "the mel filterbank")?;
        let mel_filters: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if mel_filters.iter().any(|v| !v.is_finite()) {
            return Err(r.invalid("mel filterbank holds non-finite values".into()));
        }

        let n_tokens = r.read_i32("the vocabulary size")?;
        if !(0..=hparams.n_vocab).contains(&n_tokens) {
            return Err(r.invalid(format!(
                "vocabulary has {n_tokens} tokens, n_vocab is {}",
                hparams.n_vocab
            )));
        }
        let mut tokens = Vec::with_capacity(n_tokens as usize);
        for id in 0..n_tokens {
            let what = format!("vocabulary token {id}");
            let len = r.read_u32(&what)?;
            if len > MAX_TOKEN_BYTES {
                return Err(r.invalid(format!("{what} is {len} bytes long")));
            }
            tokens.push(r.read_bytes(len as usize, &what)?);
        }
        Ok((
            r,
            Preamble {
                hparams,
                mel_filters,
                tokens,
            },
        ))
    }

    /// The next tensor's header, or `None` at the exact end of the file. The
    /// caller must then read or skip `data_bytes` before asking again.
    pub fn next_tensor(&mut self) -> Result<Option<TensorHeader>, ModelError> {
        if self.pos == self.len {
            return Ok(None);
        }
        let what = format!("the header of tensor #{}", self.n_tensors);
        let n_dims = self.read_i32(&what)?;
        let name_len = self.read_i32(&what)?;
        let raw_type = self.read_i32(&what)?;
        if !(1..=4).contains(&n_dims) {
            return Err(self.invalid(format!("{what}: {n_dims} dimensions")));
        }
        if !(1..=MAX_NAME_BYTES).contains(&name_len) {
            return Err(self.invalid(format!("{what}: name of {name_len} bytes")));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let n = self.read_i32(&what)?;
            if n < 1 {
                return Err(self.invalid(format!("{what}: dimension {n}")));
            }
            ne.push(n as usize);
        }
        let name = self.read_bytes(name_len as usize, &what)?;
        let name = String::from_utf8(name)
            .map_err(|_| self.invalid(format!("{what}: name is not UTF-8")))?;
        let ttype = TensorType::from_raw(raw_type)
            .ok_or_else(|| self.invalid(format!("tensor {name:?} has unknown type {raw_type}")))?;
        let data_bytes = ttype.data_bytes(&ne).ok_or_else(|| {
            self.invalid(format!(
                "tensor {name:?} of type {} has shape {ne:?}, not whole blocks",
                ttype.name()
            ))
        })?;
        self.n_tensors += 1;
        Ok(Some(TensorHeader {
            name,
            ne,
            ttype,
            data_bytes,
        }))
    }

    /// Reads a tensor's data.
    pub fn read_data(&mut self, t: &TensorHeader) -> Result<Vec<u8>, ModelError> {
        self.check_available(t.data_bytes, &describe(t))?;
        self.read_bytes(t.data_bytes as usize, &describe(t))
    }

    /// Skips over a tensor's data, checking it is all there.
    pub fn skip_data(&mut self, t: &TensorHeader) -> Result<(), ModelError> {
        self.check_available(t.data_bytes, &describe(t))?;
        self.file
            .seek_relative(t.data_bytes as i64)
            .map_err(|e| ModelError::io(&self.path, e))?;
        self.pos += t.data_bytes;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check_available(&self, n: u64, what: &str) -> Result<(), ModelError> {
        if self.len - self.pos < n {
            return Err(ModelError::Truncated {
                path: self.path.clone(),
                what: what.to_string(),
                expected_bytes: self.pos + n,
                actual_bytes: self.len,
            });
        }
        Ok(())
    }

    fn read_bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>, ModelError> {
        self.check_available(n as u64, what)?;
        let mut buf = vec![0u8; n];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| ModelError::io(&self.path, e))?;
        self.pos += n as u64;
        Ok(buf)
    }

    fn read_u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.read_bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn read_i32(&mut self, what: &str) -> Result<i32, ModelError> {
        Ok(self.read_u32(what)? as i32)
    }

    pub(super) fn invalid(&self, reason: String) -> ModelError {
        ModelError::InvalidGgml {
            path: self.path.clone(),
            reason,
        }
    }
}

fn describe(t: &TensorHeader) -> String {
    format!("tensor {:?} ({} {:?})", t.name, t.ttype.name(), t.ne)
}
