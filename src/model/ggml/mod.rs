//! whisper.cpp's ggml model file: layout, reader, writer, and [`validate`].
//!
//! Layout (little-endian), as `whisper_model_load` reads it: u32 magic; eleven
//! i32 hyperparameters ([`Hparams`]); the mel filterbank (i32 n_mel, i32
//! n_fft, n_mel x n_fft f32); the vocabulary (i32 count, then per token i32
//! length and bytes); then tensors until the end of the file, each: i32
//! n_dims, i32 name length, i32 ggml type, n_dims x i32 `ne` (innermost
//! first), the name, and the data.
//!
//! whisper.cpp trusts these fields: a bad type or ftype aborts the process
//! and absurd sizes make it allocate without bound. [`validate`] checks all of
//! them first.
//!
//! One job per file: [`hparams`] (the header and the shapes real Whisper
//! models have), [`tensor`] (element types and the tensors whisper.cpp
//! expects), [`reader`] (the bounds-checked reader), [`writer`], and here
//! [`validate`], which puts them together.

mod hparams;
mod reader;
mod tensor;
mod writer;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use whisper_rs::whisper_rs_sys as sys;

use super::{mel, ModelError};

pub use hparams::{
    Hparams, WhisperSize, AUDIO_CTX, DISTILLED_TEXT_LAYERS, HEAD_SIZE, N_MELS, TEXT_CTX,
    WHISPER_SIZES,
};
pub use reader::{GgmlReader, Preamble, TensorHeader};
pub use tensor::{expected_tensors, TensorSpec, TensorType};
pub use writer::GgmlWriter;

/// "ggml" read as a little-endian u32.
pub const GGML_FILE_MAGIC: u32 = 0x6767_6d6c;
/// Quantized files carry `QNT_VERSION * QNT_VERSION_FACTOR + ftype`.
pub const QNT_VERSION_FACTOR: i32 = sys::GGML_QNT_VERSION_FACTOR as i32;
pub const QNT_VERSION: i32 = sys::GGML_QNT_VERSION as i32;
/// Frequency bins per mel filter row: whisper.cpp's FFT is fixed at 400 points.
pub const MEL_BINS: usize = 1 + mel::N_FFT / 2;
/// The English-only vocabulary size; multilingual models have one or two more.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlInfo {
    pub hparams: Hparams,
    /// The type of the big matrices ("f16", "q5_1", ...).
    pub weight_type: &'static str,
    /// Tokens stored in the file's vocabulary.
    pub n_tokens: usize,
    pub n_tensors: usize,
    pub file_bytes: u64,
}

/// Reads and checks a whole ggml whisper file without loading its weights:
/// header, mel filterbank, vocabulary, then every tensor's name, shape and
/// type against what whisper.cpp will expect, each tensor's data length, and
/// that the file ends exactly after the last tensor. Run it before handing a
/// file to whisper.cpp, which aborts the process on some malformed files.
/// Not real-time safe.
pub fn validate(path: &Path) -> Result<GgmlInfo, ModelError> {
    let (mut r, preamble) = GgmlReader::open(path)?;
    let h = preamble.hparams;
    let weight_type = h.weight_type().expect("checked by GgmlReader::open");
    let expected: BTreeMap<String, TensorSpec> = expected_tensors(&h, weight_type)
        .into_iter()
        .map(|spec| (spec.name.clone(), spec))
        .collect();
    let mut seen = HashSet::new();
    loop {
        if seen.len() == expected.len() && r.pos < r.len {
            return Err(ModelError::TrailingBytes {
                path: path.to_path_buf(),
                expected_bytes: r.pos,
                actual_bytes: r.len,
            });
        }
        let Some(t) = r.next_tensor()? else { break };
        let spec = expected
            .get(&t.name)
            .ok_or_else(|| r.invalid(format!("unknown tensor {:?}", t.name)))?;
        if !seen.insert(t.name.clone()) {
            return Err(r.invalid(format!("tensor {:?} appears twice", t.name)));
        }
        if t.ne != spec.ne || t.ttype != spec.ttype {
            return Err(r.invalid(format!(
                "tensor {:?} is {} {:?}, whisper.cpp expects {} {:?}",
                t.name,
                t.ttype.name(),
                t.ne,
                spec.ttype.name(),
                spec.ne
            )));
        }
        r.skip_data(&t)?;
    }
    if let Some(missing) = expected.keys().find(|name| !seen.contains(*name)) {
        return Err(r.invalid(format!(
            "tensor {missing:?} is missing ({} of {} present)",
            seen.len(),
            expected.len()
        )));
    }
    Ok(GgmlInfo {
        hparams: h,
        weight_type: weight_type.name(),
        n_tokens: preamble.tokens.len(),
        n_tensors: seen.len(),
        file_bytes: r.len(),
    })
}
