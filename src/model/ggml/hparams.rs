//! The ggml header's hyperparameters, checked against the shapes real
//! Whisper models have.

use super::{TensorType, QNT_VERSION, QNT_VERSION_FACTOR};
use whisper_rs::whisper_rs_sys as sys;

const MIN_N_VOCAB: i32 = 51_864;
const MAX_N_VOCAB: i32 = 60_000;

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
    pub(super) fn fields(&self) -> [i32; 11] {
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

    pub(super) fn from_fields(f: [i32; 11]) -> Hparams {
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
            // Checked: a crafted count can overflow (and, wrapped, match).
            if heads.checked_mul(HEAD_SIZE) != Some(self.n_audio_state) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// tiny.en's header, as whisper.cpp's converter writes it (f16).
    fn tiny() -> Hparams {
        Hparams {
            n_vocab: 51_864,
            n_audio_ctx: AUDIO_CTX,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: TEXT_CTX,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
            ftype: 1,
        }
    }

    #[test]
    fn tiny_passes() {
        assert_eq!(tiny().check(), Ok(()));
    }

    /// 6 + 2^26 heads of 64 wrap around i32 to exactly 384: the check once
    /// overflowed (a panic in debug builds, acceptance in release ones).
    #[test]
    fn head_count_that_overflows_is_refused_by_name() {
        for head in [6 + (1 << 26), i32::MAX, i32::MIN, -6] {
            let audio = Hparams {
                n_audio_head: head,
                ..tiny()
            };
            let err = audio.check().unwrap_err();
            assert!(err.starts_with(&format!("n_audio_head = {head}:")), "{err}");
            let text = Hparams {
                n_text_head: head,
                ..tiny()
            };
            let err = text.check().unwrap_err();
            assert!(err.starts_with(&format!("n_text_head = {head}:")), "{err}");
        }
    }
}
