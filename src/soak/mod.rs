//! The soak harness: runs the live pipeline for a long time against a known
//! audio programme played through the private sound server, injects
//! faults, and verifies the outcome against bounds (see [`Bounds`]).
//!
//! - [`programme`]: the known audio and its looping player.
//! - [`fault`]: device removal and restoration.
//! - [`stress`]: busy threads.
//! - [`crash`]: kill -9 of a child hark and a restart on its transcript.
//! - [`checks`]: WER over the phrases really heard, percentiles, slopes.
//! - [`report`]: `report.json` and `summary.txt`; [`plots`]: PNG plots.
//!
//! Sampling goes through [`crate::monitor::Monitor`], so a soak exercises
//! the same thread (and, with `--metrics-addr`, the same endpoint) as
//! `hark live`.
//!
//! Not real-time safe.

mod analysis;
pub mod checks;
pub mod crash;
pub mod fault;
pub mod plots;
pub mod programme;
pub mod report;
mod run;
pub mod stress;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::SourceKind;
use crate::event::Source;
use crate::pipeline::PipelineConfig;

use fault::Removable;

pub use run::run;

/// How long a removed device stays away.
pub const FAULT_HOLD: Duration = Duration::from_secs(3);
/// When in the run (fraction of the duration) devices are removed.
const FAULT_AT_FRACTION: f64 = 0.4;
/// Runs shorter than this do not check the memory slope (too noisy).
pub const SLOPE_MIN_DURATION: Duration = Duration::from_secs(600);
/// Margin around a fault inside which phrases are not scored, seconds.
const DISTURBANCE_MARGIN_S: f64 = 0.5;
const MB: f64 = 1024.0 * 1024.0;

/// Why a soak could not run (bounds missed are a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    SoundServer(#[from] crate::soundserver::SoundServerError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error(transparent)]
    Inference(#[from] crate::inference::InferenceError),
    #[error(transparent)]
    Transcript(#[from] crate::transcript::WriteError),
    #[error("bad programme {path}: {detail}")]
    Programme { path: PathBuf, detail: String },
    #[error("cannot write {path}: {detail}")]
    Output { path: PathBuf, detail: String },
    #[error("fault injection failed: {0}")]
    Fault(String),
    #[error("cannot start a soak thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorError),
}

/// The limits a soak must stay within.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub max_wer: f64,
    pub max_latency_p95: Duration,
    pub max_rss_mb: f64,
    pub max_lost_samples: u64,
    /// Wall time not covered by a source's timeline (audio plus gap fill).
    pub max_unaccounted_ms: f64,
    /// From a device's return to capturing from it again.
    pub max_recovery: Duration,
    /// Checked only for runs of at least [`SLOPE_MIN_DURATION`].
    pub max_rss_growth_mb_per_hour: f64,
    /// Capture clocks run off the wall clock: the unaccounted-time bound
    /// grows by this many parts per million of the wall time (the loopback
    /// bench measured capture clock / wall 1.0011, 1100 ppm).
    pub clock_drift_ppm: f64,
}

/// The design's process limit, MB.
pub const DESIGN_RSS_MB: f64 = 100.0;
/// The design's RSS growth limit, MB per hour.
pub const DESIGN_RSS_GROWTH_MB_PER_HOUR: f64 = 2.0;

impl Bounds {
    /// The latency bound (p95 of final latency) for `stress_threads` busy
    /// threads competing for the cores: 2 s idle, 3 s with one, 4 s with
    /// two or more (the target is p90 <= 2 s with two).
    pub fn latency_p95_for_stress(stress_threads: usize) -> Duration {
        match stress_threads {
            0 => Duration::from_secs(2),
            1 => Duration::from_secs(3),
            _ => Duration::from_secs(4),
        }
    }

    /// The unaccounted-time bound for a run of `wall_s` seconds: the fixed
    /// allowance plus the clock drift over the run.
    pub fn unaccounted_bound_ms(&self, wall_s: f64) -> f64 {
        self.max_unaccounted_ms + self.clock_drift_ppm * 1e-6 * wall_s.max(0.0) * 1000.0
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_wer: 0.25,
            max_latency_p95: Bounds::latency_p95_for_stress(0),
            max_rss_mb: DESIGN_RSS_MB,
            max_lost_samples: 0,
            max_unaccounted_ms: 500.0,
            max_recovery: Duration::from_secs(10),
            max_rss_growth_mb_per_hour: DESIGN_RSS_GROWTH_MB_PER_HOUR,
            clock_drift_ppm: 1500.0,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub duration: Duration,
    pub sources: Vec<SourceKind>,
    pub stress_threads: usize,
    pub faults: bool,
    pub model: PathBuf,
    pub programme: PathBuf,
    pub out_dir: PathBuf,
    pub sample_interval: Duration,
    /// With `faults`: after the run, kill -9 and restart a child hark on
    /// one transcript (see [`crash`]).
    pub crash_child: Option<crash::ChildCommand>,
    /// Serve the monitor's Prometheus metrics here during the run.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub bounds: Bounds,
    pub pipeline: PipelineConfig,
    /// Set by the first SIGINT/SIGTERM: the run stops early (the report
    /// covers what ran) and the transcript gets a bounded last flush.
    pub interrupted: Arc<AtomicBool>,
}

fn removable(kind: SourceKind) -> Removable {
    match kind {
        SourceKind::Loopback => Removable::Speaker,
        SourceKind::Mic => Removable::Mic,
    }
}

fn source_of(kind: SourceKind) -> Source {
    match kind {
        SourceKind::Loopback => Source::Loopback,
        SourceKind::Mic => Source::Mic,
    }
}

pub(crate) struct FaultRun {
    kind: SourceKind,
    removed_at_s: f64,
    restored_at_s: Option<f64>,
    capturing_again_at_s: Option<f64>,
    home_at_s: Option<f64>,
}

/// The default programme and model paths relative to a checkout.
pub fn default_paths(root: &Path) -> (PathBuf, PathBuf) {
    (
        root.join("models/tiny.en-q8_0.bin"),
        root.join("assets/programme.wav"),
    )
}
