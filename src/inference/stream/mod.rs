//! The streaming policy: when to decode, what to show as partial, what to
//! commit as final.
//!
//! Whisper decodes a whole window at a time, so streaming means decoding a
//! growing window again and again. The policy cuts each utterance into
//! **pieces at pauses** and commits each piece whole, from one pass over
//! its own audio (after the lead, item 3, whose words are dropped). Pieces
//! never overlap, so no word can be committed
//! twice, and no text alignment or word timestamps are needed to find where
//! committed text ends (Whisper's are off by up to seconds on real speech,
//! which is what made the earlier agreement-based policy repeat sentences).
//!
//! 1. **Partials while someone speaks.** A pass over the open piece starts
//!    once [`StreamConfig::min_step`] of new audio arrived (or, when passes
//!    are slow, twice as much as the last pass took; a piece's first pass
//!    waits for [`StreamConfig::first_partial`], so the pass that commits a
//!    short phrase does not wait behind one over its first word). Its words
//!    are the partial hypothesis. Silence (no open utterance) costs no pass
//!    at all. Load-adaptive inference ([`super::load`]) makes partials
//!    sparser, or stops them, while the worker is behind. No partial starts
//!    while the newest audio has gone quiet (for up to 176 ms): the pass at
//!    the pause the VAD may be about to report is the one that commits, and
//!    a partial's encoder cannot be aborted.
//! 2. **A piece ends at the utterance's end, or at a pause** the VAD
//!    reports inside the utterance ([`VadEvent::Pause`]: the voice stopped
//!    and the level stayed low for 112 ms) once the piece is at least
//!    [`StreamConfig::min_piece`] long (3 s: cutting sooner broke sentences
//!    into fragments Whisper mishears, measured on real speech). At every
//!    pause a pass runs over the audio up to it; if the voice does not come
//!    back, that pass heard exactly the piece and its words are committed
//!    the moment the VAD closes the utterance, with no pass of its own
//!    (for the utterance's last piece, any pass at a pause after all of its
//!    voice will do: a tail pause that follows a soft ending gets no pass
//!    of its own when the last one already read past that ending);
//!    otherwise one pass over the piece runs and is committed.
//!    After a lead (below) the piece may end at a pause once it is
//!    [`StreamConfig::min_led_piece`] (1.5 s) long, or at an earlier one
//!    when a pass reading 0.3 s past it starts with the same words
//!    ([`short`]: Whisper heard a word end there).
//! 3. **The lead** ([`lead`]): the utterance's last ~3 s of committed
//!    pieces (and the last utterance's, when this one started within
//!    [`LEAD_GAP`] of its end) are decoded again in front of the open piece,
//!    so a short piece is heard in its context; the pass's leading words
//!    that repeat the lead's committed words are found by edit distance and
//!    dropped, and a pass that heard the lead otherwise is decoded again
//!    without it. A lead carried across an utterance's end holds at least
//!    one word.
//! 4. **A piece never outgrows [`StreamConfig::max_piece`]:** speech without
//!    a usable pause is cut at its quietest 100 ms in the second half of that
//!    span (and the next piece's leading words that repeat the committed tail
//!    are dropped, as such a cut may fall inside a word).
//! 5. **No prompt by default.** Committed text fed back as Whisper's prompt
//!    seeded repetition loops on real speech ("7 of close. 7 of close. ..."),
//!    so pieces are decoded on their own, as whisper.cpp's `whisper-stream`
//!    does. [`StreamConfig::prompt_words`] turns on a prompt from the current
//!    flow of speech (pieces less than [`FLOW_GAP`] apart; never across a
//!    real pause); a piece's leading words that repeat the committed tail
//!    are dropped either way.
//! 6. **Falling behind** never skips audio: events are taken in order, one
//!    utterance at a time, and pieces end where they would on a fast
//!    machine (the first fitting pause), so a slow CPU commits the same
//!    pieces later, never other words; it sheds partial passes instead.
//! 7. **Guards** ([`super::guard`]): a pass whose no-speech probability is
//!    high and whose words are unsure yields nothing; a repeated n-gram run is
//!    cut to one; audio after the last voiced sample is never decoded on its
//!    own (Whisper invents text on silence). Final events' times never go
//!    backwards and stay inside their piece's audio.
//! 8. **Stop** ([`Stream::finish`]) decodes and commits whatever is left.
//!
//! Not real-time safe.

