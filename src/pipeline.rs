//! The live pipeline, wired: for each source a feed (a capture device, or a
//! WAV file paced at 1x), a lock-free ring, a pump thread (chunks sized by
//! the buffer sizer, resampling to 16 kHz, voice activity) and an inference
//! worker; events leave on one channel.
//!
//! Threads per source:
//!
//! | thread          | runs                                   | may block on        |
//! |-----------------|----------------------------------------|---------------------|
//! | device callback | [`crate::capture`] (real-time)         | nothing             |
//! | file feeder     | paced pushes into the ring (file only) | its own sleep       |
//! | pump            | ring -> resampler -> VAD -> worker     | the worker channel  |
//! | worker          | Whisper passes, streaming policy       | inference, events   |
//!
//! plus one sizer thread for the whole pipeline. Nothing downstream can make
//! the callback wait: a stalled pump fills the ring, and what does not fit
//! is counted as overflow, never dropped silently.
//!
//! Stopping ([`Pipeline::stop`]) stops the feeds first, then each pump drains
//! its ring to the last sample, flushes the resampler and closes any open
//! utterance, and each worker commits what is left before it ends.
//!
//! Not real-time safe.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::capture::{CaptureSpec, CaptureStats, CaptureStream};
use crate::dsp::{self, Resampler};
use crate::event::{Event, Source};
use crate::handoff::{self, ChunkReader, Producer, RingCounters};
use crate::inference::stream::{StreamConfig, StreamStats};
use crate::inference::worker::{Worker, WorkerReport};
use crate::inference::{InferenceError, Model};
use crate::sizer::{LoadSource, SizerThread};
use crate::vad::{Segmenter, VadConfig, VadEvent};

/// Audio the ring holds before it overflows.
pub const RING_DURATION: Duration = Duration::from_secs(4);
/// VAD events the pump may queue for a worker (about 30 s of 30 ms chunks).
const WORKER_QUEUE_EVENTS: usize = 1024;
/// Block the file feeder pushes at a time, like a device period.
const FEED_BLOCK: Duration = Duration::from_millis(10);
/// The level reported for digital silence.
const SILENCE_DB: f32 = -120.0;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Device(#[from] crate::capture::DeviceError),
    #[error(transparent)]
    AudioFile(#[from] dsp::AudioFileError),
    #[error(transparent)]
    Dsp(#[from] dsp::DspError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("cannot write the recording {path}: {detail}")]
    Record { path: PathBuf, detail: String },
    #[error("cannot start a pipeline thread: {0}")]
    Thread(std::io::Error),
}

/// Where a source's audio comes from.
#[derive(Debug, Clone)]
pub enum Feed {
    /// A capture device.
    Device(CaptureSpec),
    /// A WAV file played into the pipeline at 1x, as a device would.
    File(PathBuf),
}

/// One source to run.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub source: Source,
    pub feed: Feed,
    /// Save the captured audio (mono, at the device's rate, 16-bit) here.
    pub record: Option<PathBuf>,
}

/// Settings shared by every source.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Whisper threads per worker.
    pub threads: usize,
    /// Emit partial hypotheses.
    pub partials: bool,
    pub vad: VadConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            threads: 2,
            partials: true,
            vad: VadConfig {
                // A short hangover commits a phrase soon after it ends; a
                // pause this long between words only splits an utterance,
                // which loses nothing.
                hangover: Duration::from_millis(300),
                ..VadConfig::default()
            },
        }
    }
}

/// Live numbers of one source, for the status line and the monitor.
#[derive(Debug)]
pub struct SourceStats {
    pub source: Source,
    /// The feed's sample rate (the ring's samples are mono at this rate).
    pub rate_hz: u32,
    pub ring: Arc<RingCounters>,
    pub ring_capacity: usize,
    /// Ring fill, per mille, as the pump last saw it.
    pub ring_fill_permille: AtomicU32,
    /// Input level of the last chunk, dBFS x 100.
    pub level_db_x100: AtomicI32,
    /// 16 kHz samples handed to the VAD.
    pub samples_16k: AtomicU64,
    /// Device callbacks, xruns, priority (devices only).
    pub capture: Option<Arc<CaptureStats>>,
    /// Passes, lag, commits.
    pub stream: Arc<StreamStats>,
    /// Recording errors (the recording stops; the transcript goes on).
    pub record_errors: AtomicU64,
}

