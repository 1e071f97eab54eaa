//! Reader for CTranslate2's `model.bin` (binary version 6).
//!
//! Layout (little-endian), as written by CTranslate2's `ModelSpec._serialize`:
//! u32 version, string spec name, u32 spec revision, u32 variable count, then
//! per variable: string name, u8 rank, rank x u32 dims, u8 dtype, u32 byte
//! count, bytes; then u32 alias count and per alias two strings (alias,
//! target). A string is a u16 length that counts a trailing NUL, then the
//! bytes including that NUL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::ModelError;

/// The only `model.bin` binary version this reader understands.
pub const BINARY_VERSION: u32 = 6;
/// The spec name of CTranslate2 Whisper models.
pub const WHISPER_SPEC_NAME: &str = "WhisperSpec";
/// The WhisperSpec revision this importer was written against.
pub const WHISPER_SPEC_REVISION: u32 = 3;

/// A CTranslate2 variable's element type (CTranslate2's `DataType` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Dtype {
    fn from_code(code: u8) -> Option<Dtype> {
        Some(match code {
            0 => Dtype::F32,
            1 => Dtype::I8,
            2 => Dtype::I16,
            3 => Dtype::I32,
            4 => Dtype::F16,
            5 => Dtype::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            Dtype::I8 => 1,
            Dtype::I16 | Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::F16 => "float16",
            Dtype::Bf16 => "bfloat16",
        }
    }
}

/// One stored variable: its row-major shape, type and raw little-endian bytes.
#[derive(Debug)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub bytes: Vec<u8>,
}

/// Largest `model.bin` read (it is read whole): large-v3 in float32, the
/// biggest Whisper model there is, is 6.2 GB.
pub const MAX_MODEL_BYTES: u64 = 8 << 30;

/// A parsed `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    pub path: PathBuf,
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Variable>,
    /// Alias name -> the variable it stands for.
    pub aliases: BTreeMap<String, String>,
}

impl Ct2Model {
    /// Reads and parses `path`. Fails on an unknown binary version or spec, a
    /// truncated file, or an unknown dtype code. Not real-time safe.
    pub fn read(path: &Path) -> Result<Ct2Model, ModelError> {
        let bytes = super::read_capped(path, MAX_MODEL_BYTES, "a CTranslate2 Whisper model.bin")?;
        Self::parse(path, &bytes)
    }

