//! The streaming policy: when to decode, what to show as partial, what to
//! commit as final.
//!
//! Whisper decodes a whole window at a time, so streaming means decoding a
//! growing window again and again. The policy cuts each utterance into
//! **pieces at pauses** and commits each piece whole, from one pass over
//! exactly its own audio. Pieces never overlap, so no word can be committed
//! twice, and no text alignment or word timestamps are needed to find where
//! committed text ends (Whisper's are off by up to seconds on real speech,
//! which is what made the earlier agreement-based policy repeat sentences).
//!
//! 1. **Partials while someone speaks.** A pass over the open piece starts
//!    once [`StreamConfig::min_step`] of new audio arrived (or, when passes
//!    are slow, twice as much as the last pass took). Its words are the
//!    partial hypothesis. Silence (no open utterance) costs no pass at all.
//! 2. **A piece ends at the utterance's end, or at a pause** the VAD
//!    reports inside the utterance ([`VadEvent::Pause`]: the voice stopped
//!    and the level stayed low for 112 ms) once the piece is at least
//!    [`StreamConfig::min_piece`] long (3 s: cutting sooner broke sentences
//!    into fragments Whisper mishears, measured on real speech). At every
//!    pause a pass runs over the audio up to it; if the voice does not come
//!    back, that pass heard exactly the piece and its words are committed
//!    the moment the VAD closes the utterance, with no pass of its own;
//!    otherwise one pass over the piece runs and is committed.
//! 3. **A piece never outgrows [`StreamConfig::max_piece`]:** speech without
//!    a usable pause is cut at its quietest 100 ms in the second half of that
//!    span (and the next piece's leading words that repeat the committed tail
//!    are dropped, as such a cut may fall inside a word).
//! 4. **No prompt by default.** Committed text fed back as Whisper's prompt
//!    seeded repetition loops on real speech ("7 of close. 7 of close. ..."),
//!    so pieces are decoded on their own, as whisper.cpp's `whisper-stream`
//!    does. [`StreamConfig::prompt_words`] turns on a prompt from the current
//!    flow of speech (pieces less than [`FLOW_GAP`] apart; never across a
//!    real pause); a piece's leading words that repeat the committed tail
//!    are dropped either way.
//! 5. **Falling behind** never skips audio: events are taken in order, one
//!    utterance at a time; a piece takes every pause that is waiting (up to
//!    the longest piece), so a slow CPU gets fewer, longer passes.
//! 6. **Guards** ([`super::guard`]): a pass whose no-speech probability is
//!    high and whose words are unsure yields nothing; a repeated n-gram run is
//!    cut to one; audio after the last voiced sample is never decoded on its
//!    own (Whisper invents text on silence). Final events' times never go
//!    backwards and stay inside their piece's audio.
//! 7. **Stop** ([`Stream::finish`]) decodes and commits whatever is left.
//!
//! Not real-time safe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::Decode;
use super::engine::{DecodeRequest, Hypothesis, Word, SAMPLE_RATE_HZ};
use super::guard::{cut_repetition, is_invented, same_word};
use super::load::{Degradation, Partials};
use super::InferenceError;
use crate::event::{Event, EventKind, Source};
use crate::vad::VadEvent;

/// How the policy behaves.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub source: Source,
    /// New audio needed before another partial pass.
    pub min_step: Duration,
    /// A piece is not cut at a pause before it is this long (very short
    /// pieces lose the context Whisper needs).
    pub min_piece: Duration,
    /// A piece is cut at its quietest point before it gets longer than this.
    pub max_piece: Duration,
    /// A forced cut never falls this close to the newest audio.
    pub tail_guard: Duration,
    /// Committed words of the same utterance fed back as the prompt (0: none).
    pub prompt_words: usize,
    /// Emit partial events.
    pub partials: bool,
}

impl StreamConfig {
    pub fn new(source: Source) -> Self {
        StreamConfig {
            source,
            min_step: Duration::from_millis(250),
            // Measured on the real-speech set (benches/realspeech.rs
            // --replay): cutting at every pause after 1 s broke sentences
            // into fragments Whisper mishears (known-text WER 0.152 against
            // 0.091 offline); after 3 s, 0.091 and 0.030 (unbroken).
            min_piece: Duration::from_secs(3),
            max_piece: Duration::from_secs(12),
            tail_guard: Duration::from_millis(500),
            prompt_words: 0,
            partials: true,
        }
    }
}

