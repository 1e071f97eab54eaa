//! Flags shared by the commands that transcribe (`hark transcribe`, and the
//! live commands): which model and how many threads, and where the
//! transcript goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::event::Event;
use crate::model::manifest::{self, Manifest};
use crate::model::ModelError;
use crate::transcript::{Format, Formatter, WriteError, Writer, WriterConfig, WriterReport};

/// Decoding threads per worker when `--threads` is not given.
pub const DEFAULT_THREADS: usize = 2;
/// The environment variable naming a model file when `--model` is not given.
pub const MODEL_ENV: &str = "HARK_MODEL";

/// Which model to use and how many threads to give it.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A whisper.cpp ggml model file. Default: $HARK_MODEL, else the
    /// manifest's default model in the checkout's models/ folder.
    #[arg(short, long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Threads for each decoder.
    #[arg(short = 't', long, value_name = "N", default_value_t = DEFAULT_THREADS,
          value_parser = parse_threads)]
    pub threads: usize,
}

/// The most threads `--threads` accepts.
pub const MAX_THREADS: usize = 256;

/// `--threads`: a whole number from 1 to [`MAX_THREADS`].
pub fn parse_threads(text: &str) -> Result<usize, String> {
    whole_in(text, 1, MAX_THREADS as u64).map(|n| n as usize)
}

/// The longest `--duration` accepted, and the largest time bound: one year.
pub const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// A whole number from `min` to `max`, or a message saying so.
pub fn whole_in(text: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}': expected a whole number from {min} to {max}"
        )),
    }
}

/// A finite number from `min` to `max`, or a message saying so.
pub fn number_in(text: &str, min: f64, max: f64) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(format!("'{text}': expected a number from {min} to {max}")),
    }
}

/// A number of seconds above zero, at most [`MAX_SECONDS`] (a year): any
/// such value converts to a `Duration` without overflow.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match number_in(text, 0.0, MAX_SECONDS) {
        Ok(x) if x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{text}': expected seconds above 0, at most {MAX_SECONDS} (a year)"
        )),
    }
}

impl ModelArgs {
    /// The model file to load: `--model`, else `$HARK_MODEL`, else the
    /// manifest's default. The default must exist: if it is not installed
    /// the error says how to install it.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        resolve_model(self.model.as_deref())
    }
}

/// The model to load: `flag`, else `$HARK_MODEL`, else the manifest's
/// default model in the checkout's `models/`.
pub fn resolve_model(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    {
        if let Some(path) = flag {
            return Ok(path.to_path_buf());
        }
        if let Some(path) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let dir = manifest::models_dir().ok_or_else(|| ModelError::Manifest {
            path: PathBuf::from(manifest::MANIFEST_PATH),
            detail: format!(
                "not found above the current directory nor the executable; \
                 pass --model PATH, set {MODEL_ENV}, or set HARK_MODELS_DIR to a checkout's models/"
            ),
        })?;
        let manifest = Manifest::read(&dir.join(manifest::MANIFEST_FILE))?;
        let entry = manifest.default_entry();
        let path = dir.join(&entry.file);
        if !path.is_file() {
            return Err(
                anyhow::Error::new(ModelError::Missing { path }).context(format!(
                    "the default model {} is not installed: run scripts/setup.sh or \
                 `hark model install`, or pass --model PATH",
                    entry.name
                )),
            );
        }
        Ok(path)
    }
}

/// Where the transcript goes and in which format.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Transcript format. Default: from the -o file's extension, else txt.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Write the transcript to this file (appending; batched and synced)
    /// instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl OutputArgs {
    /// The format to write: `--format`, else the output file's extension, else txt.
    pub fn format(&self) -> Format {
        self.format
            .or_else(|| self.output.as_deref().and_then(Format::from_path))
            .unwrap_or(Format::Txt)
    }

    /// Opens the output: the file through the transcript writer (a bad path
    /// fails here, naming it), or standard output through a formatter.
    /// Once `interrupted` is set (a signal), a file that stops taking writes
    /// is waited for at most [`crate::session::WRITER_STOP_GRACE`] in all.
    pub fn open(&self, interrupted: &Arc<AtomicBool>) -> anyhow::Result<Output> {
        self.open_with(false, interrupted)
    }

    /// Like [`OutputArgs::open`], writing partial hypotheses too where the
    /// format carries them (txt, jsonl).
    pub fn open_with(
        &self,
        partials: bool,
        interrupted: &Arc<AtomicBool>,
    ) -> anyhow::Result<Output> {
        let format = self.format();
        match &self.output {
            Some(path) => {
                let mut config = WriterConfig::new(path, format);
                config.include_partials = partials;
                let writer = Writer::spawn(config)?;
                Ok(Output::file(writer, Arc::clone(interrupted)))
            }
            None => {
                let formatter = Formatter::new(format).with_partials(partials);
                let mut text = String::new();
                formatter.header(&mut text);
                let mut stdout = Stdout {
                    formatter,
                    text: String::new(),
                };
                stdout.write(&text)?;
                Ok(Output::Stdout(stdout))
            }
        }
    }
}

