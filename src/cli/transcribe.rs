//! `hark transcribe`: offline transcription of WAV files, one after the
//! other: each file is streamed through downmix and resampling a block at a
//! time (only its 16 kHz mono samples are held, never the file's own), then
//! decoded with one model context and one decoding state; the segments are
//! printed (or written) with their times. Every file's header is checked
//! before the model loads.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::options::{self, ModelArgs, OutputArgs};
use crate::dsp::wav;
use crate::event::{Event, Source};
use crate::inference::{DecodeRequest, Model};

/// Audio at most this long is decoded with the encoder window fitted to it
/// (measured ~2x faster on the bundled clips, same WER). Longer audio gets
/// whisper.cpp's full 30 s window, which it slides over the file.
pub const FIT_AUDIO_CTX_MAX: Duration = Duration::from_secs(28);

/// Prompt tokens carried from one 30 s window to the next. whisper.cpp's
/// own cap is 224, and it computes logits for every prompt token (207 KB
/// each, twice): 224 tokens hold ~90 MB resident for the rest of the file.
/// 64 keeps the previous sentence or two as context.
pub const OFFLINE_PROMPT_TOKENS: usize = 64;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// WAV files to transcribe: 1-384 kHz, 1-32 channels, 8/16/24/32-bit
    /// integer or 32-bit float samples; at most 24 h each (--realtime:
    /// any length).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Pace the file at 1x through the live pipeline (ring, VAD, streaming
    /// workers) and print events as they happen, partial hypotheses
    /// included, each with `emitted`: seconds since the start at which it
    /// was produced (use --format jsonl to see it).
    #[arg(long)]
    pub realtime: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    options::check_inputs(&args.files)?;
    options::check_output_not_input(args.output.output.as_deref(), &args.files)?;
    for file in &args.files {
        let stream = wav::Stream::open(file)?;
        // Offline, a file is held whole; --realtime streams it.
        if !args.realtime {
            stream.check_whole()?;
        }
    }
    let model_path = args.model.resolve()?;
    // Like `live`: a first signal stops after what is being decoded and
    // writes it (waiting for a stalled file at most the grace), a second
    // exits at once.
    let stop = super::signals::install()?;
    // Open the output before loading the model: a bad or foreign -o file
    // fails first, with nothing else done.
    let mut out = args.output.open_with(args.realtime, &stop)?;
    let model = Model::load(&model_path)
        .with_context(|| format!("loading model {}", model_path.display()))?;
    tracing::info!(
        "model {} loaded in {:.0} ms",
        model_path.display(),
        model.load_time().as_secs_f64() * 1000.0
    );
    if args.realtime {
        let played = super::realtime::run(&args.files, &model, args.model.threads, &mut out, &stop);
        // What was played is written and synced even when a file failed.
        let finished = out.finish();
        return played.and(finished);
    }
    let mut decoder = model.decoder(args.model.threads)?;
    decoder.set_max_prompt_tokens(Some(OFFLINE_PROMPT_TOKENS));
    for file in &args.files {
        if stop.load(Ordering::Acquire) {
            tracing::warn!(
                "interrupted: {} and the files after it skipped",
                file.display()
            );
            break;
        }
        let audio = wav::read_16k_mono(file)?;
        let duration = audio.duration();
        let request = DecodeRequest {
            fit_audio_ctx: duration <= FIT_AUDIO_CTX_MAX,
            ..DecodeRequest::default()
        };
        let progress = progress_bar(file);
        let callback = progress.clone().map(|bar| {
            Box::new(move |percent: i32| bar.set_position(percent.clamp(0, 100) as u64))
                as Box<dyn FnMut(i32)>
        });
        let hypothesis = decoder
            .decode(&audio.samples, &request, callback)
            .with_context(|| format!("transcribing {}", file.display()))?;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        tracing::info!(
            "{}: {:.1} s of audio in {:.2} s (real-time factor {:.3})",
            file.display(),
            duration.as_secs_f64(),
            hypothesis.elapsed.as_secs_f64(),
            hypothesis.elapsed.as_secs_f64() / duration.as_secs_f64().max(1e-9)
        );
        if args.files.len() > 1 {
            out.source_heading(file)?;
        }
        // Waits for room in the writer's queue (no event dropped, however
        // many); bounded once a signal came.
        let events = hypothesis
            .segments
            .iter()
            .map(|(start, end, text)| (start, end, text.trim()))
            .filter(|(_, _, text)| !text.is_empty())
            .map(|(start, end, text)| Event::final_text(Source::File, *start, *end, text))
            .collect();
        out.events(events)?;
    }
    out.finish()
}

/// A percent bar on stderr, only when stderr is a terminal.
fn progress_bar(file: &Path) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}%")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(file.display().to_string());
    Some(bar)
}
