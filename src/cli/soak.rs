//! `hark soak`: the stability harness (see [`crate::soak`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::options::{number_in, parse_threads, whole_in, MAX_SECONDS, MAX_THREADS};

use anyhow::Context as _;

use crate::capture::SourceKind;
use crate::pipeline::PipelineConfig;
use crate::soak::{self, Bounds, SoakConfig};
use crate::soundserver::SoundServer;

/// Which sources the soak captures.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SoakSource {
    Loopback,
    Mic,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to run: seconds, or with a unit (90s, 30m, 2h).
    #[arg(long, default_value = "60", value_parser = parse_duration)]
    pub duration: Duration,
    /// Which device(s) the programme is played into and captured from.
    #[arg(long, value_enum, default_value = "loopback")]
    pub source: SoakSource,
    /// Busy threads competing for the CPU.
    #[arg(long, default_value_t = 0, value_parser = |s: &str| whole_in(s, 0, MAX_THREADS as u64).map(|n| n as usize))]
    pub stress: usize,
    /// Remove and restore the device(s) mid-run.
    #[arg(long)]
    pub faults: bool,
    /// Model file.
    #[arg(long, default_value = "models/tiny.en-q8_0.bin")]
    pub model: PathBuf,
    /// The programme WAV (a .tsv of phrases beside it).
    #[arg(long, default_value = "assets/programme.wav")]
    pub programme: PathBuf,
    /// Report directory (report.json, summary.txt, plots, transcript).
    #[arg(long, default_value = "soak-report")]
    pub out: PathBuf,
    /// Whisper threads per worker. Default: 1 when --stress is given or both
    /// sources run, else 2. whisper.cpp's threads spin while they wait for
    /// each other, so when the cores are oversubscribed a 2-thread decode is
    /// several times slower than a 1-thread one (measured on 2 cores under
    /// load: a 5 s window took 6.6 s with 2 threads, 0.9 s with 1).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Serve Prometheus metrics during the run at this loopback address
    /// (e.g. 127.0.0.1:9187).
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Internal: run as the kill -9 child, streaming the programme into this
    /// transcript (started by `--faults`).
    #[arg(long, hide = true)]
    pub crash_child: Option<PathBuf>,
    /// Bound: word error rate over the phrases heard.
    #[arg(long, default_value_t = 0.25, value_parser = |s: &str| number_in(s, 0.0, 100.0))]
    pub max_wer: f64,
    /// Bound: 95th percentile of final latency, seconds [default: 2 with
    /// --stress 0, 3 with 1, 4 with 2 or more].
    #[arg(long, value_parser = |s: &str| number_in(s, 0.0, MAX_SECONDS))]
    pub max_latency_p95: Option<f64>,
    /// Bound: resident memory, MB (the design's process limit).
    #[arg(long, default_value_t = soak::DESIGN_RSS_MB, value_parser = |s: &str| number_in(s, 0.0, 1.0e9))]
    pub max_rss_mb: f64,
    /// Bound: samples lost (ring overflow, never pumped).
    #[arg(long, default_value_t = 0)]
    pub max_lost_samples: u64,
    /// Bound: wall time not covered by audio or gap fill, ms, plus
    /// --clock-drift-ppm of the wall time.
    #[arg(long, default_value_t = 500.0, value_parser = |s: &str| number_in(s, 0.0, MAX_SECONDS * 1000.0))]
    pub max_unaccounted_ms: f64,
    /// Capture clock drift allowed against the wall clock, parts per
    /// million (added to --max-unaccounted-ms).
    #[arg(long, default_value_t = 1500.0, value_parser = |s: &str| number_in(s, 0.0, 1.0e6))]
    pub clock_drift_ppm: f64,
    /// Bound: seconds from a device's return to capturing from it.
    #[arg(long, default_value_t = 10.0, value_parser = |s: &str| number_in(s, 0.0, MAX_SECONDS))]
    pub max_recovery: f64,
    /// Bound: RSS growth, MB per hour (runs of 10 min or more).
    #[arg(long, default_value_t = soak::DESIGN_RSS_GROWTH_MB_PER_HOUR, value_parser = |s: &str| number_in(s, 0.0, 1.0e9))]
    pub max_rss_growth: f64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 90, 90s, 30m, 2h)"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': unit must be s, m or h")),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS) {
        return Err(format!(
            "'{text}': the duration must be above 0 and at most {MAX_SECONDS} s (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Whisper threads per worker when `--threads` is not given: one when the
/// cores will be oversubscribed (stress threads or a second source), where
/// whisper.cpp's spinning threads slow each other down, else two.
fn default_threads(stress_threads: usize, sources: usize) -> usize {
    if stress_threads > 0 || sources > 1 {
        1
    } else {
        2
    }
}

/// Runs the soak; an error when any bound is missed.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(transcript) = &args.crash_child {
        soak::crash::run_child(&args.model, &args.programme, transcript)?;
        return Ok(());
    }
    let crash_child = soak::crash::ChildCommand {
        exe: std::env::current_exe().context("finding this executable for the crash child")?,
        args: vec![
            "soak".into(),
            "--model".into(),
            args.model.clone().into(),
            "--programme".into(),
            args.programme.clone().into(),
            "--crash-child".into(),
        ],
    };
    let sources = match args.source {
        SoakSource::Loopback => vec![SourceKind::Loopback],
        SoakSource::Mic => vec![SourceKind::Mic],
        SoakSource::Both => vec![SourceKind::Loopback, SourceKind::Mic],
    };
    let threads = args
        .threads
        .unwrap_or_else(|| default_threads(args.stress, sources.len()));
    if threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let server = SoundServer::start().context("starting the private sound server")?;
    // SAFETY: no thread has started yet (argument parsing and logging set-up
    // spawn none); cpal reads these variables from the process environment.
    unsafe { server.export_env() };
    let interrupted = super::signals::install()?;
    let config = SoakConfig {
        duration: args.duration,
        sources,
        stress_threads: args.stress,
        faults: args.faults,
        model: args.model,
        programme: args.programme,
        out_dir: args.out.clone(),
        sample_interval: crate::monitor::DEFAULT_SAMPLE_INTERVAL,
        metrics_addr: args.metrics_addr,
        crash_child: Some(crash_child),
        bounds: Bounds {
            max_wer: args.max_wer,
            max_latency_p95: args.max_latency_p95.map_or_else(
                || Bounds::latency_p95_for_stress(args.stress),
                |s| Duration::from_secs_f64(s.max(0.0)),
            ),
            max_rss_mb: args.max_rss_mb,
            max_lost_samples: args.max_lost_samples,
            max_unaccounted_ms: args.max_unaccounted_ms,
            max_recovery: Duration::from_secs_f64(args.max_recovery.max(0.0)),
            max_rss_growth_mb_per_hour: args.max_rss_growth,
            clock_drift_ppm: args.clock_drift_ppm,
        },
        pipeline: PipelineConfig {
            threads,
            ..PipelineConfig::default()
        },
        interrupted,
    };
    let report = soak::run(&config, Arc::new(server)).map_err(|e| {
        let flags = super::flags::Flags {
            devices: Vec::new(),
            metrics_addr: args.metrics_addr.is_some(),
        };
        flags.name_in(anyhow::Error::new(e))
    })?;
    print!("{}", report.summary());
    println!("report: {}", args.out.display());
    if !report.pass {
        let failed: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect();
        anyhow::bail!("soak bounds missed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