/// A standard output write failed (for example a closed pipe).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the transcript to standard output: {0}")]
pub struct StdoutError(#[source] pub std::io::Error);

/// An open transcript output.
#[derive(Debug)]
pub enum Output {
    Stdout(Stdout),
    File(FileOutput),
}

/// A transcript file through the writer, and how long to wait for it.
#[derive(Debug)]
pub struct FileOutput {
    writer: Writer,
    interrupted: Arc<AtomicBool>,
    /// When waiting was first seen interrupted: the grace runs once, over
    /// every send and the finish together.
    since: Option<Instant>,
}

impl FileOutput {
    /// Whether to stop waiting for the file: interrupted, and the grace
    /// used up.
    fn give_up(interrupted: &AtomicBool, since: &mut Option<Instant>) -> bool {
        interrupted.load(Ordering::Acquire)
            && since.get_or_insert_with(Instant::now).elapsed() >= crate::session::WRITER_STOP_GRACE
    }
}

/// Standard output, one record written (and flushed) per event.
#[derive(Debug)]
pub struct Stdout {
    formatter: Formatter,
    text: String,
}

impl Stdout {
    fn write(&mut self, text: &str) -> Result<(), StdoutError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(StdoutError)
    }
}

impl Output {
    /// A transcript file through `writer`; `interrupted` as for
    /// [`OutputArgs::open`].
    pub fn file(writer: Writer, interrupted: Arc<AtomicBool>) -> Output {
        Output::File(FileOutput {
            writer,
            interrupted,
            since: None,
        })
    }

    /// Writes events in order, as [`Output::event`]; if the file stops
    /// taking them, the error counts those not offered yet too.
    pub fn events(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        let mut events = events.into_iter();
        while let Some(event) = events.next() {
            if let Err(mut err) = self.event(event) {
                if let Some(WriteError::Stalled { events: lost, .. }) = err.downcast_mut() {
                    *lost += events.len() as u64;
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Writes one event (skipped if the format does not carry its kind).
    /// Into a file it waits while the writer's queue is full, so nothing
    /// is dropped; see [`OutputArgs::open`] for how long.
    pub fn event(&mut self, event: Event) -> anyhow::Result<()> {
        match self {
            Output::Stdout(stdout) => {
                let mut text = std::mem::take(&mut stdout.text);
                text.clear();
                if stdout.formatter.event(&event, &mut text) {
                    stdout.write(&text)?;
                }
                stdout.text = text;
                Ok(())
            }
            Output::File(file) => {
                let FileOutput {
                    writer,
                    interrupted,
                    since,
                } = file;
                writer.send_within(event, || FileOutput::give_up(interrupted, since))?;
                Ok(())
            }
        }
    }

    /// Names the input the next events come from, where the output can say
    /// so without breaking its format: a `# path` line in txt, a `NOTE` in
    /// vtt on standard output. JSONL and SRT (and files written through the
    /// writer, which holds events only) carry no such line.
    pub fn source_heading(&mut self, input: &Path) -> anyhow::Result<()> {
        let Output::Stdout(stdout) = self else {
            return Ok(());
        };
        let name = input.display().to_string().replace(['\r', '\n'], " ");
        let line = match stdout.formatter.format() {
            Format::Txt => format!("# {name}\n"),
            Format::Vtt => format!("NOTE {}\n\n", name.replace("-->", "->")),
            Format::Jsonl | Format::Srt => return Ok(()),
        };
        Ok(stdout.write(&line)?)
    }

    /// Writes and syncs everything, and stops the writer thread. Says where
    /// the transcript continued if the file failed part-way. Once the
    /// output's `interrupted` flag is set (a signal), the file gets at most
    /// what is left of [`crate::session::WRITER_STOP_GRACE`] to take the
    /// rest.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(_) => Ok(()),
            Output::File(FileOutput {
                writer,
                interrupted,
                mut since,
            }) => {
                // The writer named the emergency file, if it took one, when
                // it switched: not again here.
                let _: WriterReport =
                    writer.finish_within(|| FileOutput::give_up(&interrupted, &mut since))?;
                Ok(())
            }
        }
    }
}

/// Refuses an output file that is one of the inputs (the same file, by
/// device and inode, whatever the path spelling or links), before anything
/// is opened for writing. An output that does not exist yet is no input.
pub fn check_output_not_input(output: Option<&Path>, inputs: &[PathBuf]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(output) = output else {
        return Ok(());
    };
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(meta) = std::fs::metadata(input) {
            if meta.dev() == out.dev() && meta.ino() == out.ino() {
                return Err(crate::transcript::WriteError::IsInput {
                    path: output.to_path_buf(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Checks every input file exists and is a file before any work, so a typo
/// fails fast with the file's name.
pub fn check_inputs(files: &[PathBuf]) -> anyhow::Result<()> {
    for file in files {
        let meta = std::fs::metadata(file).map_err(|source| crate::dsp::AudioFileError::Open {
            path: file.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Err(crate::dsp::AudioFileError::NotWav {
                path: file.clone(),
                reason: "it is a directory".into(),
            }
            .into());
        }
    }
    Ok(())
}
