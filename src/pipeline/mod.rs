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
//! # Device loss and the session timeline
//!
//! A device feed is supervised by its pump ([`recovery`] has the policy:
//! reopen, fall back to the default device, come back). While a source has
//! no stream its timeline would stop, and every later timestamp would run
//! behind wall time. So when a new stream starts, the pump first feeds
//! digital silence through the resampler and VAD, as long as the time
//! without audio (session time on the pipeline clock minus the source's
//! timeline position): later timestamps stay aligned with wall time, and the
//! VAD takes digital silence as silence, so nothing is transcribed from it.
//! The stretch is reported as an [`EventKind::Gap`] event (start and end in
//! the source's timeline, `text` says why) on the event channel, counted in
//! [`RecoveryStats`] and listed in [`SourceReport::gaps`]. A gap event may
//! reach the channel before the final text of speech that ended just before
//! the gap (the pump sends gaps, the worker sends text).
//!
//! Sample accounting survives swaps: every stream of a source counts into
//! one [`CaptureStats`] and one set of ring counters, and the pump drains the
//! old ring to its last sample before reading the new one.
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

use crate::capture::{CaptureSpec, CaptureStats};
use crate::dsp::{self, Resampler};
use crate::event::{Event, EventKind, Source};
use crate::handoff::{self, ChunkReader, Producer, RingCounters};
use crate::inference::stream::{StreamConfig, StreamStats};
use crate::inference::worker::{Worker, WorkerReport};
use crate::inference::{InferenceError, Model};
use crate::sizer::{LoadSource, SizerThread};
use crate::vad::{Segmenter, VadConfig, VadEvent};

pub mod recovery;

use recovery::{DeviceFeed, Opened};
pub use recovery::{GapRecord, RecoveryStats};

/// Audio the ring holds before it overflows.
pub const RING_DURATION: Duration = Duration::from_secs(4);
/// VAD events the pump may queue for a worker (about 30 s of 30 ms chunks).
const WORKER_QUEUE_EVENTS: usize = 1024;
/// Block the file feeder pushes at a time, like a device period.
const FEED_BLOCK: Duration = Duration::from_millis(10);
/// The level reported for digital silence.
const SILENCE_DB: f32 = -120.0;
/// The rate the VAD and the worker run at.
const TIMELINE_RATE_HZ: f64 = 16_000.0;
/// Digital silence fed per step when filling a gap, in samples.
const GAP_FILL_BLOCK_SAMPLES: usize = 4096;

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
    /// Cancel the loopback's echo in the microphone when both run.
    pub echo: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            threads: 2,
            partials: true,
            echo: true,
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
    /// Device losses, reopen attempts, fallbacks and gaps (devices only
    /// change it).
    pub recovery: Arc<RecoveryStats>,
    /// When the source's first sample was captured, on the pipeline clock:
    /// session time = timeline position + this.
    pub timeline_origin: Duration,
    /// The rate of the stream running now (a fallback device may differ).
    pub current_rate_hz: AtomicU32,
    /// Echo handling (the mic of a session with both sources, echo on).
    pub echo: Option<Arc<crate::echo::EchoStats>>,
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
    /// Stretches without captured audio, filled with digital silence.
    pub gaps: Vec<GapRecord>,
    /// Digital silence inserted for gaps, 16 kHz samples.
    pub gap_samples_16k: u64,
    /// Streams reopened after a loss.
    pub recoveries: u64,
}

