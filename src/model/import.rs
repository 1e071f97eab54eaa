//! CTranslate2 Whisper model directory -> whisper.cpp ggml file (float16).
//!
//! The hyperparameters come from the variables' shapes and the stored head
//! counts, so any CTranslate2 Whisper size converts. Fused projections are
//! split (self-attention QKV, cross-attention KV); the key projections have no
//! bias in Whisper, so CTranslate2's zero key biases are checked and dropped.

use std::path::Path;

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::ct2::{Ct2Model, Dtype};
use super::ggml::{
    expected_tensors, validate, GgmlInfo, GgmlWriter, Hparams, Preamble, TensorType,
};
use super::{mel, vocab, write_atomically, ModelError};

/// Files a CTranslate2 Whisper model directory must hold.
pub const MODEL_FILE: &str = "model.bin";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// CTranslate2's code for the exact (erf) GELU, Whisper's activation.
const CT2_ACTIVATION_GELU: i64 = 3;
/// ggml_ftype of a float16 model.
const FTYPE_F16: i32 = 1;

/// Converts the CTranslate2 Whisper model in `dir` into a float16 ggml file at
/// `output` (written atomically), then validates the result.
/// Not real-time safe.
pub fn import_ct2(dir: &Path, output: &Path) -> Result<GgmlInfo, ModelError> {
    for file in [MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE] {
        if !dir.join(file).is_file() {
            return Err(ModelError::Ct2MissingFile {
                dir: dir.to_path_buf(),
                file,
            });
        }
    }
    check_config(&dir.join(CONFIG_FILE))?;
    let model = Ct2Model::read(&dir.join(MODEL_FILE))?;
    let hparams = ct2_hparams(&model)?;
    let tokens = vocab::read_tokens(&dir.join(TOKENIZER_FILE))?;
    if tokens.len() > hparams.n_vocab as usize {
        return Err(model.invalid(format!(
            "tokenizer has {} ordinary tokens but the embedding only {} rows",
            tokens.len(),
            hparams.n_vocab
        )));
    }
    let preamble = Preamble {
        hparams,
        mel_filters: mel::filterbank(hparams.n_mels as usize, mel::SAMPLE_RATE_HZ, mel::N_FFT),
        tokens,
    };

    write_atomically(output, |out| {
        let mut writer = GgmlWriter { out, path: output };
        writer.preamble(&preamble)?;
        for spec in expected_tensors(&hparams, TensorType::F16) {
            let source = tensor_source(&model, &spec.name)?;
            let elements: usize = spec.ne.iter().product();
            if source.elements() != elements {
                return Err(model.invalid(format!(
                    "{} needs {elements} values ({:?}), the model gives {}",
                    spec.name,
                    spec.ne,
                    source.elements()
                )));
            }
            let data = source.encode(spec.ttype)?;
            writer.tensor(&spec.name, &spec.ne, spec.ttype, &data)?;
        }
        Ok(())
    })?;
    validate(output)
}

/// The ggml hyperparameters of a parsed CTranslate2 model, after checking
/// that whisper.cpp's graph computes it (activation, norms) and that its
/// shapes are a real Whisper model's. Not real-time safe.
pub fn ct2_hparams(model: &Ct2Model) -> Result<Hparams, ModelError> {
    check_architecture(model)?;
    hparams(model)
}

/// Largest `config.json` read (Whisper's are about 2 KB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn check_config(path: &Path) -> Result<(), ModelError> {
    let bytes = super::read_capped(path, MAX_CONFIG_BYTES, "a Whisper config.json")?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ModelError::Ct2Invalid {
            path: path.to_path_buf(),
            reason: format!("not valid JSON: {e}"),
        })?;
    if !json.is_object() {
        return Err(ModelError::Ct2Invalid {
            path: path.to_path_buf(),
            reason: "not a JSON object".into(),
        });
    }
    Ok(())
}

/// Rejects Whisper variants whisper.cpp's fixed graph would compute wrongly.
fn check_architecture(model: &Ct2Model) -> Result<(), ModelError> {
    let flags = [
        ("decoder/activation", CT2_ACTIVATION_GELU),
        ("decoder/pre_norm", 1),
        ("decoder/scale_embeddings", 0),
        ("decoder/alibi", 0),
    ];
    for (name, wanted) in flags {
        if model.variables.contains_key(name) {
            let found = model.scalar(name)?;
            if found != wanted {
                return Err(model.invalid(format!(
                    "{name} is {found}, whisper.cpp supports only {wanted}"
                )));
            }
        }
    }
    Ok(())
}

