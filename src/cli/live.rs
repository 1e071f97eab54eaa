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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::RecvTimeoutError;

use super::view::{SourceStatus, Status, Terminal, View};
use crate::capture::{CaptureSpec, DeviceError, SourceKind};
use crate::echo::{EchoFilter, FilterConfig};
use crate::event::{Event, EventKind, Source};
use crate::inference::{InferenceError, Model};
use crate::pipeline::{Feed, Pipeline, PipelineConfig, PipelineError, SourceConfig, SourceStats};
use crate::soundserver::{self, SoundServer};
use crate::transcript::{Format, Formatter, Writer, WriterConfig};

/// The clip `--demo` plays.
pub const DEMO_CLIP: &str = "assets/weather.wav";
/// How often the status line is redrawn.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often the status is logged (at info, seen with -v) when stderr is
/// not a terminal.
const STATUS_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Exit code after a second Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// Audio `--demo` keeps capturing after the clip has been handed over: the
/// server's buffers and the VAD's hangover.
const DEMO_TAIL: Duration = Duration::from_millis(1500);
/// Silence captured before `--demo` starts playing.
const DEMO_LEAD_IN: Duration = Duration::from_millis(300);
/// Most Whisper threads a worker gets by default.
const MAX_DEFAULT_THREADS: usize = 4;

/// What to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    /// The microphone (default input): lines labelled "you".
    Mic,
    /// What the system plays (the default output's monitor): "them".
    Loopback,
    /// Both at once, each with its own ring and worker.
    Both,
}

/// Flags of `hark live`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output: committed text goes to stdout (txt on a terminal, jsonl when piped, unless --format);
partials and a status line are drawn on stderr when it is a terminal. With -o the transcript is
also written, batched and synced, to FILE (format from --format, else the file's extension, else
txt).

Stopping: Ctrl-C or SIGTERM stops capture, finishes transcribing what was captured and flushes the
file; a second Ctrl-C exits at once (code 130), leaving the file with whole records.")]
pub struct Args {
    /// What to capture.
    #[arg(long, value_enum, default_value_t = SourceChoice::Mic)]
    pub source: SourceChoice,
    /// Device for --source mic or loopback: a name or unique part of one,
    /// as `hark devices` lists. With --source both use --mic-device and
    /// --loopback-device.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Microphone device (--source mic or both).
    #[arg(long, value_name = "NAME")]
    pub mic_device: Option<String>,
    /// Loopback device (--source loopback or both).
    #[arg(long, value_name = "NAME")]
    pub loopback_device: Option<String>,
    /// Model file; default: $HARK_MODEL, else models/tiny.en-q8_0.bin
    /// found from the current directory or the executable's upwards.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Whisper threads per source; default: the cores shared among the
    /// sources (1 each with both sources on 2 cores), at most 4.
    #[arg(long, value_name = "N", value_parser = super::options::parse_threads)]
    pub threads: Option<usize>,
    /// Transcript format, for stdout and -o.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write the transcript to FILE (appends; durable; see --format).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Save the captured audio (mono 16-bit WAV at the device's rate). With
    /// --source both: FILE-mic.wav and FILE-loopback.wav.
    #[arg(long, value_name = "FILE.wav")]
    pub record: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = super::options::parse_seconds)]
    pub duration: Option<f64>,
    /// Write partial hypotheses into the transcript (txt and jsonl only).
    #[arg(long)]
    pub partials: bool,
    /// Serve metrics (ring fill, buffer size, CPU, RSS, lag, writer mode,
    /// alerts) in Prometheus text format at http://ADDR/metrics; loopback
    /// addresses only, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// With --source both: cancel the far end's echo in the microphone
    /// (the loopback is the reference) and drop mic utterances that repeat
    /// the loopback's words of the same moment. Off for headphones, or to
    /// keep the raw microphone.
    #[arg(long, value_enum, default_value_t = EchoChoice::Off, value_name = "on|off")]
    pub echo: EchoChoice,
    /// Play a bundled clip into the speaker and transcribe it as loopback;
    /// starts a private sound server if none is running.
    #[arg(long, conflicts_with_all = ["source", "device", "mic_device", "loopback_device"])]
    pub demo: bool,
}

/// A flag value that cannot work, named.
#[derive(Debug, thiserror::Error)]
pub enum LiveUsageError {
    #[error(
        "--device names one device; with --source both use --mic-device and --loopback-device"
    )]
    DeviceWithBoth,
    #[error("--{flag} does not apply to --source {choice}")]
    UnusedDevice { flag: &'static str, choice: String },
    #[error("--duration {0}: expected a positive number of seconds")]
    Duration(f64),
    #[error("--threads 0: expected at least 1")]
    Threads,
    #[error("--partials needs --format txt or jsonl (srt and vtt hold committed text only)")]
    PartialsFormat,
}

