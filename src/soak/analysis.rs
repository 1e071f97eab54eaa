//! A soak's outcome: the transcript read back, per-source results, the
//! checks against the bounds, and the report with its plots.
//!
//! Not real-time safe.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::checks::{self, Check};
use super::fault::Removable;
use super::programme::{self, Programme};
use super::report::{FaultResult, MemoryStages, SoakReport, SourceResult, TranscriptResult};
use super::{crash, plots, removable, source_of, Bounds, FaultRun, SoakConfig, SoakError, MB};
use super::{DISTURBANCE_MARGIN_S, SLOPE_MIN_DURATION};
use crate::event::{Event, EventKind, Source};
use crate::monitor::{AlertCounts, Sample};
use crate::pipeline::{SourceReport, SourceStats};
use crate::transcript::{Format, WriterReport};

/// Everything a run gathered, handed to [`report`].
pub(super) struct Collected {
    pub events: Vec<Event>,
    pub sources: Vec<SourceReport>,
    pub stats: Vec<Arc<SourceStats>>,
    pub samples: Vec<Sample>,
    pub alerts: AlertCounts,
    pub faults: Vec<FaultRun>,
    pub plays: Vec<programme::Play>,
    pub stop_s: f64,
    pub session_start_in_samples_s: f64,
    pub memory: MemoryStages,
    pub writer: WriterReport,
    pub transcript_path: PathBuf,
}

/// Checks what was gathered against the bounds and writes the report.
pub(super) fn report(
    config: &SoakConfig,
    programme: &Programme,
    c: Collected,
) -> Result<SoakReport, SoakError> {
    let (transcript, in_file) = read_back(&c.transcript_path, &c.writer, &c.events)?;
    let mut checks = Vec::new();
    let source_results = sources(config, programme, &c, &in_file, &mut checks);
    let fault_results = fault_checks(config, &c.faults, &mut checks);
    let crash = crash_check(config, &mut checks)?;
    transcript_check(&transcript, &mut checks);
    let mut report = assemble(config, c, transcript, source_results, fault_results, checks);
    report.crash = crash;
    report.pass = report.checks.iter().all(|c| c.pass);
    match plots::draw(&report, &config.out_dir) {
        Ok(files) => report.plots = files,
        Err(e) => report.plot_note = Some(format!("plots failed: {e}")),
    }
    report.write(&config.out_dir)?;
    Ok(report)
}

/// The transcript file read back: what it holds, and its events.
fn read_back(
    transcript_path: &std::path::Path,
    writer_report: &WriterReport,
    events: &[Event],
) -> Result<(TranscriptResult, Vec<Event>), SoakError> {
    let bytes = std::fs::read(transcript_path).map_err(|e| SoakError::Output {
        path: transcript_path.to_path_buf(),
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

    Ok((transcript, in_file))
}

/// Per-source results and their checks.
fn sources(
    config: &SoakConfig,
    programme: &Programme,
    c: &Collected,
    in_file: &[Event],
    checks: &mut Vec<Check>,
) -> Vec<SourceResult> {
    let (reports, stats, events, plays, faults, stop_s) = (
        &c.sources, &c.stats, &c.events, &c.plays, &c.faults, c.stop_s,
    );
    let mut source_results = Vec::new();
    for report in reports {
        let Some(live) = stats.iter().find(|s| s.source == report.source) else {
            continue;
        };
        let result = source_result(report, live, events, programme, plays, faults, stop_s);
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
        source_checks(&result, &config.bounds, checks);
        source_results.push(result);
    }
    source_results
}

/// The devices' recovery checks.
fn fault_checks(
    config: &SoakConfig,
    faults: &[FaultRun],
    checks: &mut Vec<Check>,
) -> Vec<FaultResult> {
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
    fault_results
}

/// With faults and a crash child: kill -9 and restart on one transcript.
fn crash_check(
    config: &SoakConfig,
    checks: &mut Vec<Check>,
) -> Result<Option<crash::CrashResult>, SoakError> {
    Ok(match (&config.crash_child, config.faults) {
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
    })
}

/// The transcript holds every final received, nothing torn.
fn transcript_check(transcript: &TranscriptResult, checks: &mut Vec<Check>) {
    let t = transcript;
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
}

/// The report: memory, CPU, latency series and everything checked.
fn assemble(
    config: &SoakConfig,
    c: Collected,
    transcript: TranscriptResult,
    source_results: Vec<SourceResult>,
    fault_results: Vec<FaultResult>,
    mut checks: Vec<Check>,
) -> SoakReport {
    let (samples, reports, stats, events) = (c.samples, c.sources, c.stats, c.events);
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
    let report = SoakReport {
        pass: false,
        duration_s: c.stop_s,
        stress_threads: config.stress_threads,
        faults: fault_results,
        sources: source_results,
        transcript,
        memory: c.memory,
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
        alerts: c.alerts,
        checks,
        plays: c.plays,
        samples,
        latency_series,
        session_start_in_samples_s: c.session_start_in_samples_s,
        crash: None,
        plots: Vec::new(),
        plot_note: None,
    };
    report
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