/// Counters a monitor or benchmark reads while the stream runs.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub passes: AtomicU64,
    /// Total decode time, microseconds.
    pub decode_us: AtomicU64,
    /// Total audio decoded (sum of window lengths), samples.
    pub decoded_samples: AtomicU64,
    /// The newest audio received minus the audio committed or covered by the last pass, ms.
    pub lag_ms: AtomicU64,
    pub max_lag_ms: AtomicU64,
    pub committed_words: AtomicU64,
    pub partial_events: AtomicU64,
    /// Pieces committed (each from its own audio).
    pub pieces: AtomicU64,
    /// Pieces cut at their quietest point because no pause came in time.
    pub forced_cuts: AtomicU64,
    /// Passes discarded as invented text on non-speech.
    pub rejected_passes: AtomicU64,
    /// Repetition loops cut.
    pub loops_cut: AtomicU64,
    /// Partial passes cut short because a pause or the utterance's end
    /// arrived while they ran (their words would be stale).
    pub aborted_partials: AtomicU64,
    /// Load-adaptive inference: threads of the last pass.
    pub threads: AtomicU64,
    /// Load-adaptive inference: what is degraded right now
    /// ([`StreamStats::degradation`]).
    pub degraded: AtomicU8,
    /// Passes run with something degraded.
    pub degraded_passes: AtomicU64,
}

impl StreamStats {
    /// Publishes the plan the worker decodes with.
    pub fn set_plan(&self, threads: usize, degraded: Option<Degradation>) {
        self.threads.store(threads as u64, Ordering::Relaxed);
        let code = match degraded {
            None => 0,
            Some(Degradation::CoresBusy) => 1,
            Some(Degradation::Behind) => 2,
            Some(Degradation::CoresBusyAndBehind) => 3,
        };
        self.degraded.store(code, Ordering::Relaxed);
    }

    /// What load-adaptive inference has degraded right now, if anything.
    pub fn degradation(&self) -> Option<Degradation> {
        match self.degraded.load(Ordering::Relaxed) {
            1 => Some(Degradation::CoresBusy),
            2 => Some(Degradation::Behind),
            3 => Some(Degradation::CoresBusyAndBehind),
            _ => None,
        }
    }

    /// Decode time over audio time of all passes so far (below 1 keeps up
    /// with a single pass per window; streaming re-decodes, so compare with
    /// care).
    pub fn pass_rtf(&self) -> f64 {
        let audio_s = self.decoded_samples.load(Ordering::Relaxed) as f64 / SAMPLE_RATE_HZ as f64;
        if audio_s == 0.0 {
            return 0.0;
        }
        self.decode_us.load(Ordering::Relaxed) as f64 / 1e6 / audio_s
    }
}

/// What the policy wants to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do until more input arrives.
    Wait,
    /// Run a partial pass over the open piece.
    Decode,
    /// A piece is complete: commit it (with one pass unless the last
    /// partial pass already covered exactly its speech).
    Commit,
}

/// A complete piece at the front of the window.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Absolute end (exclusive) of its audio.
    end: u64,
    /// Where its last voiced sample ended.
    voiced_end: u64,
    /// It ends the utterance.
    closes: bool,
    /// Cut at the quietest point, not at a pause.
    forced: bool,
}

/// The last partial pass: its words (absolute seconds) and how far it read.
struct Pass {
    words: Vec<Word>,
    covered_until: u64,
}

/// The streaming state of one source.
pub struct Stream {
    config: StreamConfig,
    stats: Arc<StreamStats>,
    clock: Instant,
    /// Events not yet applied: those after the end of the open utterance
    /// wait here until it is committed.
    inbox: VecDeque<VadEvent>,
    /// Audio of the open piece and what follows it in the utterance.
    window: Vec<f32>,
    /// Absolute sample index of `window[0]` (the open piece's start).
    window_start: u64,
    /// Absolute end (exclusive) of the newest audio received.
    received_until: u64,
    /// Absolute end of the audio committed or read by the last pass.
    decoded_until: u64,
    in_utterance: bool,
    /// Pauses inside the window: (voiced end, cut), in order.
    pauses: VecDeque<(u64, u64)>,
    /// The utterance's end and its last voiced sample, once the VAD closed it.
    speech_end: Option<(u64, u64)>,
    last: Option<Pass>,
    /// Committed words of the current flow of speech (pieces less than
    /// [`FLOW_GAP`] apart): the prompt, and the tail a new piece may repeat.
    context: Vec<String>,
    /// Where the last committed piece's voice ended (absolute sample).
    context_end: u64,
    /// End of the last final event, seconds.
    committed_until: f64,
    /// How long the last pass took.
    last_pass: Duration,
    /// How many partial passes load-adaptive inference allows.
    partials: Partials,
}