/// `--echo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoChoice {
    On,
    Off,
}

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
    let threads = args
        .threads
        .unwrap_or_else(|| default_threads(sources.len()));
    let terminal = Terminal::detect(quiet);
    let stdout_format = args.format.unwrap_or(if terminal.stdout_tty {
        Format::Txt
    } else {
        Format::Jsonl
    });
    let file_format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Txt);

    // Open the output before loading anything: a bad path fails first.
    let writer = match &args.output {
        Some(path) => {
            let mut config = WriterConfig::new(path, file_format);
            config.include_partials = args.partials;
            Some(Arc::new(Writer::spawn(config)?))
        }
        None => None,
    };
    let model = Model::load(&model_path).map_err(inference_error)?;
    tracing::info!(
        "model {} loaded in {:?}",
        model_path.display(),
        model.load_time()
    );

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag before this signal sets it:
        // only a second signal exits at once.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            EXIT_INTERRUPTED,
            Arc::clone(&stop),
        )
        .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }

    let config = PipelineConfig {
        threads,
        partials: true,
        echo: args.echo == EchoChoice::On,
        ..PipelineConfig::default()
    };
    let (events_tx, events) = crossbeam_channel::unbounded();
    let pipeline = Pipeline::start(&model, &config, &sources, events_tx).map_err(|e| match e {
        // With no server the host falls back to ALSA; an ALSA without any
        // capture device means "no sound server" to the user.
        PipelineError::Device(DeviceError::NoSuchDevice { available, .. })
            if !server_reachable && available.is_empty() =>
        {
            anyhow::Error::new(no_sound_server("and ALSA lists no capture device"))
        }
        other => pipeline_error(other),
    })?;
    let stats = pipeline.stats();
    // The monitor samples off the real-time thread, raises the alerts as log
    // events and serves the metrics when asked.
    let probe = writer.as_ref().map(|w| {
        let w = Arc::clone(w);
        Box::new(move || w.metrics()) as crate::monitor::WriterProbe
    });
    let monitor = crate::monitor::Monitor::spawn(
        crate::monitor::MonitorConfig {
            metrics_addr: args.metrics_addr,
            ..crate::monitor::MonitorConfig::default()
        },
        stats.clone(),
        pipeline.chunk_ms_handle(),
        probe,
    )?;
    if let Some(addr) = monitor.metrics_addr() {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    if !quiet {
        let names: Vec<&str> = sources.iter().map(|s| s.source.speaker()).collect();
        eprintln!(
            "hark: listening ({}), {threads} thread(s) per source; Ctrl-C to stop",
            names.join(" + ")
        );
    }

    let mut view = View::new(
        terminal,
        Formatter::new(stdout_format).with_partials(args.partials),
    );
    view.header().context("cannot write to stdout")?;
    let mut session = Session {
        view,
        writer_tx: writer.as_deref().map(Writer::sender),
        latency_s: None,
        stdout_ok: true,
        filter: pipeline
            .echo_stats()
            .map(|stats| EchoFilter::new(FilterConfig::default(), stats)),
        released: Vec::new(),
    };
    let mut player = match &demo {
        Some(demo) => {
            std::thread::sleep(DEMO_LEAD_IN);
            Some(demo.play()?)
        }
        None => None,
    };
    let mut played_at: Option<Instant> = None;
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut cpu = CpuMeter::new();
    let mut last_status = Instant::now();
    let mut last_log = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(child) = &mut player {
            if played_at.is_none() && !matches!(child.try_wait(), Ok(None)) {
                played_at = Some(Instant::now());
            }
            if played_at.is_some_and(|t| t.elapsed() >= DEMO_TAIL) {
                break;
            }
        }
        match events.recv_timeout(STATUS_INTERVAL) {
            Ok(event) => session.event(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_status.elapsed() >= STATUS_INTERVAL {
            last_status = Instant::now();
            session.tick();
            let status = status(
                &stats,
                pipeline.chunk_ms(),
                cpu.percent(),
                session.latency_s,
            );
            if terminal.live_area() {
                let _ = session.view.status(&status);
            } else if last_log.elapsed() >= STATUS_LOG_INTERVAL {
                last_log = Instant::now();
                tracing::info!("{}", super::view::status_line(&status));
            }
        }
    }
    if let Some(mut child) = player {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    // Drain: the pipeline commits what was captured; then the writer syncs.
    let pipeline_echo = pipeline.echo_stats();
    let reports = pipeline.stop();
    for event in events.try_iter() {
        session.event(event);
    }
    session.finish_filter();
    let _ = session.view.finish();
    drop(session.writer_tx.take());
    // The monitor holds the writer's probe: stop it before finishing.
    let alerts = monitor.stop().alerts;
    tracing::debug!("alerts raised: {alerts:?}");
    let written = match writer.map(Arc::try_unwrap) {
        Some(Ok(writer)) => Some(writer.finish().context("transcript file")?),
        Some(Err(_)) => anyhow::bail!("the transcript writer is still shared; it was not finished"),
        None => None,
    };
    drop(demo);
    if !quiet {
        for r in &reports {
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
        if let Some(echo) = pipeline_echo {
            eprintln!("hark: {}", echo.summary());
        }
        if let Some(report) = written {
            eprintln!(
                "hark: transcript {} ({} events written)",
                report.metrics.path.display(),
                report.metrics.events_written
            );
        }
    }
    if !session.stdout_ok {
        anyhow::bail!("stdout was closed before the transcript ended");
    }
    Ok(())
}

/// What the main loop does with each event.
struct Session {
    view: View,
    writer_tx: Option<crate::transcript::EventSender>,
    latency_s: Option<f64>,
    stdout_ok: bool,
    /// The echo filter (both sources, echo on): every event passes it.
    filter: Option<EchoFilter>,
    released: Vec<Event>,
}

impl Session {
    fn event(&mut self, event: Event) {
        match &mut self.filter {
            Some(filter) => {
                filter.push(event, Instant::now(), &mut self.released);
                self.deliver_released();
            }
            None => self.deliver(event),
        }
    }

    fn tick(&mut self) {
        if let Some(filter) = &mut self.filter {
            filter.tick(Instant::now(), &mut self.released);
            self.deliver_released();
        }
    }

    fn finish_filter(&mut self) {
        if let Some(filter) = &mut self.filter {
            filter.finish(&mut self.released);
            self.deliver_released();
        }
    }

    fn deliver_released(&mut self) {
        let released = std::mem::take(&mut self.released);
        for event in released {
            self.deliver(event);
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
        if let Some(tx) = &self.writer_tx {
            // The main thread is not real-time: waiting on a full queue only
            // delays the view, never capture.
            if tx.send(event).is_err() {
                tracing::error!("the transcript writer stopped early");
                self.writer_tx = None;
            }
        }
    }
}

fn check(args: &Args) -> Result<(), LiveUsageError> {
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            return Err(LiveUsageError::Duration(d));
        }
    }
    if args.threads == Some(0) {
        return Err(LiveUsageError::Threads);
    }
    if args.partials && matches!(args.format, Some(Format::Srt | Format::Vtt)) {
        return Err(LiveUsageError::PartialsFormat);
    }
    let source = || format!("{:?}", args.source).to_lowercase();
    match args.source {
        SourceChoice::Both if args.device.is_some() => return Err(LiveUsageError::DeviceWithBoth),
        SourceChoice::Mic if args.loopback_device.is_some() => {
            return Err(LiveUsageError::UnusedDevice {
                flag: "loopback-device",
                choice: source(),
            })
        }
        SourceChoice::Loopback if args.mic_device.is_some() => {
            return Err(LiveUsageError::UnusedDevice {
                flag: "mic-device",
                choice: source(),
            })
        }
        _ => {}
    }
    Ok(())
}

/// The pipeline's sources for the flags.
fn sources(args: &Args) -> Vec<SourceConfig> {
    let mic = || args.mic_device.clone().or_else(|| args.device.clone());
    let loopback = || args.loopback_device.clone().or_else(|| args.device.clone());
    let chosen: Vec<(Source, SourceKind, Option<String>)> = match (args.demo, args.source) {
        (true, _) | (false, SourceChoice::Loopback) => {
            vec![(Source::Loopback, SourceKind::Loopback, loopback())]
        }
        (false, SourceChoice::Mic) => vec![(Source::Mic, SourceKind::Mic, mic())],
        (false, SourceChoice::Both) => vec![
            (Source::Mic, SourceKind::Mic, mic()),
            (Source::Loopback, SourceKind::Loopback, loopback()),
        ],
    };
    let several = chosen.len() > 1;
    chosen
        .into_iter()
        .map(|(source, kind, device)| {
            let mut spec = CaptureSpec::new(kind);
            spec.device = device;
            SourceConfig {
                source,
                feed: Feed::Device(spec),
                record: args
                    .record
                    .as_deref()
                    .map(|p| record_path(p, source, several)),
            }
        })
        .collect()
}

/// `--record FILE.wav` as is for one source; `FILE-mic.wav` and
/// `FILE-loopback.wav` for two.
pub fn record_path(base: &Path, source: Source, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wav".to_owned());
    base.with_file_name(format!("{stem}-{}.{ext}", source.label()))
}

/// Whisper threads per worker: the cores shared among the sources.
pub fn default_threads(sources: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / sources.max(1)).clamp(1, MAX_DEFAULT_THREADS)
}

/// `relative` under the current directory or the executable's directory,
/// or under one of their parents.
fn find_upwards(relative: &Path) -> Option<PathBuf> {
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
    ];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| {
            start
                .ancestors()
                .map(|dir| dir.join(relative))
                .collect::<Vec<_>>()
        })
        .find(|candidate| candidate.is_file())
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