mod config;
mod lead;
mod piece;
mod short;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::Decode;
use super::engine::SAMPLE_RATE_HZ;
use super::load::Partials;
use super::InferenceError;
use crate::event::{Event, EventKind, Source};
use crate::vad::{level_db, VadEvent, FRAME_SAMPLES, PAUSE_DROP_DB};

pub use config::{Action, StreamConfig, StreamStats};
use piece::Pass;
use short::Short;

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
    /// The utterance's last committed pieces, just before `window_start`,
    /// about [`StreamConfig::lead`] long: decoded in front of the open piece.
    lead: VecDeque<lead::Lead>,
    /// Absolute end of the lead's audio.
    lead_end: u64,
    /// Absolute end (exclusive) of the newest audio received.
    received_until: u64,
    /// Absolute end of the audio committed or read by the last pass.
    decoded_until: u64,
    in_utterance: bool,
    /// Pauses inside the window, in order.
    pauses: VecDeque<PauseAt>,
    /// The utterance's end and its last voiced sample, once the VAD closed it.
    speech_end: Option<(u64, u64)>,
    last: Option<Pass>,
    /// Short pieces ending at or before this (absolute sample) were refused
    /// by their confirming pass.
    refused_until: u64,
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
            lead: VecDeque::new(),
            lead_end: 0,
            received_until: 0,
            decoded_until: 0,
            in_utterance: false,
            pauses: VecDeque::new(),
            speech_end: None,
            last: None,
            refused_until: 0,
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
                        self.join_lead(start);
                    }
                }
                VadEvent::Audio { start, samples } => {
                    if self.window.is_empty() {
                        self.window_start = start;
                        self.join_lead(start);
                    }
                    // The VAD's audio is contiguous inside an utterance.
                    let gap = start.saturating_sub(self.window_end()) as usize;
                    self.window.resize(self.window.len() + gap, 0.0);
                    self.window.extend_from_slice(&samples);
                    self.received_until = self.window_end();
                    self.in_utterance = true;
                }
                VadEvent::Pause {
                    voiced_end,
                    cut,
                    tail,
                } => self.pauses.push_back(PauseAt {
                    voiced_end,
                    cut,
                    tail,
                }),
                VadEvent::SpeechEnd { end, voiced_end } => {
                    self.received_until = self.received_until.max(end);
                    self.speech_end = Some((end, voiced_end));
                }
            }
        }
        self.record_lag(self.lag_samples());
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
        if self.short_piece().is_some() {
            // A short piece waits for the audio its confirming pass reads
            // (its own pass at the pause has run); that pass shows the
            // newest words, so a partial now is wasted.
            return Action::Wait;
        }
        if (1..frames(HOLD_QUIET)).contains(&self.quiet_frames()) {
            // The voice may be pausing: the VAD reports a pause 112 ms into
            // the quiet, and the pass at it is the one that commits; a
            // partial started now would hold it back by a whole pass (its
            // encoder cannot be aborted).
            return Action::Wait;
        }
        let new_audio = self
            .window_end()
            .saturating_sub(self.decoded_until.max(self.window_start));
        let mut step = self.nominal_step();
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
        if let Some(Short::Pending(cut)) = self.short_piece() {
            // The pass that commits a short piece reads to its pause, not to
            // a later one.
            let read = self
                .last
                .as_ref()
                .is_some_and(|p| p.at_pause && p.covered_until == cut);
            return (!read).then_some(cut);
        }
        let newest = self.pauses.back()?;
        let (read, at_pause) = self
            .last
            .as_ref()
            .map_or((0, false), |p| (p.covered_until, p.at_pause));
        if newest.tail && at_pause && read >= newest.voiced_end {
            // The soft tail ended before the pause the last pass read to:
            // that pass heard all of the voice, and commits the utterance if
            // it ends here (reading to the tail's cut again cost a pass).
            return None;
        }
        let cut = newest.cut;
        // A pause just after the piece's start (the tail of the quiet a cut
        // fell in) reads too little to hold a word: the pass found none.
        let long_enough = cut >= self.window_start + samples(PAUSE_PASS_MIN);
        (read < cut && cut <= self.window_end() && long_enough).then_some(cut)
    }

    /// Frames (of [`FRAME_SAMPLES`]) at the end of the window that are
    /// quiet the way the VAD's pauses start: [`PAUSE_DROP_DB`] under the
    /// loudest frame of the last 2 s.
    fn quiet_frames(&self) -> usize {
        let levels = || {
            self.window
                .rchunks_exact(FRAME_SAMPLES)
                .take(frames(PEAK_SPAN))
                .map(level_db)
        };
        let Some(peak) = levels().reduce(f32::max) else {
            return 0;
        };
        levels()
            .take_while(|&level| level < peak - PAUSE_DROP_DB)
            .count()
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

    /// New audio the policy waits for before a partial pass, with every
    /// partial allowed.
    fn nominal_step(&self) -> Duration {
        // Adaptive step: when passes are slow (a loaded CPU), wait for twice
        // as much new audio as the last pass took, so partial passes keep the
        // worker at most half busy and the pass that commits a piece rarely
        // has to wait for one in flight.
        let step = self.config.min_step.max(self.last_pass * 2);
        if self.decoded_until <= self.window_start {
            // No pass over this piece yet: a short phrase is over before a
            // pass over its first words would be, and the pass at its end
            // (the one that commits) would wait for it.
            return step.max(self.config.first_partial);
        }
        step
    }

    /// How far the decoded text is behind the newest audio beyond what the
    /// policy waits for on purpose: the nominal step (or the first partial's
    /// wait) and the audio that arrives while a pass runs. Counting that
    /// waiting made an idle machine look behind: the first second of every
    /// utterance crossed the 1 s bound for sparser partials, which doubled
    /// the step and raised the lag alert with nothing else running. Only
    /// audio beyond it is the worker falling behind.
    pub fn lag_s(&self) -> f64 {
        self.lag_samples() as f64 / SAMPLE_RATE_HZ as f64
    }

    fn lag_samples(&self) -> u64 {
        if !self.in_utterance {
            return 0;
        }
        let waiting = self.received_until.saturating_sub(self.decoded_until);
        // The waiting counted as on purpose is what an idle machine's is:
        // it grows with the pass time, and uncapped a loaded machine's slow
        // passes excused themselves (three times the pass) and partials
        // never went sparse.
        let allowance = (self.nominal_step() + self.last_pass).min(MAX_WAIT_ON_PURPOSE);
        waiting.saturating_sub(samples(allowance))
    }

    /// How long the last pass took.
    pub fn last_pass(&self) -> Duration {
        self.last_pass
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
        self.drop_piece(
            end,
            self.speech_end.is_some_and(|(e, _)| e <= end),
            Vec::new(),
        );
        // Its words are not known: it cannot lead the next piece.
        self.lead.clear();
        vec![Event {
            source: self.config.source,
            kind: EventKind::Gap,
            start,
            end: end_s,
            text: why.to_string(),
            emitted: Some(self.clock.elapsed().as_secs_f64()),
        }]
    }
}

