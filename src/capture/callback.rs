//! The body of the device callback: convert, downmix, push. Everything here
//! runs on the real-time thread (see the contract in the crate docs).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use cpal::{FromSample, Sample, SampleFormat};

use super::priority::{self, RealtimeRequest};
use super::stats::CaptureStats;
use crate::handoff::Producer;

/// Frames converted per inner step; device buffers larger than this are
/// processed in several steps over the same preallocated scratch.
pub const SCRATCH_FRAMES: usize = 1024;

/// The callback's state: preallocated scratch, the ring's producer end and
/// the shared counters. Built off the real-time thread, then moved into the
/// cpal callback.
pub struct CallbackBody {
    channels: usize,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
    producer: Producer,
    stats: Arc<CaptureStats>,
    realtime: Option<RealtimeRequest>,
}

impl CallbackBody {
    /// Preallocates scratch for `channels`-channel input.
    ///
    /// Not real-time safe.
    pub fn new(
        channels: u16,
        producer: Producer,
        stats: Arc<CaptureStats>,
        realtime: RealtimeRequest,
    ) -> Self {
        let channels = usize::from(channels.max(1));
        CallbackBody {
            channels,
            interleaved: vec![0.0; SCRATCH_FRAMES * channels],
            mono: vec![0.0; SCRATCH_FRAMES],
            producer,
            stats,
            realtime: Some(realtime),
        }
    }

    /// Handles one device buffer of any sample format: on the first call
    /// applies the real-time request (see [`priority`]), then converts,
    /// downmixes and pushes the frames, counting everything.
    ///
    /// Real-time safe.
    pub fn on_data(&mut self, data: &cpal::Data) {
        match data.sample_format() {
            SampleFormat::F32 => self.on_samples(data.as_slice::<f32>().unwrap_or(&[])),
            SampleFormat::I16 => self.on_samples(data.as_slice::<i16>().unwrap_or(&[])),
            SampleFormat::I32 => self.on_samples(data.as_slice::<i32>().unwrap_or(&[])),
            SampleFormat::U16 => self.on_samples(data.as_slice::<u16>().unwrap_or(&[])),
            SampleFormat::U8 => self.on_samples(data.as_slice::<u8>().unwrap_or(&[])),
            SampleFormat::I8 => self.on_samples(data.as_slice::<i8>().unwrap_or(&[])),
            SampleFormat::I24 => self.on_samples(data.as_slice::<cpal::I24>().unwrap_or(&[])),
            SampleFormat::U24 => self.on_samples(data.as_slice::<cpal::U24>().unwrap_or(&[])),
            SampleFormat::U32 => self.on_samples(data.as_slice::<u32>().unwrap_or(&[])),
            SampleFormat::I64 => self.on_samples(data.as_slice::<i64>().unwrap_or(&[])),
            SampleFormat::U64 => self.on_samples(data.as_slice::<u64>().unwrap_or(&[])),
            SampleFormat::F64 => self.on_samples(data.as_slice::<f64>().unwrap_or(&[])),
            // A format this build does not know: count it as a stream error.
            _ => self.stats.record_error(cpal::ErrorKind::UnsupportedConfig),
        }
    }

    /// Handles one interleaved buffer of samples of type `T`.
    ///
    /// Real-time safe.
    pub fn on_samples<T>(&mut self, samples: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let started = Instant::now();
        if let Some(request) = self.realtime.take() {
            priority::apply(request, &self.stats);
        }
        let frames = samples.len() / self.channels;
        let step = SCRATCH_FRAMES * self.channels;
        for block in samples[..frames * self.channels].chunks(step) {
            let block_frames = block.len() / self.channels;
            let interleaved = &mut self.interleaved[..block.len()];
            convert_into(block, interleaved);
            let mono = &mut self.mono[..block_frames];
            // Channel counts come from cpal as u16, so this cannot truncate.
            crate::dsp::downmix(interleaved, self.channels as u16, mono);
            self.producer.push(mono);
        }
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
        self.stats
            .frames_captured
            .fetch_add(frames as u64, Ordering::Release);
        let elapsed_ns = started.elapsed().as_nanos() as u64;
        self.stats
            .max_callback_ns
            .fetch_max(elapsed_ns, Ordering::Relaxed);
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<CaptureStats> {
        Arc::clone(&self.stats)
    }
}

/// Converts samples of any cpal format to `f32` in -1.0..1.0.
/// `out` must be as long as `input`.
///
/// Real-time safe.
pub fn convert_into<T>(input: &[T], out: &mut [f32])
where
    T: Sample,
    f32: FromSample<T>,
{
    for (o, &s) in out.iter_mut().zip(input) {
        *o = s.to_sample::<f32>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff;

    #[test]
    fn integer_formats_map_to_unit_range() {
        let mut out = [0.0; 3];
        convert_into(&[i16::MIN, 0, i16::MAX], &mut out);
        assert_eq!(out[0], -1.0);
        assert_eq!(out[1], 0.0);
        assert!((out[2] - 1.0).abs() < 1e-4);
        convert_into(&[0u16, 32768, 65535], &mut out);
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn large_buffers_are_processed_in_steps_without_loss() {
        let (producer, mut consumer) = handoff::ring(10_000);
        let stats = Arc::new(CaptureStats::new(producer.counters()));
        let request = RealtimeRequest {
            pin_core: None,
            fifo_priority: None,
        };
        let mut body = CallbackBody::new(2, producer, Arc::clone(&stats), request);
        let frames = SCRATCH_FRAMES * 3 + 7;
        let stereo: Vec<f32> = (0..frames).flat_map(|i| [i as f32, i as f32]).collect();
        body.on_samples(&stereo);
        let mut out = vec![0.0; frames];
        assert_eq!(consumer.pop(&mut out), frames);
        assert!(out.iter().enumerate().all(|(i, &s)| s == i as f32));
        assert_eq!(stats.frames_captured.load(Ordering::Acquire), frames as u64);
        assert_eq!(stats.overflowed_samples(), 0);
    }
}
