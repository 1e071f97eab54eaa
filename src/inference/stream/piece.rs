//! Pieces: finding the complete piece at the front of the window, the
//! passes over it, committing it whole, and the words' clean-up.
//!
//! Not real-time safe.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::lead::lead_split;
use super::short::Short;
use super::{samples, PauseAt, Stream, CONTEXT_WORDS, QUIET_AFTER_VOICE};
use crate::event::{Event, EventKind};
use crate::inference::decode::Decode;
use crate::inference::engine::{DecodeRequest, Hypothesis, Word, SAMPLE_RATE_HZ};
use crate::inference::guard::{cut_repetition, is_invented, same_word};
use crate::inference::InferenceError;

/// A complete piece at the front of the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    /// Absolute end (exclusive) of its audio.
    pub(super) end: u64,
    /// Where its last voiced sample ended.
    pub(super) voiced_end: u64,
    /// It ends the utterance.
    pub(super) closes: bool,
    /// Cut at the quietest point, not at a pause.
    pub(super) forced: bool,
    /// Where a pass over it ends: its end, or for the utterance's last
    /// piece, the cut of the pause after its last voice (the audio the pass
    /// at that pause read), so the committed words do not depend on
    /// whether the pass at the pause ran (partials off under load).
    pub(super) read_to: u64,
    /// A short piece after a lead: committed only if a pass reading on to
    /// here starts with the piece's words (see [`Stream::confirmed`]).
    pub(super) confirm_to: Option<u64>,
}

/// The last partial pass: its words (absolute seconds) and how far it read.
pub(super) struct Pass {
    pub(super) words: Vec<Word>,
    pub(super) covered_until: u64,
    /// It read up to a pause's cut (not just to the newest audio).
    pub(super) at_pause: bool,
}

