//! The soak's report: `report.json`, `summary.txt` (also printed), plots.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::checks::{Check, WerResult};
use super::crash::CrashResult;
use super::programme::Play;
use super::SoakError;
use crate::monitor::{AlertCounts, Sample};
use crate::pipeline::GapRecord;

/// What one source did.
#[derive(Debug, Clone, Serialize)]
pub struct SourceResult {
    pub source: String,
    pub rate_hz: u32,
    pub samples_offered: u64,
    pub samples_pumped: u64,
    pub samples_overflowed: u64,
    /// Overflowed plus offered-but-never-pumped.
    pub samples_lost: u64,
    /// Wall time from the first sample to stop, seconds.
    pub wall_s: f64,
    /// The 16 kHz timeline (captured audio plus gap silence), seconds.
    pub timeline_s: f64,
    /// Of which digital silence filling gaps, seconds.
    pub gap_fill_s: f64,
    /// Wall time not covered by the timeline, ms (capture latency at stop).
    pub unaccounted_ms: f64,
    pub gaps: Vec<GapRecord>,
    pub gap_events_in_transcript: usize,
    pub recoveries: u64,
    pub recovery_attempts: u64,
    pub failed_recovery_attempts: u64,
    pub fallbacks: u64,
    pub returns: u64,
    pub finals: usize,
    pub wer: WerResult,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub latency_max_s: f64,
    pub inference_passes: u64,
    pub worker_errors: u64,
}

/// One injected fault and how the source came through it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultResult {
    pub device: String,
    pub removed_at_s: f64,
    pub restored_at_s: f64,
    /// A stream ran again (on any device), session seconds.
    pub capturing_again_at_s: Option<f64>,
    /// Back on the device asked for, session seconds.
    pub home_at_s: Option<f64>,
}

/// Memory at the stages of start-up.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryStages {
    pub rss_start_mb: f64,
    pub rss_after_model_load_mb: f64,
    pub rss_after_pipeline_start_mb: f64,
    pub model_file_mb: f64,
}

/// The transcript file as read back.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptResult {
    pub path: String,
    pub bytes: u64,
    pub records: usize,
    pub torn_bytes: usize,
    pub unparsable_lines: usize,
    pub events_written: u64,
    pub finals_received: usize,
    pub finals_in_file: usize,
    pub gaps_in_file: usize,
    pub flush_latency_p99_ms: f64,
    pub mode: String,
}

/// Everything the soak measured and decided.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub pass: bool,
    pub duration_s: f64,
    pub stress_threads: usize,
    pub faults: Vec<FaultResult>,
    pub sources: Vec<SourceResult>,
    pub transcript: TranscriptResult,
    pub memory: MemoryStages,
    pub rss_end_mb: f64,
    pub rss_max_mb: f64,
    pub rss_slope_mb_per_hour: f64,
    pub process_cpu_mean_percent: f64,
    pub process_cpu_max_percent: f64,
    pub machine_cpu_mean_percent: f64,
    pub temperature_available: bool,
    pub alerts: AlertCounts,
    pub checks: Vec<Check>,
    pub plays: Vec<Play>,
    pub samples: Vec<Sample>,
    /// (emitted at, latency) of every final, seconds.
    pub latency_series: Vec<(f64, f64)>,
    /// The sample time (`Sample::t_s`) at which the session clock started:
    /// session time = `t_s` minus this.
    pub session_start_in_samples_s: f64,
    /// The kill -9 and restart check, when it ran.
    pub crash: Option<CrashResult>,
    pub plots: Vec<String>,
    pub plot_note: Option<String>,
}