struct Running {
    stats: Arc<SourceStats>,
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
    echo: Option<Arc<crate::echo::EchoStats>>,
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
            echo: None,
        };
        let mut stages = pipeline.echo_stages(config, sources);
        for source in sources {
            let stage = stages.remove(&source.source);
            match pipeline.start_source(model, config, source, events.clone(), stage) {
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

    /// The echo stages of a session with both sources (echo on).
    fn echo_stages(
        &mut self,
        config: &PipelineConfig,
        sources: &[SourceConfig],
    ) -> std::collections::HashMap<Source, crate::echo::PumpStage> {
        let has = |s: Source| sources.iter().any(|c| c.source == s);
        let mut stages = std::collections::HashMap::new();
        if config.echo && has(Source::Mic) && has(Source::Loopback) {
            let stats = Arc::new(crate::echo::EchoStats::new());
            let (reference, cancel) = crate::echo::PumpStage::pair(self.clock, Arc::clone(&stats));
            stages.insert(Source::Loopback, reference);
            stages.insert(Source::Mic, cancel);
            self.echo = Some(stats);
        }
        stages
    }

    /// Echo handling of this session, when on.
    pub fn echo_stats(&self) -> Option<Arc<crate::echo::EchoStats>> {
        self.echo.clone()
    }

    fn start_source(
        &self,
        model: &Model,
        config: &PipelineConfig,
        source: &SourceConfig,
        events: Sender<Event>,
        echo: Option<crate::echo::PumpStage>,
    ) -> Result<Running, PipelineError> {
        let feed_done = Arc::new(AtomicBool::new(false));
        let recovery = Arc::new(RecoveryStats::default());
        let (device, consumer, feeder, rate_hz) = match &source.feed {
            Feed::Device(spec) => {
                // The ring's size depends on the device's rate, known only
                // once it is open: open at the highest common rate's size.
                let capacity = handoff::capacity_for(RING_DURATION, 192_000, 1);
                let capture = Arc::new(CaptureStats::new(Arc::default()));
                let (feed, opened) =
                    DeviceFeed::open(spec, capacity, capture, Arc::clone(&recovery))?;
                (Some(feed), opened.consumer, None, opened.rate_hz)
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
        // The first sample's time: the device may hand over a block of
        // buffered audio as it opens, so count back from what arrived.
        let arrived = device.as_ref().map_or(0, |d| {
            d.capture_stats().frames_captured.load(Ordering::Acquire)
        });
        let timeline_origin = self
            .clock
            .elapsed()
            .saturating_sub(Duration::from_secs_f64(arrived as f64 / f64::from(rate_hz)));
        let (to_worker, from_pump) = crossbeam_channel::bounded(WORKER_QUEUE_EVENTS);
        let mut stream_config = StreamConfig::new(source.source);
        stream_config.partials = config.partials;
        let worker = Worker::spawn(
            model,
            config.threads,
            stream_config,
            self.clock,
            from_pump,
            events.clone(),
        )?;
        let stats = Arc::new(SourceStats {
            source: source.source,
            rate_hz,
            ring: consumer.counters(),
            ring_capacity: consumer.capacity(),
            ring_fill_permille: AtomicU32::new(0),
            level_db_x100: AtomicI32::new((SILENCE_DB * 100.0) as i32),
            samples_16k: AtomicU64::new(0),
            capture: device.as_ref().map(DeviceFeed::capture_stats),
            stream: worker.stats(),
            record_errors: AtomicU64::new(0),
            recovery,
            timeline_origin,
            current_rate_hz: AtomicU32::new(rate_hz),
            echo: match &echo {
                Some(crate::echo::PumpStage::Cancel { .. }) => self.echo.clone(),
                _ => None,
            },
        });
        let recorder = match &source.record {
            Some(path) => Some(Recorder::create(path, rate_hz)?),
            None => None,
        };
        let pump = Pump {
            reader: ChunkReader::new(consumer, Arc::clone(&self.chunk_ms), rate_hz),
            chunk_ms: Arc::clone(&self.chunk_ms),
            rate_hz,
            device,
            events,
            clock: self.clock,
            resampler: Resampler::new(rate_hz)?,
            vad: Segmenter::new(config.vad.clone()),
            to_worker,
            stats: Arc::clone(&stats),
            recorder,
            chunk: Vec::new(),
            resampled: Vec::new(),
            vad_events: Vec::new(),
            echo,
        };
        let stop = Arc::clone(&self.stop);
        let pump = std::thread::Builder::new()
            .name(format!("hark-pump-{}", source.source))
            .spawn(move || pump.run(&stop, &feed_done))
            .map_err(PipelineError::Thread)?;
        Ok(Running {
            stats,
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

    /// The pump's chunk as shared with the pump threads, for a monitor.
    pub fn chunk_ms_handle(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.chunk_ms)
    }

    /// How many times the buffer sizer changed the size.
    pub fn size_changes(&self) -> u64 {
        self.sizer.as_ref().map_or(0, SizerThread::changes)
    }

    /// True once every file feed has played to its end (always false for
    /// device feeds).
    pub fn files_done(&self) -> bool {
        self.running
            .iter()
            .all(|r| r.feeder.as_ref().is_some_and(JoinHandle::is_finished))
    }

    /// Stops the feeds, drains every ring, commits what is left, and
    /// returns what each source did.
    pub fn stop(mut self) -> Vec<SourceReport> {
        self.stop.store(true, Ordering::Release);
        let mut reports = Vec::new();
        // Every pump sees the stop flag at once and stops its own device
        // stream, so no source keeps filling a ring while another source's
        // worker finishes its last pass. File feeders end themselves.
        let mut stopped = Vec::new();
        for mut running in self.running.drain(..) {
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
                gaps: stats.recovery.gaps(),
                gap_samples_16k: stats.recovery.gap_samples_16k.load(Ordering::Acquire),
                recoveries: stats.recovery.recoveries.load(Ordering::Acquire),
            });
        }
        if let Some(sizer) = self.sizer.take() {
            sizer.stop();
        }
        reports
    }
}

/// Plays `mono` into the ring in [`FEED_BLOCK`] blocks at 1x.
fn feed_file(
    mono: Vec<f32>,
    rate_hz: u32,
    mut producer: Producer,
    stop: &AtomicBool,
    done: &AtomicBool,
) {
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
    chunk_ms: Arc<AtomicU32>,
    /// The rate of the ring being read.
    rate_hz: u32,
    /// The device stream and its recovery (device feeds only).
    device: Option<DeviceFeed>,
    /// Where gap events go.
    events: Sender<Event>,
    clock: Instant,
    resampler: Resampler,
    vad: Segmenter,
    to_worker: Sender<VadEvent>,
    stats: Arc<SourceStats>,
    recorder: Option<Recorder>,
    /// The chunk being processed (reused).
    chunk: Vec<f32>,
    resampled: Vec<f32>,
    vad_events: Vec<VadEvent>,
    echo: Option<crate::echo::PumpStage>,
}

impl Pump {
    fn run(mut self, stop: &AtomicBool, feed_done: &AtomicBool) {
        loop {
            // Read the flag before draining, so nothing pushed before it was
            // set is left behind. A device feed ends on stop (the pump stops
            // its stream below, then drains); a file feed ends only once its
            // feeder made its last push (a stop makes the feeder finish).
            let ending = if self.device.is_some() {
                stop.load(Ordering::Acquire)
            } else {
                feed_done.load(Ordering::Acquire)
            };
            if !self.drain_chunks() {
                return;
            }
            self.note_fill();
            if ending {
                if let Some(feed) = &mut self.device {
                    feed.stop_stream();
                }
                self.drain_ring();
                break;
            }
            if !self.supervise(stop) {
                // Stopped while recovering: nothing more will arrive.
                self.drain_ring();
                break;
            }
            let wait_ms = (self.reader.chunk_len() as u64 * 1000 / self.rate_hz as u64 / 3).max(2);
            std::thread::sleep(Duration::from_millis(wait_ms));
        }
        self.resampled.clear();
        self.resampler.finish(&mut self.resampled);
        if let Some(echo) = &mut self.echo {
            echo.finish(&mut self.resampled);
        }
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

    /// Processes every full chunk in the ring. False when the worker is gone.
    fn drain_chunks(&mut self) -> bool {
        let mut chunk = std::mem::take(&mut self.chunk);
        let mut alive = true;
        while let Some(next) = self.reader.next_chunk() {
            chunk.clear();
            chunk.extend_from_slice(next);
            if !self.process(&chunk) {
                alive = false;
                break;
            }
        }
        self.chunk = chunk;
        alive
    }

    /// Processes everything left in the ring, the last partial chunk too.
    fn drain_ring(&mut self) {
        if self.drain_chunks() {
            let rest = self.reader.take_partial().to_vec();
            self.process(&rest);
        }
    }

    /// The source's timeline position: 16 kHz samples handed to the VAD.
    fn position_s(&self) -> f64 {
        self.stats.samples_16k.load(Ordering::Relaxed) as f64 / TIMELINE_RATE_HZ
    }

    /// Checks the device stream; replaces it when it died or when the
    /// device asked for came back. False when stopped while recovering.
    fn supervise(&mut self, stop: &AtomicBool) -> bool {
        let Some(mut feed) = self.device.take() else {
            return true;
        };
        if let Some(stream) = feed.stream() {
            stream.log_realtime_status();
        }
        let now = Instant::now();
        let swap = if let Some(reason) = feed.check(now) {
            tracing::warn!(source = %self.stats.source, "{reason}; recovering");
            feed.stop_stream();
            self.drain_ring();
            let gap_start = self.position_s();
            Some((reason, gap_start, feed.reopen(stop)))
        } else if feed.home_is_back(now) {
            feed.stop_stream();
            self.drain_ring();
            let gap_start = self.position_s();
            let opened = feed.go_home().or_else(|| feed.reopen(stop));
            Some(("swapping back".to_owned(), gap_start, opened))
        } else {
            None
        };
        self.device = Some(feed);
        match swap {
            None => true,
            Some((_, _, None)) => false,
            Some((reason, gap_start, Some(opened))) => {
                self.swap(opened, gap_start, &reason);
                true
            }
        }
    }

    /// Moves to a new stream: fills the time without audio with digital
    /// silence, then reads the new ring (at its rate).
    fn swap(&mut self, opened: Opened, gap_start: f64, reason: &str) {
        let session_s = self.clock.elapsed().as_secs_f64();
        let target_s = session_s - self.stats.timeline_origin.as_secs_f64();
        let missing_s = (target_s - self.position_s()).max(0.0);
        let mut frames = (missing_s * f64::from(self.rate_hz)).round() as usize;
        let zeros = vec![0.0f32; GAP_FILL_BLOCK_SAMPLES];
        let before = self.stats.samples_16k.load(Ordering::Relaxed);
        while frames > 0 {
            let n = frames.min(zeros.len());
            if !self.process(&zeros[..n]) {
                break;
            }
            frames -= n;
        }
        if opened.rate_hz != self.rate_hz {
            self.resampled.clear();
            self.resampler.finish(&mut self.resampled);
            self.vad.push(&self.resampled, &mut self.vad_events);
            self.stats
                .samples_16k
                .fetch_add(self.resampled.len() as u64, Ordering::Relaxed);
            self.send_events();
            match Resampler::new(opened.rate_hz) {
                Ok(resampler) => self.resampler = resampler,
                Err(e) => tracing::error!("cannot resample the new device's rate: {e}"),
            }
            self.rate_hz = opened.rate_hz;
            self.stats
                .current_rate_hz
                .store(opened.rate_hz, Ordering::Relaxed);
        }
        self.reader = ChunkReader::new(opened.consumer, Arc::clone(&self.chunk_ms), self.rate_hz);
        let inserted = self.stats.samples_16k.load(Ordering::Relaxed) - before;
        let recovery = &self.stats.recovery;
        recovery
            .gap_samples_16k
            .fetch_add(inserted, Ordering::Relaxed);
        let gap = GapRecord {
            start: gap_start,
            end: self.position_s(),
            reason: format!("{reason}; {}", opened.note),
        };
        tracing::warn!(
            source = %self.stats.source,
            start = gap.start,
            end = gap.end,
            "gap in the audio: {}",
            gap.reason
        );
        let _ = self.events.send(Event {
            source: self.stats.source,
            kind: EventKind::Gap,
            start: gap.start,
            end: gap.end,
            text: gap.reason.clone(),
            emitted: Some(session_s),
        });
        recovery.push_gap(gap);
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
        if let Some(echo) = &mut self.echo {
            echo.apply(&mut self.resampled);
        }
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

/// Saves captured audio as 16-bit mono WAV, on the pump thread. The file is
/// new (an existing one is refused, never overwritten) and private (0600);
/// at [`RECORD_LIMIT_BYTES`] it is finalized and recording stops, since a
/// WAV's 32-bit length cannot say more (about 12 h at 48 kHz).
struct Recorder {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    path: PathBuf,
    bytes_left: u64,
}

/// The most audio data one recording holds: a WAV's sizes are 32-bit, and
/// the header and hound's chunk bookkeeping take some of it.
pub const RECORD_LIMIT_BYTES: u64 = u32::MAX as u64 - 1024 * 1024;

impl Recorder {
    fn create(path: &Path, rate_hz: u32) -> Result<Recorder, PipelineError> {
        Recorder::create_limited(path, rate_hz, RECORD_LIMIT_BYTES)
    }

    fn create_limited(path: &Path, rate_hz: u32, limit: u64) -> Result<Recorder, PipelineError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |detail: String| PipelineError::Record {
            path: path.to_path_buf(),
            detail,
        };
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate_hz,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => err(
                    "it already exists; refusing to overwrite it (remove it or pick another name)"
                        .into(),
                ),
                _ => err(e.to_string()),
            })?;
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
            .map_err(|e| err(e.to_string()))?;
        Ok(Recorder {
            writer: Some(writer),
            path: path.to_path_buf(),
            bytes_left: limit,
        })
    }

    /// Writes `chunk`; at the size limit the file is finalized and the rest
    /// ignored (told once). Errors name the file.
    fn write(&mut self, chunk: &[f32]) -> Result<(), String> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let room = (self.bytes_left / 2) as usize;
        let take = chunk.len().min(room);
        for &s in &chunk[..take] {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            writer
                .write_sample(v)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        self.bytes_left -= 2 * take as u64;
        if take < chunk.len() {
            tracing::error!(
                "recording {} reached the WAV size limit ({} bytes); recording stopped, \
                 transcription goes on",
                self.path.display(),
                RECORD_LIMIT_BYTES
            );
            self.finalize()?;
        }
        Ok(())
    }

    fn finalize(&mut self) -> Result<(), String> {
        match self.writer.take() {
            Some(writer) => writer
                .finalize()
                .map_err(|e| format!("{}: {e}", self.path.display())),
            None => Ok(()),
        }
    }

    fn finish(mut self) -> Result<(), String> {
        self.finalize()
    }
}

#[cfg(test)]
mod recorder_tests {
    use super::Recorder;

    #[test]
    fn existing_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.wav");
        std::fs::write(&path, b"precious").unwrap();
        let err = Recorder::create(&path, 16_000).err().expect("refused");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn size_limit_finalizes_a_valid_wav() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let mut rec = Recorder::create_limited(&path, 16_000, 1000).unwrap();
        let chunk = vec![0.25f32; 300];
        for _ in 0..5 {
            rec.write(&chunk).unwrap();
        }
        rec.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len(), 500, "1000 bytes of 16-bit samples");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
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
        self.sources()
            .iter()
            .map(|s| s.ring_fill())
            .fold(0.0, f32::max)
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
