//! The streaming policy: when to decode, what to show as partial, what to
//! commit as final.
//!
//! Whisper decodes a whole window at a time, so streaming means decoding a
//! growing window again and again. The policy here:
//!
//! 1. **Decode continuously while someone speaks.** A pass starts as soon as
//!    the previous one ended and at least [`StreamConfig::min_step`] of new
//!    audio arrived (or, when passes are slow, twice as much new audio as
//!    the last pass took). Its words, minus what is already committed, are the
//!    partial hypothesis. Silence (no open utterance) costs no pass at all.
//! 2. **Commit at the end of an utterance without waiting for a new pass**
//!    when the last pass already covered the last voiced sample (the VAD
//!    reports where the voice stopped, before its hangover). Otherwise one more pass runs and is committed
//!    whole. This is where most text is committed, and why the latency from
//!    the end of a phrase is about one hangover plus at most one pass.
//! 3. **Inside a long utterance** (longer than [`StreamConfig::commit_after`]),
//!    **commit what two passes agree on**
//!    (LocalAgreement-2, as in ufal/whisper_streaming), but never a word that
//!    ends within [`StreamConfig::tail_guard`] of the newest audio: that word
//!    may still be growing ("the" -> "then").
//! 4. **Trim the window** after commits once it is longer than
//!    [`StreamConfig::trim_after`], cutting at the start of the last
//!    committed word; the committed text goes on as the prompt, and a new
//!    pass's words that repeat the committed tail are dropped, so no word is
//!    duplicated or lost at the cut. Inside a window, committed words are
//!    found in a new pass by aligning text, not by Whisper's rough word times.
//! 5. **Falling behind** never skips audio: a pass takes all the audio that
//!    arrived while the previous one ran (so passes get larger, not more
//!    frequent), and the lag is reported.
//! 6. **Guards** against Whisper's known failures: a pass whose no-speech
//!    probability is high and whose words are unsure yields nothing (text
//!    invented on noise); a run of a repeated 1-4 word n-gram is cut to its
//!    first occurrence (repetition loops); committed text never changes.
//! 7. **Stop** ([`Stream::finish`]) decodes and commits whatever is left.
//!
//! Not real-time safe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{DecodeRequest, Decoder, Hypothesis, Word, SAMPLE_RATE_HZ};
use super::InferenceError;
use crate::event::{Event, EventKind, Source};
use crate::vad::VadEvent;

/// How the policy behaves.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub source: Source,
    /// New audio needed before another pass inside an utterance.
    pub min_step: Duration,
    /// Words ending this close to the newest audio are never committed early.
    pub tail_guard: Duration,
    /// Commit what two passes agree on only once the window is longer than
    /// this; shorter utterances are committed whole when they end.
    pub commit_after: Duration,
    /// Trim the window after commits once it is longer than this.
    pub trim_after: Duration,
    /// Past this window length, commit agreed words even without a second
    /// agreeing pass, so the window never outgrows Whisper's 30 s.
    pub max_window: Duration,
    /// Committed words fed back as the prompt.
    pub prompt_words: usize,
    /// Emit partial events.
    pub partials: bool,
}