impl SourceStats {
    pub fn ring_fill(&self) -> f32 {
        self.ring_fill_permille.load(Ordering::Relaxed) as f32 / 1000.0
    }

    pub fn level_db(&self) -> f32 {
        self.level_db_x100.load(Ordering::Relaxed) as f32 / 100.0
    }
}

/// What one source did, once stopped.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub source: Source,
    pub rate_hz: u32,
    /// Samples the feed offered to the ring (device frames, or file frames).
    pub offered: u64,
    /// Samples that did not fit in the ring (lost, and counted).
    pub overflowed: u64,
    /// Samples the pump took out of the ring.
    pub pumped: u64,
    /// 16 kHz samples handed to the VAD.
    pub samples_16k: u64,
    pub worker: WorkerReport,
}

struct Running {
    stats: Arc<SourceStats>,
    capture: Option<CaptureStream>,
    feeder: Option<JoinHandle<()>>,
    pump: JoinHandle<()>,
    worker: Worker,
}

/// A running pipeline.
pub struct Pipeline {
    clock: Instant,
    stop: Arc<AtomicBool>,
    sizer: Option<SizerThread>,
    chunk_ms: Arc<AtomicU32>,
    running: Vec<Running>,
}

impl Pipeline {
    /// Opens every source and starts its threads. Events go to `events`.
    /// If any source fails to open, the ones already started are stopped.
    pub fn start(
        model: &Model,
        config: &PipelineConfig,
        sources: &[SourceConfig],
        events: Sender<Event>,
    ) -> Result<Pipeline, PipelineError> {
        let clock = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // The sizer starts first so every pump reads its size; it sees the
        // sources once they are all open.
        let load = PipelineLoad::default();
        let seen = Arc::clone(&load.sources);
        let sizer = SizerThread::spawn(load).map_err(PipelineError::Thread)?;
        let mut pipeline = Pipeline {
            clock,
            stop,
            chunk_ms: sizer.size_ms(),
            sizer: Some(sizer),
            running: Vec::new(),
        };
        for source in sources {
            match pipeline.start_source(model, config, source, events.clone()) {
                Ok(running) => pipeline.running.push(running),
                Err(e) => {
                    pipeline.stop();
                    return Err(e);
                }
            }
        }
        let _ = seen.set(pipeline.stats());
        Ok(pipeline)
    }

    fn start_source(
        &self,
        model: &Model,
        config: &PipelineConfig,
        source: &SourceConfig,
        events: Sender<Event>,
    ) -> Result<Running, PipelineError> {
        let feed_done = Arc::new(AtomicBool::new(false));
        let (capture, consumer, feeder, rate_hz) = match &source.feed {
            Feed::Device(spec) => {
                // The ring's size depends on the device's rate, known only
                // once it is open: open at the highest common rate's size.
                let capacity = handoff::capacity_for(RING_DURATION, 192_000, 1);
                let (stream, consumer) = CaptureStream::start(spec, capacity)?;
                stream.log_realtime_status();
                let rate = stream.rate_hz();
                (Some(stream), consumer, None, rate)
            }
            Feed::File(path) => {
                let audio = dsp::wav::read(path)?;
                let mut mono = vec![0.0; audio.frames()];
                dsp::downmix(&audio.samples, audio.channels, &mut mono);
                let capacity = handoff::capacity_for(RING_DURATION, audio.rate_hz, 1);
                let (producer, consumer) = handoff::ring(capacity);
                let done = Arc::clone(&feed_done);
                let stop = Arc::clone(&self.stop);
                let rate = audio.rate_hz;
                let feeder = std::thread::Builder::new()
                    .name(format!("hark-feed-{}", source.source))
                    .spawn(move || feed_file(mono, rate, producer, &stop, &done))
                    .map_err(PipelineError::Thread)?;
                (None, consumer, Some(feeder), rate)
            }
        };
        let (to_worker, from_pump) = crossbeam_channel::bounded(WORKER_QUEUE_EVENTS);
        let mut stream_config = StreamConfig::new(source.source);
        stream_config.partials = config.partials;
        stream_config.hangover = config.vad.hangover;
        let worker = Worker::spawn(model, config.threads, stream_config, self.clock, from_pump, events)?;
        let stats = Arc::new(SourceStats {
            source: source.source,
            rate_hz,
            ring: consumer.counters(),
            ring_capacity: consumer.capacity(),
            ring_fill_permille: AtomicU32::new(0),
            level_db_x100: AtomicI32::new((SILENCE_DB * 100.0) as i32),
            samples_16k: AtomicU64::new(0),
            capture: capture.as_ref().map(CaptureStream::stats),
            stream: worker.stats(),
            record_errors: AtomicU64::new(0),
        });
        let recorder = match &source.record {
            Some(path) => Some(Recorder::create(path, rate_hz)?),
            None => None,
        };
        let pump = Pump {
            reader: ChunkReader::new(consumer, Arc::clone(&self.chunk_ms), rate_hz),
            resampler: Resampler::new(rate_hz)?,
            vad: Segmenter::new(config.vad.clone()),
            to_worker,
            stats: Arc::clone(&stats),
            recorder,
            chunk: Vec::new(),
            resampled: Vec::new(),
            vad_events: Vec::new(),
        };
        let stop = Arc::clone(&self.stop);
        let pump = std::thread::Builder::new()
            .name(format!("hark-pump-{}", source.source))
            .spawn(move || pump.run(&stop, &feed_done))
            .map_err(PipelineError::Thread)?;
        Ok(Running {
            stats,
            capture,
            feeder,
            pump,
            worker,
        })
    }