fn count_layers(model: &Ct2Model, stack: &str) -> usize {
    (0..)
        .take_while(|i| {
            let prefix = format!("{stack}/layer_{i}/");
            model
                .variables
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(name, _)| name.starts_with(&prefix))
        })
        .count()
}

fn hparams(model: &Ct2Model) -> Result<Hparams, ModelError> {
    let to_i32 = |name: &str, value: usize| {
        i32::try_from(value).map_err(|_| model.invalid(format!("{name} = {value} is too large")))
    };
    // A stored count (an i64 scalar) must fit i32; negative ones are not
    // made huge by a cast first.
    let heads = |name: &str| {
        let value = model.scalar(name)?;
        i32::try_from(value).map_err(|_| model.invalid(format!("{name} = {value} is out of range")))
    };
    let embedding = model.shape("decoder/embeddings/weight", 2)?;
    let text_pos = model.shape("decoder/position_encodings/encodings", 2)?;
    let audio_pos = model.shape("encoder/position_encodings/encodings", 2)?;
    let conv1 = model.shape("encoder/conv1/weight", 3)?;
    let h = Hparams {
        n_vocab: to_i32("n_vocab", embedding[0])?,
        n_audio_ctx: to_i32("n_audio_ctx", audio_pos[0])?,
        n_audio_state: to_i32("n_audio_state", audio_pos[1])?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: to_i32("n_audio_layer", count_layers(model, "encoder"))?,
        n_text_ctx: to_i32("n_text_ctx", text_pos[0])?,
        n_text_state: to_i32("n_text_state", embedding[1])?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: to_i32("n_text_layer", count_layers(model, "decoder"))?,
        n_mels: to_i32("n_mels", conv1[1])?,
        ftype: FTYPE_F16,
    };
    h.check()
        .map_err(|reason| model.invalid(format!("derived hyperparameters: {reason}")))?;
    Ok(h)
}

/// The bytes of one ggml tensor inside a CTranslate2 variable.
struct Source<'a> {
    model: &'a Ct2Model,
    variable: String,
    dtype: Dtype,
    bytes: &'a [u8],
}

impl Source<'_> {
    fn elements(&self) -> usize {
        self.bytes.len() / self.dtype.size_bytes()
    }

    /// The bytes as `ttype`: copied when the types agree (float16 weights,
    /// the bulk of the model), else converted (round to nearest even).
    fn encode(&self, ttype: TensorType) -> Result<Vec<u8>, ModelError> {
        let same = matches!(
            (self.dtype, ttype),
            (Dtype::F16, TensorType::F16) | (Dtype::F32, TensorType::F32)
        );
        if same {
            return Ok(self.bytes.to_vec());
        }
        let values: Vec<f32> = match self.dtype {
            Dtype::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::Bf16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::Ct2Dtype {
                    path: self.model.path.clone(),
                    variable: self.variable.clone(),
                    dtype: other.name().to_string(),
                })
            }
        };
        if ttype == TensorType::F32 {
            return Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
        let mut halves = vec![f16::ZERO; values.len()];
        halves.convert_from_f32_slice(&values);
        Ok(halves.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// All of variable `name`.
fn whole<'a>(model: &'a Ct2Model, name: &str) -> Result<Source<'a>, ModelError> {
    part(model, name, 0, 1)
}

/// Part `index` of `parts` equal slices along the first axis of `name`.
fn part<'a>(
    model: &'a Ct2Model,
    name: &str,
    index: usize,
    parts: usize,
) -> Result<Source<'a>, ModelError> {
    let var = model.get(name)?;
    let rows = var.shape.first().copied().unwrap_or(1);
    if rows % parts != 0 {
        return Err(model.invalid(format!(
            "{name} has {rows} rows, cannot split into {parts} equal parts"
        )));
    }
    let len = var.bytes.len() / parts;
    Ok(Source {
        model,
        variable: name.to_string(),
        dtype: var.dtype,
        bytes: &var.bytes[index * len..(index + 1) * len],
    })
}