impl Stream {
    pub fn new(config: StreamConfig, clock: Instant) -> Self {
        Stream {
            config,
            stats: Arc::new(StreamStats::default()),
            clock,
            inbox: VecDeque::new(),
            window: Vec::new(),
            window_start: 0,
            received_until: 0,
            decoded_until: 0,
            in_utterance: false,
            pauses: VecDeque::new(),
            speech_end: None,
            last: None,
            context: Vec::new(),
            context_end: 0,
            committed_until: 0.0,
            last_pass: Duration::ZERO,
            partials: Partials::Every,
        }
    }

    pub fn stats(&self) -> Arc<StreamStats> {
        Arc::clone(&self.stats)
    }

    pub fn source(&self) -> Source {
        self.config.source
    }

    /// Takes one event from the VAD.
    pub fn push(&mut self, event: VadEvent) {
        self.inbox.push_back(event);
        self.apply_inbox();
    }

    /// Applies waiting events up to the end of the open utterance.
    fn apply_inbox(&mut self) {
        while self.speech_end.is_none() {
            let Some(event) = self.inbox.pop_front() else {
                break;
            };
            match event {
                VadEvent::SpeechStart { start } => {
                    self.in_utterance = true;
                    if start.saturating_sub(self.context_end) > samples(FLOW_GAP) {
                        // After a real pause, no context: committed text fed
                        // back across pauses seeded repetition loops.
                        self.context.clear();
                    }
                    if self.window.is_empty() {
                        self.window_start = start;
                        self.decoded_until = self.decoded_until.max(start);
                    }
                }
                VadEvent::Audio { start, samples } => {
                    if self.window.is_empty() {
                        self.window_start = start;
                    }
                    // The VAD's audio is contiguous inside an utterance.
                    let gap = start.saturating_sub(self.window_end()) as usize;
                    self.window.resize(self.window.len() + gap, 0.0);
                    self.window.extend_from_slice(&samples);
                    self.received_until = self.window_end();
                    self.in_utterance = true;
                }
                VadEvent::Pause { voiced_end, cut } => self.pauses.push_back((voiced_end, cut)),
                VadEvent::SpeechEnd { end, voiced_end } => {
                    self.received_until = self.received_until.max(end);
                    self.speech_end = Some((end, voiced_end));
                }
            }
        }
        let lag = self.received_until.saturating_sub(self.decoded_until);
        self.record_lag(if self.in_utterance { lag } else { 0 });
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.len() as u64
    }

    /// What to do next, given what has arrived.
    pub fn next_action(&self) -> Action {
        if !self.in_utterance {
            return Action::Wait;
        }
        if self.complete_piece().is_some() {
            return Action::Commit;
        }
        if self.partials == Partials::Off {
            // Behind: only the passes that commit.
            return Action::Wait;
        }
        if self.pause_to_read().is_some() {
            return Action::Decode;
        }
        let new_audio = self
            .window_end()
            .saturating_sub(self.decoded_until.max(self.window_start));
        // Adaptive step: when passes are slow (a loaded CPU), wait for twice
        // as much new audio as the last pass took, so partial passes keep the
        // worker at most half busy and the pass that commits a piece rarely
        // has to wait for one in flight.
        let mut step = self.config.min_step.max(self.last_pass * 2);
        if self.partials == Partials::Sparse {
            step *= 2;
        }
        if new_audio >= samples(step) {
            Action::Decode
        } else {
            Action::Wait
        }
    }