impl Stream {
    /// The piece at the front of the window that is complete, if any.
    pub(super) fn complete_piece(&self) -> Option<Piece> {
        let start = self.window_start;
        let min = self.min_end();
        let max = start + samples(self.config.max_piece);
        // The first pause that makes a piece of a fitting length, before the
        // utterance's end: where pieces end depends on the audio alone, not
        // on how many events waited while a pass ran (taking the latest
        // waiting pause, or the whole utterance once its end had arrived,
        // made a slower machine commit longer pieces and other words).
        let end = self.speech_end.map_or(u64::MAX, |(end, _)| end);
        let pause = self.pauses.iter().find(|p| {
            !p.tail && p.cut >= min && p.cut <= max && p.cut <= self.window_end() && p.cut < end
        });
        match self.short_piece() {
            Some(Short::Ready(piece)) => return Some(piece),
            Some(Short::Pending(_)) => return None,
            None => {}
        }
        if let Some(&PauseAt {
            voiced_end, cut, ..
        }) = pause
        {
            return Some(Piece {
                end: cut,
                voiced_end,
                closes: false,
                forced: false,
                read_to: cut,
                confirm_to: None,
            });
        }
        if let Some((end, voiced_end)) = self.speech_end {
            if end <= max {
                // The last pause, if the voice did not come back after it.
                let read_to = match self.pauses.back().map(|p| p.cut) {
                    Some(cut)
                        if cut > start
                            && cut <= end
                            && cut >= voiced_end + samples(QUIET_AFTER_VOICE) =>
                    {
                        cut
                    }
                    _ => end,
                };
                return Some(Piece {
                    end,
                    voiced_end,
                    closes: true,
                    forced: false,
                    read_to,
                    confirm_to: None,
                });
            }
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
            read_to: cut,
            confirm_to: None,
        })
    }

    /// Where the open piece may end at a pause at the earliest (absolute).
    pub(super) fn min_end(&self) -> u64 {
        let min_piece = if self.lead.is_empty() {
            self.config.min_piece
        } else {
            self.config.min_led_piece
        };
        self.window_start + samples(min_piece)
    }

    /// The middle of the quietest 100 ms of the window between `from` and
    /// `to` (absolute samples), found in 10 ms steps.
    pub(super) fn quietest(&self, from: u64, to: u64) -> u64 {
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

    pub(super) fn partial_pass(
        &mut self,
        decoder: &mut dyn Decode,
    ) -> Result<Vec<Event>, InferenceError> {
        let pause = self.pause_to_read();
        let covered_until = pause.unwrap_or_else(|| self.window_end());
        let len = (covered_until - self.window_start) as usize;
        let words = match self.pass(decoder, len) {
            Err(InferenceError::Aborted) => {
                // Nothing read: the next decision sees the event that
                // aborted it.
                self.stats.aborted_partials.fetch_add(1, Ordering::Relaxed);
                return Ok(Vec::new());
            }
            other => other?,
        };
        tracing::debug!(
            source = %self.config.source,
            read_to = covered_until as f64 / SAMPLE_RATE_HZ as f64,
            at_pause = pause.is_some(),
            words = words.len(),
            "partial pass"
        );
        self.last = Some(Pass {
            words: words.clone(),
            covered_until,
            at_pause: pause.is_some(),
        });
        Ok(self.partial(&words).into_iter().collect())
    }

    pub(super) fn commit_piece(
        &mut self,
        decoder: &mut dyn Decode,
        piece: Piece,
    ) -> Result<Vec<Event>, InferenceError> {
        let mut read_on = Vec::new();
        let mut words = if let Some(confirm_to) = piece.confirm_to {
            let (words, on) = self.confirmed(decoder, piece, confirm_to)?;
            read_on = on;
            match words {
                Some(words) => words,
                None => return Ok(self.partial(&read_on).into_iter().collect()),
            }
        } else if piece.voiced_end <= self.window_start {
            // Only the quiet after the last voiced sample: never decoded on
            // its own, since Whisper invents text on silence.
            Vec::new()
        } else {
            match self.last.take() {
                // The pass that read up to a pause, past the voice (with
                // some quiet after its last word, so no word was cut off) and
                // not into the next piece, heard exactly this piece. Only
                // such a pass: where it ends is the VAD's, so the committed
                // text does not depend on when partial passes happened to
                // run. A partial pass that ended in the quiet while the VAD
                // waited to close the utterance read as little as 64 ms past
                // the VAD's voiced end, which can clip a soft last word, and
                // how often one does grows with the number of partials.
                Some(pass)
                    if pass.at_pause
                        && pass.covered_until >= piece.voiced_end + samples(QUIET_AFTER_VOICE)
                        && pass.covered_until == piece.read_to =>
                {
                    pass.words
                }
                // The utterance's last piece: a pass that read to a pause
                // after all of its voice (the VAD's voiced end counts a soft
                // tail) heard all of it too. The VAD often reports a second
                // pause of the same quiet stretch after the soft tail, 16-80
                // ms after the first; the pass at the first one was still
                // running then, and waiting for the one at the second (or
                // running it at the commit) cost a pass, 0.25-0.3 s, on most
                // phrases (traced on assets/real/known-16k.wav). Which of the
                // two commits depends on timing; both read all of the voice
                // and differ by under 0.1 s of quiet.
                Some(pass)
                    if piece.closes
                        && pass.at_pause
                        && pass.covered_until >= piece.voiced_end
                        && pass.covered_until <= piece.end =>
                {
                    pass.words
                }
                _ => {
                    let len = (piece.read_to - self.window_start) as usize;
                    self.pass(decoder, len)?
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
        tracing::debug!(
            source = %self.config.source,
            start = piece_start_s,
            end = piece.end as f64 / SAMPLE_RATE_HZ as f64,
            voiced_end = piece.voiced_end as f64 / SAMPLE_RATE_HZ as f64,
            closes = piece.closes,
            words = words.len(),
            repeated,
            "piece committed"
        );
        let voiced_end_s = piece.voiced_end.max(self.window_start) as f64 / SAMPLE_RATE_HZ as f64;
        self.drop_piece(
            piece.end,
            piece.closes,
            words.iter().map(|w| w.text.clone()).collect(),
        );
        if words.is_empty() {
            return Ok(self.partial(&read_on).into_iter().collect());
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
        let last = self.event(EventKind::Final, &words, start, end);
        Ok(std::iter::once(last)
            .chain(self.partial(&read_on))
            .collect())
    }

    /// A partial event showing `words`, unless partials are off or there
    /// are none.
    fn partial(&self, words: &[Word]) -> Option<Event> {
        if !self.config.partials || words.is_empty() {
            return None;
        }
        self.stats.partial_events.fetch_add(1, Ordering::Relaxed);
        let start = words[0].start.max(self.committed_until);
        let end = words[words.len() - 1].end.max(start);
        Some(self.event(EventKind::Partial, words, start, end))
    }

    /// Removes the piece ending at `end` from the window; `closes` ends the
    /// utterance too, and lets the next waiting events in.
    pub(super) fn drop_piece(&mut self, end: u64, closes: bool, words: Vec<String>) {
        let n = (end.saturating_sub(self.window_start) as usize).min(self.window.len());
        if self.config.lead.is_zero() {
            self.window.drain(..n);
        } else {
            let audio = self.window.drain(..n).collect();
            self.push_lead(audio, words, end);
        }
        self.window_start = end;
        self.decoded_until = self.decoded_until.max(end);
        self.last = None;
        while self.pauses.front().is_some_and(|p| p.cut <= end) {
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

    /// Decodes the first `len` samples of the window, after the lead: the
    /// words of the open piece, in absolute seconds, cleaned.
    pub(super) fn pass(
        &mut self,
        decoder: &mut dyn Decode,
        len: usize,
    ) -> Result<Vec<Word>, InferenceError> {
        let len = len.min(self.window.len());
        if let Some((audio, lead_words)) = self.lead_audio(len) {
            let lead_len = audio.len() - len;
            let hypothesis = self.decode(decoder, &audio, len)?;
            let mut words = self.clean_words(&hypothesis, self.window_start - lead_len as u64);
            let start = self.window_start as f64 / SAMPLE_RATE_HZ as f64;
            // A split that leaves the piece no words, over half a second
            // of its audio or more, is Whisper ending its text at the
            // lead's end, not a piece without words: traced in a live run,
            // the lead "The order number is 317." came out and "and the
            // total comes to ninety-nine dollars" never did, and committing
            // that split lost the sentence.
            let split = lead_split(&words, &lead_words, start)
                .filter(|&own| own < words.len() || (len as u64) < samples(LEAD_STOP_MIN));
            if let Some(own) = split {
                tracing::debug!(
                    source = %self.config.source,
                    lead = lead_words.len(),
                    heard = words.len(),
                    own = words.len() - own,
                    "lead split"
                );
                words.drain(..own);
                for w in &mut words {
                    w.start = w.start.max(start);
                    w.end = w.end.max(w.start);
                }
                return Ok(words);
            }
            // Whisper heard the lead otherwise (where its words end is not
            // known) or stopped at its end: the piece is decoded on its own.
            self.stats.lead_mismatches.fetch_add(1, Ordering::Relaxed);
        }
        // Decoded in place (the window is put back whatever the outcome).
        let window = std::mem::take(&mut self.window);
        let hypothesis = self.decode(decoder, &window[..len], len);
        self.window = window;
        Ok(self.clean_words(&hypothesis?, self.window_start))
    }

    /// Decodes `audio`, which ends where the pass reads to in the window.
    fn decode(
        &mut self,
        decoder: &mut dyn Decode,
        audio: &[f32],
        len: usize,
    ) -> Result<Hypothesis, InferenceError> {
        let keep = self.context.len().saturating_sub(self.config.prompt_words);
        let request = DecodeRequest {
            prompt: self.context[keep..].join(" "),
            fit_audio_ctx: true,
            temperature_fallback: false,
            word_times: true,
        };
        let hypothesis = decoder.decode(audio, &request)?;
        self.last_pass = hypothesis.elapsed;
        self.decoded_until = self.decoded_until.max(self.window_start + len as u64);
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .decode_us
            .fetch_add(hypothesis.elapsed.as_micros() as u64, Ordering::Relaxed);
        self.stats
            .decoded_samples
            .fetch_add(audio.len() as u64, Ordering::Relaxed);
        self.record_lag(self.lag_samples());
        Ok(hypothesis)
    }

    pub(super) fn record_lag(&self, lag_samples: u64) {
        let ms = lag_samples * 1000 / SAMPLE_RATE_HZ as u64;
        self.stats.lag_ms.store(ms, Ordering::Relaxed);
        self.stats.max_lag_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The pass's words in absolute seconds (inside the decoded audio),
    /// cleaned of invented text and loops.
    pub(super) fn clean_words(&mut self, hypothesis: &Hypothesis, audio_start: u64) -> Vec<Word> {
        if is_invented(hypothesis) {
            tracing::debug!(
                source = %self.config.source,
                no_speech = hypothesis.no_speech,
                words = hypothesis.words.len(),
                "pass taken as invented"
            );
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

    pub(super) fn event(&self, kind: EventKind, words: &[Word], start: f64, end: f64) -> Event {
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

/// The least audio of the piece a pass must read for an empty split after
/// the lead to count as Whisper stopping at the lead.
const LEAD_STOP_MIN: Duration = Duration::from_millis(500);

/// The longest repeat of the committed tail a piece may start with.
const REPEAT_MAX_WORDS: usize = 3;

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
