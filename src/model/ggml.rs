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

use std::collections::{BTreeMap, HashSet};
use std::ffi::CStr;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use whisper_rs::whisper_rs_sys as sys;

use super::{mel, open_input, ModelError};

/// "ggml" read as a little-endian u32.
pub const GGML_FILE_MAGIC: u32 = 0x6767_6d6c;
/// Quantized files carry `QNT_VERSION * QNT_VERSION_FACTOR + ftype`.
pub const QNT_VERSION_FACTOR: i32 = sys::GGML_QNT_VERSION_FACTOR as i32;
pub const QNT_VERSION: i32 = sys::GGML_QNT_VERSION as i32;
/// Frequency bins per mel filter row: whisper.cpp's FFT is fixed at 400 points.
pub const MEL_BINS: usize = 1 + mel::N_FFT / 2;
/// The English-only vocabulary size; multilingual models have one or two more.
const MIN_N_VOCAB: i32 = 51_864;
const MAX_N_VOCAB: i32 = 60_000;
/// Longest token and tensor name accepted.
const MAX_TOKEN_BYTES: u32 = 1024;
const MAX_NAME_BYTES: i32 = 256;

/// The header of a whisper ggml file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// `ggml_ftype`, plus `QNT_VERSION * QNT_VERSION_FACTOR` when quantized.
    pub ftype: i32,
}

impl Hparams {
    fn fields(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_fields(f: [i32; 11]) -> Hparams {
        Hparams {
            n_vocab: f[0],
            n_audio_ctx: f[1],
            n_audio_state: f[2],
            n_audio_head: f[3],
            n_audio_layer: f[4],
            n_text_ctx: f[5],
            n_text_state: f[6],
            n_text_head: f[7],
            n_text_layer: f[8],
            n_mels: f[9],
            ftype: f[10],
        }
    }

    /// The type of the big weight matrices, from `ftype`; `None` if whisper.cpp
    /// would reject (or abort on) this ftype.
    pub fn weight_type(&self) -> Option<TensorType> {
        if self.ftype < 0 || self.ftype / QNT_VERSION_FACTOR > QNT_VERSION {
            return None;
        }
        let ggml_type = match self.ftype % QNT_VERSION_FACTOR {
            sys::ggml_ftype_GGML_FTYPE_ALL_F32 => sys::ggml_type_GGML_TYPE_F32,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_F16 => sys::ggml_type_GGML_TYPE_F16,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_BF16 => sys::ggml_type_GGML_TYPE_BF16,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_0 => sys::ggml_type_GGML_TYPE_Q4_0,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_1 => sys::ggml_type_GGML_TYPE_Q4_1,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_0 => sys::ggml_type_GGML_TYPE_Q5_0,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1 => sys::ggml_type_GGML_TYPE_Q5_1,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0 => sys::ggml_type_GGML_TYPE_Q8_0,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q2_K => sys::ggml_type_GGML_TYPE_Q2_K,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q3_K => sys::ggml_type_GGML_TYPE_Q3_K,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_K => sys::ggml_type_GGML_TYPE_Q4_K,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_K => sys::ggml_type_GGML_TYPE_Q5_K,
            sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q6_K => sys::ggml_type_GGML_TYPE_Q6_K,
            _ => return None,
        };
        TensorType::from_raw(ggml_type as i32)
    }

    /// Checks the hyperparameters against the shapes real Whisper models
    /// have ([`WHISPER_SIZES`], [`AUDIO_CTX`], [`TEXT_CTX`], 80 or 128 mels,
    /// heads of [`HEAD_SIZE`]): whisper.cpp checks none of them, and a model
    /// with other shapes loads but fails every decode (or aborts). The error
    /// names the field.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(MIN_N_VOCAB..=MAX_N_VOCAB).contains(&self.n_vocab) {
            return Err(format!(
                "n_vocab = {} is outside {MIN_N_VOCAB}..={MAX_N_VOCAB}",
                self.n_vocab
            ));
        }
        let exact = [
            ("n_audio_ctx", self.n_audio_ctx, AUDIO_CTX),
            ("n_text_ctx", self.n_text_ctx, TEXT_CTX),
        ];
        for (name, value, want) in exact {
            if value != want {
                return Err(format!(
                    "{name} = {value}, but every Whisper model has {want}"
                ));
            }
        }
        if !N_MELS.contains(&self.n_mels) {
            return Err(format!(
                "n_mels = {}, but Whisper models have 80 or 128",
                self.n_mels
            ));
        }
        let Some(size) = WHISPER_SIZES.iter().find(|s| s.state == self.n_audio_state) else {
            let known: Vec<String> = WHISPER_SIZES.iter().map(|s| s.state.to_string()).collect();
            return Err(format!(
                "n_audio_state = {} is no Whisper size (known: {})",
                self.n_audio_state,
                known.join(", ")
            ));
        };
        if self.n_text_state != self.n_audio_state {
            return Err(format!(
                "n_text_state = {} differs from n_audio_state = {}",
                self.n_text_state, self.n_audio_state
            ));
        }
        for (name, heads) in [
            ("n_audio_head", self.n_audio_head),
            ("n_text_head", self.n_text_head),
        ] {
            if heads * HEAD_SIZE != self.n_audio_state {
                return Err(format!(
                    "{name} = {heads}: heads of {HEAD_SIZE} need {} for state {}",
                    self.n_audio_state / HEAD_SIZE,
                    self.n_audio_state
                ));
            }
        }
        if self.n_audio_layer != size.layers {
            return Err(format!(
                "n_audio_layer = {}, but the {} size has {}",
                self.n_audio_layer, size.name, size.layers
            ));
        }
        // Distilled and turbo models keep the encoder and shrink the decoder.
        if self.n_text_layer != size.layers && !DISTILLED_TEXT_LAYERS.contains(&self.n_text_layer) {
            return Err(format!(
                "n_text_layer = {}, but the {} size has {} (or {:?} when distilled)",
                self.n_text_layer, size.name, size.layers, DISTILLED_TEXT_LAYERS
            ));
        }
        if self.weight_type().is_none() {
            return Err(format!("unsupported ftype {}", self.ftype));
        }
        Ok(())
    }
}

