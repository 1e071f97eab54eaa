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

pub mod checks;
pub mod crash;
pub mod fault;
pub mod plots;
pub mod programme;
pub mod report;
pub mod stress;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::{CaptureSpec, SourceKind};
use crate::event::{Event, EventKind, Source};
use crate::inference::Model;
use crate::monitor::{Monitor, MonitorConfig, MonitorReport, Sampler, WriterProbe};
use crate::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig, SourceStats};
use crate::soundserver::SoundServer;
use crate::transcript::{Format, Writer, WriterConfig};

use checks::Check;
use fault::Removable;
use programme::{Player, Programme};
use report::{FaultResult, MemoryStages, SoakReport, SourceResult, TranscriptResult};

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
    #[error("the transcript writer is still in use after the monitor stopped")]
    WriterShared,
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

struct FaultRun {
    kind: SourceKind,
    removed_at_s: f64,
    restored_at_s: Option<f64>,
    capturing_again_at_s: Option<f64>,
    home_at_s: Option<f64>,
}

/// Runs a soak against `server` (whose environment this process must
/// already use, see [`SoundServer::export_env`]) and writes the report into
/// `config.out_dir`.
pub fn run(config: &SoakConfig, server: Arc<SoundServer>) -> Result<SoakReport, SoakError> {
    std::fs::create_dir_all(&config.out_dir).map_err(|e| SoakError::Output {
        path: config.out_dir.clone(),
        detail: e.to_string(),
    })?;
    let programme = Programme::load(&config.programme)?;
    let mut sampler = Sampler::new();
    let rss_mb = |s: &mut Sampler| s.sample(&[], 0).rss_bytes as f64 / MB;
    let rss_start_mb = rss_mb(&mut sampler);
    let model = Model::load(&config.model)?;
    let rss_after_model_load_mb = rss_mb(&mut sampler);

    let transcript_path = config.out_dir.join("transcript.jsonl");
    let writer = Arc::new(Writer::spawn(WriterConfig::new(
        &transcript_path,
        Format::Jsonl,
    ))?);
    let sources: Vec<SourceConfig> = config
        .sources
        .iter()
        .map(|&kind| SourceConfig {
            source: source_of(kind),
            feed: Feed::Device(CaptureSpec::new(kind).with_device(removable(kind).device())),
            record: None,
        })
        .collect();
    let (tx, rx) = crossbeam_channel::unbounded::<Event>();
    let sender = writer.sender();
    let collector = std::thread::Builder::new()
        .name("soak-events".into())
        .spawn(move || {
            let mut events = Vec::new();
            for event in rx {
                if let Err(e) = sender.send(event.clone()) {
                    tracing::error!("transcript writer refused an event: {e:?}");
                }
                events.push(event);
            }
            events
        })
        .map_err(SoakError::Thread)?;
    let pipeline = Pipeline::start(&model, &config.pipeline, &sources, tx)?;
    let clock = pipeline.clock();
    let stats = pipeline.stats();
    let rss_after_pipeline_start_mb = rss_mb(&mut sampler);
    drop(sampler);
    let probe: WriterProbe = {
        let writer = Arc::clone(&writer);
        Box::new(move || writer.metrics())
    };
    let monitor = Monitor::spawn(
        MonitorConfig {
            interval: config.sample_interval,
            metrics_addr: config.metrics_addr,
            keep_history: true,
        },
        stats.clone(),
        pipeline.chunk_ms_handle(),
        Some(probe),
    )?;
    if let Some(addr) = monitor.metrics_addr() {
        tracing::info!("soak: metrics on http://{addr}/metrics");
    }
    // Samples count from the monitor's start, before the session clock's.
    let session_start_in_samples_s = -monitor.started().duration_since(clock).as_secs_f64();

    let mut players = Vec::new();
    for &kind in &config.sources {
        players.push(Player::start(
            Arc::clone(&server),
            removable(kind).sink(),
            &programme,
            clock,
        )?);
    }
    let stress = stress::Stress::start(config.stress_threads)?;
    let mut faults: Vec<FaultRun> = Vec::new();
    let run_start = Instant::now();
    let fault_at = config.duration.mul_f64(FAULT_AT_FRACTION);
    let session = |c: Instant| c.elapsed().as_secs_f64();
    while run_start.elapsed() < config.duration {
        if config.faults && faults.is_empty() && run_start.elapsed() >= fault_at {
            for &kind in &config.sources {
                fault::remove(&server, removable(kind))?;
                tracing::warn!(device = removable(kind).device(), "soak: device removed");
                faults.push(FaultRun {
                    kind,
                    removed_at_s: session(clock),
                    restored_at_s: None,
                    capturing_again_at_s: None,
                    home_at_s: None,
                });
            }
        }
        for f in &mut faults {
            let at = session(clock);
            if f.restored_at_s.is_none() && at - f.removed_at_s >= FAULT_HOLD.as_secs_f64() {
                fault::restore(&server, removable(f.kind))?;
                tracing::warn!(device = removable(f.kind).device(), "soak: device restored");
                f.restored_at_s = Some(at);
            }
            let Some(s) = stats.iter().find(|s| s.source == source_of(f.kind)) else {
                continue;
            };
            let recovery = &s.recovery;
            let failures = recovery.failures.load(Ordering::Acquire);
            let running = failures > 0 && !recovery.recovering.load(Ordering::Acquire);
            if f.capturing_again_at_s.is_none() && running {
                f.capturing_again_at_s = Some(at);
            }
            let home = running
                && !recovery.on_fallback.load(Ordering::Acquire)
                && recovery.device() == removable(f.kind).device();
            if f.restored_at_s.is_some() && f.home_at_s.is_none() && home {
                f.home_at_s = Some(at);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stop_s = session(clock);
    drop(stress);
    let plays: Vec<_> = players.into_iter().flat_map(Player::stop).collect();
    let MonitorReport { samples, alerts } = monitor.stop();
    let reports = pipeline.stop();
    let events = collector.join().unwrap_or_default();
    let writer = Arc::try_unwrap(writer).map_err(|_| SoakError::WriterShared)?;
    let writer_report = writer.finish()?;

    // Read the transcript back.
    let bytes = std::fs::read(&transcript_path).map_err(|e| SoakError::Output {
        path: transcript_path.clone(),
        detail: e.to_string(),
    })?;
    let scan = crate::transcript::scan(Format::Jsonl, &bytes);
    let text = String::from_utf8_lossy(&bytes[..scan.whole_len]);
    let mut in_file = Vec::new();
    let mut unparsable = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => in_file.push(e),
            Err(_) => unparsable += 1,
        }
    }
    let finals_received = events.iter().filter(|e| e.kind == EventKind::Final).count();
    let transcript = TranscriptResult {
        path: transcript_path.display().to_string(),
        bytes: bytes.len() as u64,
        records: in_file.len(),
        torn_bytes: scan.torn_len(bytes.len()),
        unparsable_lines: unparsable,
        events_written: writer_report.metrics.events_written,
        finals_received,
        finals_in_file: in_file
            .iter()
            .filter(|e| e.kind == EventKind::Final)
            .count(),
        gaps_in_file: in_file.iter().filter(|e| e.kind == EventKind::Gap).count(),
        flush_latency_p99_ms: writer_report.metrics.flush_latency_p99_ms,
        mode: format!("{:?}", writer_report.metrics.mode).to_lowercase(),
    };

    let fault_results: Vec<FaultResult> = faults
        .iter()
        .map(|f| FaultResult {
            device: removable(f.kind).device().to_owned(),
            removed_at_s: f.removed_at_s,
            restored_at_s: f.restored_at_s.unwrap_or(f64::NAN),
            capturing_again_at_s: f.capturing_again_at_s,
            home_at_s: f.home_at_s,
        })
        .collect();
    let mut checks = Vec::new();
    let mut source_results = Vec::new();
    for report in &reports {
        let Some(live) = stats.iter().find(|s| s.source == report.source) else {
            continue;
        };
        let result = source_result(report, live, &events, &programme, &plays, &faults, stop_s);
        let mut result = result;
        result.gap_events_in_transcript = in_file
            .iter()
            .filter(|e| e.kind == EventKind::Gap && e.source == report.source)
            .count();
        let faulted = faults.iter().any(|f| source_of(f.kind) == report.source);
        let gaps_ok = result.gap_events_in_transcript == result.gaps.len()
            && (!faulted || !result.gaps.is_empty());
        checks.push(Check {
            name: format!("{} gaps accounted", result.source),
            value: result.gaps.len() as f64,
            bound: result.gap_events_in_transcript as f64,
            pass: gaps_ok,
            detail: "every gap is in the transcript as a gap event; a removed device left one"
                .into(),
        });
        source_checks(&result, &config.bounds, &mut checks);
        source_results.push(result);
    }
    for f in &fault_results {
        let recovery_s = match (f.home_at_s, f.restored_at_s) {
            (Some(home), restored) if restored.is_finite() => home - restored,
            _ => f64::INFINITY,
        };
        checks.push(Check::at_most(
            &format!("{} back after restore, s", f.device),
            recovery_s,
            config.bounds.max_recovery.as_secs_f64(),
            "from the device's return to capturing from it again",
        ));
    }
    let crash = match (&config.crash_child, config.faults) {
        (Some(child), true) => {
            let path = config.out_dir.join("crash-transcript.jsonl");
            let result = crash::kill_and_restart(child, &path)?;
            checks.push(Check {
                name: "transcript survives kill -9 and restart".into(),
                value: f64::from(u8::from(result.pass())),
                bound: 1.0,
                pass: result.pass(),
                detail: "whole records at each kill kept byte for byte, appended after, all parse"
                    .into(),
            });
            Some(result)
        }
        _ => None,
    };
    let t = &transcript;
    let transcript_ok = t.torn_bytes == 0
        && t.unparsable_lines == 0
        && t.records as u64 == t.events_written
        && t.finals_in_file == t.finals_received;
    checks.push(Check {
        name: "transcript valid and complete".into(),
        value: f64::from(u8::from(transcript_ok)),
        bound: 1.0,
        pass: transcript_ok,
        detail: "no torn tail, every line an event, every final received is in the file".into(),
    });

    let rss: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t_s, s.rss_bytes as f64 / MB))
        .collect();
    let warm = rss.len() / 10;
    let rss_slope_mb_per_hour = checks::slope(&rss[warm..]) * 3600.0;
    let rss_max_mb = rss.iter().map(|p| p.1).fold(0.0, f64::max);
    checks.push(Check::at_most(
        "RSS max, MB",
        rss_max_mb,
        config.bounds.max_rss_mb,
        "",
    ));
    if config.duration >= SLOPE_MIN_DURATION {
        checks.push(Check::at_most(
            "RSS growth, MB/h",
            rss_slope_mb_per_hour,
            config.bounds.max_rss_growth_mb_per_hour,
            "least squares after the first tenth",
        ));
    }
    let mean = |f: &dyn Fn(&crate::monitor::Sample) -> f64| {
        samples.iter().map(f).sum::<f64>() / samples.len().max(1) as f64
    };
    let latency_series: Vec<(f64, f64)> = reports
        .iter()
        .filter_map(|r| stats.iter().find(|s| s.source == r.source))
        .flat_map(|s| {
            let own: Vec<Event> = events
                .iter()
                .filter(|e| e.source == s.source)
                .cloned()
                .collect();
            checks::latencies(&own, s.timeline_origin.as_secs_f64())
        })
        .collect();
    let mut report = SoakReport {
        pass: false,
        duration_s: stop_s,
        stress_threads: config.stress_threads,
        faults: fault_results,
        sources: source_results,
        transcript,
        memory: MemoryStages {
            rss_start_mb,
            rss_after_model_load_mb,
            rss_after_pipeline_start_mb,
            model_file_mb: std::fs::metadata(&config.model).map_or(0.0, |m| m.len() as f64 / MB),
        },
        rss_end_mb: rss.last().map_or(0.0, |p| p.1),
        rss_max_mb,
        rss_slope_mb_per_hour,
        process_cpu_mean_percent: mean(&|s| f64::from(s.process_cpu_percent)),
        process_cpu_max_percent: samples
            .iter()
            .map(|s| f64::from(s.process_cpu_percent))
            .fold(0.0, f64::max),
        machine_cpu_mean_percent: mean(&|s| f64::from(s.cpu_total_percent)),
        temperature_available: samples.iter().any(|s| s.temperature_c.is_some()),
        alerts,
        checks,
        plays,
        samples,
        latency_series,
        session_start_in_samples_s,
        crash,
        plots: Vec::new(),
        plot_note: None,
    };
    report.pass = report.checks.iter().all(|c| c.pass);
    match plots::draw(&report, &config.out_dir) {
        Ok(files) => report.plots = files,
        Err(e) => report.plot_note = Some(format!("plots failed: {e}")),
    }
    report.write(&config.out_dir)?;
    Ok(report)
}

