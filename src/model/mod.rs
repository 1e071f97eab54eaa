//! Model files: import CTranslate2 Whisper models into whisper.cpp's ggml
//! format, quantize them, and validate a ggml file before whisper.cpp sees it.

/// Why a model file or directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Invalid(String),
}
pub mod ggml;
