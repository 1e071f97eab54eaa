//! Word error rate: how far a transcript is from its reference text.
//!
//! Both sides are normalised the same way before words are compared: lower
//! case, punctuation dropped (apostrophes inside words removed, hyphens and
//! slashes split words), numbers written in digits spelled out in words
//! ("42" -> "forty two"), "%" as "percent", hesitations ("uh", "um")
//! dropped. The distance is the word-level
//! Levenshtein distance (substitutions + deletions + insertions) divided by
//! the number of reference words.

/// The counts behind a word error rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WordErrors {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    /// Words in the normalised reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// Errors per reference word (0.0 is perfect; can exceed 1.0 when the
    /// hypothesis invents many words). An empty reference scores 0.0 for an
    /// empty hypothesis and 1.0 per inserted word otherwise.
    pub fn rate(&self) -> f64 {
        let errors = (self.substitutions + self.deletions + self.insertions) as f64;
        if self.reference_words == 0 {
            return errors;
        }
        errors / self.reference_words as f64
    }
}

/// Word error rate of `hypothesis` against `reference`.
pub fn wer(reference: &str, hypothesis: &str) -> WordErrors {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    align(&r, &h)
}

/// The normalised words of a text.
pub fn normalize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    // "$99" is read "ninety nine dollars", as Whisper's English normaliser
    // reads it.
    let mut dollars = false;
    let flush = |current: &mut String, words: &mut Vec<String>, dollars: &mut bool| {
        if current.is_empty() {
            return;
        }
        if current.chars().all(|c| c.is_ascii_digit()) {
            match current.parse::<u64>() {
                Ok(n) => words.extend(number_words(n)),
                Err(_) => words.extend(current.chars().map(|d| digit_word(d).to_string())),
            }
            if std::mem::take(dollars) {
                words.push("dollars".to_string());
            }
        } else {
            words.push(std::mem::take(current));
        }
        current.clear();
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            // A boundary between digits and letters ("5pm") splits words.
            if let Some(last) = current.chars().last() {
                if last.is_ascii_digit() != c.is_ascii_digit() {
                    flush(&mut current, &mut words, &mut dollars);
                }
            }
            current.extend(c.to_lowercase());
        } else if (c == '\'' || c == '\u{2019}') && !current.is_empty() {
            // "don't" -> "dont": an apostrophe inside a word joins it.
        } else if c == ',' && is_digit_at(&chars, i.wrapping_sub(1)) && is_digit_at(&chars, i + 1) {
            // "1,000" is one number.
        } else if c == '%' {
            flush(&mut current, &mut words, &mut dollars);
            words.push("percent".to_string());
        } else {
            flush(&mut current, &mut words, &mut dollars);
            dollars = c == '$' && is_digit_at(&chars, i + 1);
        }
    }
    flush(&mut current, &mut words, &mut dollars);
    let mut words = drop_number_and(words);
    words.retain(|w| !FILLERS.contains(&w.as_str()));
    words
}

/// Hesitations that carry no words: dropped from both sides, as Whisper's
/// own English text normaliser does ("which is uh... at the end").
const FILLERS: [&str; 7] = ["uh", "um", "umm", "hmm", "mhm", "er", "ah"];

/// 4-word spans said more often in `hypothesis` than in `reference`, where a
/// span said once is never a repeat: text committed twice by a streaming
/// policy shows up here, while repeats the speaker really made (and the
/// reference transcript has too) do not.
pub fn extra_repeats(reference: &str, hypothesis: &str) -> usize {
    let count = |text: &str| {
        let mut counts = std::collections::HashMap::<Vec<String>, usize>::new();
        for span in normalize(text).windows(4) {
            *counts.entry(span.to_vec()).or_default() += 1;
        }
        counts
    };
    let reference = count(reference);
    count(hypothesis)
        .into_iter()
        .map(|(span, n)| n.saturating_sub(reference.get(&span).copied().unwrap_or(0).max(1)))
        .sum()
}

/// Timed items (start, end in seconds) that go backwards (start before the
/// previous end), end before they start, or end past `duration`.
pub fn time_faults(times: impl IntoIterator<Item = (f64, f64)>, duration: f64) -> usize {
    let mut last_end = 0.0f64;
    let mut faults = 0;
    for (start, end) in times {
        if start < last_end - 1e-6 || end < start || end > duration + 1e-6 || start < 0.0 {
            faults += 1;
        }
        last_end = last_end.max(end);
    }
    faults
}

/// "three hundred and seventeen" -> "three hundred seventeen", so spoken and
/// written numbers compare equal.
fn drop_number_and(words: Vec<String>) -> Vec<String> {
    let is_number = |w: &str| ONES.contains(&w) || TENS[2..].contains(&w);
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let after_scale = out
            .last()
            .is_some_and(|p| p == "hundred" || p == "thousand");
        let before_number = words.get(i + 1).is_some_and(|n| is_number(n));
        if w == "and" && after_scale && before_number {
            continue;
        }
        out.push(w.clone());
    }
    out
}

