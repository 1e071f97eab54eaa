//! `hark live`: transcribe a microphone, system audio (loopback), or both,
//! as it plays.
//!
//! Output: committed text on stdout (txt when stdout is a terminal, jsonl
//! when it is piped, or `--format`); with `-o FILE` also into a durable
//! transcript file through [`crate::transcript::Writer`]. The live area
//! (partials, status line) goes to stderr when it is a terminal; see
//! [`super::view`].
//!
//! Stopping: the first SIGINT (Ctrl-C) or SIGTERM stops capture; the rings
//! are drained, inference finishes on what was captured, the text is
//! committed and the file flushed before exit (exit 0). A second signal
//! exits at once with 130: the file then holds whole records up to its last
//! flush.
//!
//! `--demo` plays a bundled clip into the speaker and transcribes it as
//! loopback; with no sound server reachable it first starts a private one
//! ([`crate::soundserver`]).
//!
//! Not real-time safe.

mod args;
mod demo;
mod status;

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::view::{Terminal, View};
use crate::capture::DeviceError;
use crate::event::{Event, EventKind, Source};
use crate::inference::Model;
use crate::monitor::MonitorConfig;
use crate::pipeline::{PipelineConfig, PipelineError};
use crate::session::{Session, SessionConfig, SessionError, SessionReport};
use crate::transcript::{Format, Formatter, Writer, WriterConfig};

pub use args::{default_threads, record_path, Args, EchoChoice, LiveUsageError, SourceChoice};
pub use demo::DEMO_CLIP;

use args::{check, sources};
use demo::{Demo, DEMO_LEAD_IN, DEMO_TAIL};
use status::{status, CpuMeter, STATUS_INTERVAL, STATUS_LOG_INTERVAL};

/// Runs `hark live`.
pub fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    check(&args)?;
    // The demo's private server must be in the environment before any
    // thread starts (cpal reads it from there): do it first.
    let demo = if args.demo {
        Some(Demo::prepare()?)
    } else {
        None
    };
    let sources = sources(&args);
    let server_reachable = sound_server_reachable();
    if !server_reachable && sources.iter().any(|s| s.source == Source::Loopback) {
        return Err(no_sound_server("loopback capture needs one on Linux").into());
    }
    let model_path = super::options::resolve_model(args.model.as_deref())?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let terminal = Terminal::detect(quiet);
    // Open the output before loading anything: a bad path fails first.
    let writer = open_writer(&args)?;
    let model = Model::load_live(&model_path)?;
    tracing::info!(
        "model {} loaded in {:?}",
        model_path.display(),
        model.load_time()
    );
    let interrupted = super::signals::install()?;
    let names: Vec<&str> = sources.iter().map(|s| s.source.speaker()).collect();
    if args.record_overwrite {
        for path in sources.iter().filter_map(|s| s.record.as_deref()) {
            remove_old_recording(path)?;
        }
    }
    let config = session_config(&args, sources, threads, &interrupted);
    let session = Session::start(&model, config, writer).map_err(|e| match e {
        // With no server the host falls back to ALSA; an ALSA without any
        // capture device means "no sound server" to the user.
        SessionError::Pipeline(PipelineError::Device(DeviceError::NoSuchDevice {
            available,
            ..
        })) if !server_reachable && available.is_empty() => {
            anyhow::Error::new(no_sound_server("and ALSA lists no capture device"))
        }
        other => flags(&args).name_in(anyhow::Error::new(other)),
    })?;
    if let Some(addr) = session.monitor().and_then(|m| m.metrics_addr()) {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    if !quiet {
        eprintln!(
            "hark: listening ({}), up to {threads} thread(s) per pass; Ctrl-C to stop",
            names.join(" + ")
        );
    }
    let stdout_format = args.format.unwrap_or(if terminal.stdout_tty {
        Format::Txt
    } else {
        Format::Jsonl
    });
    let mut view = Shown::new(View::new(
        terminal,
        Formatter::new(stdout_format).with_partials(args.partials),
    ));
    view.view.header().context("cannot write to stdout")?;
    let player = match &demo {
        Some(demo) => {
            std::thread::sleep(DEMO_LEAD_IN);
            Some(demo.play()?)
        }
        None => None,
    };
    let mut until = Until {
        interrupted: &interrupted,
        deadline: args
            .duration
            .map(|s| Instant::now() + Duration::from_secs_f64(s)),
        player,
        played_at: None,
    };
    let session = watch(session, &mut view, &mut until, terminal);
    until.stop_player();
    // Drain: the session commits what was captured, then the writer syncs.
    let mut tail = Vec::new();
    let report = session.stop(&mut tail);
    for event in tail {
        view.deliver(event);
    }
    let _ = view.view.finish();
    drop(demo);
    summarize(&report, quiet);
    if let Some(Err(e)) = report.transcript {
        return Err(anyhow::Error::new(e).context("transcript file"));
    }
    if !view.stdout_ok {
        anyhow::bail!("stdout was closed before the transcript ended");
    }
    Ok(())
}

/// The session for the flags: the sources, the monitor (and its metrics
/// port), the echo filter, the signal flag.
fn session_config(
    args: &Args,
    sources: Vec<crate::pipeline::SourceConfig>,
    threads: usize,
    interrupted: &Arc<AtomicBool>,
) -> SessionConfig {
    let mut config = SessionConfig::new(
        sources,
        PipelineConfig {
            threads,
            partials: true,
            echo: args.echo == EchoChoice::On,
            ..PipelineConfig::default()
        },
    );
    config.monitor = Some(MonitorConfig {
        metrics_addr: args.metrics_addr,
        ..MonitorConfig::default()
    });
    config.echo_filter = true;
    config.interrupted = Arc::clone(interrupted);
    config
}