impl StreamConfig {
    pub fn new(source: Source) -> Self {
        StreamConfig {
            source,
            min_step: Duration::from_millis(250),
            tail_guard: Duration::from_millis(600),
            commit_after: Duration::from_secs(8),
            // Up to about 15 s the fitted encoder window costs the same as
            // for 1 s (its floor is 768 frames), so trim only beyond that.
            trim_after: Duration::from_secs(15),
            max_window: Duration::from_secs(24),
            prompt_words: 40,
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
    /// The newest audio received minus the audio the last pass covered, ms.
    pub lag_ms: AtomicU64,
    pub max_lag_ms: AtomicU64,
    pub committed_words: AtomicU64,
    pub partial_events: AtomicU64,
    /// Passes discarded as invented text on non-speech.
    pub rejected_passes: AtomicU64,
    /// Repetition loops cut.
    pub loops_cut: AtomicU64,
}

impl StreamStats {
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
    /// Run a pass over the window.
    Decode,
    /// The utterance ended and the last pass covered it: commit it now.
    CommitLast,
}

/// The streaming state of one source.
pub struct Stream {
    config: StreamConfig,
    stats: Arc<StreamStats>,
    clock: Instant,
    /// Audio of the current utterance not yet trimmed away.
    window: Vec<f32>,
    /// Absolute sample index of `window[0]`.
    window_start: u64,
    /// Absolute end (exclusive) of the newest audio received.
    received_until: u64,
    /// Absolute end of the audio the last pass covered.
    decoded_until: u64,
    in_utterance: bool,
    /// The utterance's end, once the VAD closed it.
    speech_end: Option<u64>,
    /// Where its last voiced frame ended.
    voiced_end: u64,
    /// Uncommitted words of the last pass (absolute times).
    last_words: Option<Vec<Word>>,
    /// Words committed inside the current window (absolute times).
    window_committed: Vec<Word>,
    /// Recent committed words of the session (prompt and de-duplication).
    recent: VecDeque<String>,
    /// End of the last committed event, seconds.
    committed_until: f64,
    /// How long the last pass took.
    last_pass: Duration,
}

impl Stream {
    pub fn new(config: StreamConfig, clock: Instant) -> Self {
        Stream {
            config,
            stats: Arc::new(StreamStats::default()),
            clock,
            window: Vec::new(),
            window_start: 0,
            received_until: 0,
            decoded_until: 0,
            in_utterance: false,
            speech_end: None,
            voiced_end: 0,
            last_words: None,
            window_committed: Vec::new(),
            recent: VecDeque::new(),
            committed_until: 0.0,
            last_pass: Duration::ZERO,
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
        match event {
            VadEvent::SpeechStart { start } => {
                self.in_utterance = true;
                self.speech_end = None;
                if self.window.is_empty() {
                    self.window_start = start;
                }
            }
            VadEvent::Audio { start, samples } => {
                if self.window.is_empty() {
                    self.window_start = start;
                }
                self.window.extend_from_slice(&samples);
                self.received_until = start + samples.len() as u64;
                self.in_utterance = true;
            }
            VadEvent::SpeechEnd { end, voiced_end } => {
                self.speech_end = Some(end);
                self.voiced_end = voiced_end;
                self.received_until = self.received_until.max(end);
            }
        }
        let lag = self
            .received_until
            .saturating_sub(self.decoded_until.max(self.window_start));
        self.record_lag(if self.in_utterance { lag } else { 0 });
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.len() as u64
    }

    /// What to do next, given what has arrived.
    pub fn next_action(&self) -> Action {
        if !self.in_utterance || self.window.is_empty() {
            return Action::Wait;
        }
        if self.speech_end.is_some() {
            let covered = self.last_words.is_some()
                && self.decoded_until >= self.voiced_end.min(self.window_end());
            return if covered {
                Action::CommitLast
            } else {
                Action::Decode
            };
        }
        let new_audio = self
            .window_end()
            .saturating_sub(self.decoded_until.max(self.window_start));
        // Adaptive step: when passes are slow (a loaded CPU), wait for twice
        // as much new audio as the last pass took, so partial passes keep the
        // worker at most half busy and the pass at the end of the utterance
        // rarely has to wait for one in flight.
        let step = self.config.min_step.max(self.last_pass * 2);
        if new_audio >= samples(step) {
            Action::Decode
        } else {
            Action::Wait
        }
    }

    /// Carries out [`Stream::next_action`]; returns the events it produced.
    pub fn step(&mut self, decoder: &mut Decoder) -> Result<Vec<Event>, InferenceError> {
        match self.next_action() {
            Action::Wait => Ok(Vec::new()),
            Action::CommitLast => Ok(self.close_utterance()),
            Action::Decode => {
                let hypothesis = self.decode(decoder)?;
                let words = self.fresh_words(&hypothesis);
                if self.speech_end.is_some() {
                    self.last_words = Some(words);
                    return Ok(self.close_utterance());
                }
                Ok(self.agree(words))
            }
        }
    }

    /// End of input: decode and commit whatever is left.
    pub fn finish(&mut self, decoder: &mut Decoder) -> Result<Vec<Event>, InferenceError> {
        if self.window.is_empty() {
            return Ok(Vec::new());
        }
        if self.speech_end.is_none() {
            // Stopped mid-utterance: all of it counts as voiced.
            self.speech_end = Some(self.window_end());
            self.voiced_end = self.window_end();
        }
        if self.next_action() == Action::Decode {
            let hypothesis = self.decode(decoder)?;
            self.last_words = Some(self.fresh_words(&hypothesis));
        }
        Ok(self.close_utterance())
    }

    /// Gives up the current window (inference failed on it twice) and
    /// returns a gap event covering it, so the loss is visible.
    pub fn abandon(&mut self, why: &str) -> Vec<Event> {
        let start = self.window_start as f64 / SAMPLE_RATE_HZ as f64;
        let end = self.window_end() as f64 / SAMPLE_RATE_HZ as f64;
        self.last_words = None;
        self.close_utterance();
        vec![Event {
            source: self.config.source,
            kind: EventKind::Gap,
            start,
            end,
            text: why.to_string(),
            emitted: Some(self.clock.elapsed().as_secs_f64()),
        }]
    }

    fn decode(&mut self, decoder: &mut Decoder) -> Result<Hypothesis, InferenceError> {
        let prompt = self.recent.iter().cloned().collect::<Vec<_>>().join(" ");
        let request = DecodeRequest {
            prompt,
            fit_audio_ctx: true,
            temperature_fallback: false,
            word_times: true,
        };
        let hypothesis = decoder.decode(&self.window, &request, None)?;
        self.last_pass = hypothesis.elapsed;
        self.decoded_until = self.window_end();
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .decode_us
            .fetch_add(hypothesis.elapsed.as_micros() as u64, Ordering::Relaxed);
        self.stats
            .decoded_samples
            .fetch_add(self.window.len() as u64, Ordering::Relaxed);
        let lag = self.received_until.saturating_sub(self.decoded_until);
        self.record_lag(lag);
        Ok(hypothesis)
    }

    fn record_lag(&self, lag_samples: u64) {
        let ms = lag_samples * 1000 / SAMPLE_RATE_HZ as u64;
        self.stats.lag_ms.store(ms, Ordering::Relaxed);
        self.stats.max_lag_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The pass's words in absolute seconds, cleaned of invented text and
    /// loops, minus what is already committed.
    fn fresh_words(&mut self, hypothesis: &Hypothesis) -> Vec<Word> {
        let offset = self.window_start as f64 / SAMPLE_RATE_HZ as f64;
        let window_end_s = self.window_end() as f64 / SAMPLE_RATE_HZ as f64;
        if is_invented(hypothesis) {
            self.stats.rejected_passes.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let mut words: Vec<Word> = hypothesis
            .words
            .iter()
            .map(|w| Word {
                text: w.text.clone(),
                start: (offset + w.start).min(window_end_s),
                end: (offset + w.end).min(window_end_s),
                probability: w.probability,
            })
            .collect();
        if cut_repetition(&mut words) {
            self.stats.loops_cut.fetch_add(1, Ordering::Relaxed);
        }
        // Drop what this window already committed. Word times are too rough
        // to cut by, so align by text: skip the prefix that is closest to
        // the committed words (Whisper may re-spell a committed word).
        let skip = committed_prefix_len(&words, &self.window_committed);
        let mut fresh = words.split_off(skip);
        // After a trim, the window starts at a committed word's end: a pass
        // may repeat the last committed words. Drop the longest such overlap.
        if self.window_committed.is_empty() {
            let overlap = overlap_with_tail(&self.recent, &fresh);
            fresh.drain(..overlap);
        }
        fresh
    }

    /// LocalAgreement-2 with a tail guard; emits commits and a partial.
    fn agree(&mut self, words: Vec<Word>) -> Vec<Event> {
        let mut events = Vec::new();
        let newest_s = self.window_end() as f64 / SAMPLE_RATE_HZ as f64;
        let guard_s = self.config.tail_guard.as_secs_f64();
        let window_s = self.window.len() as f64 / SAMPLE_RATE_HZ as f64;
        let force = window_s > self.config.max_window.as_secs_f64();
        let mut agreed = 0;
        // Short utterances are committed whole at their end, where the last
        // pass has seen all of their audio; agreeing early only pays off
        // (in latency and window size) on long ones.
        let long = window_s > self.config.commit_after.as_secs_f64();
        if let (true, Some(previous)) = (long, &self.last_words) {
            while agreed < words.len()
                && agreed < previous.len()
                && same_word(&words[agreed].text, &previous[agreed].text)
                && words[agreed].end <= newest_s - guard_s
            {
                agreed += 1;
            }
        }
        if force && agreed == 0 {
            agreed = words
                .iter()
                .take_while(|w| w.end <= newest_s - guard_s)
                .count();
        }
        let (commit, rest) = words.split_at(agreed);
        if let Some(event) = self.commit(commit) {
            events.push(event);
        }
        self.last_words = Some(rest.to_vec());
        if self.config.partials && !rest.is_empty() {
            self.stats.partial_events.fetch_add(1, Ordering::Relaxed);
            events.push(self.event(EventKind::Partial, rest));
        }
        self.maybe_trim();
        events
    }

    /// Commits the last pass's words and closes the utterance.
    fn close_utterance(&mut self) -> Vec<Event> {
        let words = self.last_words.take().unwrap_or_default();
        let event = self.commit(&words);
        self.window.clear();
        self.window_committed.clear();
        self.window_start = self.received_until;
        self.decoded_until = self.received_until;
        self.in_utterance = false;
        self.speech_end = None;
        self.record_lag(0);
        event.into_iter().collect()
    }

    fn commit(&mut self, words: &[Word]) -> Option<Event> {
        if words.is_empty() {
            return None;
        }
        self.window_committed.extend_from_slice(words);
        for w in words {
            self.recent.push_back(w.text.clone());
        }
        while self.recent.len() > self.config.prompt_words {
            self.recent.pop_front();
        }
        self.stats
            .committed_words
            .fetch_add(words.len() as u64, Ordering::Relaxed);
        let event = self.event(EventKind::Final, words);
        self.committed_until = event.end;
        Some(event)
    }

    /// Cuts committed audio off the window once it grows long.
    fn maybe_trim(&mut self) {
        let window_s = self.window.len() as f64 / SAMPLE_RATE_HZ as f64;
        let Some(last) = self.window_committed.last() else {
            return;
        };
        if window_s <= self.config.trim_after.as_secs_f64() {
            return;
        }
        // Cut well before the last committed word: Whisper's word times
        // can be off by seconds (a cut too late loses audio, as a two-source
        // live test showed), while words heard twice are dropped as a repeat
        // of the committed tail. So cut at the earliest start among the last
        // few committed words, less a margin.
        let earliest = self
            .window_committed
            .iter()
            .rev()
            .take(TRIM_BACK_WORDS)
            .map(|w| w.start)
            .fold(last.start, f64::min);
        let cut_s = (earliest - TRIM_MARGIN_S).max(0.0);
        let cut =
            ((cut_s * SAMPLE_RATE_HZ as f64) as u64).clamp(self.window_start, self.window_end());
        let n = (cut - self.window_start) as usize;
        self.window.drain(..n);
        self.window_start = cut;
        self.window_committed.clear();
    }

    fn event(&self, kind: EventKind, words: &[Word]) -> Event {
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Event {
            source: self.config.source,
            kind,
            start: words.first().map_or(0.0, |w| w.start),
            end: words.last().map_or(0.0, |w| w.end),
            text,
            emitted: Some(self.clock.elapsed().as_secs_f64()),
        }
    }
}

/// Committed words kept in the window after a trim (see `maybe_trim`).
const TRIM_BACK_WORDS: usize = 4;
/// Audio kept before them, seconds.
const TRIM_MARGIN_S: f64 = 1.0;
/// The longest repeat of the committed tail a new pass may start with.
const OVERLAP_MAX_WORDS: usize = 8;

fn samples(d: Duration) -> u64 {
    (d.as_secs_f64() * SAMPLE_RATE_HZ as f64) as u64
}

/// Words compared without case or punctuation.
fn same_word(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(a) == norm(b)
}

/// Text Whisper invents on non-speech: the pass itself says it is probably
/// not speech, and its words are unsure.
fn is_invented(h: &Hypothesis) -> bool {
    if h.words.is_empty() {
        return false;
    }
    let mean_p = h.words.iter().map(|w| w.probability).sum::<f32>() / h.words.len() as f32;
    h.no_speech > 0.6 && mean_p < 0.6
}

/// Cuts a run of a 1-4 word n-gram repeated three or more times in a row to
/// its first occurrence. Returns whether it cut.
pub fn cut_repetition(words: &mut Vec<Word>) -> bool {
    for n in 1..=4 {
        let mut i = 0;
        while i + 3 * n <= words.len() {
            let repeats = (1..)
                .take_while(|k| {
                    let start = i + k * n;
                    start + n <= words.len()
                        && (0..n).all(|j| same_word(&words[i + j].text, &words[start + j].text))
                })
                .count();
            if repeats >= 2 {
                words.truncate(i + n);
                return true;
            }
            i += 1;
        }
    }
    false
}

/// How many leading `words` correspond to `committed`: the prefix length
/// whose word edit distance to `committed` is smallest, the shortest on a
/// tie, and none when no committed word is found at all: dropping a word
/// that was never committed would lose it, while keeping one that was is
/// caught by the tail check.
fn committed_prefix_len(words: &[Word], committed: &[Word]) -> usize {
    if committed.is_empty() {
        return 0;
    }
    let max_k = words.len().min(committed.len() + 3);
    // dist[k] = edit distance between words[..k] and committed, computed
    // row by row over committed.
    let mut row: Vec<usize> = (0..=max_k).collect();
    for (i, c) in committed.iter().enumerate() {
        let mut next = vec![i + 1; max_k + 1];
        for k in 1..=max_k {
            let sub = row[k - 1] + usize::from(!same_word(&words[k - 1].text, &c.text));
            next[k] = sub.min(row[k] + 1).min(next[k - 1] + 1);
        }
        row = next;
    }
    // `min_by_key` keeps the first of equal minima: the shortest prefix.
    let best = (0..=max_k).min_by_key(|&k| row[k]).unwrap_or(0);
    if row[best] >= committed.len() {
        return 0;
    }
    best
}

/// The number of leading `fresh` words that repeat the end of `recent`.
fn overlap_with_tail(recent: &VecDeque<String>, fresh: &[Word]) -> usize {
    let max = recent.len().min(fresh.len()).min(OVERLAP_MAX_WORDS);
    (1..=max)
        .rev()
        .find(|&n| {
            let tail = recent.iter().skip(recent.len() - n);
            tail.zip(&fresh[..n]).all(|(a, b)| same_word(a, &b.text))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Word> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| Word {
                text: t.to_string(),
                start: i as f64,
                end: i as f64 + 0.5,
                probability: 0.9,
            })
            .collect()
    }

    #[test]
    fn repetition_loops_are_cut_to_one_occurrence() {
        let mut w = words("I think that that that that is it");
        assert!(cut_repetition(&mut w));
        assert_eq!(
            w.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["I", "think", "that"]
        );
        let mut w = words("thank you thank you thank you thank you");
        assert!(cut_repetition(&mut w));
        assert_eq!(w.len(), 2);
        let mut w = words("the cat sat on the mat");
        assert!(!cut_repetition(&mut w));
        assert_eq!(w.len(), 6);
    }

    #[test]
    fn committed_prefix_is_found_by_text() {
        let committed = words("the weather today");
        assert_eq!(
            committed_prefix_len(&words("the weather today will be"), &committed),
            3
        );
        assert_eq!(
            committed_prefix_len(&words("the whether today will be"), &committed),
            3
        );
        assert_eq!(
            committed_prefix_len(&words("weather today will be"), &committed),
            2
        );
        assert_eq!(committed_prefix_len(&words("will be"), &[]), 0);
        // A pass that does not contain the committed words keeps all of its
        // own (regression: a tie once dropped "evening should stay dry").
        let long = words("the weather today will be mostly sunny with a light breeze from the");
        assert_eq!(
            committed_prefix_len(&words("evening should stay dry"), &long),
            0
        );
    }

    #[test]
    fn overlap_finds_repeated_committed_tail() {
        let recent: VecDeque<String> = ["we", "need", "to", "finish."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            overlap_with_tail(&recent, &words("to finish the design")),
            2
        );
        assert_eq!(overlap_with_tail(&recent, &words("the design")), 0);
    }
}