    /// The clock every event's `emitted` time is measured on.
    pub fn clock(&self) -> Instant {
        self.clock
    }

    /// Live numbers of every source.
    pub fn stats(&self) -> Vec<Arc<SourceStats>> {
        self.running.iter().map(|r| Arc::clone(&r.stats)).collect()
    }

    /// The pump's current chunk (the buffer size), in milliseconds.
    pub fn chunk_ms(&self) -> u32 {
        self.chunk_ms.load(Ordering::Relaxed)
    }

    /// How many times the buffer sizer changed the size.
    pub fn size_changes(&self) -> u64 {
        self.sizer.as_ref().map_or(0, SizerThread::changes)
    }

    /// True once every file feed has played to its end (always false for
    /// device feeds).
    pub fn files_done(&self) -> bool {
        self.running.iter().all(|r| r.feeder.as_ref().is_some_and(JoinHandle::is_finished))
    }

    /// Stops the feeds, drains every ring, commits what is left, and
    /// returns what each source did.
    pub fn stop(mut self) -> Vec<SourceReport> {
        self.stop.store(true, Ordering::Release);
        let mut reports = Vec::new();
        // Stop every feed before joining any worker: a worker finishing its
        // last pass takes seconds, and another source's device would keep
        // filling a ring its stopped pump no longer drains.
        let mut stopped = Vec::new();
        for mut running in self.running.drain(..) {
            if let Some(capture) = running.capture.take() {
                capture.stop();
            }
            if let Some(feeder) = running.feeder.take() {
                let _ = feeder.join();
            }
            stopped.push(running);
        }
        for running in stopped {
            let _ = running.pump.join();
            let worker = running.worker.join();
            let stats = &running.stats;
            reports.push(SourceReport {
                source: stats.source,
                rate_hz: stats.rate_hz,
                offered: stats.ring.offered(),
                overflowed: stats.ring.overflowed.load(Ordering::Acquire),
                pumped: stats.ring.popped.load(Ordering::Acquire),
                samples_16k: stats.samples_16k.load(Ordering::Acquire),
                worker,
            });
        }
        if let Some(sizer) = self.sizer.take() {
            sizer.stop();
        }
        reports
    }
}

/// Plays `mono` into the ring in [`FEED_BLOCK`] blocks at 1x.
fn feed_file(mono: Vec<f32>, rate_hz: u32, mut producer: Producer, stop: &AtomicBool, done: &AtomicBool) {
    let block = ((rate_hz as f64 * FEED_BLOCK.as_secs_f64()) as usize).max(1);
    let started = Instant::now();
    for (i, chunk) in mono.chunks(block).enumerate() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let due = started + Duration::from_secs_f64((i * block) as f64 / rate_hz as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.push(chunk);
    }
    done.store(true, Ordering::Release);
}

struct Pump {
    reader: ChunkReader,
    resampler: Resampler,
    vad: Segmenter,
    to_worker: Sender<VadEvent>,
    stats: Arc<SourceStats>,
    recorder: Option<Recorder>,
    /// The chunk being processed (reused).
    chunk: Vec<f32>,
    resampled: Vec<f32>,
    vad_events: Vec<VadEvent>,
}