/// Checks that a fused bias's key part is zero (Whisper keys have no bias).
fn check_zero_key_bias(
    model: &Ct2Model,
    name: &str,
    index: usize,
    parts: usize,
) -> Result<(), ModelError> {
    let bias = part(model, name, index, parts)?;
    // +0.0 and -0.0 are both zero: ignore the sign bit of every element.
    let sign_bit = match bias.dtype {
        Dtype::F32 => 0x8000_0000u32.to_le_bytes().to_vec(),
        _ => 0x8000u16.to_le_bytes().to_vec(),
    };
    let nonzero = bias
        .bytes
        .chunks_exact(bias.dtype.size_bytes())
        .any(|c| c.iter().zip(&sign_bit).any(|(b, m)| b & !m != 0));
    if nonzero {
        return Err(model.invalid(format!(
            "{name}: the key bias is not zero, whisper.cpp has no key bias"
        )));
    }
    Ok(())
}

/// Where one ggml tensor's values are in the CTranslate2 variables.
fn tensor_source<'a>(model: &'a Ct2Model, name: &str) -> Result<Source<'a>, ModelError> {
    let whole = |ct2: &str| whole(model, ct2);
    let norm = |prefix: &str, field: &str| {
        let ct2_field = if field == "weight" { "gamma" } else { "beta" };
        whole(&format!("{prefix}/{ct2_field}"))
    };
    match name {
        "encoder.conv1.weight" => return whole("encoder/conv1/weight"),
        "encoder.conv1.bias" => return whole("encoder/conv1/bias"),
        "encoder.conv2.weight" => return whole("encoder/conv2/weight"),
        "encoder.conv2.bias" => return whole("encoder/conv2/bias"),
        "encoder.positional_embedding" => return whole("encoder/position_encodings/encodings"),
        "encoder.ln_post.weight" => return norm("encoder/layer_norm", "weight"),
        "encoder.ln_post.bias" => return norm("encoder/layer_norm", "bias"),
        "decoder.token_embedding.weight" => return whole("decoder/embeddings/weight"),
        "decoder.positional_embedding" => return whole("decoder/position_encodings/encodings"),
        "decoder.ln.weight" => return norm("decoder/layer_norm", "weight"),
        "decoder.ln.bias" => return norm("decoder/layer_norm", "bias"),
        _ => {}
    }
    // "encoder.blocks.3.attn.query.weight" -> stack "encoder", layer "3",
    // module "attn.query", field "weight".
    let unknown = || model.invalid(format!("no CTranslate2 source for tensor {name}"));
    let (stack, rest) = name.split_once(".blocks.").ok_or_else(unknown)?;
    let (layer, rest) = rest.split_once('.').ok_or_else(unknown)?;
    let (module, field) = rest.rsplit_once('.').ok_or_else(unknown)?;
    let p = format!("{stack}/layer_{layer}");
    let self_qkv = format!("{p}/self_attention/linear_0/{field}");
    let cross_kv = format!("{p}/attention/linear_1/{field}");
    match module {
        "attn.query" => part(model, &self_qkv, 0, 3),
        "attn.key" => {
            check_zero_key_bias(model, &format!("{p}/self_attention/linear_0/bias"), 1, 3)?;
            part(model, &self_qkv, 1, 3)
        }
        "attn.value" => part(model, &self_qkv, 2, 3),
        "attn.out" => whole(&format!("{p}/self_attention/linear_1/{field}")),
        "attn_ln" => norm(&format!("{p}/self_attention/layer_norm"), field),
        "cross_attn.query" => whole(&format!("{p}/attention/linear_0/{field}")),
        "cross_attn.key" => {
            check_zero_key_bias(model, &format!("{p}/attention/linear_1/bias"), 0, 2)?;
            part(model, &cross_kv, 0, 2)
        }
        "cross_attn.value" => part(model, &cross_kv, 1, 2),
        "cross_attn.out" => whole(&format!("{p}/attention/linear_2/{field}")),
        "cross_attn_ln" => norm(&format!("{p}/attention/layer_norm"), field),
        "mlp.0" => whole(&format!("{p}/ffn/linear_0/{field}")),
        "mlp.2" => whole(&format!("{p}/ffn/linear_1/{field}")),
        "mlp_ln" => norm(&format!("{p}/ffn/layer_norm"), field),
        _ => Err(unknown()),
    }
}
