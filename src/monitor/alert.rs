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
/// A source whose committed text is further behind its audio than this
/// raises the lag alert (the bound at which load-adaptive inference stops
/// partial passes, [`crate::inference::load::LoadPolicy`]).
pub const LAG_THRESHOLD_MS: u64 = 2_000;
/// This many failed reopen attempts in a row raises the recovery alert.
pub const FAILED_RECOVERIES: u64 = 3;

/// Episodes of each alert so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    pub cpu: u64,
    pub memory: u64,
    pub ring: u64,
    pub recovery: u64,
    pub lag: u64,
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
    lag_active: bool,
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
        let behind = sample
            .sources
            .iter()
            .max_by_key(|s| s.lag_ms)
            .filter(|s| s.lag_ms > LAG_THRESHOLD_MS);
        if rising(&mut self.lag_active, behind.is_some()) {
            self.counts.lag += 1;
            if let Some(s) = behind {
                tracing::warn!(
                    source = s.source.as_str(),
                    lag_ms = s.lag_ms,
                    threads = s.inference_threads,
                    "alert: transcription is more than {} s behind the audio ({})",
                    LAG_THRESHOLD_MS / 1000,
                    s.degraded.unwrap_or("nothing degraded yet")
                );
            }
        }
    }
}

/// Sets `active` to `now`; true when it just turned on.
fn rising(active: &mut bool, now: bool) -> bool {
    let started = now && !*active;
    *active = now;
    started
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::SourceSample;

    fn sample(t_s: f64, lag_ms: u64) -> Sample {
        Sample {
            t_s,
            cpu_total_percent: 10.0,
            cpu_per_core_percent: vec![10.0, 10.0],
            process_cpu_percent: 10.0,
            rss_bytes: 50 * 1024 * 1024,
            temperature_c: None,
            buffer_ms: 30,
            sources: vec![SourceSample {
                source: "them".into(),
                ring_fill: 0.0,
                xruns: 0,
                stream_errors: 0,
                overflowed_samples: 0,
                samples_offered: 0,
                inference_rtf: 0.5,
                lag_ms,
                max_lag_ms: lag_ms,
                inference_threads: 2,
                degraded: None,
                degraded_code: 0,
                aborted_partials: 0,
                realtime_priority: true,
                pinned_core: None,
                recovery_attempts: 0,
                failed_recovery_attempts: 0,
                consecutive_failed_attempts: 0,
                recoveries: 0,
                gaps: 0,
                recovering: false,
                on_fallback: false,
                device: "spk.monitor".into(),
            }],
        }
    }

    #[test]
    fn lag_past_the_bound_raises_one_alert_per_episode() {
        let mut alerts = Alerts::default();
        for (t, lag) in [
            (0.0, 500),
            (1.0, 2_500),
            (2.0, 4_000),
            (3.0, 900),
            (4.0, 2_100),
        ] {
            alerts.observe(&sample(t, lag));
        }
        // Two episodes: 2.5-4.0 s, then 2.1 s after it had cleared.
        assert_eq!(alerts.counts().lag, 2);
        assert_eq!(alerts.counts().memory, 0);
        let mut calm = Alerts::default();
        calm.observe(&sample(0.0, LAG_THRESHOLD_MS));
        assert_eq!(calm.counts().lag, 0, "at the bound is not past it");
    }
}