fn source_result(
    report: &crate::pipeline::SourceReport,
    live: &SourceStats,
    events: &[Event],
    programme: &Programme,
    plays: &[programme::Play],
    faults: &[FaultRun],
    stop_s: f64,
) -> SourceResult {
    let origin_s = live.timeline_origin.as_secs_f64();
    let own: Vec<Event> = events
        .iter()
        .filter(|e| e.source == report.source)
        .cloned()
        .collect();
    let kind_matches = |f: &&FaultRun| source_of(f.kind) == report.source;
    let disturbed: Vec<(f64, f64)> = faults
        .iter()
        .filter(kind_matches)
        .map(|f| {
            let end = f.home_at_s.unwrap_or(stop_s);
            (
                f.removed_at_s - DISTURBANCE_MARGIN_S,
                end + DISTURBANCE_MARGIN_S,
            )
        })
        .collect();
    let sink = source_kind_sink(report.source);
    let own_plays: Vec<_> = plays.iter().filter(|p| p.sink == sink).cloned().collect();
    let finals = checks::session_finals(&own, origin_s);
    let wer = checks::wer(&programme.phrases, &own_plays, &finals, &disturbed, stop_s);
    let latencies: Vec<f64> = checks::latencies(&own, origin_s)
        .iter()
        .map(|p| p.1)
        .collect();
    let recovery = &live.recovery;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Acquire);
    let timeline_s = report.samples_16k as f64 / 16_000.0;
    let wall_s = stop_s - origin_s;
    SourceResult {
        source: report.source.label().to_owned(),
        rate_hz: report.rate_hz,
        samples_offered: report.offered,
        samples_pumped: report.pumped,
        samples_overflowed: report.overflowed,
        samples_lost: report.overflowed
            + report
                .offered
                .saturating_sub(report.overflowed + report.pumped),
        wall_s,
        timeline_s,
        gap_fill_s: report.gap_samples_16k as f64 / 16_000.0,
        unaccounted_ms: (wall_s - timeline_s) * 1000.0,
        gaps: report.gaps.clone(),
        gap_events_in_transcript: 0,
        recoveries: report.recoveries,
        recovery_attempts: load(&recovery.attempts),
        failed_recovery_attempts: load(&recovery.failed_attempts),
        fallbacks: load(&recovery.fallbacks),
        returns: load(&recovery.returns),
        finals: finals.len(),
        wer,
        latency_p50_s: checks::percentile(&latencies, 50.0),
        latency_p95_s: checks::percentile(&latencies, 95.0),
        latency_max_s: latencies.iter().copied().fold(0.0, f64::max),
        inference_passes: report.worker.passes,
        worker_errors: report.worker.errors,
    }
}