impl SoakReport {
    /// The short human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let verdict = if self.pass { "PASS" } else { "FAIL" };
        let _ = writeln!(
            s,
            "hark soak: {verdict}  ({:.0} s, {} stress thread(s), {} fault(s))",
            self.duration_s,
            self.stress_threads,
            self.faults.len()
        );
        self.summarize_runs(&mut s);
        let m = &self.memory;
        let _ = writeln!(
            s,
            "  RSS: start {:.1} MB, model loaded {:.1} MB, pipeline running {:.1} MB, end {:.1} MB, \
             max {:.1} MB, slope {:+.1} MB/h",
            m.rss_start_mb,
            m.rss_after_model_load_mb,
            m.rss_after_pipeline_start_mb,
            self.rss_end_mb,
            self.rss_max_mb,
            self.rss_slope_mb_per_hour
        );
        let _ = writeln!(
            s,
            "  CPU: process mean {:.0}% max {:.0}% (of one core), machine mean {:.0}%; temperature {}",
            self.process_cpu_mean_percent,
            self.process_cpu_max_percent,
            self.machine_cpu_mean_percent,
            if self.temperature_available { "sampled" } else { "not available on this machine" }
        );
        let t = &self.transcript;
        let _ = writeln!(
            s,
            "  transcript: {} records, {} torn bytes, {} unparsable, {} finals received / {} in file, \
             {} gaps in file, mode {}",
            t.records, t.torn_bytes, t.unparsable_lines, t.finals_received, t.finals_in_file,
            t.gaps_in_file, t.mode
        );
        self.summarize_checks(&mut s);
        s
    }

    /// Per source and per fault, for [`SoakReport::summary`].
    fn summarize_runs(&self, s: &mut String) {
        for r in &self.sources {
            let _ = writeln!(
                s,
                "  {}: {} samples at {} Hz, lost {}, timeline {:.2} s of {:.2} s wall \
                 (gaps {} = {:.2} s, unaccounted {:.0} ms), recoveries {} ({} attempts, {} failed)",
                r.source,
                r.samples_offered,
                r.rate_hz,
                r.samples_lost,
                r.timeline_s,
                r.wall_s,
                r.gaps.len(),
                r.gap_fill_s,
                r.unaccounted_ms,
                r.recoveries,
                r.recovery_attempts,
                r.failed_recovery_attempts
            );
            let _ = writeln!(
                s,
                "    WER {:.3} over {} phrases ({} excluded), latency p50 {:.2} s p95 {:.2} s max {:.2} s",
                r.wer.wer,
                r.wer.phrases_counted,
                r.wer.phrases_excluded,
                r.latency_p50_s,
                r.latency_p95_s,
                r.latency_max_s
            );
        }
        for f in &self.faults {
            let _ = writeln!(
                s,
                "  fault {}: removed {:.1} s, restored {:.1} s, capturing again {}, home {}",
                f.device,
                f.removed_at_s,
                f.restored_at_s,
                f.capturing_again_at_s
                    .map_or("never".into(), |t| format!("{t:.1} s")),
                f.home_at_s.map_or("never".into(), |t| format!("{t:.1} s")),
            );
        }
    }

    /// The crash, the alerts, the checks and the plots.
    fn summarize_checks(&self, s: &mut String) {
        if let Some(c) = &self.crash {
            let _ = writeln!(
                s,
                "  kill -9 x{}: flushed bytes at kill {:?}, torn bytes cut {:?}, final {} bytes / {} records, \
                 {} unparsable, prefix kept {}, appended after restart {}",
                c.kills,
                c.flushed_bytes_at_kill,
                c.torn_bytes_cut,
                c.final_bytes,
                c.final_records,
                c.unparsable_lines,
                c.flushed_prefix_kept,
                c.appended_after_restart
            );
        }
        let a = &self.alerts;
        let _ = writeln!(
            s,
            "  alerts: cpu {}, memory {}, ring {}, recovery {}",
            a.cpu, a.memory, a.ring, a.recovery
        );
        for c in &self.checks {
            let mark = if c.pass { "ok  " } else { "FAIL" };
            let _ = writeln!(
                s,
                "  [{mark}] {}: {:.3} (bound {:.3}) {}",
                c.name, c.value, c.bound, c.detail
            );
        }
        if let Some(note) = &self.plot_note {
            let _ = writeln!(s, "  plots: {note}");
        } else if !self.plots.is_empty() {
            let _ = writeln!(s, "  plots: {}", self.plots.join(", "));
        }
    }

    /// Writes `report.json` and `summary.txt` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), SoakError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| SoakError::Output {
                path,
                detail: e.to_string(),
            }
        };
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| SoakError::Output {
            path: json.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&json, text).map_err(io(&json))?;
        let summary = dir.join("summary.txt");
        std::fs::write(&summary, self.summary()).map_err(io(&summary))?;
        Ok(())
    }
}
