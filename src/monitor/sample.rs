//! One sample of the process and the pipeline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sysinfo::{Components, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::capture::PriorityState;
use crate::pipeline::SourceStats;

/// What one source looked like at sample time.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSample {
    pub source: String,
    pub ring_fill: f32,
    pub xruns: u64,
    pub stream_errors: u64,
    /// Samples lost because the ring was full.
    pub overflowed_samples: u64,
    pub samples_offered: u64,
    pub inference_rtf: f64,
    pub lag_ms: u64,
    pub max_lag_ms: u64,
    /// Threads of the last inference pass.
    pub inference_threads: u64,
    /// What load-adaptive inference degrades right now (`None`: nothing).
    pub degraded: Option<&'static str>,
    /// The same as a number: 0 nominal, 1 cores busy, 2 behind, 3 both.
    pub degraded_code: u8,
    pub aborted_partials: u64,
    pub realtime_priority: bool,
    pub pinned_core: Option<usize>,
    pub recovery_attempts: u64,
    pub failed_recovery_attempts: u64,
    pub consecutive_failed_attempts: u64,
    pub recoveries: u64,
    pub gaps: usize,
    pub recovering: bool,
    pub on_fallback: bool,
    pub device: String,
}

/// A point in time.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t_s: f64,
    /// Whole machine, percent of all cores.
    pub cpu_total_percent: f32,
    pub cpu_per_core_percent: Vec<f32>,
    /// This process, percent of one core (may exceed 100).
    pub process_cpu_percent: f32,
    pub rss_bytes: u64,
    /// Highest component temperature, when the machine exposes any.
    pub temperature_c: Option<f32>,
    /// The pump's chunk (buffer size), ms.
    pub buffer_ms: u32,
    pub sources: Vec<SourceSample>,
}

/// Takes samples with sysinfo. Keep one and call [`Sampler::sample`] on a
/// timer (CPU usage is measured between two calls).
pub struct Sampler {
    system: System,
    components: Components,
    pid: Pid,
    started: Instant,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let mut sampler = Sampler {
            system: System::new(),
            components: Components::new_with_refreshed_list(),
            pid: Pid::from_u32(std::process::id()),
            started: Instant::now(),
        };
        sampler.refresh();
        sampler
    }

    /// When the sampler started ([`Sample::t_s`] counts from here).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether the machine exposes any temperature sensor.
    pub fn has_temperature(&self) -> bool {
        self.components.iter().any(|c| c.temperature().is_some())
    }

    fn refresh(&mut self) {
        self.system.refresh_cpu_usage();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }

    /// Samples the process and `sources`; `buffer_ms` is the pump's chunk.
    pub fn sample(&mut self, sources: &[Arc<SourceStats>], buffer_ms: u32) -> Sample {
        self.refresh();
        self.components.refresh(false);
        let process = self.system.process(self.pid);
        Sample {
            t_s: self.started.elapsed().as_secs_f64(),
            cpu_total_percent: self.system.global_cpu_usage(),
            cpu_per_core_percent: self.system.cpus().iter().map(|c| c.cpu_usage()).collect(),
            process_cpu_percent: process.map_or(0.0, |p| p.cpu_usage()),
            rss_bytes: process.map_or(0, |p| p.memory()),
            temperature_c: self
                .components
                .iter()
                .filter_map(|c| c.temperature())
                .filter(|t| t.is_finite())
                .reduce(f32::max),
            buffer_ms,
            sources: sources.iter().map(|s| source_sample(s)).collect(),
        }
    }
}

fn source_sample(stats: &SourceStats) -> SourceSample {
    let capture = stats.capture.as_ref().map(|c| c.snapshot());
    let recovery = &stats.recovery;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    SourceSample {
        source: stats.source.label().to_owned(),
        ring_fill: stats.ring_fill(),
        xruns: capture.map_or(0, |c| c.xruns),
        stream_errors: capture.map_or(0, |c| c.stream_errors),
        overflowed_samples: load(&stats.ring.overflowed),
        samples_offered: stats.ring.offered(),
        inference_rtf: stats.stream.pass_rtf(),
        lag_ms: load(&stats.stream.lag_ms),
        max_lag_ms: load(&stats.stream.max_lag_ms),
        inference_threads: load(&stats.stream.threads),
        degraded: stats.stream.degradation().map(|d| d.label()),
        degraded_code: stats.stream.degraded.load(Ordering::Relaxed),
        aborted_partials: load(&stats.stream.aborted_partials),
        realtime_priority: capture.is_some_and(|c| c.priority == PriorityState::Obtained),
        pinned_core: capture.and_then(|c| c.pinned_core),
        recovery_attempts: load(&recovery.attempts),
        failed_recovery_attempts: load(&recovery.failed_attempts),
        consecutive_failed_attempts: load(&recovery.consecutive_failed_attempts),
        recoveries: load(&recovery.recoveries),
        gaps: recovery.gaps().len(),
        recovering: recovery.recovering.load(Ordering::Relaxed),
        on_fallback: recovery.on_fallback.load(Ordering::Relaxed),
        device: recovery.device(),
    }
}