    /// Parses the bytes of a `model.bin` read from `path` (named in errors).
    /// Every size is checked against the bytes there before use.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Ct2Model, ModelError> {
        let mut r = Reader {
            path,
            bytes,
            pos: 0,
        };
        let version = r.u32("binary version")?;
        if version != BINARY_VERSION {
            return Err(ModelError::Ct2Version {
                path: path.to_path_buf(),
                found: version,
                supported: BINARY_VERSION,
            });
        }
        let spec = r.string("spec name")?;
        let revision = r.u32("spec revision")?;
        if spec != WHISPER_SPEC_NAME || revision != WHISPER_SPEC_REVISION {
            return Err(ModelError::Ct2Spec {
                path: path.to_path_buf(),
                spec,
                revision,
            });
        }
        let count = r.u32("variable count")?;
        let mut variables = BTreeMap::new();
        for index in 0..count {
            let name = r.string(&format!("name of variable {index}"))?;
            let rank = r.u8(&format!("rank of {name:?}"))?;
            let mut shape = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                shape.push(r.u32(&format!("shape of {name:?}"))? as usize);
            }
            let code = r.u8(&format!("dtype of {name:?}"))?;
            let dtype = Dtype::from_code(code).ok_or_else(|| ModelError::Ct2Dtype {
                path: path.to_path_buf(),
                variable: name.clone(),
                dtype: format!("code {code}"),
            })?;
            let byte_count = r.u32(&format!("byte count of {name:?}"))? as usize;
            let bytes_needed = shape
                .iter()
                .try_fold(dtype.size_bytes(), |acc, &dim| acc.checked_mul(dim));
            if bytes_needed != Some(byte_count) {
                return Err(r.invalid(format!(
                    "variable {name:?} has shape {shape:?} of {} but {byte_count} bytes",
                    dtype.name()
                )));
            }
            let data = r.take(byte_count, &format!("data of {name:?}"))?.to_vec();
            variables.insert(
                name,
                Variable {
                    shape,
                    dtype,
                    bytes: data,
                },
            );
        }
        let alias_count = r.u32("alias count")?;
        let mut aliases = BTreeMap::new();
        for index in 0..alias_count {
            let alias = r.string(&format!("alias {index}"))?;
            let target = r.string(&format!("target of alias {alias:?}"))?;
            aliases.insert(alias, target);
        }
        if r.pos != bytes.len() {
            return Err(ModelError::TrailingBytes {
                path: path.to_path_buf(),
                expected_bytes: r.pos as u64,
                actual_bytes: bytes.len() as u64,
            });
        }
        Ok(Ct2Model {
            path: path.to_path_buf(),
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// The variable called `name`, following an alias if `name` is one.
    pub fn get(&self, name: &str) -> Result<&Variable, ModelError> {
        let target = self.aliases.get(name).map_or(name, String::as_str);
        self.variables
            .get(target)
            .ok_or_else(|| self.invalid(format!("variable {name:?} is missing")))
    }

    /// The shape of `name`, checked to have `rank` dimensions.
    pub fn shape(&self, name: &str, rank: usize) -> Result<&[usize], ModelError> {
        let var = self.get(name)?;
        if var.shape.len() != rank {
            return Err(self.invalid(format!(
                "variable {name:?} has shape {:?}, expected rank {rank}",
                var.shape
            )));
        }
        Ok(&var.shape)
    }

    /// The elements of a floating-point variable as f32 (exact for f16/bf16).
    pub fn floats(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let var = self.get(name)?;
        let b = &var.bytes;
        Ok(match var.dtype {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::Bf16 => b
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::Ct2Dtype {
                    path: self.path.clone(),
                    variable: name.to_string(),
                    dtype: other.name().to_string(),
                })
            }
        })
    }

    /// The value of an integer scalar variable (flags, head counts).
    pub fn scalar(&self, name: &str) -> Result<i64, ModelError> {
        let var = self.get(name)?;
        let b = &var.bytes;
        let value = match (var.dtype, b.len()) {
            (Dtype::I8, 1) => i64::from(b[0] as i8),
            (Dtype::I16, 2) => i64::from(i16::from_le_bytes([b[0], b[1]])),
            (Dtype::I32, 4) => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => {
                return Err(self.invalid(format!(
                    "variable {name:?} should be an integer scalar, is {} of shape {:?}",
                    var.dtype.name(),
                    var.shape
                )))
            }
        };
        Ok(value)
    }

    pub(crate) fn invalid(&self, reason: String) -> ModelError {
        ModelError::Ct2Invalid {
            path: self.path.clone(),
            reason,
        }
    }
}

/// A bounds-checked little-endian cursor over the file's bytes.
struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(ModelError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                expected_bytes: self.pos as u64 + n as u64,
                actual_bytes: self.bytes.len() as u64,
            });
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        let Some((&0, text)) = raw.split_last() else {
            return Err(self.invalid(format!("{what} is not a NUL-terminated string")));
        };
        String::from_utf8(text.to_vec())
            .map_err(|_| self.invalid(format!("{what} is not valid UTF-8")))
    }

    fn invalid(&self, reason: String) -> ModelError {
        ModelError::Ct2Invalid {
            path: self.path.to_path_buf(),
            reason: format!("{reason} (at byte {})", self.pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crafted variable name holding a newline once made a two-line error
    /// (found by `fuzz/ct2`): names are quoted, so every error is one line.
    #[test]
    fn error_about_a_crafted_name_is_one_line() {
        let mut bytes = BINARY_VERSION.to_le_bytes().to_vec();
        bytes.extend((WHISPER_SPEC_NAME.len() as u16 + 1).to_le_bytes());
        bytes.extend(WHISPER_SPEC_NAME.as_bytes());
        bytes.push(0);
        bytes.extend(WHISPER_SPEC_REVISION.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        let name = b"encoder/\nlayer_0\x1b[2J";
        bytes.extend((name.len() as u16 + 1).to_le_bytes());
        bytes.extend(name);
        bytes.push(0);
        bytes.push(0); // rank 0; the dtype and everything after are missing
        let err = Ct2Model::parse(Path::new("crafted.bin"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n') && !err.contains('\x1b'), "{err:?}");
        assert!(
            err.starts_with("crafted.bin: truncated in dtype of \"encoder/\\nlayer_0"),
            "{err}"
        );
    }
}
