//! Guards against Whisper's known failures on a pass's words: text invented
//! on non-speech, and repetition loops. Words are compared normalised
//! (case and punctuation ignored).
//!
//! Not real-time safe.

use super::engine::{Hypothesis, Word};

/// A word without case or punctuation ("Close." and "close" are the same).
pub fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Words compared without case or punctuation.
pub fn same_word(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

/// Text Whisper invents on non-speech: the pass itself says it is probably
/// not speech, and its words are unsure.
pub fn is_invented(h: &Hypothesis) -> bool {
    if h.words.is_empty() {
        return false;
    }
    let mean_p = h.words.iter().map(|w| w.probability).sum::<f32>() / h.words.len() as f32;
    h.no_speech > 0.6 && mean_p < 0.6
}

/// The longest n-gram whose loops are cut: a pass over a piece with its
/// lead once said a 15-word count three times.
const MAX_LOOP_WORDS: usize = 16;

/// Cuts a run of a 2-16 word n-gram said three or more times in a row (a
/// single word: four or more, since people do say "CQ, CQ, CQ") to its first
/// occurrence, wherever it starts. Returns whether it cut.
///
/// Only the run is removed: words after it are kept ("seven of clubs seven
/// of clubs seven of clubs go forward" keeps "go forward").
pub fn cut_repetition(words: &mut Vec<Word>) -> bool {
    let mut cut = false;
    for n in 1..=MAX_LOOP_WORDS {
        let mut i = 0;
        let min_repeats = if n == 1 { 3 } else { 2 };
        while i + (min_repeats + 1) * n <= words.len() {
            let repeats = (1..)
                .take_while(|k| {
                    let start = i + k * n;
                    start + n <= words.len()
                        && (0..n).all(|j| same_word(&words[i + j].text, &words[start + j].text))
                })
                .count();
            if repeats >= min_repeats {
                // Keep the first occurrence; the last one's end closes it.
                let end = words[i + (repeats + 1) * n - 1].end;
                words.drain(i + n..i + (repeats + 1) * n);
                if let Some(last) = words.get_mut(i + n - 1) {
                    last.end = last.end.max(end);
                }
                cut = true;
            }
            i += 1;
        }
    }
    cut
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

    fn texts(w: &[Word]) -> Vec<&str> {
        w.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn repetition_loops_are_cut_to_one_occurrence() {
        let mut w = words("I think that that that that is it");
        assert!(cut_repetition(&mut w));
        assert_eq!(texts(&w), ["I", "think", "that", "is", "it"]);
        let mut w = words("thank you thank you thank you thank you");
        assert!(cut_repetition(&mut w));
        assert_eq!(w.len(), 2);
        let mut w = words("calling CQ CQ CQ this is");
        assert!(!cut_repetition(&mut w));
        let mut w = words("the cat sat on the mat");
        assert!(!cut_repetition(&mut w));
        assert_eq!(w.len(), 6);
    }

    #[test]
    fn loops_are_found_on_normalised_text() {
        // Seen on real speech: "seven of clubs" became this.
        let mut w = words("7 of close. 7 of Close, 7 of close. 7 of close. go forward");
        assert!(cut_repetition(&mut w));
        assert_eq!(texts(&w), ["7", "of", "close.", "go", "forward"]);
    }

    #[test]
    fn invented_text_needs_both_signs() {
        let sure = Hypothesis {
            words: words("hello there"),
            no_speech: 0.9,
            ..Hypothesis::default()
        };
        assert!(!is_invented(&sure));
        let mut unsure = sure.clone();
        unsure.words.iter_mut().for_each(|w| w.probability = 0.3);
        assert!(is_invented(&unsure));
        unsure.no_speech = 0.1;
        assert!(!is_invented(&unsure));
    }
}
