//! The status line's numbers: each source's level, ring fill, overflow,
//! xruns, lag and real-time factor, the buffer size, the process's CPU.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::view::{SourceStatus, Status};
use crate::pipeline::SourceStats;

/// How often the status line is redrawn.
pub(super) const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often the status is logged (at info, seen with -v) when stderr is
/// not a terminal.
pub(super) const STATUS_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(super) fn status(
    stats: &[Arc<SourceStats>],
    chunk_ms: u32,
    cpu_percent: Option<f32>,
    latency_s: Option<f64>,
) -> Status {
    Status {
        sources: stats
            .iter()
            .map(|s| SourceStatus {
                source: s.source,
                level_db: s.level_db(),
                ring_fill: s.ring_fill(),
                overflowed: s.ring.overflowed.load(Ordering::Relaxed),
                xruns: s
                    .capture
                    .as_ref()
                    .map_or(0, |c| c.stream_errors.load(Ordering::Relaxed)),
                lag_ms: s.stream.lag_ms.load(Ordering::Relaxed),
                rtf: s.stream.pass_rtf(),
                degraded: s.stream.degradation().map(|d| d.label()),
                threads: s.stream.threads.load(Ordering::Relaxed),
            })
            .collect(),
        chunk_ms,
        cpu_percent,
        latency_s,
    }
}

/// This process's CPU use, through sysinfo.
pub(super) struct CpuMeter {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    last: Instant,
    percent: Option<f32>,
}

impl CpuMeter {
    pub(super) fn new() -> CpuMeter {
        let mut meter = CpuMeter {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
            last: Instant::now(),
            percent: None,
        };
        meter.refresh();
        meter
    }

    fn refresh(&mut self) {
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                false,
                sysinfo::ProcessRefreshKind::nothing().with_cpu(),
            );
        }
        self.last = Instant::now();
    }

    /// Percent of one core since the last call (sampled at most every
    /// sysinfo's minimum interval).
    pub(super) fn percent(&mut self) -> Option<f32> {
        if self.last.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(STATUS_INTERVAL) {
            self.refresh();
            self.percent = self
                .pid
                .and_then(|pid| self.system.process(pid))
                .map(sysinfo::Process::cpu_usage);
        }
        self.percent
    }
}
