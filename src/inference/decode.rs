//! The seam between the streaming policy and Whisper: the policy decodes
//! through [`Decode`], so its state machine runs with the real decoder in
//! production and with a scripted one in tests, at any speed.
//!
//! Not real-time safe.

use super::engine::{DecodeRequest, Decoder, Hypothesis};
use super::InferenceError;

/// Something that turns 16 kHz mono audio into a hypothesis.
pub trait Decode {
    /// Decodes `audio` (16 kHz mono); word times are relative to its start.
    fn decode(
        &mut self,
        audio: &[f32],
        request: &DecodeRequest,
    ) -> Result<Hypothesis, InferenceError>;
}

impl Decode for Decoder {
    fn decode(
        &mut self,
        audio: &[f32],
        request: &DecodeRequest,
    ) -> Result<Hypothesis, InferenceError> {
        Decoder::decode(self, audio, request, None)
    }
}
