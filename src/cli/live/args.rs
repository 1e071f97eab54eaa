//! The flags of `hark live`, checked, and the pipeline's sources they name.

use std::path::{Path, PathBuf};

use crate::capture::{CaptureSpec, SourceKind};
use crate::event::Source;
use crate::pipeline::{Feed, SourceConfig};
use crate::transcript::Format;

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
    /// The most Whisper threads a pass uses (fewer while other processes
    /// hold the cores); default: the cores, at most 4. The sources' passes
    /// take turns on one decoding state.
    #[arg(long, value_name = "N", value_parser = crate::cli::options::parse_threads)]
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
    /// Replace existing --record files (by default an existing file is
    /// refused, never overwritten). They are removed once the model has
    /// loaded, just before capture starts.
    #[arg(long, requires = "record")]
    pub record_overwrite: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = crate::cli::options::parse_seconds)]
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
    /// the loopback's words of the same moment. With headphones it has
    /// nothing to remove and leaves the microphone as it is. On by default;
    /// off keeps the raw microphone.
    #[arg(long, value_enum, default_value_t = EchoChoice::On, value_name = "on|off")]
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

pub(super) fn check(args: &Args) -> Result<(), LiveUsageError> {
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
pub(super) fn sources(args: &Args) -> Vec<SourceConfig> {
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

/// The most Whisper threads a pass uses: the cores (the sources' passes
/// take turns on one decoding state, so they never need to share them).
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, MAX_DEFAULT_THREADS)
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
    fn default_threads_are_the_cores_up_to_the_cap() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default_threads(), cores.clamp(1, MAX_DEFAULT_THREADS));
    }
}
