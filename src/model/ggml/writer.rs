//! Writing a ggml whisper file.

use std::io::Write;
use std::path::Path;

use super::super::ModelError;
use super::{Preamble, TensorType, GGML_FILE_MAGIC, MEL_BINS};

/// Writes the parts of a ggml whisper file, mapping failures to the path.
pub struct GgmlWriter<'a, W: Write> {
    pub out: &'a mut W,
    pub path: &'a Path,
}

impl<W: Write> GgmlWriter<'_, W> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        self.out
            .write_all(bytes)
            .map_err(|e| ModelError::io(self.path, e))
    }

    fn i32(&mut self, value: i32) -> Result<(), ModelError> {
        self.bytes(&value.to_le_bytes())
    }

    /// Magic, hyperparameters, mel filterbank and vocabulary.
    pub fn preamble(&mut self, p: &Preamble) -> Result<(), ModelError> {
        self.bytes(&GGML_FILE_MAGIC.to_le_bytes())?;
        for field in p.hparams.fields() {
            self.i32(field)?;
        }
        self.i32(p.hparams.n_mels)?;
        self.i32(MEL_BINS as i32)?;
        let mel: Vec<u8> = p.mel_filters.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(&mel)?;
        self.i32(p.tokens.len() as i32)?;
        for token in &p.tokens {
            self.i32(token.len() as i32)?;
            self.bytes(token)?;
        }
        Ok(())
    }

    /// A tensor's header and data (`data` must match the type and shape).
    pub fn tensor(
        &mut self,
        name: &str,
        ne: &[usize],
        ttype: TensorType,
        data: &[u8],
    ) -> Result<(), ModelError> {
        debug_assert_eq!(ttype.data_bytes(ne), Some(data.len() as u64), "{name}");
        self.i32(ne.len() as i32)?;
        self.i32(name.len() as i32)?;
        self.i32(ttype.raw() as i32)?;
        for &n in ne {
            self.i32(n as i32)?;
        }
        self.bytes(name.as_bytes())?;
        self.bytes(data)
    }
}
