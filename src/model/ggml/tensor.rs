//! ggml element types and the tensors whisper.cpp expects.

use std::ffi::CStr;

use whisper_rs::whisper_rs_sys as sys;

use super::Hparams;

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
