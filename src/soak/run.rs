//! A soak's run: the session on the private server's devices, the
//! programme played into them, stress threads, and the device removals,
//! driven until the duration is over or a signal asks to stop.
//!
//! Not real-time safe.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::analysis::{self, Collected};
use super::fault::{self, Removable};
use super::programme::{Player, Programme};
use super::report::SoakReport;
use super::{removable, source_of, stress, FaultRun, SoakConfig, SoakError, FAULT_AT_FRACTION, MB};
use crate::capture::CaptureSpec;
use crate::inference::Model;
use crate::monitor::{MonitorConfig, Sampler};
use crate::pipeline::{Feed, SourceConfig, SourceStats};
use crate::session::{Session, SessionConfig};
use crate::soundserver::SoundServer;
use crate::transcript::{Format, Writer, WriterConfig};

/// How often the run loop takes events and checks the faults.
const TICK: Duration = Duration::from_millis(50);

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
    let model = Model::load_live(&config.model)?;
    let rss_after_model_load_mb = rss_mb(&mut sampler);

    let transcript_path = config.out_dir.join("transcript.jsonl");
    let writer = Writer::spawn(WriterConfig::new(&transcript_path, Format::Jsonl))?;
    let session = Session::start(&model, session_config(config), Some(writer))?;
    let rss_after_pipeline_start_mb = rss_mb(&mut sampler);
    drop(sampler);
    let clock = session.clock();
    let stats = session.stats();
    let monitor = session.monitor().expect("a soak runs the monitor");
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
    let (session, mut events, faults) = drive(config, &server, session, &stats)?;
    let stop_s = clock.elapsed().as_secs_f64();
    drop(stress);
    let plays: Vec<_> = players.into_iter().flat_map(Player::stop).collect();
    let report = session.stop(&mut events);
    let writer_report = match report.transcript {
        Some(Ok(written)) => written,
        Some(Err(e)) => return Err(e.into()),
        None => unreachable!("a soak writes a transcript"),
    };
    let collected = Collected {
        events,
        sources: report.sources,
        stats,
        samples: report
            .monitor
            .as_ref()
            .map(|m| m.samples.clone())
            .unwrap_or_default(),
        alerts: report.monitor.map(|m| m.alerts).unwrap_or_default(),
        faults,
        plays,
        stop_s,
        session_start_in_samples_s,
        memory: super::report::MemoryStages {
            rss_start_mb,
            rss_after_model_load_mb,
            rss_after_pipeline_start_mb,
            model_file_mb: std::fs::metadata(&config.model).map_or(0.0, |m| m.len() as f64 / MB),
        },
        writer: writer_report,
        transcript_path,
    };
    analysis::report(config, &programme, collected)
}

/// The session of a soak: every source on its removable device, the
/// monitor keeping its history.
fn session_config(config: &SoakConfig) -> SessionConfig {
    let sources: Vec<SourceConfig> = config
        .sources
        .iter()
        .map(|&kind| SourceConfig {
            source: source_of(kind),
            feed: Feed::Device(CaptureSpec::new(kind).with_device(removable(kind).device())),
            record: None,
        })
        .collect();
    let mut session = SessionConfig::new(sources, config.pipeline.clone());
    session.monitor = Some(MonitorConfig {
        interval: config.sample_interval,
        metrics_addr: config.metrics_addr,
        keep_history: true,
    });
    session.interrupted = Arc::clone(&config.interrupted);
    session
}

/// Takes events and drives the faults until the duration is over or the
/// stop flag is set.
fn drive(
    config: &SoakConfig,
    server: &SoundServer,
    mut session: Session,
    stats: &[Arc<SourceStats>],
) -> Result<(Session, Vec<crate::event::Event>, Vec<FaultRun>), SoakError> {
    let clock = session.clock();
    let mut events = Vec::new();
    let mut faults: Vec<FaultRun> = Vec::new();
    let run_start = Instant::now();
    let fault_at = config.duration.mul_f64(FAULT_AT_FRACTION);
    while run_start.elapsed() < config.duration {
        if config.interrupted.load(Ordering::Acquire) {
            tracing::warn!("soak: interrupted; stopping early");
            break;
        }
        if config.faults && faults.is_empty() && run_start.elapsed() >= fault_at {
            for &kind in &config.sources {
                fault::remove(server, removable(kind))?;
                tracing::warn!(device = removable(kind).device(), "soak: device removed");
                faults.push(FaultRun {
                    kind,
                    removed_at_s: clock.elapsed().as_secs_f64(),
                    restored_at_s: None,
                    capturing_again_at_s: None,
                    home_at_s: None,
                });
            }
        }
        for f in &mut faults {
            follow(f, server, stats, clock.elapsed().as_secs_f64())?;
        }
        session.poll(TICK, &mut events);
    }
    Ok((session, events, faults))
}

/// Restores a removed device after [`super::FAULT_HOLD`] and notes when its
/// source captures again and when it is back on its own device.
fn follow(
    f: &mut FaultRun,
    server: &SoundServer,
    stats: &[Arc<SourceStats>],
    at: f64,
) -> Result<(), SoakError> {
    let device: Removable = removable(f.kind);
    if f.restored_at_s.is_none() && at - f.removed_at_s >= super::FAULT_HOLD.as_secs_f64() {
        fault::restore(server, device)?;
        tracing::warn!(device = device.device(), "soak: device restored");
        f.restored_at_s = Some(at);
    }
    let Some(s) = stats.iter().find(|s| s.source == source_of(f.kind)) else {
        return Ok(());
    };
    let recovery = &s.recovery;
    let failures = recovery.failures.load(Ordering::Acquire);
    let running = failures > 0 && !recovery.recovering.load(Ordering::Acquire);
    if f.capturing_again_at_s.is_none() && running {
        f.capturing_again_at_s = Some(at);
    }
    let home = running
        && !recovery.on_fallback.load(Ordering::Acquire)
        && recovery.device() == device.device();
    if f.restored_at_s.is_some() && f.home_at_s.is_none() && home {
        f.home_at_s = Some(at);
    }
    Ok(())
}
