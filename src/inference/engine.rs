//! The Whisper engine: a model context shared by all workers, and the
//! decoding state they decode with. The context is immutable once loaded.
//! Live workers of one model share one decoding state
//! ([`Model::shared_decoder`]), taking turns: on a laptop's few cores two
//! passes at once only slow each other down, and each state holds its own
//! compute buffers (whisper.cpp's log: conv 13, encode 18, cross 4 MB, plus
//! the touched part of a 96 MB decode buffer), so `--source both` would
//! otherwise pay for them twice.
//!
//! Not real-time safe.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::InferenceError;
use crate::model::ggml;

/// Whisper works on 16 kHz mono audio.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// Encoder frames per second of audio (whisper's 20 ms frames).
const AUDIO_CTX_PER_SECOND: f64 = 50.0;
/// whisper.cpp's full encoder window, in frames (30 s).
const AUDIO_CTX_FULL: i32 = 1500;
/// The smallest encoder window used for short audio (10 s). The encoder's
/// cost grows with it, and the pass that commits a phrase is most of the
/// phrase's latency. Measured on the 25 real phrases of
/// assets/real/phrases-16k.wav, one pass each (tiny.en q8_0, 2 threads, idle):
/// 768 frames p50 0.363 s, 512 frames 0.216 s with the same words (two
/// call signs read better); 384 frames 0.170 s but one sentence came out
/// twice (the decoder loops on repeated words below this).
const AUDIO_CTX_MIN: i32 = 512;
/// Encoder frames added beyond the audio so the last word is not cut.
const AUDIO_CTX_MARGIN: i32 = 64;

/// whisper.cpp's default bound on the first timestamp of a pass, seconds.
const MAX_INITIAL_TS_S: f32 = 1.0;

static LOG_HOOKS: Once = Once::new();

/// A loaded Whisper model, shared by every worker.
#[derive(Clone)]
pub struct Model {
    ctx: Arc<WhisperContext>,
    path: PathBuf,
    info: ggml::GgmlInfo,
    load_time: Duration,
    /// The live workers' shared state, while any worker holds it.
    shared: Arc<Mutex<Weak<Mutex<Decoder>>>>,
}

/// One decoding state taken in turns by several workers.
pub type SharedDecoder = Arc<Mutex<Decoder>>;

impl Model {
    /// Validates the ggml file (so whisper.cpp never sees a malformed one,
    /// which can abort the process), then loads it on the CPU.
    pub fn load(path: &Path) -> Result<Model, InferenceError> {
        let started = Instant::now();
        let info = ggml::validate(path)?;
        Model::load_checked(path, path, info, started)
    }

    /// [`Model::load`] for live transcription: whisper's windows cut to what
    /// live passes use ([`super::window`]), so each decoding state is
    /// smaller (peak RSS of `hark live --demo` 106.0 -> 96.6 and 97.0 MiB,
    /// `/usr/bin/time -v`). Passes over more than
    /// [`super::window::LIVE_AUDIO_CTX`] frames of audio are slid over in
    /// windows of that size, as whisper.cpp does with 30 s ones.
    pub fn load_live(path: &Path) -> Result<Model, InferenceError> {
        let started = Instant::now();
        let info = ggml::validate(path)?;
        let (copy, copy_path) = super::window::live_copy(path)?;
        let model = Model::load_checked(path, &copy_path, info, started);
        drop(copy);
        model
    }