/// One Whisper model size: its state width and layer count.
#[derive(Debug, Clone, Copy)]
pub struct WhisperSize {
    pub name: &'static str,
    pub state: i32,
    pub layers: i32,
}

/// The sizes of every released Whisper model (tiny to large-v3).
pub const WHISPER_SIZES: [WhisperSize; 5] = [
    WhisperSize {
        name: "tiny",
        state: 384,
        layers: 4,
    },
    WhisperSize {
        name: "base",
        state: 512,
        layers: 6,
    },
    WhisperSize {
        name: "small",
        state: 768,
        layers: 12,
    },
    WhisperSize {
        name: "medium",
        state: 1024,
        layers: 24,
    },
    WhisperSize {
        name: "large",
        state: 1280,
        layers: 32,
    },
];
/// Encoder positions: 30 s of audio at 50 frames a second.
pub const AUDIO_CTX: i32 = 1500;
/// Decoder positions.
pub const TEXT_CTX: i32 = 448;
/// Mel bands: 80, or 128 for large-v3.
pub const N_MELS: [i32; 2] = [80, 128];
/// Every Whisper attention head is 64 wide.
pub const HEAD_SIZE: i32 = 64;
/// Decoder layer counts of distilled models (distil-whisper: 2; turbo and
/// distil-small: 4).
pub const DISTILLED_TEXT_LAYERS: [i32; 2] = [2, 4];

/// A ggml tensor element type that has a fixed block layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorType(sys::ggml_type);

impl TensorType {
    pub const F32: TensorType = TensorType(sys::ggml_type_GGML_TYPE_F32);
    pub const F16: TensorType = TensorType(sys::ggml_type_GGML_TYPE_F16);

    /// `None` for values out of range and for retired types (block size 0).
    pub fn from_raw(raw: i32) -> Option<TensorType> {
        let raw = sys::ggml_type::try_from(raw).ok()?;
        if raw >= sys::ggml_type_GGML_TYPE_COUNT {
            return None;
        }
        // SAFETY: `raw` is below GGML_TYPE_COUNT, the bound of ggml's type table.
        let block = unsafe { sys::ggml_blck_size(raw) };
        (block > 0).then_some(TensorType(raw))
    }

    pub fn raw(self) -> sys::ggml_type {
        self.0
    }

    /// Elements per block.
    pub fn block_elements(self) -> usize {
        // SAFETY: constructed only for valid types (see `from_raw`).
        unsafe { sys::ggml_blck_size(self.0) as usize }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        // SAFETY: as above.
        unsafe { sys::ggml_type_size(self.0) }
    }

