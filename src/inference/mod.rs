//! Inference: quantized Whisper through whisper-rs, and the streaming policy
//! that turns repeated passes over a growing window into partial and final
//! text.
//!
//! - [`engine`]: one shared model context; live workers share one decoding state.
//! - [`load`]: load-adaptive inference (threads and partial passes from load and lag).
//! - [`decode`]: the seam the policy decodes through (Whisper, or a script).
//! - [`guard`]: checks against invented text and repetition loops.
//! - [`stream`]: the streaming policy (what to decode, what to commit).
//! - [`window`]: the live model, whisper's windows cut to what live passes use.
//! - [`worker`]: a thread per source running the policy on VAD output.
//!
//! Nothing here runs on the real-time thread: every function is
//! **Not real-time safe.**

pub mod decode;
pub mod engine;
pub mod guard;
pub mod load;
#[cfg(test)]
mod script;
pub mod stream;
pub mod window;
pub mod worker;

pub use engine::{AbortHandle, DecodeRequest, Decoder, Hypothesis, Model, SharedDecoder, Word};

/// Why inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("whisper.cpp could not load model {path}: {detail}")]
    Load { path: String, detail: String },
    #[error("whisper.cpp could not create a decoding state: {0}")]
    State(String),
    #[error("whisper.cpp failed to decode: {0}")]
    Decode(String),
    /// An abortable pass was cut short through its [`AbortHandle`].
    #[error("the pass was aborted")]
    Aborted,
    #[error("inference panicked: {0}")]
    Panic(String),
}