impl Pump {
    fn run(mut self, stop: &AtomicBool, feed_done: &AtomicBool) {
        loop {
            // Read the flags before draining, so nothing pushed before they
            // were set is left behind.
            let ending = stop.load(Ordering::Acquire) || feed_done.load(Ordering::Acquire);
            let mut chunk = std::mem::take(&mut self.chunk);
            while let Some(next) = self.reader.next_chunk() {
                chunk.clear();
                chunk.extend_from_slice(next);
                if !self.process(&chunk) {
                    return;
                }
            }
            self.chunk = chunk;
            self.note_fill();
            if ending {
                let rest = self.reader.take_partial().to_vec();
                self.process(&rest);
                break;
            }
            let wait_ms = (self.reader.chunk_len() as u64 * 1000 / self.stats.rate_hz as u64 / 3).max(2);
            std::thread::sleep(Duration::from_millis(wait_ms));
        }
        self.resampled.clear();
        self.resampler.finish(&mut self.resampled);
        self.vad.push(&self.resampled, &mut self.vad_events);
        self.vad.finish(&mut self.vad_events);
        self.stats
            .samples_16k
            .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
        self.send_events();
        if let Some(recorder) = self.recorder.take() {
            if recorder.finish().is_err() {
                self.stats.record_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One chunk through level, recording, resampler and VAD. Returns false
    /// when the worker is gone.
    fn process(&mut self, chunk: &[f32]) -> bool {
        if chunk.is_empty() {
            return true;
        }
        self.stats
            .level_db_x100
            .store((level_db(chunk) * 100.0) as i32, Ordering::Relaxed);
        if let Some(recorder) = &mut self.recorder {
            if let Err(e) = recorder.write(chunk) {
                tracing::error!("recording stopped: {e}");
                self.stats.record_errors.fetch_add(1, Ordering::Relaxed);
                self.recorder = None;
            }
        }
        self.resampled.clear();
        self.resampler.push(chunk, &mut self.resampled);
        self.stats
            .samples_16k
            .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
        self.vad.push(&self.resampled, &mut self.vad_events);
        self.send_events()
    }

    fn send_events(&mut self) -> bool {
        for event in self.vad_events.drain(..) {
            if self.to_worker.send(event).is_err() {
                return false;
            }
        }
        true
    }

    fn note_fill(&self) {
        let fill = self.reader.consumer().fill_ratio();
        self.stats
            .ring_fill_permille
            .store((fill * 1000.0) as u32, Ordering::Relaxed);
    }
}

/// RMS level in dBFS.
fn level_db(chunk: &[f32]) -> f32 {
    let power = chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len().max(1) as f32;
    if power <= 0.0 {
        return SILENCE_DB;
    }
    (10.0 * power.log10()).max(SILENCE_DB)
}

/// Saves captured audio as 16-bit mono WAV, on the pump thread.
struct Recorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl Recorder {
    fn create(path: &Path, rate_hz: u32) -> Result<Recorder, PipelineError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate_hz,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| PipelineError::Record {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(Recorder {
            writer,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, chunk: &[f32]) -> Result<(), String> {
        for &s in chunk {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            self.writer
                .write_sample(v)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        let path = self.path;
        self.writer
            .finalize()
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The sizer's view of the pipeline: the fullest ring and all xruns.
#[derive(Default)]
struct PipelineLoad {
    sources: Arc<OnceLock<Vec<Arc<SourceStats>>>>,
}

impl PipelineLoad {
    fn sources(&self) -> &[Arc<SourceStats>] {
        self.sources.get().map_or(&[], Vec::as_slice)
    }
}

impl LoadSource for PipelineLoad {
    fn ring_fill(&self) -> f32 {
        self.sources().iter().map(|s| s.ring_fill()).fold(0.0, f32::max)
    }

    fn xruns_total(&self) -> u64 {
        self.sources()
            .iter()
            .filter_map(|s| s.capture.as_ref())
            .map(|c| c.xruns.load(Ordering::Relaxed) + c.stream_errors.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_of_full_scale_square_is_zero_db() {
        assert!((level_db(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-4);
        assert_eq!(level_db(&[0.0; 16]), SILENCE_DB);
    }
}