fn is_digit_at(chars: &[char], i: usize) -> bool {
    chars.get(i).is_some_and(|c| c.is_ascii_digit())
}

fn digit_word(d: char) -> &'static str {
    ONES[d.to_digit(10).unwrap_or(0) as usize]
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// A number in words, without "and": 317 -> "three hundred seventeen".
fn number_words(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    if n == 0 {
        out.push("zero".to_string());
        return out;
    }
    let scales = [
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    let mut rest = n;
    for (value, name) in scales {
        if rest >= value {
            out.extend(below_thousand(rest / value));
            out.push(name.to_string());
            rest %= value;
        }
    }
    out.extend(below_thousand(rest));
    out
}

fn below_thousand(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(ONES[hundreds as usize].to_string());
        out.push("hundred".to_string());
    }
    if rest >= 20 {
        out.push(TENS[(rest / 10) as usize].to_string());
        if rest % 10 > 0 {
            out.push(ONES[(rest % 10) as usize].to_string());
        }
    } else if rest > 0 {
        out.push(ONES[rest as usize].to_string());
    }
    out
}

/// Word-level edit distance with its breakdown. "and" is not dropped from
/// spelled-out numbers in the reference, so write references the way a
/// transcript would ("three hundred seventeen" or "317").
fn align(reference: &[String], hypothesis: &[String]) -> WordErrors {
    let (n, m) = (reference.len(), hypothesis.len());
    // cost[j] for the previous row; each cell keeps (cost, subs, dels, ins).
    let mut prev: Vec<(usize, usize, usize, usize)> = (0..=m).map(|j| (j, 0, 0, j)).collect();
    let mut row = vec![(0, 0, 0, 0); m + 1];
    for i in 1..=n {
        row[0] = (i, 0, i, 0);
        for j in 1..=m {
            let same = reference[i - 1] == hypothesis[j - 1];
            let diag = prev[j - 1];
            let sub = if same {
                diag
            } else {
                (diag.0 + 1, diag.1 + 1, diag.2, diag.3)
            };
            let up = prev[j];
            let del = (up.0 + 1, up.1, up.2 + 1, up.3);
            let left = row[j - 1];
            let ins = (left.0 + 1, left.1, left.2, left.3 + 1);
            row[j] = [sub, del, ins]
                .into_iter()
                .min_by_key(|c| c.0)
                .unwrap_or(sub);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let (_, substitutions, deletions, insertions) = prev[m];
    WordErrors {
        substitutions,
        deletions,
        insertions,
        reference_words: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_score_zero() {
        assert_eq!(wer("Hello, world!", "hello world").rate(), 0.0);
    }

    #[test]
    fn numbers_and_punctuation_are_normalised() {
        let e = wer(
            "The order number is three hundred seventeen, and it costs ninety-nine dollars.",
            "the order number is 317 and it costs 99 dollars",
        );
        assert_eq!(e.rate(), 0.0, "{e:?}");
        assert_eq!(
            normalize("Don't stop: 1,000%"),
            ["dont", "stop", "one", "thousand", "percent"]
        );
        assert_eq!(normalize("at 5pm"), ["at", "five", "pm"]);
        assert_eq!(
            normalize("comes to $99. $ 5"),
            ["comes", "to", "ninety", "nine", "dollars", "five"]
        );
        assert_eq!(wer("three hundred and seventeen", "317").rate(), 0.0);
        assert_eq!(normalize("bread and butter"), ["bread", "and", "butter"]);
        assert_eq!(
            normalize("which is uh... at the end"),
            ["which", "is", "at", "the", "end"]
        );
    }

    #[test]
    fn counts_each_kind_of_error() {
        let e = wer("a b c d", "a x c d e");
        assert_eq!((e.substitutions, e.deletions, e.insertions), (1, 0, 1));
        assert_eq!(e.rate(), 0.5);
        let e = wer("a b c d", "a d");
        assert_eq!((e.substitutions, e.deletions, e.insertions), (0, 2, 0));
        let e = wer("", "thank you");
        assert_eq!(e.insertions, 2);
        assert_eq!(e.rate(), 2.0);
    }

    #[test]
    fn repeats_count_only_beyond_the_reference() {
        let offline = "calling CQ CQ CQ this is KA9Q";
        assert_eq!(extra_repeats(offline, offline), 0);
        let twice = "the weather today will be sunny the weather today will be sunny";
        assert_eq!(extra_repeats("the weather today will be sunny", twice), 3);
        // "cq cq cq" as a span occurs once in each: no repeat.
        assert_eq!(
            extra_repeats(offline, "Calling CQ, CQ, CQ. This is KA9Q."),
            0
        );
    }

    #[test]
    fn time_faults_find_backwards_and_outside_times() {
        assert_eq!(time_faults([(0.0, 1.0), (1.0, 2.0), (2.5, 3.0)], 3.0), 0);
        assert_eq!(time_faults([(0.0, 2.0), (1.5, 2.5)], 3.0), 1);
        assert_eq!(time_faults([(0.0, 1.0), (0.5, 0.2), (2.0, 4.0)], 3.0), 2);
    }
}