/// Unwraps the pipeline's error so the typed cause decides the exit code
/// (`#[error(transparent)]` wrappers hide it from the error chain).
fn pipeline_error(err: PipelineError) -> anyhow::Error {
    match err {
        PipelineError::Device(e) => anyhow::Error::new(e),
        PipelineError::AudioFile(e) => anyhow::Error::new(e),
        PipelineError::Inference(e) => inference_error(e),
        other => anyhow::Error::new(other),
    }
}

fn inference_error(err: InferenceError) -> anyhow::Error {
    match err {
        InferenceError::Model(e) => anyhow::Error::new(e),
        other => anyhow::Error::new(other),
    }
}

fn status(
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
            })
            .collect(),
        chunk_ms,
        cpu_percent,
        latency_s,
    }
}

/// This process's CPU use, through sysinfo.
struct CpuMeter {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    last: Instant,
    percent: Option<f32>,
}

impl CpuMeter {
    fn new() -> CpuMeter {
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
    fn percent(&mut self) -> Option<f32> {
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

/// `--demo`: a sound server (the user's, or a private one) and a clip to
/// play into its default output.
struct Demo {
    /// The private server, when none was running; dropping it stops it.
    server: Option<SoundServer>,
    clip: PathBuf,
}

impl Demo {
    /// Finds the clip and, with no server reachable, starts a private one
    /// and points this process at it. Call before any thread starts.
    fn prepare() -> anyhow::Result<Demo> {
        let clip = find_upwards(Path::new(DEMO_CLIP)).with_context(|| {
            format!("--demo: {DEMO_CLIP} not found above the current directory or the executable")
        })?;
        let server = if SoundServer::running_elsewhere() {
            tracing::info!("demo: using the running sound server");
            None
        } else {
            let server =
                SoundServer::start().context("--demo: cannot start a private sound server")?;
            // SAFETY: called at the start of `run`, before this process has
            // started any thread.
            unsafe { server.export_env() };
            eprintln!("hark: demo: started a private sound server (no sound server was running)");
            Some(server)
        };
        Ok(Demo { server, clip })
    }

    /// Starts playing the clip into the speaker the loopback records.
    fn play(&self) -> anyhow::Result<Child> {
        eprintln!("hark: demo: playing {}", self.clip.display());
        match &self.server {
            Some(server) => Ok(server.play(soundserver::SPEAKER_SINK, &self.clip)?),
            None => Command::new("paplay")
                .arg(&self.clip)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("--demo: cannot run paplay (install pulseaudio-utils)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sources_record_to_labelled_files() {
        let base = Path::new("/tmp/x/call.wav");
        assert_eq!(record_path(base, Source::Mic, false), base);
        assert_eq!(
            record_path(base, Source::Mic, true),
            Path::new("/tmp/x/call-mic.wav")
        );
        assert_eq!(
            record_path(Path::new("call"), Source::Loopback, true),
            Path::new("call-loopback.wav")
        );
    }

    #[test]
    fn default_threads_share_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default_threads(1), cores.clamp(1, MAX_DEFAULT_THREADS));
        assert_eq!(
            default_threads(2),
            (cores / 2).clamp(1, MAX_DEFAULT_THREADS)
        );
    }

    #[test]
    fn explicit_model_wins() {
        let path = super::super::options::resolve_model(Some(Path::new("/m/x.bin"))).unwrap();
        assert_eq!(path, Path::new("/m/x.bin"));
    }
}