    pub fn name(self) -> &'static str {
        // SAFETY: as above; ggml returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(sys::ggml_type_name(self.0)) }
            .to_str()
            .unwrap_or("?")
    }

    /// Bytes of a tensor of this type and shape, or `None` if rows do not
    /// split into whole blocks or the size overflows.
    pub fn data_bytes(self, ne: &[usize]) -> Option<u64> {
        let row = *ne.first()?;
        if row % self.block_elements() != 0 {
            return None;
        }
        let row_bytes = (row / self.block_elements()) as u64 * self.block_bytes() as u64;
        ne[1..]
            .iter()
            .try_fold(row_bytes, |acc, &n| acc.checked_mul(n as u64))
    }
}

/// A tensor as whisper.cpp expects it: name, `ne` (innermost first), type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub ne: Vec<usize>,
    pub ttype: TensorType,
}

/// Every tensor whisper.cpp loads for these hyperparameters, in the order of
/// OpenAI's checkpoints. Vectors, conv biases and positional embeddings are
/// f32; conv weights f16 (f32 in f32 models); other matrices `weight_type`.
pub fn expected_tensors(h: &Hparams, weight_type: TensorType) -> Vec<TensorSpec> {
    let conv_type = if weight_type == TensorType::F32 {
        TensorType::F32
    } else {
        TensorType::F16
    };
    let a = h.n_audio_state as usize;
    let t = h.n_text_state as usize;
    let mut out = Vec::new();
    let mut push = |name: String, ne: &[usize], ttype: TensorType| {
        out.push(TensorSpec {
            name,
            ne: ne.to_vec(),
            ttype,
        })
    };
    let f32 = TensorType::F32;
    let w = weight_type;
    let attention = |push: &mut dyn FnMut(String, &[usize], TensorType), p: &str, n: usize| {
        push(format!("{p}.query.weight"), &[n, n], w);
        push(format!("{p}.query.bias"), &[n], f32);
        push(format!("{p}.key.weight"), &[n, n], w);
        push(format!("{p}.value.weight"), &[n, n], w);
        push(format!("{p}.value.bias"), &[n], f32);
        push(format!("{p}.out.weight"), &[n, n], w);
        push(format!("{p}.out.bias"), &[n], f32);
    };
    let norm = |push: &mut dyn FnMut(String, &[usize], TensorType), p: &str, n: usize| {
        push(format!("{p}.weight"), &[n], f32);
        push(format!("{p}.bias"), &[n], f32);
    };
    let mlp = |push: &mut dyn FnMut(String, &[usize], TensorType), p: &str, n: usize| {
        push(format!("{p}.mlp.0.weight"), &[n, 4 * n], w);
        push(format!("{p}.mlp.0.bias"), &[4 * n], f32);
        push(format!("{p}.mlp.2.weight"), &[4 * n, n], w);
        push(format!("{p}.mlp.2.bias"), &[n], f32);
        norm(push, &format!("{p}.mlp_ln"), n);
    };

    let mels = h.n_mels as usize;
    push("encoder.conv1.weight".into(), &[3, mels, a], conv_type);
    push("encoder.conv1.bias".into(), &[1, a], f32);
    push("encoder.conv2.weight".into(), &[3, a, a], conv_type);
    push("encoder.conv2.bias".into(), &[1, a], f32);
    push(
        "encoder.positional_embedding".into(),
        &[a, h.n_audio_ctx as usize],
        f32,
    );
    for i in 0..h.n_audio_layer {
        let p = format!("encoder.blocks.{i}");
        attention(&mut push, &format!("{p}.attn"), a);
        norm(&mut push, &format!("{p}.attn_ln"), a);
        mlp(&mut push, &p, a);
    }
    norm(&mut push, "encoder.ln_post", a);

    push(
        "decoder.token_embedding.weight".into(),
        &[t, h.n_vocab as usize],
        w,
    );
    push(
        "decoder.positional_embedding".into(),
        &[t, h.n_text_ctx as usize],
        f32,
    );
    for i in 0..h.n_text_layer {
        let p = format!("decoder.blocks.{i}");
        attention(&mut push, &format!("{p}.attn"), t);
        norm(&mut push, &format!("{p}.attn_ln"), t);
        attention(&mut push, &format!("{p}.cross_attn"), t);
        norm(&mut push, &format!("{p}.cross_attn_ln"), t);
        mlp(&mut push, &p, t);
    }
    norm(&mut push, "decoder.ln", t);
    out
}

/// What [`validate`] found in a well-formed file.
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
    pos: u64,
    len: u64,
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

    fn invalid(&self, reason: String) -> ModelError {
        ModelError::InvalidGgml {
            path: self.path.clone(),
            reason,
        }
    }
}

fn describe(t: &TensorHeader) -> String {
    format!("tensor {:?} ({} {:?})", t.name, t.ttype.name(), t.ne)
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