    /// Loads the validated file that whisper.cpp reads at `source`.
    fn load_checked(
        path: &Path,
        source: &Path,
        info: ggml::GgmlInfo,
        started: Instant,
    ) -> Result<Model, InferenceError> {
        LOG_HOOKS.call_once(whisper_rs::install_logging_hooks);
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        // Flash attention never builds the encoder's full attention matrix:
        // the encoder's compute buffer drops from 64.8 to 17.7 MB (whisper.cpp's
        // own log) and peak RSS of `hark live --demo` by ~20 MiB
        // (benches/memory.rs). whisper-cli turns it on by default too.
        params.flash_attn(true);
        let path_str = source.to_str().ok_or_else(|| InferenceError::Load {
            path: path.display().to_string(),
            detail: "the path is not valid UTF-8".into(),
        })?;
        let ctx = WhisperContext::new_with_params(path_str, params).map_err(|e| {
            InferenceError::Load {
                path: path.display().to_string(),
                detail: format!("{e}"),
            }
        })?;
        Ok(Model {
            ctx: Arc::new(ctx),
            path: path.to_path_buf(),
            info,
            load_time: started.elapsed(),
            shared: Arc::new(Mutex::new(Weak::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the validator read from the file's header.
    pub fn info(&self) -> &ggml::GgmlInfo {
        &self.info
    }

    /// Time to validate and load the file.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// English-only models (`*.en`) take no language token.
    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// The decoding state this model's live workers share: the one already
    /// in use if any worker still holds it, else a new one.
    pub fn shared_decoder(&self, threads: usize) -> Result<SharedDecoder, InferenceError> {
        let mut slot = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(decoder) = slot.upgrade() {
            return Ok(decoder);
        }
        let decoder = Arc::new(Mutex::new(self.decoder(threads)?));
        *slot = Arc::downgrade(&decoder);
        Ok(decoder)
    }

    /// A decoding state of its own (offline transcription, tests).
    pub fn decoder(&self, threads: usize) -> Result<Decoder, InferenceError> {
        let state = self
            .ctx
            .create_state()
            .map_err(|e| InferenceError::State(format!("{e}")))?;
        Ok(Decoder {
            model: self.clone(),
            state,
            threads: threads.max(1),
            max_prompt_tokens: None,
            abortable: false,
            abort: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// One word of a hypothesis, with times relative to the start of the audio
/// that was decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word as Whisper wrote it, with its leading space removed.
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// The lowest token probability inside the word.
    pub probability: f32,
}

/// What one decoding pass produced.
#[derive(Debug, Clone, Default)]
pub struct Hypothesis {
    /// Segments as Whisper cut them: (start s, end s, text).
    pub segments: Vec<(f64, f64, String)>,
    /// The same text as words with times.
    pub words: Vec<Word>,
    /// The highest no-speech probability among the segments.
    pub no_speech: f32,
    /// Wall-clock time the pass took.
    pub elapsed: Duration,
}

impl Hypothesis {
    /// All segment text joined.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (_, _, t) in &self.segments {
            let t = t.trim();
            if !t.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(t);
            }
        }
        text
    }
}

/// How to decode one piece of audio.
#[derive(Debug, Clone)]
pub struct DecodeRequest {
    /// Committed text that precedes the audio (fed back as the prompt).
    pub prompt: String,
    /// Shrink the encoder window to the audio's length (faster on short
    /// windows). Off for long offline files, which whisper.cpp slides over.
    pub fit_audio_ctx: bool,
    /// Fall back to higher temperatures when a pass looks like a loop.
    pub temperature_fallback: bool,
    /// Word timestamps (needed by the streaming policy).
    pub word_times: bool,
}

impl Default for DecodeRequest {
    fn default() -> Self {
        DecodeRequest {
            prompt: String::new(),
            fit_audio_ctx: false,
            temperature_fallback: true,
            word_times: true,
        }
    }
}

/// A worker's own decoding state over the shared model.
pub struct Decoder {
    model: Model,
    state: WhisperState,
    threads: usize,
    /// Cap on the prompt whisper.cpp carries (its `n_max_text_ctx`); `None`
    /// keeps whisper.cpp's own cap (half the text context, 224 tokens).
    max_prompt_tokens: Option<usize>,
    /// Whether passes may be cut short through [`AbortHandle`].
    abortable: bool,
    abort: Arc<AtomicBool>,
}

/// Cuts short the pass in flight on the [`Decoder`] it came from, when that
/// pass was started abortable ([`Decoder::set_abortable`]). Cheap to clone,
/// safe to call from any thread, at any time (a request made while no
/// abortable pass runs is forgotten when the next one starts).
#[derive(Debug, Clone)]
pub struct AbortHandle(Arc<AtomicBool>);

impl AbortHandle {
    /// Asks the running abortable pass to stop; its `decode` then returns
    /// [`InferenceError::Aborted`] within one ggml graph step.
    pub fn abort(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// whisper.cpp's abort callback: `user_data` is the decoder's flag, alive
/// for the whole `whisper_full` call (the decoder owns it).
unsafe extern "C" fn abort_requested(user_data: *mut c_void) -> bool {
    // SAFETY: set in `decode` to `Arc::as_ptr` of the decoder's flag, which
    // outlives the call that reads it.
    unsafe { (*(user_data as *const AtomicBool)).load(Ordering::Acquire) }
}

impl Decoder {
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads for the next passes (load-adaptive inference lowers it when
    /// the cores are busy: ggml's threads wait for each other, so a thread
    /// that is not scheduled stalls the rest).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Caps the prompt whisper.cpp carries between its 30 s windows and
    /// from [`DecodeRequest::prompt`]. whisper.cpp computes logits for every
    /// prompt token, 207 KB each for the English vocabulary, twice (the
    /// graph and its copy), so the prompt's length sets a large part of the
    /// decoding state's resident memory.
    pub fn set_max_prompt_tokens(&mut self, tokens: Option<usize>) {
        self.max_prompt_tokens = tokens;
    }

    /// Whether the next passes can be cut short by [`AbortHandle::abort`]
    /// (partial passes: yes; final passes: never).
    pub fn set_abortable(&mut self, abortable: bool) {
        self.abortable = abortable;
    }

    /// This decoder with `abort`'s flag as its own: a fresh state that
    /// replaces a failed one keeps answering the handles already given out.
    pub fn with_abort(mut self, abort: AbortHandle) -> Decoder {
        self.abort = abort.0;
        self
    }

    /// A handle that aborts this decoder's abortable pass in flight.
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle(self.abort.clone())
    }

    /// Decodes 16 kHz mono audio. `progress` receives percent done.
    pub fn decode(
        &mut self,
        audio: &[f32],
        request: &DecodeRequest,
        progress: Option<Box<dyn FnMut(i32)>>,
    ) -> Result<Hypothesis, InferenceError> {
        let started = Instant::now();
        if audio.is_empty() {
            return Ok(Hypothesis::default());
        }
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        if let Some(tokens) = self.max_prompt_tokens {
            params.set_n_max_text_ctx(tokens.min(i32::MAX as usize) as i32);
        }
        if self.abortable {
            self.abort.store(false, Ordering::Release);
            // SAFETY: the callback only reads the flag, which `self` keeps
            // alive until `full` returns.
            unsafe {
                params.set_abort_callback(Some(abort_requested));
                params.set_abort_callback_user_data(Arc::as_ptr(&self.abort) as *mut c_void);
            }
        }
        if !self.model.is_multilingual() {
            params.set_language(Some("en"));
        } else {
            params.set_language(Some("auto"));
        }
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_token_timestamps(request.word_times);
        params.set_no_context(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(if request.temperature_fallback {
            0.2
        } else {
            0.0
        });
        params.set_no_speech_thold(0.6);
        // whisper.cpp measures the first timestamp's bound (1 s) in steps of
        // 30 s over the model's window, so a live model's shorter window
        // ([`super::window`]) would halve it: kept at 1 s.
        params.set_max_initial_ts(
            MAX_INITIAL_TS_S * AUDIO_CTX_FULL as f32 / self.model.ctx.n_audio_ctx() as f32,
        );
        if !request.prompt.is_empty() {
            params.set_initial_prompt(&request.prompt);
        }
        if request.fit_audio_ctx {
            params.set_audio_ctx(audio_ctx_for(audio.len()).min(self.model.ctx.n_audio_ctx()));
        }
        if let Some(progress) = progress {
            params.set_progress_callback_safe::<Option<Box<dyn FnMut(i32)>>, Box<dyn FnMut(i32)>>(
                Some(progress),
            );
        }
        let outcome = self.state.full(params, audio);
        release_free_memory();
        if self.abortable && self.abort.swap(false, Ordering::AcqRel) {
            return Err(InferenceError::Aborted);
        }
        outcome.map_err(|e| InferenceError::Decode(format!("{e}")))?;
        let mut hypothesis = self.read_result()?;
        hypothesis.elapsed = started.elapsed();
        Ok(hypothesis)
    }

    fn read_result(&self) -> Result<Hypothesis, InferenceError> {
        let eot = self.model.ctx.token_eot();
        let mut h = Hypothesis::default();
        for segment in self.state.as_iter() {
            let start = segment.start_timestamp() as f64 / 100.0;
            let end = segment.end_timestamp() as f64 / 100.0;
            let text = segment
                .to_str_lossy()
                .map_err(|e| InferenceError::Decode(format!("{e}")))?
                .into_owned();
            h.no_speech = h.no_speech.max(segment.no_speech_probability());
            h.segments.push((start, end, text));
            // Tokens to words: a token whose text starts with a space begins a
            // new word; special tokens (timestamps, end of text) are skipped.
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                if token.token_id() >= eot {
                    continue;
                }
                let data = token.token_data();
                let piece = token
                    .to_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let (t0, t1) = (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0);
                let starts_word = piece.starts_with(' ') || h.words.is_empty();
                // Punctuation that closes a word joins it even after a space
                // (" ."); an opening sign starts the next word (" $" of
                // " $99": joined, "to $99" came out as the word "to$99.").
                let joins_punctuation = piece.trim().chars().all(|c| ".,!?;:%)]}".contains(c));
                match h.words.last_mut() {
                    Some(last)
                        if !starts_word || (joins_punctuation && !piece.trim().is_empty()) =>
                    {
                        last.text.push_str(piece.trim_start());
                        last.end = last.end.max(t1);
                        last.probability = last.probability.min(data.p);
                    }
                    _ => {
                        let text = piece.trim_start().to_string();
                        if text.is_empty() {
                            continue;
                        }
                        h.words.push(Word {
                            text,
                            start: t0,
                            end: t1.max(t0),
                            probability: data.p,
                        });
                    }
                }
            }
        }
        Ok(h)
    }
}

/// Hands the pages of memory freed during a pass back to the system (glibc
/// keeps freed memory in its arenas otherwise, and RSS only grows).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The encoder window for `samples` of audio: the audio's frames plus a
/// margin, never below [`AUDIO_CTX_MIN`] nor above the full 30 s window.
pub fn audio_ctx_for(samples: usize) -> i32 {
    let seconds = samples as f64 / SAMPLE_RATE_HZ as f64;
    let frames = (seconds * AUDIO_CTX_PER_SECOND).ceil() as i32 + AUDIO_CTX_MARGIN;
    frames.clamp(AUDIO_CTX_MIN, AUDIO_CTX_FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_fits_the_window_within_bounds() {
        assert_eq!(audio_ctx_for(16_000), AUDIO_CTX_MIN);
        assert_eq!(audio_ctx_for(16_000 * 20), 1000 + AUDIO_CTX_MARGIN);
        assert_eq!(audio_ctx_for(16_000 * 40), AUDIO_CTX_FULL);
    }
}
