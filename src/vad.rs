//! vad (placeholder until the dsp branch lands)
pub enum VadEvent {
    SpeechStart { start: u64 },
    Audio { start: u64, samples: Vec<f32> },
    SpeechEnd { end: u64 },
}
