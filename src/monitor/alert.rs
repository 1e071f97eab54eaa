//! Alerts: thresholds over [`Sample`]s, logged once per episode as `warn!`
//! and counted.

use std::time::Duration;

use serde::Serialize;

use super::Sample;

/// Process CPU above this (percent of the machine) ...
pub const CPU_THRESHOLD_PERCENT: f32 = 80.0;
/// ... for this long raises the CPU alert.
pub const CPU_SUSTAIN: Duration = Duration::from_secs(10);
/// Resident memory above this raises the memory alert.
pub const MEMORY_THRESHOLD_BYTES: u64 = 100 * 1024 * 1024;
/// A ring fuller than this raises the ring alert.
pub const RING_THRESHOLD: f32 = 0.8;
/// This many failed reopen attempts in a row raises the recovery alert.
pub const FAILED_RECOVERIES: u64 = 3;

/// Episodes of each alert so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    pub cpu: u64,
    pub memory: u64,
    pub ring: u64,
    pub recovery: u64,
}

/// Alert state across samples.
#[derive(Debug, Default)]
pub struct Alerts {
    counts: AlertCounts,
    cpu_high_since: Option<f64>,
    cpu_active: bool,
    memory_active: bool,
    ring_active: bool,
    recovery_active: bool,
}

impl Alerts {
    pub fn counts(&self) -> AlertCounts {
        self.counts
    }

    /// Updates the alerts with a new sample; logs and counts each alert
    /// when it starts (not again until it has cleared).
    pub fn observe(&mut self, sample: &Sample) {
        let cores = sample.cpu_per_core_percent.len().max(1) as f32;
        let cpu = sample.process_cpu_percent / cores;
        let cpu_high = cpu > CPU_THRESHOLD_PERCENT;
        self.cpu_high_since = match (cpu_high, self.cpu_high_since) {
            (true, None) => Some(sample.t_s),
            (true, since) => since,
            (false, _) => None,
        };
        let sustained = self
            .cpu_high_since
            .is_some_and(|since| sample.t_s - since >= CPU_SUSTAIN.as_secs_f64());
        if rising(&mut self.cpu_active, sustained) {
            self.counts.cpu += 1;
            tracing::warn!(
                cpu_percent = cpu,
                "alert: CPU above {CPU_THRESHOLD_PERCENT}% for {CPU_SUSTAIN:?}"
            );
        }
        if rising(
            &mut self.memory_active,
            sample.rss_bytes > MEMORY_THRESHOLD_BYTES,
        ) {
            self.counts.memory += 1;
            tracing::warn!(
                rss_mb = sample.rss_bytes / 1_048_576,
                "alert: memory above 100 MB"
            );
        }
        let fullest = sample
            .sources
            .iter()
            .map(|s| s.ring_fill)
            .fold(0.0, f32::max);
        if rising(&mut self.ring_active, fullest > RING_THRESHOLD) {
            self.counts.ring += 1;
            tracing::warn!(ring_fill = fullest, "alert: a ring is more than 80% full");
        }
        let failing = sample
            .sources
            .iter()
            .any(|s| s.consecutive_failed_attempts >= FAILED_RECOVERIES);
        if rising(&mut self.recovery_active, failing) {
            self.counts.recovery += 1;
            tracing::warn!("alert: {FAILED_RECOVERIES} failed recovery attempts in a row");
        }
    }
}

/// Sets `active` to `now`; true when it just turned on.
fn rising(active: &mut bool, now: bool) -> bool {
    let started = now && !*active;
    *active = now;
    started
}
