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
//! | worker          | Whisper passes, streaming policy       | inference           |
//!
//! plus one sizer thread and one relay thread for the whole pipeline. Nothing downstream can make
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
//! The stretch is reported as an [`crate::event::EventKind::Gap`] event
//! (start and end in the source's timeline, `text` says why), counted in
//! [`RecoveryStats`] and listed in [`SourceReport::gaps`].
//!
//! # One writer of the event channel
//!
//! Workers send text and pumps send gaps, but neither writes the pipeline's
//! event channel: the `relay` thread does, and it hands a source's gap on
//! only after the text of the audio before it.
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

//! The parts, one job per file: [`config`] (what to run, why it failed),
//! `feed` (a file played at 1x), `pump` (ring -> resampler -> VAD),
//! `swap` (device loss: supervision, gap fill, rate swap), [`recovery`]
//! (the reopen policy), `record` (`--record`), `relay` (event order),
//! [`stats`] (live numbers and reports).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::capture::CaptureStats;
use crate::dsp::Resampler;
use crate::event::{Event, Source};
use crate::handoff::{self, ChunkReader, Consumer};
use crate::inference::stream::StreamConfig;
use crate::inference::worker::Worker;
use crate::inference::Model;
use crate::sizer::SizerThread;
use crate::vad::Segmenter;

pub mod config;
mod feed;
mod pump;
mod record;
pub mod recovery;
mod relay;
pub mod stats;
mod swap;

pub use config::{Feed, PipelineConfig, PipelineError, SourceConfig};
pub use record::{RecordError, RECORD_LIMIT_BYTES};
pub use recovery::{GapRecord, RecoveryStats};
pub use stats::{SourceReport, SourceStats};

use pump::{Pump, SILENCE_DB};
use record::{Claim, Recorder};
use recovery::DeviceFeed;
use relay::Relay;
use stats::PipelineLoad;

/// Audio the ring holds before it overflows.
pub const RING_DURATION: Duration = Duration::from_secs(4);
/// VAD events the pump may queue for a worker (about 30 s of 30 ms chunks).
const WORKER_QUEUE_EVENTS: usize = 1024;

struct Running {
    stats: Arc<SourceStats>,
    feeder: Option<JoinHandle<feed::FeedEnd>>,
    pump: JoinHandle<()>,
    worker: Worker,
}

/// A running pipeline.
pub struct Pipeline {
    clock: Instant,
    /// Where workers send text and pumps send gaps, until every source is
    /// started (then only they hold senders).
    text: Option<Sender<Event>>,
    gaps: Option<Sender<Event>>,
    relay: Option<Relay>,
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
        // Every recording's name is claimed before anything starts: a name
        // that is taken is refused before any capture, and the names
        // claimed before it are removed again (a dropped claim removes its
        // still empty file).
        let mut claims = Vec::with_capacity(sources.len());
        for source in sources {
            claims.push(source.record.as_deref().map(Claim::new).transpose()?);
        }
        let clock = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // The sizer starts first so every pump reads its size; it sees the
        // sources once they are all open.
        let load = PipelineLoad::default();
        let seen = Arc::clone(&load.sources);
        let sizer = SizerThread::spawn(load).map_err(PipelineError::Thread)?;
        let (text, text_rx) = crossbeam_channel::unbounded();
        let (gaps, gaps_rx) = crossbeam_channel::unbounded();
        let relay = Relay::spawn(text_rx, gaps_rx, events).map_err(PipelineError::Thread)?;
        let mut pipeline = Pipeline {
            clock,
            text: Some(text),
            gaps: Some(gaps),
            relay: Some(relay),
            stop,
            chunk_ms: sizer.size_ms(),
            sizer: Some(sizer),
            running: Vec::new(),
            echo: None,
        };
        let mut stages = pipeline.echo_stages(config, sources);
        for (source, claim) in sources.iter().zip(claims) {
            let stage = stages.remove(&source.source);
            match pipeline.start_source(model, config, source, stage, claim) {
                Ok(running) => pipeline.running.push(running),
                Err(e) => {
                    pipeline.stop();
                    return Err(e);
                }
            }
        }
        let _ = seen.set(pipeline.stats());
        pipeline.text = None;
        pipeline.gaps = None;
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
        echo: Option<crate::echo::PumpStage>,
        claim: Option<Claim>,
    ) -> Result<Running, PipelineError> {
        let (Some(text), Some(gaps)) = (&self.text, &self.gaps) else {
            unreachable!("sources start before the senders are dropped");
        };
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
                let (consumer, feeder, rate) =
                    feed::start(path, source.source, &self.stop, &feed_done)?;
                (None, consumer, Some(feeder), rate)
            }
        };
        let (to_worker, from_pump) = crossbeam_channel::bounded(WORKER_QUEUE_EVENTS);
        let mut stream_config = StreamConfig::new(source.source);
        stream_config.partials = config.partials;
        let worker = Worker::spawn(
            model,
            config.threads,
            stream_config,
            self.clock,
            from_pump,
            text.clone(),
        )?;
        let stats = self.source_stats(source.source, &consumer, device.as_ref(), &worker, rate_hz);
        let stats = Arc::new(SourceStats {
            recovery,
            echo: match &echo {
                Some(crate::echo::PumpStage::Cancel { .. }) => self.echo.clone(),
                _ => None,
            },
            ..stats
        });
        let recorder = match claim {
            Some(claim) => Some(Recorder::start(claim, rate_hz)?),
            None => None,
        };
        let pump = Pump {
            reader: ChunkReader::new(consumer, Arc::clone(&self.chunk_ms), rate_hz),
            chunk_ms: Arc::clone(&self.chunk_ms),
            rate_hz,
            device,
            gaps: gaps.clone(),
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

    /// A source's live numbers as it starts.
    fn source_stats(
        &self,
        source: Source,
        consumer: &Consumer,
        device: Option<&DeviceFeed>,
        worker: &Worker,
        rate_hz: u32,
    ) -> SourceStats {
        // The first sample's time: the device may hand over a block of
        // buffered audio as it opens, so count back from what arrived.
        let arrived = device.map_or(0, |d| {
            d.capture_stats().frames_captured.load(Ordering::Acquire)
        });
        let timeline_origin = self
            .clock
            .elapsed()
            .saturating_sub(Duration::from_secs_f64(arrived as f64 / f64::from(rate_hz)));
        SourceStats {
            source,
            rate_hz,
            ring: consumer.counters(),
            ring_capacity: consumer.capacity(),
            ring_fill_permille: AtomicU32::new(0),
            level_db_x100: AtomicI32::new((SILENCE_DB * 100.0) as i32),
            samples_16k: AtomicU64::new(0),
            capture: device.map(DeviceFeed::capture_stats),
            stream: worker.stats(),
            record_errors: AtomicU64::new(0),
            recovery: Arc::default(),
            timeline_origin,
            current_rate_hz: AtomicU32::new(rate_hz),
            echo: None,
        }
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
            let feed_error = running
                .feeder
                .take()
                .and_then(|feeder| feeder.join().ok().flatten());
            stopped.push((running, feed_error));
        }
        for (running, feed_error) in stopped {
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
                feed_error: feed_error.map(Arc::new),
            });
        }
        // Every worker has ended: the relay hands on the last events.
        self.text = None;
        self.gaps = None;
        if let Some(relay) = self.relay.take() {
            relay.join();
        }
        if let Some(sizer) = self.sizer.take() {
            sizer.stop();
        }
        reports
    }
}