fn source_kind_sink(source: Source) -> &'static str {
    match source {
        Source::Mic => Removable::Mic.sink(),
        _ => Removable::Speaker.sink(),
    }
}

fn source_checks(r: &SourceResult, bounds: &Bounds, checks: &mut Vec<Check>) {
    let name = |what: &str| format!("{} {what}", r.source);
    checks.push(Check::at_most(
        &name("lost samples"),
        r.samples_lost as f64,
        bounds.max_lost_samples as f64,
        "ring overflow plus samples offered but never pumped",
    ));
    checks.push(Check::at_most(
        &name("unaccounted wall time, ms"),
        r.unaccounted_ms.abs(),
        bounds.unaccounted_bound_ms(r.wall_s),
        format!(
            "wall time minus (captured audio + gap fill); {} ms + {} ppm of the wall time",
            bounds.max_unaccounted_ms, bounds.clock_drift_ppm
        ),
    ));
    checks.push(Check::at_most(&name("WER"), r.wer.wer, bounds.max_wer, ""));
    checks.push(Check::at_most(
        &name("latency p95, s"),
        r.latency_p95_s,
        bounds.max_latency_p95.as_secs_f64(),
        "final emitted minus end of its audio",
    ));
}

/// The default programme and model paths relative to a checkout.
pub fn default_paths(root: &Path) -> (PathBuf, PathBuf) {
    (
        root.join("models/tiny.en-q8_0.bin"),
        root.join("assets/programme.wav"),
    )
}
