//! Interleaved multi-channel audio to mono.

/// Averages the channels of interleaved `input` (`channels` samples per frame)
/// into `mono`, one sample per frame, and returns the number of frames written:
/// the whole frames of `input`, capped at `mono.len()`. A trailing partial
/// frame is ignored; `channels == 0` writes nothing.
///
/// Real-time safe. No allocation, no locks, one bounded pass over the input.
pub fn downmix(input: &[f32], channels: u16, mono: &mut [f32]) -> usize {
    let channels = usize::from(channels);
    if channels == 0 {
        return 0;
    }
    if channels == 1 {
        let frames = input.len().min(mono.len());
        mono[..frames].copy_from_slice(&input[..frames]);
        return frames;
    }
    let scale = 1.0 / channels as f32;
    let mut frames = 0;
    for (frame, out) in input.chunks_exact(channels).zip(mono.iter_mut()) {
        *out = frame.iter().sum::<f32>() * scale;
        frames += 1;
    }
    frames
}