/// A pause the VAD reported inside the open utterance (absolute samples).
#[derive(Debug, Clone, Copy)]
struct PauseAt {
    voiced_end: u64,
    cut: u64,
    /// After a soft voiced tail ([`VadEvent::Pause`]): not a place to cut a
    /// piece, only where the last pass may read to.
    tail: bool,
}

/// Quiet a pass must have read after the last voiced sample for its words
/// to be committed as a piece's (the VAD's pause is longer).
const QUIET_AFTER_VOICE: Duration = Duration::from_millis(64);
/// The least audio of the open piece a pass at a pause reads.
const PAUSE_PASS_MIN: Duration = Duration::from_millis(250);
/// The most waiting [`Stream::lag_s`] counts as the policy's own: the first
/// partial's second plus an idle machine's pass over a long piece.
const MAX_WAIT_ON_PURPOSE: Duration = Duration::from_millis(1500);
/// Pieces closer than this belong to one flow of speech, whose committed
/// text is the next piece's prompt; after a longer pause, none.
const FLOW_GAP: Duration = Duration::from_millis(1000);
/// An utterance that starts less than this after the last one ended keeps
/// its pieces as its lead: speech that goes on, not a new phrase (the VAD's
/// hangover and pre-roll are already quiet between them).
const LEAD_GAP: Duration = Duration::from_millis(300);
/// How long a partial pass is held back while the newest audio is quiet
/// (the VAD's pause, 112 ms, plus a margin): a pause did not come (the
/// detector still hears a soft voice), and the partial runs.
const HOLD_QUIET: Duration = Duration::from_millis(176);
/// The audio whose loudest frame the quiet is measured against.
const PEAK_SPAN: Duration = Duration::from_secs(2);
/// Committed words kept as context.
const CONTEXT_WORDS: usize = 40;

/// Whole VAD frames in `d`.
fn frames(d: Duration) -> usize {
    samples(d) as usize / FRAME_SAMPLES
}

fn samples(d: Duration) -> u64 {
    (d.as_secs_f64() * SAMPLE_RATE_HZ as f64) as u64
}
