//! The soak's verdicts: word error rate over the phrases that were really
//! heard, latency percentiles, memory slope, and bounds.

use serde::Serialize;

use super::programme::{Phrase, Play};
use crate::event::{Event, EventKind};
use crate::score;

/// Margin around a phrase within which a final counts as its text, seconds.
const PHRASE_MARGIN_BEFORE_S: f64 = 0.5;
const PHRASE_MARGIN_AFTER_S: f64 = 1.5;

/// One bound checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub value: f64,
    pub bound: f64,
    pub pass: bool,
    pub detail: String,
}

impl Check {
    /// Passes when `value <= bound`.
    pub fn at_most(name: &str, value: f64, bound: f64, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            value,
            bound,
            pass: value <= bound,
            detail: detail.into(),
        }
    }
}

/// The word error rate over the phrases played while capture was sound.
#[derive(Debug, Clone, Serialize)]
pub struct WerResult {
    pub wer: f64,
    pub phrases_counted: usize,
    pub phrases_excluded: usize,
    pub reference_words: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    pub reference: String,
    pub hypothesis: String,
}

/// Session-time windows where audio was known to be disturbed.
pub type Window = (f64, f64);

fn overlaps(a: Window, b: Window) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Scores `finals` (session-time start/end already applied) against the
/// phrases of every play that were heard whole: played before the play
/// ended, outside `disturbed`, and ended before `until_s`.
pub fn wer(
    phrases: &[Phrase],
    plays: &[Play],
    finals: &[(f64, f64, String)],
    disturbed: &[Window],
    until_s: f64,
) -> WerResult {
    let mut counted: Vec<(Window, &str)> = Vec::new();
    let mut excluded: Vec<Window> = disturbed.to_vec();
    for play in plays {
        for phrase in phrases {
            let window = (play.start_s + phrase.start_s, play.start_s + phrase.end_s);
            let heard = window.1 <= play.end_s
                && window.1 + PHRASE_MARGIN_AFTER_S <= until_s
                && !disturbed.iter().any(|d| overlaps(*d, window));
            if heard {
                counted.push((window, &phrase.text));
            } else if window.0 < play.end_s {
                excluded.push(window);
            }
        }
    }
    counted.sort_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
    let widen = |w: Window| (w.0 - PHRASE_MARGIN_BEFORE_S, w.1 + PHRASE_MARGIN_AFTER_S);
    let mut hypothesis: Vec<(f64, &str)> = Vec::new();
    for (start, end, text) in finals {
        let mid = (start + end) / 2.0;
        let point = (mid, mid + 1e-6);
        let in_counted = counted.iter().any(|(w, _)| overlaps(widen(*w), point));
        let in_excluded = excluded.iter().any(|w| overlaps(widen(*w), point));
        // Text inside a counted phrase is scored; text outside every phrase
        // (invented on silence) counts as insertions; text of an excluded
        // phrase is left out.
        if in_counted || !in_excluded {
            hypothesis.push((*start, text));
        }
    }
    hypothesis.sort_by(|a, b| a.0.total_cmp(&b.0));
    let reference = counted
        .iter()
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join(" ");
    let hypothesis = hypothesis
        .iter()
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join(" ");
    let errors = score::wer(&reference, &hypothesis);
    WerResult {
        wer: errors.rate(),
        phrases_counted: counted.len(),
        phrases_excluded: excluded.len() - disturbed.len(),
        reference_words: errors.reference_words,
        substitutions: errors.substitutions,
        deletions: errors.deletions,
        insertions: errors.insertions,
        reference,
        hypothesis,
    }
}

/// Finals as (session start, session end, text), given the source's
/// timeline origin in session seconds.
pub fn session_finals(events: &[Event], origin_s: f64) -> Vec<(f64, f64, String)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| (e.start + origin_s, e.end + origin_s, e.text.clone()))
        .collect()
}

/// Latency of each final: emitted minus the end of its audio, seconds,
/// paired with the emission time.
pub fn latencies(events: &[Event], origin_s: f64) -> Vec<(f64, f64)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .filter_map(|e| e.emitted.map(|at| (at, at - (e.end + origin_s))))
        .collect()
}

/// The `p`-th percentile (0..=100) by nearest rank; 0 for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Least-squares slope of `points` (x, y), in y per x; 0 for fewer than 2.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert_eq!(percentile(&[], 95.0), 0.0);
    }

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 2.0 * x as f64 + 1.0)).collect();
        assert!((slope(&pts) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn disturbed_phrases_are_left_out_and_silence_text_is_an_insertion() {
        let phrases = vec![
            Phrase {
                start_s: 1.0,
                end_s: 2.0,
                text: "alpha beta".into(),
            },
            Phrase {
                start_s: 4.0,
                end_s: 5.0,
                text: "gamma delta".into(),
            },
        ];
        let plays = vec![Play {
            sink: "spk".into(),
            start_s: 10.0,
            end_s: 16.0,
            complete: true,
        }];
        let finals = vec![
            (11.1, 12.0, "alpha beta".to_owned()),
            (14.1, 15.0, "gamma".to_owned()),
            (8.0, 8.5, "invented".to_owned()),
        ];
        let r = wer(&phrases, &plays, &finals, &[(13.5, 15.5)], 100.0);
        assert_eq!(r.phrases_counted, 1);
        assert_eq!(r.reference, "alpha beta");
        assert_eq!(r.insertions, 1);
    }
}
