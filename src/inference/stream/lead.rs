//! The lead: the utterance's last committed pieces, decoded again in front
//! of the open piece so that a short piece is heard in its context, and the
//! split of such a pass's words into the lead's and the piece's own.
//!
//! Pieces are cut at pauses and each is committed whole, so a short piece
//! (a phrase ending 1.5 s after the last cut) loses the words around it
//! that Whisper needs: committing at every pause on its own cost WER on
//! real speech, so pieces waited for 3 s, and phrases inside unbroken
//! speech for the next cut. With the lead, the pass hears the last ~3 s
//! again; their words are known (they were committed), so the pass's
//! leading words that repeat them are found by edit distance, not by word
//! times (Whisper's are off by up to a second), and dropped.
//!
//! Not real-time safe.

use std::time::Duration;

use super::{samples, Stream, LEAD_GAP};
use crate::inference::engine::Word;
use crate::inference::guard::same_word;

/// The most audio one pass reads, lead included: inside the live model's
/// encoder window ([`crate::inference::window::LIVE_AUDIO_CTX`], 15.36 s)
/// with its margin.
const MAX_PASS_AUDIO: Duration = Duration::from_secs(14);

/// A committed piece kept to be decoded again in front of the next ones.
pub(super) struct Lead {
    audio: Vec<f32>,
    /// The words committed from it.
    words: Vec<String>,
}

/// How many of a pass's leading `words` belong to the lead, whose committed
/// words were `lead`, the open piece starting at `start` seconds: the split
/// whose prefix is closest to `lead` in words (edit distance, case and
/// punctuation ignored), ties broken by the count nearest the lead's (a
/// word the lead cut short, "back" for "background", is the lead's), then
/// by the word times nearest `start`. `None` when no prefix is close
/// (Whisper heard the lead otherwise; its word times are too rough to cut
/// by).
pub(super) fn lead_split(words: &[Word], lead: &[String], start: f64) -> Option<usize> {
    let (n, k) = (words.len(), lead.len());
    // d[i][j]: edit distance between words[..i] and lead[..j].
    let mut d = vec![vec![0usize; k + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=k).collect();
    for i in 1..=n {
        for j in 1..=k {
            let same = same_word(&words[i - 1].text, &lead[j - 1]);
            d[i][j] = (d[i - 1][j - 1] + usize::from(!same))
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
        }
    }
    let distance_to_start = |i: usize| -> f64 {
        let at = if i < n { words[i].start } else { f64::INFINITY };
        (at - start).abs()
    };
    let best = (0..=n).min_by(|&a, &b| {
        d[a][k]
            .cmp(&d[b][k])
            .then(a.abs_diff(k).cmp(&b.abs_diff(k)))
            .then(distance_to_start(a).total_cmp(&distance_to_start(b)))
    })?;
    (d[best][k] * LEAD_MISMATCH <= k).then_some(best)
}

/// A lead carried across an utterance's end holds at least this many words
/// (a piece heard as nothing leads nothing). Two were needed once: a
/// one-word utterance before a short pause is mostly a phrase the VAD split
/// ("front | right"), Whisper often heard the pair otherwise than the word
/// committed alone, and the pass was decoded twice. With short pieces
/// confirmed by the pass that reads on (`Stream::confirmed`), the second
/// word needs the lead to be committed at its own end: without it,
/// "right" waited 2.5 s for the next cut ("right. The birch canoe slid on
/// the smooth planks."); measured with `--replay`, every WER of the
/// real-speech set is the same with one.
const CARRIED_LEAD_MIN_WORDS: usize = 1;

/// A split is trusted when at most one lead word in this many differs.
const LEAD_MISMATCH: usize = 3;

impl Stream {
    /// The open piece starts at `start`: the lead stays in front of it if
    /// it ended less than [`LEAD_GAP`] before (the gap filled with silence).
    pub(super) fn join_lead(&mut self, start: u64) {
        let words: usize = self.lead.iter().map(|p| p.words.len()).sum();
        let Some(last) = self.lead.back_mut() else {
            return;
        };
        if start < self.lead_end
            || start - self.lead_end > samples(LEAD_GAP)
            || words < CARRIED_LEAD_MIN_WORDS
        {
            self.lead.clear();
            return;
        }
        let gap = (start - self.lead_end) as usize;
        last.audio.resize(last.audio.len() + gap, 0.0);
        self.lead_end = start;
    }

    /// The lead's audio (whole pieces, at most [`MAX_PASS_AUDIO`] with the
    /// window's first `len` samples) followed by those samples, and the
    /// lead's committed words; `None` without a lead.
    pub(super) fn lead_audio(&self, len: usize) -> Option<(Vec<f32>, Vec<String>)> {
        let room = (samples(MAX_PASS_AUDIO) as usize).saturating_sub(len);
        let mut lead_len = 0;
        let mut take = 0;
        for p in self.lead.iter().rev() {
            if lead_len + p.audio.len() > room {
                break;
            }
            lead_len += p.audio.len();
            take += 1;
        }
        if take == 0 {
            return None;
        }
        let mut audio = Vec::with_capacity(lead_len + len);
        let mut words = Vec::new();
        for p in self.lead.iter().skip(self.lead.len() - take) {
            audio.extend_from_slice(&p.audio);
            words.extend(p.words.iter().cloned());
        }
        audio.extend_from_slice(&self.window[..len]);
        Some((audio, words))
    }

    /// Keeps a dropped piece as lead (about [`super::StreamConfig::lead`]
    /// of the newest pieces).
    pub(super) fn push_lead(&mut self, audio: Vec<f32>, words: Vec<String>, end: u64) {
        self.lead.push_back(Lead { audio, words });
        self.lead_end = end;
        let keep = samples(self.config.lead) as usize;
        while self.lead.len() > 1 && self.lead.iter().map(|p| p.audio.len()).sum::<usize>() > keep {
            self.lead.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words of `text`, one per 0.4 s from `at` seconds.
    fn words(text: &str, at: f64) -> Vec<Word> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| Word {
                text: t.to_string(),
                start: at + 0.4 * i as f64,
                end: at + 0.4 * i as f64 + 0.3,
                probability: 0.9,
            })
            .collect()
    }

    fn lead(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_lead_is_found_by_its_words_not_by_their_times() {
        // Times a second off: by time, "the" and "smooth" would be the
        // piece's; by words they are the lead's.
        let w = words("slid on the smooth planks. Glue the sheet", 9.0);
        let split = lead_split(&w, &lead("Slid on the smooth planks"), 11.0);
        assert_eq!(split, Some(5));
    }

    #[test]
    fn a_word_the_lead_cut_short_stays_the_leads() {
        // The cut fell inside "background": the lead committed "back".
        let w = words("to the dark blue background. It's easy", 0.0);
        assert_eq!(
            lead_split(&w, &lead("to the dark blue back."), 1.6),
            Some(5)
        );
        // One lead word left out by the pass.
        let w = words("the dark blue background. It's easy", 0.0);
        assert_eq!(
            lead_split(&w, &lead("to the dark blue background"), 1.6),
            Some(4)
        );
    }

    #[test]
    fn a_lead_heard_otherwise_is_not_cut_by() {
        let w = words("a chicken leg is a rare dish", 0.0);
        assert_eq!(lead_split(&w, &lead("these days rear right"), 1.6), None);
    }
}
