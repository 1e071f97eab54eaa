//! The command line: parses flags, wires the pipeline, maps errors to exit
//! codes. Everything here may block, allocate and print; nothing here runs on
//! the real-time thread.

pub mod devices;
pub mod flags;
pub mod live;
pub mod model;
pub mod options;
pub mod realtime;
pub mod signals;
pub mod soak;
pub mod transcribe;
pub mod view;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::class::ErrorClass;

/// Exit codes, documented in `--help`.
pub const EXIT_OK: u8 = 0;
/// Any failure not listed below.
pub const EXIT_FAILURE: u8 = 1;
/// Bad flags (clap's own code).
pub const EXIT_USAGE: u8 = 2;
/// A bad input file: audio, model, or model directory.
pub const EXIT_BAD_INPUT: u8 = 3;
/// No sound server, no such device, device busy or denied.
pub const EXIT_DEVICE: u8 = 4;
/// The output could not be written.
pub const EXIT_OUTPUT: u8 = 5;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  failure not listed below
  2  bad flags or arguments
  3  bad input file: audio (missing, not a WAV, empty, rate outside 1-384 kHz, over 32 channels,
     unsupported samples, over 24 h without --realtime), model (missing, truncated, wrong format
     or shape) or models/manifest.toml
  4  audio device or sound server problem (none running, no such device, busy, denied)
  5  output could not be written (bad path, read-only, disk full, not a transcript of that format,
     an output that is also an input, a FIFO with no reader, a target that stopped taking writes,
     a --record file that exists)";

/// Live transcription of a microphone, system audio (loopback), or both.
#[derive(Debug, Parser)]
#[command(name = "hark", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcribe WAV files (1-384 kHz, 1-32 channels, integer or 32-bit float samples).
    #[command(after_help = EXIT_CODES_HELP)]
    Transcribe(transcribe::Args),
    /// Install, import, quantize and check Whisper models.
    #[command(subcommand)]
    Model(model::Command),
    /// List audio hosts and devices (names usable with --device).
    Devices(devices::Args),
    /// Transcribe a microphone, system audio (loopback), or both, live.
    Live(live::Args),
    /// Stability harness: the live pipeline for a long time against a known
    /// programme on a private sound server, with stress and faults.
    Soak(soak::Args),
}

/// Parses the command line, runs it, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    match run(cli.command, cli.quiet) {
        Ok(()) => ExitCode::from(EXIT_OK),
        // A reader that stopped early (`hark transcribe x.wav | head`) is
        // not an error worth a message.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("hark: error: {}", message(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run(command: Command, quiet: bool) -> anyhow::Result<()> {
    match command {
        Command::Live(args) => live::run(args, quiet),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Devices(args) => devices::run(args),
        Command::Soak(args) => soak::run(args),
    }
}

/// Routes `tracing` (and whisper.cpp's own log, see `inference`) to stderr.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| {
        // The PulseAudio client logs every normal disconnect (each
        // stream stop) as an error; show it only when debugging.
        let pulse = if verbose >= 2 { level } else { "off" };
        // whisper.cpp logs an aborted partial pass as "failed to decode";
        // hark reports real decode failures itself, so whisper.cpp's own
        // log shows only when debugging.
        let whisper = if verbose >= 2 { level } else { "off" };
        tracing_subscriber::EnvFilter::new(format!(
            "{level},whisper_rs={whisper},pulseaudio::client::reactor={pulse}"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines erase the live area first (see `view`).
        .with_writer(view::LogWriter)
        // Colour only on a terminal: a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<options::StdoutError>()
            .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes joined with ": ", leaving out a cause whose
/// text the message already holds (several typed errors print their source).
pub fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The exit code for an error: the class of the first of hark's errors in
/// its chain (each wrapper asks what it wraps), one match.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let class = err.chain().find_map(classify).unwrap_or(ErrorClass::Other);
    match class {
        ErrorClass::Usage => EXIT_USAGE,
        ErrorClass::BadInput => EXIT_BAD_INPUT,
        ErrorClass::Device => EXIT_DEVICE,
        ErrorClass::Output => EXIT_OUTPUT,
        _ => EXIT_FAILURE,
    }
}

/// The library's classes, plus the CLI's own errors.
fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    if cause.is::<live::LiveUsageError>() {
        return Some(ErrorClass::Usage);
    }
    if cause.is::<options::StdoutError>() {
        return Some(ErrorClass::Output);
    }
    if let Some(e) = cause.downcast_ref::<flags::FlagError>() {
        return Some(e.class());
    }
    crate::class::class_of(cause)
}