    /// The newest pause that no pass has read up to yet: a pass ending
    /// exactly there is the one that commits the utterance if the voice
    /// does not come back (so the commit needs no pass of its own).
    fn pause_to_read(&self) -> Option<u64> {
        let &(_, cut) = self.pauses.back()?;
        let read = self.last.as_ref().map_or(0, |p| p.covered_until);
        (read < cut && cut <= self.window_end()).then_some(cut)
    }

    /// The piece at the front of the window that is complete, if any.
    fn complete_piece(&self) -> Option<Piece> {
        let start = self.window_start;
        let min = start + samples(self.config.min_piece);
        let max = start + samples(self.config.max_piece);
        if let Some((end, voiced_end)) = self.speech_end {
            if end <= max {
                return Some(Piece {
                    end,
                    voiced_end,
                    closes: true,
                    forced: false,
                });
            }
        }
        // The latest pause that makes a piece of a fitting length (a worker
        // that fell behind takes all the waiting ones at once).
        let pause = self
            .pauses
            .iter()
            .rev()
            .find(|&&(_, cut)| cut >= min && cut <= max && cut <= self.window_end());
        if let Some(&(voiced_end, cut)) = pause {
            return Some(Piece {
                end: cut,
                voiced_end,
                closes: false,
                forced: false,
            });
        }
        let available = match self.speech_end {
            Some((end, _)) => end,
            None => self
                .window_end()
                .saturating_sub(samples(self.config.tail_guard)),
        };
        if available < max {
            return None;
        }
        let cut = self.quietest(start + samples(self.config.max_piece / 2), max);
        Some(Piece {
            end: cut,
            voiced_end: cut,
            closes: false,
            forced: true,
        })
    }

    /// The middle of the quietest 100 ms of the window between `from` and
    /// `to` (absolute samples), found in 10 ms steps.
    fn quietest(&self, from: u64, to: u64) -> u64 {
        let span = (SAMPLE_RATE_HZ / 10) as usize;
        let hop = (SAMPLE_RATE_HZ / 100) as usize;
        let lo = (from.saturating_sub(self.window_start) as usize).min(self.window.len());
        let hi = (to.saturating_sub(self.window_start) as usize).min(self.window.len());
        let energy = |i: usize| -> f32 { self.window[i..i + span].iter().map(|s| s * s).sum() };
        let mut best = (f32::INFINITY, hi);
        let mut i = lo;
        while i + span <= hi {
            let e = energy(i);
            if e < best.0 {
                best = (e, i + span / 2);
            }
            i += hop;
        }
        self.window_start + best.1 as u64
    }

    /// Sets how many partial passes to run (load-adaptive inference: fewer
    /// or none while the worker is behind).
    pub fn set_partials(&mut self, partials: Partials) {
        self.partials = partials;
    }

    /// Whether the next pass only refreshes the partial line, so it may be
    /// aborted when a pause or the utterance's end arrives (a pass that
    /// reads up to a pause may be the one that commits: never aborted).
    pub fn next_pass_is_partial(&self) -> bool {
        self.next_action() == Action::Decode && self.pause_to_read().is_none()
    }

    /// How far the committed or decoded text is behind the newest audio.
    pub fn lag_s(&self) -> f64 {
        if !self.in_utterance {
            return 0.0;
        }
        self.received_until.saturating_sub(self.decoded_until) as f64 / SAMPLE_RATE_HZ as f64
    }

    /// Carries out [`Stream::next_action`]; returns the events it produced.
    pub fn step(&mut self, decoder: &mut dyn Decode) -> Result<Vec<Event>, InferenceError> {
        match self.next_action() {
            Action::Wait => Ok(Vec::new()),
            Action::Commit => match self.complete_piece() {
                Some(piece) => self.commit_piece(decoder, piece),
                None => Ok(Vec::new()),
            },
            Action::Decode => self.partial_pass(decoder),
        }
    }

    /// End of input: decode and commit whatever is left.
    pub fn finish(&mut self, decoder: &mut dyn Decode) -> Result<Vec<Event>, InferenceError> {
        let mut events = Vec::new();
        loop {
            if self.speech_end.is_none() && self.in_utterance {
                // Stopped mid-utterance: all of it counts as voiced.
                let end = self.window_end();
                self.speech_end = Some((end, end));
            }
            match self.complete_piece() {
                Some(piece) => events.extend(self.commit_piece(decoder, piece)?),
                None if self.inbox.is_empty() => return Ok(events),
                None => self.apply_inbox(),
            }
        }
    }

