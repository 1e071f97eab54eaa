//! What a source reports: live numbers while it runs ([`SourceStats`], read
//! by the status line, the monitor and the sizer) and a [`SourceReport`]
//! once stopped.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::recovery::{GapRecord, RecoveryStats};
use crate::capture::CaptureStats;
use crate::event::Source;
use crate::handoff::RingCounters;
use crate::inference::stream::StreamStats;
use crate::inference::worker::WorkerReport;
use crate::sizer::LoadSource;

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
    /// Why a file feed ended before its file did (a read error past the
    /// header); what was fed before it was transcribed.
    pub feed_error: Option<Arc<crate::dsp::AudioFileError>>,
}

/// The sizer's view of the pipeline: the fullest ring and all xruns.
#[derive(Default)]
pub(super) struct PipelineLoad {
    pub(super) sources: Arc<OnceLock<Vec<Arc<SourceStats>>>>,
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
