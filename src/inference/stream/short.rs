//! Short pieces: after a lead, a piece may end at a pause before it is
//! [`super::StreamConfig::min_led_piece`] long when a pass reading
//! [`super::StreamConfig::confirm`] past the pause starts with the same
//! words, so Whisper heard a word end there. Inside unbroken speech a
//! phrase then commits at its own end instead of at the next cut.
//!
//! Not real-time safe.

use std::sync::atomic::Ordering;

use super::piece::Piece;
use super::{samples, Stream};
use crate::inference::decode::Decode;
use crate::inference::engine::{Word, SAMPLE_RATE_HZ};
use crate::inference::guard::same_word;
use crate::inference::InferenceError;

/// A short piece ([`Stream::short_piece`]).
pub(super) enum Short {
    /// Its confirming pass can run.
    Ready(Piece),
    /// The audio after it is on its way; it ends at this cut.
    Pending(u64),
}

impl Stream {
    /// After a lead, the first pause that makes a piece shorter than the
    /// usual minimum, before the utterance's end: ready once the audio its
    /// confirming pass reads has arrived, pending (at its cut) while it is
    /// on its way (the piece's end must not depend on how much audio
    /// waited, so no other cut is taken meanwhile), `None` without such a
    /// pause.
    pub(super) fn short_piece(&self) -> Option<Short> {
        let min = self.min_end();
        if self.lead.is_empty() || self.config.confirm.is_zero() {
            return None;
        }
        let from = self.window_start + samples(self.config.min_confirmed_piece);
        let end = self.speech_end.map_or(u64::MAX, |(end, _)| end);
        let confirm = samples(self.config.confirm);
        let pause = self.pauses.iter().find(|p| {
            !p.tail
                && p.cut >= from
                && p.cut > self.refused_until
                && p.cut < min
                // The utterance ends before the confirming audio: its last
                // piece takes it all.
                && p.cut + confirm < end
        })?;
        let confirm_to = pause.cut + confirm;
        if confirm_to > self.window_end() {
            return Some(Short::Pending(pause.cut));
        }
        Some(Short::Ready(Piece {
            end: pause.cut,
            voiced_end: pause.voiced_end,
            closes: false,
            forced: false,
            read_to: pause.cut,
            confirm_to: Some(confirm_to),
        }))
    }

    /// The words of a short piece (whose end a pass reading on to
    /// `confirm_to` must confirm), or `None` when that pass heard other
    /// words there, and the words that pass read after the piece's (all of
    /// them when refused: the open piece's newest hypothesis). Refused: a
    /// cut inside a word ("back|ground") or a last word Whisper guessed from
    /// half of it. Measured on the real-speech set,
    /// short pieces cut at every pause after 1 s cost WER (known 0.106
    /// against 0.076); confirmed ones let a phrase inside unbroken speech
    /// be committed about a second after its end instead of at the next
    /// cut 1.5-3 s later.
    pub(super) fn confirmed(
        &mut self,
        decoder: &mut dyn Decode,
        piece: Piece,
        confirm_to: u64,
    ) -> Result<(Option<Vec<Word>>, Vec<Word>), InferenceError> {
        let words = match &self.last {
            Some(pass) if pass.at_pause && pass.covered_until == piece.read_to => {
                pass.words.clone()
            }
            _ => self.pass(decoder, (piece.read_to - self.window_start) as usize)?,
        };
        let on = self.pass(decoder, (confirm_to - self.window_start) as usize)?;
        let same = !words.is_empty()
            && on.len() >= words.len()
            && words
                .iter()
                .zip(&on)
                .all(|(a, b)| same_word(&a.text, &b.text));
        tracing::debug!(
            source = %self.config.source,
            cut = piece.end as f64 / SAMPLE_RATE_HZ as f64,
            words = words.len(),
            read_on = on.len(),
            same,
            "short piece"
        );
        if same {
            self.stats.confirmed_cuts.fetch_add(1, Ordering::Relaxed);
            // The words read on are the next piece's partial.
            let on = on[words.len()..].to_vec();
            Ok((Some(words), on))
        } else {
            self.stats.refused_cuts.fetch_add(1, Ordering::Relaxed);
            self.refused_until = piece.end;
            Ok((None, on))
        }
    }
}