    /// Gives up the open piece (inference failed on it twice) and returns a
    /// gap event covering it, so the loss is visible.
    pub fn abandon(&mut self, why: &str) -> Vec<Event> {
        let start = self.window_start as f64 / SAMPLE_RATE_HZ as f64;
        let end = match self.complete_piece() {
            Some(piece) => piece.end,
            None => self.window_end(),
        };
        let end_s = end as f64 / SAMPLE_RATE_HZ as f64;
        self.drop_piece(end, self.speech_end.is_some_and(|(e, _)| e <= end));
        vec![Event {
            source: self.config.source,
            kind: EventKind::Gap,
            start,
            end: end_s,
            text: why.to_string(),
            emitted: Some(self.clock.elapsed().as_secs_f64()),
        }]
    }

    fn partial_pass(&mut self, decoder: &mut dyn Decode) -> Result<Vec<Event>, InferenceError> {
        let covered_until = self.pause_to_read().unwrap_or_else(|| self.window_end());
        let len = (covered_until - self.window_start) as usize;
        let hypothesis = match self.decode(decoder, len) {
            Err(InferenceError::Aborted) => {
                // Nothing read: the next decision sees the event that
                // aborted it.
                self.stats.aborted_partials.fetch_add(1, Ordering::Relaxed);
                return Ok(Vec::new());
            }
            other => other?,
        };
        let words = self.clean_words(&hypothesis, self.window_start);
        self.last = Some(Pass {
            words: words.clone(),
            covered_until,
        });
        if !self.config.partials || words.is_empty() {
            return Ok(Vec::new());
        }
        self.stats.partial_events.fetch_add(1, Ordering::Relaxed);
        let start = words[0].start.max(self.committed_until);
        let end = words[words.len() - 1].end.max(start);
        Ok(vec![self.event(EventKind::Partial, &words, start, end)])
    }

    fn commit_piece(
        &mut self,
        decoder: &mut dyn Decode,
        piece: Piece,
    ) -> Result<Vec<Event>, InferenceError> {
        let mut words = if piece.voiced_end <= self.window_start {
            // Only the quiet after the last voiced sample: never decoded on
            // its own, since Whisper invents text on silence.
            Vec::new()
        } else {
            match self.last.take() {
                // A pass that read past the voice (with some quiet after its
                // last word, so no word was cut off) and not into the next
                // piece heard exactly this piece.
                Some(pass)
                    if pass.covered_until >= piece.voiced_end + samples(QUIET_AFTER_VOICE)
                        && pass.covered_until <= piece.end =>
                {
                    pass.words
                }
                _ => {
                    let len = (piece.end - self.window_start) as usize;
                    let hypothesis = self.decode(decoder, len)?;
                    self.clean_words(&hypothesis, self.window_start)
                }
            }
        };
        // With a prompt (or after a cut inside a word), a pass may start by
        // repeating the committed tail.
        let repeated = repeated_tail(&self.context, &words);
        words.drain(..repeated);
        self.stats.pieces.fetch_add(1, Ordering::Relaxed);
        if piece.forced {
            self.stats.forced_cuts.fetch_add(1, Ordering::Relaxed);
        }
        let piece_start_s = self.window_start as f64 / SAMPLE_RATE_HZ as f64;
        let voiced_end_s = piece.voiced_end.max(self.window_start) as f64 / SAMPLE_RATE_HZ as f64;
        self.drop_piece(piece.end, piece.closes);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // Times never go backwards and stay inside the piece's audio.
        let start = words[0]
            .start
            .max(piece_start_s)
            .max(self.committed_until)
            .min(voiced_end_s.max(self.committed_until));
        let end = voiced_end_s.max(start);
        self.committed_until = end;
        self.context.extend(words.iter().map(|w| w.text.clone()));
        let excess = self.context.len().saturating_sub(CONTEXT_WORDS);
        self.context.drain(..excess);
        self.context_end = piece.voiced_end;
        self.stats
            .committed_words
            .fetch_add(words.len() as u64, Ordering::Relaxed);
        Ok(vec![self.event(EventKind::Final, &words, start, end)])
    }