/// Which flag gave which device name (an error names the flag).
fn flags(args: &Args) -> super::flags::Flags<'_> {
    let given = [
        ("--device", &args.device),
        ("--mic-device", &args.mic_device),
        ("--loopback-device", &args.loopback_device),
    ];
    super::flags::Flags {
        devices: given
            .into_iter()
            .filter_map(|(flag, name)| name.as_deref().map(|n| (flag, n)))
            .collect(),
        metrics_addr: args.metrics_addr.is_some(),
    }
}

/// Opens `-o` through the transcript writer.
fn open_writer(args: &Args) -> anyhow::Result<Option<Writer>> {
    let Some(path) = &args.output else {
        return Ok(None);
    };
    let format = args
        .format
        .or_else(|| Format::from_path(path))
        .unwrap_or(Format::Txt);
    let mut config = WriterConfig::new(path, format);
    config.include_partials = args.partials;
    Ok(Some(Writer::spawn(config)?))
}

/// When the main loop ends: a signal, `--duration`, or the demo's clip done.
struct Until<'a> {
    interrupted: &'a AtomicBool,
    deadline: Option<Instant>,
    player: Option<Child>,
    played_at: Option<Instant>,
}

impl Until<'_> {
    fn now(&mut self) -> bool {
        if self.interrupted.load(Ordering::Acquire)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
        {
            return true;
        }
        if let Some(child) = &mut self.player {
            if self.played_at.is_none() && !matches!(child.try_wait(), Ok(None)) {
                self.played_at = Some(Instant::now());
            }
        }
        self.played_at.is_some_and(|t| t.elapsed() >= DEMO_TAIL)
    }

    fn stop_player(&mut self) {
        if let Some(mut child) = self.player.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The main loop: shows events and the status until it is time to stop.
fn watch(mut session: Session, view: &mut Shown, until: &mut Until, terminal: Terminal) -> Session {
    let stats = session.stats();
    let mut cpu = CpuMeter::new();
    let mut last_status = Instant::now();
    let mut last_log = Instant::now();
    let mut events = Vec::new();
    while !until.now() {
        let open = session.poll(STATUS_INTERVAL, &mut events);
        for event in events.drain(..) {
            view.deliver(event);
        }
        if !open {
            break;
        }
        if last_status.elapsed() >= STATUS_INTERVAL {
            last_status = Instant::now();
            let status = status(&stats, session.chunk_ms(), cpu.percent(), view.latency_s);
            if terminal.live_area() {
                let _ = view.view.status(&status);
            } else if last_log.elapsed() >= STATUS_LOG_INTERVAL {
                last_log = Instant::now();
                tracing::info!("{}", super::view::status_line(&status));
            }
        }
    }
    session
}

/// The summary on stderr: per source what was captured and lost, the echo
/// handling, the transcript file.
fn summarize(report: &SessionReport, quiet: bool) {
    if let Some(monitor) = &report.monitor {
        tracing::debug!("alerts raised: {:?}", monitor.alerts);
    }
    if quiet {
        return;
    }
    for r in &report.sources {
        eprintln!(
            "hark: {} ({}): captured {} samples at {} Hz ({:.1} s), {} lost to overflow, \
             {} passes, {} words",
            r.source.speaker(),
            r.source,
            r.offered,
            r.rate_hz,
            r.offered as f64 / f64::from(r.rate_hz.max(1)),
            r.overflowed,
            r.worker.passes,
            r.worker.committed_words
        );
    }
    if let Some(echo) = &report.echo {
        eprintln!("hark: {}", echo.summary());
    }
    if let Some(Ok(written)) = &report.transcript {
        eprintln!(
            "hark: transcript {} ({} events written)",
            written.metrics.path.display(),
            written.metrics.events_written
        );
    }
}

/// What the terminal shows of the events.
struct Shown {
    view: View,
    latency_s: Option<f64>,
    stdout_ok: bool,
}

impl Shown {
    fn new(view: View) -> Shown {
        Shown {
            view,
            latency_s: None,
            stdout_ok: true,
        }
    }

    fn deliver(&mut self, event: Event) {
        if event.kind == EventKind::Final {
            if let Some(emitted) = event.emitted {
                self.latency_s = Some(emitted - event.end);
            }
        }
        if self.stdout_ok && self.view.event(&event).is_err() {
            // A closed pipe (e.g. `| head`): keep capturing into the file.
            self.stdout_ok = false;
        }
    }
}

/// Whether a PulseAudio (or PipeWire pulse) server answers; always true
/// where capture does not go through one (not Linux).
fn sound_server_reachable() -> bool {
    #[cfg(target_os = "linux")]
    {
        cpal::host_from_id(cpal::HostId::PulseAudio).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

fn no_sound_server(detail: &str) -> DeviceError {
    DeviceError::NoSoundServer {
        host: "PulseAudio".to_owned(),
        detail: format!("no server answers; {detail}"),
    }
}

/// `--record-overwrite`: removes an earlier recording at `path` (a symlink
/// is removed, not followed) so the new one is created in its place.
fn remove_old_recording(path: &std::path::Path) -> Result<(), crate::pipeline::RecordError> {
    let refuse = |e: std::io::Error| crate::pipeline::RecordError {
        path: path.to_path_buf(),
        source: hound::Error::IoError(e),
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(refuse(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        ))),
        Ok(_) => std::fs::remove_file(path).map_err(refuse),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refuse(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn explicit_model_wins() {
        let path = crate::cli::options::resolve_model(Some(Path::new("/m/x.bin"))).unwrap();
        assert_eq!(path, Path::new("/m/x.bin"));
    }
}