    /// Removes the piece ending at `end` from the window; `closes` ends the
    /// utterance too, and lets the next waiting events in.
    fn drop_piece(&mut self, end: u64, closes: bool) {
        let n = (end.saturating_sub(self.window_start) as usize).min(self.window.len());
        self.window.drain(..n);
        self.window_start = end;
        self.decoded_until = self.decoded_until.max(end);
        self.last = None;
        while self.pauses.front().is_some_and(|&(_, cut)| cut <= end) {
            self.pauses.pop_front();
        }
        if closes {
            self.window.clear();
            self.pauses.clear();
            self.in_utterance = false;
            self.speech_end = None;
            self.apply_inbox();
        }
    }

    /// Decodes the first `len` samples of the window.
    fn decode(
        &mut self,
        decoder: &mut dyn Decode,
        len: usize,
    ) -> Result<Hypothesis, InferenceError> {
        let keep = self.context.len().saturating_sub(self.config.prompt_words);
        let request = DecodeRequest {
            prompt: self.context[keep..].join(" "),
            fit_audio_ctx: true,
            temperature_fallback: false,
            word_times: true,
        };
        let len = len.min(self.window.len());
        let hypothesis = decoder.decode(&self.window[..len], &request)?;
        self.last_pass = hypothesis.elapsed;
        self.decoded_until = self.decoded_until.max(self.window_start + len as u64);
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .decode_us
            .fetch_add(hypothesis.elapsed.as_micros() as u64, Ordering::Relaxed);
        self.stats
            .decoded_samples
            .fetch_add(len as u64, Ordering::Relaxed);
        let lag = self.received_until.saturating_sub(self.decoded_until);
        self.record_lag(lag);
        Ok(hypothesis)
    }

    fn record_lag(&self, lag_samples: u64) {
        let ms = lag_samples * 1000 / SAMPLE_RATE_HZ as u64;
        self.stats.lag_ms.store(ms, Ordering::Relaxed);
        self.stats.max_lag_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The pass's words in absolute seconds (inside the decoded audio),
    /// cleaned of invented text and loops.
    fn clean_words(&mut self, hypothesis: &Hypothesis, audio_start: u64) -> Vec<Word> {
        if is_invented(hypothesis) {
            self.stats.rejected_passes.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let offset = audio_start as f64 / SAMPLE_RATE_HZ as f64;
        let end_s = self.decoded_until as f64 / SAMPLE_RATE_HZ as f64;
        let mut words: Vec<Word> = hypothesis
            .words
            .iter()
            .map(|w| Word {
                text: w.text.clone(),
                start: (offset + w.start).clamp(offset, end_s),
                end: (offset + w.end).clamp(offset, end_s),
                probability: w.probability,
            })
            .collect();
        if cut_repetition(&mut words) {
            self.stats.loops_cut.fetch_add(1, Ordering::Relaxed);
        }
        words
    }

    fn event(&self, kind: EventKind, words: &[Word], start: f64, end: f64) -> Event {
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Event {
            source: self.config.source,
            kind,
            start,
            end,
            text,
            emitted: Some(self.clock.elapsed().as_secs_f64()),
        }
    }
}

/// Quiet a pass must have read after the last voiced sample for its words
/// to be committed as a piece's (the VAD's pause is longer).
const QUIET_AFTER_VOICE: Duration = Duration::from_millis(64);
/// The longest repeat of the committed tail a piece may start with.
const REPEAT_MAX_WORDS: usize = 3;
/// Pieces closer than this belong to one flow of speech, whose committed
/// text is the next piece's prompt; after a longer pause, none.
const FLOW_GAP: Duration = Duration::from_millis(1000);
/// Committed words kept as context.
const CONTEXT_WORDS: usize = 40;

fn samples(d: Duration) -> u64 {
    (d.as_secs_f64() * SAMPLE_RATE_HZ as f64) as u64
}

/// The number of leading `words` that repeat the end of `committed`.
fn repeated_tail(committed: &[String], words: &[Word]) -> usize {
    let max = committed.len().min(words.len()).min(REPEAT_MAX_WORDS);
    (1..=max)
        .rev()
        .find(|&n| {
            let tail = &committed[committed.len() - n..];
            tail.iter()
                .zip(&words[..n])
                .all(|(a, b)| same_word(a, &b.text))
        })
        .unwrap_or(0)
}
